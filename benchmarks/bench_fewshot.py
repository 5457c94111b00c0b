"""Few-shot and zero-shot text classification, side by side with setfit.

Accuracy at 2, 8 and 16 labelled texts a class (``--shots``), over
``--draws`` random draws of the training texts (the rest of the set is the
test set), plus fit time, for:

- ``frozen``: frozen all-MiniLM-L6-v2 embeddings + LogisticRegression;
- ``fewshot``: ``sktransfer.FewShotTextClassifier`` (defaults);
- ``fewshot-lr1e-4``: the same with ``lr=1e-4``;
- ``zeroshot``: ``sktransfer.ZeroShotTextClassifier`` (class names only; it
  needs no training text, so it is scored once per draw's test set);
- ``setfit``: setfit 1.2 with the same model (benchmark-only dependency:
  ``pip install --target /work/benchpkgs/setfit --no-deps setfit==1.2.0
  datasets evaluate multiprocess dill xxhash`` and that folder on PYTHONPATH).
  Its configuration is recorded with each result (``SETFIT_ARGS``): 5
  iterations (10 pairs per training text; the SetFit paper uses 20), one
  epoch, batch 16, body lr 2e-5, LogisticRegression head. setfit's own
  default (``sampling_strategy="oversampling"``: every negative pair, twice)
  takes 10-20 minutes for 96 texts on 2 idle cores, too long for 18 fits on
  the shared machine. ``setfit-default`` (or ``--methods setfit
  --setfit-config default``) runs setfit as a user gets it,
  ``TrainingArguments()`` defaults: the fair peer (~800 CPU s a fit).

Data sets: ``chatterbot`` (the 12 chatterbot-corpus topics with >= 40
statements, ``sktransfer.datasets.load_chatterbot_topics(min_per_topic=40)``)
and ``polarity`` (the 200 movie-review sentences, 100 negative / 100 positive,
of Pang & Lee's polarity set shipped in gensim's test data; the labels
``__label__neg`` / ``__label__pos`` are named ``negative`` / ``positive``).

Each result is one JSON line appended to ``--out``; ``--summarize`` prints the
markdown table of means. ``--timing`` measures, in one process, the CPU
seconds of FewShotTextClassifier's fit on 96 texts (8 x 12 topics) and of
setfit's on the same texts: setfit runs 2 and 12 training steps, and its
cost at its full step count is extrapolated from the per-step cost (for
the benchmark's configuration, the paper's 20 iterations and its default).

Usage::

    PYTHONPATH=.:/work/benchpkgs/setfit python benchmarks/bench_fewshot.py \\
        --methods setfit --out /tmp/fewshot_setfit.jsonl
    PYTHONPATH=. python benchmarks/bench_fewshot.py \\
        --methods frozen,fewshot,zeroshot --out /tmp/fewshot_ours.jsonl
    PYTHONPATH=. python benchmarks/bench_fewshot.py --summarize /tmp/*.jsonl
    PYTHONPATH=.:/work/benchpkgs/setfit python benchmarks/bench_fewshot.py \\
        --timing --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

MODEL = "all-MiniLM-L6-v2"
SETFIT_ARGS = dict(
    batch_size=16,
    num_epochs=1,
    num_iterations=5,
    body_learning_rate=2e-5,
    max_length=128,
)


def load_chatterbot():
    from sktransfer.datasets import load_chatterbot_topics

    return load_chatterbot_topics(min_per_topic=40)


def load_polarity():
    import importlib.util

    spec = importlib.util.find_spec("gensim")
    path = Path(spec.origin).parent / "test" / "test_data" / "pang_lee_polarity.cor"
    names = {"__label__neg": "negative", "__label__pos": "positive"}
    texts, labels = [], []
    for line in path.read_text(encoding="cp1252").splitlines():
        tag, _, text = line.partition(" ")
        texts.append(text.strip())
        labels.append(names[tag])
    return texts, labels


DATASETS = {"chatterbot": load_chatterbot, "polarity": load_polarity}


def draw(y, shots: int, seed: int, test_per_class: int | None = None):
    """Indices of ``shots`` training texts a class, and of test texts: the
    rest, or ``test_per_class`` of the rest a class (all of a smaller class)."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    train = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)]
    )
    test = np.setdiff1d(np.arange(len(y)), train)
    if test_per_class is not None:
        test_rng = np.random.default_rng(1000 + seed)  # the same for every shots
        test = np.concatenate([
            test_rng.permutation(test[y[test] == c])[:test_per_class]
            for c in np.unique(y)])
    return rng.permutation(train), np.sort(test)


def fit_setfit(X, y, seed):
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from sktransfer.backbones import bundled_text_path

    model = SetFitModel.from_pretrained(bundled_text_path(MODEL))
    with tempfile.TemporaryDirectory() as scratch:
        args = TrainingArguments(
            seed=seed, output_dir=scratch, save_strategy="no", **SETFIT_ARGS
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict({"text": list(X), "label": list(y)}),
        )
        trainer.train()
    return model


def fit_setfit_default(X, y, seed):
    """setfit as a user gets it: ``TrainingArguments()`` defaults (batch 16,
    one epoch of every negative pair oversampled: 528 steps for 8 x 12 texts,
    max_length the model's own)."""
    saved = dict(SETFIT_ARGS)
    SETFIT_ARGS.clear()
    try:
        return fit_setfit(X, y, seed)
    finally:
        SETFIT_ARGS.update(saved)


def fit_frozen(X, y, seed):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sktransfer.text import PretrainedTextEmbeddings

    return make_pipeline(
        PretrainedTextEmbeddings(MODEL), LogisticRegression(max_iter=1000)
    ).fit(X, y)


def fit_fewshot(X, y, seed):
    from sktransfer import FewShotTextClassifier

    return FewShotTextClassifier(MODEL, random_state=seed).fit(X, y)


def fit_fewshot_lr(X, y, seed):
    from sktransfer import FewShotTextClassifier

    return FewShotTextClassifier(MODEL, lr=1e-4, random_state=seed).fit(X, y)


def fit_zeroshot(X, y, seed):
    from sktransfer import ZeroShotTextClassifier

    return ZeroShotTextClassifier(labels=sorted(set(y)), model=MODEL).fit()


METHODS = {
    "setfit": fit_setfit,
    "setfit-default": fit_setfit_default,
    "frozen": fit_frozen,
    "fewshot": fit_fewshot,
    "fewshot-lr1e-4": fit_fewshot_lr,
    "zeroshot": fit_zeroshot,
}


def run(args):
    out = Path(args.out)
    if args.setfit_config == "default":
        args.methods = ",".join(
            "setfit-default" if m == "setfit" else m for m in args.methods.split(","))
    for name in args.datasets.split(","):
        texts, labels = DATASETS[name]()
        texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
        for shots in [int(s) for s in args.shots.split(",")]:
            seeds = ([int(s) for s in args.seeds.split(",")] if args.seeds
                     else range(args.draws))
            for seed in seeds:
                train, test = draw(labels, shots, seed, args.test_per_class)
                for method in args.methods.split(","):
                    if method == "zeroshot" and shots != min(
                        int(s) for s in args.shots.split(",")
                    ):
                        continue  # no training text: once per draw is enough
                    start, cpu = time.perf_counter(), time.process_time()
                    model = METHODS[method](
                        list(texts[train]), list(labels[train]), seed
                    )
                    fit_s = time.perf_counter() - start
                    cpu_s = time.process_time() - cpu
                    pred = np.asarray(model.predict(list(texts[test])))
                    row = dict(
                        dataset=name,
                        shots=0 if method == "zeroshot" else shots,
                        draw=seed,
                        method=method,
                        accuracy=float(np.mean(pred == labels[test])),
                        fit_s=round(fit_s, 1),
                        fit_cpu_s=round(cpu_s, 1),
                        n_classes=len(np.unique(labels)),
                        n_test=len(test),
                    )
                    if method == "setfit":
                        row["setfit_args"] = SETFIT_ARGS
                    if method == "setfit-default":
                        row["setfit_args"] = "TrainingArguments() defaults"
                    print(json.dumps(row), flush=True)
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")


def summarize(paths):
    cells = defaultdict(list)
    times = defaultdict(list)
    for path in paths:
        for line in Path(path).read_text().splitlines():
            r = json.loads(line)
            key = (r["dataset"], r["shots"], r["method"])
            cells[key].append(r["accuracy"])
            times[key].append(r.get("fit_cpu_s", np.nan))
    print("| data | labels/class | method | accuracy (mean ± sd) | draws | fit CPU s |")
    print("|---|---|---|---|---|---|")
    for key in sorted(cells):
        acc = cells[key]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {statistics.mean(acc):.3f} ± "
            f"{sd:.3f} | {len(acc)} | {statistics.mean(times[key]):.0f} |"
        )


def _setfit_cpu(X, y, max_steps: int) -> float:
    """CPU seconds of a setfit fit (load, ``max_steps`` steps, head)."""
    cpu = time.process_time()
    saved = dict(SETFIT_ARGS)
    SETFIT_ARGS["max_steps"] = max_steps
    try:
        fit_setfit(X, y, 0)
    finally:
        SETFIT_ARGS.clear()
        SETFIT_ARGS.update(saved)
    return time.process_time() - cpu


def _setfit_steps(X, y, **config) -> int:
    from setfit.sampler import ContrastiveDataset

    pairs = len(ContrastiveDataset(X, y, multilabel=False, **config))
    return -(-pairs // SETFIT_ARGS["batch_size"])


def timing(args):
    """CPU seconds (``time.process_time``, one torch thread: a loaded shared
    machine stretches wall time, not the work done) to fit 96 texts."""
    texts, labels = load_chatterbot()
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
    train, _ = draw(labels, 8, 0)
    X, y = list(texts[train]), list(labels[train])
    cpu = time.process_time()
    fit_fewshot(X, y, 0)
    ours = time.process_time() - cpu
    print(f"fewshot: {ours:.1f} CPU s", flush=True)
    short, long = 2, 12
    t_short, t_long = _setfit_cpu(X, y, short), _setfit_cpu(X, y, long)
    per_step = (t_long - t_short) / (long - short)
    print(f"setfit: {t_short:.1f} CPU s with {short} steps, {t_long:.1f} with "
          f"{long}: {per_step:.2f} s a step", flush=True)
    configs = {
        f"num_iterations={SETFIT_ARGS['num_iterations']} (benchmark)": dict(
            num_iterations=SETFIT_ARGS["num_iterations"]),
        "num_iterations=20 (SetFit paper)": dict(num_iterations=20),
        "default (oversampling)": dict(sampling_strategy="oversampling"),
    }
    for name, config in configs.items():
        steps = _setfit_steps(X, y, **config)
        total = t_short + (steps - short) * per_step
        print(f"| setfit {name} | {steps} steps | {total:.0f} CPU s | fewshot "
              f"{ours:.0f} CPU s | ratio {ours / total:.3f} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="frozen,fewshot,zeroshot,setfit")
    parser.add_argument("--datasets", default="chatterbot,polarity")
    parser.add_argument("--shots", default="2,8,16")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seeds", default=None,
                        help="draw seeds, e.g. 2 or 0,1 (default: 0..draws-1)")
    parser.add_argument("--test-per-class", type=int, default=None,
                        help="score on this many held-out texts a class")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--setfit-config", choices=["reduced", "default"],
                        default="reduced",
                        help="setfit's configuration: SETFIT_ARGS (reduced) or "
                        "TrainingArguments() defaults (method setfit-default)")
    parser.add_argument("--out", default="fewshot_results.jsonl")
    parser.add_argument("--summarize", nargs="*")
    parser.add_argument("--timing", action="store_true")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.summarize:
        summarize(args.summarize)
    elif args.timing:
        timing(args)
    else:
        run(args)


if __name__ == "__main__":
    main()

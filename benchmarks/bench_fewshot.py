"""Few-shot and zero-shot text classification, side by side with setfit.

Accuracy at 2, 8 and 16 labelled texts a class (``--shots``), over
``--draws`` random draws of the training texts (the rest of the set is the
test set), plus fit time, for:

- ``frozen``: frozen all-MiniLM-L6-v2 embeddings + LogisticRegression;
- ``fewshot``: ``sktransfer.FewShotTextClassifier`` (defaults);
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
  the shared machine.

Data sets: ``chatterbot`` (the 12 chatterbot-corpus topics with >= 40
statements, ``sktransfer.datasets.load_chatterbot_topics(min_per_topic=40)``)
and ``polarity`` (the 200 movie-review sentences, 100 negative / 100 positive,
of Pang & Lee's polarity set shipped in gensim's test data; the labels
``__label__neg`` / ``__label__pos`` are named ``negative`` / ``positive``).

Each result is one JSON line appended to ``--out``; ``--summarize`` prints the
markdown table of means. ``--timing`` times one fit of setfit and one of
FewShotTextClassifier on the same 96 texts (8 x 12 topics) in this process.

Usage::

    PYTHONPATH=.:/work/benchpkgs/setfit python benchmarks/bench_fewshot.py \\
        --methods setfit --out /tmp/fewshot_setfit.jsonl
    PYTHONPATH=. python benchmarks/bench_fewshot.py \\
        --methods frozen,fewshot,zeroshot --out /tmp/fewshot_ours.jsonl
    PYTHONPATH=. python benchmarks/bench_fewshot.py --summarize /tmp/*.jsonl
    PYTHONPATH=.:/work/benchpkgs/setfit python benchmarks/bench_fewshot.py --timing
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


def draw(y, shots: int, seed: int):
    """Indices of ``shots`` training texts a class, and of the rest."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y)
    train = np.concatenate(
        [rng.choice(np.flatnonzero(y == c), shots, replace=False) for c in np.unique(y)]
    )
    test = np.setdiff1d(np.arange(len(y)), train)
    return rng.permutation(train), test


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


def fit_zeroshot(X, y, seed):
    from sktransfer import ZeroShotTextClassifier

    return ZeroShotTextClassifier(labels=sorted(set(y)), model=MODEL).fit()


METHODS = {
    "setfit": fit_setfit,
    "frozen": fit_frozen,
    "fewshot": fit_fewshot,
    "zeroshot": fit_zeroshot,
}


def run(args):
    out = Path(args.out)
    for name in args.datasets.split(","):
        texts, labels = DATASETS[name]()
        texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
        for shots in [int(s) for s in args.shots.split(",")]:
            for seed in range(args.draws):
                train, test = draw(labels, shots, seed)
                for method in args.methods.split(","):
                    if method == "zeroshot" and shots != min(
                        int(s) for s in args.shots.split(",")
                    ):
                        continue  # no training text: once per draw is enough
                    start = time.perf_counter()
                    model = METHODS[method](
                        list(texts[train]), list(labels[train]), seed
                    )
                    fit_s = time.perf_counter() - start
                    pred = np.asarray(model.predict(list(texts[test])))
                    row = dict(
                        dataset=name,
                        shots=0 if method == "zeroshot" else shots,
                        draw=seed,
                        method=method,
                        accuracy=float(np.mean(pred == labels[test])),
                        fit_s=round(fit_s, 1),
                        n_classes=len(np.unique(labels)),
                        n_test=len(test),
                    )
                    if method == "setfit":
                        row["setfit_args"] = SETFIT_ARGS
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
            times[key].append(r["fit_s"])
    print("| data | labels/class | method | accuracy (mean ± sd) | draws | fit s |")
    print("|---|---|---|---|---|---|")
    for key in sorted(cells):
        acc = cells[key]
        sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(
            f"| {key[0]} | {key[1]} | {key[2]} | {statistics.mean(acc):.3f} ± "
            f"{sd:.3f} | {len(acc)} | {statistics.mean(times[key]):.0f} |"
        )


def timing(args):
    texts, labels = load_chatterbot()
    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels)
    train, _ = draw(labels, 8, 0)
    X, y = list(texts[train]), list(labels[train])
    result = {}
    for method in ["fewshot", "setfit", "fewshot"]:
        start = time.perf_counter()
        METHODS[method](X, y, 0)
        result.setdefault(method, []).append(time.perf_counter() - start)
        print(method, round(result[method][-1], 1), flush=True)
    ours = min(result["fewshot"])
    print(
        f"96 texts, 12 classes: fewshot {ours:.1f} s (best of 2), setfit "
        f"{result['setfit'][0]:.1f} s ({SETFIT_ARGS}); ratio "
        f"{ours / result['setfit'][0]:.3f}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="frozen,fewshot,zeroshot,setfit")
    parser.add_argument("--datasets", default="chatterbot,polarity")
    parser.add_argument("--shots", default="2,8,16")
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
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

"""LoRA against full fine-tuning, and head-only fits against a tuned probe (issue 23).

    PYTHONPATH=. python benchmarks/bench_lora.py [--part lora|probe|all] [--threads 2]
        [--kinds text,image] [--fits full,8]

LoRA part: FineTunedTextClassifier (all-MiniLM-L6-v2, 240 chatterbot
statements of 7 topics, tested on the other ~800) and FineTunedClassifier
(efficientnet_lite0 at 96 px, load_photo_patches: 20 crops of each of 6
photos, tested on crops from unseen parts of them), each fitted with the
defaults: full fine-tuning (``lora_rank=None``) and LoRA rank 8. Every fit runs
in a fresh child process, which reports its held-out accuracy, the fraction of
parameters trained, the mean epoch time and the peak resident memory added by
the fit (``ru_maxrss`` after the fit minus the RSS before it; on CUDA
``torch.cuda.max_memory_allocated``).

Probe part: head-only fits (``freeze_depth="all"``, defaults) of the four
estimators against the tuned probe a user would fit on the frozen features
(``PretrainedTextEmbeddings`` / ``PretrainedImageFeatures`` +
``LogisticRegressionCV`` / ``RidgeCV`` with their defaults), on the same rows.

Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import time
import warnings

import numpy as np


def text_data(seed=0, n_train=240):
    from sktransfer.datasets import load_chatterbot_topics

    texts, labels = load_chatterbot_topics()
    X, y = np.array(texts, dtype=object), np.array(labels)
    rows = np.random.RandomState(seed).permutation(len(y))
    return X[rows[:n_train]], y[rows[:n_train]], X[rows[n_train:]], y[rows[n_train:]]


def topic_scores(y):
    """A numeric target per topic (its rank in sorted order): text regression."""
    topics = sorted(set(y))
    return np.array([topics.index(t) for t in y], dtype=float)


def image_data():
    from sktransfer.datasets import load_photo_patches

    X, y = load_photo_patches(20, 64, split="train", random_state=0)
    X_test, y_test = load_photo_patches(15, 64, split="test", random_state=1)
    return X, y, X_test, y_test


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _child(kind: str, lora_rank, threads: int) -> dict:
    import torch

    from sktransfer import FineTunedClassifier, FineTunedTextClassifier

    torch.set_num_threads(threads)
    warnings.filterwarnings("ignore")
    if kind == "text":
        X, y, X_test, y_test = text_data()
        clf = FineTunedTextClassifier(lora_rank=lora_rank, random_state=0)
    else:
        X, y, X_test, y_test = image_data()
        clf = FineTunedClassifier("efficientnet_lite0", image_size=96,
                                  lora_rank=lora_rank, random_state=0)
    before = _rss_mb()
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**20
    return {
        "accuracy": clf.score(X_test, y_test),
        "trainable": clf.n_trainable_params_ / clf.n_params_,
        "n_trainable": clf.n_trainable_params_,
        "epoch_s": float(np.mean(clf.history_[:, "dur"])),
        "fit_s": seconds,
        "peak_mb": peak,
        "load": os.getloadavg(),  # 1, 5, 15 min, at the end of the fit
    }


def lora_part(threads: int, kinds=("text", "image"), ranks=(None, 8)) -> None:
    context = multiprocessing.get_context("spawn")
    print("| task | fit | accuracy | trainable | epoch (s) | peak RSS added (MB) "
          "| load 1/5/15 min |")
    print("|---|---|---|---|---|---|---|")
    for kind in kinds:
        rows = {}
        for rank in ranks:
            with context.Pool(1) as pool:
                rows[rank] = pool.apply(_child, (kind, rank, threads))
            r = rows[rank]
            name = "full fine-tuning" if rank is None else f"LoRA r={rank}"
            print(f"| {kind} | {name} | {r['accuracy']:.3f} | "
                  f"{100 * r['trainable']:.2f}% ({r['n_trainable']:,}) | "
                  f"{r['epoch_s']:.1f} | {r['peak_mb']:.0f} | "
                  f"{'/'.join(f'{v:.1f}' for v in r['load'])} |", flush=True)
        if None not in rows or 8 not in rows:
            continue
        full, lora = rows[None], rows[8]
        print(f"| {kind} | LoRA / full | {lora['accuracy'] - full['accuracy']:+.3f} "
              f"| | {lora['epoch_s'] / full['epoch_s']:.2f}x | "
              f"{lora['peak_mb'] / max(full['peak_mb'], 1):.2f}x | |", flush=True)


def probe_part(seeds) -> None:
    from sklearn.linear_model import LogisticRegressionCV, RidgeCV

    from sktransfer import (
        FineTunedClassifier,
        FineTunedRegressor,
        FineTunedTextClassifier,
        FineTunedTextRegressor,
        PretrainedImageFeatures,
        PretrainedTextEmbeddings,
    )
    from sktransfer.datasets import load_photo_zoom

    warnings.filterwarnings("ignore")
    print("| estimator | split | head-only (defaults) | tuned probe | difference "
          "| load 1/5/15 min |")
    print("|---|---|---|---|---|---|")

    def row(name, split, ours, probe):
        load = "/".join(f"{v:.1f}" for v in os.getloadavg())
        print(f"| {name} | {split} | {ours:.3f} | {probe:.3f} | {ours - probe:+.3f} "
              f"| {load} |", flush=True)

    embed = PretrainedTextEmbeddings()
    for seed in seeds:
        X, y, X_test, y_test = text_data(seed)
        F, F_test = embed.fit_transform(X), embed.transform(X_test)
        ours = FineTunedTextClassifier(freeze_depth="all").fit(X, y)
        probe = LogisticRegressionCV().fit(F, y)
        row("FineTunedTextClassifier (accuracy)", seed, ours.score(X_test, y_test),
            probe.score(F_test, y_test))
        t, t_test = topic_scores(y), topic_scores(y_test)
        ours = FineTunedTextRegressor(freeze_depth="all").fit(X, t)
        probe = RidgeCV().fit(F, t)
        row("FineTunedTextRegressor (R²)", seed, ours.score(X_test, t_test),
            probe.score(F_test, t_test))
    features = PretrainedImageFeatures("efficientnet_lite0")
    X, y, X_test, y_test = image_data()
    F, F_test = features.fit_transform(X), features.transform(X_test)
    ours = FineTunedClassifier("efficientnet_lite0", freeze_depth="all").fit(X, y)
    probe = LogisticRegressionCV().fit(F, y)
    row("FineTunedClassifier (accuracy)", "photos", ours.score(X_test, y_test),
        probe.score(F_test, y_test))
    X, z = load_photo_zoom(20, split="train")
    X_test, z_test = load_photo_zoom(10, split="test", random_state=1)
    F, F_test = features.transform(X), features.transform(X_test)
    ours = FineTunedRegressor("efficientnet_lite0", freeze_depth="all").fit(X, z)
    probe = RidgeCV().fit(F, z)
    row("FineTunedRegressor (R²)", "zoom", ours.score(X_test, z_test),
        probe.score(F_test, z_test))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["lora", "probe", "all"], default="all")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--kinds", default="text,image",
                        help="LoRA part: the tasks, e.g. image")
    parser.add_argument("--fits", default="full,8",
                        help="LoRA part: full and/or LoRA ranks, e.g. 8")
    args = parser.parse_args()
    if args.part in ("lora", "all"):
        ranks = [None if f == "full" else int(f) for f in args.fits.split(",")]
        lora_part(args.threads, args.kinds.split(","), ranks)
    if args.part in ("probe", "all"):
        import torch

        torch.set_num_threads(args.threads)
        probe_part(range(args.seeds))


if __name__ == "__main__":
    main()

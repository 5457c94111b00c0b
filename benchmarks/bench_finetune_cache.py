"""A grid search over the learning rate with and without the frozen-prefix cache.

FT3 ``GridSearchCV(FineTunedClassifier(freeze_depth=-2, max_epochs=5,
    augment=None), {"lr": [two values]}, cv=3)`` with ``cache=True`` /
    the same with ``cache=False``; one process, the two searches interleaved,
    best of ``--repeats``; the cache is emptied before each cached search, so
    each search computes the frozen blocks once per image itself.
    Goal <= 0.4, same scores within noise.

FT3-text (``--text``) the same search with ``FineTunedTextClassifier``
    (the bundled all-MiniLM-L6-v2, ``--freeze-depth``, ``max_length=64``) on
    ``--n`` chatterbot statements of two topics: the frozen layers' hidden
    states cached per real token.

    python benchmarks/bench_finetune_cache.py --n 60 --size 160
    python benchmarks/bench_finetune_cache.py --text --n 120
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.finetune import FineTunedClassifier, FineTunedTextClassifier


def search(X, y, args, cache):
    clear_memory_cache()
    if args.text:
        clf = FineTunedTextClassifier(freeze_depth=args.freeze_depth,
                                      max_epochs=args.epochs,
                                      max_length=64, batch_size=16, cache=cache,
                                      random_state=0)
    else:
        clf = FineTunedClassifier("efficientnet_lite0",
                                  freeze_depth=args.freeze_depth,
                                  max_epochs=args.epochs, image_size=args.size,
                                  batch_size=16, augment=None, cache=cache,
                                  random_state=0)
    start, cpu = time.perf_counter(), time.process_time()
    grid = GridSearchCV(clf, {"lr": [1e-3, 3e-3]}, cv=3).fit(X, y)
    return (time.perf_counter() - start, time.process_time() - cpu,
            grid.cv_results_["mean_test_score"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--freeze-depth", type=int, default=-2)
    parser.add_argument("--text", action="store_true",
                        help="FineTunedTextClassifier on chatterbot statements")
    args = parser.parse_args(argv)
    if args.text:
        texts, labels = load_chatterbot_topics(["ai", "coding"])
        rows = np.random.default_rng(0).permutation(len(texts))[:args.n]
        X, y = [texts[i] for i in rows], [labels[i] for i in rows]
        what = f"all-MiniLM-L6-v2, {len(X)} chatterbot statements, max_length=64"
    else:
        X, y = load_photo_patches(max(2, args.n // 6), args.size, random_state=0,
                                  classes=("brick", "coffee", "chelsea",
                                           "astronaut", "rocket", "camera"))
        what = f"efficientnet_lite0, {len(X)} photo patches of {args.size}px"
    print(f"{what}, freeze_depth={args.freeze_depth}, {args.epochs} epochs, "
          f"lr in [1e-3, 3e-3], cv=3, torch threads {torch.get_num_threads()}",
          flush=True)
    with_cache, without, cpu_with, cpu_without = [], [], [], []
    for _ in range(args.repeats):
        seconds, cpu, cached_scores = search(X, y, args, True)
        with_cache.append(seconds)
        cpu_with.append(cpu)
        seconds, cpu, plain_scores = search(X, y, args, False)
        without.append(seconds)
        cpu_without.append(cpu)
        print(f"  cache=True {with_cache[-1]:.1f}s ({cpu_with[-1]:.1f} CPU s) "
              f"scores {cached_scores.round(4)}; cache=False {without[-1]:.1f}s "
              f"({cpu_without[-1]:.1f} CPU s) scores {plain_scores.round(4)}",
              flush=True)
    row = "FT3-text" if args.text else "FT3"
    print(f"{row} GridSearchCV cache=True / cache=False: {min(with_cache):.1f}s / "
          f"{min(without):.1f}s = {min(with_cache) / min(without):.3f} (best of "
          f"{args.repeats}; goal <= 0.4); largest score difference "
          f"{np.abs(cached_scores - plain_scores).max():.4f}; CPU seconds "
          f"{min(cpu_with):.1f} / {min(cpu_without):.1f} = "
          f"{min(cpu_with) / min(cpu_without):.3f}")


if __name__ == "__main__":
    main()

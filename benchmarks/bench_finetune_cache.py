"""A grid search over the learning rate with and without the frozen-prefix cache.

FT3 ``GridSearchCV(FineTunedClassifier(freeze_depth=-2, max_epochs=5,
    augment=None), {"lr": [two values]}, cv=3)`` with ``cache=True`` /
    the same with ``cache=False``; one process, the two searches interleaved,
    best of ``--repeats``; the cache is emptied before each cached search, so
    each search computes the frozen blocks once per image itself.
    Goal <= 0.4, same scores within noise.

    python benchmarks/bench_finetune_cache.py --n 60 --size 160
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import GridSearchCV

from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_photo_patches
from sktransfer.finetune import FineTunedClassifier


def search(X, y, args, cache):
    clear_memory_cache()
    clf = FineTunedClassifier("efficientnet_lite0", freeze_depth=-2,
                              max_epochs=args.epochs, image_size=args.size,
                              batch_size=16, augment=None, cache=cache,
                              random_state=0)
    start = time.perf_counter()
    grid = GridSearchCV(clf, {"lr": [1e-3, 3e-3]}, cv=3).fit(X, y)
    return time.perf_counter() - start, grid.cv_results_["mean_test_score"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    X, y = load_photo_patches(max(2, args.n // 6), args.size, random_state=0,
                              classes=("brick", "coffee", "chelsea", "astronaut",
                                       "rocket", "camera"))
    print(f"efficientnet_lite0, {len(X)} photo patches of {args.size}px, "
          f"freeze_depth=-2, {args.epochs} epochs, lr in [1e-3, 3e-3], cv=3, "
          f"torch threads {torch.get_num_threads()}", flush=True)
    with_cache, without = [], []
    for _ in range(args.repeats):
        seconds, cached_scores = search(X, y, args, True)
        with_cache.append(seconds)
        seconds, plain_scores = search(X, y, args, False)
        without.append(seconds)
        print(f"  cache=True {with_cache[-1]:.1f}s scores {cached_scores.round(4)}"
              f"; cache=False {without[-1]:.1f}s scores {plain_scores.round(4)}",
              flush=True)
    print(f"FT3 GridSearchCV cache=True / cache=False: {min(with_cache):.1f}s / "
          f"{min(without):.1f}s = {min(with_cache) / min(without):.3f} (best of "
          f"{args.repeats}; goal <= 0.4); largest score difference "
          f"{np.abs(cached_scores - plain_scores).max():.4f}")


if __name__ == "__main__":
    main()

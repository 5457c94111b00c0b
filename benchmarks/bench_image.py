"""Image feature benchmarks, printed as ratios measured in one process.

P1  transform throughput / a hand-written torch.inference_mode loop over the
    same module, preprocessing, batch size and memory format   (target >= 0.95)
P2  GridSearchCV(Pipeline[features, LogisticRegression], 3 C, 5 folds) wall
    time with the per-sample cache / without                   (target <= 0.2)
P6  peak RSS transforming N image files, N = 2,000 ... 20,000
    (each N in a fresh subprocess)                    (target <= 1.5 GB, flat)

    python benchmarks/bench_image.py                 # P1 and P2
    python benchmarks/bench_image.py --p6 2000 20000  # P6
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from PIL import Image

from sktransfer import PretrainedImageFeatures
from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_photo_patches


def hand_written(backbone, images, batch_size):
    """The loop a PyTorch user would write: preprocess, batch, forward."""
    out = []
    module = backbone.module
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = torch.stack(
                [backbone.preprocess(Image.fromarray(a).convert("RGB")) for a in chunk]
            )
            x = x.contiguous(memory_format=torch.channels_last)
            out.append(module(x).numpy())
    return np.concatenate(out)


def p1(model, n, batch_size, repeats):
    images, _ = load_photo_patches(n // 8 + 1, 96, "train")
    images = images[:n]
    features = PretrainedImageFeatures(model, batch_size=batch_size, cache=False).fit(
        images[:1]
    )
    ours, base = [], []
    for i in range(repeats):  # interleaved, alternating which goes first
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            t = time.perf_counter()
            if which == 0:
                a = features.transform(images)
            else:
                b = hand_written(features.backbone_, images, batch_size)
            (ours if which == 0 else base).append(time.perf_counter() - t)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    median = statistics.median(x / y for x, y in zip(base, ours, strict=True))
    print(
        f"P1 {model} n={n} batch={batch_size}: sktransfer {n / min(ours):.1f} "
        f"img/s, hand-written {n / min(base):.1f} img/s (best of {repeats}); "
        f"ratio best {min(base) / min(ours):.3f}, median of paired runs "
        f"{median:.3f} (target >= 0.95)"
    )


def p2(model, n_per_class):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    X, y = load_photo_patches(n_per_class, 64, "train")
    times = {}
    for cache in (True, False):
        clear_memory_cache()
        search = GridSearchCV(
            make_pipeline(
                PretrainedImageFeatures(model, cache=cache),
                LogisticRegression(max_iter=1000),
            ),
            {"logisticregression__C": [0.1, 1.0, 10.0]},
            cv=5,
        )
        t = time.perf_counter()
        search.fit(X, y)
        times[cache] = time.perf_counter() - t
    print(
        f"P2 {model} GridSearchCV 3 C x 5 folds, n={len(X)}: cached "
        f"{times[True]:.1f}s, uncached {times[False]:.1f}s, ratio "
        f"{times[True] / times[False]:.3f} (target <= 0.2)"
    )


def p6_child(n, model):
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(n):
            path = os.path.join(tmp, f"{i}.png")
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(path)
            paths.append(path)
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        features = PretrainedImageFeatures(
            model, weights=None, batch_size=64, cache=False
        ).fit(paths[:1])
        t = time.perf_counter()
        out = features.transform(paths)
        seconds = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"{n} {peak / 1024:.0f} {base / 1024:.0f} {seconds:.1f} {out.shape}")


def p6(sizes, model):
    for n in sizes:
        line = subprocess.run(
            [sys.executable, __file__, "--p6-child", str(n), "--model", model],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        print(
            f"P6 {model} n={line[0]} files: peak RSS {line[1]} MB (before the "
            f"transform {line[2]} MB), {line[3]}s (target <= 1500 MB, flat in n)"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--p2-per-class", type=int, default=12)
    parser.add_argument("--p6", type=int, nargs="*")
    parser.add_argument("--p6-child", type=int)
    args = parser.parse_args()
    if args.p6_child:
        return p6_child(args.p6_child, args.model)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    if args.p6:
        return p6(args.p6, "mobilenet_v3_small")
    p1(args.model, args.n, args.batch_size, args.repeats)
    p2(args.model, args.p2_per_class)


if __name__ == "__main__":
    main()

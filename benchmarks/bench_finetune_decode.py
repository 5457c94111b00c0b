"""Fine-tuning on JPEG paths vs on pre-decoded arrays (decode once per fit).

FT1 ``FineTunedClassifier.fit(paths)`` / the same fit on the same photos
    pre-decoded to arrays (shorter side 256 px), one process, runs
    interleaved, best of ``--repeats`` (and the median of the paired runs'
    ratios, which a machine whose speed drifts during the runs moves less);
    on 2.5-MP (1936x1296) and 12-MP (4032x3024) JPEGs. Goal <= 1.15 (1.61
    before the pixel store).
FT1-grid a ``GridSearchCV`` over ``lr`` (2 x 3 folds + refit) on 12-MP
    paths with the default augmentation, ``cache=True`` (the pixels decoded
    from each file kept for the next fit) / ``cache=False``.
FT2 peak RSS of a 1-epoch fit on N and 4N 2.5-MP paths with
    ``SKTRANSFER_PIXEL_CACHE_MB=8`` (the pixels past 8 MB go to a memory-mapped
    file), each in a fresh subprocess. Goal: flat in N.

The JPEGs are made from scikit-image photos upscaled with PIL plus light noise
(no real camera photos ship with the package), in a temporary directory.

    python benchmarks/bench_finetune_decode.py                 # F1
    python benchmarks/bench_finetune_decode.py --rss 30 120    # F2
    python benchmarks/bench_finetune_decode.py --grid          # FT1-grid
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from bench_decode import make_phone_photos  # noqa: E402 - benchmarks/ is on sys.path
from PIL import Image

from sktransfer.cache import clear_memory_cache
from sktransfer.finetune import FineTunedClassifier

SIZES = {"2.5MP": (1936, 1296), "12MP": (4032, 3024)}


def classifier(args):
    return FineTunedClassifier(
        "efficientnet_lite0", freeze_depth=-2, max_epochs=args.epochs,
        image_size=args.size, batch_size=16, random_state=0)


def predecoded(paths, side=256):
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            image.draft("RGB", (side, side))
            image = image.convert("RGB")
            scale = side / min(image.size)
            size = (round(image.size[0] * scale), round(image.size[1] * scale))
            arrays.append(np.asarray(image.resize(size, Image.BICUBIC)))
    return arrays


def timed_fit(args, X, y):
    clear_memory_cache()  # every fit decodes: no pixels kept from the last one
    start = time.perf_counter()
    classifier(args).fit(X, y)
    return time.perf_counter() - start


def grid(args):
    """FT1-grid: a ``GridSearchCV`` over ``lr`` (2 values x 3 folds + the
    refit, default augmentation, so no frozen-block cache) on 12-MP paths,
    ``cache=True`` (decoded pixels kept between the fits) / ``cache=False``."""
    from sklearn.model_selection import GridSearchCV

    with tempfile.TemporaryDirectory() as folder:
        paths = make_phone_photos(folder, args.n, SIZES["12MP"])
        y = np.arange(args.n) % 3
        times = {True: [], False: []}
        scores = {}
        for _ in range(args.repeats):
            for cache in (False, True):
                clear_memory_cache()
                search = GridSearchCV(classifier(args).set_params(cache=cache),
                                      {"lr": [1e-3, 3e-4]}, cv=3)
                start = time.perf_counter()
                search.fit(paths, y)
                times[cache].append(time.perf_counter() - start)
                scores[cache] = search.cv_results_["mean_test_score"].round(4)
        print(f"FT1-grid 12MP, {args.n} paths, GridSearchCV lr x 3 folds + refit, "
              f"{args.epochs} epochs: cache=True {min(times[True]):.1f}s, "
              f"cache=False {min(times[False]):.1f}s; ratio "
              f"{min(times[True]) / min(times[False]):.3f} (best of {args.repeats}; "
              f"all {times}); scores {scores[True].tolist()} / "
              f"{scores[False].tolist()}", flush=True)


def ratio(args, label, size):
    with tempfile.TemporaryDirectory() as folder:
        paths = make_phone_photos(folder, args.n, size)
        y = np.arange(args.n) % 3
        arrays = predecoded(paths)
        timed_fit(args, arrays[:8], y[:8])  # warm-up: model load, allocator
        on_paths, on_arrays = [], []
        for _ in range(args.repeats):
            on_paths.append(timed_fit(args, paths, y))
            on_arrays.append(timed_fit(args, arrays, y))
        paired = np.median(np.divide(on_paths, on_arrays))
        print(f"FT1 {label}: fit on {args.n} paths {min(on_paths):.2f}s, on "
              f"pre-decoded 256-px arrays {min(on_arrays):.2f}s; ratio "
              f"{min(on_paths) / min(on_arrays):.3f} (best of {args.repeats}; "
              f"median of the paired runs {paired:.3f}; "
              f"all: paths {[round(t, 2) for t in on_paths]}, arrays "
              f"{[round(t, 2) for t in on_arrays]}; goal <= 1.15)", flush=True)


def child(args):
    """One fit on the first ``args.child`` photos of ``args.folder``; prints
    the peak RSS in MB before and after the fit."""
    paths = sorted(os.path.join(args.folder, name)
                   for name in os.listdir(args.folder))[:args.child]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    args.epochs = 1
    classifier(args).fit(paths, np.arange(len(paths)) % 3)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{before:.0f} {peak:.0f}")


def rss(args):
    env = {**os.environ, "SKTRANSFER_PIXEL_CACHE_MB": "8"}
    with tempfile.TemporaryDirectory() as folder:
        make_phone_photos(folder, max(args.rss), SIZES["2.5MP"])  # made here
        for n in args.rss:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), "--folder", folder,
                 "--size", str(args.size)],
                env=env, capture_output=True, text=True, check=True).stdout.split()
            print(f"FT2 n={n} 2.5-MP paths, 1 epoch, pixels past 8 MB on disk: "
                  f"peak RSS {out[1]} MB (before the fit {out[0]} MB)", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--size", type=int, default=160, help="image_size")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--rss", type=int, nargs="+")
    parser.add_argument("--child", type=int)
    parser.add_argument("--folder")
    parser.add_argument("--grid", action="store_true",
                        help="FT1-grid: decoded pixels kept across a search")
    args = parser.parse_args(argv)
    if args.child:
        return child(args)
    if args.rss:
        return rss(args)
    if args.grid:
        return grid(args)
    print(f"efficientnet_lite0, freeze_depth=-2, {args.epochs} epochs, image_size "
          f"{args.size}, default augmentation, torch threads "
          f"{torch.get_num_threads()}", flush=True)
    for label in args.sizes:
        ratio(args, label, SIZES[label])
    return None


if __name__ == "__main__":
    main()

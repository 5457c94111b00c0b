"""Below how many inputs does ``sktransfer embed --workers 2`` lose to one worker?

For N photos (2.5 MP JPEGs made from real photo patches), the wall time of the
whole command with ``--workers 1`` and ``--workers 2`` (each a fresh process,
default partition size), and of an in-process ``transform`` (model load
included) as the no-cluster reference. A straight line ``T(N) = a + b N`` fitted
to each gives the start-up cost ``a`` and the per-input cost ``b``; the crossover
is where the two-worker line drops below the one-worker line (and below the
in-process one). ``LOCAL_CLUSTER_CROSSOVER`` in ``sktransfer/cli/embed.py``
is set from it.

    python benchmarks/bench_embed_crossover.py              # N = 16 64 192
    python benchmarks/bench_embed_crossover.py --n 16 128

Check ``uptime`` first: the ratios need two idle cores.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sktransfer.datasets import load_photo_patches


def make_folder(root: Path, n: int) -> None:
    X, _ = load_photo_patches(-(-n // 3), 128, "train", random_state=0,
                              classes=("brick", "grass", "coffee"))
    for i, image in enumerate(X[:n]):
        big = Image.fromarray(image).resize((1920, 1280), Image.BICUBIC)
        big.save(root / f"{i:05d}.jpg", quality=90)


def command_seconds(folder: Path, workers: int) -> float:
    out = tempfile.mkdtemp(prefix="bench-crossover-")
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sktransfer.cli", "embed", str(folder),
                        "--out", out + "/o", "--workers", str(workers),
                        "--no-progress"], check=True, capture_output=True)
        return time.perf_counter() - started
    finally:
        shutil.rmtree(out, ignore_errors=True)


def in_process_seconds(folder: Path) -> float:
    code = ("import glob, sys, torch; torch.set_num_threads(1);"
            "from sktransfer import PretrainedImageFeatures as P;"
            "paths = sorted(glob.glob(sys.argv[1] + '/*.jpg'));"
            "P('efficientnet_lite0', cache=False).fit(paths).transform(paths)")
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[16, 64, 192])
    args = parser.parse_args()
    rows = []
    for n in args.n:
        with tempfile.TemporaryDirectory(prefix="bench-crossover-") as tmp:
            folder = Path(tmp)
            make_folder(folder, n)
            times = (in_process_seconds(folder), command_seconds(folder, 1),
                     command_seconds(folder, 2))
        rows.append((n, *times))
        print(f"N={n:5d}  in-process {times[0]:6.1f} s  --workers 1 {times[1]:6.1f} s"
              f"  --workers 2 {times[2]:6.1f} s  2/1 {times[2] / times[1]:.2f}",
              flush=True)
    n = np.array([r[0] for r in rows], dtype=float)
    fits = [np.polyfit(n, [r[i] for r in rows], 1) for i in (1, 2, 3)]
    for name, (b, a) in zip(("in-process", "--workers 1", "--workers 2"), fits,
                            strict=True):
        print(f"{name:12s} start-up {a:5.1f} s, {1000 * b:6.1f} ms per input")
    (b1, a1), (b2, a2) = fits[1], fits[2]
    cross = (a2 - a1) / (b1 - b2) if b1 > b2 else float("inf")
    print(f"--workers 2 beats --workers 1 above N = {cross:.0f}")


if __name__ == "__main__":
    main()

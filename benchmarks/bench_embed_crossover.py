"""Below how many inputs does ``sktransfer embed --workers 2`` lose to one worker?

For N photos (2.5 MP JPEGs made from real photo patches), the wall time of the
whole command (a fresh process, model load included, default partition size)
with ``--workers 1`` (in the command's own process, no cluster) and
``--workers 2`` (a LocalCluster of two one-thread workers). A straight line
``T(N) = a + b N`` fitted to each gives the start-up cost ``a`` and the
per-input cost ``b``; the crossover is where the two-worker line drops below
the in-process one. ``LOCAL_CLUSTER_CROSSOVER`` in ``sktransfer/cli/embed.py``
is set from it.

    python benchmarks/bench_embed_crossover.py              # N = 64 256 1024 2048
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[64, 256, 1024, 2048])
    args = parser.parse_args()
    rows = []
    for n in args.n:
        with tempfile.TemporaryDirectory(prefix="bench-crossover-") as tmp:
            folder = Path(tmp)
            make_folder(folder, n)
            times = (command_seconds(folder, 1), command_seconds(folder, 2))
        rows.append((n, *times))
        print(f"N={n:5d}  --workers 1 (in-process) {times[0]:6.1f} s  --workers 2 "
              f"{times[1]:6.1f} s  2/1 {times[1] / times[0]:.2f}", flush=True)
    n = np.array([r[0] for r in rows], dtype=float)
    fits = [np.polyfit(n, [r[i] for r in rows], 1) for i in (1, 2)]
    for name, (b, a) in zip(("--workers 1", "--workers 2"), fits, strict=True):
        print(f"{name:12s} start-up {a:5.1f} s, {1000 * b:6.1f} ms per input")
    (b1, a1), (b2, a2) = fits
    cross = (a2 - a1) / (b1 - b2) if b1 > b2 else float("inf")
    print(f"--workers 2 beats --workers 1 above N = {cross:.0f}")


if __name__ == "__main__":
    main()

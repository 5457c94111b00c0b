"""``sktransfer embed`` on a LocalCluster: scaling, per-worker speed, memory.

D1  wall time of ``sktransfer embed FOLDER --workers 2`` / ``--workers 1``
    (one thread per worker, same folder, whole command)       (target <= 0.65)
D2  per-worker throughput / in-process ``transform`` on one torch thread
    (the command's embedding phase; models loaded before it)   (target >= 0.9)
    and, as the machine's own ceiling, the same ``transform`` run in two
    plain processes at once (no Dask) / one alone
D3  peak RSS of each worker process for N and 2N inputs        (flat in N)

    python benchmarks/bench_embed.py                  # N = 2000, then 4000 for D3
    python benchmarks/bench_embed.py --n 400 --partition-size 50   # quicker

Each command runs in a fresh subprocess; worker RSS is sampled every 0.2 s
through psutil on the command's child processes. Check ``uptime`` first: the
ratios need two idle cores.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import torch
from PIL import Image

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import PHOTO_CLASSES, load_photo_patches

_SPEED = re.compile(r"(\d+) inputs in ([\d.]+) s")


def make_folder(root: Path, n: int, size: int) -> list[str]:
    """``n`` real photo crops saved as JPEG files under ``root``."""
    per_class = -(-n // len(PHOTO_CLASSES))
    X, y = load_photo_patches(per_class, size, "train", random_state=0)
    paths = []
    for i, (image, label) in enumerate(zip(X[:n], y[:n], strict=True)):
        (root / label).mkdir(parents=True, exist_ok=True)
        paths.append(str(root / label / f"{i:06d}.jpg"))
        Image.fromarray(image).save(paths[-1], quality=90)
    return sorted(paths)


def run_command(folder: Path, workers: int, args) -> dict:
    """Run the command once; its wall time, embedding time and worker RSS."""
    scratch = tempfile.mkdtemp(prefix="bench-embed-")
    try:
        return _run_command(folder, workers, args, scratch + "/out.parquet")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_command(folder: Path, workers: int, args, out: str) -> dict:
    command = [sys.executable, "-m", "sktransfer.cli", "embed", str(folder),
               "--out", out, "--workers", str(workers), "--model", args.model,
               "--partition-size", str(args.partition_size), "--no-progress"]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    parent, peaks = psutil.Process(process.pid), {}
    while process.poll() is None:
        try:
            for child in parent.children(recursive=True):
                with child.oneshot():
                    if "python" in child.name():
                        rss = child.memory_info().rss
                        peaks[child.pid] = max(peaks.get(child.pid, 0), rss)
        except psutil.Error:
            pass
        time.sleep(0.2)
    wall = time.perf_counter() - start
    stdout = process.stdout.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode})")
    n, seconds = map(float, _SPEED.search(stdout).groups())
    workers_rss = sorted(peaks.values(), reverse=True)[:workers]
    return {"wall": wall, "embed": seconds, "rate": n / seconds,
            "rss_mb": [rss / 2**20 for rss in workers_rss]}


def in_process_rate(paths: list[str], model: str) -> float:
    """Inputs per second of ``transform`` here, on one torch thread (one core:
    with one thread, decoding runs in the calling thread, as in a worker)."""
    torch.set_num_threads(1)
    features = PretrainedImageFeatures(model, cache=False).fit(paths[:1])
    features.transform(paths[:32])  # warm up
    start = time.perf_counter()
    features.transform(paths)
    return len(paths) / (time.perf_counter() - start)


# What a Dask worker's nanny sets: every thread pool to one thread.
WORKER_ENV = {name: "1" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                     "OPENBLAS_NUM_THREADS")}


def concurrent_rates(folder: Path, model: str, k: int, env=None) -> list[float]:
    """In-process ``transform`` rates of ``k`` plain processes started together
    (no Dask): what ``k`` one-core workers could at best reach here."""
    start_at = time.time() + 40  # after every child has loaded the model
    command = [sys.executable, __file__, "--child-rate", str(folder),
               "--model", model, "--start-at", str(start_at)]
    children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, **(env or {})})
                for _ in range(k)]
    return [float(child.communicate()[0].split()[-1]) for child in children]


def child_rate(folder: str, model: str, start_at: float) -> None:
    paths = sorted(str(p) for p in Path(folder).rglob("*.jpg"))
    torch.set_num_threads(1)
    features = PretrainedImageFeatures(model, cache=False).fit(paths[:1])
    features.transform(paths[:32])  # warm up
    time.sleep(max(0.0, start_at - time.time()))
    start = time.perf_counter()
    features.transform(paths)
    print(len(paths) / (time.perf_counter() - start))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--partition-size", type=int, default=250)
    parser.add_argument("--child-rate", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rate:
        return child_rate(args.child_rate, args.model, args.start_at)
    print(f"load average {os.getloadavg()[0]:.2f} (ratios need < 2.5)")
    with tempfile.TemporaryDirectory() as tmp:
        small = make_folder(Path(tmp) / "n", args.n, args.size)
        make_folder(Path(tmp) / "2n", 2 * args.n, args.size)
        baseline = in_process_rate(small, args.model)
        pair = concurrent_rates(Path(tmp) / "n", args.model, 2)
        (alone,) = concurrent_rates(Path(tmp) / "n", args.model, 1, WORKER_ENV)
        one = run_command(Path(tmp) / "n", 1, args)
        two = run_command(Path(tmp) / "n", 2, args)
        two_large = run_command(Path(tmp) / "2n", 2, args)
    print(f"N={args.n} {args.model} {args.size}px JPEGs, partition size "
          f"{args.partition_size}")
    print(f"D1 wall 2 workers / 1 worker: {two['wall']:.1f} / {one['wall']:.1f} s "
          f"= {two['wall'] / one['wall']:.3f}   (embedding phase "
          f"{two['embed'] / one['embed']:.3f})   target <= 0.65")
    print(f"D2 per-worker throughput / in-process transform: 1 worker "
          f"{one['rate'] / baseline:.3f}, 2 workers {two['rate'] / 2 / baseline:.3f}"
          f"   ({baseline:.1f} inputs/s in process)   target >= 0.9")
    print(f"    the same with a worker's environment (OMP_NUM_THREADS=1...): "
          f"{alone:.1f} inputs/s in process; 1 worker {one['rate'] / alone:.3f}, "
          f"2 workers {two['rate'] / 2 / alone:.3f}")
    print(f"    ceiling: two plain processes at once, each / one alone: "
          f"{[round(rate / baseline, 3) for rate in pair]}; 2 workers / that: "
          f"{two['rate'] / sum(pair):.3f}")
    print(f"D3 peak worker RSS (MB), 2 workers: N={args.n} "
          f"{[round(m) for m in two['rss_mb']]}, N={2 * args.n} "
          f"{[round(m) for m in two_large['rss_mb']]}   target: flat in N")


if __name__ == "__main__":
    main()

"""Persistent cache I/O: validated ``.emb`` entries vs a bare ``np.save`` loop.

Writes and reads N entries of D float32 values into a fresh directory with
``EmbeddingCache`` (fan-out folders, unique temp file + rename, digest checked
on read) and with the hand-written baseline (``np.save`` to a temp file +
``os.replace``; ``np.load`` back, nothing validated). Prints ratios
(sktransfer ÷ baseline; < 1 is faster), measured interleaved in one process.

    python benchmarks/bench_cache.py [N] [D]
"""

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sktransfer.cache import EmbeddingCache, clear_memory_cache, hash_parts


def _baseline(directory: Path, keys, vectors):
    start = time.perf_counter()
    for key, vector in zip(keys, vectors, strict=True):
        folder = directory / key[:2]
        folder.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, vector)
        os.replace(tmp, folder / f"{key}.npy")
    write = time.perf_counter() - start
    start = time.perf_counter()
    for key in keys:
        np.load(directory / key[:2] / f"{key}.npy")
    return write, time.perf_counter() - start


def _sktransfer(directory: Path, keys, vectors):
    cache = EmbeddingCache("bench", vectors.shape[1], directory)
    start = time.perf_counter()
    cache.store(keys, vectors)
    write = time.perf_counter() - start
    clear_memory_cache()
    out = np.empty_like(vectors)
    start = time.perf_counter()
    missing, _ = EmbeddingCache("bench", vectors.shape[1], directory).fill(keys, out)
    read = time.perf_counter() - start
    assert not missing and np.array_equal(out, vectors)
    clear_memory_cache()
    return write, read


def main(n=5000, d=1280, repeats=3):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((n, d)).astype(np.float32)
    keys = [hash_parts("bench", i) for i in range(n)]
    ratios = {"write": [], "read": []}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            base = _baseline(Path(a), keys, vectors)
            ours = _sktransfer(Path(b), keys, vectors)
        for name, mine, theirs in zip(("write", "read"), ours, base, strict=True):
            ratios[name].append(mine / theirs)
            print(
                f"{name}: sktransfer {n / mine:8.0f} entries/s, "
                f"np.save/np.load {n / theirs:8.0f} entries/s"
            )
    for name, values in ratios.items():
        print(
            f"{name} time ratio (sktransfer ÷ baseline), N={n} D={d}: "
            f"best {min(values):.2f}, median {np.median(values):.2f}"
        )


if __name__ == "__main__":
    main(*map(int, sys.argv[1:3]))

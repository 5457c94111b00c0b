"""Device and precision: the one place that decides where and how nets run."""

from __future__ import annotations

import contextlib
import os

import torch

from sktransfer.exceptions import ParameterError

__all__ = ["autocast", "decode_threads", "one_blas_thread", "overlap_decoding",
           "resolve_device"]


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` picks CUDA when present, then Apple MPS, else the CPU."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(
            f"device={device!r} is not a device: use 'auto', 'cpu', 'cuda' or "
            f"'cuda:N'"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError(
            f"device={device!r} was asked for but CUDA is not available"
        )
    return resolved


def amp_dtype(device: torch.device):
    """bf16 where the GPU supports it, else fp16; None (fp32) off CUDA."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device):
    """Mixed precision on CUDA; a no-op elsewhere."""
    dtype = amp_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def decode_threads(device: torch.device) -> int:
    """Threads that decode images ahead of the forward pass; 0: the caller's.

    On the CPU the decoders share the cores with the network, so they follow
    the same thread budget (``torch.set_num_threads``; ``OMP_NUM_THREADS=1``
    in Dask workers, which is how ``--workers N`` means N cores): up to 8
    threads, and none beside the caller with a budget of one thread, so that
    one-thread workers never oversubscribe the machine. On a GPU the CPU does
    nothing but decode: up to 8 threads, one per core.
    """
    if device.type == "cuda":
        return min(8, os.cpu_count() or 1)
    budget = torch.get_num_threads()
    return 0 if budget <= 1 else min(8, budget)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform
    reports it, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def overlap_decoding(device: torch.device) -> bool:
    """Whether a fit decodes its photos while the first epoch trains (else it
    decodes them all first, on every decoding thread, then trains).

    Overlapping pays where decoding has a core of its own: on a GPU (the CPU
    only prepares batches) and where torch's thread budget leaves cores free.
    Where torch's threads take every core, decoders beside them slow both:
    a preempted compute thread stalls the others at each operation's barrier.
    Measured on 2 cores (FT1, 60 12-MP photos, ``benchmarks/RESULTS.md``): the
    overlapped fit took 1.26-1.37x the fit on pre-decoded pixels, decoding
    first 1.11-1.22x.
    """
    if device.type != "cpu":
        return True
    return usable_cores() > torch.get_num_threads()


def one_blas_thread():
    """Run the small dense solvers inside a fit (a linear probe or head on
    embeddings: rows x a few hundred to a few thousand columns) on one BLAS
    thread.

    Their operations are too small to share: OpenBLAS's threads spin and wait
    on each other, and on a busy machine the wait dominates. A
    ``LogisticRegressionCV`` on 144 x 1280 embeddings took 10.7 s on 2 BLAS
    threads and 0.55 s on one (2 cores, benchmarks/bench_blas_threads.py);
    on a 16-core GPU machine a head-only fine-tune's probe took most of a
    46 s fit (benchmarks/RESULTS.md, P4).
    torch's own threads are not affected.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")

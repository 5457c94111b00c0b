"""Device and precision: the one place that decides where and how nets run."""

from __future__ import annotations

import contextlib
import os

import torch

from sktransfer.exceptions import ParameterError

__all__ = ["autocast", "decode_threads", "resolve_device"]


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

"""Device and precision: the one place that decides where and how nets run."""

from __future__ import annotations

import contextlib

import torch

__all__ = ["autocast", "resolve_device"]


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
        raise ValueError(
            f"device={device!r} is not a device: use 'auto', 'cpu', 'cuda' or "
            f"'cuda:N'"
        ) from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
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

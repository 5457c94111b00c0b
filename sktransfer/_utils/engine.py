"""The training engine's shared parts: seeding, freezing, optimisers, loss
bookkeeping without per-step host syncs, and batch prefetching.

Two loops train networks in this package: skorch's, behind the fine-tuners
(``sktransfer.finetune._net.FineTuneNet``), and the contrastive loop of
``FewShotTextClassifier`` (``sktransfer.fewshot._contrastive``). Both take
these parts from here, so that seeding, freezing, the optimiser and the
reading of losses behave the same in both:

``seeded(seed, device)``
    Seed torch's generators for a fit, restoring the caller's state after it.
``freeze(blocks, n_frozen)``
    Freeze the first blocks (``requires_grad=False``, eval mode).
``make_optimizer(cls, params, **options)``
    ``cls`` with its fused kernel where torch has one for the device.
``LossMeter``
    Losses stay on the device while an epoch runs (``loss.item()`` after every
    step makes the host wait for the device, so the next batch is not prepared
    while the device computes); they are read in one transfer per epoch.
``training_precision(device, mixed)``
    The autocast dtype and memory format a training run uses on ``device``;
    ``autocast_for(device, dtype)`` enters that autocast.
``to_device(batch, device)``
    A tensor or a dict of tensors (token batches) moved to the device.
``prefetch(iterable, ahead)``
    Batches produced by a background thread while the caller's step runs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator

import torch

from sktransfer._utils.device import amp_dtype
from sktransfer.backbones import keep_frozen_in_eval, set_frozen

__all__ = [
    "LossMeter",
    "autocast_for",
    "freeze",
    "make_optimizer",
    "prefetch",
    "seeded",
    "to_device",
    "training_precision",
]


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Seed torch (CPU and, on CUDA, the device) for the block; the caller's
    generator states are restored afterwards."""
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def freeze(blocks, n_frozen: int) -> None:
    """The first ``n_frozen`` blocks frozen and in eval mode, the others
    trainable."""
    set_frozen(blocks, n_frozen)
    keep_frozen_in_eval(blocks, n_frozen)


def make_optimizer(cls, params, **options) -> torch.optim.Optimizer:
    """``cls(params, fused=True, **options)`` where torch has a fused kernel
    for the parameters' device, else the plain ``cls(params, **options)``."""
    params = list(params)
    try:
        return cls(params, fused=True, **options)
    except (RuntimeError, ValueError, TypeError):
        return cls(params, **options)


def training_precision(device: torch.device, mixed: bool = True
                       ) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, channels_last)`` for training on ``device``.

    With ``mixed`` on a CUDA device that supports bf16: bf16 autocast and
    channels-last 4-d inputs (convolutions). fp16 would need a gradient
    scaler, so without bf16 (and off CUDA, and with ``mixed=False``) training
    runs in fp32, channels-first.
    """
    device = torch.device(device)
    if not mixed or device.type != "cuda":
        return None, False
    dtype = amp_dtype(device)
    return (dtype if dtype == torch.bfloat16 else None), True


def autocast_for(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` to ``dtype`` on a CUDA ``device``; else a no-op."""
    device = torch.device(device)
    if dtype is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def to_device(batch, device):
    """``batch`` (a tensor, or a dict of tensors) on ``device``."""
    if isinstance(batch, dict):
        return {name: value.to(device) for name, value in batch.items()}
    return batch.to(device)


class LossMeter:
    """Per-step losses kept on the device, read once.

    ``add(loss, n)`` records a step's mean loss over ``n`` samples (no host
    sync); ``values()`` returns every recorded loss as floats, in one
    transfer; ``mean()`` the sample-weighted mean, computed on the device (one
    value is read).
    """

    def __init__(self) -> None:
        self._losses: list[torch.Tensor] = []
        self._sizes: list[int] = []

    def __len__(self) -> int:
        return len(self._losses)

    def add(self, loss: torch.Tensor, n: int = 1) -> None:
        self._losses.append(loss.detach().reshape(()))
        self._sizes.append(int(n))

    def values(self) -> list[float]:
        if not self._losses:
            return []
        return torch.stack(self._losses).float().cpu().tolist()

    def mean(self) -> float:
        """The sample-weighted mean loss: one value leaves the device."""
        total = sum(self._sizes)
        if not total:
            return float("nan")
        losses = torch.stack(self._losses).double()
        sizes = torch.tensor(self._sizes, dtype=torch.float64, device=losses.device)
        return float((losses * sizes).sum().cpu()) / total


_DONE = object()


def prefetch(iterable: Iterable, ahead: int = 2) -> Iterator:
    """The items of ``iterable``, in order, produced by a background thread
    that keeps up to ``ahead`` of them ready; an error in the producer is
    raised in the caller; closing the generator early stops the producer."""
    ready: queue.Queue = queue.Queue(maxsize=max(1, ahead))
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        ready.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put((_DONE, None))
        except BaseException as error:  # handed to the consumer
            ready.put((_DONE, error))

    thread = threading.Thread(target=produce, name="sktransfer-prefetch",
                              daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get_nowait()
            thread.join(timeout=0.05)

"""``TrainingArguments``: what one fine-tuning fit trains with, resolved once.

The estimator's parameters are what the user asked for (``backbone_lr=None``,
``device="auto"``, ``random_state=None``); a fit turns them into one frozen
record, as setfit's ``TrainingArguments`` is handed to its ``Trainer``: the
learning rates, epochs, batch size, L2-SP, early stopping, the device and its
precision, the seed. The trainer (``finetune._trainer``) reads nothing else
of the estimator's parameters.
"""

from __future__ import annotations

import dataclasses

import torch

from sktransfer._utils import engine

__all__ = ["PATIENCE", "TrainingArguments"]

PATIENCE = 5  # epochs without a better validation loss before stopping


@dataclasses.dataclass(frozen=True)
class TrainingArguments:
    """The resolved training settings of one fit (see the module docstring).

    ``lr`` trains the new layers (head, bottleneck, LoRA adapters),
    ``backbone_lr`` the unfrozen backbone blocks; ``epochs`` is
    ``head_epochs + max_epochs``; ``amp_dtype`` and ``channels_last`` come
    from ``sktransfer._utils.engine.training_precision``.
    """

    lr: float
    backbone_lr: float
    max_epochs: int
    head_epochs: int
    batch_size: int
    l2sp: float
    early_stopping: bool
    validation_fraction: float
    num_workers: int
    progress: bool
    seed: int
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    lora: bool
    batch_losses: bool = False
    patience: int = PATIENCE

    @property
    def epochs(self) -> int:
        return self.head_epochs + self.max_epochs

    @classmethod
    def from_estimator(cls, estimator, seed: int, device: torch.device
                       ) -> TrainingArguments:
        """The arguments of a ``BaseFineTuned`` fit (parameters validated)."""
        lr = float(estimator.lr)
        backbone_lr = estimator.backbone_lr
        # bf16 autocast + channels-last on CUDA unless the instance turned
        # its ``_cuda_speedups`` off (the P7 benchmark's fp32 baseline)
        amp, channels_last = engine.training_precision(
            device, estimator._cuda_speedups)
        return cls(
            lr=lr,
            backbone_lr=lr / 10 if backbone_lr is None else float(backbone_lr),
            max_epochs=int(estimator.max_epochs),
            head_epochs=int(estimator.head_epochs),
            batch_size=int(estimator.batch_size),
            l2sp=float(estimator.l2sp),
            early_stopping=bool(estimator.early_stopping),
            validation_fraction=float(estimator.validation_fraction),
            num_workers=int(estimator.num_workers),
            progress=bool(estimator.progress),
            seed=int(seed),
            device=torch.device(device),
            amp_dtype=amp,
            channels_last=channels_last,
            lora=estimator.lora_rank is not None,
            batch_losses=bool(estimator.batch_losses),
        )

"""The model side of a fine-tuning fit: the network built from a backbone.

``build_model`` resolves the frozen depth, adds LoRA adapters to the blocks
that train, and wraps the backbone and a new head (and, with ``adapt``, a
bottleneck) in a ``FineTuneModule``, placed for the device's precision. The
head-only probe's weights are written into that head with ``set_head``;
after training ``finish_model`` merges the adapters. The trainer
(``finetune._trainer``) never builds or freezes a network itself.
"""

from __future__ import annotations

import dataclasses

import torch

from sktransfer.backbones import frozen_block_count
from sktransfer.finetune._arguments import TrainingArguments
from sktransfer.finetune._lora import (
    check_lora,
    inject_adapters,
    lora_target_names,
    merge_adapters,
    state_digest,
)
from sktransfer.finetune._module import FineTuneModule

__all__ = ["Model", "build_model", "finish_model", "parameter_counts", "set_head"]


@dataclasses.dataclass
class Model:
    """A fit's network and what was decided building it.

    ``lora_modules`` and ``backbone_digest`` are None without LoRA.
    """

    module: FineTuneModule
    n_blocks: int
    n_frozen: int
    lora_modules: list | None = None
    backbone_digest: str | None = None

    @property
    def head_only(self) -> bool:
        """Every block frozen: the ``freeze_depth="all"`` fast path."""
        return self.n_frozen == self.n_blocks


def build_model(estimator, backbone, args: TrainingArguments) -> Model:
    """The network ``estimator`` fine-tunes on ``backbone`` (just resolved)."""
    n_blocks = len(backbone.blocks)
    n_frozen = frozen_block_count(estimator.freeze_depth, n_blocks, backbone.name)
    names, digest = _add_lora(estimator, backbone, n_frozen)
    # head_epochs: every block starts frozen (``FreezeSchedule`` unfreezes)
    first = n_blocks if args.head_epochs else n_frozen
    adapter, _ = estimator._adaptation()
    module = FineTuneModule(backbone, estimator._n_outputs(), first, adapter,
                            lora=args.lora)
    module.fixed_norm_statistics = estimator._fixed_norm_statistics()
    if args.channels_last:
        # torch stubs: no overload takes device and memory_format together
        module.to(args.device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    return Model(module, n_blocks, n_frozen, names, digest)


def _add_lora(estimator, backbone, n_frozen: int):
    """LoRA adapters in the unfrozen blocks: ``(adapted layer names, the
    pretrained weights' digest)``, or ``(None, None)`` without LoRA."""
    check_lora(estimator, n_frozen, len(backbone.blocks))
    if estimator.lora_rank is None:
        return None, None
    names = lora_target_names(backbone, n_frozen, estimator.lora_targets)
    digest = state_digest(backbone.module)
    inject_adapters(backbone, names, estimator.lora_rank, estimator.lora_alpha,
                    estimator.lora_dropout)
    return names, digest


def set_head(head, weight, bias) -> None:
    """The linear head set to a probe's ``(weight, bias)``."""
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(weight, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(bias, dtype=head.bias.dtype))


def finish_model(model: Model, module) -> None:
    """After training: LoRA adapters merged into the weights they adapt."""
    if model.lora_modules is not None:
        merge_adapters(module)


def parameter_counts(module) -> tuple[int, int]:
    """``(all parameters, trainable parameters)`` of ``module``."""
    params = list(module.parameters())
    return (sum(p.numel() for p in params),
            sum(p.numel() for p in params if p.requires_grad))

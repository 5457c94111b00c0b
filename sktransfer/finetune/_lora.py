"""LoRA adapters (through peft) in the unfrozen blocks of a backbone.

``freeze_depth`` still says which blocks train; with ``lora_rank`` their
weights stay frozen and each of their layers in ``lora_targets`` gets a
low-rank update ``W + (alpha / r) B A`` (Hu et al., 2021): ``A`` (r × in) and
``B`` (out × r, zero at the start, so training starts from the pretrained
network). ``"auto"`` targets every ``nn.Linear`` of the unfrozen blocks (a
transformer's attention and MLP projections) and every ``nn.Conv2d`` with
``groups == 1`` (a CNN's full and pointwise convolutions; peft cannot merge
depthwise ones). The BatchNorm layers of the unfrozen blocks train with the
adapters, as is standard for LoRA on CNNs: their affine weights at ``lr``,
their statistics on the new data (kept pretrained, a 96-px efficientnet_lite0
lost 0.05 accuracy to full fine-tuning on bench_lora.py's photo crops). Other
biases and norms (a transformer's LayerNorms) stay as pretrained, so a fitted
network is the pretrained backbone + its adapters + those BatchNorm layers + the
head: what ``sktransfer.save`` stores (``lora_state_names``).

After training the adapters are merged into the base weights
(``merge_adapters``): prediction runs the plain layers, at the cost of the
network without adapters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

import torch
from torch import nn

from sktransfer.exceptions import (
    InvalidParameterError,
    MissingDependencyError,
    ParameterError,
)

__all__ = [
    "inject_adapters",
    "is_adapter_parameter",
    "lora_state_names",
    "lora_target_names",
    "trained_norms",
    "merge_adapters",
    "set_adapters_merged",
    "state_digest",
]

_MARK = "lora_"  # peft's parameter names: ...query.lora_A.default.weight


def _peft():
    try:
        import peft
    except ImportError:
        raise MissingDependencyError(
            "lora_rank needs peft, which is not installed: pip install "
            "'sktransfer[lora]' (or pip install 'peft>=0.10')"
        ) from None
    return peft


def check_lora(estimator, n_frozen: int, n_blocks: int) -> None:
    """Refuse LoRA where nothing is left to adapt (checked in ``fit``)."""
    if estimator.lora_rank is not None and n_frozen == n_blocks:
        raise ParameterError(
            f"lora_rank={estimator.lora_rank} with freeze_depth="
            f"{estimator.freeze_depth!r} freezes all {n_blocks} blocks, leaving no "
            f"block to adapt: use a freeze_depth that leaves blocks to train "
            f"(e.g. 0 or -2), or lora_rank=None for a head-only fit"
        )


def lora_target_names(backbone, n_frozen: int, targets) -> list[str]:
    """Names (in ``backbone.module``) of the layers of the unfrozen blocks to adapt.

    ``targets="auto"``: every ``nn.Linear`` and every ``nn.Conv2d`` with
    ``groups == 1``. A list of strings keeps those whose name is one of them
    or ends with ``"." + name`` (e.g. ``["query", "value"]``).
    """
    unfrozen = _unfrozen_modules(backbone, n_frozen)
    names = [name for name, m in backbone.module.named_modules()
             if id(m) in unfrozen and _adaptable(m)]
    if targets == "auto":
        chosen = names
    else:
        bad = [t for t in targets if not isinstance(t, str) or not t]
        if bad:
            raise ParameterError(f"lora_targets must be 'auto' or a list of layer "
                                 f"names, got {bad[0]!r} in it")
        chosen = [n for n in names
                  if any(n == t or n.endswith("." + t) for t in targets)]
    if not chosen:
        shown = ", ".join(names[:6]) + (" ..." if len(names) > 6 else "")
        raise ParameterError(
            f"lora_targets={targets!r} matches no Linear or Conv2d layer of the "
            f"{len(backbone.blocks) - n_frozen} unfrozen blocks of "
            f"{backbone.name}; its adaptable layers are: {shown or 'none'}"
        )
    return chosen


def _adaptable(module: nn.Module) -> bool:
    if isinstance(module, nn.Conv2d):
        return module.groups == 1
    return isinstance(module, nn.Linear)


def inject_adapters(backbone, names, rank: int, alpha, dropout) -> None:
    """Put rank-``rank`` LoRA adapters on the layers ``names`` of
    ``backbone.module``, and make the blocks list the adapted layers.

    peft replaces each adapted layer in its parent by a ``LoraLayer`` around
    it. A block whose modules are such layers themselves (a CNN's stem or head
    convolution) then lists the wrapper instead, or its adapter would sit
    outside every block: frozen with the base weights, never trained.
    """
    _check_rank(backbone, names, rank)
    peft = _peft()
    from peft.tuners.lora import LoraLayer

    pattern = "|".join(re.escape(n) for n in names)
    config = peft.LoraConfig(
        r=int(rank),
        lora_alpha=float(2 * rank if alpha is None else alpha),
        lora_dropout=float(dropout),
        target_modules=f"^(?:{pattern})$",
        bias="none",
    )
    peft.inject_adapter_in_model(config, backbone.module)
    wrappers = {id(layer.get_base_layer()): layer
                for layer in backbone.module.modules() if isinstance(layer, LoraLayer)}
    backbone.blocks = [
        dataclasses.replace(
            block, modules=tuple(wrappers.get(id(m), m) for m in block.modules))
        for block in backbone.blocks
    ]


def _rank_limit(layer: nn.Module) -> int:
    """The largest useful rank of an update of ``layer``: ``B A`` has the
    layer's shape, so its rank is at most its narrower side."""
    if isinstance(layer, nn.Conv2d):
        kernel = layer.kernel_size[0] * layer.kernel_size[1]
        return min(layer.in_channels * kernel, layer.out_channels)
    assert isinstance(layer, nn.Linear)  # _adaptable: a Linear or a Conv2d
    return min(layer.in_features, layer.out_features)


def _check_rank(backbone, names, rank: int) -> None:
    """Refuse a ``lora_rank`` above what the narrowest adapted layer allows."""
    layers = dict(backbone.module.named_modules())
    limit, where = min((_rank_limit(layers[n]), n) for n in names)
    if rank > limit:
        raise InvalidParameterError(
            f"The 'lora_rank' parameter must be an int in the range [1, {limit}] "
            f"for these layers (the narrowest adapted layer, {where!r} of "
            f"{backbone.name}, is {limit} wide); got {rank!r}. Use a smaller "
            f"rank, or lora_targets that leave narrow layers out")


def is_adapter_parameter(name: str) -> bool:
    return _MARK in name


def _unfrozen_modules(backbone, n_frozen: int) -> set[int]:
    """``id`` of every module inside the blocks ``n_frozen:`` of ``backbone``."""
    return {id(m) for block in backbone.blocks[n_frozen:]
            for top in block.modules for m in top.modules()}


def is_batch_norm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def trained_norms(backbone, n_frozen: int) -> list[tuple[str, nn.Module]]:
    """``(name, layer)`` of the BatchNorm layers (in ``backbone.module``) of the
    unfrozen blocks: with LoRA they train too (affine weights and statistics)."""
    unfrozen = _unfrozen_modules(backbone, n_frozen)
    return [(name, m) for name, m in backbone.module.named_modules()
            if id(m) in unfrozen and is_batch_norm(m)]


def lora_state_names(module: nn.Module, backbone, n_frozen: int) -> set[str]:
    """The entries of a LoRA network's ``state_dict`` that differ from the
    pretrained backbone's: everything outside ``encoder.`` (the head), the
    adapters, and the tensors of the BatchNorm layers that trained."""
    norms = {f"encoder.{name}." for name, _ in trained_norms(backbone, n_frozen)}
    return {name for name in module.state_dict()
            if not name.startswith("encoder.") or is_adapter_parameter(name)
            or name[:name.rfind(".") + 1] in norms}


def merge_adapters(module: nn.Module) -> None:
    """Fold each adapter into its layer's weight (prediction runs plain layers)."""
    set_adapters_merged(module, True)


def set_adapters_merged(module: nn.Module, merged: bool) -> None:
    from peft.tuners.lora import LoraLayer

    for layer in module.modules():
        if isinstance(layer, LoraLayer) and layer.merged != merged:
            layer.merge() if merged else layer.unmerge()


def state_digest(module: nn.Module) -> str:
    """SHA-256 of every tensor of ``module`` (names, dtypes, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{value.dtype}|{tuple(value.shape)}|".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

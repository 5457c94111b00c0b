"""The one identity of a model spec, for model memos and embedding caches."""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # names used in annotations only
    from torch import nn

__all__ = ["spec_identity"]


def spec_identity(spec: str | os.PathLike[str] | nn.Module | None) -> str:
    """A short string that changes whenever what ``spec`` resolves to may change.

    Parameters
    ----------
    spec : str, path, nn.Module or None
        A model or weights spec.

    Returns
    -------
    str
        - an ``nn.Module``: its class and a hash of its parameters and buffers
          (same weights, same identity; one changed weight, another one);
        - an existing file: its absolute path, size and modification time;
        - an existing folder (a text model): its absolute path and the size
          and modification time of each file inside;
        - anything else (a name, ``"DEFAULT"``, None): its ``repr``;
        - in a ``names_only()`` block, a str is a name whatever exists here:
          ``"name:"`` and its ``repr`` (no file is looked up), so a network
          rebuilt from a model file never shares a key with what the same
          string resolves to in Python (a local folder of that name).
    """
    from sktransfer.backbones._names import resolving_names_only

    if isinstance(spec, str) and resolving_names_only():
        return f"name:{spec!r}"
    state_dict = getattr(spec, "state_dict", None)
    if callable(state_dict):
        return f"module:{type(spec).__name__}:{_hash_tensors(state_dict())}"
    if isinstance(spec, (str, os.PathLike)):
        path = os.fspath(spec)
        if os.path.isfile(path):
            return "file:" + _stat(path)
        if os.path.isdir(path):
            return "dir:" + _hash_folder(path)
    return repr(spec)


def _stat(path: str) -> str:
    stat = os.stat(path)
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


def _hash_folder(path: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            try:
                digest.update(_stat(os.path.join(root, name)).encode())
            except OSError:  # a dangling link: the loader says what is wrong
                digest.update(f"{os.path.join(root, name)}:unreadable".encode())
    return f"{os.path.abspath(path)}:{digest.hexdigest()}"


def _hash_tensors(state: dict) -> str:
    import torch

    digest = hashlib.blake2b(digest_size=16)
    for key, tensor in state.items():
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{key}:{data.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()

"""Names-only resolution: a spec read from a model file is a *name*.

Within ``with names_only():`` (``sktransfer.load`` sets it for the whole
load, and a loaded embedder for its own rebuilds) every resolver reads a
spec as a catalogue name, the bundled model or a hub name, never as a local
path: nothing is looked up, opened or stat-ed under the spec's text, relative
to the current directory or anywhere else. A hub name is read from the
Hugging Face cache by name (or downloaded when online), exactly as an online
user gets it. Outside the block, resolution is unchanged (a local folder or
file typed in Python is read from there first).

The switch is a context variable: a load on one thread leaves every other
thread's resolution as it was.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator

from sktransfer.exceptions import ModelNotAvailableError

__all__ = ["check_hub_name", "hub_snapshot", "names_only", "resolving_names_only"]

_NAMES_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sktransfer_names_only", default=False)

_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

# what a names-only hub download skips: other frameworks' copies of the weights
_HUB_SKIP = ("*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot",
             "*.tflite", "tf_model*", "flax_model*", "rust_model*", "*.mlmodel",
             "coreml/*")


@contextlib.contextmanager
def names_only(enabled: bool = True) -> Iterator[None]:
    """Within the block (this thread or task), specs resolve as names only."""
    token = _NAMES_ONLY.set(bool(enabled) or _NAMES_ONLY.get())
    try:
        yield
    finally:
        _NAMES_ONLY.reset(token)


def resolving_names_only(flag: bool = False) -> bool:
    """``flag``, or whether a ``names_only()`` block is active."""
    return bool(flag) or _NAMES_ONLY.get()


def check_hub_name(name: object, what: str) -> str:
    """``name`` when it is ``name`` or ``org/name`` of letters, digits,
    ``.``, ``_`` and ``-`` (no ``..``); else ``ModelNotAvailableError``.
    Decided from the text alone."""
    if isinstance(name, str):
        parts = name.split("/")
        if 1 <= len(parts) <= 2 and all(
                _PART.fullmatch(p) and ".." not in p for p in parts):
            return name
    raise ModelNotAvailableError(
        f"{what} {name!r} is not a model name (a name or 'org/name'); a model "
        f"read from a model file is resolved by name only, never as a path")


def hub_snapshot(repo_id: str, what: str, describe) -> str:
    """The Hugging Face cache folder of ``repo_id`` (absolute, inside the
    cache), downloaded when it is missing and the offline policy allows it;
    never a folder of that name elsewhere. ``describe(why, exc)`` builds the
    ``ModelNotAvailableError``."""
    from huggingface_hub import snapshot_download

    from sktransfer.backbones._offline import load_local_then_remote

    check_hub_name(repo_id, what)
    return load_local_then_remote(
        lambda local: snapshot_download(repo_id, local_files_only=local,
                                        ignore_patterns=list(_HUB_SKIP)),
        describe)

"""The user cache directory of sktransfer (ONNX exports, the model catalog).

Importing this module imports nothing heavy, so torch-free commands can use it.
"""

from __future__ import annotations

import os
import sys

from sktransfer.exceptions import ParameterError

__all__ = ["megabytes_from_env", "user_cache_dir"]


def user_cache_dir(*parts: str) -> str:
    """``$SKTRANSFER_CACHE_DIR/<parts>`` when the variable is set, else the
    platform's user cache directory: ``~/.cache/sktransfer`` on Linux (or
    ``$XDG_CACHE_HOME/sktransfer``), ``~/Library/Caches/sktransfer`` on macOS,
    ``%LOCALAPPDATA%\\sktransfer`` on Windows. Nothing is created."""
    root = os.environ.get("SKTRANSFER_CACHE_DIR")
    if not root:
        if sys.platform == "win32":
            base = os.environ.get("LOCALAPPDATA", os.path.expanduser("~"))
        elif sys.platform == "darwin":
            base = os.path.expanduser("~/Library/Caches")
        else:
            base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
        root = os.path.join(base, "sktransfer")
    return os.path.join(root, *parts)


def megabytes_from_env(name: str, default: str, example: str) -> int:
    """Bytes from the environment variable ``name``, given in megabytes.

    ``example`` completes the error message, e.g. ``"2048; 0 disables ..."``.
    """
    value = os.environ.get(name, default)
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = float("nan")
    if not (megabytes >= 0 and megabytes != float("inf")):
        raise ParameterError(f"the environment variable {name}={value!r} must be "
                             f"a number of megabytes >= 0 (e.g. {example})")
    return int(megabytes * 2**20)

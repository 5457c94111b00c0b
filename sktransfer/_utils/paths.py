"""The user cache directory of sktransfer (ONNX exports, the model catalog).

Importing this module imports nothing heavy, so torch-free commands can use it.
"""

from __future__ import annotations

import os
import sys

__all__ = ["user_cache_dir"]


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

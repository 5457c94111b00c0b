"""Exceptions raised by sktransfer.

Every error names the offending item (index, path, parameter) and what is
accepted. They subclass the builtin ``ValueError`` / ``TypeError`` /
``ImportError`` so that code written against scikit-learn's conventions keeps
catching them, and all of them subclass ``SktransferError``: the ``sktransfer``
command prints those as one ``sktransfer: error: ...`` line and shows a
traceback for anything else (a bug). A new user-facing error belongs here and
derives from ``SktransferError``.
"""

from typing import TYPE_CHECKING

__all__ = [
    "CLIError",
    "CacheCorruptionWarning",
    "CacheWriteWarning",
    "EmbedOutputError",
    "InvalidInputError",
    "InvalidInputTypeError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelFileError",
    "ModelNotAvailableError",
    "ParameterError",
    "ParameterTypeError",
    "RuntimeFallbackWarning",
    "SchedulerUnreachableError",
    "SktransferError",
    "UnsafeModelFileError",
]


class SktransferError(Exception):
    """Base class of the errors that report bad input rather than a bug."""


class InvalidInputError(SktransferError, ValueError):
    """An input sample (image, text) cannot be used; the message names it."""


class InvalidInputTypeError(SktransferError, TypeError):
    """An input sample has a type that is not accepted; the message names it."""


class ModelNotAvailableError(SktransferError, ValueError):
    """A model spec cannot be resolved (unknown name, or weights not available)."""


_INVALID_PARAMETER_DOC = """A parameter breaks its declared constraint (type, range,
choices): the message names the parameter, the value and what is allowed. Also
scikit-learn's ``InvalidParameterError`` (a ``ValueError`` and a
``TypeError``), so code written against scikit-learn keeps catching it.

Made on first use (``sktransfer models`` and the rest of the command line
never import scikit-learn)."""

if TYPE_CHECKING:
    from sklearn.utils._param_validation import (
        InvalidParameterError as _SklearnInvalidParameterError,
    )

    class InvalidParameterError(SktransferError, _SklearnInvalidParameterError):
        """See ``_INVALID_PARAMETER_DOC``."""


def __getattr__(name: str):
    if name != "InvalidParameterError":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from sklearn.utils._param_validation import InvalidParameterError as base

    made = type(name, (SktransferError, base),
                {"__doc__": _INVALID_PARAMETER_DOC, "__module__": __name__})
    globals()[name] = made
    return made


class ParameterError(SktransferError, ValueError):
    """A parameter value does not fit the model or data (e.g. ``freeze_depth``
    beyond the network's blocks); checked in ``fit``."""


class ParameterTypeError(SktransferError, TypeError):
    """A parameter has a type that is not accepted (e.g. a model spec that is
    neither a name, a path nor an ``nn.Module``); the message says what is."""


class MissingDependencyError(SktransferError, ImportError):
    """An optional dependency is not installed; the message says what to install."""


class CLIError(SktransferError, ValueError):
    """A bad command line (argument, data folder, CSV column) of ``sktransfer``."""


class ModelFileError(SktransferError, ValueError):
    """A file is not a valid sktransfer model archive (corrupt, modified, foreign)."""


class UnsafeModelFileError(ModelFileError):
    """Loading the file could run code: a pickle, or types that are not trusted."""


class EmbedOutputError(SktransferError, ValueError):
    """An ``sktransfer embed`` output folder holds something else: embeddings
    from another model, other settings or other inputs, or foreign files."""


class SchedulerUnreachableError(SktransferError, ValueError):
    """No Dask scheduler answers at the given address."""


class CacheCorruptionWarning(UserWarning):
    """A persistent cache entry is invalid; it is recomputed and rewritten."""


class CacheWriteWarning(UserWarning):
    """The cache directory cannot be written; embeddings are not persisted."""


class RuntimeFallbackWarning(UserWarning):
    """ONNX Runtime was asked for but torch runs instead; the message says why."""

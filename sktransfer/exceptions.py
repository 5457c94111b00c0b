"""Exceptions raised by sktransfer.

Every error names the offending item (index, path, parameter) and what is
accepted. They subclass the builtin ``ValueError`` / ``TypeError`` so that code
written against scikit-learn's conventions keeps catching them.
"""

__all__ = [
    "CacheCorruptionWarning",
    "CacheWriteWarning",
    "EmbedOutputError",
    "InvalidInputError",
    "InvalidInputTypeError",
    "ModelNotAvailableError",
    "SchedulerUnreachableError",
]


class InvalidInputError(ValueError):
    """An input sample (image, text) cannot be used; the message names it."""


class InvalidInputTypeError(TypeError):
    """An input sample has a type that is not accepted; the message names it."""


class ModelNotAvailableError(ValueError):
    """A model spec cannot be resolved (unknown name, or weights not available)."""


class EmbedOutputError(ValueError):
    """An ``sktransfer embed`` output folder holds something else: embeddings
    from another model, other settings or other inputs, or foreign files."""


class SchedulerUnreachableError(ValueError):
    """No Dask scheduler answers at the given address."""


class CacheCorruptionWarning(UserWarning):
    """A persistent cache entry is invalid; it is recomputed and rewritten."""


class CacheWriteWarning(UserWarning):
    """The cache directory cannot be written; embeddings are not persisted."""

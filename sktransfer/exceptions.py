"""Exceptions raised by sktransfer.

Every error names the offending item (index, path, parameter) and what is
accepted. They subclass the builtin ``ValueError`` / ``TypeError`` so that code
written against scikit-learn's conventions keeps catching them.
"""

__all__ = [
    "CacheCorruptionWarning",
    "CacheWriteWarning",
    "InvalidInputError",
    "InvalidInputTypeError",
    "ModelNotAvailableError",
]


class InvalidInputError(ValueError):
    """An input sample (image, text) cannot be used; the message names it."""


class InvalidInputTypeError(TypeError):
    """An input sample has a type that is not accepted; the message names it."""


class ModelNotAvailableError(ValueError):
    """A model spec cannot be resolved (unknown name, or weights not available)."""


class CacheCorruptionWarning(UserWarning):
    """A persistent cache entry is invalid; it is recomputed and rewritten."""


class CacheWriteWarning(UserWarning):
    """The cache directory cannot be written; embeddings are not persisted."""

"""Which rows are source and which are target: the one reading of ``y`` and
``sample_domain``, shared by ``sktransfer.adapt`` and the fine-tuners' deep
domain adaptation.

Convention (scikit-learn's semi-supervised one): labelled source rows carry their
class in ``y``, unlabelled target rows carry ``y == -1``. Optionally
``sample_domain`` marks each row's domain explicitly, encoded as in skada: a
positive integer for a source row, a negative one for a target row (skada's
defaults: ``1`` and ``-2``), or the strings ``"source"`` / ``"target"``; then
target rows may also be labelled. ``0`` is refused: it is neither.
"""

import numpy as np

from sktransfer.exceptions import InvalidInputError

__all__ = [
    "SOURCE_DOMAIN",
    "TARGET_DOMAIN",
    "domain_mask",
    "split_domains",
    "unlabelled_mask",
]

SOURCE_DOMAIN = 1  # skada's defaults
TARGET_DOMAIN = -2
_CONVENTION = (
    "sample_domain is encoded as in skada: a positive integer marks a source row "
    "and a negative one a target row (skada's defaults: 1 and -2), or use "
    "'source' / 'target'"
)


def unlabelled_mask(y):
    """Boolean mask of the rows whose label is the unlabelled marker ``-1``."""
    y = np.asarray(y)
    if y.dtype.kind in "OUS":
        return np.array([_is_minus_one(v) for v in y.ravel()], dtype=bool)
    return y == -1


def _is_minus_one(value):
    if isinstance(value, str):
        return value == "-1"
    try:
        return bool(value == -1)
    except (TypeError, ValueError):
        return False


def domain_mask(sample_domain, n_samples):
    """Boolean "is target" mask from ``sample_domain`` (skada's encoding:
    source > 0, target < 0, or ``"source"`` / ``"target"``); errors name the
    first bad value and explain the convention."""
    domain = np.asarray(sample_domain, dtype=object).ravel()
    if domain.shape[0] != n_samples:
        raise InvalidInputError(
            f"sample_domain has {domain.shape[0]} entries but X has {n_samples} "
            "rows; give one domain per row."
        )
    signs = np.array([_domain_sign(v) for v in domain])
    if (signs == 0).any():
        index = int(np.flatnonzero(signs == 0)[0])
        value = domain[index]
        why = (" 0 is neither a source nor a target domain" if _is_zero(value)
               else "")
        raise InvalidInputError(
            f"sample_domain[{index}] = {value!r} is not a domain;{why} "
            f"{_CONVENTION}."
        )
    return signs < 0


def _domain_sign(value):
    """+1 for a source row, -1 for a target row, 0 for anything else."""
    if isinstance(value, str):
        return {"source": 1, "target": -1}.get(value, 0)
    number = None if isinstance(value, (bool, np.bool_)) else _number(value)
    if number is None or not number.is_integer():
        return 0
    return int(np.sign(number))


def _is_zero(value):
    return not isinstance(value, (str, bool, np.bool_)) and _number(value) == 0


def _number(value):
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return None


def split_domains(y, sample_domain=None):
    """Split rows into labelled source, target, and labelled target rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels; ``-1`` marks an unlabelled row.
    sample_domain : array-like of shape (n_samples,), default=None
        Per row, as in skada: > 0 (or ``"source"``) for a source row, < 0 (or
        ``"target"``) for a target row. When ``None``, the unlabelled rows
        (``y == -1``) are the target rows.

    Returns
    -------
    source, target, labelled_target : ndarray of bool, shape (n_samples,)
        Labelled source rows, all target rows, and the labelled target rows.
    """
    unlabelled = unlabelled_mask(y)
    if sample_domain is None:
        target = unlabelled
    else:
        target = domain_mask(sample_domain, unlabelled.shape[0])
        stray = ~target & unlabelled
        if stray.any():
            index = int(np.flatnonzero(stray)[0])
            raise InvalidInputError(
                f"Row {index} is marked as source in sample_domain but has no label "
                "(y == -1); source rows must be labelled."
            )
    return ~target & ~unlabelled, target, target & ~unlabelled

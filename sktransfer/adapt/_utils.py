"""Shared helpers: the source/target data convention and input validation.

Convention (scikit-learn's semi-supervised one): labelled source rows carry their
class in ``y``, unlabelled target rows carry ``y == -1``. Optionally
``sample_domain`` marks each row's domain explicitly, encoded as in skada: a
positive integer for a source row, a negative one for a target row (skada's
defaults: ``1`` and ``-2``), or the strings ``"source"`` / ``"target"``; then
target rows may also be labelled. ``0`` is refused: it is neither.
"""

import warnings

import numpy as np

from sktransfer._utils.options import KERNEL_NAMES
from sktransfer.exceptions import InvalidInputError

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # pragma: no cover - older scikit-learn

    def _validate_data(estimator, X="no_validation", y="no_validation", **kwargs):
        return estimator._validate_data(X, y, **kwargs)


__all__ = [
    "NoTargetSamplesWarning",
    "check_kernel_size",
    "domain_mask",
    "split_domains",
    "validate_data",
]

SOURCE_DOMAIN = 1  # skada's defaults
TARGET_DOMAIN = -2
_CONVENTION = (
    "sample_domain is encoded as in skada: a positive integer marks a source row "
    "and a negative one a target row (skada's defaults: 1 and -2), or use "
    "'source' / 'target'"
)


class NoTargetSamplesWarning(UserWarning):
    """``fit`` saw no target-domain rows: the model is trained on the source only."""


def validate_data(estimator, X, y="no_validation", **kwargs):
    """Validate ``X`` (and ``y``) and set ``n_features_in_``; NaN/inf are errors."""
    return _validate_data(estimator, X, y, **kwargs)


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


def check_domains(source, target, *, needs_target=True):
    """Raise if there are no labelled source rows; warn if there are no target rows."""
    if not source.any():
        raise InvalidInputError(
            "No labelled source rows: every row is a target row (y == -1 or "
            "sample_domain == 'target'). Give labelled source rows to train on."
        )
    if needs_target and not target.any():
        warnings.warn(
            "No target rows (y == -1 or sample_domain == 'target'): training on the "
            "source rows only, without adaptation.",
            NoTargetSamplesWarning,
            stacklevel=3,
        )


def check_n_classes(classes, where="the labelled rows"):
    """Raise a ``ValueError`` when fewer than two classes are present."""
    if len(classes) < 2:
        raise InvalidInputError(
            f"Only one class ({classes[0]!r}) in {where}; a classifier needs at "
            "least two classes."
        )


def labelled_classes(y, sample_domain=None, *, needs_target=True):
    """A classifier's rows and classes: ``(source, target, labelled, classes)``.

    Boolean masks of the source, target and labelled rows (``-1`` rows and
    ``sample_domain`` as in ``split_domains``), and the sorted classes of the
    labelled rows, checked: labelled source rows present, target rows present
    (a warning; none with ``needs_target=False``), classification targets, at
    least two classes.
    """
    from sklearn.utils.multiclass import check_classification_targets

    source, target, labelled_target = split_domains(y, sample_domain)
    check_domains(source, target, needs_target=needs_target)
    labelled = source | labelled_target
    check_classification_targets(y[labelled])
    classes = np.unique(y[labelled])
    check_n_classes(classes)
    return source, target, labelled, classes


def estimator_has(attr, default):
    """``available_if`` check: the fitted (or given/default) estimator has ``attr``."""

    def check(self):
        if hasattr(self, "estimator_"):
            return hasattr(self.estimator_, attr)
        return hasattr(default if self.estimator is None else self.estimator, attr)

    return check


def check_kernel_size(n_rows, max_samples, estimator_name, what="rows"):
    """Raise before building an ``n_rows x n_rows`` kernel matrix above the limit."""
    if n_rows > max_samples:
        gib = n_rows**2 * 8 / 2**30
        raise InvalidInputError(
            f"{estimator_name} builds a {n_rows} x {n_rows} kernel matrix over the "
            f"{what} ({gib:.1f} GiB, O(n^2) memory, O(n^3) time for an eigen/QP "
            f"solve), above max_samples={max_samples}. Subsample the {what} "
            "(e.g. sklearn.utils.resample) or raise max_samples."
        )


KERNELS = KERNEL_NAMES  # declared with the parameter
GAMMA_KERNELS = KERNELS[:4]  # ("rbf", "laplacian", "poly", "sigmoid")


def kernel_params(kernel, gamma, X):
    """``pairwise_kernels`` keyword arguments; ``gamma=None`` is ``"scale"``.

    ``"scale"`` is scikit-learn's SVC default ``1 / (n_features * X.var())``.
    """
    if kernel not in GAMMA_KERNELS:
        return {}
    if gamma is None:
        var = X.var()
        gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
    return {"gamma": gamma}


def target_mask(y, sample_domain, n_samples):
    """ "Is target" mask for transformers: ``sample_domain``, else ``y == -1``.

    ``y`` may be ``None`` or not 1-D (then every row is a source row).
    """
    if sample_domain is not None:
        return split_domains(np.zeros(n_samples), sample_domain)[1]
    y = None if y is None else np.asarray(y)
    if y is None or y.ndim != 1:
        return np.zeros(n_samples, dtype=bool)
    return unlabelled_mask(y)

"""Shared helpers: the source/target data convention and input validation.

Convention (scikit-learn's semi-supervised one): labelled source rows carry their
class in ``y``, unlabelled target rows carry ``y == -1``. Optionally
``sample_domain`` marks each row's domain explicitly with ``0``/``"source"`` or
``1``/``"target"``; then target rows may also be labelled.
"""

import warnings

import numpy as np

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

_SOURCE_VALUES = (0, "source")
_TARGET_VALUES = (1, "target")


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
    """Boolean "is target" mask from ``sample_domain``; errors name bad values."""
    domain = np.asarray(sample_domain, dtype=object).ravel()
    if domain.shape[0] != n_samples:
        raise InvalidInputError(
            f"sample_domain has {domain.shape[0]} entries but X has {n_samples} "
            "rows; give one domain per row."
        )
    is_target = np.array([_in(v, _TARGET_VALUES) for v in domain], dtype=bool)
    is_source = np.array([_in(v, _SOURCE_VALUES) for v in domain], dtype=bool)
    bad = ~(is_target | is_source)
    if bad.any():
        index = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"sample_domain[{index}] = {domain[index]!r} is not a domain; use 0 or "
            "'source' for source rows and 1 or 'target' for target rows."
        )
    return is_target


def _in(value, accepted):
    if isinstance(value, str):
        return value in accepted
    try:
        return any(value == a for a in accepted if not isinstance(a, str))
    except (TypeError, ValueError):
        return False


def split_domains(y, sample_domain=None):
    """Split rows into labelled source, target, and labelled target rows.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels; ``-1`` marks an unlabelled row.
    sample_domain : array-like of shape (n_samples,), default=None
        ``0``/``"source"`` or ``1``/``"target"`` per row. When ``None``, the
        unlabelled rows (``y == -1``) are the target rows.

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


def labelled_classes(y, sample_domain=None):
    """A classifier's rows and classes: ``(source, target, labelled, classes)``.

    Boolean masks of the source, target and labelled rows (``-1`` rows and
    ``sample_domain`` as in ``split_domains``), and the sorted classes of the
    labelled rows, checked: target rows present, classification targets, at
    least two classes.
    """
    from sklearn.utils.multiclass import check_classification_targets

    source, target, labelled_target = split_domains(y, sample_domain)
    check_domains(source, target)
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


GAMMA_KERNELS = ("rbf", "laplacian", "poly", "sigmoid")
KERNELS = (*GAMMA_KERNELS, "linear", "cosine")


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


def target_rows(y, sample_domain, n_samples):
    """ "Is target" mask for transformers: ``sample_domain``, else ``y == -1``.

    ``y`` may be ``None`` or not 1-D (then every row is a source row).
    """
    if sample_domain is not None:
        return split_domains(np.zeros(n_samples), sample_domain)[1]
    y = None if y is None else np.asarray(y)
    if y is None or y.ndim != 1:
        return np.zeros(n_samples, dtype=bool)
    return unlabelled_mask(y)

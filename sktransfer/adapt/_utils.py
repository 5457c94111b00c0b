"""What the adaptation estimators share: input validation, domain checks,
kernels. The reading of ``y == -1`` and ``sample_domain`` is
``sktransfer._utils.domains`` (the fine-tuners read it too)."""

import warnings

import numpy as np

from sktransfer._utils.domains import split_domains, unlabelled_mask
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
    "validate_data",
]


class NoTargetSamplesWarning(UserWarning):
    """``fit`` saw no target-domain rows: the model is trained on the source only."""


def validate_data(estimator, X, y="no_validation", **kwargs):
    """Validate ``X`` (and ``y``) and set ``n_features_in_``; NaN/inf are errors."""
    return _validate_data(estimator, X, y, **kwargs)


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

"""Parameter-based transfer: linear models regularised toward a source model.

Both estimators minimise ``L_T(w, b) + alpha * ||w - w_S||^2`` on labelled
target rows, where ``L_T`` is the summed squared error (regressor) or the summed
log-loss (classifier, sigmoid for two classes, softmax otherwise) and ``w_S``
the source model's coefficients. The regressor's intercept is not penalised; the
classifier's is pulled toward the source estimator's intercept when it has one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import NotFittedError
from sklearn.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from sktransfer._utils.domains import domain_mask, split_domains, unlabelled_mask
from sktransfer._utils.params import declare, store_parameters, validate_params
from sktransfer.adapt._utils import check_n_classes, validate_data
from sktransfer.exceptions import InvalidInputError, ParameterError, ParameterTypeError

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from typing_extensions import Self

__all__ = ["RegularizedTransferClassifier", "RegularizedTransferRegressor"]



def _source_coef(est, shape):
    """The source coefficients, shaped ``shape``; zeros when no source is given."""
    if est.source_estimator is not None and est.source_coef is not None:
        raise ParameterError("Give either source_estimator or source_coef, not both.")
    if est.source_estimator is not None:
        try:
            check_is_fitted(est.source_estimator)
        except NotFittedError as error:
            raise NotFittedError(
                "source_estimator is not fitted. clone() (used by GridSearchCV and "
                "cross_val_score) returns unfitted copies of nested estimators: "
                "wrap the fitted source model in sklearn.frozen.FrozenEstimator, "
                "or pass its coefficients as source_coef."
            ) from error
        if not hasattr(est.source_estimator, "coef_"):
            raise ParameterTypeError(
                f"source_estimator {type(est.source_estimator).__name__} has no "
                "coef_; pass a fitted linear model or use source_coef."
            )
        coef = est.source_estimator.coef_
    elif est.source_coef is not None:
        coef = est.source_coef
    else:
        return np.zeros(shape)
    coef = np.asarray(coef, dtype=float)
    if coef.size != int(np.prod(shape)):
        raise ParameterError(
            f"The source coefficients have shape {coef.shape}, but this problem "
            f"needs {shape} (or {int(np.prod(shape))} values)."
        )
    return coef.reshape(shape)


def _select_target_data(X, y, sample_domain, regression=False):
    """The labelled target rows.

    Classification: rows with ``y == -1`` are unlabelled (never a class) and
    ``sample_domain`` (when given) also drops the source rows. Regression:
    ``-1`` is an ordinary value, so only ``sample_domain`` selects rows (all
    rows without it).
    """
    if regression and sample_domain is None:
        return X, y
    if regression:
        keep = domain_mask(sample_domain, X.shape[0])
    elif sample_domain is None:
        keep = ~unlabelled_mask(y)
    else:
        keep = split_domains(y, sample_domain)[2]
    if not keep.any():
        raise InvalidInputError(
            "No labelled target rows to fit on: "
            + (
                "sample_domain marks no target row"
                if regression
                else "every target row is unlabelled (y == -1)"
            )
            + ". RegularizedTransfer* estimators train on labelled target rows; "
            "the source domain enters through source_estimator / source_coef."
        )
    return X[keep], y[keep]


class _RegularizedTransfer(BaseEstimator):
    """``fit`` of both estimators: the labelled target rows, then
    ``_fit_target(X, y)``; subclasses set ``_regression``."""

    def fit(self, X: Any, y: Any, sample_domain: Any | None = None) -> Self:
        """Fit on labelled target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target-domain rows (source rows too, when ``sample_domain`` marks them).
        y : array-like of shape (n_samples,)
            Targets of a regressor (``-1`` is an ordinary value), or labels of a
            classifier (``-1`` marks unlabelled rows, which are ignored).
        sample_domain : array-like of shape (n_samples,), default=None
            > 0 (``"source"``) or < 0 (``"target"``) per row, as in skada; only the
            (labelled) target rows are used. ``None``: every (labelled) row is a
            target row.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        X, y = validate_data(self, X, y, y_numeric=self._regression)
        self._fit_target(*_select_target_data(X, y, sample_domain, self._regression))
        return self


@declare("regressor")
class RegularizedTransferRegressor(RegressorMixin, _RegularizedTransfer):
    """Ridge regression shrunk toward a source model's coefficients.

    Solves ``min_w,b ||y - X w - b||^2 + alpha * ||w - w_S||^2`` in closed form on
    labelled target rows. ``alpha=0`` is ordinary least squares; a large
    ``alpha`` returns the source coefficients ``w_S`` (the intercept is always
    re-estimated on the target rows). Without a source model ``w_S = 0`` and this
    is :class:`~sklearn.linear_model.Ridge`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,)
        Fitted coefficients.
    intercept_ : float
        Fitted intercept.
    source_coef_ : ndarray of shape (n_features,)
        The ``w_S`` used.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    RegularizedTransferClassifier : The same idea for logistic regression.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.adapt import RegularizedTransferRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(10, 3))
    >>> y = X @ [1.0, 2.0, 3.0]
    >>> reg = RegularizedTransferRegressor(alpha=1e6, source_coef=[1.0, 2.0, 2.5])
    >>> np.round(reg.fit(X, y).coef_, 2)
    array([1. , 2. , 2.5])
    """

    def __init__(
        self,
        alpha: float = 1.0,
        source_estimator: BaseEstimator | None = None,
        source_coef: Any | None = None,
        fit_intercept: bool = True,
    ):
        store_parameters(self, locals())

    _regression = True

    def _fit_target(self, X, y):
        n_features = X.shape[1]
        self.source_coef_ = _source_coef(self, (n_features,))
        x_mean = X.mean(axis=0) if self.fit_intercept else np.zeros(n_features)
        y_mean = y.mean() if self.fit_intercept else 0.0
        Xc, yc = X - x_mean, y - y_mean
        gram = Xc.T @ Xc + self.alpha * np.eye(n_features)
        rhs = Xc.T @ yc + self.alpha * self.source_coef_
        self.coef_ = linalg.lstsq(gram, rhs)[0]
        self.intercept_ = float(y_mean - x_mean @ self.coef_)

    def predict(self, X: Any) -> np.ndarray:
        """Predict targets of ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return X @ self.coef_ + self.intercept_


def _logistic_loss(params, X, Y, W_source, alpha, fit_intercept, b_source=None):
    """Summed log-loss + alpha * ||W - W_S||^2 and its gradient.

    ``Y`` is a 0/1 column for two classes (sigmoid), one-hot otherwise (softmax).
    """
    n_out, n_features = W_source.shape
    W = params[: n_out * n_features].reshape(n_out, n_features)
    b = params[n_out * n_features :] if fit_intercept else np.zeros(n_out)
    Z = X @ W.T + b
    if n_out == 1:
        loss = -np.sum(Y * log_expit(Z) + (1 - Y) * log_expit(-Z))
        residual = expit(Z) - Y
    else:
        loss = -np.sum(Y * log_softmax(Z, axis=1))
        residual = softmax(Z, axis=1) - Y
    diff = W - W_source
    loss += alpha * np.sum(diff**2)
    grad_W = residual.T @ X + 2 * alpha * diff
    if not fit_intercept:
        return loss, grad_W.ravel()
    grad_b = residual.sum(axis=0)
    if b_source is not None:
        loss += alpha * np.sum((b - b_source) ** 2)
        grad_b = grad_b + 2 * alpha * (b - b_source)
    return loss, np.concatenate([grad_W.ravel(), grad_b])


@declare("classifier", "regularized")
class RegularizedTransferClassifier(ClassifierMixin, _RegularizedTransfer):
    """Logistic regression shrunk toward a source model's coefficients.

    Minimises ``sum log-loss + alpha * ||W - W_S||^2`` with L-BFGS on labelled
    target rows (sigmoid for two classes, softmax for more). ``alpha=0`` is an
    unregularised logistic regression; a large ``alpha`` returns the source
    model. The intercept is pulled toward ``source_estimator.intercept_`` with
    the same ``alpha`` when there is one (so classes missing from a small target
    sample are still predicted), and is unpenalised otherwise.
    Without a source model ``W_S = 0``: an L2-regularised logistic regression.

    ``fit(X, y)`` trains on the labelled target rows. As for every classifier
    in ``sktransfer.adapt``, ``y == -1`` marks an unlabelled row, never a class:
    such rows are ignored (this method has no use for unlabelled data) and
    ``-1`` is never predicted; all rows ``-1`` is a ``ValueError``. The source
    domain enters only through ``W_S``. To reuse the ``X, y`` given to the
    other adapters (labelled source rows included), pass ``sample_domain``:
    then only the labelled target rows are used.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features) or (n_classes, n_features)
        Fitted coefficients.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        Fitted intercepts.
    source_coef_ : ndarray, shaped like ``coef_``
        The ``W_S`` used.
    classes_ : ndarray of shape (n_classes,)
        Class labels: the source estimator's when it has ``classes_`` (the target
        rows may then lack some classes), else those seen in ``y``.
    n_iter_ : int
        L-BFGS iterations run.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    RegularizedTransferRegressor : The same idea for least squares.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer.adapt import RegularizedTransferClassifier
    >>> rng = np.random.RandomState(0)
    >>> X_src, X_tgt = rng.normal(size=(200, 2)), rng.normal(size=(10, 2))
    >>> source = LogisticRegression().fit(X_src, X_src[:, 0] > 0)
    >>> clf = RegularizedTransferClassifier(alpha=10.0, source_estimator=source)
    >>> clf.fit(X_tgt, X_tgt[:, 0] > 0.2).predict(X_tgt[:3]).shape
    (3,)
    """

    def __init__(
        self,
        alpha: float = 1.0,
        source_estimator: BaseEstimator | None = None,
        source_coef: Any | None = None,
        fit_intercept: bool = True,
        max_iter: int = 1000,
    ):
        store_parameters(self, locals())

    _regression = False

    def _fit_target(self, X, y):
        check_classification_targets(y)
        self.classes_ = self._classes(y)
        check_n_classes(self.classes_)
        y_index = np.searchsorted(self.classes_, y)
        n_out = 1 if len(self.classes_) == 2 else len(self.classes_)
        self.source_coef_ = _source_coef(self, (n_out, X.shape[1]))
        Y = y_index[:, None] if n_out == 1 else np.eye(n_out)[y_index]
        self._solve(X, Y.astype(float))

    def _classes(self, y):
        """The target classes, or the source model's when it has ``classes_``."""
        target_classes = np.unique(y)
        classes = getattr(self.source_estimator, "classes_", None)
        if classes is None:
            return target_classes
        if unlabelled_mask(classes).any():
            raise ParameterError(
                "source_estimator has -1 among its classes_; -1 marks unlabelled "
                "rows in sktransfer.adapt and cannot be a class. Relabel it."
            )
        unknown = np.setdiff1d(target_classes, classes)
        if unknown.size:
            raise InvalidInputError(
                f"The target rows have classes {unknown.tolist()} that "
                f"source_estimator was not trained on (it knows "
                f"{np.asarray(classes).tolist()}); the classes must be shared."
            )
        return np.asarray(classes)

    def _solve(self, X, Y):
        n_out, n_features = self.source_coef_.shape
        b_source = getattr(self.source_estimator, "intercept_", None)
        if b_source is not None:
            b_source = np.asarray(b_source, dtype=float).reshape(n_out)
        b0 = np.zeros(n_out) if b_source is None else b_source
        x0 = np.r_[self.source_coef_.ravel(), b0 if self.fit_intercept else []]
        result = optimize.minimize(
            _logistic_loss,
            x0,
            args=(X, Y, self.source_coef_, self.alpha, self.fit_intercept, b_source),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": 1e-6},
        )
        self.coef_ = result.x[: n_out * n_features].reshape(n_out, n_features)
        self.intercept_ = (
            result.x[n_out * n_features :] if self.fit_intercept else (np.zeros(n_out))
        )
        self.n_iter_ = int(result.nit)

    def decision_function(self, X: Any) -> np.ndarray:
        """Linear scores: shape (n_samples,) for two classes, else per class."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        scores = X @ self.coef_.T + self.intercept_
        return scores.ravel() if scores.shape[1] == 1 else scores

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns ordered as ``classes_``."""
        scores = self.decision_function(X)
        if scores.ndim == 1:
            p = expit(scores)
            return np.c_[1 - p, p]
        return softmax(scores, axis=1)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class of each row."""
        scores = self.decision_function(X)
        index = (scores > 0).astype(int) if scores.ndim == 1 else scores.argmax(1)
        return self.classes_[index]

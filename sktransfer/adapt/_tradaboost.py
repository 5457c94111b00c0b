"""Instance-based transfer with a few labelled target rows: TrAdaBoost.

Dai, Yang, Xue & Yu (2007), "Boosting for transfer learning", ICML.
Pardoe & Stone (2010), "Boosting for regression transfer", ICML.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassifierMixin,
    RegressorMixin,
    clone,
)
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.validation import check_is_fitted

from sktransfer._utils.params import declare, validate_params
from sktransfer.adapt._base import DEFAULT_ESTIMATOR, fit_weighted
from sktransfer.adapt._docs import DOCS
from sktransfer.adapt._utils import (
    NoTargetSamplesWarning,
    labelled_classes,
    target_mask,
    validate_data,
)

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from typing_extensions import Self

__all__ = ["TrAdaBoostClassifier", "TrAdaBoostR2Regressor"]

_MIN_ERROR, _MAX_ERROR = 1e-10, 0.499


def _misclassified(learner, X, y):
    return (learner.predict(X) != y).astype(float)


def _adjusted_error(learner, X, y):
    """Pardoe & Stone's linear adjusted error ``|y - h(x)| / max |y - h(x)|``."""
    residual = np.abs(y - learner.predict(X))
    largest = residual.max()
    return residual / largest if largest > 0 else residual


def _boost(model, base, X, y, is_target, loss):
    """The TrAdaBoost loop; ``loss(learner, X, y)`` is each row's error in [0, 1].

    Sets ``estimators_``, ``estimator_weights_`` (``ln 1/beta_t``),
    ``estimator_errors_`` (clipped ``eps_t``) and ``weights_`` on ``model``.
    """
    n_source, n_rounds = int((~is_target).sum()), model.n_estimators
    beta = 1.0 / (1.0 + math.sqrt(2.0 * math.log(max(n_source, 1)) / n_rounds))
    w = np.full(len(y), 1.0 / len(y))
    model.estimators_, alphas, errors = [], [], []
    for _ in range(n_rounds):
        learner = fit_weighted(clone(base), X, y, w * len(y))
        e = loss(learner, X, y)
        error = (w[is_target] * e[is_target]).sum() / w[is_target].sum()
        error = float(np.clip(error, _MIN_ERROR, _MAX_ERROR))
        beta_t = error / (1.0 - error)
        w = np.where(is_target, w * beta_t ** (-e), w * beta**e)
        w /= w.sum()
        model.estimators_.append(learner)
        alphas.append(math.log(1.0 / beta_t))
        errors.append(error)
    model.estimator_weights_ = np.asarray(alphas)
    model.estimator_errors_ = np.asarray(errors)
    model.weights_ = w


def _voters(model):
    """The rounds ``ceil(N/2)..N`` and their weights (Dai et al.'s final rule)."""
    start = math.ceil(len(model.estimators_) / 2) - 1
    return model.estimators_[start:], model.estimator_weights_[start:]


def _prepare(model, X, y, sample_domain, regression):
    """Validate; return the labelled rows and their "is target" mask."""
    X, y = validate_data(model, X, y, y_numeric=regression)
    if regression:  # -1 is a value: only sample_domain marks target rows
        return X, y.astype(float), target_mask(None, sample_domain, X.shape[0])
    _, target, labelled, model.classes_ = labelled_classes(
        y, sample_domain, needs_target=False
    )
    return X[labelled], y[labelled], target[labelled]


def _fit_without_target(model, base, X, y):
    warnings.warn(
        "TrAdaBoost needs labelled target rows (mark them with a negative "
        "sample_domain, e.g. -2, or 'target'); none were given, so the "
        "estimator is trained once on the source rows, without adaptation.",
        NoTargetSamplesWarning,
        stacklevel=3,
    )
    model.weights_ = np.full(len(y), 1.0 / len(y))
    model.estimators_ = [fit_weighted(clone(base), X, y, np.ones(len(y)))]
    model.estimator_weights_, model.estimator_errors_ = np.ones(1), np.zeros(1)


class _TrAdaBoost(BaseEstimator):
    """The boosting both TrAdaBoost estimators share; subclasses set
    ``_regression``, ``_loss`` (each row's error in [0, 1]) and
    ``_default_estimator()``."""

    def __init__(self, estimator: BaseEstimator | None = None, n_estimators: int = 20):
        self.estimator = estimator
        self.n_estimators = n_estimators

    def fit(self, X: Any, y: Any, sample_domain: Any | None = None) -> Self:
        """Boost on the labelled source and labelled target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows.
        y : array-like of shape (n_samples,)
            Labels (a classifier ignores the unlabelled rows, ``-1``) or targets
            (for a regressor ``-1`` is an ordinary value).
        sample_domain : array-like of shape (n_samples,), default=None
            > 0 (``"source"``) or < 0 (``"target"``) per row, as in skada; marks the
            labelled target rows TrAdaBoost needs. Routed by metadata routing.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        validate_params(self)
        X, y, is_target = _prepare(self, X, y, sample_domain, self._regression)
        base = self._default_estimator() if self.estimator is None else self.estimator
        if not is_target.any():
            _fit_without_target(self, base, X, y)
        else:
            _boost(self, base, X, y, is_target, self._loss)
        return self


@declare("adapt", fragments=DOCS)
class TrAdaBoostClassifier(ClassifierMixin, _TrAdaBoost):
    """TrAdaBoost: boosting that trusts the source rows less every round.

    Needs a few **labelled target rows** besides the labelled source rows. Each
    round fits ``estimator`` on all labelled rows with weights ``w / sum(w)``,
    measures its weighted error ``eps_t`` on the labelled target rows (clipped
    to ``[1e-10, 0.499]``; the paper requires ``eps_t < 1/2``), then

    - multiplies the weight of each *misclassified source* row by
      ``beta = 1 / (1 + sqrt(2 ln n_S / n_estimators))`` (source rows that
      disagree with the target concept fade out), and
    - divides the weight of each *misclassified target* row by
      ``beta_t = eps_t / (1 - eps_t)`` (AdaBoost on the target rows).

    The prediction is the vote of the rounds ``ceil(N / 2) .. N`` weighted by
    ``ln(1 / beta_t)`` (Dai et al.'s final hypothesis; for more than two classes
    the weighted vote generalises their binary threshold rule).

    Data convention: labelled target rows are marked with ``sample_domain``
    (< 0 or ``"target"``); rows with ``y == -1`` are unlabelled target rows,
    which TrAdaBoost has no use for: they are ignored (never read as a class).
    Without labelled target rows there is nothing to boost on: the estimator is
    fitted once on the source rows and a ``NoTargetSamplesWarning`` is raised.

    Attributes
    ----------
    %(boosting_attributes)s
    weights_ : ndarray of shape (n_labelled,)
        Final normalised weights of the labelled rows, in their order in ``X``.
    %(classifier_attributes)s

    See Also
    --------
    RegularizedTransferClassifier : Another use of a few labelled target rows.

    Examples
    --------
    %(labelled_target_rows)s
    >>> from sktransfer.adapt import TrAdaBoostClassifier
    >>> y = np.r_[(X[:40, 0] > 0), (X[40:, 1] > 0)].astype(int)
    >>> clf = TrAdaBoostClassifier(n_estimators=4).fit(X, y, sample_domain=domain)
    >>> len(clf.estimators_)
    4
    """

    _regression = False
    _loss = staticmethod(_misclassified)

    @staticmethod
    def _default_estimator():
        return DEFAULT_ESTIMATOR

    def predict_proba(self, X: Any) -> np.ndarray:
        """Share of the weighted vote (rounds ``ceil(N/2)..N``) per class."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        votes = np.zeros((X.shape[0], len(self.classes_)))
        for learner, alpha in zip(*_voters(self), strict=True):
            index = np.searchsorted(self.classes_, learner.predict(X))
            votes[np.arange(X.shape[0]), index] += alpha
        return votes / votes.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The class with the largest weighted vote."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]


@declare("boost_regressor", fragments=DOCS)
class TrAdaBoostR2Regressor(RegressorMixin, _TrAdaBoost):
    """TrAdaBoost.R2: TrAdaBoost for regression (Pardoe & Stone 2010).

    As :class:`TrAdaBoostClassifier`, with each row's 0/1 error replaced by the
    adjusted linear error ``e_i = |y_i - h_t(x_i)| / max_j |y_j - h_t(x_j)|``:
    source rows are multiplied by ``beta ** e_i``, target rows by
    ``beta_t ** -e_i`` with ``beta_t = eps_t / (1 - eps_t)`` and ``eps_t`` the
    weighted mean of ``e`` over the target rows (clipped to ``[1e-10, 0.499]``).
    The prediction is the weighted median of the rounds ``ceil(N/2)..N``, weights
    ``ln(1 / beta_t)``. (This is the plain TrAdaBoost.R2 of the paper, not its
    two-stage variant.)

    ``-1`` is an ordinary target value for a regressor: the labelled target rows
    are the ones ``sample_domain`` marks < 0 or ``"target"``. Without any, the
    estimator is fitted once on all rows and a ``NoTargetSamplesWarning`` is
    raised.

    Attributes
    ----------
    %(boosting_attributes)s
    weights_ : ndarray of shape (n_samples,)
        Final normalised row weights.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    TrAdaBoostClassifier : The classification version.
    RegularizedTransferRegressor : Ridge shrunk toward a source model.

    Examples
    --------
    %(labelled_target_rows)s
    >>> from sktransfer.adapt import TrAdaBoostR2Regressor
    >>> y = np.r_[X[:40, 0], X[40:, 0] + 0.5]
    >>> reg = TrAdaBoostR2Regressor(n_estimators=4).fit(X, y, sample_domain=domain)
    >>> reg.predict(X[:3]).shape
    (3,)
    """

    _regression = True
    _loss = staticmethod(_adjusted_error)

    @staticmethod
    def _default_estimator():
        return DecisionTreeRegressor(max_depth=4, random_state=0)

    def predict(self, X: Any) -> np.ndarray:
        """Weighted median of the second half of the rounds."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        learners, alphas = _voters(self)
        predictions = np.column_stack([est.predict(X) for est in learners])
        order = np.argsort(predictions, axis=1)
        cumulative = np.cumsum(alphas[order], axis=1)
        median = (cumulative >= 0.5 * cumulative[:, -1:]).argmax(axis=1)
        rows = np.arange(X.shape[0])
        return predictions[rows, order[rows, median]]

"""Instance-based transfer with a few labelled target rows: TrAdaBoost.

Dai, Yang, Xue & Yu (2007), "Boosting for transfer learning", ICML.
"""

import math
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import check_classification_targets
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import check_is_fitted

from sktransfer.adapt._importance import _fit_weighted
from sktransfer.adapt._utils import (
    NoTargetSamplesWarning,
    check_domains,
    check_n_classes,
    split_domains,
    validate_data,
)

__all__ = ["TrAdaBoostClassifier"]

_DEFAULT_ESTIMATOR = LogisticRegression(max_iter=1000)
_MIN_ERROR, _MAX_ERROR = 1e-10, 0.499


class TrAdaBoostClassifier(ClassifierMixin, BaseEstimator):
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
    (``1``/``"target"``); rows with ``y == -1`` are unlabelled target rows,
    which TrAdaBoost has no use for: they are ignored (never read as a class).
    Without labelled target rows there is nothing to boost on: the estimator is
    fitted once on the source rows and a ``NoTargetSamplesWarning`` is raised.

    Parameters
    ----------
    estimator : classifier, default=None
        Base learner; its ``fit`` must accept ``sample_weight``. ``None`` uses
        ``LogisticRegression(max_iter=1000)``.
    n_estimators : int, default=20
        Boosting rounds ``N``.

    Attributes
    ----------
    estimators_ : list of classifiers
        The fitted learner of every round.
    estimator_weights_ : ndarray of shape (n_rounds,)
        ``ln(1 / beta_t)`` per round; only the second half votes.
    estimator_errors_ : ndarray of shape (n_rounds,)
        Clipped weighted target error ``eps_t`` per round.
    weights_ : ndarray of shape (n_labelled,)
        Final normalised weights of the labelled rows, in their order in ``X``.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    RegularizedTransferClassifier : Another use of a few labelled target rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.adapt import TrAdaBoostClassifier
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(60, 2))
    >>> y = np.r_[(X[:40, 0] > 0), (X[40:, 1] > 0)].astype(int)
    >>> domain = np.r_[np.zeros(40), np.ones(20)]
    >>> clf = TrAdaBoostClassifier(n_estimators=4).fit(X, y, sample_domain=domain)
    >>> len(clf.estimators_)
    4
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(self, estimator=None, n_estimators=20):
        self.estimator = estimator
        self.n_estimators = n_estimators

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_domain=None):
        """Boost on the labelled source and labelled target rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source and target rows.
        y : array-like of shape (n_samples,)
            Labels; ``-1`` marks unlabelled rows (ignored).
        sample_domain : array-like of shape (n_samples,), default=None
            ``0``/``"source"`` or ``1``/``"target"`` per row; marks the labelled
            target rows TrAdaBoost needs. Routed by metadata routing.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        X, y = validate_data(self, X, y)
        source, target, labelled_target = split_domains(y, sample_domain)
        check_domains(source, target, needs_target=False)
        labelled = source | labelled_target
        check_classification_targets(y[labelled])
        self.classes_ = np.unique(y[labelled])
        check_n_classes(self.classes_)
        base = _DEFAULT_ESTIMATOR if self.estimator is None else self.estimator
        X, y, is_target = X[labelled], y[labelled], labelled_target[labelled]
        if not is_target.any():
            warnings.warn(
                "TrAdaBoost needs labelled target rows (mark them with "
                "sample_domain=1 or 'target'); none were given, so the estimator "
                "is trained once on the source rows, without adaptation.",
                NoTargetSamplesWarning,
                stacklevel=2,
            )
            self.weights_ = np.full(len(y), 1.0 / len(y))
            self.estimators_ = [_fit_weighted(clone(base), X, y, np.ones(len(y)))]
            self.estimator_weights_, self.estimator_errors_ = np.ones(1), np.zeros(1)
            return self
        self._boost(base, X, y, is_target)
        return self

    def _boost(self, base, X, y, is_target):
        n_source = int((~is_target).sum())
        beta = 1.0 / (
            1.0 + math.sqrt(2.0 * math.log(max(n_source, 1)) / self.n_estimators)
        )
        w = np.full(len(y), 1.0 / len(y))
        self.estimators_, alphas, errors = [], [], []
        for _ in range(self.n_estimators):
            learner = _fit_weighted(clone(base), X, y, w * len(y))
            miss = learner.predict(X) != y
            error = w[is_target & miss].sum() / w[is_target].sum()
            error = float(np.clip(error, _MIN_ERROR, _MAX_ERROR))
            beta_t = error / (1.0 - error)
            w = np.where(~is_target & miss, w * beta, w)
            w = np.where(is_target & miss, w / beta_t, w)
            w /= w.sum()
            self.estimators_.append(learner)
            alphas.append(math.log(1.0 / beta_t))
            errors.append(error)
        self.estimator_weights_ = np.asarray(alphas)
        self.estimator_errors_ = np.asarray(errors)
        self.weights_ = w

    def predict_proba(self, X):
        """Share of the weighted vote (rounds ``ceil(N/2)..N``) per class."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        start = math.ceil(len(self.estimators_) / 2) - 1
        votes = np.zeros((X.shape[0], len(self.classes_)))
        for learner, alpha in zip(
            self.estimators_[start:], self.estimator_weights_[start:], strict=True
        ):
            index = np.searchsorted(self.classes_, learner.predict(X))
            votes[np.arange(X.shape[0]), index] += alpha
        return votes / votes.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The class with the largest weighted vote."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

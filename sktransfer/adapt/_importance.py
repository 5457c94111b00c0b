"""Instance-based transfer: importance weighting by a domain classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression

from sktransfer._utils.params import declare, fill_doc, store_parameters
from sktransfer.adapt._base import AdaptingClassifier
from sktransfer.adapt._docs import DOCS

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

__all__ = ["ImportanceWeightedClassifier", "importance_weights"]


_EPS = 1e-6


def _default_domain_classifier():
    return LogisticRegression(C=1.0, max_iter=1000)


@fill_doc(**DOCS)
def importance_weights(
    X_source: Any,
    X_target: Any,
    domain_classifier: BaseEstimator | None = None,
    clip: float = 10.0,
    normalize: bool = True,
) -> tuple[np.ndarray, BaseEstimator]:
    """Estimate density ratios ``p_T(x) / p_S(x)`` for the source rows.

    A probabilistic classifier is trained to tell target rows (label 1) from
    source rows (label 0); then ``p_T(x) / p_S(x) = P(T|x) / P(S|x) * n_S / n_T``.
    The ratios are clipped at ``clip`` and (by default) normalised to mean 1.

    Parameters
    ----------
    %(source_target_rows)s
    domain_classifier : classifier with ``predict_proba``, default=None
        Cloned before fitting. ``None`` uses ``LogisticRegression(max_iter=1000)``.
    clip : float, default=10.0
        Largest ratio kept before normalisation.
    normalize : bool, default=True
        Rescale the weights to mean 1; ``False`` returns the clipped ratios
        (their mean estimates ``E_S[w] = 1``, used by control variates).

    Returns
    -------
    weights : ndarray of shape (n_source,)
        Non-negative weights, mean 1 when ``normalize``.
    domain_classifier : classifier
        The fitted domain classifier.
    """
    n_s, n_t = X_source.shape[0], X_target.shape[0]
    clf = clone(
        _default_domain_classifier() if domain_classifier is None else domain_classifier
    )
    X = np.vstack([X_source, X_target])
    d = np.r_[np.zeros(n_s, dtype=int), np.ones(n_t, dtype=int)]
    clf.fit(X, d)
    p_target = clf.predict_proba(X_source)[:, list(clf.classes_).index(1)]
    p_target = np.clip(p_target, _EPS, 1 - _EPS)
    ratio = p_target / (1 - p_target) * (n_s / n_t)
    ratio = np.minimum(ratio, clip)
    return (ratio / ratio.mean() if normalize else ratio), clf


class _SourceWeightedClassifier(AdaptingClassifier):
    """Fit ``estimator`` on labelled rows, source rows weighted toward the target.

    Subclasses implement ``_source_weights(X_source, X_target)`` (``X_target``
    is ``None`` without target rows); labelled target rows (see
    ``sample_domain``) get weight 1, unlabelled rows (``y == -1``) are used only
    to estimate the weights.
    """

    def _adapt(self, X, source, target):
        weights = np.ones(X.shape[0])
        if target.any():
            weights[source] = self._source_weights(X[source], X[target])
        else:
            self._source_weights(X[source], None)
        return X, weights


@declare("adapt", fragments=DOCS)
class ImportanceWeightedClassifier(_SourceWeightedClassifier):
    """Covariate-shift adaptation by importance weighting of the source rows.

    A probabilistic domain classifier separates source from target rows; its
    odds estimate the density ratio ``w(x) = p_T(x) / p_S(x) = P(T|x) / P(S|x) *
    n_S / n_T``. The ratios are clipped at ``clip``, normalised to mean 1 and
    passed as ``sample_weight`` to the wrapped estimator, trained on the labelled
    rows. Labelled target rows (see ``sample_domain``) are used with weight 1.

    Attributes
    ----------
    estimator_ : classifier
        The fitted wrapped estimator.
    domain_classifier_ : classifier or None
        The fitted domain classifier (``None`` when there were no target rows).
    weights_ : ndarray of shape (n_labelled,)
        Sample weights of the labelled rows, in their order in ``X``.
    %(classifier_attributes)s

    See Also
    --------
    CORALClassifier : Feature-based adaptation.
    importance_weighted_score : Choose hyperparameters without target labels.

    Examples
    --------
    %(shifted_rows)s
    >>> from sktransfer.adapt import ImportanceWeightedClassifier
    >>> clf = ImportanceWeightedClassifier().fit(X, y)
    >>> clf.weights_.shape
    (40,)
    >>> clf.predict(X[-3:]).shape
    (3,)
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        domain_classifier: BaseEstimator | None = None,
        clip: float = 10.0,
    ):
        store_parameters(self, locals())

    def _source_weights(self, X_source, X_target):
        self.domain_classifier_ = None
        if X_target is None:
            return None
        weights, self.domain_classifier_ = importance_weights(
            X_source, X_target, self.domain_classifier, self.clip
        )
        return weights

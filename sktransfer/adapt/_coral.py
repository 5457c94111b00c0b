"""Feature-based transfer: CORAL (CORrelation ALignment, Sun et al. 2016)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg
from sklearn.base import BaseEstimator, OneToOneFeatureMixin

from sktransfer._utils.params import declare, store_parameters
from sktransfer.adapt._base import AdaptingClassifier, DomainTransformer
from sktransfer.adapt._docs import DOCS
from sktransfer.adapt._utils import NoTargetSamplesWarning

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

__all__ = ["CORAL", "CORALClassifier"]


def _covariance(X, eps):
    Xc = X - X.mean(axis=0)
    return Xc.T @ Xc / max(X.shape[0] - 1, 1) + eps * np.eye(X.shape[1])


def _sqrt_and_inv_sqrt(C):
    values, vectors = linalg.eigh(C)
    values = np.clip(values, np.finfo(float).tiny, None)
    root = np.sqrt(values)
    return (vectors * root) @ vectors.T, (vectors / root) @ vectors.T


@declare("coral", fragments=DOCS)
class CORAL(OneToOneFeatureMixin, DomainTransformer):
    """Align the second moments of source features to the target domain.

    ``fit`` estimates the source covariance ``C_S`` and target covariance ``C_T``
    (each plus ``eps * I``) and learns the linear map ``A = C_S^{-1/2} C_T^{1/2}``
    that whitens with the source covariance and re-colours with the target's.
    ``transform`` applies the **source-to-target map** to every row it is given:
    ``(X - mean_S) @ A + mean_T`` (or ``X @ A`` with ``align_mean=False``). Use
    it on source rows; target rows already live in the target domain and are
    left as they are (``CORALClassifier`` does exactly that).

    Rows are split by the semi-supervised convention: ``y == -1`` marks target rows, the
    others are source rows; or ``sample_domain`` (skada's encoding: > 0 or ``"source"``,
    < 0 or ``"target"``). Without target rows the map is the identity and a
    ``NoTargetSamplesWarning`` is raised.

    Attributes
    ----------
    coral_matrix_ : ndarray of shape (n_features, n_features)
        The map ``A``.
    source_mean_ : ndarray of shape (n_features,)
        Mean of the source rows.
    target_mean_ : ndarray of shape (n_features,)
        Mean of the target rows (the source mean when there were none).
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    CORALClassifier : CORAL followed by a classifier trained on aligned source rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sktransfer.adapt import CORAL
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(0, 3, (50, 2))]
    >>> y = np.r_[np.zeros(50, dtype=int), -np.ones(50, dtype=int)]
    >>> coral = CORAL(eps=0.01).fit(X, y)
    >>> X_aligned = coral.transform(X[:50])
    >>> bool(X_aligned.std() > 2)
    True
    """

    def __init__(self, eps: float = 1.0, align_mean: bool = True):
        self.eps = eps
        self.align_mean = align_mean

    def _fit_domains(self, X, target):
        self.source_mean_ = X[~target].mean(axis=0)
        source_cov = _covariance(X[~target], self.eps)
        if target.any():
            self.target_mean_ = X[target].mean(axis=0)
            target_cov = _covariance(X[target], self.eps)
        else:
            self.target_mean_, target_cov = self.source_mean_, source_cov
        _, whiten = _sqrt_and_inv_sqrt(source_cov)
        colour, _ = _sqrt_and_inv_sqrt(target_cov)
        self.coral_matrix_ = whiten @ colour

    def transform(self, X: Any) -> np.ndarray:
        """Map rows from the source domain to the target domain.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Source-domain rows.

        Returns
        -------
        X_aligned : ndarray of shape (n_samples, n_features)
            The rows re-coloured to the target covariance.
        """
        X = self._rows(X)
        if not self.align_mean:
            return X @ self.coral_matrix_
        return (X - self.source_mean_) @ self.coral_matrix_ + self.target_mean_


@declare("coral", "adapt", fragments=DOCS)
class CORALClassifier(AdaptingClassifier):
    """Train on CORAL-aligned source rows, predict on target rows as they are.

    ``fit`` learns a :class:`CORAL` map from the source and target rows, maps the
    labelled source rows into the target domain and trains ``estimator`` on them
    (plus any labelled target rows, unchanged). ``predict`` applies the estimator
    directly to ``X``, which is expected to come from the target domain.

    Attributes
    ----------
    coral_ : CORAL
        The fitted alignment.
    estimator_ : classifier
        The fitted estimator.
    %(classifier_attributes)s

    See Also
    --------
    CORAL : The feature alignment alone.
    ImportanceWeightedClassifier : Instance-based adaptation.

    Examples
    --------
    %(shifted_rows)s
    >>> from sktransfer.adapt import CORALClassifier
    >>> clf = CORALClassifier().fit(X, y)
    >>> clf.predict(X[-3:]).shape
    (3,)
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        eps: float = 1.0,
        align_mean: bool = True,
    ):
        store_parameters(self, locals())

    def _adapt(self, X, source, target):
        """Fit the CORAL map; the source rows mapped, the others as they are."""
        rows = source | target  # -1 marks the target rows for CORAL.fit
        self.coral_ = CORAL(eps=self.eps, align_mean=self.align_mean)
        with warnings.catch_warnings():  # already warned by labelled_classes
            warnings.simplefilter("ignore", NoTargetSamplesWarning)
            self.coral_.fit(X[rows], np.where(target, -1, 0)[rows])
        X_train = X.astype(float)
        X_train[source] = self.coral_.transform(X[source])
        return X_train, None

"""Instance-based transfer: kernel mean matching (Huang et al. 2007).

Huang, Smola, Gretton, Borgwardt & Schoelkopf (2007), "Correcting sample
selection bias by unlabeled data", NIPS 19.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import linalg
from sklearn.metrics.pairwise import pairwise_kernels

from sktransfer._utils.params import declare, fill_doc, store_parameters
from sktransfer.adapt._docs import DOCS
from sktransfer.adapt._importance import _SourceWeightedClassifier
from sktransfer.adapt._utils import KERNELS, check_kernel_size, kernel_params

if TYPE_CHECKING:  # names used in annotations only
    from sklearn.base import BaseEstimator

__all__ = ["KernelMeanMatchingClassifier", "kernel_mean_matching"]

_KERNELS = set(KERNELS)


def _project(v, upper, low, high):
    """Euclidean projection of ``v`` onto ``{0 <= b <= upper, low <= sum(b) <= high}``.

    Clipping to the box after a shift ``v - lam`` is monotone in ``lam``; the
    right shift is found by bisection.
    """
    b = np.clip(v, 0.0, upper)
    total = b.sum()
    if low <= total <= high:
        return b
    goal = high if total > high else low
    lo, hi = v.min() - upper, v.max()
    for _ in range(100):
        lam = 0.5 * (lo + hi)
        if np.clip(v - lam, 0.0, upper).sum() > goal:
            lo = lam
        else:
            hi = lam
    return np.clip(v - 0.5 * (lo + hi), 0.0, upper)


@fill_doc(**DOCS)
def kernel_mean_matching(
    X_source: np.ndarray,
    X_target: np.ndarray,
    *,
    kernel: str = "rbf",
    gamma: float | None = None,
    B: float = 1000.0,
    eps: float | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> tuple[np.ndarray, int]:
    """Source-row weights that match the kernel means of source and target.

    Solves the quadratic program of Huang et al. (2007)::

        min_b  1/2 b^T K b - kappa^T b
        s.t.   0 <= b_i <= B,   |sum_i b_i - n_S| <= n_S * eps

    with ``K_ij = k(xs_i, xs_j)`` and ``kappa_i = n_S / n_T * sum_j k(xs_i, xt_j)``
    by accelerated projected gradient (FISTA, step ``1 / lambda_max(K)``); the
    projection onto the box and the sum constraint is exact (bisection).

    Parameters
    ----------
    %(source_target_rows)s
    kernel : str, default="rbf"
        A ``sklearn.metrics.pairwise.pairwise_kernels`` metric.
    gamma : float, default=None
        Kernel coefficient; ``None`` uses ``1 / (n_features * X.var())`` over
        the source and target rows (scikit-learn's ``"scale"``).
    B : float, default=1000.0
        Upper bound of each weight.
    eps : float, default=None
        Tolerance of the sum constraint; ``None`` uses the paper's
        ``(sqrt(n_S) - 1) / sqrt(n_S)``.
    max_iter : int, default=1000
        Maximum projected-gradient iterations.
    tol : float, default=1e-6
        Stop when the largest weight change is below ``tol * max(1, max(b))``.

    Returns
    -------
    weights : ndarray of shape (n_source,)
        Non-negative weights (mean close to 1 within ``eps``).
    n_iter : int
        Iterations run.
    """
    n_s, n_t = X_source.shape[0], X_target.shape[0]
    params = kernel_params(kernel, gamma, np.vstack([X_source, X_target]))
    K = pairwise_kernels(X_source, metric=kernel, **params)
    kappa = pairwise_kernels(X_source, X_target, metric=kernel, **params)
    kappa = kappa.sum(axis=1) * (n_s / n_t)
    eps = (np.sqrt(n_s) - 1) / np.sqrt(n_s) if eps is None else eps
    low, high = max(n_s * (1 - eps), 0.0), n_s * (1 + eps)
    lipschitz = max(linalg.eigvalsh(K, subset_by_index=[n_s - 1, n_s - 1])[0], 1e-12)
    b = _project(np.ones(n_s), B, low, high)
    z, t, n_iter = b.copy(), 1.0, 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is returned
        b_new = _project(z - (K @ z - kappa) / lipschitz, B, low, high)
        t_new = 0.5 * (1 + np.sqrt(1 + 4 * t * t))
        z = b_new + (t - 1) / t_new * (b_new - b)
        change = np.abs(b_new - b).max()
        b, t = b_new, t_new
        if change < tol * max(1.0, b.max()):
            break
    return b, n_iter


@declare("kmm", "adapt", fragments=DOCS)
class KernelMeanMatchingClassifier(_SourceWeightedClassifier):
    """Covariate-shift adaptation by kernel mean matching (KMM) weights.

    The source rows are re-weighted so that their weighted mean in the kernel's
    feature space matches the target rows' mean (see
    :func:`kernel_mean_matching`), then ``estimator`` is fitted on the labelled
    rows with those weights as ``sample_weight``. Unlike
    :class:`ImportanceWeightedClassifier` no density ratio or domain classifier
    is estimated. Labelled target rows (see ``sample_domain``) get weight 1;
    rows with ``y == -1`` are unlabelled target rows (never a class). Without
    target rows the weights are 1 and a ``NoTargetSamplesWarning`` is raised.

    Memory and time: the ``n_source x n_source`` kernel matrix is built
    (``O(n_source^2)`` memory); above ``max_samples`` source rows ``fit`` raises
    a ``ValueError`` instead.

    Attributes
    ----------
    estimator_ : classifier
        The fitted wrapped estimator.
    weights_ : ndarray of shape (n_labelled,)
        Sample weights of the labelled rows, in their order in ``X``.
    n_iter_ : int
        Solver iterations (1 without target rows: the source matched to
        itself, uniform weights, in one step).
    %(classifier_attributes)s

    See Also
    --------
    ImportanceWeightedClassifier : Density ratios from a domain classifier.
    kernel_mean_matching : The weights alone.

    Examples
    --------
    %(shifted_rows)s
    >>> from sktransfer.adapt import KernelMeanMatchingClassifier
    >>> clf = KernelMeanMatchingClassifier().fit(X, y)
    >>> bool(clf.weights_[X[:40, 0] > 1].mean() > clf.weights_[X[:40, 0] < -1].mean())
    True
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        kernel: str = "rbf",
        gamma: float | None = None,
        B: float = 1000.0,
        eps: float | None = None,
        max_iter: int = 1000,
        max_samples: int = 10000,
    ):
        store_parameters(self, locals())

    def _source_weights(self, X_source, X_target):
        if X_target is None:
            # Without target rows the source is matched to itself: the QP's
            # solution is the uniform weights, its starting point, found in
            # one step (so n_iter_ >= 1 like every iterative estimator's).
            self.n_iter_ = 1
            return None
        check_kernel_size(
            X_source.shape[0], self.max_samples, type(self).__name__, "source rows"
        )
        weights, self.n_iter_ = kernel_mean_matching(
            X_source,
            X_target,
            kernel=self.kernel,
            gamma=self.gamma,
            B=self.B,
            eps=self.eps,
            max_iter=self.max_iter,
        )
        return weights

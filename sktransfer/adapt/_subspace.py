"""Feature-based transfer: subspace alignment and transfer component analysis.

Fernando, Habrard, Sebban & Tuytelaars (2013), "Unsupervised visual domain
adaptation using subspace alignment", ICCV.
Pan, Tsang, Kwok & Yang (2011), "Domain adaptation via transfer component
analysis", IEEE TNN 22(2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import linalg
from scipy.sparse.linalg import svds
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.decomposition import PCA
from sklearn.metrics.pairwise import pairwise_kernels

from sktransfer._utils.params import (
    declare,
    fill_doc,
    store_parameters,
    validate_params,
)
from sktransfer.adapt._base import DomainTransformer
from sktransfer.adapt._docs import DOCS
from sktransfer.adapt._utils import (
    check_kernel_size,
    kernel_params,
    target_mask,
)
from sktransfer.exceptions import ParameterError

__all__ = ["SubspaceAlignment", "TransferComponentAnalysis"]


def _check_components(n_components, limit, what):
    if n_components > limit:
        raise ParameterError(
            f"n_components={n_components} is larger than {what} ({limit}); "
            f"use n_components <= {limit}."
        )


@declare("subspace", fragments=DOCS)
class SubspaceAlignment(ClassNamePrefixFeaturesOutMixin, DomainTransformer):
    """Align the source PCA subspace with the target PCA subspace.

    ``fit`` computes the top ``n_components`` principal directions ``P_S`` of
    the source rows and ``P_T`` of the target rows (each domain centred on its
    own mean) and the alignment ``M = P_S^T P_T``. Source rows map to
    ``(x - mean_S) P_S M``, target rows to ``(x - mean_T) P_T``: both land in
    the target subspace's coordinates, where a classifier trained on source rows
    applies to target rows.

    Rows are split as for :class:`CORAL`: ``y == -1`` (or ``sample_domain``)
    marks target rows. ``transform(X)`` maps rows **as source rows**, like
    ``CORAL.transform``; pass ``sample_domain`` to map target rows (e.g. the
    test rows: ``transform(X_test, sample_domain=np.full(len(X_test), -2))``).
    ``fit_transform`` maps each row by its domain. Without target rows
    ``P_T = P_S`` and a ``NoTargetSamplesWarning`` is raised.

    Attributes
    ----------
    n_components_ : int
        The subspace dimension used.
    source_components_ : ndarray of shape (n_components, n_features)
        ``P_S^T``.
    target_components_ : ndarray of shape (n_components, n_features)
        ``P_T^T``.
    alignment_matrix_ : ndarray of shape (n_components, n_components)
        ``M = P_S^T P_T``.
    source_mean_, target_mean_ : ndarray of shape (n_features,)
        Per-domain means.
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    CORAL : Second-order alignment in the original feature space.
    TransferComponentAnalysis : A shared kernel subspace.

    Examples
    --------
    %(two_blobs)s
    >>> from sktransfer.adapt import SubspaceAlignment
    >>> Z = SubspaceAlignment(n_components=2).fit_transform(X, y)
    >>> Z.shape
    (100, 2)
    """

    def __init__(self, n_components: int | None = None):
        self.n_components = n_components

    def _fit_domains(self, X, target):
        counts = {"source": int((~target).sum()), "target": int(target.sum())}
        k = self.n_components
        if k is None:
            k = max(1, min(X.shape[1] // 2, *(c for c in counts.values() if c)))
        _check_components(k, X.shape[1], "the number of features")
        for name, count in counts.items():
            if count:
                _check_components(k, count, f"the number of {name} rows")
        source = PCA(k).fit(X[~target])
        target_pca = PCA(k).fit(X[target]) if target.any() else source
        self.n_components_ = k
        self.source_components_ = source.components_
        self.target_components_ = target_pca.components_
        self.source_mean_, self.target_mean_ = source.mean_, target_pca.mean_
        self.alignment_matrix_ = self.source_components_ @ self.target_components_.T

    @fill_doc(**DOCS)
    def fit_transform(
        self,
        X: Any,
        y: Any | None = None,
        sample_domain: Any | None = None,
    ) -> np.ndarray:
        """Fit, then map every row by its domain (source or target).

        %(transformer_fit)s

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            Rows in the target subspace's coordinates.
        """
        validate_params(self)
        X, target = self._split(X, y, sample_domain)
        self._fit_domains(X, target)
        return self._map(X, target)

    def transform(self, X: Any, sample_domain: Any | None = None) -> np.ndarray:
        """Map rows into the target subspace's coordinates.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to map.
        sample_domain : array-like of shape (n_samples,), default=None
            > 0 (``"source"``) or < 0 (``"target"``) per row, as in skada; ``None``: all
            rows are source rows (as ``CORAL.transform``).

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            The mapped rows.
        """
        X = self._rows(X)
        return self._map(X, target_mask(None, sample_domain, X.shape[0]))

    def _map(self, X, target):
        out = (X - self.source_mean_) @ self.source_components_.T
        out = out @ self.alignment_matrix_
        if target.any():
            Xt = X[target] - self.target_mean_
            out[target] = Xt @ self.target_components_.T
        return out

    @property
    def _n_features_out(self):
        return self.source_components_.shape[0]


def _transfer_components(K, u, mu, k):
    """Top ``k`` solutions of ``K H K w = lambda (u u^T + mu I) w``.

    ``K L K = u u^T`` with ``u = K e`` has rank one, so ``A = u u^T + mu I`` has
    the explicit inverse square root ``(I + (s - 1) u u^T / |u|^2) / sqrt(mu)``
    with ``s = sqrt(mu / (mu + |u|^2))``. With ``C = H K A^{-1/2}`` the problem
    is the SVD ``C^T C v = sigma^2 v``, ``w = A^{-1/2} v`` (``w^T A w = 1``, as
    the generalised eigensolver would give): only the top ``k`` singular
    vectors are needed (ARPACK for ``k`` small against ``n``).
    """
    n = K.shape[0]
    norm2 = float(u @ u)
    s = np.sqrt(mu / (mu + norm2))
    u_hat = u / np.sqrt(norm2) if norm2 > 0 else np.zeros(n)

    def a_inv_sqrt(M):  # M @ A^{-1/2}, O(n^2)
        return (M + (s - 1.0) * np.outer(M @ u_hat, u_hat)) / np.sqrt(mu)

    C = a_inv_sqrt(K - K.mean(axis=0))  # H K A^{-1/2}
    if n <= 500 or 2 * k >= n:
        _, sigma, vt = linalg.svd(C, full_matrices=False)
        sigma, vt = sigma[:k], vt[:k]
    else:
        _, sigma, vt = svds(C, k=k, random_state=0)
        order = np.argsort(sigma)[::-1]
        sigma, vt = sigma[order], vt[order]
    return sigma**2, a_inv_sqrt(
        vt
    ).T  # A^{-1/2} symmetric: (A^{-1/2} v)^T = v^T A^{-1/2}


@declare("tca", fragments=DOCS)
class TransferComponentAnalysis(ClassNamePrefixFeaturesOutMixin, DomainTransformer):
    """Transfer component analysis: a kernel subspace where the domains match.

    With the kernel matrix ``K`` over all fitted rows (source and target),
    ``L_ij = 1/n_S^2`` (both source), ``1/n_T^2`` (both target), ``-1/(n_S n_T)``
    (otherwise) and the centring matrix ``H``, the components ``W`` are the
    leading ``n_components`` generalised eigenvectors of
    ``K H K w = lambda (K L K + mu I) w``: they keep the data's variance while
    making the (kernel) means of the two domains close. Fitted rows map to
    ``K W``; new rows ``x`` to ``k(x, X_fit) W``, the same map for either
    domain, so ``transform`` needs no ``sample_domain``.

    Rows are split as for :class:`CORAL` (``y == -1`` or ``sample_domain``).
    Without target rows ``L = 0`` (kernel PCA-like) and a
    ``NoTargetSamplesWarning`` is raised.

    Memory and time: ``fit`` builds ``n x n`` matrices (``n`` = all rows;
    ``O(n^2)`` memory, 200 MB at ``n = 5000``) and needs only the top
    ``n_components`` singular vectors of one of them (``K L K`` has rank one,
    see the source), about ``O(n^2 n_components)`` time; above
    ``max_samples`` rows it raises a ``ValueError``: subsample first. The
    fitted rows are stored to transform new ones.

    Attributes
    ----------
    components_ : ndarray of shape (n_fit_rows, n_components)
        ``W``.
    eigenvalues_ : ndarray of shape (n_components,)
        Generalised eigenvalues, largest first.
    X_fit_ : ndarray of shape (n_fit_rows, n_features)
        The fitted rows.
    kernel_params_ : dict
        Keyword arguments of ``pairwise_kernels`` (the resolved ``gamma``).
    n_features_in_ : int
        Number of features seen during ``fit``.

    See Also
    --------
    SubspaceAlignment : Linear subspaces aligned without a kernel.

    Examples
    --------
    %(two_blobs)s
    >>> from sktransfer.adapt import TransferComponentAnalysis
    >>> tca = TransferComponentAnalysis(n_components=2).fit(X, y)
    >>> tca.transform(X).shape
    (100, 2)
    """

    def __init__(
        self,
        n_components: int = 10,
        mu: float = 1.0,
        kernel: str = "linear",
        gamma: float | None = None,
        max_samples: int = 5000,
    ):
        store_parameters(self, locals())

    def _fit_domains(self, X, target):
        n = X.shape[0]
        check_kernel_size(n, self.max_samples, type(self).__name__)
        _check_components(self.n_components, n, "the number of rows")
        self.kernel_params_ = kernel_params(self.kernel, self.gamma, X)
        K = pairwise_kernels(X, metric=self.kernel, **self.kernel_params_)
        e = np.where(target, -1.0 / max(target.sum(), 1), 1.0 / (~target).sum())
        if not target.any():
            e[:] = 0.0
        values, vectors = _transfer_components(K, K @ e, self.mu, self.n_components)
        self.eigenvalues_, self.components_ = values, vectors
        self.X_fit_ = X

    def transform(self, X: Any) -> np.ndarray:
        """Map rows (of either domain) onto the transfer components.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Rows to map.

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
            ``k(X, X_fit) W``.
        """
        X = self._rows(X)
        K = pairwise_kernels(X, self.X_fit_, metric=self.kernel, **self.kernel_params_)
        return K @ self.components_

    @property
    def _n_features_out(self):
        return self.components_.shape[1]


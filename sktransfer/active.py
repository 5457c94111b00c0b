"""Active learning: which unlabelled inputs to label next.

``suggest_labels(estimator, X_pool, n)`` asks a fitted classifier about the
pool and returns the ``n`` rows worth labelling:

- ``"margin"``: smallest gap between the two most probable classes;
- ``"entropy"``: highest entropy of the predicted probabilities;
- ``"diverse"``: a shortlist of the ``SHORTLIST`` x ``n`` smallest margins,
  clustered into ``n`` groups by k-means on the model's features (the pipeline's
  embeddings), and the least certain row of each group: uncertain rows that
  are not all alike;
- ``"representative"``: the same clusters, and the row nearest each
  cluster's centre;
- ``"random"``: a uniform draw, the baseline;
- multi-label models (a ``thresholds_`` attribute: the sktransfer
  classifiers fitted on tags; a multi-label ``OneVsRestClassifier``, whose
  threshold is 0.5): the "margin" of a row is the distance of its least
  certain label's probability to that label's threshold, its entropy the sum
  of the labels' yes/no entropies;
- ``"auto"``: ``"diverse"``. Chosen on the dev sets of
  ``benchmarks/bench_audit_suite.py`` (docs/audit.md): uncertainty alone
  picks near-identical rows in one batch, and a shortlist of 10 x n beat 3 x n
  and 5 x n and "representative" there.

A pipeline starting with frozen pretrained embedders embeds the pool once
(through their cache); its features feed both the head and the clustering.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sktransfer.exceptions import InvalidInputError, ParameterError

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

__all__ = ["STRATEGIES", "suggest_labels"]

STRATEGIES = ("auto", "margin", "entropy", "diverse", "representative", "random")
SHORTLIST = 10  # "diverse": the uncertainty shortlist holds SHORTLIST * n rows


def suggest_labels(
    estimator: Any,
    X_pool: Any,
    n: int,
    *,
    strategy: str = "auto",
    random_state: int | None = None,
) -> np.ndarray:
    """Indices of the ``n`` pool rows to label next.

    Parameters
    ----------
    estimator : fitted classifier or pipeline with ``predict_proba``
    X_pool : images, texts or features, the unlabelled pool
    n : int
        How many rows to suggest, 1 <= n <= len(X_pool).
    strategy : str, default="auto"
        One of ``STRATEGIES``: "auto", "margin", "entropy", "diverse",
        "representative", "random" (module docstring); ``"auto"`` is
        ``"diverse"``.
    random_state : int or None, default=None
        Seeds ``"random"`` and the k-means of ``"diverse"`` and
        ``"representative"``.

    Returns
    -------
    ndarray of int, shape (n,)
        Distinct row numbers into ``X_pool``, the most useful first.
    """
    if strategy not in STRATEGIES:
        raise ParameterError(f"strategy must be one of {STRATEGIES}, got "
                             f"{strategy!r}")
    size = _pool_size(X_pool)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n must be a positive int, got {n!r}")
    if n > size:
        raise ParameterError(f"n={n} is larger than the pool ({size} rows): at "
                             f"most {size} rows can be suggested")
    if strategy == "random":
        return np.random.default_rng(random_state).permutation(size)[:n]
    features, head = _features_and_head(estimator, X_pool)
    proba = np.asarray(head.predict_proba(features), dtype=np.float64)
    thresholds = _label_thresholds(head)
    if strategy == "entropy":
        if thresholds is not None:  # each label a yes/no question
            proba = np.stack([proba, 1 - proba], axis=-1)
        entropy = -(proba * np.log(np.clip(proba, 1e-12, None))).reshape(
            len(proba), -1).sum(axis=1)
        return np.argsort(-entropy, kind="stable")[:n]
    margin = (_margin(proba) if thresholds is None
              else np.abs(proba - thresholds).min(axis=1))
    order = np.argsort(margin, kind="stable")
    if strategy == "margin" or n == size:
        return order[:n]
    shortlist = order[:min(size, SHORTLIST * n)]
    return _diverse(_matrix(features, proba)[shortlist], margin[shortlist], n,
                    random_state, shortlist,
                    central=strategy == "representative")


def _pool_size(X_pool) -> int:
    try:
        size = len(X_pool)
    except TypeError:
        raise InvalidInputError(f"X_pool must be a sequence or array of inputs, "
                                f"got {type(X_pool).__name__}") from None
    if size == 0:
        raise InvalidInputError("X_pool is empty: there is nothing to suggest")
    return size


def _features_and_head(estimator, X_pool):
    """The fitted head and its inputs: a pipeline's frozen leading embedders
    applied once (the model is checked to be fitted first)."""
    from sklearn.exceptions import NotFittedError
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict_proba"):
        raise ParameterError(f"{type(estimator).__name__} has no predict_proba: "
                             f"pass a fitted classifier that gives probabilities")
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    try:
        check_is_fitted(final)
    except NotFittedError:
        raise NotFittedError(
            f"suggest_labels needs a fitted estimator: {type(final).__name__} is "
            f"not fitted; call fit on the labelled rows first") from None
    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        return X_pool, estimator
    return estimator[:-1].transform(X_pool), final


def _label_thresholds(head):
    """Per-label thresholds of a multi-label model, None for a single-label one."""
    thresholds = getattr(head, "__dict__", {}).get("thresholds_")
    if thresholds is not None and hasattr(head, "prototypes_"):
        return np.full(len(thresholds), 0.5)  # zero-shot: sigmoid around its cut
    if thresholds is not None:
        return np.asarray(thresholds, dtype=np.float64)
    if getattr(head, "multilabel_", False) and hasattr(head, "estimators_"):
        return np.full(len(head.estimators_), 0.5)  # OneVsRestClassifier
    return None


def _margin(proba: np.ndarray) -> np.ndarray:
    if proba.shape[1] == 1:
        return np.zeros(len(proba))
    top = np.partition(proba, -2, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


def _matrix(features, proba) -> np.ndarray:
    """Numeric features for k-means: the pipeline's, else the probabilities."""
    try:
        matrix = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError):
        return proba
    return matrix if matrix.ndim == 2 and np.isfinite(matrix).all() else proba


def _diverse(matrix, margin, n, random_state, rows, central=False) -> np.ndarray:
    """One row of each of ``n`` k-means clusters of the shortlist: the least
    certain, or (``central``) the one nearest its cluster's centre; the most
    uncertain first."""
    from sklearn.cluster import KMeans

    if n == 1:
        return rows[[int(np.argmin(margin))]]
    kmeans = KMeans(n, n_init=3, random_state=random_state).fit(matrix)
    labels = kmeans.labels_
    if central:
        distance = np.linalg.norm(matrix - kmeans.cluster_centers_[labels], axis=1)
        picked = [np.flatnonzero(labels == k)[np.argmin(distance[labels == k])]
                  for k in np.unique(labels)]
    else:
        picked = [np.flatnonzero(labels == k)[np.argmin(margin[labels == k])]
                  for k in np.unique(labels)]
    if len(picked) < n:  # fewer distinct clusters (identical rows): fill up
        rest = [i for i in np.argsort(margin, kind="stable") if i not in picked]
        picked += rest[:n - len(picked)]
    order = np.asarray(picked)
    return rows[order[np.argsort(margin[order], kind="stable")]]

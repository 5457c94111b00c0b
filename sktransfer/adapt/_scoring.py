"""Model selection without target labels: unsupervised validation scorers.

Every scorer has scikit-learn's signature ``scorer(estimator, X, y)`` and
follows its sign convention (greater is better), so it plugs into
``GridSearchCV(scoring=...)`` and ``cross_val_score``. In ``y``, ``-1`` marks the
unlabelled target rows of the validation fold; the other rows are labelled
source rows.

- IWCV: Sugiyama, Krauledat & Mueller (2007), "Covariate shift adaptation by
  importance weighted cross validation", JMLR 8.
- Prediction entropy: e.g. Morerio, Cavazza & Murino (2018), "Minimal-entropy
  correlation alignment for unsupervised deep domain adaptation", ICLR.
- Soft neighbourhood density: Saito, Kim, Teterwak, Sclaroff, Darrell & Saenko
  (2021), "Tune it the right way: unsupervised validation of domain adaptation
  via soft neighborhood density", ICCV.
- Deep embedded validation: You, Wang, Long & Wang (2019), "Towards accurate
  model selection in deep unsupervised domain adaptation", ICML.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import softmax, xlogy
from sklearn.metrics import accuracy_score
from sklearn.utils import _safe_indexing
from sklearn.utils.validation import _num_samples, check_array

from sktransfer._utils.domains import split_domains
from sktransfer._utils.params import fill_doc
from sktransfer.adapt._docs import DOCS
from sktransfer.adapt._importance import importance_weights
from sktransfer.adapt._utils import NoTargetSamplesWarning
from sktransfer.exceptions import InvalidInputError, ParameterError, ParameterTypeError

if TYPE_CHECKING:  # names used in annotations only
    from sklearn.base import BaseEstimator

__all__ = [
    "deep_embedded_validation_score",
    "importance_weighted_score",
    "make_adaptation_scorer",
    "make_importance_weighted_scorer",
    "prediction_entropy_score",
    "soft_neighborhood_density_score",
]


@fill_doc(**DOCS)
def importance_weighted_score(
    estimator: BaseEstimator,
    X: Any,
    y: Any,
    *,
    domain_classifier: BaseEstimator | None = None,
    clip: float = 10.0,
    score_func: Callable[..., float] = accuracy_score,
) -> float:
    """Score ``estimator`` on labelled source rows, weighted toward the target.

    Inside a cross-validation split the validation fold holds labelled source
    rows and unlabelled target rows (``y == -1``). A domain classifier trained on
    the fold's ``X`` estimates the density ratio ``p_T(x) / p_S(x)`` of each
    source row (see :func:`importance_weights`); the score is ``score_func`` on
    the source rows with those ratios as ``sample_weight``, an estimate of the
    score on the target domain. Without target rows in the fold the score is
    unweighted and a ``NoTargetSamplesWarning`` is raised.

    Parameters
    ----------
    estimator : fitted classifier
        The model to score.
    X : array-like of shape (n_samples, n_features)
        Validation rows, source and target.
    y : array-like of shape (n_samples,)
        Source labels; ``-1`` marks target rows.
    %(importance_scoring)s

    Returns
    -------
    score : float
        The importance-weighted score.

    Examples
    --------
    %(shifted_rows)s
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer.adapt import importance_weighted_score
    >>> clf = LogisticRegression().fit(X[:40], y[:40])
    >>> 0.0 <= importance_weighted_score(clf, X, y) <= 1.0
    True
    """
    X = check_array(X)
    source, target, _ = split_domains(np.asarray(y))
    if not source.any():
        raise InvalidInputError(
            "No labelled source rows in this validation fold; the importance-"
            "weighted score needs labelled rows (y != -1) to score on."
        )
    y_source = np.asarray(y)[source]
    y_pred = estimator.predict(X[source])
    if not target.any():
        warnings.warn(
            "No target rows (y == -1) in this validation fold: the score is not "
            "importance-weighted.",
            NoTargetSamplesWarning,
            stacklevel=2,
        )
        return float(score_func(y_source, y_pred))
    weights, _ = importance_weights(X[source], X[target], domain_classifier, clip)
    return float(score_func(y_source, y_pred, sample_weight=weights))


@fill_doc(**DOCS)
def make_importance_weighted_scorer(
    domain_classifier: BaseEstimator | None = None,
    clip: float = 10.0,
    score_func: Callable[..., float] = accuracy_score,
) -> Callable[..., float]:
    """Make an IWCV scorer for ``GridSearchCV(scoring=...)`` / ``cross_val_score``.

    Parameters
    ----------
    %(importance_scoring)s

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, see :func:`importance_weighted_score`.
        Use it with splits that put target rows in every validation fold, e.g.
        ``StratifiedKFold`` (``-1`` is stratified like a class).

    Examples
    --------
    >>> from sklearn.model_selection import GridSearchCV
    >>> from sktransfer.adapt import CORALClassifier, make_importance_weighted_scorer
    >>> search = GridSearchCV(
    ...     CORALClassifier(), {"eps": [0.1, 1.0]},
    ...     scoring=make_importance_weighted_scorer(),
    ... )
    """
    return functools.partial(
        importance_weighted_score,
        domain_classifier=domain_classifier,
        clip=clip,
        score_func=score_func,
    )


def _rows(X, y, *, need_source=False):
    """Indices of the target rows (``y == -1``; all rows if ``y`` is None) and
    of the labelled source rows, with clear errors when a needed part is empty."""
    n = _num_samples(X)
    if y is None:
        target, source = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    else:
        source, target, _ = split_domains(np.asarray(y))
    if not target.any():
        raise InvalidInputError(
            "No target rows (y == -1) in this validation fold; an unsupervised "
            "adaptation score is computed on the target rows. Use a split that "
            "puts target rows in every fold, e.g. StratifiedKFold (-1 is "
            "stratified like a class)."
        )
    if need_source and not source.any():
        raise InvalidInputError(
            "No labelled source rows in this validation fold (every row is "
            "y == -1); this score needs labelled source rows to compute a loss on."
        )
    return np.flatnonzero(target), np.flatnonzero(source)


def _predict_proba(estimator, X):
    if not hasattr(estimator, "predict_proba"):
        raise ParameterTypeError(
            f"{type(estimator).__name__} has no predict_proba, which this score "
            "needs; use a probabilistic classifier (e.g. LogisticRegression)."
        )
    return np.asarray(estimator.predict_proba(X), dtype=float)


def prediction_entropy_score(
    estimator: Any, X: Any, y: ArrayLike | None = None
) -> float:
    """Negative mean prediction entropy on the target rows (greater is better).

    A model whose target predictions are confident has a low entropy. Cheap and
    label-free, but it rewards over-confidence: it is a good tie-breaker between
    similar models, not a guarantee (see docs/adapt.md for measured picks).

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
        The model to score.
    X : array-like or list of shape (n_samples, ...)
        Validation rows (anything ``estimator.predict_proba`` accepts).
    y : array-like of shape (n_samples,), default=None
        ``-1`` marks the target rows, which are scored; ``None``: every row.

    Returns
    -------
    score : float
        ``-mean_i sum_k p_ik log p_ik`` over the target rows.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer.adapt import prediction_entropy_score
    >>> X = np.r_[np.arange(10.0), np.arange(5.0)].reshape(-1, 1)
    >>> y = np.r_[np.arange(10) > 4, -np.ones(5)].astype(int)
    >>> clf = LogisticRegression().fit(X[:10], y[:10])
    >>> bool(prediction_entropy_score(clf, X, y) <= 0)
    True
    """
    target, _ = _rows(X, y)
    proba = _predict_proba(estimator, _safe_indexing(X, target))
    proba = np.clip(proba, 1e-12, 1.0)
    return float(np.mean(np.sum(proba * np.log(proba), axis=1)))


def soft_neighborhood_density_score(
    estimator: Any,
    X: Any,
    y: ArrayLike | None = None,
    *,
    temperature: float = 0.05,
    max_samples: int = 2000,
    random_state: int = 0,
) -> float:
    """Soft neighbourhood density of the target predictions (greater is better).

    Saito et al. (2021): the target rows' predicted probabilities are
    L2-normalised, their pairwise cosine similarities (self excluded) divided by
    ``temperature`` go through a row-wise softmax, and the score is the mean
    entropy of those neighbour distributions. It is high when target rows form
    dense, consistent clusters of predictions; it needs no source labels.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
        The model to score.
    X : array-like or list of shape (n_samples, ...)
        Validation rows.
    y : array-like of shape (n_samples,), default=None
        ``-1`` marks the target rows; ``None``: every row.
    temperature : float, default=0.05
        Softmax temperature (the paper's value).
    max_samples : int, default=2000
        The similarity matrix is ``O(n^2)``: above this many target rows a
        random subset of this size (``random_state``) is scored.
    random_state : int, default=0
        Seed of that subset.

    Returns
    -------
    score : float
        The mean neighbour-distribution entropy.
    """
    target, _ = _rows(X, y)
    if target.size > max_samples:
        rng = np.random.RandomState(random_state)
        target = np.sort(rng.choice(target, max_samples, replace=False))
    if target.size < 2:
        raise InvalidInputError(
            "soft neighbourhood density needs at least 2 target rows."
        )
    proba = _predict_proba(estimator, _safe_indexing(X, target))
    proba /= np.maximum(np.linalg.norm(proba, axis=1, keepdims=True), 1e-12)
    sim = proba @ proba.T / temperature
    np.fill_diagonal(sim, -np.inf)
    neighbours = softmax(sim, axis=1)
    return float(-np.mean(np.sum(xlogy(neighbours, neighbours), axis=1)))


def deep_embedded_validation_score(
    estimator: Any,
    X: Any,
    y: ArrayLike,
    *,
    features: Callable[[Any, Any], ArrayLike] | None = None,
    domain_classifier: Any = None,
    clip: float | None = None,
) -> float:
    """Deep embedded validation: a control-variate IWCV risk (greater is better).

    You et al. (2019): on the labelled source rows of the fold, the per-row
    losses ``l_i`` (log-loss with ``predict_proba``, else 0-1 loss) are weighted
    by density ratios ``w_i = p_T / p_S`` from a domain classifier trained on
    the fold's ``features``; with ``L_i = w_i l_i`` and
    ``eta = -Cov(L, w) / Var(w)``, the risk is ``mean(L) + eta * (mean(w) - 1)``
    (``E_S[w] = 1`` makes ``w`` a control variate that lowers the variance of
    plain importance weighting). The score is the negative risk.

    Parameters
    ----------
    estimator : fitted classifier
        The model to score.
    X : array-like or list of shape (n_samples, ...)
        Validation rows, source and target.
    y : array-like of shape (n_samples,)
        Source labels; ``-1`` marks target rows.
    features : callable, default=None
        ``features(estimator, X) -> ndarray (n_samples, n_features)``: the
        embedding the domain classifier sees (the paper uses the network's
        features). ``None`` uses ``X`` itself (numeric, 2-D).
    domain_classifier : classifier with ``predict_proba``, default=None
        ``None`` uses ``LogisticRegression(max_iter=1000)``.
    clip : float, default=None
        Largest density ratio kept (``None``: no clipping, as in the paper).

    Returns
    -------
    score : float
        ``-(mean(L) + eta * (mean(w) - 1))``.
    """
    target, source = _rows(X, y, need_source=True)
    F = check_array(X) if features is None else check_array(features(estimator, X))
    w, _ = importance_weights(
        F[source],
        F[target],
        domain_classifier,
        np.inf if clip is None else clip,
        normalize=False,
    )
    X_source, y_source = _safe_indexing(X, source), np.asarray(y)[source]
    if hasattr(estimator, "predict_proba"):
        proba = _predict_proba(estimator, X_source)
        column = np.searchsorted(estimator.classes_, y_source)
        column = np.minimum(column, proba.shape[1] - 1)
        hit = np.asarray(estimator.classes_)[column] == y_source
        p_true = np.where(hit, proba[np.arange(len(column)), column], 0.0)
        loss = -np.log(np.clip(p_true, 1e-12, 1.0))
    else:
        loss = (estimator.predict(X_source) != y_source).astype(float)
    weighted = w * loss
    var_w = np.var(w, ddof=1) if w.size > 1 else 0.0
    eta = 0.0 if var_w == 0 else -np.cov(weighted, w)[0, 1] / var_w
    return float(-(weighted.mean() + eta * (w.mean() - 1.0)))


_SCORERS: dict[str, Callable[..., float]] = {
    "dev": deep_embedded_validation_score,
    "entropy": prediction_entropy_score,
    "iwcv": importance_weighted_score,
    "snd": soft_neighborhood_density_score,
}


def make_adaptation_scorer(name: str, **kwargs: Any) -> Callable[..., float]:
    """An unsupervised scorer by name, for ``GridSearchCV(scoring=...)``.

    Parameters
    ----------
    name : {"dev", "entropy", "iwcv", "snd"}
        Deep embedded validation (:func:`deep_embedded_validation_score`),
        prediction entropy (:func:`prediction_entropy_score`), importance-
        weighted validation (:func:`importance_weighted_score`) or soft
        neighbourhood density (:func:`soft_neighborhood_density_score`).
    **kwargs
        Keyword arguments of that function.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``; greater is better.

    Examples
    --------
    >>> from sktransfer.adapt import make_adaptation_scorer
    >>> scorer = make_adaptation_scorer("snd", temperature=0.05)
    """
    if name not in _SCORERS:
        raise ParameterError(
            f"Unknown adaptation scorer {name!r}; allowed names: "
            f"{', '.join(sorted(_SCORERS))}."
        )
    func = _SCORERS[name]
    try:
        inspect.signature(func).bind(None, None, None, **kwargs)
    except TypeError as error:
        raise ParameterTypeError(
            f"make_adaptation_scorer({name!r}, ...): {error}"
        ) from None
    return functools.partial(func, **kwargs)

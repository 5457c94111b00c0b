"""Model selection without target labels: importance-weighted validation (IWCV).

Sugiyama, Krauledat & Mueller (2007), "Covariate shift adaptation by importance
weighted cross validation", JMLR 8.
"""

import functools
import warnings

import numpy as np
from sklearn.metrics import accuracy_score
from sklearn.utils.validation import check_array

from sktransfer.adapt._importance import importance_weights
from sktransfer.adapt._utils import NoTargetSamplesWarning, split_domains

__all__ = ["importance_weighted_score", "make_importance_weighted_scorer"]


def importance_weighted_score(
    estimator, X, y, *, domain_classifier=None, clip=10.0, score_func=accuracy_score
):
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
    domain_classifier : classifier with ``predict_proba``, default=None
        ``None`` uses ``LogisticRegression(max_iter=1000)``.
    clip : float, default=10.0
        Largest density ratio kept before normalisation.
    score_func : callable, default=accuracy_score
        ``score_func(y_true, y_pred, sample_weight=...)``; greater is better.

    Returns
    -------
    score : float
        The importance-weighted score.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer.adapt import importance_weighted_score
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (40, 2)), rng.normal(1, 1, (20, 2))]
    >>> y = np.r_[(X[:40, 0] > 0).astype(int), -np.ones(20, dtype=int)]
    >>> clf = LogisticRegression().fit(X[:40], y[:40])
    >>> 0.0 <= importance_weighted_score(clf, X, y) <= 1.0
    True
    """
    X = check_array(X)
    source, target, _ = split_domains(np.asarray(y))
    if not source.any():
        raise ValueError(
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


def make_importance_weighted_scorer(
    domain_classifier=None, clip=10.0, score_func=accuracy_score
):
    """Make an IWCV scorer for ``GridSearchCV(scoring=...)`` / ``cross_val_score``.

    Parameters
    ----------
    domain_classifier : classifier with ``predict_proba``, default=None
        ``None`` uses ``LogisticRegression(max_iter=1000)``.
    clip : float, default=10.0
        Largest density ratio kept before normalisation.
    score_func : callable, default=accuracy_score
        ``score_func(y_true, y_pred, sample_weight=...)``; greater is better.

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

"""The few-shot classifier's multi-label head: one-vs-rest, tuned thresholds.

The head is ``OneVsRestClassifier(head)`` on the tuned embeddings, the label
name sentences repeated ``NAME_WEIGHT`` times (``OneVsRestClassifier`` passes
no sample weights; for a logistic regression a row repeated k times is a row
of weight k). ``threshold="auto"``: each label's cut is the F1-maximising one
on out-of-fold probabilities of the texts (k-fold, k = min(5, the rarest
label's count); the name rows train in every fold).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

from sktransfer._utils.device import one_blas_thread
from sktransfer._utils.multilabel import best_thresholds

__all__ = ["fit_multilabel_head"]


def _one_vs_rest(head, features, Y, names, name_weight: int):
    """``OneVsRestClassifier(head)`` on the texts plus repeated name rows."""
    if names is not None and len(names):
        repeat = np.repeat(np.arange(len(names)), name_weight)
        features = np.vstack([features, names[repeat]])
        Y = np.vstack([Y, np.eye(Y.shape[1], dtype=Y.dtype)[repeat]])
    with warnings.catch_warnings():  # a fold without a label's text: constant
        warnings.filterwarnings("ignore", message="Label .* is present in all")
        warnings.filterwarnings("ignore", message="Label not .* present in all")
        return OneVsRestClassifier(clone(head)).fit(features, Y)


def _scores(model, features) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(features)
    return model.decision_function(features)


def fit_multilabel_head(head, features, Y, names, *, name_weight: int,
                        threshold, seed: int):
    """``(fitted OneVsRestClassifier, thresholds (n_labels,))``.

    ``names``: the label name sentences' embeddings (row ``j`` for label
    ``j``) or None.
    """
    with one_blas_thread():
        fitted = _one_vs_rest(head, features, Y, names, name_weight)
        if threshold != "auto":
            return fitted, np.full(Y.shape[1], float(threshold))
        folds = int(min(5, Y.sum(axis=0).min(), len(Y)))
        if folds < 2:  # a label with a single text: no held-out score for it
            return fitted, np.full(Y.shape[1], 0.5)
        oof = np.zeros(Y.shape, dtype=np.float64)
        for train, test in KFold(folds, shuffle=True, random_state=seed).split(Y):
            model = _one_vs_rest(head, features[train], Y[train], names,
                                 name_weight)
            oof[test] = _scores(model, features[test])
    return fitted, best_thresholds(Y, oof)

"""Rows of any input and out-of-fold probabilities: what ``evaluate``,
``report`` and ``audit`` share."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone

__all__ = ["out_of_fold_proba", "take"]


def out_of_fold_proba(estimator, X, y, folds) -> np.ndarray:
    """Out-of-fold ``predict_proba`` of every row, columns in ``np.unique(y)``
    order, each fold's clone fitted on the labels as given.

    Not ``cross_val_predict(method="predict_proba")``: it fits the folds on
    ``LabelEncoder`` codes 0..k-1, so an estimator that reads its labels (a
    zero-shot or few-shot text classifier takes them as class names) would
    be scored on models that never saw the names the saved model knows.
    """
    y = np.asarray(y)
    classes = np.unique(y)
    proba = np.zeros((len(y), len(classes)))
    for train, test in folds.split(np.zeros(len(y)), y):
        model = clone(estimator).fit(take(X, train), y[train])
        columns = np.searchsorted(classes, np.asarray(model.classes_))
        proba[np.ix_(test, columns)] = model.predict_proba(take(X, test))
    return proba


def take(X, indices):
    """``X[indices]`` for a DataFrame / Series, an ndarray or a list."""
    if hasattr(X, "iloc"):
        return X.iloc[indices]
    if isinstance(X, np.ndarray):
        return X[indices]
    return [X[i] for i in indices]

"""Multi-label fine-tuning: a sigmoid head, per-label BCE, per-label thresholds.

``ClassifierTask`` turns to these when ``y`` is a 0/1 indicator or a list of
label lists (``sktransfer._utils.multilabel`` reads it):

- the head has one output per label, the loss is the per-label binary
  cross-entropy (``BCEWithLogitsLoss``) with ``pos_weight`` = negatives /
  positives of each label, so a rare tag weighs as much as a common one;
- ``freeze_depth="all"``: the head is the one-vs-rest tuned probe, one
  ``LogisticRegressionCV`` per label (penalised per-label cross-entropy: the
  probe is the fit), thresholds chosen on its out-of-fold probabilities;
- otherwise, with ``threshold="auto"``, ``validation_fraction`` of the rows
  is held out (as ``early_stopping`` does) and the thresholds are chosen on
  the trained network's probabilities for those rows.

Each threshold maximises that label's F1 on rows the model did not train on.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from sktransfer._utils.device import one_blas_thread
from sktransfer._utils.multilabel import best_thresholds
from sktransfer.exceptions import InvalidInputError

__all__ = [
    "MAX_POS_WEIGHT",
    "check_multilabel_fit",
    "multilabel_probe",
    "pos_weights",
    "weighted_bce",
]

MAX_POS_WEIGHT = 100.0  # a tag on 1 row in 1,000 weighs 100, not 999


def check_multilabel_fit(estimator, sample_domain) -> None:
    """Domain adaptation reads ``y == -1``: single-label only."""
    if getattr(estimator, "adapt", None) is not None or sample_domain is not None:
        raise InvalidInputError(
            "Multi-label y (a 0/1 indicator or label lists) cannot be combined "
            "with domain adaptation: use adapt=None and sample_domain=None")


def pos_weights(Y: np.ndarray) -> np.ndarray:
    """Per label, negatives / positives (clipped to ``MAX_POS_WEIGHT``)."""
    positives = Y.sum(axis=0).astype(np.float64)
    negatives = len(Y) - positives
    return np.clip(negatives / np.maximum(positives, 1.0), 1.0 / MAX_POS_WEIGHT,
                   MAX_POS_WEIGHT)


class weighted_bce(torch.nn.BCEWithLogitsLoss):  # noqa: N801 - a criterion "class"
    """``BCEWithLogitsLoss`` whose ``pos_weight`` is given as a list of floats.

    skorch builds the criterion from a class and keyword arguments; a list (not
    a tensor) keeps the estimator's parameters plain data.
    """

    def __init__(self, pos_weight=None, **kwargs):
        weight = None if pos_weight is None else torch.as_tensor(
            pos_weight, dtype=torch.float32)
        super().__init__(pos_weight=weight, **kwargs)

    def forward(self, input, target):  # noqa: A002 - torch's own names
        return super().forward(input, target.to(input.dtype))


def multilabel_probe(features: np.ndarray, Y: np.ndarray):
    """One-vs-rest tuned probe: ``(weight (L, d), bias (L,), decay, thresholds)``.

    Per label ``LogisticRegressionCV`` (``C`` among 10 values, stratified
    k-fold, k = min(5, the label's rarer side), scored by log loss: the
    probabilities are thresholded, so they must be calibrated; accuracy picked
    C up to 1e4 on rare labels, micro-F1 0.568 against 0.65 on chatterbot
    tags, benchmarks/bench_multilabel.py), then out-of-fold probabilities
    at that ``C`` for the F1-maximising threshold. A label too rare for two
    folds keeps sklearn's default ``C`` and the 0.5 threshold.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    n, n_labels = Y.shape
    coef = np.zeros((n_labels, features.shape[1]))
    intercept, decays = np.zeros(n_labels), []
    oof = np.full((n, n_labels), np.nan)
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", FutureWarning)
        for j in range(n_labels):
            y = Y[:, j]
            folds = int(min(5, y.sum(), n - y.sum()))
            if folds >= 2:
                cv = StratifiedKFold(folds, shuffle=True, random_state=0)
                C = float(LogisticRegressionCV(cv=cv, max_iter=1000,
                                               scoring="neg_log_loss")
                          .fit(features, y).C_[0])
                oof[:, j] = cross_val_predict(
                    LogisticRegression(C=C, max_iter=1000), features, y, cv=cv,
                    method="predict_proba")[:, 1]
            else:
                C = 1.0
            model = LogisticRegression(C=C, max_iter=1000).fit(features, y)
            coef[j], intercept[j] = model.coef_[0], model.intercept_[0]
            decays.append(1.0 / (C * n * n_labels))  # mean over n x L terms
    thresholds = best_thresholds(np.where(np.isnan(oof), 0, Y), np.nan_to_num(oof))
    return coef, intercept, float(np.mean(decays)), thresholds

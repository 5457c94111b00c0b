"""The tuned linear probe: the head's start on frozen features.

A new head trained by gradient descent on frozen features has more weights
than there are rows and no penalty: it overfits (issue 23 measured 0.56
accuracy where ``LogisticRegressionCV`` on the same embeddings got 0.74).
Instead the head starts as the tuned probe scikit-learn users would fit:

- classifiers: ``LogisticRegressionCV`` (multinomial, L2, ``C`` chosen among
  10 values by stratified k-fold, k = min(5, smallest class));
- regressors: ``RidgeCV`` (``alpha`` chosen among 0.1, 1, 10, RidgeCV's
  default grid, by efficient leave-one-out) on the standardised targets. A grid
  extended with 100 and 1000 lost 0.04 R² on held-out text (bench_lora.py).

Each returns the head's ``weight`` and ``bias`` and the weight decay under
which that head is optimal for the training loss (the mean cross-entropy or
squared error per element). With ``freeze_depth="all"`` and that loss the probe
*is* the fit (no epochs run); otherwise (Huber loss, ``head_epochs``) the
epochs train from it with that weight decay on the head.
"""

from __future__ import annotations

import warnings

import numpy as np

from sktransfer._utils.device import one_blas_thread

__all__ = ["RIDGE_ALPHAS", "classifier_probe", "regressor_probe"]

RIDGE_ALPHAS = (0.1, 1.0, 10.0)  # RidgeCV's default grid


def classifier_probe(features: np.ndarray, y: np.ndarray, n_classes: int):
    """``(weight (n_classes, d), bias (n_classes,), weight_decay)`` for labels
    ``y`` in ``0..n_classes-1``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV

    counts = np.bincount(y, minlength=n_classes)
    folds = int(min(5, counts.min()))
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # sklearn 1.8+ announces new defaults; the scoring is pinned below
        # (C chosen by accuracy, as before 1.11 makes log loss the default)
        warnings.simplefilter("ignore", FutureWarning)
        if folds >= 2:
            model = LogisticRegressionCV(cv=folds, max_iter=1000,
                                         scoring="accuracy").fit(features, y)
            C = float(model.C_[0])
        else:  # a class with a single row: no CV possible, sklearn's default C
            model = LogisticRegression(max_iter=1000).fit(features, y)
            C = 1.0
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:  # binary: softmax([0, z]) == sigmoid(z)
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    # 1/2 ||w||^2 + C sum CE  ==  C n (mean CE + ||w||^2 / (2 C n))
    return coef, intercept, 1.0 / (C * len(y))


def regressor_probe(features: np.ndarray, y: np.ndarray):
    """``(weight (k, d), bias (k,), weight_decay)`` for standardised ``y`` (n, k)."""
    from sklearn.linear_model import RidgeCV

    with one_blas_thread():
        model = RidgeCV(alphas=RIDGE_ALPHAS).fit(features, y)
    coef = np.atleast_2d(model.coef_)
    # ||y - Xw||^2 + a ||w||^2  ==  n k (mean squared error + a ||w||^2 / (n k))
    decay = 2.0 * float(model.alpha_) / (len(y) * y.shape[1])
    return coef, np.atleast_1d(model.intercept_), decay

"""What the two text classifiers share: ``predict`` / ``predict_proba`` from
one score matrix, and the tags of an estimator that reads strings."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

__all__ = ["TextClassifierMixin"]


class TextClassifierMixin(ClassifierMixin):
    """``predict`` and ``predict_proba`` of a classifier of texts.

    A subclass gives ``_scores(X)`` (checks the fit, returns one row per text),
    ``_labels(scores)`` and ``_proba(scores)``.
    """

    def predict(self, X: Any) -> np.ndarray:
        """The class of each text in ``X`` (a sequence of str): one of
        ``classes_`` per text, an array of shape (n_samples,)."""
        return self._labels(self._scores(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of each text in ``X`` (a sequence of str), an
        array of shape (n_samples, n_classes) whose columns follow ``classes_``."""
        return self._proba(self._scores(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

"""What the two text classifiers share: ``predict`` / ``predict_proba`` from
one score matrix, and the tags of an estimator that reads strings."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import ClassifierMixin

from sktransfer._utils.multilabel import to_indicator

__all__ = ["TextClassifierMixin"]


class TextClassifierMixin(ClassifierMixin):
    """``predict`` and ``predict_proba`` of a classifier of texts.

    A subclass gives ``_scores(X)`` (checks the fit, returns one row per text),
    ``_labels(scores)`` and ``_proba(scores)``.
    """

    def predict(self, X: Any) -> np.ndarray:
        """The class of each text in ``X`` (a sequence of str): one of
        ``classes_`` per text, an array of shape (n_samples,); multi-label:
        the 0/1 indicator of shape (n_samples, n_labels)."""
        return self._labels(self._scores(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of each text in ``X`` (a sequence of str), an
        array of shape (n_samples, n_classes) whose columns follow ``classes_``
        (multi-label: each label's own probability)."""
        return self._proba(self._scores(X))

    def score(self, X: Any, y: Any, sample_weight: Any | None = None) -> float:
        """Accuracy; multi-label: subset accuracy, ``y`` a 0/1 indicator or
        label lists (an unknown label is an error naming it)."""
        if "thresholds_" in self.__dict__:
            y = to_indicator(y, self.classes_)
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

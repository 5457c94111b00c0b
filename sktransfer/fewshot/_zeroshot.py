"""``ZeroShotTextClassifier``: classify by similarity to label descriptions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from numbers import Number
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from sktransfer._utils.multilabel import (
    best_thresholds,
    decide,
    encode_multilabel,
    is_multilabel,
    to_indicator,
)
from sktransfer._utils.params import declare, store_parameters, validate_params
from sktransfer.backbones import BUNDLED_TEXT
from sktransfer.data import as_text_list
from sktransfer.exceptions import InvalidInputError, ParameterError
from sktransfer.fewshot._labels import (
    check_template,
    label_descriptions,
    labels_are_words,
)
from sktransfer.fewshot._predict import TextClassifierMixin
from sktransfer.text import PretrainedTextEmbeddings

if TYPE_CHECKING:  # names used in annotations only
    from typing_extensions import Self

__all__ = ["ZeroShotTextClassifier"]

#: Softmax temperature of ``predict_proba`` over cosine similarities.
TEMPERATURE = 0.05

#: Multi-label, no examples: the cosine similarity at which a label is on.
#: Measured with all-MiniLM-L6-v2 and the default template on chatterbot texts
#: of one or two topics (``load_chatterbot_tags``, two draws of 300): micro-F1
#: 0.44-0.46 at 0.15, 0.41-0.44 at 0.2, 0.24-0.27 at 0.3.
ZERO_SHOT_CUT = 0.15


@declare("zeroshot", "text")
class ZeroShotTextClassifier(TextClassifierMixin, BaseEstimator):
    """Classify texts by their similarity to a description of each label.

    Each class is a unit vector, its **prototype**: the embedding of its
    description (``template`` filled with the label name, or the text given
    in a ``labels`` dict) and, when ``fit`` gets labelled texts, the
    embeddings of its examples, the description counting as
    ``description_weight`` examples. A text goes to the class whose
    prototype is the most cosine-similar. With no examples this is
    zero-shot; with a few a class it becomes a nearest-centroid few-shot
    classifier that still knows what the label means.
    ``predict_proba`` is the softmax of the similarities over
    ``TEMPERATURE``.

    With ``multi_label=True`` each label is decided on its own: a text gets
    every label whose similarity reaches that label's threshold
    (``thresholds_``), ``predict`` returns the 0/1 indicator and
    ``predict_proba`` is ``sigmoid((similarity - threshold) / TEMPERATURE)``
    per label. Zero-shot the threshold is ``ZERO_SHOT_CUT`` for every label;
    with examples (``y`` a 0/1 indicator or label lists) each label's is the
    one with the best F1 on leave-one-out similarities (each example scored
    against prototypes built without it).

    Attributes
    ----------
    classes_ : ndarray
    descriptions_ : list of str
        The sentence of each class, in ``classes_`` order.
    prototypes_ : ndarray of shape (n_classes, n_features)
    class_counts_ : ndarray of shape (n_classes,)
        Examples a class was fitted with (0: zero-shot).
    embedder_ : PretrainedTextEmbeddings
    thresholds_ : ndarray of shape (n_classes,)
        ``multi_label=True`` only: the similarity at which each label is on.

    Examples
    --------
    >>> from sktransfer import ZeroShotTextClassifier
    >>> clf = ZeroShotTextClassifier(labels=["sports", "cooking"]).fit()
    >>> clf.predict(["He scored twice in the final", "Simmer the sauce"]).tolist()
    ['sports', 'cooking']
    """

    def __init__(
        self,
        labels: list | dict | None = None,
        template: str = "This is about {}.",
        model: str | os.PathLike[str] = BUNDLED_TEXT,
        description_weight: float = 2.0,
        batch_size: int = 64,
        max_length: int | None = None,
        device: str | torch.device = "auto",
        cache: bool | str | os.PathLike[str] | None = True,
        multi_label: bool = False,
    ):
        store_parameters(self, locals())

    def fit(self, X: Any | None = None, y: Any | None = None) -> Self:
        """Embed the descriptions, and blend in the examples when given.

        Parameters
        ----------
        X : sequence of str or None, default=None
            Labelled examples (optional).
        y : array-like of shape (n_samples,) or None, default=None
            Their labels: each one of ``labels`` when ``labels`` is given.
            With ``multi_label=True``: a 0/1 indicator (columns in the order
            of ``labels``, or of the sorted labels) or a list of label lists.

        Returns
        -------
        self
        """
        validate_params(self)
        check_template(self.template)
        self.__dict__.pop("thresholds_", None)
        texts, y, Y = self._examples(X, y)
        keys, descriptions = self._classes(y)
        try:
            order = sorted(range(len(keys)), key=lambda i: keys[i])
        except TypeError:  # labels of mixed types
            order = sorted(range(len(keys)), key=lambda i: str(keys[i]))
        self.classes_ = np.asarray([keys[i] for i in order])
        self.descriptions_ = [descriptions[i] for i in order]
        self.embedder_ = PretrainedTextEmbeddings(
            self.model, batch_size=self.batch_size, max_length=self.max_length,
            device=self.device, cache=self.cache, runtime="torch",
        ).fit(self.descriptions_)
        described = self.embedder_.transform(self.descriptions_).astype(np.float64)
        sums = described * self.description_weight
        self.class_counts_ = np.zeros(len(self.classes_), dtype=int)
        if texts and Y is not None:  # multi-label examples
            Y = to_indicator(Y, self.classes_)
            embedded = self.embedder_.transform(texts).astype(np.float64)
            sums += Y.T @ embedded
            self.class_counts_ = Y.sum(axis=0)
        elif texts:
            index = {key: i for i, key in enumerate(self.classes_.tolist())}
            rows = np.asarray([index[label] for label in y.tolist()])
            np.add.at(sums, rows, self.embedder_.transform(texts))
            self.class_counts_ = np.bincount(rows, minlength=len(self.classes_))
        empty = ~sums.any(axis=1)  # description_weight=0 and no example
        sums[empty] = described[empty]
        self.prototypes_ = _unit(sums).astype(np.float32)
        if self.multi_label:
            self.thresholds_ = (
                np.full(len(self.classes_), ZERO_SHOT_CUT) if Y is None
                else best_thresholds(Y, _left_out(sums, embedded, Y),
                                     default=ZERO_SHOT_CUT))
        return self

    def _examples(self, X, y):
        if (X is None) != (y is None):
            raise InvalidInputError(
                "fit(X, y) needs both the texts and their labels, or neither "
                "(fit() with labels=... is zero-shot)")
        if X is None:
            return [], None, None
        texts = as_text_list(X)
        if self.multi_label:
            return texts, *self._multilabel_examples(texts, y)
        if is_multilabel(y):
            raise InvalidInputError(
                "y holds several labels a row (an indicator or label lists): "
                "use ZeroShotTextClassifier(multi_label=True)")
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(texts):
            raise InvalidInputError(
                f"y must be 1-D with one label per text: {len(texts)} texts, "
                f"y of shape {y.shape}")
        return texts, y, None

    def _multilabel_examples(self, texts, y):
        """``(every label seen, label lists)`` of multi-label examples."""
        if not is_multilabel(y):
            raise InvalidInputError(
                "multi_label=True takes y as a 0/1 indicator (n_samples, "
                "n_labels) or a list of label lists")
        if hasattr(y, "ndim") and y.ndim == 2:  # columns follow labels
            Y, names = encode_multilabel(y)
            columns = names.tolist() if self.labels is None else list(self.labels)
            if len(columns) != Y.shape[1]:
                raise InvalidInputError(
                    f"y has {Y.shape[1]} columns but labels has {len(columns)}")
            lists = [[columns[j] for j in np.flatnonzero(row)] for row in Y]
        else:
            lists = [list(row) for row in y]
            encode_multilabel(lists)  # the same checks as for an indicator
        if len(lists) != len(texts):
            raise InvalidInputError(
                f"y must have one row per text: {len(texts)} texts, "
                f"{len(lists)} rows")
        seen = sorted({label for row in lists for label in row}, key=str)
        return np.asarray(seen, dtype=object), lists

    def _classes(self, y):
        labels = self.labels
        if labels is None:
            if y is None:
                raise ParameterError(
                    "labels=None and no y: give labels=[...] (or a dict label -> "
                    "description), or fit(X, y) with labelled texts")
            labels = np.unique(y).tolist()
        if not isinstance(labels, Mapping):
            numbers = [k for k in labels if not labels_are_words([k])]
            if numbers:
                raise ParameterError(
                    f"the label {numbers[0]!r} is a number or id, which says "
                    f"nothing to the model: use label names, or labels={{label: "
                    f"'a description'}}")
        keys, descriptions = label_descriptions(labels, self.template)
        _check_classes(keys, "labels" if self.labels is not None else "y")
        if y is not None:
            known = set(keys)
            unknown = [label for label in np.unique(y).tolist() if label not in known]
            if unknown:
                raise InvalidInputError(
                    f"y holds the label {unknown[0]!r}, which is not in labels "
                    f"{keys!r}")
        return keys, descriptions

    def decision_function(self, X: Any) -> np.ndarray:
        """Cosine similarity of each text to each class prototype.

        Parameters
        ----------
        X : sequence of str
            The texts to score.

        Returns
        -------
        similarities : ndarray of shape (n_samples, n_classes)
            In [-1, 1]; columns follow ``classes_``.
        """
        check_is_fitted(self, "prototypes_")
        return self.embedder_.transform(as_text_list(X)) @ self.prototypes_.T

    def _scores(self, X):  # predict: the most similar class
        return self.decision_function(X)  # checks the fit first

    def _labels(self, similarities):
        if "thresholds_" in self.__dict__:  # multi-label: each label on its own
            return decide(similarities, self.thresholds_)
        return self.classes_[np.argmax(similarities, axis=1)]

    def _proba(self, similarities):  # softmax over TEMPERATURE
        if "thresholds_" in self.__dict__:  # multi-label: a sigmoid per label
            return 1 / (1 + np.exp(-(similarities - self.thresholds_) / TEMPERATURE))
        scores = similarities / TEMPERATURE
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        return tags


def _check_classes(keys: list, source: str) -> None:
    """At least 2 classes, of one type: ``{1: ..., "a": ...}`` is refused, not
    turned into the strings ``"1"`` and ``"a"`` (as scikit-learn refuses a
    mix of number and string labels)."""
    if len(keys) < 2:
        what = ("is empty" if not keys
                else f"names a single class ({keys[0]!r})")
        error = ParameterError if source == "labels" else InvalidInputError
        raise error(f"{source} {what}: a classifier needs at least 2 classes, "
                    f"e.g. labels=['sports', 'cooking']")
    kinds: dict = {}  # a label of each type
    for key in keys:
        kind = ("number" if isinstance(key, Number)
                else "str" if isinstance(key, str) else type(key).__name__)
        kinds.setdefault(kind, key)
    if len(kinds) > 1:
        shown = " and ".join(f"{kind} {key!r}" for kind, key in kinds.items())
        raise ParameterError(f"{source} mixes label types ({shown}): give every "
                             f"label the same type (all strings, say), as "
                             f"predict returns them unchanged")


def _left_out(sums: np.ndarray, embedded: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each example's similarity to each prototype built without it."""
    scores = np.empty(Y.shape)
    for i, row in enumerate(embedded):
        prototypes = _unit(sums - np.outer(Y[i], row))
        scores[i] = prototypes @ row
    return scores


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1, norms)

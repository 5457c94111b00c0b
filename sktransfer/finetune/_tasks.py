"""What a fine-tuned network predicts: class labels or continuous targets.

A task is a small mixin put in front of a modality (``ImageFineTuning``,
``TextFineTuning``); it supplies the hooks ``BaseFineTuned`` leaves open:

``_encode_target(y, n_samples) -> ndarray``
    Validate ``y``, record what predict needs (``classes_``, the target's
    mean and scale) and return what the criterion compares the outputs with.
``_n_outputs() -> int``
    The width of the new linear head.
``_criterion() -> type``
    The loss (a ``torch.nn`` module class).
``_stratify(y) -> ndarray or None``
    What the early-stopping split is stratified on.

and the public predict methods, built on ``BaseFineTuned._forward``.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from sktransfer._utils.multilabel import (
    decide,
    encode_multilabel,
    is_multilabel,
    to_indicator,
)
from sktransfer._utils.params import validate_params
from sktransfer.exceptions import InvalidInputError, ParameterError
from sktransfer.finetune._adapt import ADAPT_LOSSES, split_rows
from sktransfer.finetune._multilabel import (
    check_multilabel_fit,
    multilabel_probe,
    pos_weights,
    weighted_bce,
)
from sktransfer.finetune._probe import classifier_probe, regressor_probe

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from typing_extensions import Self

__all__ = [
    "REGRESSION_ATTRIBUTES",
    "ClassifierTask",
    "RegressorTask",
]


def _check_length(n_targets: int, n_samples: int, what: str) -> None:
    if n_targets != n_samples:
        raise InvalidInputError(
            f"X has {n_samples} samples but y has {n_targets} {what}"
        )


class ClassifierTask(ClassifierMixin):
    """Cross-entropy on a ``len(classes_)``-wide head; ``predict_proba``.

    The classifiers own deep domain adaptation (``adapt``, ``adapt_weight``).
    A multi-label ``y`` (a 0/1 indicator or a list of label lists) trains a
    sigmoid head on per-label binary cross-entropy instead and decides each
    label at its own threshold (``sktransfer.finetune._multilabel``).
    """

    def fit(self, X: Any, y: Any, sample_domain: Any | None = None) -> Self:
        """Fine-tune on ``(X, y)``; see ``BaseFineTuned.fit``.

        ``y`` may also be multi-label: a 2-D 0/1 indicator of shape
        ``(n_samples, n_labels)`` (a DataFrame's column names become
        ``classes_``) or a list of label lists.
        """
        self.__dict__.pop("thresholds_", None)
        self._multilabel = is_multilabel(y)
        if self._multilabel:
            validate_params(self)
            check_multilabel_fit(self, sample_domain)
            y, self._label_names = encode_multilabel(y)
        super().fit(X, y, sample_domain)
        if self._multilabel:
            self.thresholds_ = self._choose_thresholds(X, y)
        return self

    def _is_multilabel(self) -> bool:
        return bool(self.__dict__.get("_multilabel", False))

    def _head_from_probe(self) -> bool:
        """Multi-label: the head starts from the one-vs-rest probe (LP-FT)."""
        return self._is_multilabel()

    def _fixed_norm_statistics(self) -> bool:
        """Multi-label: BatchNorm keeps the statistics the probe was fitted
        under, so the fine-tune starts from the probe's features."""
        return self._is_multilabel()

    def _choose_thresholds(self, X, Y) -> np.ndarray:
        from sktransfer._utils.multilabel import best_thresholds

        n_labels = len(self.classes_)
        if self.threshold != "auto":
            return np.full(n_labels, float(self.threshold))
        if self.validation_indices_ is None:  # head only: the probe's out-of-fold
            return self._probe_thresholds
        items = self._coerce(X)
        rows = self.validation_indices_
        scores = self.predict_proba([items[i] for i in rows])
        return best_thresholds(Y[rows], scores)

    def _split(self, y, seed: int):
        """Multi-label with ``threshold="auto"``: always hold rows out."""
        if not (self._is_multilabel() and self.threshold == "auto"):
            return super()._split(y, seed)
        from sklearn.model_selection import train_test_split

        train, valid = train_test_split(np.arange(len(y)),
                                        test_size=self.validation_fraction,
                                        random_state=seed)
        return np.sort(train), np.sort(valid)

    def _split_rows(self, y, sample_domain):
        """Labelled rows and target rows (``y == -1`` or ``sample_domain``)."""
        if self._is_multilabel():
            return np.arange(len(y)), np.arange(0)
        return split_rows(y, sample_domain, self.adapt)

    def _adaptation(self):
        """``(loss class or None, weight)``: the domain adaptation to train with."""
        if self.adapt is None:
            return None, 0.0
        return ADAPT_LOSSES[self.adapt], self.adapt_weight

    def _encode_target(self, y, n_samples: int) -> np.ndarray:
        if self._is_multilabel():  # already an indicator (fit)
            _check_length(len(y), n_samples, "label rows")
            self.classes_ = self._label_names
            self._pos_weight = pos_weights(y).tolist()
            return y.astype(np.float32)
        y = column_or_1d(y, warn=True)
        _check_length(len(y), n_samples, "labels")
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if len(encoder.classes_) < 2:
            raise InvalidInputError(
                f"y has a single class {encoder.classes_.tolist()}: a classifier "
                f"needs at least 2 classes"
            )
        self.classes_ = encoder.classes_
        return encoder.transform(y).astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _probe(self, features, y):
        if self._is_multilabel():
            coef, bias, decay, self._probe_thresholds = multilabel_probe(
                features, y.astype(np.int64))
            return coef, bias, decay
        return classifier_probe(features, y, len(self.classes_))

    def _probe_is_the_fit(self) -> bool:
        return True  # penalised cross-entropy

    def _criterion(self):
        if self._is_multilabel():
            return functools.partial(weighted_bce, pos_weight=self._pos_weight)
        return torch.nn.CrossEntropyLoss

    def _stratify(self, y):
        return None if self._is_multilabel() else y

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : sequence of samples

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Multi-label: each label's own probability (a sigmoid), rows need
            not sum to 1.
        """
        logits = self._forward(X)
        if self._is_multilabel():
            return torch.sigmoid(logits).numpy().astype(np.float64)
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted class labels (of the same type as the ``y`` given to fit).

        Parameters
        ----------
        X : sequence of samples

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
            Multi-label: the 0/1 indicator, label ``j`` on where its
            probability reaches ``thresholds_[j]``.
        """
        proba = self.predict_proba(X)  # NotFittedError before classes_ is read
        if self._is_multilabel():
            return decide(proba, self.thresholds_)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X: Any, y: Any, sample_weight: Any | None = None) -> float:
        """Accuracy; multi-label: subset accuracy (every label of a row right).

        ``y`` of a multi-label model may be an indicator or label lists.
        """
        if self._is_multilabel():
            y = to_indicator(y, self.classes_)
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


REGRESSION_LOSSES = {"mse": torch.nn.MSELoss, "huber": torch.nn.HuberLoss}
REGRESSION_ATTRIBUTES = (
    ("n_outputs_", "int", "Number of target columns (1 for a 1-D ``y``)."),
    ("target_mean_, target_scale_", "ndarray of shape (n_outputs,)",
     "Mean and standard deviation of each target column: the network learns "
     "``(y - target_mean_) / target_scale_``, ``predict`` undoes it."),
)


class RegressorTask(RegressorMixin):
    """MSE or Huber loss on standardised targets; ``predict`` restores units.

    Each target column is standardised, ``(y - target_mean_) / target_scale_``,
    before training, so one learning rate and the Huber threshold (1.0: one
    standard deviation) suit targets of any unit; ``predict`` maps the head's
    outputs back. ``score`` is R² (averaged uniformly over outputs).
    """

    def _split_rows(self, y, sample_domain):
        """Every row is labelled: -1 is a target value like any other."""
        if sample_domain is not None:
            raise ParameterError(
                "sample_domain is for the domain adaptation of the classifiers; "
                "a regressor trains on every row (pass sample_domain=None)"
            )
        return np.arange(len(y)), np.arange(0)

    def _adaptation(self):
        """A regressor trains without domain adaptation."""
        return None, 0.0

    def _encode_target(self, y, n_samples: int) -> np.ndarray:
        y = _numeric_target(y)
        _check_length(len(y), n_samples, "targets")
        self._target_1d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        scale = y2.std(axis=0)
        constant = np.flatnonzero(scale == 0)
        if len(constant):
            j = int(constant[0])
            where = "y" if self._target_1d else f"column {j} of y"
            raise InvalidInputError(
                f"{where} is constant (every value is {y2[0, j]!r}): a regressor "
                f"needs a target that varies"
            )
        self.n_outputs_ = y2.shape[1]
        self.target_mean_, self.target_scale_ = y2.mean(axis=0), scale
        return ((y2 - self.target_mean_) / scale).astype(np.float32)

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def _probe(self, features, y):
        return regressor_probe(features, y)

    def _probe_is_the_fit(self) -> bool:
        return self.loss == "mse"  # ridge; Huber trains from the ridge solution

    def _criterion(self):
        return REGRESSION_LOSSES[self.loss]

    def _stratify(self, y):
        return None

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets, in the units of the ``y`` given to fit.

        Parameters
        ----------
        X : sequence of samples

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            1-D when ``y`` was 1-D.
        """
        outputs = self._forward(X).numpy().astype(np.float64)
        y = outputs * self.target_scale_ + self.target_mean_
        return y.ravel() if self.__dict__.get("_target_1d", False) else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _numeric_target(y) -> np.ndarray:
    """``y`` as a finite float array (1-D or 2-D); errors name the first bad row."""
    if hasattr(y, "to_numpy"):  # pandas: its values, not an array of Series
        y = y.to_numpy()
    values = np.asarray(y)
    if values.ndim not in (1, 2) or values.size == 0:
        raise InvalidInputError(
            f"y must be a non-empty 1-D or 2-D array of numbers, got shape "
            f"{values.shape}"
        )
    if values.dtype.kind in "biuf":
        numeric = values.astype(np.float64)
        good = np.isfinite(numeric).reshape(len(numeric), -1).all(axis=1)
    else:  # strings or objects: which rows hold something that is not a number
        rows = values.reshape(len(values), -1)
        good = np.array([all(map(_is_number, row)) for row in rows])
    if not good.all():
        row = int(np.flatnonzero(~good)[0])
        value = values[row].tolist() if values.dtype != object else values[row]
        shown = repr(value) if isinstance(value, str) else str(value)
        raise InvalidInputError(
            f"y must hold finite numbers: row {row} is {shown} (a "
            f"regressor needs numeric targets; use a classifier for labels)"
        )
    return values.astype(np.float64)


def _is_number(value) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    try:
        return bool(np.isfinite(float(value)))
    except (TypeError, ValueError):
        return False

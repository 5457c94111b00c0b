"""Multi-label targets (tags): coercion, per-label thresholds, decisions.

One place for what every multi-label estimator shares:

- ``is_multilabel(y)``: a 2-D ``y`` with two or more columns (scikit-learn's
  0/1 indicator, a DataFrame of 0/1 columns) or a sequence of label lists;
- ``encode_multilabel(y)`` -> ``(indicator, classes)``: the 0/1 matrix and
  the label names (a list of label lists goes through scikit-learn's
  ``MultiLabelBinarizer``; a DataFrame's column names are the labels;
  an array's labels are its column numbers), with errors that name the bad
  cell, the label with no positive row, the label on every row;
- ``to_indicator(y, classes)``: the same against known labels (``score``,
  the audit), an unknown label name is an error naming it and its row;
- ``best_thresholds(Y, scores)``: per label, the cut that maximises F1 on
  scores the model did not train on (out-of-fold or a validation split);
- ``decide(scores, thresholds)``: the 0/1 prediction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from sktransfer.exceptions import InvalidInputError

__all__ = [
    "DEFAULT_THRESHOLD",
    "best_thresholds",
    "decide",
    "encode_multilabel",
    "is_multilabel",
    "to_indicator",
]

DEFAULT_THRESHOLD = 0.5  # a label with no positive in the held-out scores


def _is_label_list(item) -> bool:
    return isinstance(item, Iterable) and not isinstance(
        item, (str, bytes, Mapping, np.ndarray))


def is_multilabel(y) -> bool:
    """Whether ``y`` is a multi-label target (indicator or label lists)."""
    if hasattr(y, "ndim") and hasattr(y, "shape"):  # ndarray, DataFrame, tensor
        if y.ndim == 2:
            return y.shape[1] >= 2
        if y.ndim != 1 or getattr(y, "dtype", None) != np.dtype(object):
            return False
    elif not isinstance(y, (list, tuple)):
        return False
    items = list(y.to_numpy() if hasattr(y, "to_numpy") else y)
    return len(items) > 0 and _is_label_list(items[0])


def encode_multilabel(y) -> tuple[np.ndarray, np.ndarray]:
    """``(indicator (n, n_labels) int64, classes (n_labels,))`` for fit."""
    if hasattr(y, "ndim") and y.ndim == 2:
        columns = getattr(y, "columns", None)
        values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        indicator = _check_indicator(values, columns)
        classes = (np.arange(values.shape[1]) if columns is None
                   else np.asarray(list(columns), dtype=object))
    else:
        indicator, classes = _binarize(y)
    _check_columns(indicator, classes)
    return indicator, classes


def _check_indicator(values: np.ndarray, columns=None) -> np.ndarray:
    if values.dtype.kind in "biuf":  # True/False, 0/1, 0.0/1.0
        ok = (values == 0) | (values == 1)
    elif values.dtype == object:  # numbers only: not "1", not None
        ok = np.vectorize(_is_zero_one, otypes=[bool])(values)
    else:
        ok = np.zeros(values.shape, dtype=bool)
    if not ok.all():
        row, col = (int(i) for i in np.argwhere(~ok)[0])
        name = col if columns is None else f"{list(columns)[col]!r}"
        raise InvalidInputError(
            f"A 2-D y is a multi-label indicator and must hold only 0 and 1: "
            f"row {row}, column {name} is {_plain(values[row, col])!r}. Pass a list of "
            f"label lists, or binarize with sklearn.preprocessing."
            f"MultiLabelBinarizer (regression targets need a regressor)."
        )
    return values.astype(np.int64)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _is_zero_one(value) -> bool:
    return isinstance(value, (bool, int, float, np.number)) and value in (0, 1)


def _binarize(y) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.preprocessing import MultiLabelBinarizer

    rows = list(y.to_numpy() if hasattr(y, "to_numpy") else y)
    for i, row in enumerate(rows):
        if not _is_label_list(row):
            raise InvalidInputError(
                f"y mixes label lists and single labels: row {i} is {row!r}; "
                f"give every row a list of labels (an empty list for none)")
        for label in row:
            if label is None or (isinstance(label, float) and np.isnan(label)):
                raise InvalidInputError(f"y row {i} holds a missing label {label!r}")
    try:
        binarizer = MultiLabelBinarizer().fit(rows)
        indicator = binarizer.transform(rows)
    except TypeError as exc:  # labels that cannot be sorted together
        raise InvalidInputError(
            f"The labels in y must be of one type (all strings or all "
            f"numbers): {exc}") from None
    if len(binarizer.classes_) == 0:
        raise InvalidInputError("y holds no label at all: every label list is empty")
    return np.asarray(indicator, dtype=np.int64), binarizer.classes_


def _check_columns(indicator: np.ndarray, classes: np.ndarray) -> None:
    if len(classes) < 2:
        raise InvalidInputError(
            f"y has a single label {np.asarray(classes).tolist()}: multi-label "
            f"needs at least 2 labels (one yes/no label is a binary classification)")
    counts, names = indicator.sum(axis=0), np.asarray(classes).tolist()
    for j, count in enumerate(counts):
        if count == 0:
            raise InvalidInputError(
                f"Label {names[j]!r} (column {j} of y) has no positive row: "
                f"nothing to learn it from; drop the column or add examples")
        if count == len(indicator):
            raise InvalidInputError(
                f"Label {names[j]!r} (column {j} of y) is on every row: "
                f"nothing to tell it apart from; drop the column or add "
                f"examples without it")


def to_indicator(y, classes: np.ndarray) -> np.ndarray:
    """``y`` (indicator or label lists) as a 0/1 matrix against ``classes``."""
    if hasattr(y, "ndim") and y.ndim == 2:
        values = np.asarray(y.to_numpy() if hasattr(y, "to_numpy") else y)
        if values.shape[1] != len(classes):
            raise InvalidInputError(
                f"y has {values.shape[1]} columns but the model knows "
                f"{len(classes)} labels {np.asarray(classes).tolist()}")
        return _check_indicator(values, getattr(y, "columns", None))
    index = {label: j for j, label in enumerate(classes.tolist())}
    rows = list(y.to_numpy() if hasattr(y, "to_numpy") else y)
    indicator = np.zeros((len(rows), len(classes)), dtype=np.int64)
    for i, row in enumerate(rows):
        if not _is_label_list(row):
            raise InvalidInputError(
                f"y row {i} is {row!r}: a multi-label model takes a list of labels "
                f"per row (or a 0/1 indicator)")
        for label in row:
            if label not in index:
                raise InvalidInputError(
                    f"y row {i} has the unknown label {label!r}; the model knows "
                    f"{np.asarray(classes).tolist()}")
            indicator[i, index[label]] = 1
    return indicator


def best_thresholds(Y: np.ndarray, scores: np.ndarray,
                    default: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Per label, the probability cut with the best F1 on held-out ``scores``.

    The cut sits halfway between the lowest positive-called score and the
    next score below it, not on a training score itself. A label without a
    positive (or without a negative) in ``Y`` keeps ``default``.
    """
    Y, scores = np.asarray(Y), np.asarray(scores, dtype=np.float64)
    thresholds = np.full(Y.shape[1], float(default))
    for j in range(Y.shape[1]):
        truth, s = Y[:, j].astype(bool), scores[:, j]
        if truth.all() or not truth.any():
            continue
        order = np.argsort(-s, kind="stable")
        hits = np.cumsum(truth[order])  # true positives when the top k are called
        k = np.arange(1, len(s) + 1)
        f1 = 2 * hits / (k + truth.sum())
        distinct = np.append(s[order][1:] != s[order][:-1], True)  # ties together
        f1 = np.where(distinct, f1, -1.0)
        best = int(np.argmax(f1))
        below = s[order][best + 1] if best + 1 < len(s) else 0.0
        thresholds[j] = (s[order][best] + below) / 2
    return thresholds


def decide(scores: np.ndarray, thresholds) -> np.ndarray:
    """0/1 indicator: label ``j`` is on where ``scores[:, j] >= thresholds[j]``."""
    return (np.asarray(scores) >= np.asarray(thresholds)).astype(np.int64)

"""Label audit: wrong labels, near-duplicates and outliers in a labelled set.

``find_label_issues`` cross-validates any scikit-learn classifier (or
pipeline) to get out-of-fold class probabilities: every row is judged by a
model that never saw it. When the estimator is a pipeline that starts with a
frozen pretrained embedder (:class:`~sktransfer.image.PretrainedImageFeatures`,
:class:`~sktransfer.text.PretrainedTextEmbeddings`), the inputs are embedded
once, through the embedder's per-sample cache, and only the rest of the
pipeline is refitted per fold.

Two ways to decide which rows are issues (``method``):

- ``"confident"`` (the default): confident learning's count, then a ranking.
  Each class's threshold is the mean probability the model gives that class on
  the rows labelled with it; a row whose predicted class is another class above
  that class's threshold is counted as a probable error (the off-diagonal of
  the *confident joint*, Northcutt et al. 2021). That many rows, those with the
  lowest probability of their given label (self-confidence), are the issues.
  Implemented here: needs no extra package.
- ``"cleanlab"``: ``cleanlab.filter.find_label_issues`` with its defaults
  (``pip install 'sktransfer[audit]'``).

``benchmarks/bench_audit.py`` measures both on flipped labels
(docs/audit.md): the ranking by self-confidence is more precise at the same
recall, on photos and on texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from sktransfer.exceptions import (
    InvalidInputError,
    MissingDependencyError,
    ParameterError,
)

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from numpy.typing import ArrayLike

__all__ = [
    "DUPLICATE_THRESHOLDS",
    "find_duplicates",
    "find_label_issues",
    "find_outliers",
    "image_thumbnails",
    "issues_from_proba",
    "out_of_fold_proba",
]

METHODS = ("auto", "confident", "cleanlab")
# cosine similarity above which two embeddings are copies of one input
# (re-encoded, resized, lightly cropped); measured in benchmarks/bench_audit.py
DUPLICATE_THRESHOLDS = {"thumbnail": 0.9, "image": 0.95, "text": 0.9}
THUMBNAIL_SIDE = 12  # images are compared as gray THUMBNAIL_SIDE^2 thumbnails
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
OUTLIER_MADS = 4.0  # an outlier lies this many MADs above the median score


def find_label_issues(
    estimator: Any,
    X: Any,
    y: ArrayLike,
    *,
    cv: int = 5,
    method: str = "auto",
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Rows whose label is probably wrong, from out-of-fold probabilities.

    Parameters
    ----------
    estimator : classifier or pipeline with ``predict_proba`` (unfitted; cloned)
    X : images (paths, PIL images, arrays), texts, or a feature matrix
    y : array-like of shape (n_samples,)
        The given labels; at least 2 classes, each on at least 2 rows.
    cv : int, default=5
        Stratified folds, at least 2 (capped by the smallest class).
    method : {"auto", "confident", "cleanlab"}, default="auto"
        ``"auto"`` is ``"confident"``, the one measured best (module docstring).
    random_state : int or None, default=0
        Seeds the folds.

    Returns
    -------
    pandas.DataFrame
        One row per input, index = row number, sorted by ``quality`` (lowest,
        most suspicious, first). Columns: ``label`` (given), ``suggested`` (the
        out-of-fold prediction), ``quality`` (out-of-fold probability of the
        given label, in [0, 1]) and ``is_issue`` (bool).
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    y = np.asarray(y)
    proba, classes = out_of_fold_proba(estimator, X, y, cv=cv,
                                       random_state=random_state)
    return issues_from_proba(y, proba, classes, method)


def issues_from_proba(y: ArrayLike, proba: np.ndarray, classes: np.ndarray,
                      method: str = "auto") -> pd.DataFrame:
    """:func:`find_label_issues`'s table from out-of-fold probabilities
    (``proba[:, k]`` is the probability of ``classes[k]``)."""
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    y = np.asarray(y)
    given = np.searchsorted(classes, y)
    quality = proba[np.arange(len(y)), given]
    if method == "cleanlab":
        is_issue = _cleanlab_issues(given, proba)
    else:
        is_issue = np.zeros(len(y), dtype=bool)
        is_issue[np.argsort(quality, kind="stable")[:confident_count(given, proba)]] \
            = True
    frame = pd.DataFrame({"label": y, "suggested": classes[proba.argmax(axis=1)],
                          "quality": quality, "is_issue": is_issue})
    return frame.sort_values("quality", kind="stable")


def confident_count(given: np.ndarray, proba: np.ndarray) -> int:
    """How many labels are probably wrong: the confident joint's off-diagonal.

    A row counts when some class other than its given one reaches that class's
    threshold (the mean probability of the class on the rows labelled with it)
    and is the most probable of the classes that do, and when the model's
    prediction is not the given label.
    """
    n_classes = proba.shape[1]
    thresholds = np.array([proba[given == k, k].mean() for k in range(n_classes)])
    above = proba >= thresholds - 1e-6
    candidates = np.where(above, proba, -1.0)
    confident = candidates.argmax(axis=1)
    counted = above.any(axis=1) & (confident != given) \
        & (proba.argmax(axis=1) != given)
    return int(counted.sum())


def _cleanlab_issues(given, proba) -> np.ndarray:
    try:
        from cleanlab.filter import find_label_issues as cleanlab_find
    except ImportError as exc:
        raise MissingDependencyError(
            "method='cleanlab' needs cleanlab: pip install 'sktransfer[audit]' "
            "(or use method='confident', which needs nothing more)") from exc
    return np.asarray(cleanlab_find(given, proba), dtype=bool)


def out_of_fold_proba(
    estimator: Any, X: Any, y: ArrayLike, *, cv: int = 5,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(proba, classes)``: stratified out-of-fold ``predict_proba`` of every row.

    A pipeline starting with frozen pretrained embedders embeds ``X`` once
    (through their cache) and cross-validates the remaining steps.
    """
    y = np.asarray(y)
    classes, counts = check_labels(y, cv=cv)
    if not hasattr(estimator, "predict_proba"):
        raise ParameterError(f"{type(estimator).__name__} has no predict_proba: "
                             f"pass a classifier that gives probabilities")
    features, head = split_frozen(estimator, X)
    folds = StratifiedKFold(max(2, min(int(cv), counts.min())), shuffle=True,
                            random_state=random_state)
    from sktransfer.evaluate import _out_of_fold_proba  # labels as given

    return _out_of_fold_proba(head, features, y, folds), classes


def check_labels(y: ArrayLike, *, cv: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, counts)`` of ``y``, checked as out-of-fold predictions need:
    one label per row, at least 2 classes, each on at least 2 rows, and
    ``cv >= 2`` folds. Cheap: callers with costly inputs check before the work.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidInputError(f"y must be one label per row, got shape {y.shape}")
    if int(cv) < 2:
        raise ParameterError(f"cv must be at least 2 folds, got {cv}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise InvalidInputError(
            f"y holds a single class ({classes.tolist()[0]!r} on all "
            f"{len(y)} rows): auditing labels needs at least 2 classes")
    if counts.min() < 2:
        raise InvalidInputError(
            f"class {classes.tolist()[counts.argmin()]!r} is on a single row: each "
            f"class needs at least 2 rows for out-of-fold predictions")
    return classes, counts


def split_frozen(estimator: Any, X: Any) -> tuple[Any, Any]:
    """``(inputs for the rest, the rest)``: the leading frozen embedders of a
    pipeline applied once, or ``(X, estimator)`` when there are none."""
    import sys

    from sklearn.pipeline import Pipeline

    if not isinstance(estimator, Pipeline):
        return X, estimator
    # a pipeline can only hold an embedder whose module is loaded (no torch import)
    frozen = tuple(getattr(sys.modules[module], name) for module, name in (
        ("sktransfer.image", "PretrainedImageFeatures"),
        ("sktransfer.text", "PretrainedTextEmbeddings")) if module in sys.modules)
    steps = estimator.steps
    n = 0
    while n < len(steps) - 1 and isinstance(steps[n][1], frozen):
        n += 1
    if n == 0:
        return X, estimator
    for _, step in steps[:n]:
        X = clone(step).fit(X).transform(X)  # a frozen net learns nothing from X
    rest = steps[n:]
    return X, (rest[0][1] if len(rest) == 1 else Pipeline(rest))


# --- duplicates and outliers ------------------------------------------------------

def find_duplicates(
    X: Any, *, embedder: Any = None, threshold: float | str = "auto",
) -> list[list[int]]:
    """Groups of near-identical inputs: copies re-encoded, resized or cropped.

    Two inputs are copies when the cosine similarity of their descriptors
    (image thumbnails, text embeddings) reaches ``threshold``; groups are the
    connected sets of copies.

    Parameters
    ----------
    X : images, texts, or (``embedder="precomputed"``) an embedding matrix
    embedder : transformer, "precomputed" or None, default=None
        None: gray thumbnails (:func:`image_thumbnails`) for images,
        ``PretrainedTextEmbeddings()`` for texts.
    threshold : float in (0, 1] or "auto", default="auto"
        ``"auto"``: ``DUPLICATE_THRESHOLDS`` of what is compared (0.9 for
        image thumbnails, 0.9 for text embeddings, 0.95 for an embedder or
        precomputed embeddings).

    Returns
    -------
    list of list of int
        Each group's row numbers ascending; groups ordered by their first row.
    """
    if embedder is None and input_modality(X) == "image":
        features, modality = image_thumbnails(X), "thumbnail"
    else:
        features, modality = embed_inputs(X, embedder)
    if threshold == "auto":
        threshold = DUPLICATE_THRESHOLDS[modality]
    if isinstance(threshold, str) or not 0 < float(threshold) <= 1:
        raise ParameterError(f"threshold must be a float in (0, 1] or 'auto', got "
                             f"{threshold!r}")
    pairs = _similar_pairs(_unit(features), float(threshold))
    return _groups(len(features), pairs)


def find_outliers(
    X: Any, *, embedder: Any = None, n_neighbors: int = 10,
) -> pd.DataFrame:
    """Inputs far from every other input in embedding space.

    The score of a row is the mean cosine distance to its ``n_neighbors``
    nearest rows; it is an outlier when the score lies more than
    ``OUTLIER_MADS`` median absolute deviations above the median.

    Parameters
    ----------
    X : images, texts, or (``embedder="precomputed"``) an embedding matrix
    embedder : transformer, "precomputed" or None, default=None
        As in :func:`find_duplicates`.
    n_neighbors : int, default=10
        Capped at the number of rows minus one.

    Returns
    -------
    pandas.DataFrame
        Index = row number, columns ``score`` and ``is_outlier``, highest
        score first.
    """
    features, _ = embed_inputs(X, embedder)
    if len(features) < 3:
        raise InvalidInputError(f"finding outliers needs at least 3 inputs, got "
                                f"{len(features)}")
    if not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
        raise ParameterError(f"n_neighbors must be an int >= 1, got "
                             f"{n_neighbors!r}")
    unit = _unit(features)
    k = min(int(n_neighbors), len(unit) - 1)
    scores = np.empty(len(unit))
    for start, block in _similarity_blocks(unit):
        np.fill_diagonal(block[:, start:start + len(block)], -np.inf)
        nearest = -np.partition(-block, k - 1, axis=1)[:, :k]
        scores[start:start + len(block)] = 1 - nearest.mean(axis=1)
    median = np.median(scores)
    spread = np.median(np.abs(scores - median)) or 1e-12
    frame = pd.DataFrame({"score": scores,
                          "is_outlier": scores > median + OUTLIER_MADS * spread})
    return frame.sort_values("score", ascending=False, kind="stable")


def image_thumbnails(X: Any) -> np.ndarray:
    """Gray ``THUMBNAIL_SIDE`` x ``THUMBNAIL_SIDE`` thumbnails (box-filtered,
    mean removed, unit norm), one row per image: what copies share.

    A network's embedding says what an image shows, so different crops of one
    texture embed alike; the thumbnail keeps where things are, so it matches a
    re-encoded, resized or slightly cropped copy and little else.
    """
    from PIL import Image

    from sktransfer.data import as_image_list, load_image

    rows = []
    for index, item in enumerate(as_image_list(X)):
        gray = load_image(item, index).convert("L")
        small = gray.resize((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.BOX)  # type: ignore[attr-defined]
        values = np.asarray(small, dtype=np.float64).ravel()
        rows.append(values - values.mean())
    return _unit(np.asarray(rows))


def embed_inputs(X: Any, embedder: Any = None) -> tuple[np.ndarray, str]:
    """``(float embeddings, modality)`` of ``X`` with ``embedder`` (see
    :func:`find_duplicates`)."""
    if isinstance(embedder, str) and embedder == "precomputed":
        features = np.asarray(X, dtype=np.float64)
        if features.ndim != 2 or not np.isfinite(features).all():
            raise InvalidInputError(f"embedder='precomputed' needs a finite 2-D "
                                    f"array, got shape {features.shape}")
        return features, "image"
    modality = input_modality(X)
    if embedder is None:
        from sktransfer.image import PretrainedImageFeatures
        from sktransfer.text import PretrainedTextEmbeddings

        embedder = (PretrainedImageFeatures()
                    if modality == "image" else PretrainedTextEmbeddings())
    if isinstance(embedder, str) or not hasattr(embedder, "transform"):
        raise ParameterError(f"embedder must be a transformer, 'precomputed' or "
                             f"None, got {embedder!r}")
    try:
        features = embedder.transform(X)
    except Exception as exc:
        from sklearn.exceptions import NotFittedError

        if not isinstance(exc, NotFittedError):
            raise
        features = clone(embedder).fit(X).transform(X)
    return np.asarray(features, dtype=np.float64), modality


def input_modality(X: Any) -> str:
    """``"text"`` for strings that are not image file names, else ``"image"``."""
    from pathlib import Path

    items = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else X
    if isinstance(items, np.ndarray) and items.ndim >= 3:
        return "image"
    first = next(iter(items), None)
    if isinstance(first, str):
        return "image" if Path(first).suffix.lower() in IMAGE_SUFFIXES else "text"
    return "image"


def _unit(features: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.where(norms > 0, norms, 1)


def _similarity_blocks(unit: np.ndarray, rows: int = 1024):
    """``(start, cosine similarities of unit[start:start+rows] to all)``: the
    full matrix is never held at once."""
    for start in range(0, len(unit), rows):
        yield start, unit[start:start + rows] @ unit.T


def _similar_pairs(unit: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    pairs = []
    for start, block in _similarity_blocks(unit):
        for i, j in zip(*np.nonzero(block >= threshold), strict=True):
            if start + i < j:
                pairs.append((start + int(i), int(j)))
    return pairs


def _groups(n: int, pairs) -> list[list[int]]:
    """Connected components (union-find) of size >= 2."""
    parent = list(range(n))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(root(i), []).append(i)
    return sorted(group for group in members.values() if len(group) > 1)

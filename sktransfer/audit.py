"""Label audit: wrong labels, near-duplicates and outliers in a labelled set.

``find_label_issues`` cross-validates any scikit-learn classifier (or
pipeline) to get out-of-fold class probabilities: every row is judged by a
model that never saw it. When the estimator is a pipeline that starts with a
frozen pretrained embedder (:class:`~sktransfer.image.PretrainedImageFeatures`,
:class:`~sktransfer.text.PretrainedTextEmbeddings`), the inputs are embedded
once, through the embedder's per-sample cache, and only the rest of the
pipeline is refitted per fold.

Two ways to decide which rows are issues (``method``):

- ``"confident"`` (the default): two views of each row, a count, a ranking.
  The views are the out-of-fold probabilities and, when the estimator sees a
  numeric feature matrix (a frozen embedder's embeddings, or ``X`` itself),
  the labels of the row's ``n_neighbors`` nearest rows (cosine, itself left
  out) as a second probability: the share of them with each label, as
  SimiFeat and cleanlab's kNN issues use it. Their mean is the row's
  probability of each class, and ``quality`` is that of its given label. The
  count comes from two estimates of the wrong labels: confident learning's
  (the off-diagonal of the *confident joint*, Northcutt et al. 2021: a row
  counts when another class reaches that class's threshold, the mean
  probability of the class on the rows labelled with it) and a two-component
  Gaussian mixture on ``log(quality)``, the rows more likely in its low
  component (as DivideMix separates noisy rows by their loss). The first
  stands unless it is more than ``ISSUE_COUNT_RATIO`` (2) times the second,
  then the second: a weak model makes confident mistakes that inflate the
  first (2-3x the wrong labels on the hard dev sets), while on a strong
  model the mixture under-counts. That many rows, those of lowest
  ``quality``, are the issues. Implemented here: needs no extra
  package (``n_neighbors=0``: the probabilities alone, confident learning's
  count alone).
- ``"cleanlab"``: ``cleanlab.filter.find_label_issues`` with its defaults
  (``pip install 'sktransfer[audit]'``).

Multi-label ``y`` (a 0/1 indicator or label lists): the folds are plain
k-fold, the estimator must give one probability per label (a
``OneVsRestClassifier``, a multi-label ``FineTunedClassifier``...), and each
label is audited as its own yes/no question: ``"confident"`` applies the
count-then-rank above to every label (its given 0/1 against the out-of-fold
probability), a row is an issue when any of its labels is; ``"cleanlab"`` is
``cleanlab.multilabel_classification.filter.find_label_issues``.

``benchmarks/bench_audit_suite.py`` measures both on flipped labels in real
dev and held-out sets (docs/audit.md); the neighbours, their number and the
mixture were chosen on the dev sets.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.model_selection import StratifiedKFold

from sktransfer._utils.multilabel import encode_multilabel, is_multilabel
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
    "aligned_residual",
    "find_duplicates",
    "find_label_issues",
    "duplicates_from_features",
    "find_outliers",
    "issues_from_proba",
    "multilabel_issues_from_proba",
    "ngram_vectors",
    "out_of_fold_proba",
    "perceptual_hashes",
    "small_copies",
    "thumbnails",
]

METHODS = ("auto", "confident", "cleanlab")
# Duplicates (find_duplicates): chosen on the dev sets of
# benchmarks/bench_audit_suite.py. The embeddings' cosine similarity for copies,
# with a perceptual hash (images), n-grams (texts), or alone (precomputed):
DUPLICATE_THRESHOLDS = {"image": 0.7, "text": 0.9, "precomputed": 0.95}
HASH_SURE, HASH_MAYBE = 12, 14  # pHash bits apart: a copy; a copy if embeddings agree
# A crop on every side shifts pHash's grid: each image is also hashed with
# CROP_SHARE of its width / height cut off every side (what a copy cropped so
# looks like), and one image's full hash within CROP_SURE bits of the other's
# inner hash is a copy, within CROP_MAYBE bits a copy if the embeddings agree
CROP_SHARE, CROP_SURE, CROP_MAYBE = 0.03, 4, 6
# ... or, within HASH_LOOSE bits, a copy if the 6 x 6 gray thumbnails correlate
# at THUMB_SURE: a tiny image resized and re-encoded loses its hash, not its shape.
# Only where one of the two is smaller than pHash's working size (HASH_SIDE px
# on its smaller side): larger smooth images (skies, gradients) share their
# coarse shape without being copies, and their hash works
HASH_LOOSE, THUMB_SIZE, THUMB_SURE, HASH_SIDE = 22, 6, 0.95, 32
# ... or, within HASH_LOOSE bits (full or inner-crop hash), a copy if the two
# images, aligned, differ by at most ALIGN_SURE levels (root mean square over
# the pixels' red, green and blue): each image's copy at most ALIGN_SIDE px
# a side is resampled over the boxes that cut ALIGN_CUTS of each side, the
# other's copy compared at the smaller of the two sizes, either way round.
# Only for pairs whose 8 x 8 gray box thumbnails (absolute levels) are within
# LEVEL_NEAR levels (RMS): a copy keeps its brightness, contrast and colours
# pixel by pixel, a different crop of the same texture does not
ALIGN_SIDE, ALIGN_CUTS, ALIGN_SURE, LEVEL_NEAR = 32, (0.0, 0.02, 0.04, 0.06), 6.0, 6.0
# With the small copies, no pair is a copy whose best alignment is more than
# ALIGN_APART levels apart, whatever the hash, thumbnails or embeddings say
# (a similar DCT sign pattern or texture, not the same pixels)
ALIGN_APART = 30.0
# ... or, whatever the hashes, a copy if one of the two is smaller than
# HASH_SIDE px on its smaller side, their 8 x 8 gray levels are within
# TINY_LEVELS and their small copies align within TINY_ALIGN levels: at
# 8-16 px a resized, re-encoded copy's hash is noise (24-28 of 64 bits
# apart), its pixels are not
TINY_LEVELS, TINY_ALIGN = 4.0, 4.0
TINY_APART = 14.0
# A nearly flat image (every colour channel's pixel std under FLAT_SPREAD in
# its small copy: a blank page, a night sky) has the hash of every other flat
# image: a pair found with one must align within ALIGN_SURE levels
FLAT_SPREAD = 8.0
# Each image is aligned with at most ALIGN_TRIES candidates a rule (those
# nearest in 8 x 8 gray levels; a pair is tried when either is among the
# other's nearest): n images cost at most about 2 n ALIGN_TRIES alignments,
# even where thousands of tiny, nearly flat images are all candidates
ALIGN_TRIES = 8
# The hashes, thumbnails and small copies work at 32 px or less: a JPEG file
# is decoded at the smallest DCT scale that keeps SIGNATURE_SIDE px on its
# shorter side (a 12-MP photo at 1/8, about 5 times faster than in full)
SIGNATURE_SIDE = 256
NGRAM_SURE, NGRAM_MAYBE = 0.85, 0.7  # char 3-gram cosine: likewise, for texts
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# Outliers (find_outliers): at most this share flagged, and only rows this many
# times farther from their nearest class than its members are from each other
OUTLIER_CONTAMINATION = 0.02
OUTLIER_RATIO = 1.5
# Label issues (find_label_issues): neighbours whose labels are the second view;
# the confident joint's count stands unless it is more than ISSUE_COUNT_RATIO
# times the mixture's estimate of the wrong labels (then the mixture's)
ISSUE_NEIGHBORS = 10
# rows of a similarity matrix computed at once: memory stays linear in n
BLOCK_ROWS = 1024
ISSUE_COUNT_RATIO = 2.0


def find_label_issues(
    estimator: Any,
    X: Any,
    y: ArrayLike,
    *,
    cv: int = 5,
    method: str = "auto",
    random_state: int | None = 0,
    n_neighbors: int = ISSUE_NEIGHBORS,
) -> pd.DataFrame:
    """Rows whose label is probably wrong, from out-of-fold probabilities.

    Parameters
    ----------
    estimator : classifier or pipeline with ``predict_proba`` (unfitted; cloned)
    X : images (paths, PIL images, arrays), texts, or a feature matrix
    y : array-like of shape (n_samples,) or (n_samples, n_labels)
        The given labels; at least 2 classes, each on at least 2 rows.
        Multi-label: a 0/1 indicator or a list of label lists (module
        docstring).
    cv : int, default=5
        Stratified folds, at least 2 (capped by the smallest class).
    method : {"auto", "confident", "cleanlab"}, default="auto"
        ``"auto"`` is ``"confident"``, the one measured best (module docstring).
    random_state : int or None, default=0
        Seeds the folds.
    n_neighbors : int, default=10
        ``"confident"``, one label per row: the nearest rows whose labels
        are the second view (module docstring; multi-label ``y`` and
        ``"cleanlab"`` do not use it), in the features the estimator's last steps see
        (a frozen embedder's output, else ``X`` when it is a numeric
        matrix; otherwise unused). 0: the probabilities alone.

    Returns
    -------
    pandas.DataFrame
        One row per input, index = row number, sorted by ``quality`` (lowest,
        most suspicious, first). Columns: ``label`` (given), ``suggested`` (the
        most probable class), ``quality`` (probability of the given label, in
        [0, 1]: the mean of the out-of-fold probability and the share of the
        ``n_neighbors`` nearest rows that carry that label, or the
        out-of-fold probability alone) and ``is_issue`` (bool). Multi-label:
        ``label`` and ``suggested`` are label lists (``suggested``: the labels
        at out-of-fold probability >= 0.5), ``quality`` the lowest
        probability of a given answer over the labels, and ``in_doubt`` lists
        the labels found wrong on that row.
    """
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    _check_neighbors(n_neighbors)
    if is_multilabel(y):
        return _multilabel_issues(estimator, X, y, cv, method, random_state)
    y = np.asarray(y)
    check_labels(y, cv=cv)
    if not hasattr(estimator, "predict_proba"):
        raise ParameterError(f"{type(estimator).__name__} has no predict_proba: "
                             f"pass a classifier that gives probabilities")
    features, head = split_frozen(estimator, X)
    proba, classes = out_of_fold_proba(head, features, y, cv=cv,
                                       random_state=random_state)
    return issues_from_proba(y, proba, classes, method,
                             features=_numeric_matrix(features),
                             n_neighbors=n_neighbors)


def issues_from_proba(y: ArrayLike, proba: np.ndarray, classes: np.ndarray,
                      method: str = "auto", *, features: Any = None,
                      n_neighbors: int = ISSUE_NEIGHBORS) -> pd.DataFrame:
    """:func:`find_label_issues`'s table from out-of-fold probabilities
    (``proba[:, k]`` is the probability of ``classes[k]``) and, for the
    neighbours' view, the ``features`` (one row an input; None: none)."""
    if method not in METHODS:
        raise ParameterError(f"method must be one of {METHODS}, got {method!r}")
    _check_neighbors(n_neighbors)
    y = np.asarray(y)
    given = np.searchsorted(classes, y)
    if method == "cleanlab":
        quality = proba[np.arange(len(y)), given]
        is_issue = _cleanlab_issues(given, proba)
    else:
        neighbours = features is not None and n_neighbors > 0 and len(y) > 2
        if neighbours:
            proba = (proba + neighbor_proba(features, given, len(classes),
                                            n_neighbors)) / 2
        quality = proba[np.arange(len(y)), given]
        count = confident_count(given, proba)
        if neighbours:
            estimate = mixture_count(quality)
            if count > ISSUE_COUNT_RATIO * estimate:  # a weak model's confident
                count = estimate  # mistakes inflate the joint
        is_issue = np.zeros(len(y), dtype=bool)
        is_issue[np.argsort(quality, kind="stable")[:count]] = True
    frame = pd.DataFrame({"label": y, "suggested": classes[proba.argmax(axis=1)],
                          "quality": quality, "is_issue": is_issue})
    return frame.sort_values("quality", kind="stable")


def neighbor_proba(features: Any, given: np.ndarray, n_classes: int,
                   n_neighbors: int = ISSUE_NEIGHBORS) -> np.ndarray:
    """Each row's share of its ``n_neighbors`` nearest other rows (cosine)
    carrying each class (``given`` holds class numbers 0..n_classes-1)."""
    unit = _unit(np.asarray(features, dtype=np.float64))
    near = min(int(n_neighbors), len(unit) - 1)
    shares = np.zeros((len(unit), n_classes))
    for start, block in _similarity_blocks(unit):
        rows = np.arange(start, start + len(block))
        block[np.arange(len(block)), rows] = -np.inf  # itself
        nearest = np.argpartition(-block, near - 1, axis=1)[:, :near]
        np.add.at(shares, (np.repeat(rows, near), given[nearest].ravel()),
                  1.0 / near)
    return shares


def mixture_count(quality: np.ndarray) -> int:
    """Rows more likely in the lower of two Gaussian components fitted to
    ``log(quality + 0.001)``: the wrong labels, when they stand apart."""
    from sklearn.mixture import GaussianMixture

    values = np.log(np.asarray(quality, dtype=np.float64) + 1e-3)[:, None]
    if len(values) < 4 or np.ptp(values) < 1e-9:
        return 0 if np.ptp(values) < 1e-9 else len(values)
    mixture = GaussianMixture(2, random_state=0).fit(values)
    low = int(np.argmin(mixture.means_.ravel()))
    return int((mixture.predict_proba(values)[:, low] > 0.5).sum())


def _numeric_matrix(features: Any) -> np.ndarray | None:
    """``features`` as a finite 2-D float array, or None when it is not one
    (texts, images, a ragged list): no neighbours' view then."""
    if hasattr(features, "to_numpy") and hasattr(features, "columns"):
        features = features.to_numpy()
    if not isinstance(features, np.ndarray) or features.ndim != 2 \
            or features.dtype.kind not in "biuf":
        return None
    features = features.astype(np.float64)
    return features if np.isfinite(features).all() else None


def _check_neighbors(n_neighbors: Any) -> None:
    if isinstance(n_neighbors, bool) or not isinstance(
            n_neighbors, (int, np.integer)) or n_neighbors < 0:
        raise ParameterError(f"n_neighbors must be an int >= 0 (0: the "
                             f"probabilities alone), got {n_neighbors!r}")


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


def _multilabel_issues(estimator, X, y, cv, method, random_state) -> pd.DataFrame:
    """:func:`find_label_issues` for a 0/1 indicator or label lists."""
    from sklearn.model_selection import KFold

    from sktransfer._utils.rows import take as _take

    Y, classes = encode_multilabel(y)
    if int(cv) < 2:
        raise ParameterError(f"cv must be at least 2 folds, got {cv}")
    folds = KFold(int(min(cv, len(Y))), shuffle=True, random_state=random_state)
    features, head = split_frozen(estimator, X)
    proba = np.zeros((len(Y), len(classes)))
    for train, test in folds.split(Y):
        model = clone(head).fit(_take(features, train), Y[train])
        fold = np.asarray(model.predict_proba(_take(features, test)))
        if fold.shape != (len(test), len(classes)):  # checked before it is stored
            raise ParameterError(
                f"{type(estimator).__name__}.predict_proba gave "
                f"{fold.shape[-1]} columns for {len(classes)} labels: use a "
                f"multi-label estimator, e.g. "
                f"OneVsRestClassifier(LogisticRegression())")
        proba[test] = fold
    return multilabel_issues_from_proba(Y, proba, classes, method)


def multilabel_issues_from_proba(Y: np.ndarray, proba: np.ndarray,
                                 classes: np.ndarray, method: str = "auto"
                                 ) -> pd.DataFrame:
    """The multi-label audit table from out-of-fold per-label probabilities."""
    agree = np.where(Y == 1, proba, 1 - proba)  # probability of the given answer
    doubt = np.zeros(Y.shape, dtype=bool)
    if method == "cleanlab":
        try:
            from cleanlab.multilabel_classification.filter import (
                find_label_issues as cleanlab_multilabel,
            )
        except ImportError as exc:
            raise MissingDependencyError(
                "method='cleanlab' needs cleanlab: pip install "
                "'sktransfer[audit]'") from exc
        lists = [np.flatnonzero(row).tolist() for row in Y]
        rows = np.asarray(cleanlab_multilabel(lists, proba), dtype=bool)
        doubt[rows] = agree[rows] < 0.5
    else:
        for j in range(Y.shape[1]):
            binary = np.column_stack([1 - proba[:, j], proba[:, j]])
            count = confident_count(Y[:, j], binary)
            doubt[np.argsort(agree[:, j], kind="stable")[:count], j] = True
    names = np.asarray(classes, dtype=object)
    frame = pd.DataFrame({
        "label": [names[row == 1].tolist() for row in Y],
        "suggested": [names[row >= 0.5].tolist() for row in proba],
        "quality": agree.min(axis=1),
        "is_issue": doubt.any(axis=1),
        "in_doubt": [names[row].tolist() for row in doubt],
    })
    return frame.sort_values("quality", kind="stable")


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
    from sktransfer._utils.rows import out_of_fold_proba  # labels as given

    return out_of_fold_proba(head, features, y, folds), classes


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

    Two signals are combined, one that sees what an input *is* (a pretrained
    embedding) and one that sees how it is *written or drawn*:

    - images: a 64-bit perceptual hash (:func:`perceptual_hashes`, the DCT
      pHash). Two images are copies when their hashes differ in at most
      ``HASH_SURE`` bits, or in at most ``HASH_MAYBE`` bits and their
      embeddings reach cosine ``threshold``, or when one's hash is within
      ``CROP_SURE`` bits of the other's *inner-crop hash* (the image with
      ``CROP_SHARE``, 3%, cut off every side: what a copy cropped so looks
      like), or within ``CROP_MAYBE`` bits with the embeddings at
      ``threshold``, or in at most ``HASH_LOOSE`` bits and their 6 x 6 gray
      :func:`thumbnails` correlate at ``THUMB_SURE`` or more, when one of
      the two is smaller than ``HASH_SIDE`` (32) pixels on its smaller side,
      or in at most ``HASH_LOOSE`` bits (full or inner-crop hash) when their
      :func:`small_copies` (RGB, at most 32 pixels a side) differ by at most
      ``ALIGN_SURE`` levels at their best alignment
      (:func:`aligned_residual`: one cut by up to 6% on each side, resized
      onto the other), for pairs whose 8 x 8 gray thumbnails are within
      ``LEVEL_NEAR`` levels, or, whatever the hashes, when one of the two is
      smaller than ``HASH_SIDE`` pixels, their 8 x 8 gray thumbnails are
      within ``TINY_LEVELS`` and their small copies align within
      ``TINY_ALIGN`` levels. And no pair whose small copies are more than
      ``ALIGN_APART`` levels apart at their best alignment is a copy,
      whatever the other signals say (``TINY_APART`` when one is smaller
      than ``HASH_SIDE`` pixels; ``ALIGN_SURE`` when one is nearly flat,
      every colour channel's pixel std under ``FLAT_SPREAD``, as all flat
      images share one hash). Each image is aligned with at most
      ``ALIGN_TRIES`` candidates a rule, those nearest in 8 x 8 levels.
      The hash alone misses crops (a crop on every side shifts its grid)
      and strong re-encodings; the embedding alone matches different crops
      of one texture (same content, not a copy); a tiny image (16 pixels)
      resized and saved as JPEG loses both, not its coarse shape; larger
      smooth images (skies, gradients) share their coarse shape without
      being copies, so the thumbnails judge small ones only; a copy keeps
      its pixels' brightness and colour, which a different crop of the same
      texture does not; at 8-16 pixels a copy's hash is noise, its pixels
      are not. Two nearly flat images of one colour (a night sky,
      a blank page) have the same pixels and are grouped. Each image is
      decoded once (a JPEG file at the smallest DCT scale that keeps
      ``SIGNATURE_SIDE`` pixels), hashed twice and kept as a small copy
      (3 KiB); pairs
      are compared in blocks of 1024 rows, and pixels are aligned only for
      pairs not yet in one group, so memory stays linear in the number of
      images.
    - texts: character n-grams (:func:`ngram_vectors`): copies when the
      n-gram cosine reaches ``NGRAM_SURE``, or ``NGRAM_MAYBE`` with the
      embeddings at ``threshold``. Case, punctuation, spacing and a changed
      word move the n-grams little; a paraphrase on the same topic shares its
      embedding, not its n-grams.
    - ``embedder="precomputed"``: the embeddings alone, cosine >= ``threshold``.

    Groups are the connected sets of copies. Thresholds were chosen on the
    dev sets of ``benchmarks/bench_audit_suite.py`` (docs/audit.md).

    Parameters
    ----------
    X : images, texts, or (``embedder="precomputed"``) an embedding matrix
    embedder : transformer, "precomputed" or None, default=None
        None: ``PretrainedImageFeatures()`` for images,
        ``PretrainedTextEmbeddings()`` for texts. A fitted embedder is used
        as it is (its cache spares a second embedding).
    threshold : float in (0, 1] or "auto", default="auto"
        Cosine similarity of the embeddings; ``"auto"``:
        ``DUPLICATE_THRESHOLDS`` (image, text or precomputed).

    Returns
    -------
    list of list of int
        Each group's row numbers ascending; groups ordered by their first row.
    """
    if isinstance(embedder, str) and embedder == "precomputed":
        features, _ = embed_inputs(X, embedder)
        return duplicates_from_features(features, threshold=threshold)
    features, modality = embed_inputs(X, embedder)
    if modality == "image":
        hashes, thumbs, sides, inner, pixels = _image_signatures(
            X, crop=CROP_SHARE, pixels=True)
        return duplicates_from_features(features, hashes=hashes, thumbs=thumbs,
                                        sides=sides, crop_hashes=inner,
                                        pixels=pixels, threshold=threshold)
    return duplicates_from_features(features, ngrams=ngram_vectors(_texts(X)),
                                    threshold=threshold)


def duplicates_from_features(
    embeddings: np.ndarray, *, hashes: np.ndarray | None = None,
    ngrams: Any = None, threshold: float | str = "auto",
    thumbs: np.ndarray | None = None, sides: ArrayLike | None = None,
    crop_hashes: np.ndarray | None = None, pixels: Any = None,
) -> list[list[int]]:
    """:func:`find_duplicates`' groups from what it compares: embeddings and,
    for images, :func:`perceptual_hashes` (with :func:`thumbnails` and
    ``sides``, each image's smaller side in pixels, ``crop_hashes``,
    ``perceptual_hashes(X, crop=CROP_SHARE)``, and ``pixels``,
    :func:`small_copies`, if given) or, for texts, :func:`ngram_vectors` (at
    most one of the two; with neither, the embeddings alone)."""
    kind = ("image" if hashes is not None else
            "text" if ngrams is not None else "precomputed")
    if threshold == "auto":
        threshold = DUPLICATE_THRESHOLDS[kind]
    if isinstance(threshold, str) or not 0 < float(threshold) <= 1:
        raise ParameterError(f"threshold must be a float in (0, 1] or 'auto', got "
                             f"{threshold!r}")
    unit = _unit(np.asarray(embeddings, dtype=np.float64))
    side = np.zeros(0)
    if thumbs is not None:
        if sides is None:
            raise ParameterError("thumbs needs sides: each image's smaller side "
                                 "in pixels (the thumbnails judge images "
                                 f"smaller than {HASH_SIDE} px only)")
        side = np.asarray(sides, dtype=np.float64).ravel()
        if len(side) != len(unit) or len(thumbs) != len(unit):
            raise ParameterError(f"thumbs and sides need one row per embedding "
                                 f"({len(unit)}), got {len(thumbs)} and "
                                 f"{len(side)}")
    inner = None
    if crop_hashes is not None:
        if hashes is None:
            raise ParameterError("crop_hashes needs hashes: an inner crop's hash "
                                 "is compared with the other image's full hash")
        inner = np.where(np.asarray(crop_hashes, dtype=bool), 1.0, -1.0)
        if inner.shape != np.shape(hashes):
            raise ParameterError(f"crop_hashes needs the shape of hashes "
                                 f"{np.shape(hashes)} (one row per embedding), "
                                 f"got {inner.shape}")
    levels, flats = np.zeros((0, 64)), np.zeros(0, dtype=bool)
    if pixels is not None:
        if hashes is None:
            raise ParameterError("pixels needs hashes: aligned small copies are "
                                 f"compared for pairs within {HASH_LOOSE} hash bits")
        pixels, levels, flats = _check_pixels(pixels, len(unit))
    if hashes is not None:
        signs = np.where(np.asarray(hashes, dtype=bool), 1.0, -1.0)
        if len(signs) != len(unit):
            raise ParameterError(f"hashes need one row per embedding "
                                 f"({len(unit)}), got {len(signs)}")
        width = signs.shape[1]
        second = (signs, _within(HASH_MAYBE, width), _within(HASH_SURE, width))
    elif ngrams is not None:
        second = (ngrams, NGRAM_MAYBE - 1e-9, NGRAM_SURE - 1e-9)
    else:
        second = None
    joined = _Components(len(unit))
    aligner = None if pixels is None else _Aligner(pixels)
    for start, similar in _similarity_blocks(unit):
        rows = slice(start, start + BLOCK_ROWS)
        # pairs with an image under pHash's working size (HASH_SIDE px)
        small = np.minimum.outer(side[rows], side) < HASH_SIDE if side.size else None
        if second is None:
            found = similar >= threshold
        else:
            matrix, maybe, sure = second
            block = matrix[rows] @ matrix.T
            block = block.toarray() if hasattr(block, "toarray") else block
            found = (block >= sure) | ((block >= maybe) & (similar >= threshold))
            if hashes is not None and thumbs is not None:
                shapes = thumbs[rows] @ thumbs.T
                found |= ((block >= _within(HASH_LOOSE, width)) & (shapes >= THUMB_SURE)
                          & small)
            if inner is not None:  # a copy cropped on every side: its full
                # hash against the other's inner crop, either way round
                shifted = np.maximum(signs[rows] @ inner.T, inner[rows] @ signs.T)
                found |= (shifted >= _within(CROP_SURE, width)) | (
                    (shifted >= _within(CROP_MAYBE, width)) & (similar >= threshold))
        if aligner is None:
            _join(joined, found, start)
            continue
        tiny = np.zeros_like(found) if small is None else small
        flat = np.logical_or.outer(flats[rows], flats)
        apart = euclidean_distances(levels[rows], levels) / 8
        for pairs, bound in ((found & ~tiny & ~flat, ALIGN_APART),  # the veto
                             (found & tiny & ~flat, TINY_APART),
                             (found & flat, ALIGN_SURE)):
            _join(joined, _nearest(pairs, apart, start), start, aligner, bound,
                  either=True)
        # aligned pixels, for pairs not yet copies whose hashes (HASH_LOOSE)
        # and 8 x 8 gray levels (LEVEL_NEAR, RMS) are close enough
        hashed = block if inner is None else np.maximum(block, shifted)
        _join(joined, _nearest((hashed >= _within(HASH_LOOSE, width)) & ~found & (
            apart <= LEVEL_NEAR), apart, start), start, aligner, ALIGN_SURE,
            either=True)
        if small is not None:  # tiny images: their pixels, whatever their hashes
            _join(joined, _nearest(small & ~found & (apart <= TINY_LEVELS), apart,
                                   start), start, aligner, TINY_ALIGN, either=True)
    return joined.groups()


def _nearest(candidates: np.ndarray, apart: np.ndarray, start: int,
             keep: int = ALIGN_TRIES) -> np.ndarray:
    """The block's candidate pairs (``candidates[i, j]``: rows ``start + i``
    and ``j``), each row's ``keep`` nearest by ``apart`` only (itself left
    out): a row's pairs with every column, so that a pair is tried when
    either image is among the other's nearest."""
    candidates = candidates.copy()
    candidates[np.arange(len(candidates)), start + np.arange(len(candidates))] = False
    crowded = np.flatnonzero(candidates.sum(axis=1) > keep)
    # 128 rows at a time: a whole block's distances would double its memory
    for first in range(0, crowded.size, 128):
        part = crowded[first:first + 128]
        distance = np.where(candidates[part], apart[part], np.inf)
        nearest = np.argpartition(distance, keep - 1, axis=1)[:, :keep]
        candidates[part] = False
        candidates[part[:, None], nearest] = True
    return candidates


def _join(joined: _Components, pairs: np.ndarray, start: int,
          aligner: _Aligner | None = None, bound: float = 0.0,
          either: bool = False) -> None:
    """Join the pairs of a block (``pairs[i, j]``: rows ``start + i`` and
    ``j``), with an ``aligner`` only those aligned within ``bound``. Pixels
    are aligned only for pairs not yet in one group: a pair inside a group
    changes nothing, so n images cost about n alignments of pairs that join
    (plus those that fail). A symmetric ``pairs`` is read above the
    diagonal only; ``either``: it is not symmetric (each row's nearest,
    :func:`_nearest`), so a pair is tried from either row."""
    for i, j in zip(*np.nonzero(pairs), strict=True):
        a, b = start + int(i), int(j)
        if (a < b or (either and a > b)) and not joined.same(a, b) and (
                aligner is None or aligner.within(a, b, bound)):
            joined.join(a, b)


def perceptual_hashes(X: Any, *, crop: float = 0.0) -> np.ndarray:
    """64-bit DCT perceptual hashes (pHash), one row of 64 bools per image.

    The gray image is resized to 32 x 32, its 2-D DCT taken, and the 8 x 8
    lowest frequencies compared with their median: what survives re-encoding
    and resizing, as ``imagehash.phash`` computes it. ``crop`` in [0, 0.25):
    the share of the width and height cut off every side first (rounded to
    whole pixels; none where less than 4 pixels would be left), as
    :func:`find_duplicates` hashes each image a second time
    (``CROP_SHARE``) so that a copy cropped on every side is found. A JPEG
    file is decoded at the smallest DCT scale that keeps ``SIGNATURE_SIDE``
    pixels on its shorter side.
    """
    signatures = _image_signatures(X, hashes=not crop, thumbs=False, crop=crop)
    return signatures[3] if crop else signatures[0]


def small_copies(X: Any) -> list[np.ndarray]:
    """Each image in RGB, shrunk (box filter, aspect kept) to at most
    ``ALIGN_SIDE`` (32) pixels a side: what :func:`find_duplicates` aligns
    to tell a copy (the same pixels, cropped, resized or re-encoded) from a
    different crop of the same texture. One ``(height, width, 3)`` uint8
    array per image, at most 3 KiB each."""
    return _image_signatures(X, hashes=False, thumbs=False, pixels=True)[4]


def aligned_residual(a: np.ndarray, b: np.ndarray, *, bound: float = 0.0) -> float:
    """The root mean square difference, in levels of red, green and blue,
    of two :func:`small_copies` at their best alignment: one image's boxes
    that cut ``ALIGN_CUTS`` of each side (256 boxes) resampled to the
    smaller of the two sizes (at most ``ALIGN_SIDE``) and compared with the
    other whole, either way round. A copy cropped by up to about 7% a side,
    resized and re-encoded stays within a few levels; brightness, contrast
    and colour are not normalised away, so a different crop of one texture
    does not. ``bound``: the search stops at the first alignment within it,
    the uncut one (both whole) tried first; the residual returned is then
    at most ``bound``, not necessarily the least."""
    pair, _, _ = _check_pixels([a, b], 2, names=("a", "b"))
    return _Aligner(pair, keep_bytes=0).residual(0, 1, bound)


class _Aligner:
    """:func:`aligned_residual` over many pairs of one list of small copies,
    each image's 256 boxes resampled once and kept (up to ``keep_bytes``,
    the least recently used dropped first): pairs come row by row, so one
    image's boxes serve all its pairs."""

    def __init__(self, pixels: list[np.ndarray], keep_bytes: int = 64 << 20) -> None:
        from collections import OrderedDict

        self.pixels = pixels
        self.keep_bytes = keep_bytes
        self.kept: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self.held = 0

    def _view(self, k: int) -> Any:
        from PIL import Image

        return Image.fromarray(np.ascontiguousarray(self.pixels[k], dtype=np.uint8),
                               "RGB")

    def _boxes(self, k: int, side: int) -> np.ndarray:
        from PIL import Image

        key = (k, side)
        if key in self.kept:
            self.kept.move_to_end(key)
            return self.kept[key]
        source = self._view(k)
        width, height = source.size
        boxes = np.stack([
            np.asarray(source.resize(
                (side, side), Image.BILINEAR,  # type: ignore[attr-defined]
                box=(left * width, top * height, width - right * width,
                     height - bottom * height)), dtype=np.uint8).ravel()
            for left, top, right, bottom in itertools.product(ALIGN_CUTS, repeat=4)])
        if boxes.nbytes <= self.keep_bytes:
            self.kept[key] = boxes
            self.held += boxes.nbytes
            while self.held > self.keep_bytes:
                self.held -= self.kept.popitem(last=False)[1].nbytes
        return boxes

    def residual(self, a: int, b: int, bound: float = 0.0) -> float:
        from PIL import Image

        side = min(ALIGN_SIDE, *self.pixels[a].shape[:2], *self.pixels[b].shape[:2])
        wholes = {k: np.asarray(self._view(k).resize(
            (side, side), Image.BILINEAR),  # type: ignore[attr-defined]
            dtype=np.float64).ravel() for k in (a, b)}
        # the uncut boxes first (both whole): most copies are within a
        # bound there, and nothing is resampled 256 times
        best = float(np.sqrt(((wholes[a] - wholes[b]) ** 2).mean()))
        if best <= bound:
            return best
        for source, target in ((a, b), (b, a)):
            whole = wholes[target]
            boxes = self._boxes(source, side).astype(np.float64)
            best = min(best, float(np.sqrt(((boxes - whole) ** 2).mean(axis=1)).min()))
            if best <= bound:
                break
        return best

    def within(self, a: int, b: int, bound: float) -> bool:
        return self.residual(a, b, bound) <= bound


def _check_pixels(pixels: Any, n: int, names: tuple[str, ...] = ()
                  ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The small copies as ``(height, width, 3)`` uint8 arrays, their
    8 x 8 gray box thumbnails (absolute levels) and whether each is nearly
    flat (every colour channel's pixel std under ``FLAT_SPREAD``); ``names``
    for the errors (default ``pixels[i]``)."""
    from PIL import Image

    if len(pixels) != n:
        raise ParameterError(f"pixels needs one small copy per embedding ({n}), "
                             f"got {len(pixels)}")
    checked, levels, flats = [], [], []
    for index, copy in enumerate(pixels):
        array = np.asarray(copy)
        if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8 or (
                min(array.shape[:2]) < 1 or max(array.shape[:2]) > ALIGN_SIDE):
            name = names[index] if names else f"pixels[{index}]"
            raise ParameterError(
                f"{name} must be a (height, width, 3) uint8 array at most "
                f"{ALIGN_SIDE} px a side (small_copies), got {array.dtype} of "
                f"shape {array.shape}")
        checked.append(array)
        gray = Image.fromarray(array, "RGB").convert("L")
        levels.append(np.asarray(gray.resize((8, 8), Image.BOX),  # type: ignore[attr-defined]
                                 dtype=np.float64).ravel())
        flats.append(array.reshape(-1, 3).std(axis=0).max() < FLAT_SPREAD)
    return checked, np.asarray(levels).reshape(-1, 64), np.asarray(flats, dtype=bool)


def thumbnails(X: Any, size: int = THUMB_SIZE) -> np.ndarray:
    """Each image's ``size`` x ``size`` gray thumbnail (Lanczos), less its
    mean, scaled to unit norm: one row per image, so that the product of two
    rows is the thumbnails' correlation (0 for a flat image)."""
    return _image_signatures(X, hashes=False, size=size)[1]


def _phash(gray: Any) -> np.ndarray:
    from PIL import Image
    from scipy.fft import dct

    pixels = np.asarray(gray.resize((32, 32), Image.LANCZOS),  # type: ignore[attr-defined]
                        dtype=np.float64)
    low = dct(dct(pixels, axis=0, norm="ortho"), axis=1, norm="ortho")[:8, :8]
    return (low > np.median(low)).ravel()


def _image_signatures(X: Any, *, hashes: bool = True, thumbs: bool = True,
                      size: int = THUMB_SIZE, crop: float = 0.0, pixels: bool = False,
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                 list[np.ndarray]]:
    """``(pHashes, thumbnails, smaller sides, pHashes of the inner crops,
    small RGB copies)`` with each image decoded once (an empty array or list for
    what is not asked for; inner crops with ``crop`` > 0 only)."""
    from PIL import Image

    from sktransfer.data import as_image_list, load_image

    if isinstance(crop, bool) or not isinstance(crop, (int, float)) or not (
            0 <= crop < 0.25):
        raise ParameterError(f"crop must be a share of each side in [0, 0.25), "
                             f"got {crop!r}")
    bits, shapes, sides, inner, copies = [], [], [], [], []
    for index, item in enumerate(as_image_list(X)):
        image = load_image(item, index, min_size=SIGNATURE_SIDE)
        gray = image.convert("L")
        sides.append(min(gray.size))
        if pixels:
            copy = image.copy()  # load_image gives RGB
            copy.thumbnail((ALIGN_SIDE, ALIGN_SIDE), Image.BOX)  # type: ignore[attr-defined]
            copies.append(np.asarray(copy, dtype=np.uint8))
        if hashes:
            bits.append(_phash(gray))
        if crop:
            w, h = gray.size
            cut_w, cut_h = round(crop * w), round(crop * h)
            inside = (gray.crop((cut_w, cut_h, w - cut_w, h - cut_h))
                      if min(w - 2 * cut_w, h - 2 * cut_h) >= 4 else gray)
            inner.append(_phash(inside))
        if thumbs:
            small = np.asarray(gray.resize((size, size), Image.LANCZOS),  # type: ignore[attr-defined]
                               dtype=np.float64).ravel()
            small -= small.mean()
            norm = np.linalg.norm(small)
            shapes.append(small / norm if norm > 1e-9 else small)
    return (np.asarray(bits, dtype=bool).reshape(-1, 64),
            np.asarray(shapes, dtype=np.float64).reshape(-1, size * size),
            np.asarray(sides, dtype=np.int64),
            np.asarray(inner, dtype=bool).reshape(-1, 64), copies)


def ngram_vectors(texts: Any) -> Any:
    """Unit-norm TF-IDF vectors of each text's character 3-grams (lower case,
    within words, spacing collapsed): a sparse matrix, one row a text."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [" ".join(str(t).split()) for t in texts]
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3),
                                 lowercase=True, sublinear_tf=True)
    try:
        return vectorizer.fit_transform(texts)
    except ValueError:  # no text holds a 3-gram: nothing in common
        from scipy.sparse import csr_matrix

        return csr_matrix((len(texts), 1))


def find_outliers(
    X: Any, y: ArrayLike | None = None, *, embedder: Any = None,
    n_neighbors: int = 10, contamination: float = OUTLIER_CONTAMINATION,
) -> pd.DataFrame:
    """Inputs far from every class (or, without labels, from every input).

    For each class, a row's distance to it is the mean cosine distance to its
    ``n_neighbors`` nearest members of that class (itself left out), divided
    by the class's own spread: the median of that distance over the class's
    members. The score is the smallest over the classes: about 1 for a row
    as close to some class as that class's members are to each other, large
    for a row far from all of them. A varied class (a "misc" class, a class
    shot in many settings) has a wide spread of its own, so its members are
    not outliers for being varied. Without ``y`` the whole set is one class.

    A row is an outlier when its score exceeds ``OUTLIER_RATIO`` and is among
    the ``contamination`` share of highest scores: at most that share is
    flagged (2% by default; the rows above the ratio may be fewer). The
    frame's ``attrs`` hold the ``contamination`` and ``ratio`` used.

    Parameters
    ----------
    X : images, texts, or (``embedder="precomputed"``) an embedding matrix
    y : array-like of shape (n_samples,) or None, default=None
        The labels; None treats the rows as one class.
    embedder : transformer, "precomputed" or None, default=None
        As in :func:`find_duplicates`.
    n_neighbors : int, default=10
        Capped at a class's size minus one.
    contamination : float in (0, 0.5], default=0.02
        The largest share of rows flagged.

    Returns
    -------
    pandas.DataFrame
        Index = row number, columns ``score``, ``nearest_class`` (the class the
        score is measured to; None without ``y``) and ``is_outlier``, highest
        score first.
    """
    if not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
        raise ParameterError(f"n_neighbors must be an int >= 1, got "
                             f"{n_neighbors!r}")
    if isinstance(contamination, bool) or not isinstance(
            contamination, (int, float)) or not 0 < contamination <= 0.5:
        raise ParameterError(f"contamination must be a float in (0, 0.5], got "
                             f"{contamination!r}")
    features, _ = embed_inputs(X, embedder)
    if len(features) < 3:
        raise InvalidInputError(f"finding outliers needs at least 3 inputs, got "
                                f"{len(features)}")
    if y is None:
        labels = np.zeros(len(features), dtype=int)
        classes: np.ndarray = np.array([None], dtype=object)
    else:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(features):
            raise InvalidInputError(f"y must hold one label per input ({len(features)}"
                                    f"), got shape {y.shape}")
        classes, labels = np.unique(y, return_inverse=True)
    unit = _unit(features)
    distances = np.full((len(unit), len(classes)), np.inf)
    spreads = np.full(len(classes), np.nan)
    for k in range(len(classes)):
        members = np.flatnonzero(labels == k)
        if len(members) < 2:
            continue  # a class of one row has no spread to measure
        near = min(int(n_neighbors), len(members) - 1)
        distance = np.empty(len(unit))
        for start, block in _similarity_blocks(unit, columns=unit[members]):
            rows = np.arange(start, start + len(block))
            own = np.flatnonzero(labels[rows] == k)
            block[own, np.searchsorted(members, rows[own])] = -np.inf  # itself
            nearest = -np.partition(-block, near - 1, axis=1)[:, :near]
            distance[rows] = 1 - nearest.mean(axis=1)
        distances[:, k] = distance
        spreads[k] = np.median(distance[members])
    # a tight class is measured with the typical spread, not its own: a few
    # odd crops of a uniform texture are not outliers of the whole set
    if not np.isfinite(spreads).any():
        raise InvalidInputError("every class of y is on a single row: finding "
                                "outliers needs a class with at least 2 rows")
    floor = np.nanmedian(spreads)
    ratios = distances / np.maximum(np.nan_to_num(spreads, nan=np.inf),
                                    max(float(floor), 1e-12))
    nearest_class = ratios.argmin(axis=1)
    scores = ratios[np.arange(len(unit)), nearest_class]
    order = np.argsort(-scores, kind="stable")
    is_outlier = np.zeros(len(unit), dtype=bool)
    top = order[:int(np.ceil(contamination * len(unit)))]
    is_outlier[top[scores[top] > OUTLIER_RATIO]] = True
    frame = pd.DataFrame({"score": scores, "nearest_class": classes[nearest_class],
                          "is_outlier": is_outlier})
    frame = frame.iloc[order]
    frame.attrs.update(contamination=float(contamination), ratio=OUTLIER_RATIO)
    return frame


def _texts(X: Any) -> list[str]:
    items = X.iloc[:, 0] if isinstance(X, pd.DataFrame) else X
    return [str(t) for t in items]


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


def _within(bits: int, width: int) -> float:
    """The product of two +-1 hash rows (``width`` bits) that differ in at
    most ``bits`` bits, less a rounding margin."""
    return width - 2 * bits - 1e-9


def _similarity_blocks(unit: np.ndarray, rows: int = BLOCK_ROWS, columns=None):
    """``(start, cosine similarities of unit[start:start+rows] to columns)``
    (all rows by default): the full matrix is never held at once."""
    columns = unit if columns is None else columns
    for start in range(0, len(unit), rows):
        yield start, unit[start:start + rows] @ columns.T


class _Components:
    """Union-find over n items: groups joined pair by pair."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def root(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def same(self, i: int, j: int) -> bool:
        return self.root(i) == self.root(j)

    def join(self, i: int, j: int) -> None:
        self.parent[self.root(i)] = self.root(j)

    def groups(self) -> list[list[int]]:
        """The components of size >= 2, each ascending, ordered by first item."""
        members: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            members.setdefault(self.root(i), []).append(i)
        return sorted(group for group in members.values() if len(group) > 1)

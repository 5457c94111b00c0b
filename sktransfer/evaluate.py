"""Transfer vs from-scratch: cross-validated comparison and learning curves.

``compare`` scores several estimators on the *same* cross-validation folds and
reports accuracy, macro recall and macro F1 (mean and std) with fit times.
``image_candidates`` / ``text_candidates`` build the usual line-up: a
from-scratch baseline (raw pixels or TF-IDF + logistic regression, and for
images the same network with random weights), frozen pretrained features + a
linear model, and fine-tuning. ``learning_curve`` scores them against the
number of labelled samples per class and ``plot_learning_curve`` draws it.
"""

from __future__ import annotations

import time
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import type_of_target
from tqdm.auto import tqdm

from sktransfer._utils.rows import take
from sktransfer.backbones import BUNDLED_IMAGE, BUNDLED_TEXT
from sktransfer.baselines import RawPixels
from sktransfer.exceptions import InvalidInputError

if TYPE_CHECKING:  # names used in annotations only
    import os
    from collections.abc import Mapping, Sequence
    from typing import Any

    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

__all__ = [
    "RawPixels",  # lives in sktransfer.baselines; importable from here too
    "compare",
    "format_table",
    "image_candidates",
    "learning_curve",
    "learning_curve_figure",
    "plot_learning_curve",
    "text_candidates",
]

SCORING = ("accuracy", "recall_macro", "f1_macro")


def _linear(features):
    return make_pipeline(features, StandardScaler(),
                         LogisticRegression(max_iter=2000))


def image_candidates(
    model: str = BUNDLED_IMAGE,
    finetune: bool = True,
    image_size: int | None = 96,
    max_epochs: int = 5,
    random_state: int = 0,
) -> dict[str, BaseEstimator]:
    """The image line-up: raw pixels, random weights, frozen, fine-tuned."""
    from sktransfer import FineTunedClassifier, PretrainedImageFeatures

    candidates = {
        "raw pixels + logistic (scratch)": _linear(RawPixels()),
        f"{model} random weights + logistic (scratch)": _linear(
            PretrainedImageFeatures(model, weights=None)),
        f"{model} frozen features + logistic": _linear(
            PretrainedImageFeatures(model)),
    }
    if finetune:
        candidates[f"{model} fine-tuned (last 2 blocks)"] = FineTunedClassifier(
            model, freeze_depth=-2, max_epochs=max_epochs, head_epochs=2,
            image_size=image_size, lr=3e-3, random_state=random_state)
    return candidates


def text_candidates(
    model: str = BUNDLED_TEXT,
    finetune: bool = True,
    max_epochs: int = 5,
    random_state: int = 0,
) -> dict[str, BaseEstimator]:
    """The text line-up: TF-IDF, frozen sentence embeddings, fine-tuned."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from sktransfer import PretrainedTextEmbeddings

    candidates = {
        "TF-IDF + logistic (scratch)": make_pipeline(
            TfidfVectorizer(sublinear_tf=True), LogisticRegression(max_iter=2000)),
        f"{model} frozen embeddings + logistic": make_pipeline(
            PretrainedTextEmbeddings(model), LogisticRegression(max_iter=2000)),
    }
    if finetune:
        try:
            from sktransfer import FineTunedTextClassifier
        except (ImportError, AttributeError):
            return candidates
        candidates[f"{model} fine-tuned (last 2 layers)"] = FineTunedTextClassifier(
            model, freeze_depth=-2, max_epochs=max_epochs, backbone_lr=1e-4,
            max_length=64, random_state=random_state)
    return candidates


def _check_class_sizes(y, cv):
    """Stratified ``cv`` folds need ``cv`` rows of every class."""
    classes, counts = np.unique(np.asarray(y), return_counts=True)
    if isinstance(cv, Integral) and counts.min() < cv:
        raise InvalidInputError(
            f"cv={cv} needs at least {cv} samples per class; the smallest class "
            f"({classes.tolist()[counts.argmin()]!r}) has {counts.min()}")


def compare(
    X: Any,
    y: ArrayLike,
    estimators: Mapping[str, BaseEstimator],
    cv: Any = 5,
    scoring: Sequence[str] = SCORING,
    random_state: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Cross-validate each estimator on the same folds (stratified for labels).

    Parameters
    ----------
    X, y : the data (any input the estimators accept)
    estimators : dict of name -> estimator
    cv : int, default=5
    scoring : sequence of str, default=("accuracy", "recall_macro", "f1_macro")
    random_state : int, default=0
        Seeds the fold split.
    progress : bool, default=False

    Returns
    -------
    pandas.DataFrame
        One row per estimator: ``<metric>_mean``, ``<metric>_std`` for each
        metric, and ``fit_time`` (mean seconds per fold).
    """
    stratify = type_of_target(y) in ("binary", "multiclass")
    if stratify:
        _check_class_sizes(y, cv)
    folds = (StratifiedKFold if stratify else KFold)(
        cv, shuffle=True, random_state=random_state)
    rows = []
    for name, estimator in tqdm(estimators.items(), disable=not progress,
                                desc="comparing", unit="model"):
        result = cross_validate(clone(estimator), X, y, cv=folds,
                                scoring=list(scoring), error_score="raise")
        row = {"model": name}
        for metric in scoring:
            scores = result[f"test_{metric}"]
            row[f"{metric}_mean"] = scores.mean()
            row[f"{metric}_std"] = scores.std()
        row["fit_time"] = result["fit_time"].mean()
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def format_table(table: pd.DataFrame, scoring: Sequence[str] = SCORING) -> str:
    """The comparison as text: ``mean ± std`` per metric, fit time in seconds."""
    shown = pd.DataFrame(index=table.index)
    for metric in scoring:
        shown[metric] = [f"{m:.3f} ± {s:.3f}" for m, s in
                         zip(table[f"{metric}_mean"], table[f"{metric}_std"],
                             strict=True)]
    shown["fit time (s)"] = table["fit_time"].map("{:.1f}".format)
    return shown.to_string()


def learning_curve(
    X_train: Any,
    y_train: ArrayLike,
    X_test: Any,
    y_test: ArrayLike,
    estimators: Mapping[str, BaseEstimator],
    per_class: Sequence[int] = (2, 5, 10),
    random_state: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Held-out accuracy against the number of labelled samples per class.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``per_class``, ``accuracy``, ``fit_time``.
    """
    y_train = np.asarray(y_train)
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(y_train))
    rows = []
    steps = [(n, name) for n in per_class for name in estimators]
    for n, name in tqdm(steps, disable=not progress, desc="learning curve"):
        keep = np.concatenate([order[y_train[order] == c][:n]
                               for c in np.unique(y_train)])
        start = time.perf_counter()
        fitted = clone(estimators[name]).fit(take(X_train, keep), y_train[keep])
        seconds = time.perf_counter() - start
        rows.append({"model": name, "per_class": n, "fit_time": seconds,
                     "accuracy": fitted.score(X_test, y_test)})
    return pd.DataFrame(rows)


def plot_learning_curve(
    curve: pd.DataFrame,
    path: str | os.PathLike[str],
    title: str = "Learning curve",
) -> str | os.PathLike[str]:
    """Draw ``learning_curve``'s output to a PNG; returns the path."""
    import matplotlib.pyplot as plt

    fig = learning_curve_figure(curve, title)
    fig.savefig(path)
    plt.close(fig)
    return path


def learning_curve_figure(curve: pd.DataFrame, title: str = "Learning curve") -> Figure:
    """The learning-curve figure (matplotlib, non-interactive backend)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for name, points in curve.groupby("model", sort=False):
        ax.plot(points["per_class"], points["accuracy"], marker="o", label=name)
    # ticks at the measured counts: whole numbers, never 2.5 samples a class
    ax.set_xticks(sorted(set(curve["per_class"].astype(int))))
    ax.set_xlabel("labelled samples per class")
    ax.set_ylabel("held-out accuracy")
    ax.set_title(title)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig

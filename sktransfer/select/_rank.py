"""rank_models and logme: the metrics and the ranking table."""

from __future__ import annotations

import os
import time
from numbers import Integral
from typing import TYPE_CHECKING, Any

import numpy as np

from sktransfer._utils.device import one_blas_thread
from sktransfer.exceptions import InvalidInputError, ParameterError

if TYPE_CHECKING:  # names used in annotations only
    import pandas as pd

# public names: sktransfer.select.__all__ (re-exported there)

METRICS = ("auto", "logme", "probe")
# metric="auto" also runs the probe while n_samples x (widest candidate's
# features) stays under this: a few seconds of logistic regression per fold on
# two CPU cores. Beyond it LogME alone (one SVD per candidate) scores.
PROBE_MAX_CELLS = 3_000_000
# The layers candidates=None tries in each offline network: the last one, and
# this many blocks spread evenly from the first to the one before the last.
N_LAYERS = 6


def logme(features: Any, y: Any) -> float:
    """LogME: the log evidence of a linear model of ``y`` on ``features``.

    The features are the design matrix of a Bayesian linear regression with
    prior precision ``alpha`` on the weights and noise precision ``beta``;
    LogME maximises the marginal likelihood (the evidence) over both by the
    fixed-point iteration of MacKay, computed from one SVD of the features,
    and returns the maximum divided by ``n_samples`` (You et al., "LogME:
    Practical Assessment of Pre-trained Models for Transfer Learning",
    ICML 2021). Higher is better; values compare candidates on the same
    ``y``, not across data sets.

    Parameters
    ----------
    features : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,) or (n_samples, n_targets)
        Class labels (any dtype but float): one one-hot column per class,
        and the evidence is averaged over the classes. Float values: a
        regression; each target column is standardised, evidences averaged.

    Returns
    -------
    float
    """
    F = np.asarray(features, dtype=np.float64)
    if F.ndim != 2 or not len(F) or not np.isfinite(F).all():
        raise InvalidInputError(
            f"features must be a finite 2-D array (n_samples, n_features), got "
            f"shape {F.shape}" + ("" if F.ndim != 2 or not len(F)
                                  else " with non-finite values"))
    targets = _targets(y, len(F))
    n, d = F.shape
    u, sigma, _ = np.linalg.svd(F, full_matrices=False)
    s = sigma**2  # eigenvalues of F^T F; the other d - len(s) are 0
    return float(np.mean([_evidence(u, sigma, s, t, n, d) for t in targets.T]))


def _targets(y, n: int) -> np.ndarray:
    """``y`` as columns to explain: one-hot classes, or standardised floats."""
    y = np.asarray(y)
    if len(y) != n:
        raise InvalidInputError(f"y has {len(y)} rows but the features {n}")
    if y.dtype.kind == "f":
        t = y.reshape(n, -1)
        if not np.isfinite(t).all():
            raise InvalidInputError("y holds NaN or infinite values")
        scale = t.std(axis=0)
        if (scale == 0).any():
            raise InvalidInputError("y is constant: there is nothing to explain")
        return (t - t.mean(axis=0)) / scale
    classes, codes = np.unique(y.ravel(), return_inverse=True)
    if y.ndim != 1:
        raise InvalidInputError(f"class labels y must be 1-D, got shape {y.shape}")
    if len(classes) < 2:
        only = classes[0].tolist()
        raise InvalidInputError(f"y holds a single class ({only!r}): ranking "
                                f"needs at least 2 classes")
    return np.eye(len(classes))[codes]


def _evidence(u, sigma, s, t, n: int, d: int, steps: int = 11) -> float:
    z = u.T @ t  # t in the basis of the features' left singular vectors
    outside = max(float(t @ t - z @ z), 0.0)  # part no weight vector reaches
    alpha, beta = 1.0, 1.0
    for _ in range(steps):  # converges in 2-3 steps typically (the paper: <= 10)
        lam = alpha / beta
        gamma = float((s / (s + lam)).sum())
        m = beta * sigma * z / (alpha + beta * s)  # posterior mean, V basis
        m2 = float(m @ m)
        residual = float(((z - sigma * m) ** 2).sum()) + outside
        alpha = gamma / (m2 + 1e-5)
        beta = (n - gamma) / (residual + 1e-5)
        if abs(alpha / beta - lam) / lam < 0.01:
            break
    log_det = float(np.log(alpha + beta * s).sum()) + (d - len(s)) * np.log(alpha)
    value = (d / 2 * np.log(alpha) + n / 2 * np.log(beta) - log_det / 2
             - beta / 2 * (residual + 1e-5) - alpha / 2 * (m2 + 1e-5)
             - n / 2 * np.log(2 * np.pi))
    return value / n


def _probe(features: np.ndarray, y: np.ndarray, regression: bool, cv: int) -> float:
    """Mean cross-validated accuracy (or R^2) of a linear model on features."""
    from sklearn.linear_model import RidgeClassifierCV, RidgeCV
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # Ridge, its penalty chosen by efficient leave-one-out inside each fold:
    # closed form, ~20x faster than a logistic regression on 1280 features
    # for about the same held-out accuracy of the ranking.
    alphas = np.logspace(-2, 4, 7)
    if regression:
        head = RidgeCV(alphas=alphas)
        folds = KFold(cv, shuffle=True, random_state=0)
    else:
        head = RidgeClassifierCV(alphas=alphas)
        folds = StratifiedKFold(cv, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), head)
    # Rounded: equal fold scores summed in another order must tie exactly
    # (the probe saturates on easy data), so that LogME breaks the tie.
    return round(float(cross_val_score(model, features, y, cv=folds).mean()), 9)


def rank_models(
    X: Any,
    y: Any,
    candidates: list | None = None,
    *,
    metric: str = "auto",
    cv: int = 5,
    cache: bool | str | os.PathLike[str] = True,
    progress: bool = False,
    modality: str | None = None,
) -> pd.DataFrame:
    """Rank candidate networks and layers for ``(X, y)``, best first.

    Parameters
    ----------
    X : images or texts
        What ``PretrainedImageFeatures`` / ``PretrainedTextEmbeddings`` take.
        Strings are texts unless every one ends with an image suffix (``.jpg``,
        ``.png``...: ``sktransfer.data.IMAGE_SUFFIXES``); no file is looked
        at. ``modality`` says it outright.
    y : array-like of shape (n_samples,)
        Class labels, or float values for a regression.
    candidates : list or None, default=None
        Unfitted ``PretrainedImageFeatures`` / ``PretrainedTextEmbeddings``
        (any model, weights, layer, pooling), model specs (a name, path or
        ``nn.Module``) or dicts of such an estimator's parameters. None: every
        model of the data's modality that resolves offline, at its last layer
        and ``N_LAYERS`` earlier ones, plus (images) the network with random
        weights (see :func:`default_candidates`).
    metric : {"auto", "logme", "probe"}, default="auto"
        What ``score`` is. ``"auto"``: the probe when it is cheap
        (``n_samples x widest feature count <= PROBE_MAX_CELLS``), else
        LogME. LogME is always computed (it is cheap), so the table shows both
        whenever the probe runs.
    cv : int, default=5
        Folds of the probe (stratified for classes).
    cache : bool or path, default=True
        True: each candidate's features go to its own cache (its ``cache``
        parameter: memory unless it names a directory), so fitting the chosen
        candidate next embeds nothing again; a directory: that persistent
        cache for every candidate; False: no cache.
    progress : bool, default=False
        A progress bar per forward pass.
    modality : {"image", "text"} or None, default=None
        What ``X`` holds; None reads it from ``X`` (see ``X``). The candidates
        must be of that modality.

    Returns
    -------
    pandas.DataFrame
        One row per candidate, best first (ties of ``score`` broken by the
        higher LogME), indexed by its position in
        ``candidates`` (or in ``default_candidates``): ``candidate`` (a
        readable name), ``score``, ``seconds`` (its share of the shared
        forward pass plus its metrics) and one column per metric computed
        (``logme``; ``probe`` when it ran).
    """
    import pandas as pd
    from sklearn.base import clone

    from sktransfer.select._shared_pass import embed_candidates, modality_of

    modality = modality_of(X, modality)
    if candidates is None:
        candidates = default_candidates(modality)
    estimators = _as_estimators(candidates, modality)
    regression, y = _check_target(y, X)
    if metric not in METRICS:
        raise ParameterError(f"metric={metric!r} is not one of {list(METRICS)}")
    if isinstance(cv, bool) or not isinstance(cv, Integral) or cv < 2:
        raise ParameterError(f"cv={cv!r} must be an int >= 2 (the probe's folds)")
    if metric == "probe" and not regression:
        _check_folds(y, cv)  # before anything is embedded
    if cache is not True:
        estimators = [clone(e).set_params(cache=cache or False) for e in estimators]
    features, seconds = embed_candidates(estimators, X, progress=progress)
    widest = max(f.shape[1] for f in features)
    run_probe = metric == "probe" or (
        metric == "auto" and len(y) * widest <= PROBE_MAX_CELLS)
    if run_probe and not regression:
        _check_folds(y, cv)
    rows = []
    # Small dense problems (an SVD of n x d, ridge folds): one BLAS thread.
    # Measured on a busy 2-core machine, OpenBLAS's two spinning threads made
    # them 10-50x slower than one (benchmarks/RESULTS.md, model and layer
    # choice).
    with one_blas_thread():
        for i, (estimator, values) in enumerate(
                zip(estimators, features, strict=True)):
            start = time.perf_counter()
            row = {"candidate": candidate_name(estimator), "logme": logme(values, y)}
            if run_probe:
                row["probe"] = _probe(values, y, regression, cv)
            row["score"] = row["probe" if run_probe else "logme"]
            row["seconds"] = seconds[i] + time.perf_counter() - start
            rows.append(row)
    columns = ["candidate", "score", "seconds", "logme"] + ["probe"] * run_probe
    table = pd.DataFrame(rows, columns=columns)
    # Ties of the probe (it saturates on easy data) go to the higher LogME.
    return table.sort_values(["score", "logme"], ascending=False, kind="stable")


def _check_target(y, X) -> tuple[bool, np.ndarray]:
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidInputError(f"y must be 1-D (n_samples,), got shape {y.shape}")
    n = len(X) if hasattr(X, "__len__") else None
    if n is not None and len(y) != n:
        raise InvalidInputError(f"y has {len(y)} values but X {n} samples")
    regression = y.dtype.kind == "f"
    _targets(y, len(y))  # NaN, a constant or a single class: a clear error
    return regression, y


def _check_folds(y: np.ndarray, cv: int) -> None:
    classes, counts = np.unique(y, return_counts=True)
    if counts.min() < cv:
        small = classes[counts.argmin()]
        small = small.item() if hasattr(small, "item") else small  # np or str
        logme_hint = "metric='logme' (CLI: --metric logme), which needs no folds"
        if counts.min() < 2:
            raise InvalidInputError(
                f"class {small!r} has a single sample: the probe's folds need at "
                f"least 2 a class; use {logme_hint}")
        raise InvalidInputError(
            f"class {small!r} has {counts.min()} samples, fewer than the probe's "
            f"cv={cv} folds: pass cv={counts.min()} or less (CLI: --cv "
            f"{counts.min()}), or {logme_hint}")


def _as_estimators(candidates, modality: str) -> list:
    """Each candidate as an unfitted estimator of the data's modality."""
    from sklearn.base import clone

    from sktransfer.image import PretrainedImageFeatures
    from sktransfer.text import PretrainedTextEmbeddings

    if isinstance(candidates, (str, os.PathLike, dict)) or not hasattr(
            candidates, "__len__"):
        raise ParameterError(f"candidates must be a list (of estimators, model "
                             f"specs or parameter dicts) or None, got "
                             f"{type(candidates).__name__}")
    if len(candidates) == 0:
        raise ParameterError("candidates is empty: give at least one estimator or "
                             "model spec, or None for every offline model")
    cls = PretrainedImageFeatures if modality == "image" else PretrainedTextEmbeddings
    out = []
    for i, item in enumerate(candidates):
        if isinstance(item, (PretrainedImageFeatures, PretrainedTextEmbeddings)):
            if not isinstance(item, cls):
                raise ParameterError(
                    f"candidate {i} ({type(item).__name__}) does not fit the data: "
                    f"X holds {modality}s, which {cls.__name__} embeds")
            out.append(clone(item))
        elif isinstance(item, dict):
            unknown = sorted(set(item) - set(cls().get_params()))
            if unknown:
                raise ParameterError(f"candidate {i}: {unknown} are not parameters "
                                     f"of {cls.__name__}")
            out.append(cls(**{**_defaults(cls), **item}))
        else:
            out.append(cls(**{**_defaults(cls), "model": item}))
        if isinstance(item, (str, os.PathLike)):
            _check_spec_modality(i, item, modality)
    return out


def _defaults(cls) -> dict:
    from sktransfer.backbones import BUNDLED_IMAGE

    return {"model": BUNDLED_IMAGE} if cls.__name__ == "PretrainedImageFeatures" \
        else {}


def _check_spec_modality(i: int, spec, modality: str) -> None:
    from sktransfer.backbones import infer_modality

    kind = infer_modality(spec)
    if kind != modality:
        raise ParameterError(f"candidate {i} ({os.fspath(spec)!r}) is a {kind} "
                             f"model, but X holds {modality}s (pass modality= "
                             f"when strings are read wrongly)")


def candidate_name(estimator) -> str:
    """A readable name: the model spec, then what differs from the defaults."""
    model = estimator.model
    name = (os.fspath(model) if isinstance(model, (str, os.PathLike))
            else type(model).__name__)
    params = estimator.get_params(deep=False)
    parts = [name]
    if params.get("weights", "DEFAULT") != "DEFAULT":
        parts.append(f"weights={params['weights']}")
    if params.get("layer") is not None:
        parts.append(f"layer={params['layer']}")
    default_pooling = "avg" if "weights" in params else "mean"
    if params.get("pooling", default_pooling) != default_pooling:
        parts.append(f"pooling={params['pooling']}")
    return " ".join(parts)


def default_candidates(modality: str, layers: bool = True) -> list:
    """The candidates ``rank_models(candidates=None)`` ranks for a modality.

    Every model of the modality that resolves offline here (bundled or
    already cached) at its last layer and, with ``layers``, ``N_LAYERS``
    blocks spread from the first to the one before the last; images also
    get the bundled network with random weights (a baseline that sometimes
    wins on data far from the pretraining set).
    """
    from sktransfer.backbones import BUNDLED_IMAGE, list_model_rows
    from sktransfer.image import PretrainedImageFeatures
    from sktransfer.text import PretrainedTextEmbeddings

    rows = [row for row in list_model_rows(blocks=True)
            if row["modality"] == modality and row["offline"]]
    if not rows:
        raise ParameterError(f"no {modality} model resolves offline here "
                             f"(sktransfer.list_models()); pass candidates")
    cls = PretrainedImageFeatures if modality == "image" else PretrainedTextEmbeddings
    out = []
    for row in rows:
        out.append(cls(row["model"]))
        count = row["blocks"]
        if layers and count and count > 2:
            picks = np.unique(np.linspace(0, count - 2, min(N_LAYERS, count - 1))
                              .round().astype(int))
            out += [cls(row["model"], layer=int(k)) for k in picks]
    if modality == "image":
        out.append(PretrainedImageFeatures(BUNDLED_IMAGE, weights=None))
    return out

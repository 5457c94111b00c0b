"""Embed ``X`` with many candidates, one forward pass per network.

Candidates that differ only in ``layer`` / ``pooling`` (same model, weights,
preprocessing, runtime) form a group. Each group runs its network once over
the samples that any member still misses in its cache: forward hooks capture
every requested block (``Backbone.extract_many``), the pooled features come
out side by side, and each member's share is stored under its own cache key.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

import numpy as np

__all__ = ["embed_candidates", "modality_of"]

# Parameters that do not change the forward pass: candidates differing only in
# these share it.
_PER_CANDIDATE = ("layer", "pooling", "cache", "progress")


def modality_of(X, modality: str | None = None) -> str:
    """``"image"`` or ``"text"``: ``modality`` when given; else images unless
    ``X`` holds strings, and strings are texts unless every one ends with an
    image suffix (``sktransfer.data.IMAGE_SUFFIXES``; a URL's query ignored).

    No file is looked at: texts that happen to name files are texts.
    """
    from sktransfer.data import IMAGE_SUFFIXES
    from sktransfer.exceptions import ParameterError

    if modality is not None:
        if modality not in ("image", "text"):
            raise ParameterError(f"modality={modality!r} must be 'image', 'text' "
                                 f"or None (read from X)")
        return modality
    if hasattr(X, "columns") and hasattr(X, "iloc") and X.shape[1] == 1:
        X = X.iloc[:, 0]
    if hasattr(X, "iloc"):
        X = X.tolist()
    if isinstance(X, np.ndarray) and X.dtype.kind not in "OUS":
        return "image"
    items = list(np.ravel(X)) if isinstance(X, np.ndarray) else X
    try:
        strings = len(items) > 0 and all(isinstance(i, str) for i in items)
    except TypeError:  # not a sequence: the embedder's coercion names it
        return "image"
    if strings:
        return "image" if all(
            os.path.splitext(i.split("?")[0])[1].lower() in IMAGE_SUFFIXES
            for i in items) else "text"
    return "image"


def _group_key(estimator) -> tuple:
    params = estimator.get_params(deep=False)
    shared = []
    for name in sorted(params):
        if name in _PER_CANDIDATE:
            continue
        value = params[name]
        if not isinstance(value, (str, os.PathLike, int, float, bool, type(None))):
            value = ("object", id(value))  # an nn.Module spec: itself
        shared.append((name, value))
    return (type(estimator).__name__, tuple(shared))


def embed_candidates(estimators, X, progress: bool = False):
    """``(features, seconds)``: one array and one time per estimator.

    The estimators are fitted here (they are clones) without a runner of
    their own: each group runs through one runner of all its layers.
    ``seconds`` is each one's share of its group's forward pass (model
    loading and any ONNX export included).
    """
    estimators = [e.set_params(progress=progress) for e in estimators]
    items = estimators[0]._coerce(X)
    groups = defaultdict(list)
    for i, estimator in enumerate(estimators):
        groups[_group_key(estimator)].append(i)
    keys = None
    if any(e.cache not in (False, None) for e in estimators):
        keys = estimators[0]._sample_keys(items)
    features: list = [None] * len(estimators)
    seconds = [0.0] * len(estimators)
    for members in groups.values():
        start = time.perf_counter()
        for i in members:
            estimators[i]._fit_model(items[:1])
        done = _embed_group([estimators[i] for i in members], items, keys)
        share = (time.perf_counter() - start) / len(members)
        for i, values in zip(members, done, strict=True):
            features[i], seconds[i] = values, share
    return features, seconds


def _embed_group(group, items, keys) -> list[np.ndarray]:
    n = len(items)
    outs, missing, copies, caches = [], [], [], []
    for estimator in group:
        out = np.empty((n, estimator.n_features_out_), dtype=np.float32)
        cache = estimator._cache()
        todo, repeat = (list(range(n)), []) if cache is None else cache.fill(keys, out)
        outs.append(out)
        missing.append(set(todo))
        copies.append(repeat)
        caches.append(cache)
    todo = sorted(set().union(*missing))
    if todo:
        requests = list(dict.fromkeys((e.layer, e.pooling) for e, m
                                      in zip(group, missing, strict=True) if m))
        view = group[0]._layers_view(requests)
        if view is None:  # no layers (word vectors): each embeds on its own
            return [e.fit(items[:1]).transform(items) for e in group]
        widths = {}
        for estimator in group:
            widths[(estimator.layer, estimator.pooling)] = estimator.n_features_out_
        bounds = np.cumsum([0] + [widths[r] for r in requests])
        for rows, batch in view._embed_batches(items, todo):
            rows = [int(r) for r in rows]
            for k, request in enumerate(requests):
                part = batch[:, bounds[k]:bounds[k + 1]]
                for j, estimator in enumerate(group):
                    if (estimator.layer, estimator.pooling) != request:
                        continue
                    outs[j][rows] = part
                    if caches[j] is not None:
                        stored = [(r, p) for r, p in zip(rows, part, strict=True)
                                  if r in missing[j]]
                        caches[j].store([keys[r] for r, _ in stored],
                                        np.asarray([p for _, p in stored]))
    for out, repeat in zip(outs, copies, strict=True):
        for i, j in repeat:
            out[i] = out[j]
    return outs

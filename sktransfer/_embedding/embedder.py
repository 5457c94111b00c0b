"""What the image and text transformers share: fit/transform with the cache,
device resolution, the backbone and its runner (torch or ONNX Runtime, chosen
in ``fit``), feature names, ``set_output`` and light pickles."""

from __future__ import annotations

import copy
import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sktransfer._embedding import files as _files  # noqa: F401 - save/load hooks
from sktransfer._embedding.runtime import make_runner
from sktransfer._utils.device import resolve_device
from sktransfer._utils.params import validate_params
from sktransfer.backbones import names_only, spec_identity
from sktransfer.cache import EmbeddingCache, caching, embed_with_cache, hash_parts

if TYPE_CHECKING:  # names used in annotations only
    from typing import Any

    from numpy.typing import ArrayLike

__all__ = ["BaseEmbedder", "shared_model"]

_SHARED: OrderedDict = OrderedDict()
_SHARED_SIZE = 4


def shared_model(key, build):
    """``build()``, memoised per process for the last few keys.

    Frozen models are only read, so the clones that ``GridSearchCV`` and
    ``cross_validate`` fit share one loaded copy instead of reloading it for
    every fold and candidate. ``key=None`` (an ``nn.Module`` spec) disables it.
    """
    if key is None:
        return build()
    if key in _SHARED:
        _SHARED.move_to_end(key)
        return _SHARED[key]
    model = build()
    _SHARED[key] = model
    while len(_SHARED) > _SHARED_SIZE:
        _SHARED.popitem(last=False)
    return model


class BaseEmbedder(TransformerMixin, BaseEstimator):
    """Base class; subclasses define how to resolve, coerce, key and embed.

    Subclass hooks
    --------------
    _resolve() -> model object (stored as ``_model``; dropped from pickles when
    it can be rebuilt from the spec), _n_out(model) -> int,
    _model_identity() -> hashable description of the model for the cache key,
    _coerce(X) -> list of samples, _sample_keys(items) -> list of str,
    _embed_batches(items, indices) -> generator of ``(rows, array)`` pairs, one
    per batch: ``rows`` a subset of ``indices`` and ``array`` their float32
    embeddings, in any order, covering each index once (each batch is cached
    as soon as it is yielded, so a killed run loses at most one batch).
    _runner_parts() -> ``(module, probe, identity, key)``: the module to run, a
    probe batch, its export identity (None: no stable identity) and a memo key
    (None: not shared between clones); or None when there is no network to
    run (``runner_`` is then None). The runner is rebuilt after unpickling
    rather than pickled; the embedder never asks which runner it holds.
    """

    # What ``runtime="auto"`` means for this estimator: "auto" picks ONNX
    # Runtime on the CPU; a subclass whose exported model measured too little
    # faster to pay for the export and memory (the text transformer) sets "torch".
    _auto_runtime = "auto"

    def fit(self, X: Any, y: Any = None) -> BaseEmbedder:
        """Validate ``X``, load the pretrained model and choose its runtime.

        Parameters
        ----------
        X : sequence of samples
            Only validated: the model is pretrained, nothing is learned from X.
        y : ignored

        Returns
        -------
        self
        """
        self._fit_model(X)
        self.int8_calibration_ = None
        self._calibration_source = X  # only while fit chooses the runner
        try:
            self._apply_settings()
        finally:
            del self._calibration_source
        self.int8_calibration_ = getattr(self._runner, "ranges", None)
        return self

    def _fit_model(self, X):
        """``fit`` without choosing a runner (no ONNX export): for callers
        that run the network through ``_layers_view`` (``sktransfer.select``)."""
        validate_params(self)
        self._coerce(X)
        self._weights_digest = None  # fit builds the network from its spec
        self.device_ = str(resolve_device(self.device))
        self._model = self._resolve()
        self.n_features_out_ = int(self._n_out(self._model))
        self._model_key = None
        self.model_key_  # noqa: B018 - computed now, while the spec is at hand
        self._runner = None
        return self

    def _apply_settings(self) -> None:
        """Choose the runner (in ``fit``, and after ``set_params(runtime=...,
        fast_decode=...)`` on a fitted embedder): the same network (never rebuilt
        from the spec, which a loaded model's weights need not match), a new
        runner and cache key."""
        self._runner = None
        self._model_key = None
        runner = self.runner_
        self.runtime_ = None if runner is None else runner.name

    @property
    def model_key_(self) -> str:
        """Hash of what determines the embeddings (model, weights, layer...):
        the cache key. Always computed here, never read from a saved file."""
        check_is_fitted(self, "n_features_out_")
        key = self.__dict__.get("_model_key")
        if key is None:
            with names_only(self.__dict__.get("_names_only", False)):
                key = hash_parts(type(self).__name__, *self._model_identity())
            self._model_key = key
        return key

    def _weights_identity(self):
        """What the weights are, for keys: the digest of the weights a saved
        file held (``sktransfer.load`` sets ``_weights_digest``), else the spec."""
        digest = self.__dict__.get("_weights_digest")
        if digest is not None:
            return f"loaded-weights:{digest}"
        return spec_identity(getattr(self, "weights", None))

    @property
    def backbone_(self):
        if not hasattr(self, "n_features_out_"):
            raise AttributeError("backbone_ is set by fit")
        return self._loaded_model()

    @property
    def runner_(self):
        if not hasattr(self, "n_features_out_"):
            raise AttributeError("runner_ is set by fit")
        if getattr(self, "_runner", None) is None:
            self._runner = self._make_runner(self._runner_parts())
        return self._runner

    def _make_runner(self, parts):
        if parts is None:  # nothing to run (word vectors)
            return None
        module, probe, identity, key = parts
        runtime = self._auto_runtime if self.runtime == "auto" else self.runtime
        int8 = self._int8_settings() if runtime == "onnx-int8" else None
        if key is not None:
            key = ("runner", key, runtime, torch.get_num_threads(), int8 and int8[1])
        if int8 is not None and int8[0] and int8[1] is None:
            key = None  # calibrating on this fit's data: nothing to share
        return shared_model(key, lambda: make_runner(
            runtime, module, probe, device=self.device_, identity=identity,
            int8=int8))

    def _int8_settings(self):
        """``(static, ranges, batches)`` for ``runtime="onnx-int8"``: static when
        the subclass calibrates (defines ``_calibration_batches(X)``), from the
        ranges of an earlier fit or else on the data ``fit`` is given."""
        calibrate = getattr(self, "_calibration_batches", None)
        if calibrate is None:
            return (False, None, None)
        ranges = getattr(self, "int8_calibration_", None)
        source = getattr(self, "_calibration_source", None)
        batches = None
        if ranges is None and source is not None:
            batches = calibrate(source)
        return (True, ranges, batches)

    def _layers_view(self, requests: list):
        """A copy of this fitted embedder whose batches hold the features of
        every ``(layer, pooling)`` in ``requests`` side by side, from one
        forward pass per batch (same runtime rules); None when the model has
        no layers to run (word vectors)."""
        parts = self._runner_parts(list(requests))
        if parts is None:
            return None
        view = copy.copy(self)
        view._runner = self._make_runner(parts)
        return view

    def transform(self, X: Any) -> np.ndarray:
        """Embed ``X``.

        Parameters
        ----------
        X : sequence of samples

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), dtype float32
        """
        check_is_fitted(self, "n_features_out_")
        items = self._coerce(X)
        cache = self._cache()
        keys = self._sample_keys(items) if cache is not None else None
        return embed_with_cache(len(items), keys, cache,
                                lambda indices: self._embed_batches(items, indices),
                                self.n_features_out_)

    def _embed_batches(self, items, indices):
        """``(rows, float32 array)`` per batch of ``items[indices]`` (a hook)."""
        raise NotImplementedError(f"{type(self).__name__} defines no "
                                  f"_embed_batches")

    def _cache(self):
        if not caching(self.cache):
            return None
        directory = None if self.cache is True else self.cache
        model = self.model if isinstance(self.model, (str, os.PathLike)) \
            else type(self.model).__name__
        description = {"estimator": type(self).__name__, "model": str(model)}
        return EmbeddingCache(self.model_key_, self.n_features_out_, directory,
                              description)

    def _loaded_model(self):
        if getattr(self, "_model", None) is None:
            with names_only(self.__dict__.get("_names_only", False)):
                self._model = self._resolve()
        return self._model

    def get_feature_names_out(
        self,
        input_features: ArrayLike | None = None,
    ) -> np.ndarray:
        """Output feature names: ``<classname><i>`` for each embedding dimension."""
        check_is_fitted(self, "n_features_out_")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.n_features_out_)],
                          dtype=object)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ is __dict__
        # A named model is reloaded from its spec (a small pickle); a module
        # spec already travels inside the ``model`` parameter.
        # A network loaded from a model file cannot be rebuilt from its spec:
        # it travels with the pickle.
        if self.__dict__.get("_weights_digest") is None:
            state.pop("_model", None)
        state.pop("_runner", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device_" in state and self.device == "auto":
            self.device_ = str(resolve_device("auto"))
        self._model = state.get("_model")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.requires_fit = True
        tags.non_deterministic = False
        return tags

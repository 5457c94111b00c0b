"""``PretrainedImageFeatures``: images -> embeddings from a pretrained network."""

from __future__ import annotations

import os
from numbers import Integral
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sktransfer._embedding.embedder import BaseEmbedder, shared_model
from sktransfer._embedding.runtime import RUNTIMES
from sktransfer._utils.device import decode_threads
from sktransfer.backbones import (
    BUNDLED_IMAGE,
    POOLINGS,
    resolve_image_backbone,
    spec_identity,
)
from sktransfer.cache import content_key
from sktransfer.data import ImageDataset, as_image_list, iter_batches

if TYPE_CHECKING:  # names used in annotations only
    from torch import nn

__all__ = ["PretrainedImageFeatures"]


class PretrainedImageFeatures(BaseEmbedder):
    """Embed images with a pretrained network, as a scikit-learn transformer.

    Parameters
    ----------
    model : str, path or nn.Module, default="efficientnet_lite0"
        A torchvision name (``"resnet50"``, ``"vgg16"``, ``"vit_b_16"``...), a
        timm name as ``"timm/<name>"``, the bundled offline model
        ``"efficientnet_lite0"``, a checkpoint path or an ``nn.Module``.
    weights : str, path or None, default="DEFAULT"
        ``"DEFAULT"``, a weights enum name (``"IMAGENET1K_V2"``), a weights file,
        or None for random initialisation.
    layer : int, str or None, default=None
        Take features from this block (index or name into ``backbone_.blocks``)
        instead of the network's final pooled output.
    pooling : {"avg", "max", "avgmax"}, default="avg"
        Pooling over the spatial (or token) axes; ``"avgmax"`` concatenates both.
    batch_size : int, default=32
        Images per forward pass.
    device : str, default="auto"
        ``"auto"`` uses CUDA when present (with mixed precision), else the CPU.
    cache : bool or path, default=True
        Embed each distinct image once per (model, weights, layer, pooling,
        preprocessing): ``True`` in memory, a directory to persist across runs.
    progress : bool, default=False
        Show a tqdm progress bar.
    num_workers : int, default=0
        0 decodes and preprocesses the next batches in a pool of threads
        while the network runs on the current one: on the CPU as many as torch
        uses (``torch.get_num_threads()``, at most 8; with one thread, decoding
        runs in the calling thread, so a one-thread Dask worker uses one
        core), on CUDA ``min(8, os.cpu_count())``;
        ``k > 0`` uses ``k`` DataLoader worker processes instead. Either way at
        most a few batches are held in memory.
    fast_decode : bool, default=True
        Decode JPEG files in libjpeg's draft mode at the smallest DCT scale
        (1/2, 1/4, 1/8) that still leaves the size the preprocessing resizes
        to (several times faster for phone photos); the preprocessing is
        unchanged. False decodes every file at full resolution. Part of the
        cache key.
    runtime : {"auto", "torch", "onnx", "onnx-int8"}, default="auto"
        What runs the network. ``"onnx"`` exports exactly the torch
        computation (``layer`` and ``pooling`` included) to ONNX once, caches
        the file on disk, checks it against torch and runs it with ONNX Runtime
        on the CPU (falling back to torch with a ``RuntimeFallbackWarning``
        when the export fails or differs). ``"auto"``: ONNX Runtime on the CPU
        when it is installed and the weights are pretrained (not for
        ``weights=None`` or an ``nn.Module`` spec), torch on CUDA. See
        ``sktransfer._embedding.runtime`` for the cache directory and thread count.

    Attributes
    ----------
    backbone_ : Backbone
        The resolved network (``module``, ``blocks``, ``preprocess``).
    n_features_out_ : int
        Width of the embeddings.
    device_ : str
        The device the network runs on.
    runtime_ : str
        ``"onnx"``, ``"onnx-int8"`` or ``"torch"``: what runs the network.
    int8_calibration_ : str or None
        ``runtime="onnx-int8"``: the calibrated activation ranges (JSON).
    runner_ : object
        Runs the network: ``runner_.run({"images": batch}) -> ndarray``.

    See Also
    --------
    sktransfer.FineTunedClassifier : train the network instead of freezing it.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sktransfer import PretrainedImageFeatures
    >>> clf = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"),
    ...                     LogisticRegression(max_iter=1000))
    """

    _parameter_constraints = {
        "model": [str, os.PathLike, torch.nn.Module],
        "weights": [str, os.PathLike, None],
        "layer": [Integral, str, None],
        "pooling": [StrOptions(set(POOLINGS))],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "cache": ["boolean", str, os.PathLike, None],
        "progress": ["boolean"],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "fast_decode": ["boolean"],
        "runtime": [StrOptions(set(RUNTIMES))],
    }

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module = BUNDLED_IMAGE,
        weights: str | os.PathLike[str] | None = "DEFAULT",
        layer: int | str | None = None,
        pooling: str = "avg",
        batch_size: int = 32,
        device: str | torch.device = "auto",
        cache: bool | str | os.PathLike[str] | None = True,
        progress: bool = False,
        num_workers: int = 0,
        fast_decode: bool = True,
        runtime: str = "auto",
    ):
        self.model = model
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.progress = progress
        self.num_workers = num_workers
        self.fast_decode = fast_decode
        self.runtime = runtime

    def _resolve(self):
        key = None
        if isinstance(self.model, (str, os.PathLike)):
            key = ("image", spec_identity(self.model), self._weights_identity(),
                   self.device_)
        backbone = shared_model(key, self._build_backbone)
        if self.layer is not None:
            backbone.block_index(self.layer)  # validates, naming the blocks
        return backbone

    def _build_backbone(self):
        backbone = resolve_image_backbone(self.model, self.weights)
        device = torch.device(self.device_)
        backbone.module.to(device, memory_format=torch.channels_last).eval()
        return backbone

    def _n_out(self, backbone):
        if self.layer is None and self.pooling == "avg":
            return backbone.out_features  # extract() is module(x) itself
        size = backbone.data_config["input_size"]
        x = torch.zeros(1, *size, device=torch.device(self.device_))
        with torch.inference_mode():
            return backbone.extract(x, self.layer, self.pooling).shape[1]

    def _model_identity(self):
        return (spec_identity(self.model), self._weights_identity(),
                self.layer, self.pooling, repr(self.backbone_.preprocess),
                "fast_decode" if self.fast_decode else "exact_decode")

    def _coerce(self, X):
        return as_image_list(X)

    def _sample_keys(self, items):
        return [content_key(item) for item in items]

    def _runner_parts(self, requests=None):
        """What runs: ``(module, probe, identity, key)``; ``requests``: the
        ``(layer, pooling)`` pairs to compute side by side (default: this
        estimator's own)."""
        view = requests is not None  # a layers view (_layers_view)
        requests = list(requests) if view else [(self.layer, self.pooling)]
        own = requests == [(self.layer, self.pooling)]
        backbone = self.backbone_
        module = _Features(backbone.module, backbone, requests)
        generator = torch.Generator().manual_seed(0)
        size = backbone.data_config["input_size"]
        probe = {"images": torch.randn(2, *size, generator=generator)}
        named = isinstance(self.model, (str, os.PathLike))
        # A layers view (sktransfer.select) also exports a named model with
        # random weights: their initialisation is seeded, so the export (keyed
        # by a hash of the weights) is reused rather than redone at every fit.
        stable = named and (self.weights is not None or view)
        what = (self.layer, self.pooling) if own else ("layers", tuple(requests))
        identity = ("image", *what) if stable else None
        key = None
        if stable:
            key = (spec_identity(self.model), self._weights_identity(),
                   *what, self.device_)
        return module, probe, identity, key

    def _calibration_batches(self, X):
        """Preprocessed batches of up to ``CALIBRATION_SIZE`` images of ``X``
        (spread evenly): what ``runtime="onnx-int8"`` calibrates on."""
        from sktransfer._embedding.int8 import calibration_rows

        items = self._coerce(X)
        dataset = ImageDataset(items, self.backbone_.preprocess,
                               calibration_rows(len(items)),
                               fast_decode=self.fast_decode)
        for start in range(0, len(dataset), 8):
            rows = range(start, min(start + 8, len(dataset)))
            yield {"images": torch.stack([dataset[i] for i in rows]).numpy()}

    def _embed_batches(self, items, indices):
        """``(rows, embeddings)`` of ``items[indices]``, batch by batch in order."""
        device = torch.device(self.device_)
        done = 0
        dataset = ImageDataset(items, self.backbone_.preprocess, indices,
                               fast_decode=self.fast_decode)
        if self.num_workers > 0:
            batches = DataLoader(dataset, batch_size=self.batch_size,
                                 num_workers=self.num_workers,
                                 pin_memory=device.type == "cuda")
        else:
            batches = iter_batches(dataset, self.batch_size,
                                   threads=decode_threads(device))
        for batch in tqdm(batches, disable=not self.progress, desc="embedding",
                          unit="batch", total=-(-len(indices) // self.batch_size)):
            done += len(batch)
            yield indices[done - len(batch) : done], self._embed_batch(batch)

    def _embed_batch(self, batch: torch.Tensor) -> np.ndarray:
        return self.runner_.run({"images": batch})


class _Features(torch.nn.Module):
    """``backbone.extract(images, layer, pooling)`` as a module: what runs.

    With several ``(layer, pooling)`` requests, their features side by side
    from one forward pass (``Backbone.extract_many``).
    """

    def __init__(self, module, backbone, requests):
        super().__init__()
        self.module = module  # registered: its weights are the export's
        self.backbone = backbone
        self.requests = list(requests)

    def forward(self, images):
        if len(self.requests) == 1:
            return self.backbone.extract(images, *self.requests[0])
        return torch.cat(self.backbone.extract_many(images, self.requests), dim=1)

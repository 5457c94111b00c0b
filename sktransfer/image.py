"""``PretrainedImageFeatures``: images -> embeddings from a pretrained network."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sktransfer._embedding.embedder import BaseEmbedder, shared_model
from sktransfer._utils.device import decode_threads
from sktransfer._utils.params import declare, store_parameters
from sktransfer.backbones import (
    BUNDLED_IMAGE,
    resolve_image_backbone,
    spec_identity,
)
from sktransfer.cache import content_key
from sktransfer.data import ImageDataset, as_image_list, iter_batches

if TYPE_CHECKING:  # names used in annotations only
    from torch import nn

__all__ = ["PretrainedImageFeatures"]


@declare("frozen", "image")
class PretrainedImageFeatures(BaseEmbedder):
    """Embed images with a pretrained network, as a scikit-learn transformer.

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

    _embeds = "image"  # what it embeds (sktransfer._embedding.files saves it)

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
        store_parameters(self, locals())

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

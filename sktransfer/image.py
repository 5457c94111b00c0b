"""``PretrainedImageFeatures``: images -> embeddings from a pretrained network."""

from __future__ import annotations

import os
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sktransfer._device import autocast
from sktransfer._embedder import BaseEmbedder, shared_model
from sktransfer.backbones import POOLINGS, resolve_image_backbone
from sktransfer.cache import content_key, hash_parts
from sktransfer.data import ImageDataset, as_image_list

__all__ = ["PretrainedImageFeatures"]


class PretrainedImageFeatures(BaseEmbedder):
    """Embed images with a pretrained network, as a scikit-learn transformer.

    Parameters
    ----------
    model : str, path or nn.Module, default="resnet50"
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
        DataLoader workers that read and decode images while the network runs.

    Attributes
    ----------
    backbone_ : Backbone
        The resolved network (``module``, ``blocks``, ``preprocess``).
    n_features_out_ : int
        Width of the embeddings.
    device_ : str
        The device the network runs on.

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
    }

    def __init__(self, model="resnet50", weights="DEFAULT", layer=None,
                 pooling="avg", batch_size=32, device="auto", cache=True,
                 progress=False, num_workers=0):
        self.model = model
        self.weights = weights
        self.layer = layer
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.cache = cache
        self.progress = progress
        self.num_workers = num_workers

    @property
    def backbone_(self):
        if not hasattr(self, "n_features_out_"):
            raise AttributeError("backbone_ is set by fit")
        return self._loaded_model()

    def _resolve(self):
        key = None
        if isinstance(self.model, (str, os.PathLike)):
            key = ("image", _spec_identity(self.model), _spec_identity(self.weights),
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
        return (_spec_identity(self.model), _spec_identity(self.weights),
                self.layer, self.pooling, repr(self.backbone_.preprocess))

    def _coerce(self, X):
        return as_image_list(X)

    def _sample_keys(self, items):
        return [content_key(item) for item in items]

    def _embed_batches(self, items, indices):
        backbone = self.backbone_
        device = torch.device(self.device_)
        loader = DataLoader(
            ImageDataset(items, backbone.preprocess, indices),
            batch_size=self.batch_size, num_workers=self.num_workers,
            pin_memory=device.type == "cuda",
        )
        for batch in tqdm(loader, disable=not self.progress, desc="embedding",
                          unit="batch"):
            yield self._embed_batch(batch)

    def _embed_batch(self, batch: torch.Tensor) -> np.ndarray:
        device = torch.device(self.device_)
        x = batch.to(device, non_blocking=True).contiguous(
            memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(device):
            features = self.backbone_.extract(x, self.layer, self.pooling)
        return features.float().cpu().numpy()


def _spec_identity(spec):
    """Cache identity of a model or weights spec (content-sensitive for files)."""
    if isinstance(spec, torch.nn.Module):
        tensors = [t.detach().cpu().numpy().tobytes()
                   for t in spec.state_dict().values()]
        return hash_parts(type(spec).__name__, *tensors)
    if isinstance(spec, (str, os.PathLike)) and os.path.isfile(spec):
        stat = os.stat(spec)
        return (os.path.abspath(spec), stat.st_size, stat.st_mtime_ns)
    return spec

"""The image modality of the fine-tuning core: backbones, inputs, augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torchvision.transforms.v2 as T

from sktransfer._utils.device import decode_threads, overlap_decoding
from sktransfer.augment import image_augmentation
from sktransfer.backbones import make_eval_transform, resolve_backbone
from sktransfer.cache import caching, content_key
from sktransfer.data import ImageDataset, as_image_list, decode_size
from sktransfer.finetune._core import BaseFineTuned
from sktransfer.finetune._pixels import DecodedPixels

if TYPE_CHECKING:  # names used in annotations only

    pass

__all__ = ["ImageFineTuning"]


class ImageFineTuning(BaseFineTuned):
    """The image modality of ``BaseFineTuned``: torchvision / timm / bundled
    backbones, images from paths, PIL images or arrays, ``augment`` presets."""

    # Training and prediction batches are uint8 pixels, normalised on the
    # device by ``FineTuneModule.normalise``. Not a parameter: an instance may
    # set it to False to normalise on the host (float32 batches), as before.
    _device_normalisation = True

    def _resolve_backbone(self):
        return resolve_backbone(self.model, self.weights, modality="image")

    def _coerce(self, X) -> list:
        return as_image_list(X)

    def _prefix_cacheable(self) -> bool:
        return self.augment is None

    def _sample_key(self, item) -> str:
        return content_key(item)

    def _preprocessing_identity(self, backbone) -> tuple:
        return ("image", repr(make_eval_transform(backbone.data_config,
                                                  self.image_size)),
                self.fast_decode)

    def _decode_once(self, items, backbone, device, stores: list, order=None):
        """The images decoded once per fit, at the size both the training and
        the evaluation transforms need (``finetune._pixels``): in the
        background, in ``order``, while the first epoch trains where decoding
        has cores of its own (``overlap_decoding``), else all first. With
        ``num_workers`` the store is complete before the worker processes
        start (they then augment in parallel). With ``cache`` set, pixels
        decoded from files are kept for the next fit in this process (a grid
        search's next fold or candidate) within ``SKTRANSFER_CACHE_MB``. A
        callable ``augment`` gets the full decoded image each epoch, as
        documented."""
        side = self._pixel_side(backbone)
        if side is None:
            return items
        interpolation = backbone.data_config.get("interpolation", "bicubic")
        store = DecodedPixels(
            items, side, fast_decode=self.fast_decode,
            interpolation=interpolation,
            threads=decode_threads(device), order=order,
            background=not self.num_workers and overlap_decoding(device),
            reuse=repr((side, self.fast_decode, str(interpolation)))
            if caching(self.cache) else None)
        stores.append(store)
        return store

    def _pixel_side(self, backbone) -> int | None:
        """Shorter side the fit's transforms need, or None (no pixel store)."""
        if callable(self.augment):
            return None
        config = backbone.data_config
        sides = [decode_size(self._train_transform(config)),
                 decode_size(make_eval_transform(config, self.image_size))]
        if None in sides:
            return None
        return max(sides)  # type: ignore[type-var]

    def _train_transform(self, config):
        """``augment``'s transform; multi-label ``y`` keeps the whole frame
        (``sktransfer.augment``: a crop could cut a tagged tile out)."""
        return image_augmentation(self.augment, config, self.image_size,
                                  keep_frame=self._is_multilabel())

    def _make_dataset(self, items, backbone, train: bool):
        config = backbone.data_config
        if train:
            transform = self._train_transform(config)
        else:
            transform = make_eval_transform(config, self.image_size)
        if self._device_normalisation:
            transform = pixels_only(transform, config)
        return ImageDataset(items, transform, fast_decode=self.fast_decode)


def pixels_only(transform, config: dict):
    """``transform`` without its final ``ToDtype(float32, scale=True)`` and
    ``Normalize`` (the weights' mean and std): its output stays uint8, and
    ``FineTuneModule.normalise`` does those two steps on the device. A
    transform that does not end so (``augment="strong"``'s random erasing runs
    after the normalisation; a callable ``augment`` wraps the evaluation
    transform) is returned as it is: float batches, normalised on the host."""
    steps = list(getattr(transform, "transforms", ()))
    if len(steps) < 3 or not isinstance(steps[-2], T.ToDtype) \
            or not isinstance(steps[-1], T.Normalize):
        return transform
    to_float, normalize = steps[-2:]
    if (to_float.dtype != torch.float32 or not to_float.scale
            or list(normalize.mean) != list(config["mean"])
            or list(normalize.std) != list(config["std"])):
        return transform
    return T.Compose(steps[:-2])

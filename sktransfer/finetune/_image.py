"""The image modality of the fine-tuning core: backbones, inputs, augmentation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sktransfer.augment import image_augmentation
from sktransfer.backbones import make_eval_transform, resolve_backbone
from sktransfer.data import ImageDataset, as_image_list
from sktransfer.finetune._core import BaseFineTuned

if TYPE_CHECKING:  # names used in annotations only

    pass

__all__ = ["ImageFineTuning"]


class ImageFineTuning(BaseFineTuned):
    """The image modality of ``BaseFineTuned``: torchvision / timm / bundled
    backbones, images from paths, PIL images or arrays, ``augment`` presets."""

    def _resolve_backbone(self):
        return resolve_backbone(self.model, self.weights, modality="image")

    def _coerce(self, X) -> list:
        return as_image_list(X)

    def _make_dataset(self, items, backbone, train: bool):
        config = backbone.data_config
        if train:
            transform = image_augmentation(self.augment, config, self.image_size)
        else:
            transform = make_eval_transform(config, self.image_size)
        return ImageDataset(items, transform, fast_decode=self.fast_decode)

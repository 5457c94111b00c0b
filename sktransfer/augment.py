"""Train-time augmentation presets.

Images
------
``image_augmentation(augment, data_config, image_size=None)`` returns a
transform ``PIL image -> normalised float tensor (3, size, size)``. ``size`` is
``image_size`` or the backbone's input size; the normalisation (mean, std) and
the resize interpolation are those the weights were trained with
(``Backbone.data_config``). Presets:

- ``"default"``: random resized crop (scale 0.5-1), horizontal flip, rotation up
  to 10 degrees, colour jitter (brightness, contrast, saturation 0.2).
- ``"light"``: random resized crop (scale 0.8-1) and horizontal flip only; for
  small datasets of images whose framing matters.
- ``"strong"``: random resized crop (scale 0.25-1), horizontal flip, rotation up
  to 20 degrees, colour jitter 0.4 (hue 0.05), 10% grayscale and random erasing.
- ``None``: no augmentation, the eval preprocessing (resize, centre crop).
- a callable: applied to the PIL image, followed by the eval preprocessing.
"""

from __future__ import annotations

import torch
from torchvision.transforms import v2 as T

from sktransfer.backbones._base import _interpolation, make_eval_transform

__all__ = ["IMAGE_PRESETS", "image_augmentation"]

IMAGE_PRESETS = ("default", "light", "strong")


def image_augmentation(augment, data_config: dict, image_size: int | None = None):
    """The training transform for ``augment`` (a preset name, None or a callable).

    Parameters
    ----------
    augment : {"default", "light", "strong"}, callable or None
        See the module docstring.
    data_config : dict
        ``input_size``, ``mean``, ``std``, ``interpolation`` (and ``crop_pct``)
        of the weights, as in ``Backbone.data_config``.
    image_size : int, default=None
        Output resolution; None keeps the backbone's input size.

    Returns
    -------
    callable
        PIL image -> float tensor of shape (3, size, size).
    """
    eval_transform = make_eval_transform(data_config, image_size)
    if augment is None:
        return eval_transform
    if callable(augment):
        return T.Compose([T.Lambda(augment), eval_transform])
    if augment not in IMAGE_PRESETS:
        raise ValueError(
            f"augment={augment!r} is not an image augmentation: use one of "
            f"{list(IMAGE_PRESETS)}, None or a callable on PIL images"
        )
    size = image_size or data_config["input_size"][-1]
    return T.Compose(
        [
            T.ToImage(),
            *_preset(augment, size, _interpolation(data_config)),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(mean=list(data_config["mean"]), std=list(data_config["std"])),
            *([T.RandomErasing(p=0.25)] if augment == "strong" else []),
        ]
    )


def _preset(name: str, size: int, interpolation) -> list:
    crop = {"default": (0.5, 1.0), "light": (0.8, 1.0), "strong": (0.25, 1.0)}[name]
    steps = [
        T.RandomResizedCrop(
            size, scale=crop, interpolation=interpolation, antialias=True
        ),
        T.RandomHorizontalFlip(),
    ]
    if name == "default":
        steps += [
            T.RandomRotation(10),
            T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    elif name == "strong":
        steps += [
            T.RandomRotation(20),
            T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05),
            T.RandomGrayscale(p=0.1),
        ]
    return steps

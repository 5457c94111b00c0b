"""Real photos shipped with scikit-image, cut into labelled patches.

A small, offline, real-image classification task: each class is one photo
(textures such as brick, grass and gravel, and scenes), each sample a random
crop of it. Training crops come from the left part of a photo and test crops
from the right part, so a held-out score measures generalisation to unseen
pixels rather than overlap between crops.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PHOTO_CLASSES", "load_photo_patches"]

PHOTO_CLASSES = ("brick", "grass", "gravel", "moon", "coffee", "chelsea",
                 "astronaut", "immunohistochemistry")
_TRAIN_FRACTION = 0.6


def load_photo_patches(n_per_class=20, size=64, split="train", classes=None,
                       random_state=0):
    """Random ``size`` x ``size`` crops of scikit-image's sample photos.

    Parameters
    ----------
    n_per_class : int, default=20
    size : int, default=64
    split : {"train", "test"}, default="train"
        ``"train"`` crops the left 60% of each photo, ``"test"`` the right 40%.
    classes : sequence of str, default=None
        Names of ``skimage.data`` photos; default ``PHOTO_CLASSES``.
    random_state : int, default=0

    Returns
    -------
    images : list of uint8 arrays, (size, size) for gray photos, (size, size, 3)
        for colour ones
    labels : ndarray of str
    """
    try:
        from skimage import data
    except ImportError as exc:
        raise ImportError(
            "the sample photos need scikit-image: pip install 'sktransfer[data]'"
        ) from exc
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng(random_state)
    images, labels = [], []
    for name in classes or PHOTO_CLASSES:
        photo = getattr(data, name)()
        height, width = photo.shape[:2]
        cut = int(width * _TRAIN_FRACTION)
        lo, hi = (0, cut - size) if split == "train" else (cut, width - size)
        for _ in range(n_per_class):
            top = rng.integers(0, height - size + 1)
            left = rng.integers(lo, hi + 1)
            images.append(np.ascontiguousarray(photo[top:top + size,
                                                     left:left + size]))
            labels.append(name)
    return images, np.asarray(labels)

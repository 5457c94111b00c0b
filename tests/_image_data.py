"""Real photos, offline: which ``skimage.data`` photo does a random crop come from?

``load_photo_patches`` cuts random square crops from bundled photographs;
the class of a crop is the photo it was cut from. Crops for ``part="train"``
come from the left half of each photo and for ``part="test"`` from the right
half, so a test crop never overlaps a training crop.
"""

from __future__ import annotations

import numpy as np

PHOTOS = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket")


def _photo(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3]


def load_photo_patches(
    n_per_class=20, size=64, random_state=0, part="train", photos=PHOTOS
):
    """``(X, y)``: uint8 crops of shape ``(n, size, size, 3)`` and photo names.

    Parameters
    ----------
    n_per_class : int
        Crops per photo.
    size : int
        Side of the square crops, in pixels.
    random_state : int
        Seed for the crop positions.
    part : {"train", "test"}
        Left or right half of each photo.
    photos : sequence of str
        ``skimage.data`` photo names; each is a class.
    """
    rng = np.random.RandomState(random_state)
    images, labels = [], []
    for name in photos:
        photo = _photo(name)
        height, width = photo.shape[:2]
        half = width // 2
        lo, hi = (0, half - size) if part == "train" else (half, width - size)
        for _ in range(n_per_class):
            top = rng.randint(0, height - size + 1)
            left = rng.randint(lo, hi + 1)
            images.append(photo[top : top + size, left : left + size])
            labels.append(name)
    order = rng.permutation(len(labels))
    return np.stack(images)[order], np.asarray(labels, dtype=object)[order]

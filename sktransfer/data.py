"""Input coercion: images and texts -> validated sequences, with clear errors.

Images are validated up front (type, shape, NaN, value range, that a path
is an existing file) and decoded lazily, one batch at a time, by
``ImageDataset``. Boolean arrays are masks: False is black, True is white (as
PIL reads a mode "1" image); integer arrays must hold values in [0, 255].
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from PIL import Image, UnidentifiedImageError

from sktransfer.exceptions import InvalidInputError, InvalidInputTypeError

__all__ = ["ImageDataset", "as_image_list", "as_text_list", "load_image"]

_ACCEPTED_IMAGES = (
    "a file path (str or PathLike), a PIL image, or an array of shape (H, W), "
    "(H, W, 1), (H, W, 3) or (H, W, 4), uint8, float in [0, 1] or bool "
    "(a mask: False is black, True is white)"
)


def _unwrap_column(X, what: str):
    """A pandas Series or one-column DataFrame -> a plain list."""
    if hasattr(X, "iloc") and hasattr(X, "columns"):
        if X.shape[1] != 1:
            raise InvalidInputError(
                f"a DataFrame of {what} must have exactly one column, got "
                f"{X.shape[1]} columns {list(X.columns)}; select the {what} column "
                f"(or use a ColumnTransformer)"
            )
        X = X.iloc[:, 0]
    if hasattr(X, "iloc"):
        return X.tolist()
    return X


def as_image_list(X) -> list:
    """Validate ``X`` and return one item per image (paths stay paths)."""
    X = _unwrap_column(X, "images")
    if isinstance(X, np.ndarray) and X.dtype != object:
        if X.ndim not in (3, 4):
            raise InvalidInputError(
                f"a stacked image array must have shape (n, H, W) or (n, H, W, C), "
                f"got ndim={X.ndim} with shape {X.shape}"
            )
        items = list(X)
    elif isinstance(X, (str, os.PathLike, Image.Image)):
        raise InvalidInputTypeError(
            "X must be a sequence of images, got a single image; wrap it in a list"
        )
    elif isinstance(X, (Sequence, np.ndarray)):
        items = list(X)
    else:
        raise InvalidInputTypeError(
            f"X must be a sequence of images ({_ACCEPTED_IMAGES}), a numpy array, "
            f"a pandas Series or a one-column DataFrame, got {type(X).__name__}"
        )
    if not items:
        raise InvalidInputError("X is empty: at least one image is needed")
    for index, item in enumerate(items):
        _check_image(index, item)
    return items


def _check_image(index: int, item) -> None:
    if isinstance(item, (str, os.PathLike)):
        if os.path.isdir(item):
            raise InvalidInputError(
                f"image {index}: {str(item)!r} is a directory, not an image file; "
                f"pass the paths of the image files inside it"
            )
        if not os.path.isfile(item):
            raise InvalidInputError(f"image {index}: file {str(item)!r} does not exist")
    elif isinstance(item, np.ndarray):
        _check_array(index, item)
    elif not isinstance(item, Image.Image):
        raise InvalidInputTypeError(
            f"image {index} is a {type(item).__name__}, which is not an image: "
            f"use {_ACCEPTED_IMAGES}"
        )


def _check_array(index: int, array: np.ndarray) -> None:
    ok_shape = array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))
    if not ok_shape:
        raise InvalidInputError(
            f"image {index} has shape {array.shape}; an image array must be (H, W), "
            f"(H, W, 1), (H, W, 3) or (H, W, 4) (channels last)"
        )
    if min(array.shape[:2]) == 0:
        raise InvalidInputError(f"image {index} is empty (shape {array.shape})")
    if array.dtype == np.uint8:
        return
    if array.dtype.kind not in "fiub":
        raise InvalidInputError(
            f"image {index} has dtype {array.dtype}; use uint8, float in [0, 1] "
            f"or bool"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise InvalidInputError(f"image {index} contains NaN or infinite values")
    low, high = array.min(), array.max()
    if array.dtype.kind == "f" and (low < 0 or high > 1):
        raise InvalidInputError(
            f"image {index} is a float array with values in [{low:g}, {high:g}]; "
            f"float images must be in [0, 1] (or pass uint8 in [0, 255])"
        )
    if array.dtype.kind in "iub" and (low < 0 or high > 255):
        raise InvalidInputError(
            f"image {index} is an integer array with values in [{low}, {high}]; "
            f"integer images must be in [0, 255]"
        )


def load_image(item, index: int) -> Image.Image:
    """Decode one validated item to an RGB PIL image."""
    if isinstance(item, Image.Image):
        return item if item.mode == "RGB" else item.convert("RGB")
    if isinstance(item, np.ndarray):
        return _array_to_pil(item)
    try:
        with Image.open(item) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(
            f"image {index}: file {str(item)!r} cannot be read as an image ({exc})"
        ) from exc


def _array_to_pil(array: np.ndarray) -> Image.Image:
    if array.dtype == np.bool_:
        # A mask, read as PIL reads mode "1": False -> black, True -> white.
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        scale = 255.0 if array.dtype.kind == "f" else 1.0
        array = np.clip(np.rint(array * scale), 0, 255).astype(np.uint8)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    # uint8 (H, W) -> "L", (H, W, 3) -> "RGB", (H, W, 4) -> "RGBA"
    return Image.fromarray(np.ascontiguousarray(array)).convert("RGB")


class ImageDataset:
    """A map-style dataset: index -> ``transform(decoded image)``."""

    def __init__(self, items, transform, indices=None):
        self.items = items
        self.transform = transform
        self.indices = range(len(items)) if indices is None else indices

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        return self.transform(load_image(self.items[index], index))


def as_text_list(X) -> list[str]:
    """Validate ``X`` as texts; ``None``, NaN or a non-string names its index."""
    X = _unwrap_column(X, "texts")
    if isinstance(X, str):
        raise InvalidInputTypeError(
            "X must be a sequence of texts, got a single string; wrap it in a list"
        )
    if not isinstance(X, (Sequence, np.ndarray)):
        raise InvalidInputTypeError(
            f"X must be a list, array or pandas Series of str, or a one-column "
            f"DataFrame, got {type(X).__name__}"
        )
    if isinstance(X, np.ndarray) and not (
        X.ndim == 1 or (X.ndim == 2 and X.shape[1] == 1)
    ):
        raise InvalidInputError(
            f"a text array must have shape (n,) or (n, 1), got {X.shape}"
        )
    texts = (
        list(np.asarray(X, dtype=object).ravel())
        if isinstance(X, np.ndarray)
        else list(X)
    )
    if not texts:
        raise InvalidInputError("X is empty: at least one text is needed")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            what = (
                "missing (None/NaN); drop or fill it (e.g. fillna(''))"
                if (_is_missing(text))
                else f"a {type(text).__name__}, not a str"
            )
            raise InvalidInputTypeError(f"text {index} is {what}")
    return texts


def _is_missing(value) -> bool:
    """None, a float NaN, or pandas' NA / NaT."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))

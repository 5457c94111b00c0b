"""Input coercion: images and texts -> validated sequences, with clear errors.

Images are validated up front (type, shape, NaN, value range, that a path
is an existing file) and decoded lazily, one batch at a time, by
``ImageDataset``. Boolean arrays are masks: False is black, True is white (as
PIL reads a mode "1" image); integer arrays must hold values in [0, 255].

Decoding image files
--------------------
``load_image`` turns every item into an RGB PIL image:

- the EXIF orientation tag is applied (phone photos are usually stored
  rotated), in both decode modes;
- grayscale, 1-bit, palette and CMYK images are converted to RGB; 16-bit
  images (``I;16`` PNGs) are scaled to 8 bits (``value / 257``), not clipped;
  images with transparency (RGBA, LA, palette with a transparent colour) are
  composited over a white background;
- a file that cannot be read (truncated, not an image) raises
  ``InvalidInputError`` naming the file and its index;
- an image longer than ``MAX_ASPECT_RATIO`` times its width (or wider than
  that times its height) raises ``InvalidInputError`` naming it, checked on
  the file's header before its pixels are decoded: the preprocessing resizes
  the shorter side to the network's input, so the longer side, and the
  memory, grow with the ratio (a 130-byte 16000 x 1 PNG would become a
  4096000 x 256 image, gigabytes). Crop such images first, or raise the
  module constant.

Fast decoding: with ``min_size`` set, a JPEG is decoded in libjpeg's draft mode
at the smallest DCT scale (1/2, 1/4 or 1/8) whose shorter side is still at
least ``min_size`` pixels; the preprocessing that follows is unchanged. A 12 MP
phone photo resized to 256 px for a network decodes several times faster.
``decode_size(transform)`` derives ``min_size`` from the transform that follows
(see its docstring); ``None`` means an exact, full-resolution decode.
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sktransfer.cache import open_regular
from sktransfer.exceptions import InvalidInputError, InvalidInputTypeError

if TYPE_CHECKING:  # names used in annotations only
    from typing import TypeAlias

    #: One image as the estimators accept it.
    ImageItem: TypeAlias = str | os.PathLike[str] | Image.Image | np.ndarray

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_ASPECT_RATIO",
    "ImageDataset",
    "as_image_list",
    "as_text_list",
    "decode_size",
    "iter_batches",
    "load_image",
]

#: The most elongated image accepted, long side : short side (see above).
MAX_ASPECT_RATIO = 50

#: File name endings read as images where strings could be texts or paths.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")

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


def as_image_list(X: Any) -> list[ImageItem]:
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
            if os.path.exists(item):
                raise InvalidInputError(
                    f"image {index}: {str(item)!r} is not a regular file (a "
                    f"FIFO, socket or device is never opened)")
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
    check_aspect_ratio(index, (array.shape[1], array.shape[0]))
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


def load_image(item: ImageItem, index: int,
               min_size: int | None = None) -> Image.Image:
    """Decode one validated item to an RGB PIL image.

    Parameters
    ----------
    item : path, PIL image or ndarray
        A validated image (see ``as_image_list``).
    index : int
        Position of the item, for error messages.
    min_size : int, default=None
        Shorter side the preprocessing needs. A JPEG file is then decoded at the
        smallest DCT scale that leaves at least this many pixels (never below).
        None decodes at full resolution.

    Returns
    -------
    PIL.Image.Image
        In mode ``"RGB"``, EXIF orientation applied.
    """
    if isinstance(item, Image.Image):
        check_aspect_ratio(index, item.size)
        return _to_rgb(item)
    if isinstance(item, np.ndarray):
        check_aspect_ratio(index, (item.shape[1], item.shape[0]))
        return _array_to_pil(item)
    try:
        with open_regular(item) as handle, Image.open(handle) as image:
            # the header's size, before any pixel is decoded
            check_aspect_ratio(index, image.size, f" (file {str(item)!r})")
            # Phone JPEGs with a depth map or preview open as MPO (a JPEG).
            if min_size is not None and image.format in ("JPEG", "MPO"):
                image.draft(None, (min_size, min_size))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return _to_rgb(image)
    except InvalidInputError:  # too elongated: already names the file
        raise
    except Image.DecompressionBombError as exc:
        raise InvalidInputError(
            f"image {index}: file {str(item)!r} is too large to decode "
            f"({exc}); PIL.Image.MAX_IMAGE_PIXELS sets the limit"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(
            f"image {index}: file {str(item)!r} cannot be read as an image ({exc})"
        ) from exc


def check_aspect_ratio(index: int, size: tuple[int, int], what: str = "") -> None:
    """Refuse an image of ``size`` ``(width, height)`` that is empty or more
    elongated than ``MAX_ASPECT_RATIO``: ``InvalidInputError`` naming it."""
    width, height = size
    short, long = min(width, height), max(width, height)
    if short < 1:
        raise InvalidInputError(f"image {index}{what} is empty ({width} x "
                                f"{height} pixels)")
    if long > MAX_ASPECT_RATIO * short:
        raise InvalidInputError(
            f"image {index}{what} is {width} x {height} pixels, an aspect ratio "
            f"over {MAX_ASPECT_RATIO}:1; resizing its shorter side to the "
            f"network's input would make it {long // short} times as long "
            f"(memory grows with the ratio): crop it first "
            f"(sktransfer.data.MAX_ASPECT_RATIO sets the limit)")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB: alpha over white, 16-bit scaled, CMYK converted."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_to_uint8(np.asarray(image), mode)).convert("RGB")
    return image.convert("RGB")


def _to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """A 16/32-bit integer or float single-channel image -> uint8."""
    values = values.astype(np.float64)
    if mode == "F" and values.max(initial=0) <= 1.0:
        values = values * 255.0
    elif mode.startswith("I;16") or values.max(initial=0) > 255:
        values = values / 257.0  # 0..65535 -> 0..255
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


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
    return _to_rgb(Image.fromarray(np.ascontiguousarray(array)))


def decode_size(transform: Callable[..., Any]) -> int | None:
    """Shorter side a decoded image needs before ``transform``, or None.

    The transform's first size-changing step decides (``ToImage``, dtype and
    normalisation steps are skipped, ``Compose`` is looked into):

    - ``Resize(s)``: ``s`` (the largest side of a ``(h, w)`` size): the resize
      then only ever shrinks a draft-decoded image, as it does the full one;
    - ``RandomResizedCrop(s, scale=(a, b), ratio=(r0, r1))``: the smallest crop
      it can draw covers a share ``a`` of the image with aspect ratio ``r0`` or
      ``r1``; its shorter side is ``sqrt(a * H * W * min(r0, 1 / r1))``, which
      is at least ``S * sqrt(a * min(r0, 1 / r1))`` for an image of shorter
      side ``S``. Decoding at ``S >= s / sqrt(a * min(r0, 1 / r1))`` keeps every
      crop at or above the output size, so it is never upsampled (1.63 s for
      scale 0.5, 2.31 s for 0.25, with the default 3/4-4/3 ratios);
    - anything else first (a user callable, a crop without resize): None, an
      exact decode.
    """
    for step in _steps(transform):
        name = type(step).__name__
        if name in ("ToImage", "ToTensor", "PILToTensor", "ToDtype", "Normalize",
                    "ConvertImageDtype"):
            continue
        if name == "Resize" and getattr(step, "max_size", None) is None:
            return max(_as_sizes(step.size))
        if name == "RandomResizedCrop":
            smallest = step.scale[0] * min(step.ratio[0], 1.0 / step.ratio[1])
            return math.ceil(max(_as_sizes(step.size)) / math.sqrt(smallest))
        return None
    return None


def _steps(transform):
    for step in getattr(transform, "transforms", [transform]):
        if hasattr(step, "transforms"):
            yield from _steps(step)
        else:
            yield step


def _as_sizes(size) -> list[int]:
    return [int(size)] if isinstance(size, int) else [int(s) for s in size]


class ImageDataset:
    """A map-style dataset: index -> ``transform(decoded image)``.

    Parameters
    ----------
    items : list
        Validated images (paths, PIL images, arrays).
    transform : callable
        PIL image -> tensor.
    indices : sequence of int, default=None
        The rows to serve (None: all).
    fast_decode : bool, default=True
        Decode JPEG files in draft mode at ``decode_size(transform)``.
    """

    def __init__(
        self,
        items: Sequence[ImageItem],
        transform: Callable[[Image.Image], Any],
        indices: Sequence[int] | None = None,
        fast_decode: bool = True,
    ):
        self.items = items
        self.transform = transform
        self.indices = range(len(items)) if indices is None else indices
        self.min_size = decode_size(transform) if fast_decode else None

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        index = self.indices[i]
        return self.transform(load_image(self.items[index], index, self.min_size))


def iter_batches(dataset: ImageDataset, batch_size: int, threads: int = 2,
                 ahead: int = 2) -> Iterator:
    """Stacked batches of ``dataset``'s items, in order, decoded ahead by threads.

    While the caller runs the network on one batch, ``threads`` threads decode
    and preprocess the next ``ahead`` batches (PIL's decoders and torch's ops
    release the GIL). At most ``ahead + 1`` batches are held, so memory does not
    grow with the number of images. ``threads=0`` decodes in the caller's thread.

    Yields
    ------
    torch.Tensor
        ``torch.stack`` of ``batch_size`` items (fewer in the last batch).
    """
    import torch

    starts = range(0, len(dataset), batch_size)

    def rows(start):
        return range(start, min(start + batch_size, len(dataset)))

    if threads == 0:
        for start in starts:
            yield torch.stack([dataset[i] for i in rows(start)])
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="sktransfer-decode") as pool:
        pending: deque = deque()
        try:
            for start in starts:
                pending.append([pool.submit(dataset.__getitem__, i)
                                for i in rows(start)])
                if len(pending) > ahead:
                    yield torch.stack([f.result() for f in pending.popleft()])
            while pending:
                yield torch.stack([f.result() for f in pending.popleft()])
        finally:  # an error or an abandoned generator: drop queued work
            for futures in pending:
                for future in futures:
                    future.cancel()


def as_text_list(X: Any) -> list[str]:
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

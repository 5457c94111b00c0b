"""Decode once per fit: the training images as uint8 pixels, resized once.

A fine-tuning fit reads every training image once per epoch. Decoding a photo
(a 2.5-MP JPEG: ~20 ms, a 12-MP one: ~75 ms in full, a few ms in draft mode)
and shrinking it to the network's resolution costs more than the augmentation
that follows, and gives the same pixels every epoch. ``DecodedPixels`` decodes
each image once (JPEG draft mode, as the embedders do), resizes it so that its
shorter side is ``side`` (the size the training and validation transforms
need, ``sktransfer.data.decode_size``; never enlarged) and keeps the uint8
pixels; each epoch's augmentation then runs on those.

The pixels stay in memory up to ``SKTRANSFER_PIXEL_CACHE_MB`` megabytes
(default 1024); past that bound they are appended to a file in a temporary
folder and read back through ``np.memmap``, so a fit's memory does not grow
with the number of photos (the operating system pages the file in and out).
The folder is removed when the store is closed or garbage-collected.

The store is a read-only sequence of RGB PIL images, so the modality's dataset
(``sktransfer.data.ImageDataset``) serves it like any list of images.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import numpy as np
import torchvision.transforms.v2 as T
from PIL import Image

from sktransfer._utils.paths import megabytes_from_env
from sktransfer.data import load_image

__all__ = ["DecodedPixels", "pixel_memory_limit"]

_INTERPOLATIONS = {"bilinear": T.InterpolationMode.BILINEAR,
                   "bicubic": T.InterpolationMode.BICUBIC,
                   "nearest": T.InterpolationMode.NEAREST}


def pixel_memory_limit() -> int:
    """Bytes of pixels a fit keeps in memory: ``SKTRANSFER_PIXEL_CACHE_MB``."""
    return megabytes_from_env("SKTRANSFER_PIXEL_CACHE_MB", "1024",
                              "1024; 0 keeps every decoded image on disk")


def shrink(image: Image.Image, side: int,
           interpolation: str = "bicubic") -> np.ndarray:
    """``image``'s uint8 pixels, shorter side ``side`` (aspect kept), never
    enlarged. The resize is torchvision's ``Resize(side)`` on the image tensor,
    the first step of the evaluation transform: applied again to the result it
    changes nothing, so training reads the pixels prediction computes."""
    if min(image.size) <= side:
        return np.asarray(image, dtype=np.uint8)
    mode = _INTERPOLATIONS.get(str(interpolation), T.InterpolationMode.BICUBIC)
    tensor = T.functional.pil_to_tensor(image)
    resized = T.functional.resize(tensor, [side], interpolation=mode,
                                  antialias=True)
    return resized.permute(1, 2, 0).numpy()


class DecodedPixels(Sequence):
    """The images of ``items`` decoded once, shorter side ``side``, as uint8.

    Parameters
    ----------
    items : list
        Validated images (``sktransfer.data.as_image_list``).
    side : int
        Shorter side kept (images already smaller are kept as they are).
    fast_decode : bool
        JPEG draft decoding at ``side`` (else a full decode, then the resize).
    interpolation : str
        ``"bilinear"``, ``"bicubic"`` or ``"nearest"``: the weights' resampling.
    threads : int
        Decoding threads (0: the caller's thread).
    memory_limit : int or None
        Bytes kept in memory before spilling to disk; None reads
        ``SKTRANSFER_PIXEL_CACHE_MB``.
    """

    def __init__(self, items, side: int, fast_decode: bool = True,
                 interpolation: str = "bicubic", threads: int = 0,
                 memory_limit: int | None = None):
        self.side = int(side)
        limit = pixel_memory_limit() if memory_limit is None else memory_limit
        min_size = self.side if fast_decode else None

        def decode(index: int) -> np.ndarray:
            image = load_image(items[index], index, min_size)
            return shrink(image, self.side, str(interpolation))

        self._memory: list[np.ndarray | None] = []
        self._spans: list[tuple[int, tuple[int, ...]] | None] = []
        self._path: str | None = None
        self._file: BinaryIO | None = None
        self._written = 0
        self._map: np.ndarray | None = None
        held = 0
        try:
            for array in _ordered(decode, len(items), threads):
                if held + array.nbytes <= limit:
                    self._memory.append(array)
                    self._spans.append(None)
                    held += array.nbytes
                else:
                    self._memory.append(None)
                    self._spans.append((self._written, array.shape))
                    self._spill(array)
        except BaseException:
            self.close()
            raise
        self.nbytes_in_memory = held
        self.nbytes_on_disk = self._written
        if self._file is not None:
            self._file.close()
            self._file = None

    def _spill(self, array: np.ndarray) -> None:
        if self._file is None:
            folder = tempfile.mkdtemp(prefix="sktransfer-pixels-")
            self._path = os.path.join(folder, "pixels.u8")
            self._file = open(self._path, "wb")  # noqa: SIM115 - closed in __init__
            self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        assert self._file is not None
        self._file.write(np.ascontiguousarray(array).tobytes())
        self._written += array.nbytes

    def _pixels(self, index: int) -> np.ndarray:
        array = self._memory[index]
        if array is not None:
            return array
        offset, shape = self._spans[index]  # type: ignore[misc]
        if self._map is None:
            assert self._path is not None
            self._map = np.memmap(self._path, dtype=np.uint8, mode="r")
        size = int(np.prod(shape))
        return self._map[offset:offset + size].reshape(shape)

    def __len__(self) -> int:
        return len(self._memory)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Image.fromarray(np.ascontiguousarray(self._pixels(index)))

    def close(self) -> None:
        """Remove the spill file (the store is unusable afterwards)."""
        self._map = None
        if self._file is not None:
            self._file.close()
            self._file = None
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()

    def __getstate__(self):
        # DataLoader worker processes: the memory-mapped file is reopened there
        state = self.__dict__.copy()
        state["_map"] = None
        state.pop("_finalizer", None)  # the creating process removes the file
        return state


def _ordered(decode, n: int, threads: int):
    """``decode(i)`` for i in range(n), in order, ``threads`` at a time, with
    at most ``2 * threads`` results waiting (memory stays bounded)."""
    if threads <= 1:
        for i in range(n):
            yield decode(i)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="sktransfer-pixels") as pool:
        ahead = 2 * threads
        futures = [pool.submit(decode, i) for i in range(min(n, ahead))]
        submitted = len(futures)
        try:
            for i in range(n):
                result = futures[i].result()
                futures[i] = None  # type: ignore[call-overload]
                if submitted < n:
                    futures.append(pool.submit(decode, submitted))
                    submitted += 1
                yield result
        finally:
            for future in futures:
                if future is not None:
                    future.cancel()

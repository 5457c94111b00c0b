"""Decode once per fit: the training images as uint8 pixels, resized once.

A fine-tuning fit reads every training image once per epoch. Decoding a photo
(a 2.5-MP JPEG: ~20 ms, a 12-MP one: ~75 ms in full, a few ms in draft mode)
and shrinking it to the network's resolution costs more than the augmentation
that follows, and gives the same pixels every epoch. ``DecodedPixels`` decodes
each image once (JPEG draft mode, as the embedders do), resizes it so that its
shorter side is ``side`` (the size the training and validation transforms
need, ``sktransfer.data.decode_size``; never enlarged) and keeps the uint8
pixels; each epoch's augmentation then runs on those.

With ``background=True`` the decoding overlaps the first epoch: threads decode
the rows in the order the fit will first read them (``order``) while the
first batches train, and a read waits only for its own row (or decodes it in
the reading thread when no thread has started on it). Every row is decoded
once either way; the first decoding error is raised by the next read.

The pixels stay in memory up to ``SKTRANSFER_PIXEL_CACHE_MB`` megabytes
(default 1024); past that bound they are appended to a file in a temporary
folder and each read copies its row back from the file (not a memory map,
whose touched pages would count in the process's memory), so a fit's memory
does not grow with the number of photos; the operating system's file cache
keeps the file's recent pages.
The folder is removed when the store is closed or garbage-collected.

With ``reuse`` (a fit's ``cache`` set), the pixels decoded from a file and
held in memory (not those spilled to disk, so memory stays within the bound
above) are also kept in the process's in-memory store (``sktransfer.cache``,
within ``SKTRANSFER_CACHE_MB``), keyed by ``reuse`` (the decoding settings) and the
file's identity and state (device, inode, size, modification and change times:
rewriting the file changes them), so the next fit on that file (the next fold
or candidate of a grid search) takes them instead of decoding it again. Images
given as arrays or PIL images are not decoded, so not kept.

The store is a read-only sequence of RGB PIL images, so the modality's dataset
(``sktransfer.data.ImageDataset``) serves it like any list of images.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
import torchvision.transforms.v2 as T
from PIL import Image

from sktransfer._utils.paths import megabytes_from_env
from sktransfer.cache import recall, remember
from sktransfer.data import load_image

__all__ = ["DecodedPixels", "pixel_memory_limit"]

_INTERPOLATIONS = {"bilinear": T.InterpolationMode.BILINEAR,
                   "bicubic": T.InterpolationMode.BICUBIC,
                   "nearest": T.InterpolationMode.NEAREST}
_WAITING, _DECODING, _STORED = 0, 1, 2  # a row's state


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
        Decoding threads beside the caller (0: the caller decodes every row).
    memory_limit : int or None
        Bytes kept in memory before spilling to disk; None reads
        ``SKTRANSFER_PIXEL_CACHE_MB``.
    order : sequence of int or None
        The order in which the rows will first be read: the threads decode
        them in that order (the rows it leaves out after it, in index order).
    background : bool
        Return at once and decode while the caller reads (each read waits for
        its row); else every row is decoded before the constructor returns.
    reuse : str or None
        Keep the pixels decoded from files in the process's in-memory store
        under this key (the decoding settings), and take them from there
        when a file was decoded so before; None: decode every row.
    """

    def __init__(self, items, side: int, fast_decode: bool = True,
                 interpolation: str = "bicubic", threads: int = 0,
                 memory_limit: int | None = None, order=None,
                 background: bool = False, reuse: str | None = None):
        self.side = int(side)
        self._reuse = None if reuse is None else f"decoded-pixels:{reuse}"
        self._limit = pixel_memory_limit() if memory_limit is None else memory_limit
        self._items, n = items, len(items)
        self._min_size = self.side if fast_decode else None
        self._interpolation = str(interpolation)
        first = [] if order is None else [int(i) for i in order]
        self._order = first + sorted(set(range(n)) - set(first))
        self._state = bytearray(n)
        self._memory: list[np.ndarray | None] = [None] * n
        self._spans: list[tuple[int, tuple[int, ...]] | None] = [None] * n
        self._cond = threading.Condition()
        self._cursor = self._stored = self._held = self._written = 0
        self._error: BaseException | None = None
        self._closed = False
        self._path: str | None = None
        self._file: BinaryIO | None = None
        self._reader: BinaryIO | None = None
        self._flushed = 0
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"sktransfer-pixels-{i}")
                         for i in range(max(0, int(threads)))]
        for thread in self._threads:
            thread.start()
        if not background:
            try:
                self.wait()
            except BaseException:
                self.close()
                raise

    # --- decoding ------------------------------------------------------------------

    def _work(self) -> None:
        """A decoding thread: the next unclaimed row in ``order``, until none."""
        while True:
            with self._cond:
                index = self._claim_next()
            if index is None:
                return
            try:
                self._decode_and_store(index)
            except BaseException:  # recorded; the next read raises it
                return

    def _claim_next(self) -> int | None:
        while (not self._closed and self._error is None
               and self._cursor < len(self._order)):
            index = self._order[self._cursor]
            self._cursor += 1
            if self._state[index] == _WAITING:
                self._state[index] = _DECODING
                return index
        return None

    def _decode_and_store(self, index: int) -> None:
        """Decode row ``index`` (claimed by this thread) and store it; an
        error (a bad file, a full disk) is kept for every later read."""
        try:
            item, reuse = self._items[index], self._reuse
            key = None if reuse is None else self._file_state(item)
            kept = None if reuse is None or key is None else recall(reuse, key)
            if kept is not None:
                self._store(index, kept)
                return
            image = load_image(item, index, self._min_size)
            array = shrink(image, self.side, self._interpolation)
            in_memory = self._store(index, array)
            if in_memory and reuse is not None and key is not None:
                remember(reuse, key, array)  # not spilled rows: memory bounded
        except BaseException as error:
            with self._cond:
                if self._error is None:
                    self._error = error
                self._cond.notify_all()
            raise

    def _file_state(self, item):
        """The key of a file's decoded pixels in the shared store, or None
        (not a file, or a file that cannot be read: decoding it then reports
        the error with its index and path)."""
        if not isinstance(item, (str, os.PathLike)):
            return None
        try:
            state = os.stat(item)
        except (OSError, ValueError):
            return None
        return (state.st_dev, state.st_ino, state.st_size, state.st_mtime_ns,
                state.st_ctime_ns, os.fspath(item))

    def _store(self, index: int, array: np.ndarray) -> bool:
        """Keep row ``index``'s pixels; whether they stay in memory."""
        in_memory = False
        with self._cond:
            if self._closed:
                return False
            if self._held + array.nbytes <= self._limit:
                self._memory[index] = array
                self._held += array.nbytes
                in_memory = True
            else:
                self._spans[index] = (self._written, array.shape)
                self._spill(array)
            self._state[index] = _STORED
            self._stored += 1
            if self._stored == len(self._state):
                self._finish_writing()
            self._cond.notify_all()
        return in_memory

    def _spill(self, array: np.ndarray) -> None:
        if self._file is None:
            folder = tempfile.mkdtemp(prefix="sktransfer-pixels-")
            self._path = os.path.join(folder, "pixels.u8")
            self._file = open(self._path, "wb")  # noqa: SIM115 - closed when complete
            self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        assert self._file is not None
        self._file.write(np.ascontiguousarray(array).tobytes())
        self._written += array.nbytes

    def _finish_writing(self) -> None:
        """Every row is decoded: close the spill file, let the items go."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._items = None

    def wait(self) -> None:
        """Block until every row is decoded (the caller decodes the rows no
        thread has started on); raise the first decoding error."""
        for index in self._order:
            self._ready(index)
        for thread in self._threads:
            thread.join()

    def _ready(self, index: int) -> None:
        """Return once row ``index`` is stored, decoding it here if no thread
        has claimed it; raise the first decoding error of any row."""
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._closed:
                    raise RuntimeError("the pixel store is closed")
                state = self._state[index]
                if state == _STORED:
                    return
                if state == _WAITING:
                    self._state[index] = _DECODING
                    break
                self._cond.wait()
        self._decode_and_store(index)

    # --- reading ---------------------------------------------------------------------

    @property
    def nbytes_in_memory(self) -> int:
        """Bytes of pixels held in memory (every row decoded)."""
        self.wait()
        return self._held

    @property
    def nbytes_on_disk(self) -> int:
        """Bytes of pixels in the spill file (every row decoded)."""
        self.wait()
        return self._written

    def _pixels(self, index: int) -> np.ndarray:
        self._ready(index)
        array = self._memory[index]
        if array is not None:
            return array
        offset, shape = self._spans[index]  # type: ignore[misc]
        size = int(np.prod(shape))
        with self._cond:  # the file may still grow: flush what is written
            if self._file is not None and offset + size > self._flushed:
                self._file.flush()
                self._flushed = self._written
            if self._reader is None:
                assert self._path is not None
                self._reader = open(self._path, "rb")  # noqa: SIM115 - closed by close()
            # read into a fresh buffer rather than map the file: mapped pages
            # count in the process's memory, so a mapped spill file would
            # make it grow with the number of photos after all
            self._reader.seek(offset)
            data = self._reader.read(size)
        if len(data) != size:
            raise RuntimeError(f"the pixel spill file {self._path} ends before "
                               f"row {index}'s {size} bytes at offset {offset}")
        return np.frombuffer(data, dtype=np.uint8).reshape(shape)

    def __len__(self) -> int:
        return len(self._state)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return Image.fromarray(np.ascontiguousarray(self._pixels(index)))

    def close(self) -> None:
        """Stop the decoding threads (each ends its current row), remove the
        spill file (the store is unusable afterwards)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()
        with self._cond:
            for handle in (self._reader, self._file):
                if handle is not None:
                    handle.close()
            self._reader = self._file = None
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()

    def __getstate__(self):
        # DataLoader worker processes: a complete store, the spill file
        # reopened there
        self.wait()
        state = self.__dict__.copy()
        for name in ("_cond", "_threads", "_reader", "_finalizer"):
            state.pop(name, None)  # the creating process removes the file
        return state

    def __setstate__(self, state) -> None:
        self.__dict__.update(state, _cond=threading.Condition(), _threads=[],
                             _reader=None)

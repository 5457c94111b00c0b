"""Per-sample embedding cache shared by the image and text transformers.

Each sample is keyed by a hash of its *content* (file bytes, pixels or text)
together with a *model key* (model, weights, layer, pooling, preprocessing).
So a ``GridSearchCV`` over downstream parameters, whose every fold and
candidate clones and refits the transformer, embeds each distinct sample once.

``cache=True`` keeps embeddings in a process-wide in-memory store bounded by
``SKTRANSFER_CACHE_MB`` (default 2048 MB, least recently used evicted first).
``cache="<dir>"`` also persists them, one small file per sample::

    <dir>/<model key>/model.json            what model wrote the entries
    <dir>/<model key>/<2 hex>/<sample key>.emb

Entries are stored batch by batch, so a killed run resumes where it stopped.
Each is written to a uniquely named temporary file and renamed into place, so
readers never see half a file and processes writing the same entry at once
(``n_jobs``, Dask workers on a shared filesystem) are harmless. Every entry is
validated on read (size, dtype, shape, a digest of key and payload, finite
values); a bad one is recomputed and rewritten with a
:class:`~sktransfer.exceptions.CacheCorruptionWarning`. Nothing is unpickled.
A directory that cannot be written (read-only, disk full) gives a
:class:`~sktransfer.exceptions.CacheWriteWarning` and the results are still
returned, without leaving partial entries behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from sktransfer._utils.files import atomic_write
from sktransfer._utils.paths import megabytes_from_env
from sktransfer.exceptions import (
    CacheCorruptionWarning,
    CacheWriteWarning,
    ParameterError,
)

__all__ = [
    "EmbeddingCache",
    "caching",
    "clear_memory_cache",
    "content_key",
    "decode_entry",
    "embed_with_cache",
    "encode_entry",
    "hash_parts",
    "open_regular",
    "recall",
    "remember",
    "text_key",
]

FORMAT = 1
_MAGIC = b"SKTEMB1\n"
_DTYPE = b"<f4\x00"
# magic, dtype of the payload, number of values, blake2b digest
_HEADER = struct.Struct("<8s4sI16s")
# What a model key and a sample key may be on disk: they name a folder and a
# file, so one plain name each (no separator, no "..").
_NAME = re.compile(r"[0-9A-Za-z_-]{1,128}")


def hash_parts(*parts: object) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def text_key(text: str) -> str:
    """Hash of a text sample."""
    return hash_parts("text", text.encode("utf-8", "surrogatepass"))


def content_key(item: str | os.PathLike[str] | Image.Image | np.ndarray) -> str:
    """Hash of an image sample's content: file bytes, pixels or array bytes."""
    if isinstance(item, (str, os.PathLike)):
        digest = hashlib.blake2b(digest_size=16)
        with open_regular(item) as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return "file-" + digest.hexdigest()
    if isinstance(item, Image.Image):
        return hash_parts("pil", item.mode, item.size, item.tobytes())
    array = np.ascontiguousarray(item)
    return hash_parts("array", array.dtype.str, array.shape, array.tobytes())


class _MemoryStore:
    def __init__(self) -> None:
        self.data: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.nbytes = 0
        self.lock = threading.Lock()  # GridSearchCV's threading backend

    @property
    def limit(self) -> int:
        return memory_limit()

    def get(self, key):
        with self.lock:
            value = self.data.get(key)
            if value is not None:
                self.data.move_to_end(key)
            return value

    def put(self, key, value: np.ndarray) -> None:
        limit = self.limit
        with self.lock:
            if key in self.data or value.nbytes > limit:
                return
            self.data[key] = value
            self.nbytes += value.nbytes
            while self.nbytes > limit and self.data:
                _, old = self.data.popitem(last=False)
                self.nbytes -= old.nbytes

    def clear(self) -> None:
        with self.lock:
            self.data.clear()
            self.nbytes = 0


_MEMORY = _MemoryStore()


def caching(cache: object) -> bool:
    """Whether an estimator's ``cache`` parameter asks for a cache: True (in
    memory) or a directory; False and None do not."""
    return cache is not False and cache is not None


def recall(namespace: str, key: object) -> np.ndarray | None:
    """The array kept under ``(namespace, key)`` in this process's in-memory
    store (``remember``), or None."""
    return _MEMORY.get((namespace, key))


def remember(namespace: str, key: object, value: np.ndarray) -> None:
    """Keep ``value`` (made read-only: readers share it) under
    ``(namespace, key)`` in the in-memory store, within ``SKTRANSFER_CACHE_MB``
    (least recently used evicted first; nothing kept with 0)."""
    value.flags.writeable = False
    _MEMORY.put((namespace, key), value)


def memory_limit() -> int:
    """Bytes of the in-memory cache: ``SKTRANSFER_CACHE_MB`` (default 2048)."""
    return megabytes_from_env("SKTRANSFER_CACHE_MB", "2048",
                              "2048; 0 disables the in-memory cache")


def clear_memory_cache() -> None:
    """Forget every embedding held in this process's memory."""
    _MEMORY.clear()


def _digest(model_key: str, key: str, dtype: bytes, count: int,
            payload: bytes) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in (model_key.encode(), key.encode(), dtype, str(count).encode()):
        digest.update(part + b"\x00")
    digest.update(payload)
    return digest.digest()


def encode_entry(model_key: str, key: str, vector: np.ndarray) -> bytes:
    """The bytes of one cache entry: a fixed header, then the raw values."""
    vector = np.ascontiguousarray(vector)
    dtype = vector.dtype.str.encode().ljust(4, b"\x00")[:4]
    payload = vector.tobytes()
    digest = _digest(model_key, key, dtype, vector.size, payload)
    return _HEADER.pack(_MAGIC, dtype, vector.size, digest) + payload


def decode_entry(model_key: str, key: str, data: bytes,
                 n_features: int) -> np.ndarray | str:
    """The float32 vector stored in ``data``, or a str saying why it is bad."""
    if len(data) != _HEADER.size + 4 * n_features:
        return f"size {len(data)} bytes, expected {_HEADER.size + 4 * n_features}"
    magic, dtype, count, digest = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        return "not a sktransfer cache entry"
    if dtype != _DTYPE or count != n_features:
        found = dtype.rstrip(b"\x00").decode("ascii", "replace")
        return f"dtype {found} x {count}, expected <f4 x {n_features}"
    payload = data[_HEADER.size:]
    if digest != _digest(model_key, key, dtype, count, payload):
        return "digest mismatch (damaged or copied from another entry)"
    vector = np.frombuffer(payload, dtype="<f4").astype(np.float32)
    if not np.isfinite(vector).all():
        return "non-finite values"
    return vector


class EmbeddingCache:
    """Look up and store embeddings for one model key.

    Parameters
    ----------
    model_key : str
        Identifies the model, weights, layer, pooling and preprocessing.
    n_features : int
        Length of every embedding; entries of another length are refused.
    directory : path-like or None
        Where to persist embeddings; ``None`` keeps them in memory only.
    description : dict or None
        What made the embeddings, recorded in ``model.json`` for people.
    """

    def __init__(
        self,
        model_key: str,
        n_features: int,
        directory: str | os.PathLike[str] | None = None,
        description: dict[str, Any] | None = None,
    ):
        if directory is not None and not (isinstance(model_key, str)
                                          and _NAME.fullmatch(model_key)):
            raise ParameterError(f"model_key {model_key!r} is not a plain name of "
                             f"letters, digits, '-' and '_' (it names the cache "
                             f"folder)")
        memory_limit()  # a bad SKTRANSFER_CACHE_MB is reported before any work
        self.model_key = model_key
        self.n_features = int(n_features)
        self.directory = None if directory is None else Path(directory) / model_key
        self.description = description or {}
        self._writable = True
        self._manifest_done = False
        self._folders: set[Path] = set()  # fan-out folders known to exist

    def fill(self, keys: Sequence[str],
             out: np.ndarray) -> tuple[list[int], list[tuple[int, int]]]:
        """Copy cached rows into ``out``; return what is left to embed.

        Returns ``(missing, copies)``: the indices to embed (first occurrence
        of each missing key) and ``(i, j)`` pairs meaning row ``i`` is row
        ``j`` (a sample repeated within ``keys``).
        """
        first: dict[str, int] = {}
        missing: list[int] = []
        copies: list[tuple[int, int]] = []
        bad: list[str] = []
        for i, key in enumerate(keys):
            if key in first:
                copies.append((i, first[key]))
                continue
            first[key] = i
            value = self._get(key, bad)
            if value is None:
                missing.append(i)
            else:
                out[i] = value
        if bad:
            shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more"
                                          if len(bad) > 3 else "")
            warnings.warn(f"{len(bad)} cache entries are invalid and will be "
                          f"recomputed and rewritten: {shown}",
                          CacheCorruptionWarning, stacklevel=5)
        return missing, copies

    def store(self, keys: Iterable[str], vectors: np.ndarray) -> None:
        """Keep ``vectors`` (one row per key) in memory and on disk."""
        for key, vector in zip(keys, vectors, strict=True):
            vector = np.array(vector, dtype=np.float32, copy=True)
            _MEMORY.put((self.model_key, key), vector)
            # A non-finite vector is the model's doing: persisting it would
            # only make every later read refuse it.
            if self.directory is not None and self._writable and \
                    np.isfinite(vector).all():
                self._write(key, vector)

    def _get(self, key: str, bad: list):
        value = _MEMORY.get((self.model_key, key))
        if value is not None or self.directory is None:
            return value
        path = self._path(key)
        try:
            data = read_regular(path, _HEADER.size + 4 * self.n_features + 1)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            bad.append(f"{path} (unreadable: {error})")
            return None
        value = decode_entry(self.model_key, key, data, self.n_features)
        if isinstance(value, str):
            bad.append(f"{path} ({value})")
            return None
        _MEMORY.put((self.model_key, key), value)
        return value

    def _root(self) -> Path:
        if self.directory is None:
            raise RuntimeError("this embedding cache keeps entries in memory only")
        return self.directory

    def _path(self, key: str) -> Path:
        if not _NAME.fullmatch(key):
            raise ParameterError(f"sample key {key!r} is not a plain name (it names "
                             f"a cache file)")
        fan = hashlib.blake2b(key.encode(), digest_size=1).hexdigest()
        return self._root() / fan / f"{key}.emb"

    def _write(self, key: str, vector: np.ndarray) -> None:
        path = self._path(key)
        try:
            if not self._manifest_done:
                self._write_manifest()
            if path.parent not in self._folders:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._folders.add(path.parent)
            atomic_write(path, encode_entry(self.model_key, key, vector))
        except OSError as error:
            self._writable = False
            warnings.warn(f"cannot write to the cache directory {self.directory} "
                          f"({error}); embeddings are returned but not persisted",
                          CacheWriteWarning, stacklevel=6)

    def _write_manifest(self) -> None:
        directory = self._root()
        manifest = directory / "model.json"
        content = json.dumps({"format": FORMAT, "model_key": self.model_key,
                              "n_features": self.n_features, **self.description},
                             indent=1, sort_keys=True, default=str).encode()
        try:
            current = manifest.read_bytes()
        except FileNotFoundError:
            current = None
        if current != content:
            if current is not None:
                warnings.warn(f"{manifest} described another model or format; "
                              "rewriting it", CacheCorruptionWarning, stacklevel=7)
            directory.mkdir(parents=True, exist_ok=True)
            atomic_write(manifest, content)
        self._manifest_done = True


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``open(path, "rb")`` for a regular file only: opened without blocking
    (a FIFO would wait for a writer forever), then checked; anything else
    raises ``OSError``."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{str(path)!r} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: str | os.PathLike[str], size: int = -1) -> bytes:
    """Up to ``size`` bytes of the regular file ``path`` (``open_regular``)."""
    with open_regular(path) as handle:
        return handle.read(size)


def embed_with_cache(
    n_items: int,
    keys: Sequence[str] | None,
    cache: EmbeddingCache | None,
    batches: Callable[[list[int]], Iterable[tuple[Sequence[int], np.ndarray]]],
    n_features: int,
) -> np.ndarray:
    """Embeddings of ``n_items`` samples; ``batches(indices)`` embeds misses.

    ``batches`` yields ``(rows, array)`` pairs: ``rows`` a subset of
    ``indices`` and ``array`` their float32 embeddings, one row each. The
    pairs may come in any order (text runs longest texts first) but must
    cover every index once. Each batch is stored as soon as it arrives, so a
    killed run loses at most one batch. Samples repeated within the call are
    embedded once. The result is written into one preallocated array.
    """
    out = np.empty((n_items, n_features), dtype=np.float32)
    if cache is not None and keys is None:
        raise RuntimeError("embed_with_cache needs the keys of the samples to "
                           "use a cache")
    cache_keys: Sequence[str] = keys if keys is not None else ()
    todo: list[int]
    copies: list[tuple[int, int]]
    if cache is None:
        todo, copies = list(range(n_items)), []
    else:
        todo, copies = cache.fill(cache_keys, out)
    pending = set(todo)
    for batch_rows, batch in batches(todo) if todo else ():
        rows = [int(row) for row in batch_rows]
        if np.ndim(batch) != 2 or np.shape(batch)[1] != n_features or \
                len(rows) != len(batch):
            raise RuntimeError(f"an embedding batch of shape {np.shape(batch)} "
                               f"does not fit {len(rows)} rows with {n_features} "
                               f"features")
        unexpected = [row for row in rows if row not in pending]
        if unexpected or len(set(rows)) != len(rows):
            raise RuntimeError(f"an embedding batch covers rows that were not "
                               f"asked for or were already embedded: "
                               f"{unexpected[:5] or rows[:5]}")
        pending.difference_update(rows)
        out[rows] = batch
        if cache is not None:
            cache.store([cache_keys[i] for i in rows], batch)
    if pending:
        raise RuntimeError(f"the embedding batches covered "
                           f"{len(todo) - len(pending)} of {len(todo)} samples")
    for i, j in copies:
        out[i] = out[j]
    return out

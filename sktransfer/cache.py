"""Per-sample embedding cache shared by the image and text transformers.

Each sample is keyed by a hash of its *content* (file bytes, pixels or text)
together with a *model key* (model, weights, layer, pooling, preprocessing).
So a ``GridSearchCV`` over downstream parameters, whose every fold and
candidate clones and refits the transformer, embeds each distinct sample once.

``cache=True`` keeps embeddings in a process-wide in-memory store bounded by
``SKTRANSFER_CACHE_MB`` (default 2048 MB, least recently used evicted first).
``cache="<dir>"`` also persists them as ``.npy`` files under that directory,
which survives across runs and is shared by worker processes (``n_jobs``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "EmbeddingCache",
    "clear_memory_cache",
    "content_key",
    "embed_with_cache",
    "hash_parts",
    "text_key",
]


def hash_parts(*parts) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def text_key(text: str) -> str:
    """Hash of a text sample."""
    return hash_parts("text", text.encode("utf-8", "surrogatepass"))


def content_key(item) -> str:
    """Hash of an image sample's content: file bytes, pixels or array bytes."""
    if isinstance(item, (str, os.PathLike)):
        digest = hashlib.blake2b(digest_size=16)
        with open(item, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return "file-" + digest.hexdigest()
    if isinstance(item, Image.Image):
        return hash_parts("pil", item.mode, item.size, item.tobytes())
    array = np.ascontiguousarray(item)
    return hash_parts("array", array.dtype.str, array.shape, array.tobytes())


class _MemoryStore:
    def __init__(self):
        self.data: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.nbytes = 0

    @property
    def limit(self) -> int:
        return int(float(os.environ.get("SKTRANSFER_CACHE_MB", 2048)) * 2**20)

    def get(self, key):
        value = self.data.get(key)
        if value is not None:
            self.data.move_to_end(key)
        return value

    def put(self, key, value: np.ndarray) -> None:
        if key in self.data:
            return
        self.data[key] = value
        self.nbytes += value.nbytes
        while self.nbytes > self.limit and self.data:
            _, old = self.data.popitem(last=False)
            self.nbytes -= old.nbytes


_MEMORY = _MemoryStore()


def clear_memory_cache() -> None:
    """Forget every embedding held in this process's memory."""
    _MEMORY.data.clear()
    _MEMORY.nbytes = 0


class EmbeddingCache:
    """Look up and store embeddings for one model key.

    Parameters
    ----------
    model_key : str
        Identifies the model, weights, layer, pooling and preprocessing.
    directory : path-like or None
        Where to persist embeddings; ``None`` keeps them in memory only.
    """

    def __init__(self, model_key: str, directory=None):
        self.model_key = model_key
        self.directory = None if directory is None else Path(directory) / model_key

    def lookup(self, keys) -> list:
        """The cached vector for each key, or None where it is missing."""
        found = []
        for key in keys:
            value = _MEMORY.get((self.model_key, key))
            if value is None and self.directory is not None:
                value = self._read(key)
                if value is not None:
                    _MEMORY.put((self.model_key, key), value)
            found.append(value)
        return found

    def store(self, keys, vectors) -> None:
        for key, vector in zip(keys, vectors, strict=True):
            vector = np.array(vector, dtype=np.float32, copy=True)
            _MEMORY.put((self.model_key, key), vector)
            if self.directory is not None:
                self._write(key, vector)

    def _path(self, key) -> Path:
        return self.directory / key[:2] / f"{key}.npy"

    def _read(self, key):
        path = self._path(key)
        try:
            return np.load(path)
        except (FileNotFoundError, ValueError, OSError):
            return None

    def _write(self, key, vector) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, vector)
        os.replace(tmp, path)  # atomic: readers never see half a file


def embed_with_cache(items, keys, cache: EmbeddingCache | None, compute):
    """Embeddings for ``items``; ``compute(indices)`` embeds only the misses.

    Duplicated samples within ``items`` are embedded once as well.
    """
    if cache is None:
        return compute(list(range(len(items))))
    found = cache.lookup(keys)
    first_of = {}
    for i, (key, value) in enumerate(zip(keys, found, strict=True)):
        if value is None:
            first_of.setdefault(key, i)
    if first_of:
        missing = list(first_of.values())
        computed = compute(missing)
        cache.store([keys[i] for i in missing], computed)
        by_key = dict(zip([keys[i] for i in missing], computed, strict=True))
        found = [by_key[k] if v is None else v
                 for k, v in zip(keys, found, strict=True)]
    return np.stack(found).astype(np.float32, copy=False)

"""The one write-then-rename routine: a file appears whole or not at all.

Used by the embedding cache, the ONNX export cache and its int8 copies
(through :func:`replacing`, as the quantizers write to a path), ``sktransfer
embed``'s output, the model archive and the model catalog. A new file gets the
mode any program's new file gets, ``0o666`` less the process umask *at write
time* (the kernel applies it to ``os.open``), so a cache folder shared by a
team or by Dask workers running as another user stays readable when the umask
says so.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "replacing"]


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new empty file beside ``path``; rename it to ``path`` when the
    block ends, remove it when the block raises.

    A concurrent writer of the same file just wins or loses the rename (on
    Windows, where an open file cannot be replaced, the one already there
    stays).
    """
    path = Path(path)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        yield partial
        try:
            os.replace(partial, path)
        except PermissionError:  # Windows: a reader holds the file open
            if not path.is_file():
                raise
    finally:
        with contextlib.suppress(OSError):
            os.remove(partial)


def atomic_write(path: str | os.PathLike[str],
                 data: bytes | Callable[[BinaryIO], object]) -> None:
    """Write ``data`` (bytes, or a function writing to a binary handle) to
    ``path`` through :func:`replacing`."""
    with replacing(path) as partial, open(partial, "wb") as handle:
        if callable(data):
            data(handle)
        else:
            handle.write(data)

"""The output folder of ``sktransfer embed``: a resumable parquet dataset.

Layout::

    OUT/_manifest.json        model identity, settings, input hash, partitioning
    OUT/part-00000.parquet    one file per input partition, written atomically
    OUT/_skipped.csv          inputs left out with --skip-bad, and why

Each part file carries its partition number, its input row count, the inputs
it skipped, a signature of its inputs (each text or name; for a local image
file its size, its modification time and, up to ``SIGNED_CONTENT_BYTES``
(1 MiB), the hash of its bytes; a URL by its address alone) and a checksum of
its values in its parquet
metadata, so a part is valid exactly when that metadata, its row count, its
columns and its values agree with the manifest and with the inputs as they are
now: an input replaced in place, or a value damaged on disk, makes its part
be embedded again. A rerun skips
valid parts, deletes leftovers of an interrupted write (``*.tmp``) and refuses
a folder made with another model, other settings or other inputs. Files whose
name starts with ``_`` are ignored by parquet readers, so
``pandas.read_parquet(OUT)`` reads the embeddings alone.
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from sktransfer._utils.files import atomic_write
from sktransfer.exceptions import EmbedOutputError

__all__ = ["EmbedStore", "check_folder", "input_signature", "manifest_for",
           "saved_partition_size"]

FORMAT = "sktransfer-embeddings"
MANIFEST = "_manifest.json"
SKIPPED = "_skipped.csv"
_META_KEY = b"sktransfer"
# Parameters that change how fast, not what: not part of the identity.
_SPEED_ONLY = {"batch_size", "device", "cache", "progress", "num_workers"}


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def manifest_for(transformer, keys: pd.DataFrame, column: str,
                 partition_size: int) -> dict:
    """What identifies an output: model, settings, inputs, partitioning."""
    from sktransfer.cache import hash_parts

    settings = {name: _jsonable(value) for name, value in
                sorted(transformer.get_params(deep=False).items())
                if name not in _SPEED_ONLY}
    return {
        "format": FORMAT,
        "version": 1,
        "transformer": type(transformer).__name__,
        "settings": settings,
        "model_key": transformer.model_key_,
        "n_features": int(transformer.n_features_out_),
        "key_columns": [str(name) for name in keys.columns],
        "input_column": column,
        "n_rows": len(keys),
        "inputs": hash_parts(*keys[column].astype(str)),
        "partition_size": int(partition_size),
    }


#: Local image files up to this size are signed by their content; larger ones
#: by size and modification time (reading them all again on every resume
#: would cost more than it saves).
SIGNED_CONTENT_BYTES = 2**20


def input_signature(values, modality: str) -> str:
    """Hash of a partition's inputs: each one (a text, a path or URL), and for
    a local image file its size and modification time and, up to
    ``SIGNED_CONTENT_BYTES``, the hash of its bytes (a file replaced in place,
    even by one of the same size and time, changes it). A URL is signed by
    its address only."""
    import hashlib

    from sktransfer.cache import hash_parts, read_regular

    parts = []
    for value in values:
        parts.append(value)
        if modality == "image" and isinstance(value, str) and "://" not in value:
            try:
                info = os.stat(value)
                content = (hashlib.blake2b(read_regular(value)).hexdigest()
                           if info.st_size <= SIGNED_CONTENT_BYTES
                           and os.path.isfile(value) else None)
                parts.append((info.st_size, info.st_mtime_ns, content))
            except OSError:
                parts.append(None)
    return hash_parts(*parts)


def values_checksum(features: np.ndarray) -> str:
    from sktransfer.cache import hash_parts

    return hash_parts(np.ascontiguousarray(features, dtype=np.float32).tobytes())


def saved_partition_size(folder) -> int | None:
    """The partition size an existing output folder was made with, if any."""
    try:
        size = json.loads((Path(folder) / MANIFEST).read_text()).get(
            "partition_size")
    except (OSError, ValueError, AttributeError):
        return None
    return size if type(size) is int and size >= 1 else None


def check_folder(folder) -> None:
    """Refuse an existing ``folder`` that is not an embed output (cheap)."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file() or not folder.exists():
        return
    if not folder.is_dir() or any(folder.iterdir()):
        raise EmbedOutputError(
            f"{str(folder)!r} exists and is not an 'sktransfer embed' output; "
            f"pick another --out or delete it")


def _differences(old: dict, new: dict) -> list[str]:
    found = []
    for name in sorted(set(old) | set(new)):
        if name == "settings":
            continue
        if old.get(name) != new.get(name):
            found.append(name)
    for name in sorted(set(old.get("settings", {})) | set(new["settings"])):
        before, now = old.get("settings", {}).get(name), new["settings"].get(name)
        if before != now:
            found.append(f"{name}={now!r} (the folder has {before!r})")
    return found


class EmbedStore:
    """One output folder, checked against ``manifest`` when opened.

    Parameters
    ----------
    folder : path
        The output parquet folder (created when missing).
    manifest : dict
        From :func:`manifest_for`; an existing folder must match it.
    feature_names : sequence of str
        The transformer's ``get_feature_names_out()``.
    signature : callable, default=None
        ``signature(index)``: the partition's :func:`input_signature` now; a
        part recorded with another one is embedded again.
    """

    def __init__(self, folder, manifest: dict, feature_names, signature=None):
        self.folder = Path(folder)
        self.manifest = manifest
        self.signature = signature
        self.features = list(map(str, feature_names))
        self.columns = [*manifest["key_columns"], *self.features]
        size, rows = manifest["partition_size"], manifest["n_rows"]
        self.n_partitions = max(1, -(-rows // size))
        self._width = max(5, len(str(self.n_partitions - 1)))
        self._open()

    def _open(self) -> None:
        path = self.folder / MANIFEST
        if path.is_file():
            try:
                old = json.loads(path.read_text())
            except ValueError:
                old = {}
            changed = _differences(old, self.manifest)
            if changed:
                raise EmbedOutputError(
                    f"{str(self.folder)!r} holds embeddings made differently "
                    f"({'; '.join(changed)}); refusing to mix them: pick another "
                    f"--out or delete that folder")
        else:
            check_folder(self.folder)
            self.folder.mkdir(parents=True, exist_ok=True)
            self._atomic_write(path, lambda handle: handle.write(
                json.dumps(self.manifest, indent=1).encode()))
        for entry in self.folder.iterdir():
            ours = (entry.name.endswith(".tmp") or entry.name == SKIPPED
                    or fnmatch.fnmatch(entry.name, "part-*.parquet"))
            if ours and not entry.is_file() and not entry.is_symlink():
                # a folder (or FIFO...) where a part goes: the rename onto it
                # would fail after the work
                raise EmbedOutputError(
                    f"{str(entry)!r} is not a regular file, where 'sktransfer "
                    f"embed' writes one: delete it, or pick another --out")
            if entry.name.endswith(".tmp"):  # an interrupted write
                entry.unlink(missing_ok=True)

    def rows(self, index: int) -> range:
        size = self.manifest["partition_size"]
        return range(index * size, min((index + 1) * size, self.manifest["n_rows"]))

    def part_path(self, index: int) -> Path:
        return self.folder / f"part-{index:0{self._width}d}.parquet"

    def part_info(self, index: int, verify: bool = False) -> dict | None:
        """The part's metadata when the part is present and valid, else None.

        ``verify`` also reads its values and checks them against the checksum
        and its inputs against their signature now (what a resume does).
        """
        import pyarrow.parquet as pq

        path = self.part_path(index)
        try:
            if not path.is_file():  # a FIFO or folder in its place: no part
                return None
            meta = pq.read_metadata(path)
            schema = meta.schema.to_arrow_schema()
            info = json.loads(schema.metadata[_META_KEY])
            n_in = len(self.rows(index))
            valid = (isinstance(info, dict) and info.get("partition") == index
                     and info.get("rows") == n_in
                     and meta.num_rows + len(info.get("skipped", [])) == n_in
                     and schema.names == self.columns)
            if valid and verify:
                valid = self._verified(path, index, info)
        except (OSError, KeyError, TypeError, ValueError, AttributeError):
            return None
        return info if valid else None

    def _verified(self, path: Path, index: int, info: dict) -> bool:
        import pyarrow.parquet as pq

        if self.signature is not None and info.get("inputs") != self.signature(index):
            return False
        table = pq.read_table(path, columns=self.features)
        values = np.column_stack([table.column(name).to_numpy() for name in
                                  self.features]) if self.features else np.empty(0)
        return info.get("checksum") == values_checksum(values)

    def write(self, index: int, keys: pd.DataFrame, features: np.ndarray,
              skipped: list) -> None:
        """Write a partition's embeddings atomically (temp file, then rename).

        ``keys``: the key columns of the embedded rows; ``features``: their
        ``(n, d)`` float32 features; ``skipped``: a record per skipped input.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if len(keys) != len(features):
            raise RuntimeError(f"{len(keys)} key rows but {len(features)} feature rows")
        key_table = pa.Table.from_pandas(keys.reset_index(drop=True),
                                         preserve_index=False)
        # one contiguous column per feature: arrow takes them without a copy
        columns = np.asfortranarray(features, dtype=np.float32)
        arrays = [*key_table.columns,
                  *(pa.array(columns[:, j]) for j in range(columns.shape[1]))]
        info = {"partition": index, "rows": len(self.rows(index)),
                "skipped": skipped, "checksum": values_checksum(features),
                "inputs": None if self.signature is None else self.signature(index)}
        table = pa.Table.from_arrays(arrays, names=self.columns,
                                     metadata={_META_KEY: json.dumps(info)})
        # dictionaries and min/max statistics only for the key columns: on
        # float features they cost a third of the write and help no reader
        names = list(self.manifest["key_columns"])
        self._atomic_write(self.part_path(index), lambda handle: pq.write_table(
            table, handle, use_dictionary=names, write_statistics=names))

    def write_skipped(self) -> int:
        """Collect every part's skipped inputs into ``_skipped.csv``."""
        records = []
        for index in range(self.n_partitions):
            info = self.part_info(index) or {}
            records += info.get("skipped", [])
        path = self.folder / SKIPPED
        if not records:
            path.unlink(missing_ok=True)
            return 0
        frame = pd.DataFrame(records)
        self._atomic_write(path, lambda handle: handle.write(
            frame.to_csv(index=False).encode()))
        return len(records)

    def _atomic_write(self, path: Path, write) -> None:
        atomic_write(path, write)

"""The zip archive of ``sktransfer.persist``, validated before anything is read:
a manifest of a known format, expected members only, sane sizes, and the
SHA-256 the manifest records for each member."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import struct
import zipfile
import zlib
from pathlib import Path

from sktransfer._utils.files import atomic_write
from sktransfer.exceptions import ModelFileError, UnsafeModelFileError
from sktransfer.persist import _limits as limits

__all__ = ["FORMAT", "MANIFEST", "RESERVED_METADATA", "TREE", "VERSION", "Archive",
           "check_model_path", "sha256", "write_archive"]

FORMAT = "sktransfer-model"
VERSION = 1
MANIFEST = "manifest.json"
TREE = "estimator.skops"
#: What zipfile raises on a damaged archive (a flipped byte, a truncated
#: member, an unsupported compression or encryption).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
              RuntimeError, OSError, struct.error, ValueError)
#: Metadata keys ``sktransfer fit`` writes: each a string when present.
RESERVED_METADATA = ("format", "modality", "text_column", "task")
_ZIP_START = b"PK\x03\x04"
_PICKLE_STARTS = (b"\x80", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x28\xb5\x2f\xfd")
_MEMBER = re.compile(r"networks/(\d+)/(.+)")


def sha256(file: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_archive(path: Path, manifest: dict, members: dict[str, Path]) -> None:
    """Write the zip beside ``path`` and rename it: never half-written."""
    def write(handle) -> None:
        with zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1),
                             zipfile.ZIP_DEFLATED)
            for name, file in members.items():
                stored = name.endswith(".safetensors")
                archive.write(file, name, zipfile.ZIP_STORED if stored
                              else zipfile.ZIP_DEFLATED)

    atomic_write(path, write)


class Archive:
    """A validated archive: a zip with a manifest, expected members only, each
    within the size limits (``sktransfer.persist._limits``) and with the
    SHA-256 the manifest records. Whatever zipfile raises on a damaged file
    becomes a ``ModelFileError``."""

    def __init__(self, path: Path):
        self.path = path
        self.name = repr(str(path))
        self.digests: dict[str, str] = {}  # checked members: their SHA-256

    def __enter__(self):
        self.handle = _open_regular(self.path)
        try:
            _check_is_archive(self.path, self.handle)
            self.size = os.fstat(self.handle.fileno()).st_size
            self.zip = zipfile.ZipFile(self.handle)
        except BaseException as exc:
            self.handle.close()
            if isinstance(exc, ZIP_ERRORS) and not isinstance(exc, ModelFileError):
                raise self._damaged(exc) from None
            raise
        try:
            self._validate()
        except ZIP_ERRORS as exc:
            self.zip.close()
            self.handle.close()
            if isinstance(exc, ModelFileError):
                raise
            raise self._damaged(exc) from None
        except BaseException:
            self.zip.close()
            self.handle.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.zip.close()
        self.handle.close()

    def _damaged(self, exc: BaseException) -> ModelFileError:
        return ModelFileError(f"{self.name} is damaged or truncated: it cannot be "
                              f"read as a zip archive ({type(exc).__name__}: "
                              f"{exc})")

    def _validate(self) -> None:
        from sktransfer.persist._nets import NETWORK_FILES

        infos = self.zip.infolist()
        names = [info.filename for info in infos]
        if MANIFEST not in names:
            raise ModelFileError(f"{self.name} is a zip file but not a sktransfer "
                                 f"model: it has no {MANIFEST}")
        if len(set(names)) != len(names):
            raise ModelFileError(f"{self.name} holds a member twice")
        limits.check_members(infos, self.size, self.name)
        self.manifest = manifest = self._read_manifest()
        expected = manifest["members"]
        for name in names:
            if name == MANIFEST:
                continue
            match = _MEMBER.fullmatch(name)
            allowed = name == TREE or (match is not None
                                       and match[2] in NETWORK_FILES)
            if not allowed or name not in expected:
                raise ModelFileError(f"{self.name} holds an unexpected member "
                                     f"{name!r}")
        missing = sorted(set(expected) - set(names))
        if missing:
            raise ModelFileError(f"{self.name} lacks members {missing}")
        self.networks = manifest["networks"]

    def _read_manifest(self) -> dict:
        manifest = limits.read_json(self._inflate(MANIFEST),
                                    f"{self.name}: its {MANIFEST}")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelFileError(f"{self.name} is not a sktransfer model file "
                                 f"(format is not {FORMAT!r})")
        version = manifest.get("version")
        if type(version) is not int or version < 1:
            raise ModelFileError(f"{self.name} has format version {version!r}, not "
                                 f"a positive integer: the file is damaged or "
                                 f"crafted")
        if version > VERSION:
            raise ModelFileError(f"{self.name} has format version {version!r}; this "
                                 f"sktransfer reads version {VERSION}: upgrade it")
        checks = (("members", dict), ("networks", list), ("metadata", dict))
        for key, kind in checks:
            if not isinstance(manifest.get(key), kind):
                raise ModelFileError(f"{self.name}: {MANIFEST} has no valid {key!r}")
        if not all(isinstance(n, dict) for n in manifest["networks"]):
            raise ModelFileError(f"{self.name}: {MANIFEST} has an invalid network")
        if not all(isinstance(d, str) for d in manifest["members"].values()):
            raise ModelFileError(f"{self.name}: {MANIFEST} has an invalid digest")
        for key in RESERVED_METADATA:
            value = manifest["metadata"].get(key)
            if value is not None and not isinstance(value, str):
                raise ModelFileError(
                    f"{self.name}: its metadata {key!r} is {type(value).__name__} "
                    f"{value!r:.60}, not a string (sktransfer fit writes a string)")
        return manifest

    def _inflate(self, name: str, sink=None) -> bytes:
        """A member inflated in chunks and counted: at most its declared size
        (which the limits bound), whatever its compressed stream holds."""
        info = self.zip.getinfo(name)
        with self.zip.open(info) as source:
            return limits.read_counted(source, info.file_size,
                                       f"{self.name}: member {name!r}", sink)

    def _check(self, name: str, digest: str) -> None:
        if digest != self.manifest["members"][name]:
            raise ModelFileError(f"{self.name}: member {name!r} was modified after "
                                 f"it was saved (its SHA-256 differs from the "
                                 f"manifest's)")
        self.digests[name] = digest

    def read(self, name: str) -> bytes:
        """A member's bytes (within the size limits), its SHA-256 checked."""
        try:
            data = self._inflate(name)
        except ZIP_ERRORS as exc:
            if isinstance(exc, ModelFileError):
                raise
            raise self._damaged_member(name, exc) from None
        self._check(name, hashlib.sha256(data).hexdigest())
        return data

    def _damaged_member(self, name: str, exc: BaseException) -> ModelFileError:
        return ModelFileError(f"{self.name}: member {name!r} is damaged "
                              f"({type(exc).__name__}: {exc})")

    def extract(self, prefix: str, folder: Path) -> Path:
        """The members under ``prefix``, streamed into ``folder`` (at most the
        size the zip declares, which the limits bound), each hash checked."""
        folder.mkdir(parents=True)
        for name in self.manifest["members"]:
            if not name.startswith(prefix):
                continue
            target = folder.joinpath(*name[len(prefix):].split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            try:
                with open(target, "xb") as out:
                    self._inflate(name, _tee(digest, out))
            except ZIP_ERRORS as exc:
                if isinstance(exc, ModelFileError):
                    raise
                raise self._damaged_member(name, exc) from None
            self._check(name, digest.hexdigest())
        return folder


def _tee(digest, out):
    def sink(chunk: bytes) -> None:
        digest.update(chunk)
        out.write(chunk)
    return sink


def _open_regular(path: Path):
    """``path`` opened for reading, refused unless it is a regular file: the
    file is opened without blocking (a FIFO or a device never stalls the
    load) and checked on its open descriptor (no race with a swap)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if os.path.isdir(path):  # Linux opens a folder; Windows refuses it
            fd = None
        else:
            raise ModelFileError(f"{str(path)!r} cannot be opened "
                                 f"({exc.strerror or type(exc).__name__})"
                                 ) from None
    mode = os.stat(path).st_mode if fd is None else os.fstat(fd).st_mode
    if stat.S_ISDIR(mode):
        if fd is not None:
            os.close(fd)
        raise ModelFileError(f"{str(path)!r} is a folder, not a model file: give "
                             f"the path of the .skt file written by "
                             f"sktransfer.save or 'sktransfer fit'")
    if not stat.S_ISREG(mode):
        assert fd is not None
        os.close(fd)
        raise ModelFileError(f"{str(path)!r} is not a regular file (a pipe, "
                             f"socket or device): a model file is a .skt file "
                             f"written by sktransfer.save or 'sktransfer fit'")
    assert fd is not None
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def check_model_path(path: Path) -> None:
    """Refuse (``ModelFileError``) a path that is not a regular file, without
    reading it (the check ``Archive`` makes first)."""
    _open_regular(path).close()


def _check_is_archive(path: Path, handle) -> None:
    if zipfile.is_zipfile(handle):
        handle.seek(0)
        return
    handle.seek(0)
    start = handle.read(6)
    if start.startswith(_ZIP_START):
        raise ModelFileError(f"{str(path)!r} is damaged or truncated: it starts "
                             f"as a zip archive but its end (the zip directory) "
                             f"is missing or corrupt; save the model again")
    if start.startswith(_PICKLE_STARTS):
        raise UnsafeModelFileError(
            f"{str(path)!r} is a pickle/joblib file, not a sktransfer model "
            f"archive: sktransfer.load never unpickles, as unpickling can run "
            f"any code. If you trust its author, use joblib.load; then save it "
            f"with sktransfer.save")
    raise ModelFileError(f"{str(path)!r} is not a sktransfer model file (not a "
                         f"zip archive written by sktransfer.save)")

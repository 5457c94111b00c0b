"""The zip archive of ``sktransfer.persist``, validated before anything is read:
a manifest of a known format, expected members only, sane sizes, and the
SHA-256 the manifest records for each member."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import uuid
import zipfile
import zlib
from pathlib import Path

from sktransfer.exceptions import ModelFileError, UnsafeModelFileError
from sktransfer.persist import _limits as limits

__all__ = ["FORMAT", "MANIFEST", "TREE", "VERSION", "Archive", "sha256",
           "write_archive"]

FORMAT = "sktransfer-model"
VERSION = 1
MANIFEST = "manifest.json"
TREE = "estimator.skops"
#: What zipfile raises on a damaged archive (a flipped byte, a truncated
#: member, an unsupported compression or encryption).
ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError,
              RuntimeError, OSError, struct.error, ValueError)
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
    # Not mkstemp: its file is private (0600); this one gets the umask's mode.
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with open(partial, "xb") as handle, zipfile.ZipFile(handle, "w") as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1),
                             zipfile.ZIP_DEFLATED)
            for name, file in members.items():
                stored = name.endswith(".safetensors")
                archive.write(file, name, zipfile.ZIP_STORED if stored
                              else zipfile.ZIP_DEFLATED)
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


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
        _check_is_archive(self.path)
        self.size = self.path.stat().st_size
        try:
            self.zip = zipfile.ZipFile(self.path)
        except ZIP_ERRORS as exc:
            raise self._damaged(exc) from None
        try:
            self._validate()
        except ZIP_ERRORS as exc:
            self.zip.close()
            if isinstance(exc, ModelFileError):
                raise
            raise self._damaged(exc) from None
        except BaseException:
            self.zip.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.zip.close()

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
        manifest = limits.read_json(self.zip.read(MANIFEST),
                                    f"{self.name}: its {MANIFEST}")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise ModelFileError(f"{self.name} is not a sktransfer model file "
                                 f"(format is not {FORMAT!r})")
        version = manifest.get("version")
        if not isinstance(version, int) or version > VERSION:
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
        return manifest

    def _check(self, name: str, digest: str) -> None:
        if digest != self.manifest["members"][name]:
            raise ModelFileError(f"{self.name}: member {name!r} was modified after "
                                 f"it was saved (its SHA-256 differs from the "
                                 f"manifest's)")
        self.digests[name] = digest

    def read(self, name: str) -> bytes:
        """A member's bytes (within the size limits), its SHA-256 checked."""
        try:
            data = self.zip.read(name)
        except ZIP_ERRORS as exc:
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
                with self.zip.open(name) as source, open(target, "xb") as out:
                    for chunk in iter(lambda: source.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except ZIP_ERRORS as exc:
                raise self._damaged_member(name, exc) from None
            self._check(name, digest.hexdigest())
        return folder


def _check_is_archive(path: Path) -> None:
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a model file: give "
                             f"the path of the .skt file written by "
                             f"sktransfer.save or 'sktransfer fit'")
    if not path.is_file():
        raise ModelFileError(f"{str(path)!r} does not exist or is not a file")
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as handle:
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

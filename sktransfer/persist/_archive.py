"""The zip archive of ``sktransfer.persist``, validated before anything is read:
a manifest of a known format, expected members only, sane sizes, and the
SHA-256 the manifest records for each member."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import zipfile
from pathlib import Path

from sktransfer.exceptions import ModelFileError, UnsafeModelFileError

__all__ = ["FORMAT", "MANIFEST", "TREE", "VERSION", "Archive", "sha256",
           "write_archive"]

FORMAT = "sktransfer-model"
VERSION = 1
MANIFEST = "manifest.json"
TREE = "estimator.skops"
_MAX_SMALL = 1 << 30  # manifest, tree, tokenizer files: 1 GiB at most
_MAX_WEIGHTS = 1 << 40
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
    of a sane size and with the SHA-256 the manifest records."""

    def __init__(self, path: Path):
        self.path = path
        self.name = repr(str(path))

    def __enter__(self):
        _check_is_archive(self.path)
        self.zip = zipfile.ZipFile(self.path)
        try:
            self._validate()
        except BaseException:
            self.zip.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.zip.close()

    def _validate(self) -> None:
        from sktransfer.persist._nets import NETWORK_FILES

        infos = self.zip.infolist()
        names = [info.filename for info in infos]
        if MANIFEST not in names:
            raise ModelFileError(f"{self.name} is a zip file but not a sktransfer "
                                 f"model: it has no {MANIFEST}")
        if len(set(names)) != len(names):
            raise ModelFileError(f"{self.name} holds a member twice")
        self.manifest = manifest = self._read_manifest()
        expected = manifest["members"]
        for info in infos:
            name = info.filename
            if name == MANIFEST:
                continue
            match = _MEMBER.fullmatch(name)
            allowed = name == TREE or (match is not None
                                       and match[2] in NETWORK_FILES)
            if not allowed or name not in expected:
                raise ModelFileError(f"{self.name} holds an unexpected member "
                                     f"{name!r}")
            limit = _MAX_WEIGHTS if name.endswith(".safetensors") else _MAX_SMALL
            if info.file_size > limit:
                raise ModelFileError(f"{self.name}: member {name!r} is too large "
                                     f"({info.file_size} bytes)")
        missing = sorted(set(expected) - set(names))
        if missing:
            raise ModelFileError(f"{self.name} lacks members {missing}")
        self.networks = manifest["networks"]

    def _read_manifest(self) -> dict:
        info = self.zip.getinfo(MANIFEST)
        if info.file_size > _MAX_SMALL:
            raise ModelFileError(f"{self.name}: {MANIFEST} is too large")
        try:
            manifest = json.loads(self.zip.read(MANIFEST))
        except ValueError as exc:
            raise ModelFileError(f"{self.name}: {MANIFEST} is not JSON ({exc})") \
                from None
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
        return manifest

    def _check(self, name: str, digest: str) -> None:
        if digest != self.manifest["members"][name]:
            raise ModelFileError(f"{self.name}: member {name!r} was modified after "
                                 f"it was saved (its SHA-256 differs from the "
                                 f"manifest's)")

    def read(self, name: str) -> bytes:
        data = self.zip.read(name)
        self._check(name, hashlib.sha256(data).hexdigest())
        return data

    def extract(self, prefix: str, folder: Path) -> Path:
        """The members under ``prefix``, copied into ``folder``, checked."""
        folder.mkdir(parents=True)
        for name in self.manifest["members"]:
            if not name.startswith(prefix):
                continue
            target = folder.joinpath(*name[len(prefix):].split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with self.zip.open(name) as source, open(target, "wb") as out:
                for chunk in iter(lambda: source.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            self._check(name, digest.hexdigest())
        return folder


def _check_is_archive(path: Path) -> None:
    if not path.is_file():
        raise ModelFileError(f"{str(path)!r} does not exist or is not a file")
    if zipfile.is_zipfile(path):
        return
    with open(path, "rb") as handle:
        start = handle.read(6)
    if start.startswith(_PICKLE_STARTS):
        raise UnsafeModelFileError(
            f"{str(path)!r} is a pickle/joblib file, not a sktransfer model "
            f"archive: sktransfer.load never unpickles, as unpickling can run "
            f"any code. If you trust its author, use joblib.load; then save it "
            f"with sktransfer.save")
    raise ModelFileError(f"{str(path)!r} is not a sktransfer model file (not a "
                         f"zip archive written by sktransfer.save)")

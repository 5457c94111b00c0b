"""One write-then-rename routine; new files honour the umask of the moment
(not one read at import), so shared cache folders stay readable."""

from __future__ import annotations

import os
import stat
import sys

import numpy as np
import pytest

from sktransfer._utils.files import atomic_write, replacing
from sktransfer.backbones import _catalog
from sktransfer.cache import EmbeddingCache
from sktransfer.persist._archive import write_archive

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request):
    old = os.umask(request.param)  # set after every import
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_routine_writes_whole_files_with_the_umask(tmp_path, umask):
    atomic_write(tmp_path / "a.bin", b"hello")
    atomic_write(tmp_path / "b.bin", lambda handle: handle.write(b"world"))
    assert (tmp_path / "a.bin").read_bytes() == b"hello"
    assert (tmp_path / "b.bin").read_bytes() == b"world"
    assert mode(tmp_path / "a.bin") == mode(tmp_path / "b.bin") == 0o666 & ~umask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.bin"]


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "model.skt"
    target.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"), replacing(target) as partial:
        partial.write_bytes(b"half")
        raise OSError("disk full")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.skt"]


def test_cache_entries_are_readable_by_the_team(tmp_path, umask):
    cache = EmbeddingCache("m" * 16, 3, directory=tmp_path)
    cache.store(["k1"], np.ones((1, 3), dtype=np.float32))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 2  # the entry and model.json
    assert {mode(p) for p in files} == {0o666 & ~umask}
    out = np.zeros((1, 3), dtype=np.float32)
    EmbeddingCache("m" * 16, 3, directory=tmp_path).fill(["k1"], out)
    np.testing.assert_array_equal(out, 1.0)


def test_model_archive_and_catalog_use_the_umask(tmp_path, umask, monkeypatch):
    member = tmp_path / "w.bin"
    member.write_bytes(b"x")
    write_archive(tmp_path / "m.skt", {"format": "test"}, {"w.bin": member})
    assert mode(tmp_path / "m.skt") == 0o666 & ~umask
    monkeypatch.setenv("SKTRANSFER_CACHE_DIR", str(tmp_path / "cache"))
    catalog = {"versions": {"timm": "0", "torchvision": "0"}}
    _catalog._store_catalog(catalog)
    (stored,) = (tmp_path / "cache").rglob("catalog-*.json")
    assert mode(stored) == 0o666 & ~umask

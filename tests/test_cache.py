"""The persistent cache: killed runs resume, bad entries are recomputed,
processes share a directory safely, the memory store stays bounded."""

import os
import pickle
import resource
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from sktransfer.backbones import bundled_text_path
from sktransfer.cache import (
    EmbeddingCache,
    clear_memory_cache,
    decode_entry,
    encode_entry,
)
from sktransfer.exceptions import CacheCorruptionWarning, CacheWriteWarning

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_IMAGES = 64
# Shared by the test process and its children: the same images, model, batches.
SETUP = textwrap.dedent(f"""
    import numpy as np
    from sktransfer import PretrainedImageFeatures

    X = list(np.random.default_rng(0).integers(
        0, 256, ({N_IMAGES}, 24, 24, 3), dtype=np.uint8))

    def tiny(cache):
        return PretrainedImageFeatures("mobilenet_v3_small", weights=None,
                                       batch_size=4, device="cpu", cache=cache)
""")
_SETUP = {}
exec(SETUP, _SETUP)
X, tiny = _SETUP["X"], _SETUP["tiny"]

CHILD = SETUP + textwrap.dedent("""
    import sys, time, warnings
    import torch
    from sktransfer.exceptions import CacheCorruptionWarning

    torch.set_num_threads(1)
    warnings.simplefilter("error", CacheCorruptionWarning)
    embed_batch = PretrainedImageFeatures._embed_batch
    calls = []

    def stall(self, batch):  # after 3 batches, wait for the parent's SIGKILL
        calls.append(len(batch))
        if len(calls) > 3:
            time.sleep(float(sys.argv[2]))
        return embed_batch(self, batch)

    PretrainedImageFeatures._embed_batch = stall
    X = X[:int(sys.argv[3])]
    features = tiny(sys.argv[1]).fit(X).transform(X)
    if len(sys.argv) > 4:
        np.save(sys.argv[4], features)
""")


def _child(*args):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    return subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)],
                            env=env, stderr=subprocess.PIPE)


def _entries(directory):
    return sorted(Path(directory).rglob("*.emb"))


@pytest.fixture(scope="module")
def reference():
    """Uncached features of X (and the fitted estimator's model key)."""
    return tiny(False).fit(X).transform(X)


def _all_valid(directory, model):
    for path in _entries(directory):
        key = path.stem
        vector = decode_entry(model.model_key_, key, path.read_bytes(),
                              model.n_features_out_)
        assert not isinstance(vector, str), (path, vector)
    assert not list(Path(directory).rglob("*.part"))  # no temporary files left


def _kill_after_entries(child, directory, n, seconds):
    """SIGKILL ``child`` once ``n`` entries are on disk (while it embeds more)."""
    deadline = time.monotonic() + seconds
    while len(_entries(directory)) < n:
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, f"the child stored nothing in {seconds} s"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL


def test_killed_run_resumes_where_it_stopped(tmp_path, reference, embedded_images):
    child = _child(tmp_path, 600, N_IMAGES)
    _kill_after_entries(child, tmp_path, 12, 120)  # 3 batches of 4, in the 4th
    stored = len(_entries(tmp_path))
    assert stored == 12
    # Fanned out over subfolders, and described by a manifest.
    assert len({path.parent for path in _entries(tmp_path)}) > 1
    assert (next(tmp_path.iterdir()) / "model.json").is_file()

    clear_memory_cache()  # a new run
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        model = tiny(tmp_path).fit(X)
        resumed = model.transform(X)
    assert embedded_images["images"] == N_IMAGES - stored  # only the missing ones
    np.testing.assert_allclose(resumed, reference, rtol=1e-5, atol=1e-6)
    assert len(_entries(tmp_path)) == N_IMAGES
    _all_valid(tmp_path, model)


def _corrupt(kind, path, model):
    data = path.read_bytes()
    key, n = path.stem, model.n_features_out_
    if kind == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bit flipped":
        flipped = bytearray(data)
        flipped[-5] ^= 0x10
        path.write_bytes(bytes(flipped))
    elif kind == "wrong shape":  # a valid entry with one value less
        path.write_bytes(encode_entry(model.model_key_, key,
                                      np.ones(n - 1, np.float32)))
    elif kind == "wrong dtype":  # same size as float32
        path.write_bytes(encode_entry(model.model_key_, key, np.ones(n, np.int32)))
    elif kind == "not finite":
        path.write_bytes(encode_entry(model.model_key_, key,
                                      np.full(n, np.nan, np.float32)))
    elif kind == "another sample's entry":
        path.write_bytes(encode_entry(model.model_key_, "0" * 32,
                                      np.ones(n, np.float32)))
    elif kind == "pickled object array":
        with open(path, "wb") as handle:
            np.save(handle, np.array([{"x": 1}] * n, dtype=object),
                    allow_pickle=True)
    elif kind == "pickle":
        path.write_bytes(pickle.dumps(np.ones(n, np.float32)))


@pytest.mark.parametrize("kind", [
    "truncated", "empty", "bit flipped", "wrong shape", "wrong dtype",
    "not finite", "another sample's entry", "pickled object array", "pickle"])
def test_an_invalid_entry_is_recomputed_with_a_warning(kind, tmp_path, reference,
                                                       embedded_images):
    model = tiny(tmp_path).fit(X[:4])
    model.transform(X[:4])
    path = _entries(tmp_path)[0]
    _corrupt(kind, path, model)
    clear_memory_cache()
    embedded_images["images"] = 0
    with pytest.warns(CacheCorruptionWarning, match=path.name):
        again = model.transform(X[:4])
    np.testing.assert_allclose(again, reference[:4], rtol=1e-5, atol=1e-6)
    assert embedded_images["images"] == 1  # only the bad entry
    _all_valid(tmp_path, model)  # and it was rewritten
    clear_memory_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        np.testing.assert_array_equal(model.transform(X[:4]), again)
    assert embedded_images["images"] == 1


def test_processes_writing_one_directory_at_once(tmp_path, reference):
    n = 16
    children = [_child(tmp_path / "cache", 0, n, tmp_path / f"{i}.npy")
                for i in range(2)]
    for child in children:
        assert child.wait(timeout=300) == 0, child.stderr.read().decode()
    first, second = (np.load(tmp_path / f"{i}.npy") for i in range(2))
    np.testing.assert_allclose(first, second, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(first, reference[:n], rtol=1e-5, atol=1e-6)
    assert len(_entries(tmp_path / "cache")) == n
    _all_valid(tmp_path / "cache", tiny(tmp_path / "cache").fit(X[:1]))


def test_an_unwritable_directory_warns_and_still_embeds(tmp_path, reference):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.warns(CacheWriteWarning, match="cannot write"):
        features = tiny(not_a_directory).fit(X[:4]).transform(X[:4])
    np.testing.assert_allclose(features, reference[:4], rtol=1e-5, atol=1e-6)


def test_a_full_disk_leaves_no_partial_entry(tmp_path, reference):
    model = tiny(tmp_path).fit(X[:4])
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Files may grow to 1000 bytes: the manifest fits, an entry does not.
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, limits[1]))
    try:
        with pytest.warns(CacheWriteWarning, match="File too large"):
            features = model.transform(X[:4])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, handler)
    np.testing.assert_allclose(features, reference[:4], rtol=1e-5, atol=1e-6)
    assert not _entries(tmp_path)
    assert not list(tmp_path.rglob("*.part"))


def test_memory_store_is_bounded_and_evicts_the_oldest(monkeypatch):
    monkeypatch.setenv("SKTRANSFER_CACHE_MB", str(2.5 * 1024 / 2**20))
    cache = EmbeddingCache("model", 256)  # 1 KiB per vector: room for two
    cache.store(["a", "b"], np.ones((2, 256), np.float32))
    out = np.zeros((3, 256), np.float32)
    assert cache.fill(["a", "b", "c"], out) == ([2], [])
    cache.store(["c"], np.full((1, 256), 2, np.float32))  # evicts "a"
    assert cache.fill(["a", "b", "c", "c"], out) == ([0], [(3, 2)])
    np.testing.assert_array_equal(out[1:], [[1] * 256, [2] * 256])
    monkeypatch.setenv("SKTRANSFER_CACHE_MB", "0")
    clear_memory_cache()
    cache.store(["a"], np.ones((1, 256), np.float32))
    assert cache.fill(["a"], out) == ([0], [])


def test_a_non_finite_embedding_is_returned_but_not_persisted(tmp_path):
    cache = EmbeddingCache("model", 3, tmp_path)
    cache.store(["nan", "ok"], np.array([[np.nan, 0, 1], [0, 1, 2]], np.float32))
    assert [path.stem for path in _entries(tmp_path)] == ["ok"]
    clear_memory_cache()
    out = np.zeros((2, 3), np.float32)
    assert EmbeddingCache("model", 3, tmp_path).fill(["ok", "nan"], out) == ([1], [])
    np.testing.assert_array_equal(out[0], [0, 1, 2])


def test_a_foreign_manifest_is_reported_and_rewritten(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text('{"n_features": 7}')
    with pytest.warns(CacheCorruptionWarning, match="model.json"):
        EmbeddingCache("model", 3, tmp_path).store(["a"], np.ones((1, 3)))
    manifest = (tmp_path / "model" / "model.json").read_text()
    assert '"n_features": 3' in manifest and '"model_key": "model"' in manifest
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        EmbeddingCache("model", 3, tmp_path).store(["b"], np.ones((1, 3)))


TEXT_CHILD = textwrap.dedent("""
    import sys, time
    import torch
    from sktransfer import PretrainedTextEmbeddings

    torch.set_num_threads(1)
    texts = [f"text number {i} " + "word " * (i % 7) for i in range(64)]
    run = PretrainedTextEmbeddings._run
    calls = []

    def stall(self, module, batch):  # after 3 batches, wait for the SIGKILL
        calls.append(len(batch["input_ids"]))  # a tokenized batch
        if len(calls) > 3:
            time.sleep(600)
        return run(self, module, batch)

    PretrainedTextEmbeddings._run = stall
    PretrainedTextEmbeddings(batch_size=4, device="cpu",
                             cache=sys.argv[1]).fit(texts).transform(texts)
""")


@pytest.mark.slow
@pytest.mark.skipif(bundled_text_path() is None, reason="bundled MiniLM absent")
def test_killed_text_run_keeps_each_finished_batch(tmp_path, monkeypatch):
    """Text sorts texts by length within windows of batches; each batch must
    still reach the disk as soon as it is computed, not once per window."""
    from sktransfer import PretrainedTextEmbeddings

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", TEXT_CHILD, str(tmp_path)],
                             env=env, stderr=subprocess.PIPE)
    _kill_after_entries(child, tmp_path, 12, 180)  # 3 batches of 4, in the 4th
    assert len(_entries(tmp_path)) == 12  # a whole window is 32 batches

    texts = [f"text number {i} " + "word " * (i % 7) for i in range(64)]
    seen = []
    run = PretrainedTextEmbeddings._run
    monkeypatch.setattr(PretrainedTextEmbeddings, "_run", lambda self, m, batch:
                        seen.extend(batch["input_ids"]) or run(self, m, batch))
    clear_memory_cache()  # a new run
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        resumed = PretrainedTextEmbeddings(batch_size=4, device="cpu",
                                           cache=tmp_path).fit(texts).transform(texts)
    assert len(seen) == 64 - 12  # only the missing ones
    uncached = PretrainedTextEmbeddings(batch_size=4, device="cpu",
                                        cache=False).fit(texts).transform(texts)
    np.testing.assert_allclose(resumed, uncached, rtol=1e-5, atol=1e-6)
    assert len(_entries(tmp_path)) == 64

"""Scale-out on Dask: the embed layer, the ``embed`` command, grid search.

Everything runs on one real ``LocalCluster`` of two worker processes (one
thread each), shared by the module.
"""

import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from sktransfer import PretrainedImageFeatures, PretrainedTextEmbeddings  # noqa: E402
from sktransfer.cli import main  # noqa: E402
from sktransfer.dask import embed  # noqa: E402
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches  # noqa: E402
from sktransfer.exceptions import InvalidInputError  # noqa: E402

IMAGE_MODEL = "efficientnet_lite0"  # bundled: same weights in every process
EMBEDDER = "sktransfer._embedding.embedder"  # the models a process holds


DASK_WORKERS = 2  # the conftest fixture ``dask_client``'s cluster size


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """18 real photo patches (3 classes) as PNGs in nested folders."""
    X, y = load_photo_patches(6, 48, "train", classes=("brick", "grass", "coffee"))
    root = tmp_path_factory.mktemp("photos")
    rows = []
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (root / label).mkdir(exist_ok=True)
        rows.append((str(root / label / f"{i:02d}.png"), label))
        Image.fromarray(image).save(rows[-1][0])
    rows.sort()  # the order of the embed command's output
    return root, [path for path, _ in rows], np.array([label for _, label in rows])


@pytest.fixture(scope="module")
def image_reference(photos):
    _, paths, _ = photos
    features = PretrainedImageFeatures(IMAGE_MODEL, cache=False).fit(paths)
    return features.transform(paths), features.get_feature_names_out()


@pytest.fixture(scope="module")
def texts():
    texts, labels = load_chatterbot_topics(["ai", "emotion", "coding"])
    frame = pd.DataFrame({"text": texts, "topic": labels})
    frame = frame.groupby("topic").head(8).reset_index(drop=True)
    return frame["text"].tolist(), frame["topic"].to_numpy()


def run_cli(*args, capsys=None):
    code = main(["embed", *map(str, args), "--no-progress"])
    return code, (capsys.readouterr() if capsys else None)


# --- the Python API ------------------------------------------------------------

def test_embed_equals_in_process_transform(client, texts):
    texts, _ = texts
    frame = dd.from_pandas(pd.DataFrame({"text": texts, "n": range(len(texts))}),
                           npartitions=3)
    lazy = embed(frame, PretrainedTextEmbeddings(cache=False), column="text")
    assert lazy.npartitions == 3
    names = list(lazy.columns[2:])
    assert names[:2] == ["pretrainedtextembeddings0", "pretrainedtextembeddings1"]
    assert (lazy.dtypes[names] == np.float32).all()  # meta, before computing
    result = lazy.compute()
    reference = PretrainedTextEmbeddings().fit(texts).transform(texts)
    assert result["n"].tolist() == list(range(len(texts)))
    np.testing.assert_allclose(result[names].to_numpy(), reference, atol=1e-5)
    import dask.bag as db

    from_bag = embed(db.from_sequence(texts, npartitions=2),
                     PretrainedTextEmbeddings(cache=False)).compute()
    assert from_bag["item"].tolist() == texts
    np.testing.assert_allclose(from_bag[names].to_numpy(), reference, atol=1e-5)


def _install_load_counter():
    import sktransfer._embedding.embedder as embedder
    import sktransfer.image as image

    embedder._SHARED.clear()
    original = getattr(image, "_uncounted", image.resolve_image_backbone)
    calls = []

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    image._uncounted, image._calls = original, calls
    image.resolve_image_backbone = counting


def _loads_per_worker(client) -> list[int]:
    """How many times each worker built the network since the counter went in."""
    loads = client.run(lambda: len(__import__("sktransfer.image").image._calls))
    client.run(lambda: setattr(__import__("sktransfer.image").image,
                               "resolve_image_backbone",
                               __import__("sktransfer.image").image._uncounted))
    return list(loads.values())


def test_model_is_loaded_once_per_worker(client, photos, image_reference):
    client.run(_install_load_counter)
    _, paths, _ = photos
    frame = dd.from_pandas(pd.DataFrame({"path": paths}), npartitions=6)
    result = embed(frame, PretrainedImageFeatures(IMAGE_MODEL, cache=False)
                   ).compute()
    loads = _loads_per_worker(client)
    assert sum(loads) >= 1
    assert max(loads) == 1  # 6 partitions, at most one load per worker
    np.testing.assert_allclose(result.iloc[:, 1:].to_numpy(), image_reference[0],
                               atol=1e-4)


def test_embed_items_returns_arrays_and_names_skipped_inputs(client, photos,
                                                             image_reference,
                                                             tmp_path):
    from sktransfer.dask import embed_items

    _, paths, _ = photos
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    fitted = PretrainedImageFeatures(IMAGE_MODEL, cache=False).fit(paths[:1])
    features, errors = client.submit(embed_items, paths[:3], fitted).result()
    assert errors is None and features.dtype == np.float32
    np.testing.assert_allclose(features, image_reference[0][:3], atol=1e-4)
    items = [paths[0], str(bad), paths[1]]
    features, errors = client.submit(embed_items, items, fitted, "skip").result()
    assert errors[0] is None and errors[2] is None and str(bad) in errors[1]
    assert np.isnan(features[1]).all()
    np.testing.assert_allclose(features[[0, 2]], image_reference[0][:2], atol=1e-4)
    with pytest.raises(Exception, match="bad.jpg"):
        client.submit(embed_items, items, fitted).result()
    empty, errors = embed_items([], fitted, "skip")
    assert empty.shape == (0, fitted.n_features_out_) and errors == []
    with pytest.raises(InvalidInputError, match="on_error must be 'raise' or 'skip'"):
        embed_items(paths[:1], fitted, "ignore")


def test_fit_on_workers_loads_the_model_on_every_worker_at_once(client, photos):
    from sktransfer.dask import fit_on_workers

    client.run(lambda: __import__(EMBEDDER, fromlist=["_"])._SHARED.clear())
    _, paths, _ = photos
    unfitted = PretrainedImageFeatures(IMAGE_MODEL, cache=False)
    fitted = fit_on_workers(client, unfitted, paths[:1])
    assert fitted.n_features_out_ == 1280 and not hasattr(unfitted, "n_features_out_")
    loaded = client.run(lambda: len(__import__(EMBEDDER, fromlist=["_"])._SHARED))
    assert len(loaded) == 2 and min(loaded.values()) >= 1  # each worker holds it


def test_fsspec_urls_memory_and_file(client, photos, image_reference):
    fsspec = pytest.importorskip("fsspec")
    _, paths, _ = photos
    urls = ["file://" + path for path in paths[:4]]
    result = embed(dd.from_pandas(pd.DataFrame({"path": urls}), npartitions=2),
                   PretrainedImageFeatures(IMAGE_MODEL, cache=False)).compute()
    np.testing.assert_allclose(result.iloc[:, 1:].to_numpy(),
                               image_reference[0][:4], atol=1e-4)
    # memory:// lives in this process only: compute here, without the cluster.
    memory = fsspec.filesystem("memory")
    for i, path in enumerate(paths[:2]):
        memory.pipe(f"/photos/{i}.png", open(path, "rb").read())
    urls = ["memory://photos/0.png", "memory://photos/1.png"]
    lazy = embed(dd.from_pandas(pd.DataFrame({"path": urls}), npartitions=1),
                 PretrainedImageFeatures(IMAGE_MODEL, cache=False).fit(paths[:1]))
    result = lazy.compute(scheduler="sync")
    np.testing.assert_allclose(result.iloc[:, 1:].to_numpy(),
                               image_reference[0][:2], atol=1e-4)


# --- the command ---------------------------------------------------------------

def test_cli_embeds_an_image_folder(client, photos, image_reference, tmp_path,
                                    capsys):
    root, paths, _ = photos
    out = tmp_path / "images.parquet"
    code, io = run_cli(root, "--out", out, "--scheduler", client.scheduler.address,
                       "--partition-size", 5, capsys=capsys)
    assert code == 0, io.err
    assert "18 of 18 inputs" in io.out and "4 partitions" in io.out
    result = pd.read_parquet(out)
    features, names = image_reference
    assert list(result.columns) == ["path", *names]
    assert result["path"].tolist() == paths
    assert (result.dtypes[list(names)] == np.float32).all()
    np.testing.assert_allclose(result[list(names)].to_numpy(), features, atol=1e-4)

    # --out holding another model's embeddings: refused, nothing touched.
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    code, io = run_cli(root, "--out", out, "--scheduler", client.scheduler.address,
                       "--partition-size", 5, "--weights", "None", capsys=capsys)
    assert code == 2
    assert "refusing to mix" in io.err and "weights=None" in io.err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_cli_loads_the_model_once_per_worker(client, photos, tmp_path, capsys):
    root, paths, _ = photos
    client.run(_install_load_counter)
    code, io = run_cli(root, "--out", tmp_path / "o", "--scheduler",
                       client.scheduler.address, "--partition-size", 2,
                       capsys=capsys)
    assert code == 0, io.err
    assert f"{len(paths)} of {len(paths)} inputs" in io.out
    assert _loads_per_worker(client) == [1, 1]  # fit on each; 9 partitions reuse it


def test_cli_embeds_a_csv_of_texts(client, texts, tmp_path, capsys):
    texts, _ = texts
    csv = tmp_path / "tickets.csv"
    pd.DataFrame({"id": range(len(texts)), "body": texts}).to_csv(csv, index=False)
    out = tmp_path / "texts.parquet"
    code, io = run_cli(csv, "--column", "body", "--out", out, "--scheduler",
                       client.scheduler.address, "--partition-size", 10,
                       capsys=capsys)
    assert code == 0, io.err
    result = pd.read_parquet(out)
    assert result["row"].tolist() == list(range(len(texts)))
    assert result["text"].tolist() == texts
    reference = PretrainedTextEmbeddings().fit(texts).transform(texts)
    np.testing.assert_allclose(result.iloc[:, 2:].to_numpy(), reference, atol=1e-5)


def test_cli_resumes_after_sigkill(client, photos, image_reference, tmp_path,
                                   capsys):
    root, paths, _ = photos
    out = tmp_path / "killed.parquet"
    # Killed: the command and the LocalCluster it started (its process group).
    command = [sys.executable, "-m", "sktransfer.cli", "embed", str(root), "--out",
               str(out), "--workers", "1", "--partition-size", "1",
               "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("part-*.parquet")) and process.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read()
    written = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert 1 <= len(written) < len(paths)

    # Resumed on another cluster: the output does not depend on the cluster.
    code, io = run_cli(root, "--out", out, "--scheduler", client.scheduler.address,
                       "--partition-size", 1, capsys=capsys)
    assert code == 0, io.err
    assert f"{len(written)} already done" in io.out
    for name, mtime in written.items():  # finished partitions were skipped
        assert (out / name).stat().st_mtime_ns == mtime
    result = pd.read_parquet(out)
    assert result["path"].tolist() == paths  # every row once, in order
    np.testing.assert_allclose(result.iloc[:, 1:].to_numpy(), image_reference[0],
                               atol=1e-4)
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# --- bad input -----------------------------------------------------------------

@pytest.fixture
def folder_with_a_bad_file(photos, tmp_path):
    root, paths, _ = photos
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in paths[:5]:
        (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
    bad = folder / "03b.png"
    bad.write_bytes(b"this is not a png")
    return folder, str(bad)


def test_an_unreadable_file_is_named(client, folder_with_a_bad_file, tmp_path,
                                     capsys):
    folder, bad = folder_with_a_bad_file
    code, io = run_cli(folder, "--out", tmp_path / "o", "--scheduler",
                       client.scheduler.address, "--partition-size", 3,
                       capsys=capsys)
    assert code == 2
    lines = io.err.strip().splitlines()
    assert len(lines) == 1 and bad in lines[0], io.err


def test_skip_bad_records_the_file(client, folder_with_a_bad_file, tmp_path,
                                   capsys):
    folder, bad = folder_with_a_bad_file
    out = tmp_path / "o"
    code, io = run_cli(folder, "--out", out, "--scheduler",
                       client.scheduler.address, "--partition-size", 3,
                       "--skip-bad", capsys=capsys)
    assert code == 0, io.err
    assert "5 of 6 inputs" in io.out and "1 skipped" in io.out
    skipped = pd.read_csv(out / "_skipped.csv")
    assert skipped["path"].tolist() == [bad]
    assert "cannot be read" in skipped["error"][0]
    result = pd.read_parquet(out)
    assert len(result) == 5 and bad not in result["path"].tolist()
    assert np.isfinite(result.iloc[:, 1:].to_numpy()).all()


def test_unreachable_scheduler_is_one_line(tmp_path, photos):
    result = subprocess.run(
        [sys.executable, "-m", "sktransfer.cli", "embed", str(photos[0]), "--out",
         str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9",
         "--connect-timeout", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "tcp://127.0.0.1:9" in lines[0], result.stderr
    assert not (tmp_path / "o").exists()


def test_a_foreign_out_folder_is_refused(photos, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code, io = run_cli(photos[0], "--out", out, "--partition-size", 50,
                       capsys=capsys)
    assert code == 2 and "not an 'sktransfer embed' output" in io.err
    assert (out / "notes.txt").read_text() == "keep me"


# --- grid search, pickles, shared cache ------------------------------------------

def test_grid_search_under_the_dask_backend_equals_n_jobs_1(client, texts):
    from joblib import parallel_config
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, cross_validate
    from sklearn.pipeline import make_pipeline

    X, y = texts
    pipe = make_pipeline(PretrainedTextEmbeddings(),
                         LogisticRegression(max_iter=1000))
    grid = {"logisticregression__C": [0.1, 10.0]}
    serial = GridSearchCV(pipe, grid, cv=3, n_jobs=1).fit(X, y)
    serial_cv = cross_validate(pipe, X, y, cv=3, n_jobs=1)
    with parallel_config(backend="dask"):
        spread = GridSearchCV(pipe, grid, cv=3, n_jobs=-1).fit(X, y)
        spread_cv = cross_validate(pipe, X, y, cv=3, n_jobs=-1)
    np.testing.assert_allclose(spread.cv_results_["mean_test_score"],
                               serial.cv_results_["mean_test_score"])
    assert spread.best_params_ == serial.best_params_
    np.testing.assert_allclose(spread_cv["test_score"], serial_cv["test_score"])


def test_pickles_carry_no_weights(photos):
    _, paths, _ = photos
    unfitted = PretrainedImageFeatures(IMAGE_MODEL)
    fitted = PretrainedImageFeatures(IMAGE_MODEL).fit(paths[:1])
    weights = sum(t.numel() * t.element_size()
                  for t in fitted.backbone_.module.state_dict().values())
    sizes = [len(pickle.dumps(unfitted)), len(pickle.dumps(fitted)),
             len(pickle.dumps(PretrainedTextEmbeddings().fit(["a"])))]
    print(f"pickle sizes {sizes} bytes; the image weights are {weights} bytes")
    assert weights > 10_000_000
    assert max(sizes) < 4_000


def test_a_shared_cache_embeds_each_sample_once(client, photos, tmp_path,
                                                monkeypatch):
    """Warm the shared cache with embed(), then grid-search from it."""
    from joblib import parallel_config
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    counter = str(tmp_path / "embedded.txt")

    def install_counter(counter=counter):
        from sktransfer.image import PretrainedImageFeatures as features

        original = features.__dict__.get("_uncounted", features._embed_batches)

        def counting(self, items, indices):
            with open(counter, "a") as handle:
                handle.write(f"{len(indices)}\n")
            return original(self, items, indices)

        features._uncounted, features._embed_batches = original, counting

    client.run(install_counter)
    monkeypatch.setattr(PretrainedImageFeatures, "_embed_batches",
                        PretrainedImageFeatures._embed_batches)
    monkeypatch.setattr(PretrainedImageFeatures, "_uncounted",
                        PretrainedImageFeatures._embed_batches, raising=False)
    install_counter()  # this process too (the final refit of the grid search)
    _, paths, y = photos
    cache = tmp_path / "cache"
    features = PretrainedImageFeatures(IMAGE_MODEL, cache=str(cache))
    embed(dd.from_pandas(pd.DataFrame({"path": paths}), npartitions=4),
          features).compute()
    pipe = make_pipeline(features, LogisticRegression(max_iter=1000))
    with parallel_config(backend="dask"):
        GridSearchCV(pipe, {"logisticregression__C": [0.1, 10.0]}, cv=3,
                     n_jobs=-1).fit(paths, y)
    client.run(lambda: setattr(
        __import__("sktransfer.image").image.PretrainedImageFeatures, "_embed_batches",
        __import__("sktransfer.image").image.PretrainedImageFeatures._uncounted))
    counts = [int(line) for line in open(counter).read().split()]
    assert sum(counts) == len(paths)
    entries = [p for p in cache.rglob("*") if p.is_file() and p.suffix != ".json"]
    assert len(entries) == len(paths)  # one cache entry per sample


def test_own_local_cluster_workers_run_without_the_stack_sampler(monkeypatch):
    # --workers N starts a LocalCluster whose workers get LOCAL_CLUSTER_CONFIG
    # (measured ~5% faster); the caller's own configuration is left as it was.
    import dask

    # A nanny sets its pre-spawn environment in its own process too, so the
    # module's cluster left MALLOC_TRIM_THRESHOLD_ here; the command starts
    # from a fresh process, without it (a user's own setting is inherited).
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)

    from sktransfer.cli.embed import LOCAL_CLUSTER_CONFIG, connect

    before = dask.config.get("distributed.worker.profile.enabled")
    with connect(None, workers=1) as client:
        seen = client.run(lambda: {key: __import__("dask").config.get(key)
                                   for key in LOCAL_CLUSTER_CONFIG})
        environ = client.run(lambda: dict(__import__("os").environ))
    assert list(seen.values()) == [LOCAL_CLUSTER_CONFIG]
    (environ,) = environ.values()
    assert environ["OMP_NUM_THREADS"] == "1"  # one core per worker, as Dask does
    assert "MALLOC_TRIM_THRESHOLD_" not in environ
    assert dask.config.get("distributed.worker.profile.enabled") == before

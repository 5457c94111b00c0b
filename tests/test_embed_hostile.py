"""``sktransfer embed`` with hostile or careless inputs (issue 19): decompression
bombs, a missing first input with --skip-bad, literal path lists, FIFOs, inputs
replaced in place and damaged parts on resume, the default partition size.

One LocalCluster of one worker process, and a small torchvision network with
random weights, keep the module fast.
"""

from __future__ import annotations

import io
import os
import signal
import struct
import zlib
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from PIL import Image

distributed = pytest.importorskip("distributed")
pytest.importorskip("pyarrow")

from sktransfer import PretrainedImageFeatures  # noqa: E402
from sktransfer.cli import main  # noqa: E402
from sktransfer.cli.embed import default_partition_size  # noqa: E402
from sktransfer.datasets import load_photo_patches  # noqa: E402
from sktransfer.exceptions import InvalidInputError  # noqa: E402

MODEL = ("--model", "shufflenet_v2_x0_5", "--weights", "None")


DASK_WORKERS = 1  # the conftest fixture ``dask_client``'s cluster size


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


@pytest.fixture
def images(tmp_path):
    X, _ = load_photo_patches(4, 40, "train", classes=("brick", "grass"))
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i, image in enumerate(X):
        paths.append(folder / f"{i:02d}.png")
        Image.fromarray(image).save(paths[-1])
    return folder, paths


def embed(client, data, out, *args, capsys):
    code = main(["embed", str(data), "--out", str(out), *MODEL, "--scheduler",
                 client.scheduler.address, "--no-progress", *map(str, args)])
    return code, capsys.readouterr()


def bomb_png(path):
    """A tiny PNG whose header says 50000 x 50000 pixels."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", 50000, 50000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.write_bytes(bytes(data))
    return path


@contextmanager
def no_hang(seconds=120):
    """Fail instead of hanging forever (a FIFO opened for reading blocks)."""
    def stop(*_):
        raise TimeoutError("hung")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_decompression_bomb_is_a_bad_input(client, images, tmp_path, capsys):
    folder, paths = images
    bomb = bomb_png(folder / "99-bomb.png")
    features = PretrainedImageFeatures(MODEL[1], weights=None, cache=False)
    features.fit(paths[:1])
    with pytest.raises(InvalidInputError, match=r"99-bomb.png.*too large"):
        features.transform([*paths[:2], str(bomb)])
    code, out = embed(client, folder, tmp_path / "a", capsys=capsys)
    assert code == 2 and "99-bomb.png" in out.err and "Traceback" not in out.err
    code, out = embed(client, folder, tmp_path / "b", "--skip-bad", capsys=capsys)
    assert code == 0, out.err
    skipped = pd.read_csv(tmp_path / "b" / "_skipped.csv")
    assert skipped["path"].tolist() == [str(bomb)]
    assert len(pd.read_parquet(tmp_path / "b")) == len(paths)


def test_path_lists_are_literal_and_skip_bad_fits_on_the_first_good_one(
        client, images, tmp_path, capsys):
    folder, paths = images
    odd = [folder / " spaced name .png", folder / "#not a comment.png"]
    for path, source in zip(odd, paths, strict=False):
        path.write_bytes(source.read_bytes())
    listing = tmp_path / "list.txt"
    missing = str(folder / "missing.png")
    listing.write_text("\n".join([missing, *map(str, odd), str(paths[2])]) + "\n")
    code, out = embed(client, listing, tmp_path / "o", "--skip-bad", capsys=capsys)
    assert code == 0, out.err
    result = pd.read_parquet(tmp_path / "o")
    assert result["path"].tolist() == [*map(str, odd), str(paths[2])]
    assert pd.read_csv(tmp_path / "o" / "_skipped.csv")["path"].tolist() == [missing]


def test_fifos_are_never_opened(client, images, tmp_path, capsys):
    folder, paths = images
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{paths[0]}\n{fifo}\n")
    with no_hang():
        code, out = embed(client, listing, tmp_path / "a", capsys=capsys)
        assert code == 2 and "pipe.png" in out.err and "regular file" in out.err
        code, out = embed(client, listing, tmp_path / "b", "--skip-bad",
                          capsys=capsys)
        assert code == 0 and "1 skipped" in out.out, out.err
        code, out = embed(client, fifo, tmp_path / "c", capsys=capsys)  # as DATA
        assert code == 2 and "not a regular file" in out.err


def test_a_fifo_in_the_cache_is_skipped(images, tmp_path):
    from sktransfer.exceptions import CacheCorruptionWarning

    _, paths = images
    cache = tmp_path / "cache"
    features = PretrainedImageFeatures(MODEL[1], weights=None, cache=str(cache))
    expected = features.fit(paths).transform(paths)
    entry = next(cache.rglob("*.emb"))
    entry.unlink()
    os.mkfifo(entry)
    from sktransfer.cache import clear_memory_cache

    clear_memory_cache()
    with no_hang(), pytest.warns(CacheCorruptionWarning, match="regular file"):
        again = features.transform(paths)
    np.testing.assert_array_equal(again, expected)


def test_resume_embeds_replaced_inputs_and_damaged_parts_again(
        client, images, tmp_path, capsys):
    import pyarrow.parquet as pq

    folder, paths = images
    out = tmp_path / "o"
    code, first = embed(client, folder, out, "--partition-size", 2, capsys=capsys)
    assert code == 0 and "4 partitions" in first.out, first.err
    parts = sorted(out.glob("part-*.parquet"))
    # an input replaced in place under the same name (partition 1)
    paths[2].write_bytes(paths[7].read_bytes())
    # a value damaged inside an otherwise valid part (partition 3)
    table = pq.read_table(parts[3])
    frame = table.to_pandas()
    frame.iloc[0, 5] += 1.0
    damaged = table.from_pandas(frame, schema=table.schema, preserve_index=False)
    pq.write_table(damaged.replace_schema_metadata(table.schema.metadata), parts[3])
    code, second = embed(client, folder, out, capsys=capsys)  # size from the folder
    assert code == 0, second.err
    assert "2 already done" in second.out
    result = pd.read_parquet(out)
    reference = PretrainedImageFeatures(MODEL[1], weights=None, cache=False)
    expected = reference.fit(paths).transform([str(p) for p in paths])
    np.testing.assert_allclose(result.iloc[:, 1:].to_numpy(), expected, atol=1e-4)


def test_the_default_partition_size_keeps_every_worker_busy():
    assert default_partition_size(120, 2) == 16  # 120 / 8 = 15, at least 16
    assert default_partition_size(1000, 2) == 125
    assert default_partition_size(100_000, 2) == 1024
    assert default_partition_size(5, 1) == 16


def test_a_small_input_on_several_local_workers_gets_a_note(capsys):
    from argparse import Namespace

    from sktransfer.cli.embed import LOCAL_CLUSTER_CROSSOVER, _note_small_input

    _note_small_input(50, Namespace(scheduler=None, workers=2))
    assert f"below about {LOCAL_CLUSTER_CROSSOVER}" in capsys.readouterr().err
    for n, workers, scheduler in ((50, 1, None), (10_000, 2, None),
                                  (50, 1, "tcp://x:8786")):
        _note_small_input(n, Namespace(scheduler=scheduler, workers=workers))
        assert capsys.readouterr().err == ""


def test_one_worker_embeds_in_process_without_a_cluster(images, tmp_path, capsys,
                                                        monkeypatch):
    """``--workers 1`` (the default) starts no LocalCluster: below about
    LOCAL_CLUSTER_CROSSOVER inputs a cluster's start-up costs more than it saves
    (benchmarks/bench_embed_crossover.py); with --skip-bad as well."""
    import sktransfer.cli.embed as embed_command

    def no_cluster(*args, **kwargs):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(embed_command, "connect", no_cluster)
    folder, paths = images
    bomb_png(folder / "99-bomb.png")
    code = main(["embed", str(folder), "--out", str(tmp_path / "o"), *MODEL,
                 "--no-progress", "--skip-bad", "--partition-size", "3"])
    assert code == 0, capsys.readouterr().err
    frame = pd.read_parquet(tmp_path / "o")
    features = PretrainedImageFeatures(MODEL[1], weights=None, cache=False)
    expected = features.fit(paths[:1]).transform(paths)
    names = list(features.get_feature_names_out())
    np.testing.assert_allclose(frame[names].to_numpy(), expected, rtol=1e-4,
                               atol=1e-5)
    assert pd.read_csv(tmp_path / "o" / "_skipped.csv")["path"].str.endswith(
        "99-bomb.png").all()

"""Decode once per fit: the fine-tuners' pixel store (``finetune._pixels``)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
import torchvision.transforms.v2 as T
from PIL import Image

import sktransfer.data
import sktransfer.finetune._image as image_modality
import sktransfer.finetune._pixels as pixels
from sktransfer.backbones import make_eval_transform
from sktransfer.data import decode_size
from sktransfer.datasets import load_photo_patches
from sktransfer.exceptions import InvalidInputError, ParameterError
from sktransfer.finetune import FineTunedClassifier
from sktransfer.finetune._pixels import DecodedPixels, pixel_memory_limit, shrink
from tests.test_finetune import TinyNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    """12 JPEG files (96 x 72 px, upscaled photo patches) and their labels."""
    folder = tmp_path_factory.mktemp("jpegs")
    X, y = load_photo_patches(4, 48, random_state=0,
                              classes=("brick", "coffee", "chelsea"))
    paths = []
    for i, image in enumerate(X):
        path = folder / f"img_{i}.jpg"
        Image.fromarray(image).resize((96, 72)).save(path, quality=95)
        paths.append(str(path))
    return paths, y


@pytest.fixture
def decodes(monkeypatch):
    """Records every ``load_image`` call: the type of item it decoded."""
    seen: list[str] = []
    original = sktransfer.data.load_image

    def counting(item, index, min_size=None):
        seen.append("path" if isinstance(item, (str, os.PathLike)) else "pil")
        return original(item, index, min_size)

    monkeypatch.setattr(sktransfer.data, "load_image", counting)
    monkeypatch.setattr(pixels, "load_image", counting)
    return seen


def tiny(**params):
    defaults = dict(model=TinyNet(), max_epochs=3, image_size=32, batch_size=4,
                    lr=1e-2, random_state=0, freeze_depth=1, cache=False)
    return FineTunedClassifier(**{**defaults, **params})


@pytest.mark.parametrize("augment", ["default", None])
def test_every_photo_is_decoded_once_per_fit(jpegs, decodes, augment):
    paths, y = jpegs
    clf = tiny(augment=augment, early_stopping=True, validation_fraction=0.25)
    clf.fit(paths, y)
    assert len(clf.history_) == 3
    # one decode of each file, then the epochs read decoded pixels only
    assert decodes.count("path") == len(paths)
    assert decodes.count("pil") == 3 * len(paths)  # train + validation rows
    decodes.clear()
    clf.predict(paths)  # prediction decodes (no store outside a fit)
    assert decodes.count("path") == len(paths)


def test_callable_augment_gets_the_full_image_every_epoch(jpegs, decodes):
    paths, y = jpegs
    sizes = []

    def record(image):
        sizes.append(image.size)
        return image

    tiny(augment=record, max_epochs=2).fit(paths, y)
    assert set(sizes) == {(96, 72)}
    assert decodes.count("path") == 2 * len(paths)


def test_head_only_fit_decodes_once_without_a_store(jpegs, decodes, monkeypatch):
    made = []
    monkeypatch.setattr(pixels.DecodedPixels, "__init__",
                        lambda *a, **k: made.append(1))
    paths, y = jpegs
    tiny(freeze_depth="all").fit(paths, y)
    assert decodes.count("path") == len(paths) and not made


def test_spilled_store_gives_the_same_model(jpegs, monkeypatch):
    paths, y = jpegs
    # no augmentation: worker processes draw other random crops
    in_memory = tiny(augment=None).fit(paths, y).predict_proba(paths)
    monkeypatch.setenv("SKTRANSFER_PIXEL_CACHE_MB", "0")
    # DataLoader worker processes reopen the spill file
    on_disk = tiny(augment=None, num_workers=1).fit(paths, y).predict_proba(paths)
    np.testing.assert_allclose(on_disk, in_memory, atol=1e-6)


def test_store_keeps_pixels_and_removes_its_file(jpegs):
    paths, _ = jpegs
    memory = DecodedPixels(paths, 40, memory_limit=10**9)
    disk = DecodedPixels(paths, 40, threads=2, memory_limit=3 * 40 * 53 * 3)
    assert memory.nbytes_on_disk == 0
    assert disk.nbytes_in_memory > 0 and disk.nbytes_on_disk > 0
    assert len(disk) == len(paths)
    for i in range(len(paths)):
        a, b = np.asarray(memory[i]), np.asarray(disk[i])
        assert a.dtype == np.uint8 and a.shape == (40, 53, 3)
        np.testing.assert_array_equal(a, b)
    spill = disk._path
    assert os.path.isfile(spill)
    disk.close()
    assert not os.path.exists(os.path.dirname(spill))


def test_shrink_keeps_aspect_and_never_enlarges():
    image = Image.new("RGB", (300, 200))
    assert shrink(image, 100).shape == (100, 150, 3)
    assert shrink(image.transpose(Image.Transpose.ROTATE_90), 100).shape == \
        (150, 100, 3)
    assert shrink(image, 250).shape == (200, 300, 3)


def test_stored_pixels_are_what_the_eval_transform_resizes_to(jpegs):
    paths, _ = jpegs
    config = TinyNet_config()
    side = decode_size(make_eval_transform(config, 32))
    store = DecodedPixels(paths[:2], side,
                          interpolation=config.get("interpolation", "bilinear"))
    first = T.Compose(make_eval_transform(config, 32).transforms[:2])
    for i in range(2):
        from_file = first(sktransfer.data.load_image(paths[i], i, side))
        np.testing.assert_array_equal(
            np.asarray(first(store[i])), np.asarray(from_file))


def TinyNet_config():
    from sktransfer.backbones import resolve_image_backbone
    return resolve_image_backbone(TinyNet()).data_config


def test_bad_bound_names_the_variable(monkeypatch):
    monkeypatch.setenv("SKTRANSFER_PIXEL_CACHE_MB", "lots")
    with pytest.raises(ParameterError, match="SKTRANSFER_PIXEL_CACHE_MB"):
        pixel_memory_limit()


def test_bad_file_in_a_fit_names_its_index(jpegs, tmp_path):
    paths, y = jpegs
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InvalidInputError, match="image 3: file .*broken.jpg"):
        tiny().fit([*paths[:3], str(bad)], ["a", "b", "a", "b"])


# --- decoding overlaps the first epoch ----------------------------------------------


def pixel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sktransfer-pixels")]


@pytest.fixture
def two_decoders(monkeypatch):
    """Two background decoding threads in a fit (the tests' one-thread torch
    budget gives none), overlapping the training."""
    monkeypatch.setattr(image_modality, "decode_threads", lambda device: 2)
    monkeypatch.setattr(image_modality, "overlap_decoding", lambda device: True)


@pytest.fixture
def stores(monkeypatch):
    """Every pixel store a fit makes, with the order it was given and the
    rows in the order they were read."""
    made: list = []
    original = pixels.DecodedPixels.__init__
    original_read = pixels.DecodedPixels._pixels

    def init(self, *args, **kwargs):
        self.reads = []
        made.append(self)
        original(self, *args, **kwargs)

    def read(self, index):
        self.reads.append(index)
        return original_read(self, index)

    monkeypatch.setattr(pixels.DecodedPixels, "__init__", init)
    monkeypatch.setattr(pixels.DecodedPixels, "_pixels", read)
    return made


@pytest.mark.parametrize("head_epochs", [0, 1])
def test_rows_are_decoded_in_the_order_the_fit_first_reads_them(
        jpegs, stores, head_epochs):
    paths, y = jpegs
    tiny(max_epochs=1, head_epochs=head_epochs, early_stopping=True,
         validation_fraction=0.25).fit(paths, y)
    (store,) = stores
    first_reads = list(dict.fromkeys(store.reads))
    assert first_reads == store._order and sorted(first_reads) == list(range(12))
    if head_epochs:  # the probe reads the training rows in order first
        assert first_reads[:9] == sorted(first_reads[:9])
    else:  # the first epoch's shuffle
        assert first_reads[:9] != sorted(first_reads[:9])


def test_training_starts_while_later_photos_are_decoded(
        jpegs, stores, two_decoders, decodes, monkeypatch):
    paths, y = jpegs
    first_read = threading.Event()
    stored_then: list[int] = []
    original = pixels.load_image

    def slow_last(item, index, min_size=None):
        if index == stores[0]._order[-1]:  # the last row waits for training
            first_read.wait(timeout=30)
        return original(item, index, min_size)

    original_read = pixels.DecodedPixels.__getitem__

    def read(self, index):  # the training's reads (not the store's own)
        if not first_read.is_set():
            stored_then.append(self._stored)
            first_read.set()
        return original_read(self, index)

    monkeypatch.setattr(pixels, "load_image", slow_last)
    monkeypatch.setattr(pixels.DecodedPixels, "__getitem__", read)
    tiny(max_epochs=2).fit(paths, y)
    assert stored_then[0] < len(paths)  # the first batch did not wait for all
    assert decodes.count("path") == len(paths)  # still one decode per file
    assert not pixel_threads()


def first_read_sees(monkeypatch) -> list[int]:
    """The number of stored rows when training first reads a row."""
    seen: list[int] = []
    original_read = pixels.DecodedPixels.__getitem__

    def read(self, index):
        if not seen:
            seen.append(self._stored)
        return original_read(self, index)

    monkeypatch.setattr(pixels.DecodedPixels, "__getitem__", read)
    return seen


def test_with_every_core_busy_training_starts_after_all_photos_are_decoded(
        jpegs, decodes, monkeypatch):
    # torch's threads take every core: decoders beside them would stall them
    paths, y = jpegs
    monkeypatch.setattr(image_modality, "decode_threads", lambda device: 2)
    monkeypatch.setattr(image_modality, "overlap_decoding", lambda device: False)
    seen = first_read_sees(monkeypatch)
    tiny(max_epochs=2).fit(paths, y)
    assert seen == [len(paths)]
    assert decodes.count("path") == len(paths)
    assert not pixel_threads()


def test_background_decoding_gives_the_same_model(jpegs, monkeypatch):
    paths, y = jpegs
    monkeypatch.setattr(image_modality, "decode_threads", lambda device: 0)
    alone = tiny().fit(paths, y).predict_proba(paths)
    monkeypatch.setattr(image_modality, "decode_threads", lambda device: 2)
    monkeypatch.setattr(image_modality, "overlap_decoding", lambda device: True)
    monkeypatch.setenv("SKTRANSFER_PIXEL_CACHE_MB", "0")  # and spilled
    threaded = tiny().fit(paths, y).predict_proba(paths)
    np.testing.assert_array_equal(threaded, alone)
    assert not pixel_threads()


def test_background_store_matches_the_eager_one_read_in_any_order(jpegs):
    paths, _ = jpegs
    eager = DecodedPixels(paths, 40, memory_limit=10**9)
    # everything spilled, the file still growing while rows are read
    lazy = DecodedPixels(paths, 40, threads=2, memory_limit=0,
                         order=[11, 3, 7], background=True)
    assert lazy._order[:4] == [11, 3, 7, 0]
    for i in [5, 0, 11, 2, 9, 1, 10, 3, 4, 8, 6, 7]:
        np.testing.assert_array_equal(np.asarray(lazy[i]), np.asarray(eager[i]))
    assert lazy.nbytes_in_memory == 0 and lazy.nbytes_on_disk == eager.nbytes_in_memory
    spill = lazy._path
    lazy.close()
    assert not pixel_threads() and not os.path.exists(os.path.dirname(spill))


def test_closing_a_store_mid_decode_stops_its_threads(jpegs, monkeypatch):
    paths, _ = jpegs
    opened: list = []
    original = pixels.load_image

    def held(item, index, min_size=None):  # until the store is being closed
        for _ in range(3000):
            if opened and opened[0]._closed:
                break
            time.sleep(0.01)
        return original(item, index, min_size)

    monkeypatch.setattr(pixels, "load_image", held)
    store = DecodedPixels(paths, 40, threads=2, memory_limit=0, background=True)
    opened.append(store)
    assert len(pixel_threads()) == 2
    store.close()  # each thread ends its current row, then stops
    assert not pixel_threads()
    assert store._stored == 0 and store._path is None  # nothing written after
    with pytest.raises(RuntimeError, match="closed"):
        store.wait()  # never waits on rows no thread will finish


def test_a_failed_spill_is_raised_not_waited_on(jpegs, monkeypatch):
    paths, _ = jpegs

    def full(self, array):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pixels.DecodedPixels, "_spill", full)
    store = DecodedPixels(paths, 40, threads=2, memory_limit=0, background=True)
    with pytest.raises(OSError, match="No space left"):
        store[5]
    store.close()
    assert not pixel_threads()


def test_background_error_is_raised_by_the_next_read(jpegs, tmp_path):
    paths, _ = jpegs
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    store = DecodedPixels([*paths[:3], str(bad)], 40, threads=1, order=[3],
                          background=True)
    store._threads[0].join()  # the thread stopped at the broken file
    with pytest.raises(InvalidInputError, match="image 3: file .*broken.jpg"):
        store[0]
    store.close()


def test_bad_file_stops_a_background_fit_without_leaking_threads(
        jpegs, tmp_path, two_decoders):
    paths, y = jpegs
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InvalidInputError, match="image 5: file .*broken.jpg"):
        tiny().fit([*paths[:5], str(bad), *paths[6:]], y)
    assert not pixel_threads()


def test_training_error_stops_the_decoding_threads(jpegs, two_decoders,
                                                    stores, monkeypatch):
    paths, y = jpegs
    monkeypatch.setenv("SKTRANSFER_PIXEL_CACHE_MB", "0")

    def failing(self, i):
        self.items[0]  # a row decoded and spilled, others still decoding
        raise RuntimeError("training failed")

    monkeypatch.setattr(sktransfer.data.ImageDataset, "__getitem__", failing)
    with pytest.raises(RuntimeError, match="training failed"):
        tiny().fit(paths, y)
    assert not pixel_threads()
    spill = stores[0]._path
    assert spill and not os.path.exists(os.path.dirname(spill))


# --- pixels kept for the next fit (``cache`` set) -------------------------------------


@pytest.fixture
def store_decodes(monkeypatch):
    """The files the pixel stores decode (not prediction's decodes)."""
    seen: list[str] = []
    original = pixels.load_image

    def counting(item, index, min_size=None):
        seen.append(os.fspath(item))
        return original(item, index, min_size)

    monkeypatch.setattr(pixels, "load_image", counting)
    return seen


def test_a_grid_search_decodes_each_file_once_with_the_cache(jpegs, store_decodes):
    from sklearn.model_selection import GridSearchCV

    paths, y = jpegs
    search = GridSearchCV(tiny(max_epochs=1, cache=True), {"lr": [1e-2, 1e-3]},
                          cv=2)
    search.fit(paths, y)
    # 2 candidates x 2 folds + the refit: 5 fits, each file decoded once
    assert sorted(store_decodes) == sorted(paths)
    assert np.isfinite(search.best_score_)


def test_kept_pixels_give_the_same_model(jpegs, store_decodes):
    paths, y = jpegs
    decoded = tiny(cache=False).fit(paths, y).predict_proba(paths)
    first = tiny(cache=True).fit(paths, y).predict_proba(paths)
    assert len(store_decodes) == 2 * len(paths)
    again = tiny(cache=True).fit(paths, y).predict_proba(paths)
    assert len(store_decodes) == 2 * len(paths)  # the third fit decoded nothing
    np.testing.assert_array_equal(first, decoded)
    np.testing.assert_array_equal(again, decoded)


def test_a_rewritten_file_is_decoded_again(jpegs, store_decodes, tmp_path):
    paths, y = jpegs
    mine = []
    for i, path in enumerate(paths):
        mine.append(str(tmp_path / f"copy_{i}.jpg"))
        with open(path, "rb") as source, open(mine[-1], "wb") as target:
            target.write(source.read())
    tiny(max_epochs=1, cache=True).fit(mine, y)
    store_decodes.clear()
    Image.open(paths[0]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(
        mine[3], quality=95)  # same name, new content
    tiny(max_epochs=1, cache=True).fit(mine, y)
    assert store_decodes == [mine[3]]


def test_pixels_are_not_kept_without_the_cache_or_room(jpegs, store_decodes,
                                                         monkeypatch):
    paths, y = jpegs
    for _ in range(2):
        tiny(max_epochs=1, cache=False).fit(paths, y)
    assert len(store_decodes) == 2 * len(paths)
    store_decodes.clear()
    monkeypatch.setenv("SKTRANSFER_CACHE_MB", "0")
    for _ in range(2):
        tiny(max_epochs=1, cache=True).fit(paths, y)
    assert len(store_decodes) == 2 * len(paths)


def test_pixels_spilled_to_disk_are_not_kept(jpegs, store_decodes, monkeypatch):
    # the fit's memory bound holds for what the next fit may take, too
    paths, y = jpegs
    monkeypatch.setenv("SKTRANSFER_PIXEL_CACHE_MB", "0")
    for _ in range(2):
        tiny(max_epochs=1, cache=True).fit(paths, y)
    assert len(store_decodes) == 2 * len(paths)


def test_kept_pixels_are_shared_read_only(jpegs):
    paths, _ = jpegs
    first = DecodedPixels(paths, 40, reuse="test")
    second = DecodedPixels(paths, 40, reuse="test")
    assert second._pixels(0) is first._pixels(0)
    assert not first._pixels(0).flags.writeable
    with pytest.raises(ValueError):
        first._pixels(0)[0, 0, 0] = 1
    np.testing.assert_array_equal(
        np.asarray(second[5]), np.asarray(DecodedPixels(paths, 40)[5]))

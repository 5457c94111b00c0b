"""Decoding image files: draft (fast) mode, EXIF orientation, modes, bad files."""

import math
import os

import numpy as np
import pytest
import torch
from PIL import Image

from sktransfer.augment import image_augmentation
from sktransfer.backbones import resolve_image_backbone
from sktransfer.data import ImageDataset, decode_size, load_image
from sktransfer.exceptions import InvalidInputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _photo(name):
    from skimage import data

    photo = getattr(data, name)()
    if photo.ndim == 2:
        photo = np.repeat(photo[..., None], 3, axis=2)
    return photo[..., :3]


def _large_jpeg(path, photo, size=(4032, 3024), **save):
    Image.fromarray(photo).resize(size, Image.BICUBIC).save(path, quality=90, **save)
    return str(path)


@pytest.fixture(scope="module")
def phone_photo(tmp_path_factory):
    """One 12-MP JPEG made from a real photo."""
    return _large_jpeg(tmp_path_factory.mktemp("jpeg") / "cat.jpg", _photo("chelsea"))


@pytest.mark.parametrize("min_size, expected", [
    (None, (4032, 3024)), (256, (504, 378)), (378, (504, 378)), (379, (1008, 756)),
    (1512, (2016, 1512)), (1513, (4032, 3024)), (3024, (4032, 3024)),
])
def test_draft_decodes_at_the_smallest_scale_that_is_large_enough(
        phone_photo, min_size, expected):
    image = load_image(phone_photo, 0, min_size)
    assert image.mode == "RGB"
    assert image.size == expected


def test_draft_decodes_multi_picture_jpegs(tmp_path):
    """Phones save photos with a depth map or preview as MPO files."""
    first = Image.fromarray(_photo("coffee")).resize((1600, 1200))
    path = tmp_path / "phone.jpg"
    preview = first.resize((400, 300))
    first.save(path, format="MPO", save_all=True, append_images=[preview])
    assert Image.open(path).format == "MPO"
    assert load_image(str(path), 0, 256).size == (400, 300)
    assert load_image(str(path), 0).size == (1600, 1200)


def test_draft_only_changes_jpegs(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(_photo("coffee")).resize((1200, 800)).save(path)
    assert load_image(str(path), 0, 100).size == (1200, 800)


def test_exif_orientation_is_applied_in_both_modes(tmp_path):
    upright = Image.fromarray(_photo("chelsea")).resize((1600, 1200))
    # A camera held upright stores the pixels rotated and tags orientation 6
    # ("rotate 90 degrees clockwise to display").
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    stored.save(path, quality=95, exif=exif)
    reference = np.asarray(upright.resize((200, 150)), dtype=float)
    for min_size in (None, 150):
        image = load_image(str(path), 0, min_size)
        assert image.size[0] > image.size[1]  # landscape again
        seen = np.asarray(image.resize((200, 150)), dtype=float)
        assert np.abs(seen - reference).mean() < 4


def test_modes_are_converted_to_rgb(tmp_path):
    rgb = Image.fromarray(_photo("coffee")).resize((160, 120))
    gray = rgb.convert("L")
    cases = {}
    cases["cmyk.jpg"] = (rgb.convert("CMYK"), np.asarray(rgb), 6)
    cases["gray.png"] = (gray, np.asarray(gray.convert("RGB")), 0)
    cases["palette.png"] = (rgb.quantize(64), np.asarray(rgb), 12)
    sixteen = Image.fromarray(np.asarray(gray).astype(np.uint16) * 257)
    cases["sixteen.png"] = (sixteen, np.asarray(gray.convert("RGB")), 0)
    for name, (image, expected, tolerance) in cases.items():
        path = tmp_path / name
        image.save(path, **({"quality": 98} if name.endswith(".jpg") else {}))
        if name == "sixteen.png":
            assert Image.open(path).mode.startswith("I")
        for min_size in (None, 60):
            decoded = np.asarray(load_image(str(path), 0, min_size), dtype=float)
            if decoded.shape != expected.shape:  # a draft-decoded JPEG
                decoded = np.asarray(
                    load_image(str(path), 0, min_size).resize((160, 120)), dtype=float)
            assert decoded.shape == (120, 160, 3), name
            error = np.abs(decoded - expected).mean()
            assert error <= tolerance + 1e-9, (name, error)


def test_transparency_is_composited_over_white(tmp_path):
    rgba = np.zeros((20, 30, 4), dtype=np.uint8)
    rgba[..., 0] = 200  # red, fully transparent on the left half
    rgba[:, 15:, 3] = 255
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., [0, 3]]).convert("LA").save(tmp_path / "la.png")
    decoded = np.asarray(load_image(str(tmp_path / "rgba.png"), 0))
    assert (decoded[:, :15] == 255).all()
    assert (decoded[:, 15:] == [200, 0, 0]).all()
    assert (np.asarray(load_image(rgba, 0))[:, :15] == 255).all()  # arrays too
    gray_alpha = np.asarray(load_image(str(tmp_path / "la.png"), 0))
    assert (gray_alpha[:, :15] == 255).all()
    assert (gray_alpha[:, 15:] == 200).all()


@pytest.mark.parametrize("min_size", [None, 256])
def test_bad_files_raise_errors_naming_them(tmp_path, phone_photo, min_size):
    data = open(phone_photo, "rb").read()
    cut = tmp_path / "cut_in_half.jpg"
    cut.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    for path in (cut, text):
        with pytest.raises(InvalidInputError, match=f"image 3: file .*{path.name}"):
            load_image(str(path), 3, min_size)


def test_decode_size_follows_the_transform():
    config = resolve_image_backbone("efficientnet_lite0").data_config
    assert decode_size(image_augmentation(None, config)) == 256  # Resize(256)
    assert decode_size(image_augmentation(None, config, image_size=112)) == 128
    # RandomResizedCrop(224, scale=(0.5, 1), ratio=(3/4, 4/3)): every crop it
    # can draw from a decoded image of shorter side >= 366 is >= 224 pixels.
    assert decode_size(image_augmentation("default", config)) == math.ceil(
        224 / math.sqrt(0.5 * 0.75))
    assert decode_size(image_augmentation("strong", config)) == math.ceil(
        224 / math.sqrt(0.25 * 0.75))
    assert decode_size(image_augmentation(lambda im: im, config)) is None


def test_fast_decode_keeps_the_features_of_real_photos(tmp_path):
    backbone = resolve_image_backbone("efficientnet_lite0")
    names = ("chelsea", "coffee", "astronaut", "rocket")
    paths = [_large_jpeg(tmp_path / f"{n}.jpg", _photo(n)) for n in names]
    features = {}
    for fast in (True, False):
        dataset = ImageDataset(paths, backbone.preprocess, fast_decode=fast)
        assert dataset.min_size == (256 if fast else None)
        batch = torch.stack([dataset[i] for i in range(len(paths))])
        with torch.inference_mode():
            features[fast] = backbone.module(batch).numpy()
    fast, exact = features[True], features[False]
    cosine = (fast * exact).sum(1) / (
        np.linalg.norm(fast, axis=1) * np.linalg.norm(exact, axis=1))
    assert (cosine >= 0.99).all(), cosine


def test_accuracy_on_large_jpegs_is_the_same_with_fast_decoding(tmp_path):
    from sklearn.linear_model import LogisticRegression

    from sktransfer import PretrainedImageFeatures
    from sktransfer.datasets import load_photo_patches

    classes = ("brick", "grass", "coffee", "chelsea")
    splits = {}
    for split, n in (("train", 6), ("test", 4)):
        images, labels = load_photo_patches(n, 160, split, classes=classes)
        paths = [_large_jpeg(tmp_path / f"{split}{i}.jpg", image, size=(2016, 1512))
                 for i, image in enumerate(images)]
        splits[split] = (paths, labels)
    scores, predictions, keys = {}, {}, {}
    for fast in (True, False):
        features = PretrainedImageFeatures("efficientnet_lite0", fast_decode=fast,
                                           runtime="torch")
        X_train = features.fit_transform(splits["train"][0])
        X_test = features.transform(splits["test"][0])
        clf = LogisticRegression(max_iter=2000).fit(X_train, splits["train"][1])
        predictions[fast] = clf.predict(X_test)
        scores[fast] = clf.score(X_test, splits["test"][1])
        keys[fast] = features.model_key_
    assert keys[True] != keys[False]  # the decode mode is part of the cache key
    assert scores[True] == scores[False] >= 0.75, scores
    assert (predictions[True] == predictions[False]).mean() >= 0.9


def test_decode_threads_keep_the_order_and_report_bad_files(tmp_path):
    from sktransfer.data import iter_batches

    items = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(11)]

    def mean(image):
        return torch.tensor(float(np.asarray(image).mean()))

    dataset = ImageDataset(items, mean)
    for threads in (0, 1, 3):
        batches = list(iter_batches(dataset, 4, threads=threads))
        assert [len(b) for b in batches] == [4, 4, 3]
        assert torch.cat(batches).tolist() == list(range(11))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    dataset = ImageDataset([*items[:6], str(bad), *items[6:]], mean)
    with pytest.raises(InvalidInputError, match="image 6: file .*broken.jpg"):
        list(iter_batches(dataset, 4, threads=2))


def test_decode_threads_follow_the_thread_budget_on_the_cpu(monkeypatch):
    from sktransfer._utils.device import decode_threads

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    previous = torch.get_num_threads()
    try:
        # one thread (a Dask worker's OMP_NUM_THREADS=1): no thread beside the
        # caller, so N one-thread workers use N cores
        torch.set_num_threads(1)
        assert decode_threads(cpu) == 0
        torch.set_num_threads(2)
        assert decode_threads(cpu) == 2
        torch.set_num_threads(12)
        assert decode_threads(cpu) == 8
    finally:
        torch.set_num_threads(previous)
    monkeypatch.setattr("os.cpu_count", lambda: 4)
    assert decode_threads(cuda) == 4  # the CPU only decodes for a GPU


def test_decoding_overlaps_training_only_where_it_has_cores_of_its_own(
        monkeypatch):
    from sktransfer._utils import device as device_utils

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(device_utils, "usable_cores", lambda: 2)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # a core left for the decoders
        assert device_utils.overlap_decoding(cpu)
        torch.set_num_threads(2)  # torch takes both: decode first
        assert not device_utils.overlap_decoding(cpu)
        assert device_utils.overlap_decoding(cuda)  # the CPU only decodes
    finally:
        torch.set_num_threads(previous)
    monkeypatch.undo()  # the real count: this process's cores
    assert 1 <= device_utils.usable_cores() <= (os.cpu_count() or 1)


def test_features_do_not_depend_on_the_thread_budget(tmp_path):
    from sktransfer import PretrainedImageFeatures

    paths = []
    for i, name in enumerate(["chelsea", "coffee", "astronaut", "rocket", "brick"]):
        paths.append(str(tmp_path / f"{i}.jpg"))
        Image.fromarray(_photo(name)).save(paths[-1], quality=90)
    features = PretrainedImageFeatures("mobilenet_v3_small", weights=None,
                                       batch_size=2, cache=False).fit(paths[:1])
    previous = torch.get_num_threads()
    try:
        out = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out[threads] = features.transform(paths)
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_allclose(out[1], out[2], rtol=1e-4, atol=1e-5)
    assert out[1].shape == (5, 576) and np.ptp(out[1], axis=0).max() > 0

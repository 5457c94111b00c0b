"""PretrainedImageFeatures: real behaviour, sklearn conventions, bad input."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torchvision
from PIL import Image
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_patches
from sktransfer.exceptions import (
    InvalidInputError,
    InvalidInputTypeError,
    ModelNotAvailableError,
)

TINY = {"model": "mobilenet_v3_small", "weights": None}


def tiny(**params):
    return PretrainedImageFeatures(**{**TINY, **params})


@pytest.mark.slow
def test_pretrained_features_beat_random_weights_on_real_photos(scores_by_weights):
    scores = scores_by_weights(
        lambda weights: make_pipeline(
            PretrainedImageFeatures("efficientnet_lite0", weights=weights),
            StandardScaler(), LogisticRegression(max_iter=2000)),
        load_photo_patches(10, 64, "train", random_state=0),
        load_photo_patches(10, 64, "test", random_state=1))
    assert scores["DEFAULT"] >= 0.75
    assert scores["DEFAULT"] >= scores[None] + 0.15


def test_paths_pil_and_arrays_give_the_same_features(small_images, tmp_path):
    paths = []
    for i, image in enumerate(small_images):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    features = tiny(cache=False).fit(small_images)
    from_arrays = features.transform(small_images)
    assert from_arrays.shape == (8, features.n_features_out_)
    assert from_arrays.dtype == np.float32
    np.testing.assert_allclose(features.transform([str(p) for p in paths]),
                               from_arrays, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features.transform(paths), from_arrays, atol=1e-5)
    pil = [Image.fromarray(image) for image in small_images]
    np.testing.assert_allclose(features.transform(pil), from_arrays, atol=1e-5)
    np.testing.assert_allclose(features.transform(np.stack(small_images)),
                               from_arrays, atol=1e-5)
    np.testing.assert_allclose(features.transform(pd.Series(pil)), from_arrays,
                               atol=1e-5)
    frame = pd.DataFrame({"image": [str(p) for p in paths]})
    np.testing.assert_allclose(features.transform(frame), from_arrays, atol=1e-5)
    floats = [image / 255.0 for image in small_images]
    np.testing.assert_allclose(features.transform(floats), from_arrays, atol=1e-4)


def test_gray_rgba_and_mixed_sizes(photos):
    features = tiny(cache=False).fit([photos["camera"]])
    gray = photos["camera"]
    as_rgb = np.repeat(gray[..., None], 3, axis=2)
    np.testing.assert_allclose(features.transform([gray, gray[..., None]]),
                               features.transform([as_rgb, as_rgb]), atol=1e-5)
    rgba = photos["logo"]
    assert rgba.shape[-1] == 4
    mixed = features.transform([photos["chelsea"], gray, rgba, photos["coffee"]])
    assert mixed.shape == (4, features.n_features_out_)
    assert np.isfinite(mixed).all()
    assert not np.allclose(mixed[0], mixed[3])


def test_layer_and_pooling_choose_the_features(small_images):
    by_name = tiny(layer="features.3", pooling="avgmax").fit(small_images)
    by_index = tiny(layer=3, pooling="avgmax").fit(small_images)
    assert by_name.n_features_out_ == 2 * 24
    np.testing.assert_allclose(by_name.transform(small_images),
                               by_index.transform(small_images))
    avg = tiny(layer=3, pooling="avg").fit(small_images).transform(small_images)
    mx = tiny(layer=3, pooling="max").fit(small_images).transform(small_images)
    assert (mx >= avg - 1e-5).all()


def test_data_free_estimator_checks(data_free_checks):
    data_free_checks(PretrainedImageFeatures())


def test_init_loads_nothing(monkeypatch):
    import sktransfer.image

    def boom(*args, **kwargs):
        raise AssertionError("model resolved outside fit")

    monkeypatch.setattr(sktransfer.image, "resolve_image_backbone", boom)
    clone(PretrainedImageFeatures("resnet50").set_params(layer=2))


def test_pickle_is_small_and_reloads_from_the_spec(small_images):
    features = tiny(cache=False).fit(small_images)
    before = features.transform(small_images)
    blob = pickle.dumps(features)
    assert len(blob) < 10_000
    restored = pickle.loads(blob)
    np.testing.assert_allclose(restored.transform(small_images), before, atol=1e-6)


def test_module_spec_pickles_its_weights(small_images):
    net = torchvision.models.resnet18(num_classes=2)
    features = PretrainedImageFeatures(net, cache=False).fit(small_images)
    before = features.transform(small_images)
    blob = pickle.dumps(features)
    assert len(blob) > 40_000_000  # resnet18's weights travel with it
    np.testing.assert_allclose(pickle.loads(blob).transform(small_images), before,
                               atol=1e-5)


def test_set_output_pandas_and_feature_names(small_images):
    features = tiny().set_output(transform="pandas").fit(small_images)
    frame = features.transform(small_images)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(features.get_feature_names_out())
    assert frame.columns[0] == "pretrainedimagefeatures0"




def test_cache_embeds_each_image_once_across_a_grid_search(embedded_images):
    X, y = load_photo_patches(6, 32, "train", classes=("brick", "grass", "coffee"))
    search = GridSearchCV(
        make_pipeline(tiny(), LogisticRegression(max_iter=500)),
        {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=5)
    search.fit(X, y)
    assert embedded_images["images"] == len(X)
    assert len(search.cv_results_["mean_test_score"]) == 3

    embedded_images["images"] = 0
    GridSearchCV(make_pipeline(tiny(cache=False), LogisticRegression(max_iter=500)),
                 {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=5).fit(X, y)
    assert embedded_images["images"] == 3 * 5 * len(X) + len(X)  # 15 fits, 1 refit


def test_cache_key_separates_layers_and_pooling(small_images, embedded_images):
    a = tiny(layer=2).fit(small_images).transform(small_images)
    b = tiny(layer=3).fit(small_images).transform(small_images)
    c = tiny(layer=3, pooling="max").fit(small_images).transform(small_images)
    assert embedded_images["images"] == 24
    assert not np.allclose(a, b) and not np.allclose(b, c)


def test_directory_cache_persists_across_processes(small_images, tmp_path,
                                                   embedded_images):
    from sktransfer.cache import clear_memory_cache

    first = tiny(cache=tmp_path).fit(small_images).transform(small_images)
    clear_memory_cache()  # as if in a new process
    embedded_images["images"] = 0
    second = tiny(cache=str(tmp_path)).fit(small_images).transform(small_images)
    assert embedded_images["images"] == 0
    np.testing.assert_array_equal(first, second)
    assert list(tmp_path.rglob("*.emb"))


def test_duplicate_images_are_embedded_once(small_images, embedded_images):
    out = tiny().fit(small_images).transform(small_images + small_images[:3])
    assert embedded_images["images"] == 8
    np.testing.assert_array_equal(out[8:], out[:3])


# --- bad input ---------------------------------------------------------------

@pytest.mark.parametrize("X, error, message", [
    ([], InvalidInputError, "X is empty"),
    (np.zeros((2, 8, 8, 3, 1), np.uint8), InvalidInputError, "ndim=5"),
    ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 5), np.uint8)],
     InvalidInputError, r"image 1 has shape \(8, 8, 5\)"),
    ([np.zeros((8, 8)), np.full((8, 8), np.nan)], InvalidInputError,
     "image 1 contains NaN"),
    ([np.zeros((8, 8)), np.full((8, 8), 3.0)], InvalidInputError,
     r"image 1 is a float array with values in \[3, 3\]"),
    ([np.zeros((8, 8), np.uint8), {"not": "an image"}], InvalidInputTypeError,
     "image 1 is a dict, which is not an image"),
    (np.zeros((8, 8, 3), np.uint8)[0, 0, 0], InvalidInputTypeError,
     "sequence of images"),
    (pd.DataFrame({"a": ["x"], "b": ["y"]}), InvalidInputError, "one column"),
])
def test_bad_images_are_named(X, error, message, small_images):
    features = tiny().fit(small_images)
    with pytest.raises(error, match=message):
        features.transform(X)


def test_missing_and_corrupt_files_are_named(tmp_path, small_images):
    features = tiny().fit(small_images)
    good = tmp_path / "good.png"
    Image.fromarray(small_images[0]).save(good)
    with pytest.raises(InvalidInputError, match=r"image 1: file .*nope.jpg.* not"):
        features.transform([good, tmp_path / "nope.jpg"])
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"this is not a jpeg")
    with pytest.raises(InvalidInputError,
                       match=r"image 2: file .*corrupt.jpg.* cannot be read"):
        features.transform([good, good, corrupt])


def test_bad_parameters_are_named(small_images):
    with pytest.raises(ModelNotAvailableError, match="unknown image model"):
        PretrainedImageFeatures("resnet-50").fit(small_images)
    with pytest.raises(ValueError, match=r"layer=20 is out of range.*13 blocks"):
        tiny(layer=20).fit(small_images)
    with pytest.raises(ValueError, match="layer='layer9' is not a block"):
        tiny(layer="layer9").fit(small_images)
    with pytest.raises(ValueError, match="pooling"):
        tiny(pooling="median").fit(small_images)
    with pytest.raises(ValueError, match="batch_size"):
        tiny(batch_size=0).fit(small_images)


def test_clones_share_one_loaded_model(monkeypatch):
    import sktransfer._embedding.embedder
    import sktransfer.image

    calls = []
    original = sktransfer.image.resolve_image_backbone

    def counting(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(sktransfer.image, "resolve_image_backbone", counting)
    monkeypatch.setattr(sktransfer._embedding.embedder, "_SHARED", type(
        sktransfer._embedding.embedder._SHARED)())
    X, y = load_photo_patches(4, 32, "train", classes=("brick", "grass"))
    GridSearchCV(make_pipeline(tiny(), LogisticRegression()),
                 {"logisticregression__C": [0.1, 1.0]}, cv=2).fit(X, y)
    assert len(calls) == 1  # 4 fits + refit, one load


def test_dataloader_workers_give_the_same_features(small_images, tmp_path):
    paths = []
    for i, image in enumerate(small_images):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    serial = tiny(cache=False, batch_size=3).fit(paths).transform(paths)
    parallel = tiny(cache=False, batch_size=3, num_workers=2).fit(paths)
    np.testing.assert_allclose(parallel.transform(paths), serial, atol=1e-6)

"""Errors a user can act on: NotFittedError before fit, directories, masks."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

import sktransfer
import sktransfer.adapt
from sktransfer import PretrainedImageFeatures
from sktransfer.data import as_image_list, load_image
from sktransfer.evaluate import RawPixels
from sktransfer.exceptions import InvalidInputError

METHODS = ("predict", "predict_proba", "decision_function", "transform", "score",
           "get_feature_names_out")


def public_estimators():
    classes = [getattr(sktransfer, name) for name in sktransfer.__all__]
    classes += [getattr(sktransfer.adapt, name) for name in sktransfer.adapt.__all__]
    classes.append(RawPixels)
    return sorted(
        {c for c in classes if inspect.isclass(c) and issubclass(c, BaseEstimator)},
        key=lambda c: c.__name__,
    )


def unfitted_calls() -> list:
    return [
        pytest.param(cls, method, id=f"{cls.__name__}.{method}")
        for cls in public_estimators()
        for method in METHODS
        if callable(getattr(cls, method, None))
    ]


def test_every_public_estimator_is_checked():
    names = {c.__name__ for c in public_estimators()}
    assert {"PretrainedImageFeatures", "PretrainedTextEmbeddings",
            "FineTunedClassifier", "FineTunedTextClassifier"} <= names


@pytest.mark.parametrize(("cls", "method"), unfitted_calls())
def test_unfitted_estimator_raises_not_fitted_error(cls, method):
    estimator = cls()
    X = np.zeros((4, 3))
    args = (X, np.array([0, 1, 0, 1])) if method == "score" else (X,)
    if method == "get_feature_names_out":
        args = ()
    with pytest.raises(NotFittedError):
        getattr(estimator, method)(*args)


def test_directory_is_named_as_a_directory(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(InvalidInputError, match=r"image 1: .*photos.* is a directory"):
        as_image_list([np.zeros((4, 4, 3), np.uint8), str(tmp_path / "photos")])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InvalidInputError, match=r"image 0: file .*nope.png"):
        as_image_list([str(tmp_path / "nope.png")])


def test_boolean_mask_is_black_and_white():
    mask = np.zeros((6, 8), dtype=bool)
    mask[:, 4:] = True
    rgb = np.asarray(load_image(mask, 0))
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    assert (rgb[:, :4] == 0).all() and (rgb[:, 4:] == 255).all()


def test_boolean_mask_embeds_like_its_uint8_image():
    mask = np.random.RandomState(0).rand(2, 32, 32) > 0.5
    as_uint8 = mask.astype(np.uint8) * 255
    features = PretrainedImageFeatures("resnet18", weights=None, cache=False)
    features.fit(list(mask))
    np.testing.assert_array_equal(features.transform(list(mask)),
                                  features.transform(list(as_uint8)))


def test_unsupported_dtype_lists_allowed_ones():
    with pytest.raises(InvalidInputError, match="uint8, float in \\[0, 1\\] or bool"):
        as_image_list([np.zeros((4, 4), dtype=np.complex64)])

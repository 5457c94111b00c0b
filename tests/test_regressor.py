"""FineTunedRegressor / FineTunedTextRegressor: units, losses, options, errors.

Fast tests use a tiny random CNN (and a tiny random BERT for text); the
``slow`` tests use the bundled efficientnet_lite0 on a real-photo regression
task (the zoom of crops of scikit-image's photos) and the bundled MiniLM.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import (
    check_parameters_default_constructible,
)
from test_finetune import TinyNet
from torch import nn

from sktransfer.backbones import bundled_text_path
from sktransfer.datasets import (
    load_chatterbot_topics,
    load_photo_patches,
    load_photo_zoom,
)
from sktransfer.evaluate import RawPixels
from sktransfer.exceptions import InvalidInputError
from sktransfer.finetune import FineTunedRegressor, FineTunedTextRegressor

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**params):
    defaults = dict(
        model=TinyNet(widths=(3, 8, 16, 32), n_outputs=10),  # three blocks
        max_epochs=2, image_size=32, batch_size=16, lr=1e-2, random_state=0,
    )  # fmt: skip
    return FineTunedRegressor(**{**defaults, **params})


@pytest.fixture(scope="module")
def photos():
    """24 crops of two photos; targets in odd units, two columns."""
    X, labels = load_photo_patches(12, 48, random_state=0, classes=("brick", "coffee"))
    coffee = (labels == "coffee").astype(float)
    y = np.column_stack([5000 + 1000 * coffee, -3 + 0.01 * coffee])
    return X, y


# --- units, outputs, losses -------------------------------------------------------


def test_standardised_inside_restored_on_predict(photos):
    X, y = photos
    reg = tiny(freeze_depth="all", max_epochs=60, lr=0.05).fit(X, y[:, 0])
    np.testing.assert_allclose(reg.target_mean_, [5500.0])
    np.testing.assert_allclose(reg.target_scale_, [500.0])
    predicted = reg.predict(X)
    assert predicted.shape == (24,)
    # in the target's units (not standardised): centred on 5500, the two photos
    # about 1000 apart (less the ridge probe's shrinkage)
    coffee = y[:, 0] == 6000
    assert predicted.mean() == pytest.approx(5500, abs=30)
    assert 500 < predicted[coffee].mean() - predicted[~coffee].mean() < 1100
    assert reg.score(X, y[:, 0]) > 0.7


def test_multi_output_each_column_in_its_units(photos):
    X, y = photos
    reg = tiny(freeze_depth="all", max_epochs=60, lr=0.05).fit(X, y)
    assert reg.n_outputs_ == 2
    predicted = reg.predict(X)
    assert predicted.shape == (24, 2)
    np.testing.assert_allclose(predicted.mean(axis=0), [5500, -2.995], rtol=0.005)
    coffee = y[:, 0] == 6000
    gap = predicted[coffee].mean(axis=0) - predicted[~coffee].mean(axis=0)
    assert 500 < gap[0] < 1100 and 0.005 < gap[1] < 0.011, gap
    assert reg.score(X, y) > 0.7


@pytest.mark.parametrize(
    "loss, criterion", [("mse", nn.MSELoss), ("huber", nn.HuberLoss)]
)
def test_loss_is_the_criterion_on_standardised_targets(photos, loss, criterion):
    X, y = photos
    reg = tiny(
        loss=loss, freeze_depth=-1, early_stopping=True, validation_fraction=0.25,
        max_epochs=8,
    ).fit(X, y)  # fmt: skip
    assert isinstance(reg.net_.criterion_, criterion)
    held_out = reg.validation_indices_
    assert len(held_out) == 6
    outputs = (reg.predict(X[held_out]) - reg.target_mean_) / reg.target_scale_
    target = (y[held_out] - reg.target_mean_) / reg.target_scale_
    expected = criterion()(torch.tensor(outputs), torch.tensor(target)).item()
    assert expected == pytest.approx(min(reg.history_[:, "valid_loss"]), rel=1e-4)


def test_huber_is_less_pulled_by_an_outlier(photos):
    X, y = photos
    target = y[:, 0].copy()
    target[0] = 5000 + 200_000  # one wildly wrong label (a brick crop)
    bricks = np.flatnonzero(y[:, 0] == 5000)[1:]
    errors = {}
    for loss in ("mse", "huber"):
        reg = tiny(loss=loss, freeze_depth="all", max_epochs=60, lr=0.05)
        errors[loss] = np.abs(reg.fit(X, target).predict(X[bricks]) - 5000).mean()
    assert errors["huber"] < 0.5 * errors["mse"], errors


# --- the classifiers' options ---------------------------------------------------------


@pytest.mark.parametrize("depth, n_frozen", [(-1, 2), (0, 0), (2, 2), ("all", 3)])
def test_freeze_depth(photos, depth, n_frozen):
    X, y = photos
    reg = tiny(freeze_depth=depth, max_epochs=1).fit(X, y)
    assert reg.n_blocks_ == 3 and reg.n_frozen_ == n_frozen
    assert np.isfinite(reg.predict(X)).all()


def test_head_epochs_l2sp_augmentation_and_seed(photos):
    X, y = photos
    params = dict(head_epochs=1, max_epochs=1, l2sp=0.1, augment="light")
    reg = tiny(**params).fit(X, y)
    assert reg.history_[:, "phase"] == ["head", "finetune"]
    again = tiny(**params).fit(X, y)
    other = tiny(**params, random_state=1).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), again.predict(X))
    assert not np.array_equal(reg.predict(X), other.predict(X))


def test_default_augmentation_is_off():
    assert FineTunedRegressor().augment is None
    assert FineTunedTextRegressor().augment is None


# --- sklearn API ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [FineTunedRegressor, FineTunedTextRegressor])
def test_sklearn_conventions(cls, data_free_checks):
    estimator = cls()
    data_free_checks(estimator)
    check_parameters_default_constructible(cls.__name__, estimator)
    assert cls(freeze_depth=99).freeze_depth == 99  # no validation in __init__
    tags = estimator.__sklearn_tags__()
    assert tags.estimator_type == "regressor" and tags.target_tags.multi_output


def test_not_fitted_clone_params_pickle(photos):
    X, y = photos
    reg = tiny(loss="huber")
    with pytest.raises(NotFittedError):
        reg.predict(X)
    assert clone(reg).get_params()["loss"] == "huber"
    assert reg.set_params(loss="mse").loss == "mse"
    reg.fit(X, y)
    loaded = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(loaded.predict(X), reg.predict(X))
    assert not hasattr(clone(reg), "net_")


# --- bad input ------------------------------------------------------------------------


def test_non_numeric_target_names_the_row(photos):
    X, y = photos
    target = y[:, 0].astype(object)
    target[7] = "tall"
    with pytest.raises(InvalidInputError, match="row 7 is 'tall'"):
        tiny().fit(X, target)
    target = y[:, 0].copy()
    target[3] = np.nan
    with pytest.raises(ValueError, match="row 3 is nan"):
        tiny().fit(X, target)


def test_constant_target_is_an_error(photos):
    X, y = photos
    with pytest.raises(InvalidInputError, match="y is constant.*varies"):
        tiny().fit(X, np.full(len(X), 2.5))
    y = y.copy()
    y[:, 1] = 7
    with pytest.raises(InvalidInputError, match="column 1 of y is constant"):
        tiny().fit(X, y)


def test_bad_loss_and_length(photos):
    X, y = photos
    with pytest.raises(ValueError, match="loss"):
        tiny(loss="mae").fit(X, y)
    with pytest.raises(ValueError, match="24 samples but y has 23 rows"):
        tiny().fit(X, y[:-1])


# --- real data ------------------------------------------------------------------------


@pytest.mark.slow
def test_pretrained_beats_scratch_and_raw_pixels_on_photo_zoom(scores_by_weights):
    train = load_photo_zoom(16, 64, "train", random_state=0)
    test = load_photo_zoom(10, 64, "test", random_state=1)
    scores = scores_by_weights(
        lambda weights: FineTunedRegressor(
            "efficientnet_lite0", weights=weights, freeze_depth="all",
            max_epochs=20, lr=1e-3, image_size=96, batch_size=16, random_state=0),
        train, test)
    raw = make_pipeline(RawPixels(32), StandardScaler(), RidgeCV(np.logspace(-2, 5)))
    scores["raw"] = raw.fit(*train).score(*test)
    # R² on held-out pixels, measured: 0.46 pretrained, -0.13 the same network
    # with random weights, -0.02 ridge on raw pixels
    assert scores["DEFAULT"] > 0.3, scores
    assert scores["DEFAULT"] > scores[None] + 0.3, scores
    assert scores["DEFAULT"] > scores["raw"] + 0.3, scores


@pytest.mark.slow
@pytest.mark.skipif(bundled_text_path() is None, reason="needs MiniLM")
def test_text_regressor_learns_a_topic_score():
    # a simple honest target: a score per chatterbot topic (ai 1, coding 3,
    # emotion 5), predicted on held-out statements (90 train, 60 test)
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, labels = load_chatterbot_topics(["ai", "coding", "emotion"])
    scores = {"ai": 1.0, "coding": 3.0, "emotion": 5.0}
    y = np.array([scores[t] for t in labels])
    rows = np.random.RandomState(0).permutation(len(y))
    train, test = rows[:90], rows[90:150]
    X = np.array(texts, dtype=object)
    reg = FineTunedTextRegressor(
        freeze_depth="all", max_epochs=30, lr=1e-3, max_length=64, random_state=0
    ).fit(X[train], y[train])
    tfidf = make_pipeline(TfidfVectorizer(), RidgeCV()).fit(X[train], y[train])
    # measured R²: 0.29 (MiniLM) vs -0.02 (TF-IDF + ridge)
    r2, r2_tfidf = reg.score(X[test], y[test]), tfidf.score(X[test], y[test])
    assert r2 > 0.15 and r2 > r2_tfidf + 0.15, (r2, r2_tfidf)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer random BERT with MiniLM's tokenizer, as ``"hf/<folder>"``."""
    if bundled_text_path() is None:
        pytest.skip("needs the bundled MiniLM tokenizer")
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(bundled_text_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return f"hf/{folder}"


@pytest.mark.parametrize("depth", [-1, "all"])
def test_text_regressor_multi_output_in_units(tiny_bert, depth):
    texts = ["the cat sat", "a dog ran far away", "hello", "what is this"] * 4
    y = np.column_stack([[len(t.split()) * 100.0 for t in texts], np.arange(16)])
    reg = FineTunedTextRegressor(
        tiny_bert, freeze_depth=depth, max_epochs=40, lr=0.05, backbone_lr=1e-3,
        max_length=16, batch_size=8, random_state=0,
    ).fit(texts, y)  # fmt: skip
    assert reg.n_frozen_ == (2 if depth == -1 else 3)
    predicted = reg.predict(texts)
    assert predicted.shape == (16, 2)
    # the word count (4 distinct texts) is learnt, in hundreds
    np.testing.assert_allclose(predicted[:, 0], y[:, 0], atol=60)

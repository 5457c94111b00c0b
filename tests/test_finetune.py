"""FineTunedClassifier: freezing, L2-SP, schedules, search, persistence, errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from torch import nn

from sktransfer.augment import image_augmentation
from sktransfer.backbones import resolve_image_backbone
from sktransfer.datasets import load_photo_patches
from sktransfer.finetune import FineTunedClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNet(nn.Module):
    """Conv-BN blocks (``features.0`` .., four by default, one per width after
    the first) and a classifier; seeded, so every instance starts the same."""

    forward_calls = 0

    def __init__(self, widths=(3, 8, 16, 16, 32), n_outputs=1000):
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(
            *[
                nn.Sequential(
                    nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
                    nn.BatchNorm2d(c_out),
                    nn.ReLU(),
                )
                for c_in, c_out in zip(widths[:-1], widths[1:], strict=True)
            ]
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], n_outputs)

    def forward(self, x):
        TinyNet.forward_calls += 1
        return self.classifier(self.pool(self.features(x)).flatten(1))


def tiny(**params):
    defaults = dict(
        model=TinyNet(),
        max_epochs=2,
        image_size=32,
        batch_size=16,
        lr=1e-2,
        random_state=0,
    )
    return FineTunedClassifier(**{**defaults, **params})


@pytest.fixture(scope="module")
def photos():
    X, y = load_photo_patches(
        8, 48, random_state=0, classes=("brick", "coffee", "chelsea")
    )
    return X, y


def block_state(backbone, index):
    state = {}
    for j, module in enumerate(backbone.blocks[index].modules):
        for key, value in module.state_dict().items():
            state[f"{j}.{key}"] = value.detach().cpu().clone()  # on any device
    return state


def states_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


# --- freezing ---------------------------------------------------------------


def test_frozen_blocks_bit_identical_and_unfrozen_blocks_change(photos):
    X, y = photos
    spec = TinyNet()
    clf = tiny(model=spec, freeze_depth=2).fit(X, y)
    fresh = resolve_image_backbone(spec)
    tuned = clf.backbone_
    assert clf.n_blocks_ == 4 and clf.n_frozen_ == 2
    for i in range(4):
        same = states_equal(block_state(fresh, i), block_state(tuned, i))
        assert same == (i < 2), f"block {i}"
    # BatchNorm statistics of an unfrozen block move, of a frozen block do not
    bn_frozen, bn_trained = tuned.blocks[1].modules[0][1], tuned.blocks[3].modules[0][1]
    assert torch.equal(
        bn_frozen.running_mean, fresh.blocks[1].modules[0][1].running_mean
    )
    assert not torch.equal(
        bn_trained.running_mean, fresh.blocks[3].modules[0][1].running_mean
    )
    assert not any(p.requires_grad for p in tuned.blocks[0].parameters())


@pytest.mark.parametrize("depth, n_frozen", [(-1, 3), (0, 0), (4, 4), ("all", 4)])
def test_freeze_depth_counts(photos, depth, n_frozen):
    X, y = photos
    clf = tiny(freeze_depth=depth, max_epochs=1).fit(X, y)
    assert clf.n_frozen_ == n_frozen


def test_freeze_all_embeds_once(photos):
    X, y = photos  # 24 images, batches of 16: 2 forward passes per epoch
    TinyNet.forward_calls = 0
    tiny(freeze_depth="all", max_epochs=4).fit(X, y)
    fast_calls = TinyNet.forward_calls
    TinyNet.forward_calls = 0
    tiny(freeze_depth=-1, max_epochs=4).fit(X, y)
    assert fast_calls <= 1 + 2  # the width probe + one pass over the data
    assert TinyNet.forward_calls >= 1 + 4 * 2


@pytest.mark.slow
def test_freeze_all_keeps_bundled_backbone_identical(photos):
    X, y = photos
    clf = FineTunedClassifier(
        "efficientnet_lite0",
        freeze_depth="all",
        max_epochs=10,
        lr=1e-2,
        image_size=64,
        random_state=0,
    ).fit(X, y)
    fresh = resolve_image_backbone("efficientnet_lite0")
    tuned = clf.backbone_.module.state_dict()
    assert all(torch.equal(v, tuned[k].cpu())
               for k, v in fresh.module.state_dict().items())
    assert clf.score(X, y) > 0.9


def backbone_distance(clf, spec):
    fresh = dict(resolve_image_backbone(spec).module.named_parameters())
    tuned = dict(clf.backbone_.module.named_parameters())
    return (
        sum(float((tuned[k].cpu() - v).detach().pow(2).sum())
            for k, v in fresh.items())
        ** 0.5
    )


def test_l2sp_stays_closer_to_pretrained(photos):
    X, y = photos
    spec = TinyNet()
    free = tiny(model=spec, backbone_lr=1e-2, max_epochs=3, l2sp=0.0).fit(X, y)
    tied = tiny(model=spec, backbone_lr=1e-2, max_epochs=3, l2sp=1.0).fit(X, y)
    d_free, d_tied = backbone_distance(free, spec), backbone_distance(tied, spec)
    assert d_tied < 0.7 * d_free, (d_tied, d_free)


# --- transfer works -----------------------------------------------------------


@pytest.mark.slow
def test_pretrained_beats_scratch_on_held_out_photos(scores_by_weights):
    scores = scores_by_weights(
        lambda weights: FineTunedClassifier(
            "efficientnet_lite0", weights=weights, max_epochs=5, image_size=64,
            batch_size=16, random_state=0),
        load_photo_patches(12, 64, "train", random_state=0),
        load_photo_patches(30, 64, "test", random_state=1))
    # 8 photos: chance is 0.125; measured 0.80 (pretrained) vs 0.13 (scratch)
    assert scores["DEFAULT"] > 0.6, scores
    assert scores["DEFAULT"] > scores[None] + 0.3, scores


# --- schedules ----------------------------------------------------------------


def test_head_epochs_then_finetune(photos):
    X, y = photos
    spec = TinyNet()
    clf = tiny(model=spec, head_epochs=2, max_epochs=1).fit(X, y)
    assert clf.history_[:, "phase"] == ["head", "head", "finetune"]
    assert backbone_distance(clf, spec) > 0


def test_head_epochs_alone_keep_backbone(photos):
    X, y = photos
    spec = TinyNet()
    clf = tiny(model=spec, head_epochs=2, max_epochs=0).fit(X, y)
    assert clf.history_[:, "phase"] == ["head", "head"]
    assert backbone_distance(clf, spec) == 0


def rows_seen(clf, epoch=-1):
    return sum(
        batch["train_batch_size"]
        for batch in clf.history_[epoch, "batches"]
        if "train_batch_size" in batch
    )


@pytest.mark.parametrize("freeze_depth", [0, -1])
def test_early_stopping_holds_out_and_restores_best(photos, freeze_depth):
    X, y = photos
    clf = tiny(
        freeze_depth=freeze_depth,
        early_stopping=True,
        validation_fraction=0.25,
        max_epochs=12,
        lr=0.05,
    ).fit(X, y)
    held_out = clf.validation_indices_
    assert len(held_out) == 6 and set(y[held_out]) == set(y)  # stratified
    assert rows_seen(clf) == len(X) - 6
    proba = clf.predict_proba(X[held_out])
    codes = np.searchsorted(clf.classes_, y[held_out])
    loss = -np.mean(np.log(proba[np.arange(6), codes]))
    assert loss == pytest.approx(min(clf.history_[:, "valid_loss"]), rel=1e-4)


def test_without_early_stopping_all_rows_train(photos):
    X, y = photos
    clf = tiny().fit(X, y)
    assert clf.validation_indices_ is None
    assert rows_seen(clf) == len(X)
    assert "valid_loss" not in clf.history_[-1]


# --- model selection, determinism -----------------------------------------------


def test_grid_search_over_freeze_depth_and_deterministic_refit(photos):
    X, y = photos
    search = GridSearchCV(
        tiny(max_epochs=1),
        {"freeze_depth": ["all", -2, -1, 0], "lr": [1e-2, 1e-3]},
        cv=2,
        error_score="raise",
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    expected_frozen = {"all": 4, -2: 2, -1: 3, 0: 0}
    best_depth = search.best_params_["freeze_depth"]
    assert search.best_estimator_.n_frozen_ == expected_frozen[best_depth]
    again = search.best_estimator_.__sklearn_clone__().fit(X, y)
    np.testing.assert_array_equal(
        search.best_estimator_.predict_proba(X), again.predict_proba(X)
    )


def test_same_seed_same_model_with_augmentation(photos):
    X, y = photos
    clf = tiny(freeze_depth=0, augment="strong")
    rng_before = torch.get_rng_state()
    clf.fit(X, y)
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    a = clf.predict_proba(X)
    b = clf.fit(X, y).predict_proba(X)  # a refit starts again from w0
    c = tiny(freeze_depth=0, augment="strong", random_state=1).fit(X, y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c.predict_proba(X))


def test_cross_validate_scores_are_the_folds_own(photos):
    X, y = photos
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    clf = tiny(freeze_depth=-1, max_epochs=3)
    assert_folds_own_scores(clf, X, y, cv)


def assert_folds_own_scores(clf, X, y, cv):
    """``cross_validate`` scores what fitting a clone on each fold does: no
    fold starts from another's weights."""
    result = cross_validate(clf, X, y, cv=cv, error_score="raise")
    manual = [
        clone(clf).fit(X[train], y[train]).score(X[test], y[test])
        for train, test in cv.split(X, y)
    ]
    np.testing.assert_allclose(result["test_score"], manual)


# --- inputs, labels, persistence ------------------------------------------------


def test_string_labels_and_input_types(photos, tmp_path):
    X, y = photos
    clf = tiny(freeze_depth="all", max_epochs=40, lr=0.05).fit(list(X), y)
    assert list(clf.classes_) == ["brick", "chelsea", "coffee"]
    assert set(clf.predict(X)) <= set(y)
    pils = [Image.fromarray(x) for x in X]
    paths = []
    for i, image in enumerate(pils[:4]):
        paths.append(str(tmp_path / f"{i}.png"))
        image.save(paths[-1])
    expected = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(pils), expected, atol=1e-6)
    np.testing.assert_allclose(
        clf.predict_proba(pd.Series(list(X))), expected, atol=1e-6
    )
    np.testing.assert_allclose(clf.predict_proba(paths), expected[:4], atol=1e-6)
    assert clf.score(X, y) > 0.5


def test_callable_augment(photos):
    X, y = photos
    seen = []

    def flip(image):
        seen.append(image.size)
        return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)

    tiny(augment=flip, max_epochs=1).fit(X, y)
    assert seen and seen[0] == (48, 48)


def test_pickle_holds_finetuned_weights(photos):
    X, y = photos
    clf = FineTunedClassifier(
        "resnet18", weights=None, max_epochs=1, image_size=32, random_state=0
    ).fit(X, y)
    blob = pickle.dumps(clf)
    loaded = pickle.loads(blob)
    n_bytes = sum(p.numel() * 4 for p in clf.net_.module_.parameters())
    assert len(blob) < 1.2 * n_bytes  # the weights once, no optimizer state
    # weights=None would be a new random network: equal outputs prove the pickle
    # carries the fine-tuned weights
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    assert loaded.device_ == clf.device_


def test_pickle_from_a_cuda_machine_loads_on_cpu(photos):
    # No GPU in CI: a net whose recorded device is CUDA stands in for one fitted
    # there. skorch maps its tensors to the CPU on load (with a warning), and
    # device_ follows, so predictions work on a CPU-only machine.
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    X, y = photos
    clf = tiny().fit(X, y)
    expected = clf.predict_proba(X)
    clf.net_.device = "cuda"
    with pytest.warns(UserWarning, match="(?i)cuda"):
        loaded = pickle.loads(pickle.dumps(clf))
    assert loaded.device_ == "cpu" and str(loaded.net_.device) == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X), expected)


# --- errors and sklearn conventions ---------------------------------------------


def test_one_class_is_an_error(photos):
    X, _ = photos
    with pytest.raises(ValueError, match="single class.*at least 2 classes"):
        tiny().fit(X, ["a"] * len(X))


def test_freeze_depth_out_of_range_names_block_count(photos):
    X, y = photos
    with pytest.raises(ValueError, match="has 4 blocks"):
        tiny(freeze_depth=5).fit(X, y)
    with pytest.raises(ValueError, match="has 4 blocks"):
        tiny(freeze_depth=-5).fit(X, y)


def test_unknown_augment_lists_presets(photos):
    X, y = photos
    with pytest.raises(ValueError, match="augment.*'default'"):
        tiny(augment="heavy").fit(X, y)
    with pytest.raises(ValueError, match="'default', 'light', 'strong'"):
        image_augmentation("heavy", resolve_image_backbone(TinyNet()).data_config)


def test_bad_image_names_its_index(photos):
    X, y = photos
    items = list(X)
    items[3] = np.full((48, 48, 3), 2.5)
    with pytest.raises(ValueError, match="image 3"):
        tiny().fit(items, y)
    items = list(X)
    items[5] = 42
    with pytest.raises(TypeError, match="image 5 is a int"):
        tiny().fit(items, y)
    with pytest.raises(ValueError, match="image 1: file 'no/such.png'"):
        tiny().fit([X[0], "no/such.png"], y[:2])


def test_labels_must_match_rows(photos):
    X, y = photos
    with pytest.raises(ValueError, match="24 samples but y has 23 rows"):
        tiny().fit(X, y[:-1])


def test_sklearn_conventions(data_free_checks):
    data_free_checks(FineTunedClassifier())
    assert FineTunedClassifier(freeze_depth=99).freeze_depth == 99  # no validation

"""The training engine (``sktransfer._utils.engine``) that the fine-tuners
and FewShotTextClassifier's contrastive training share."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sktransfer import FewShotTextClassifier
from sktransfer._utils.engine import LossMeter, make_optimizer, prefetch, seeded
from sktransfer.datasets import load_photo_patches
from sktransfer.finetune import FineTunedClassifier
from tests.test_fewshot import LABELS, TEXTS
from tests.test_finetune import TinyNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def engine_calls(monkeypatch):
    """Counts calls of the engine's parts, where both loops look them up."""
    from sktransfer._utils import engine

    seen: dict = {}
    for name in ("seeded", "make_optimizer", "training_precision", "autocast_for"):
        original = getattr(engine, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            seen[_name] = seen.get(_name, 0) + 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(engine, name, spy)
    return seen


@pytest.fixture
def steps(monkeypatch):
    """Counts ``LossMeter.add`` calls: training steps run on the engine."""
    seen = {"steps": 0}
    add = LossMeter.add

    def counting(self, loss, n=1):
        seen["steps"] += 1
        return add(self, loss, n)

    monkeypatch.setattr(LossMeter, "add", counting)
    return seen


def test_fine_tuner_and_few_shot_train_on_the_engine(steps, engine_calls,
                                                     tiny_bert):
    X, y = load_photo_patches(4, 32, random_state=0, classes=("brick", "coffee"))
    clf = FineTunedClassifier(TinyNet(), max_epochs=2, image_size=32, batch_size=4,
                              freeze_depth=1, random_state=0).fit(X, y)
    assert steps["steps"] == 2 * 2  # 8 images in batches of 4, two epochs
    assert np.isfinite(clf.history_[:, "train_loss"]).all()
    # seeding, the optimiser, the precision decision and autocast: the engine's
    assert set(engine_calls) == {"seeded", "make_optimizer", "training_precision",
                                 "autocast_for"}
    assert engine_calls["seeded"] == engine_calls["make_optimizer"] == 1
    steps["steps"] = 0
    engine_calls.clear()
    few = FewShotTextClassifier(f"hf/{tiny_bert}", n_pairs=60, batch_size=4,
                                max_epochs=2, random_state=0).fit(TEXTS, LABELS)
    assert steps["steps"] > 0 and len(few.loss_curve_) == 2
    assert all(np.isfinite(few.loss_curve_))
    assert set(engine_calls) == {"seeded", "make_optimizer", "training_precision",
                                 "autocast_for"}
    assert engine_calls["seeded"] == engine_calls["make_optimizer"] == 1


def test_few_shot_leaves_the_callers_generator_alone(tiny_bert):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    FewShotTextClassifier(f"hf/{tiny_bert}", n_pairs=30, batch_size=4,
                          random_state=0).fit(TEXTS, LABELS)
    torch.testing.assert_close(torch.rand(3), expected)


def test_adapt_loss_per_batch_without_a_read_per_step():
    X, y = load_photo_patches(4, 32, random_state=0, classes=("brick", "coffee"))
    y = np.array(y, dtype=object)
    y[:2] = "-1"
    clf = FineTunedClassifier(TinyNet(), max_epochs=1, image_size=32, batch_size=4,
                              freeze_depth=1, adapt="coral", augment=None,
                              batch_losses=True, random_state=0).fit(X, y)
    batches = clf.history_[-1, "batches"]
    assert all(np.isfinite(b["adapt_loss"]) and np.isfinite(b["train_loss"])
               for b in batches)


def _photos():
    return load_photo_patches(6, 32, random_state=0, classes=("brick", "coffee"))


@pytest.fixture
def reads(monkeypatch):
    """Counts what leaves the device from the loss meters: per-batch reads
    (``values``) and per-epoch means (``mean``)."""
    seen = {"values": 0, "mean": 0}
    values, mean = LossMeter.values, LossMeter.mean

    def counting_values(self):
        seen["values"] += 1
        return values(self)

    def counting_mean(self):
        seen["mean"] += 1
        return mean(self)

    monkeypatch.setattr(LossMeter, "values", counting_values)
    monkeypatch.setattr(LossMeter, "mean", counting_mean)
    return seen


def test_batch_losses_are_read_only_when_asked(reads):
    X, y = _photos()
    params = dict(max_epochs=3, image_size=32, batch_size=4, freeze_depth=1,
                  early_stopping=True, validation_fraction=0.25, random_state=0)
    plain = FineTunedClassifier(TinyNet(), **params).fit(X, y)
    # no batch's loss read: one mean per loss and epoch (train and valid)
    assert reads == {"values": 0, "mean": 3 * 2}
    for epoch in plain.history_:
        assert not any("train_loss" in b or "valid_loss" in b
                       for b in epoch["batches"])
        assert np.isfinite(epoch["train_loss"]) and np.isfinite(epoch["valid_loss"])
    reads.update(values=0, mean=0)
    asked = FineTunedClassifier(TinyNet(), batch_losses=True, **params).fit(X, y)
    assert reads == {"values": 3 * 2, "mean": 0}  # one transfer per epoch each
    for epoch in asked.history_:
        train = [b for b in epoch["batches"] if "train_loss" in b]
        assert len(train) == epoch["train_batch_count"] == 3
        assert all(np.isfinite(b["train_loss"]) for b in train)
        # skorch's epoch loss: the batch-size-weighted mean of the batches'
        sizes = [b["train_batch_size"] for b in train]
        assert epoch["train_loss"] == pytest.approx(
            np.average([b["train_loss"] for b in train], weights=sizes))
    # the same training either way: same epoch losses, best flags, weights
    for key in ("train_loss", "valid_loss"):
        np.testing.assert_allclose(plain.history_[:, key], asked.history_[:, key],
                                   rtol=1e-6)
        assert plain.history_[:, key + "_best"] == asked.history_[:, key + "_best"]
    np.testing.assert_array_equal(plain.predict_proba(X), asked.predict_proba(X))


def test_loss_meter_reads_once_and_weights_by_size():
    meter = LossMeter()
    meter.add(torch.tensor(1.0), 2)
    meter.add(torch.tensor([4.0]), 1)
    assert meter.values() == [1.0, 4.0] and len(meter) == 2
    assert meter.mean() == pytest.approx(2.0)
    assert np.isnan(LossMeter().mean()) and LossMeter().values() == []


def test_seeded_seeds_and_restores():
    torch.manual_seed(7)
    state = torch.random.get_rng_state()
    with seeded(0, torch.device("cpu")):
        first = torch.rand(2)
    with seeded(0, torch.device("cpu")):
        torch.testing.assert_close(torch.rand(2), first)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_make_optimizer_falls_back_when_fused_is_not_taken():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert isinstance(make_optimizer(torch.optim.AdamW, params, lr=0.1),
                      torch.optim.AdamW)
    assert isinstance(make_optimizer(torch.optim.SGD, params, lr=0.1),
                      torch.optim.SGD)


def test_prefetch_keeps_order_and_runs_ahead():
    produced = []

    def source():
        for i in range(20):
            produced.append(threading.current_thread().name)
            yield i

    assert list(prefetch(source(), ahead=3)) == list(range(20))
    assert set(produced) == {"sktransfer-prefetch"}


def test_prefetch_raises_the_producers_error():
    def source():
        yield 1
        raise ValueError("bad batch 2")

    items = prefetch(source())
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad batch 2"):
        next(items)


def test_prefetch_stops_its_thread_when_closed_early():
    before = {t.ident for t in threading.enumerate()}
    items = prefetch(iter(range(10**6)), ahead=2)
    assert next(items) == 0
    items.close()
    left = [t for t in threading.enumerate()
            if t.ident not in before and t.name == "sktransfer-prefetch"]
    assert not left


@pytest.mark.parametrize("augment", [None, "default"])
def test_uint8_batches_normalised_on_the_device_as_on_the_host(monkeypatch, augment):
    from sktransfer.finetune._module import FineTuneModule

    X, y = _photos()
    params = dict(max_epochs=2, image_size=32, batch_size=4, freeze_depth=1,
                  augment=augment, cache=False, random_state=0)
    dtypes = []
    normalise = FineTuneModule.normalise

    def recording(self, x):
        dtypes.append(x.dtype)
        return normalise(self, x)

    monkeypatch.setattr(FineTuneModule, "normalise", recording)
    device = FineTunedClassifier(TinyNet(), **params).fit(X, y)
    # every batch reaching the network was uint8 pixels (training: 3 a epoch)
    assert len(dtypes) >= 2 * 3 and set(dtypes) == {torch.uint8}
    dtypes.clear()
    proba = device.predict_proba(X)
    assert set(dtypes) == {torch.uint8}
    dtypes.clear()
    host = FineTunedClassifier(TinyNet(), **params)
    host._device_normalisation = False  # float32 batches, normalised on the host
    host.fit(X, y)
    assert set(dtypes) == {torch.float32}
    np.testing.assert_allclose(proba, host.predict_proba(X), rtol=0, atol=1e-5)


def test_pixels_only_keeps_what_must_stay_on_the_host():
    from sktransfer.augment import image_augmentation
    from sktransfer.backbones import make_eval_transform
    from sktransfer.finetune._image import pixels_only

    config = {"input_size": (3, 32, 32), "mean": (0.5, 0.4, 0.3),
              "std": (0.2, 0.25, 0.3), "interpolation": "bilinear"}
    image = load_photo_patches(1, 48, random_state=0, classes=("brick",))[0][0]
    from PIL import Image

    image = Image.fromarray(image)
    full = make_eval_transform(config, 32)
    pixels = pixels_only(full, config)(image)
    assert pixels.dtype == torch.uint8 and pixels.shape == (3, 32, 32)
    mean = torch.tensor(config["mean"]).view(-1, 1, 1)
    std = torch.tensor(config["std"]).view(-1, 1, 1)
    torch.testing.assert_close((pixels.float() / 255 - mean) / std, full(image))
    # random erasing runs after the normalisation; a callable wraps the whole
    for augment in ("strong", lambda img: img):
        transform = image_augmentation(augment, config, 32)
        assert pixels_only(transform, config) is transform
    # another mean than the weights': left as it is
    assert pixels_only(full, {**config, "mean": (0.0, 0.0, 0.0)}) is full


def test_pickles_made_before_the_trainer_split_still_load():
    """Before the split, a fitted net's collate and early-stopping sink were
    ``sktransfer.finetune._core._LabeledCollate`` / ``_silent``: a pickle
    naming them there loads and predicts the same."""
    import pickle

    X, y = _photos()
    clf = FineTunedClassifier(TinyNet(), max_epochs=1, image_size=32, batch_size=4,
                              freeze_depth=1, early_stopping=True,
                              random_state=0).fit(X, y)
    blob = pickle.dumps(clf, protocol=2)  # protocol 2: module and name as text
    old = blob.replace(b"sktransfer.finetune._trainer", b"sktransfer.finetune._core")
    assert old != blob and b"sktransfer.finetune._trainer" not in old
    loaded = pickle.loads(old)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

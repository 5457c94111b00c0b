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
def steps(monkeypatch):
    """Counts ``LossMeter.add`` calls: training steps run on the engine."""
    seen = {"steps": 0}
    add = LossMeter.add

    def counting(self, loss, n=1):
        seen["steps"] += 1
        return add(self, loss, n)

    monkeypatch.setattr(LossMeter, "add", counting)
    return seen


def test_fine_tuner_and_few_shot_train_on_the_engine(steps, tiny_bert):
    X, y = load_photo_patches(4, 32, random_state=0, classes=("brick", "coffee"))
    clf = FineTunedClassifier(TinyNet(), max_epochs=2, image_size=32, batch_size=4,
                              freeze_depth=1, random_state=0).fit(X, y)
    assert steps["steps"] == 2 * 2  # 8 images in batches of 4, two epochs
    # the history is skorch's: every batch's loss, the epoch's weighted mean
    for epoch in clf.history_:
        losses = [batch["train_loss"] for batch in epoch["batches"]]
        assert len(losses) == 2 and all(np.isfinite(losses))
        assert epoch["train_loss"] == pytest.approx(np.mean(losses))
    steps["steps"] = 0
    few = FewShotTextClassifier(f"hf/{tiny_bert}", n_pairs=60, batch_size=4,
                                max_epochs=2, random_state=0).fit(TEXTS, LABELS)
    assert steps["steps"] > 0 and len(few.loss_curve_) == 2
    assert all(np.isfinite(few.loss_curve_))


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
                              random_state=0).fit(X, y)
    batches = clf.history_[-1, "batches"]
    assert all(np.isfinite(b["adapt_loss"]) and np.isfinite(b["train_loss"])
               for b in batches)


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

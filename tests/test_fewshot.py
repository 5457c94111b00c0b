"""FewShotTextClassifier and ZeroShotTextClassifier (sktransfer.fewshot).

Most tests run a random 2-layer BERT (``tiny_bert``); the ``slow`` ones check
on real chatterbot texts, with the bundled all-MiniLM-L6-v2, that the class
names and the contrastive tuning do what they are for.
"""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsClassifier

import sktransfer
from sktransfer import FewShotTextClassifier, ZeroShotTextClassifier
from sktransfer.exceptions import (
    InvalidInputError,
    InvalidParameterError,
    ParameterError,
)
from sktransfer.fewshot._contrastive import PairBatches, pair_loss, pairs_per_batch
from sktransfer.fewshot._labels import labels_are_words

TEXTS = ["the striker scored a goal", "a great match in the league",
         "the referee gave a red card", "the team won the cup",
         "simmer the sauce slowly", "bake the bread for an hour",
         "chop the onions finely", "season the soup with salt"]
LABELS = ["sports"] * 4 + ["cooking"] * 4


@pytest.fixture
def tiny(tiny_bert, one_torch_thread):
    return f"hf/{tiny_bert}"


# --- pairs sampled on the fly -------------------------------------------------------

def test_pair_batches_take_two_texts_of_distinct_classes():
    groups = [np.arange(0, 5), np.arange(5, 6), np.arange(6, 10), np.arange(10, 12)]
    sampler = PairBatches(groups, batch_size=6, rng=np.random.default_rng(0))
    seen_single = 0
    for _ in range(50):
        rows, owners = sampler.draw()
        assert len(rows) == 6 and len(set(owners.tolist())) == 3
        for row, owner in zip(rows, owners, strict=True):
            assert row in groups[owner]
        seen_single += int((rows == 5).sum() == 2)  # the one-text class: twice
    assert seen_single > 0
    assert pairs_per_batch(16, 12) == 120 and pairs_per_batch(16, 2) == 120
    two = PairBatches([np.arange(3), np.arange(3, 20)], 16, np.random.default_rng(0))
    rows, owners = two.draw()  # 8 of each class; the 3-text class repeats
    assert set(rows[owners == 0]) == {0, 1, 2} and len(set(rows[owners == 1])) == 8


def test_pair_loss_is_zero_for_separated_classes_and_grows_when_mixed():
    owners = torch.tensor([0, 0, 1, 1])
    separated = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])
    mixed = torch.tensor([[1.0, 0], [0, 1], [1, 0], [0, 1]])
    assert float(pair_loss(separated, owners)) == pytest.approx(0.0, abs=1e-6)
    assert float(pair_loss(mixed, owners)) == pytest.approx(1.0 + 0.5)


# --- bad input ------------------------------------------------------------------------

@pytest.mark.parametrize("labels, match", [
    (["sports", ""], "empty label name ''"),
    (["sports", "  "], "empty label name '  '"),
    (["Sports", "sports "], "'sports ' and 'Sports'"),
    (["tech_support", "tech support"], "'tech_support' and 'tech support'"),
])
def test_fewshot_refuses_bad_label_names(labels, match):
    y = [labels[0], labels[1]] * 2
    with pytest.raises(InvalidInputError, match=match):
        FewShotTextClassifier("no-model-needed").fit(TEXTS[:4], y)


def test_use_label_names_true_with_integer_ids_names_the_label():
    with pytest.raises(ParameterError, match="label 0 is a number"):
        FewShotTextClassifier(use_label_names=True).fit(TEXTS[:4], [0, 1, 0, 1])
    with pytest.raises(ParameterError, match="label '7' is a number"):
        FewShotTextClassifier(use_label_names=True).fit(TEXTS[:4], ["7", "x"] * 2)


def test_label_names_auto_means_words_only():
    assert labels_are_words(["sports", "cooking"])
    assert not labels_are_words(["1", "2"])
    assert not labels_are_words([0, 1])
    assert not labels_are_words(["sports", "2.5"])


@pytest.mark.parametrize("labels, match", [
    (["a", "b", "a"], "label 'a' twice"),
    (["a", ""], "empty label name"),
    ([1, 2], "label 1 is a number"),
    ({"a": "about a", "b": " "}, r"labels\['b'\]"),
    ([], "labels is empty: a classifier needs at least 2 classes"),
    (["sports"], r"labels names a single class \('sports'\)"),
    ({"sports": "about sports"}, "single class"),
    ({1: "about one", "a": "about a"}, r"mixes label types \(number 1 and str 'a'\)"),
])
def test_zeroshot_refuses_bad_labels(labels, match):
    with pytest.raises(ParameterError, match=match):
        ZeroShotTextClassifier(labels).fit()
    with pytest.raises(ValueError, match="'labels' parameter"):
        ZeroShotTextClassifier("a,b").fit()



def test_zeroshot_needs_labels_or_examples():
    with pytest.raises(ParameterError, match="labels=None and no y"):
        ZeroShotTextClassifier().fit()
    with pytest.raises(InvalidInputError, match="both the texts and their labels"):
        ZeroShotTextClassifier(["a", "b"]).fit(TEXTS)
    with pytest.raises(ParameterError, match="exactly one"):
        ZeroShotTextClassifier(["a", "b"], template="About it.").fit()
    with pytest.raises(InvalidInputError, match="y names a single class"):
        ZeroShotTextClassifier().fit(TEXTS[:2], ["sports", "sports"])


# --- the estimator on a tiny random BERT ---------------------------------------------

def _separation(clf, X, y):
    """Mean cosine within classes minus between classes."""
    e = clf.transform(X)
    same = np.equal.outer(y, y)
    cos = e @ e.T
    off = ~np.eye(len(y), dtype=bool)
    return cos[same & off].mean() - cos[~same].mean()


def test_contrastive_tuning_pulls_classes_apart(tiny):
    y = np.array(LABELS)
    frozen = FewShotTextClassifier(tiny, n_pairs=0, random_state=0).fit(TEXTS, y)
    tuned = FewShotTextClassifier(tiny, n_pairs=1500, lr=1e-3,
                                  random_state=0).fit(TEXTS, y)
    assert frozen.loss_curve_ == [] and len(tuned.loss_curve_) == 1
    assert _separation(tuned, TEXTS, y) > _separation(frozen, TEXTS, y) + 0.2
    assert tuned.use_label_names_ and tuned.score(TEXTS, y) == 1.0
    proba = tuned.predict_proba(TEXTS)
    assert proba.shape == (8, 2) and np.allclose(proba.sum(1), 1)
    assert list(tuned.classes_) == ["cooking", "sports"]


def test_a_class_with_a_single_text_works(tiny):
    X = TEXTS[:5]
    y = np.array([0, 0, 0, 0, 1])  # ids: no label names; class 1 pairs with itself
    frozen = FewShotTextClassifier(tiny, n_pairs=0).fit(X, y)
    clf = FewShotTextClassifier(tiny, n_pairs=300, lr=1e-3, random_state=0)
    clf.fit(X, y)
    assert not clf.use_label_names_ and clf.classes_.tolist() == [0, 1]
    assert _separation(clf, X, y) > _separation(frozen, X, y) + 0.1


def test_freeze_depth_all_leaves_the_encoder_as_it_was(tiny):
    base = FewShotTextClassifier(tiny, n_pairs=0).fit(TEXTS, LABELS)
    frozen = FewShotTextClassifier(tiny, freeze_depth="all", lr=1e-2,
                                   n_pairs=500).fit(TEXTS, LABELS)
    np.testing.assert_allclose(frozen.transform(TEXTS), base.transform(TEXTS),
                               atol=1e-6)
    assert frozen.n_frozen_ == 3  # embeddings + 2 layers


def test_head_params_are_nested_and_grid_searchable(tiny):
    clf = FewShotTextClassifier(tiny)
    with pytest.raises(InvalidParameterError, match="head__C .*head=None"):
        clf.set_params(head__C=0.5)
    assert clf.head is None  # fitted state belongs in fit: head_
    clf.set_params(head=LogisticRegression(max_iter=2000), head__C=0.5)
    assert isinstance(clf.head, LogisticRegression) and clf.head.C == 0.5
    assert clone(clf).get_params()["head__C"] == 0.5
    grid = GridSearchCV(
        FewShotTextClassifier(tiny, head=LogisticRegression(max_iter=2000),
                              random_state=0, lr=1e-3),
        {"n_pairs": [0, 100], "lr": [1e-3], "freeze_depth": [2],
         "head__C": [0.1, 10.0]},
        cv=2)
    grid.fit(TEXTS, LABELS)
    assert set(grid.best_params_) == {"n_pairs", "lr", "head__C", "freeze_depth"}
    assert grid.score(TEXTS, LABELS) >= 0.75


def test_any_classifier_is_a_head(tiny):
    clf = FewShotTextClassifier(tiny, head=KNeighborsClassifier(1), n_pairs=200,
                                lr=1e-3, random_state=0).fit(TEXTS, LABELS)
    assert isinstance(clf.head_, KNeighborsClassifier)
    assert clf.predict(TEXTS).tolist() == LABELS  # 1-NN on its own texts


def test_fewshot_saves_without_pickle(tiny, tmp_path):
    clf = FewShotTextClassifier(tiny, n_pairs=200, lr=1e-3,
                                random_state=0).fit(TEXTS, LABELS)
    sktransfer.save(clf, tmp_path / "m.skt")
    back = sktransfer.load(tmp_path / "m.skt")
    np.testing.assert_allclose(back.predict_proba(TEXTS), clf.predict_proba(TEXTS),
                               atol=1e-5)
    assert back.get_params()["n_pairs"] == 200


def test_zeroshot_blends_descriptions_with_examples(tiny, tmp_path):
    only = ZeroShotTextClassifier(["sports", "cooking"], model=tiny).fit()
    assert only.class_counts_.tolist() == [0, 0]
    means = ZeroShotTextClassifier(["sports", "cooking"], model=tiny,
                                   description_weight=0).fit(TEXTS, LABELS)
    e = means.embedder_.transform(TEXTS)
    mean = e[:4].mean(0) / np.linalg.norm(e[:4].mean(0))
    np.testing.assert_allclose(means.prototypes_[1], mean, atol=1e-5)  # "sports"
    blended = ZeroShotTextClassifier({"sports": "a match", "cooking": "a recipe"},
                                     model=tiny).fit(TEXTS, LABELS)
    assert blended.descriptions_ == ["a recipe", "a match"]
    d = blended.embedder_.transform(["a match"])[0]
    expected = 2 * d + e[:4].sum(0)
    np.testing.assert_allclose(blended.prototypes_[1],
                               expected / np.linalg.norm(expected), atol=1e-5)
    with pytest.raises(InvalidInputError, match="label 'cooking', which is not"):
        ZeroShotTextClassifier(["sports", "news"], model=tiny).fit(TEXTS, LABELS)
    sktransfer.save(blended, tmp_path / "z.skt")
    back = sktransfer.load(tmp_path / "z.skt")
    np.testing.assert_allclose(back.predict_proba(TEXTS),
                               blended.predict_proba(TEXTS), atol=1e-6)


# --- real model, real texts ---------------------------------------------------------

def _chatterbot(topics, shots, seed=0):
    from sktransfer.datasets import load_chatterbot_topics

    X, y = load_chatterbot_topics(topics=topics)
    X, y = np.asarray(X, dtype=object), np.asarray(y)
    rng = np.random.default_rng(seed)
    train = np.concatenate([rng.choice(np.flatnonzero(y == t), shots, replace=False)
                            for t in topics])
    test = np.concatenate([rng.choice(np.setdiff1d(np.flatnonzero(y == t), train),
                                      25, replace=False) for t in topics])
    return list(X[train]), y[train], list(X[test]), y[test]


TOPICS = ["coding", "emotion", "food", "sports"]


@pytest.mark.slow
def test_zeroshot_on_topic_names_is_far_above_chance(one_torch_thread):
    _, _, X, y = _chatterbot(TOPICS, 1)
    clf = ZeroShotTextClassifier(TOPICS).fit()
    assert clf.score(X, y) >= 3 / len(TOPICS)  # 3x chance


@pytest.mark.slow
def test_fewshot_with_names_beats_frozen_embeddings_at_two_a_class(
        one_torch_thread):
    from sklearn.pipeline import make_pipeline

    from sktransfer import PretrainedTextEmbeddings

    X, y, X_test, y_test = _chatterbot(TOPICS, 2)
    frozen = make_pipeline(PretrainedTextEmbeddings(),
                           LogisticRegression(max_iter=2000)).fit(X, y)
    few = FewShotTextClassifier(n_pairs=600, random_state=0).fit(X, y)
    assert few.score(X_test, y_test) >= frozen.score(X_test, y_test) + 0.05


# --- command line -------------------------------------------------------------------

def test_cli_zero_shot_from_label_names_alone(tiny, tmp_path, capsys):
    import pandas as pd

    from sktransfer.cli import main

    model = tmp_path / "topics.skt"
    assert main(["fit", "--zero-shot", "--labels", "sports, cooking", "--model",
                 tiny, "--out", str(model)]) == 0
    assert "2 classes: sports, cooking" in capsys.readouterr().out
    pd.DataFrame({"text": TEXTS}).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "pred.csv"
    assert main(["predict", str(model), str(tmp_path / "new.csv"), "--column",
                 "text", "--output", str(out)]) == 0
    expected = sktransfer.load(model).predict(TEXTS)
    assert pd.read_csv(out)["prediction"].tolist() == expected.tolist()
    assert main(["fit", "--out", str(model)]) == 2
    assert "needs DATA" in capsys.readouterr().err
    assert main(["fit", "--zero-shot", "--labels", "sports", "--out",
                 str(model)]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_cli_few_shot_fit_and_report(tiny, tmp_path, capsys):
    import pandas as pd

    from sktransfer.cli import main

    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": TEXTS, "label": LABELS}).to_csv(data, index=False)
    model, report = tmp_path / "m.skt", tmp_path / "report"
    assert main(["fit", str(data), "--column", "text", "--target", "label",
                 "--few-shot", "--model", tiny, "--cv", "2", "--out", str(model),
                 "--report", str(report)]) == 0
    assert isinstance(sktransfer.load(model), FewShotTextClassifier)
    page = next(report.glob("*.html")).read_text()
    assert "<h2>Metrics" in page and "predicted: " in page


# --- scikit-learn conventions (issue 33) ---------------------------------------------


@pytest.mark.parametrize("estimator", [
    FewShotTextClassifier(), FewShotTextClassifier(head=LogisticRegression(C=2.0)),
    ZeroShotTextClassifier(), ZeroShotTextClassifier(labels={"a": "about a"}),
], ids=repr)
def test_the_data_free_sklearn_checks(estimator, data_free_checks):
    from sklearn.utils import estimator_checks as checks

    data_free_checks(estimator)
    checks.check_parameters_default_constructible(type(estimator).__name__,
                                                  estimator)


def test_set_params_never_fills_head_and_fit_leaves_it_alone(tiny):
    clf = FewShotTextClassifier(tiny, n_pairs=0)
    clf.set_params(n_pairs=0, lr=1e-3)
    clf.fit(TEXTS, LABELS)
    assert clf.head is None and isinstance(clf.head_, LogisticRegression)
    assert clone(clf).get_params()["head"] is None


def test_fewshot_transform_names_its_features_and_sets_output(tiny):
    clf = FewShotTextClassifier(tiny, n_pairs=0).fit(TEXTS, LABELS)
    names = clf.get_feature_names_out()
    assert names.tolist() == [f"fewshottextclassifier{i}" for i in range(32)]
    frame = clf.set_output(transform="pandas").transform(TEXTS[:2])
    assert frame.columns.tolist() == names.tolist()
    np.testing.assert_allclose(frame.to_numpy(), clf.set_output(
        transform="default").transform(TEXTS[:2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X has feature names" from the head
        labels = clf.set_output(transform="pandas").predict(TEXTS)
    assert labels.tolist() == clf.set_output(transform="default").predict(
        TEXTS).tolist()

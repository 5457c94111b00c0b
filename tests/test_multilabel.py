"""Multi-label (tags): y coercion, per-label thresholds, the fine-tuners."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import f1_score
from test_finetune import TinyNet

import sktransfer
from sktransfer._utils.multilabel import (
    best_thresholds,
    decide,
    encode_multilabel,
    is_multilabel,
    to_indicator,
)
from sktransfer.datasets import load_chatterbot_tags, load_photo_mosaics
from sktransfer.exceptions import InvalidInputError
from sktransfer.finetune import FineTunedClassifier, FineTunedTextClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PHOTOS = ("brick", "grass", "moon", "coffee")


@pytest.fixture(scope="module")
def mosaics():
    X, tags = load_photo_mosaics(80, 32, classes=PHOTOS)
    X_test, tags_test = load_photo_mosaics(60, 32, split="test", classes=PHOTOS,
                                           random_state=1)
    return X, tags, X_test, tags_test


def tiny(**params):
    defaults = dict(model=TinyNet(), max_epochs=3, image_size=32, batch_size=16,
                    lr=1e-2, random_state=0)
    return FineTunedClassifier(**{**defaults, **params})


# --- y coercion ---------------------------------------------------------------

def test_label_lists_indicator_and_dataframe_agree():
    lists = [["b", "a"], ["a"], [], ["b"]]
    indicator, classes = encode_multilabel(lists)
    assert classes.tolist() == ["a", "b"]
    np.testing.assert_array_equal(indicator, [[1, 1], [1, 0], [0, 0], [0, 1]])
    frame = pd.DataFrame(indicator, columns=["a", "b"])
    same, names = encode_multilabel(frame)
    np.testing.assert_array_equal(same, indicator)
    assert names.tolist() == ["a", "b"]
    assert encode_multilabel(indicator.astype(bool))[1].tolist() == [0, 1]
    assert is_multilabel(lists) and is_multilabel(indicator)
    assert not is_multilabel(["a", "b"]) and not is_multilabel(np.zeros((3, 1)))


@pytest.mark.parametrize(("y", "message"), [
    (np.array([[0, 1], [2, 0], [1, 1]]), "row 1, column 0 is 2"),
    (np.array([[0, 1], [0.5, 0], [1, 1]]), "row 1, column 0 is 0.5"),
    (np.array([["0", "1"], ["1", "0"]]), "row 0, column 0 is '0'"),
    (np.array([[0, 1], [0, 1], [1, 0]])[:, [0, 1]] * [0, 1], "Label 0 .* no positive"),
    (np.array([[1, 1], [1, 0]]), "Label 0 .* on every row"),
    ([["a"], "b"], "row 1 is 'b'"),
    ([["a"], [None]], "row 1 holds a missing label"),
    ([[], []], "no label at all"),
])
def test_bad_multilabel_y_names_the_problem(y, message):
    with pytest.raises(InvalidInputError, match=message):
        encode_multilabel(y)


def test_unknown_label_name_is_named_with_its_row():
    with pytest.raises(InvalidInputError, match="row 1 has the unknown label 'z'"):
        to_indicator([["a"], ["a", "z"]], np.array(["a", "b"]))
    with pytest.raises(InvalidInputError, match="3 columns but the model knows 2"):
        to_indicator(np.zeros((2, 3)), np.array(["a", "b"]))


def test_best_thresholds_maximise_f1_and_sit_between_scores():
    Y = np.array([[1], [1], [0], [1], [0], [0]])
    scores = np.array([[0.9], [0.4], [0.35], [0.3], [0.2], [0.1]])
    (t,) = best_thresholds(Y, scores)
    assert 0.2 < t < 0.3  # calls the three positives, F1 = 6 / 7
    assert f1_score(Y[:, 0], decide(scores, [t])[:, 0]) == pytest.approx(6 / 7)
    # no positive (or no negative) held out: the default
    assert best_thresholds(np.zeros((3, 1)), np.ones((3, 1)))[0] == 0.5


# --- fine-tuning --------------------------------------------------------------

def _f1(y_true, clf, X, thresholds=None):
    Y = to_indicator(y_true, clf.classes_)
    proba = clf.predict_proba(X)
    predicted = clf.predict(X) if thresholds is None else decide(proba, thresholds)
    return f1_score(Y, predicted, average="micro")


def test_finetuned_tuned_thresholds_beat_one_half_on_held_out_rows(mosaics):
    X, tags, X_test, tags_test = mosaics
    clf = tiny().fit(X, tags)
    assert clf.classes_.tolist() == sorted(PHOTOS)
    assert clf.predict_proba(X_test).shape == (60, 4)
    predicted = clf.predict(X_test)
    assert predicted.shape == (60, 4) and set(np.unique(predicted)) <= {0, 1}
    assert clf.thresholds_.shape == (4,)
    assert ((clf.thresholds_ > 0) & (clf.thresholds_ < 1)).all()
    # "auto" held validation_fraction of the rows out to choose the thresholds
    assert len(clf.validation_indices_) == 8
    tuned, half = _f1(tags_test, clf, X_test), _f1(tags_test, clf, X_test, 0.5)
    assert tuned > half + 0.05
    assert clf.score(X_test, tags_test) == pytest.approx(
        np.mean((predicted == to_indicator(tags_test, clf.classes_)).all(axis=1)))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_head_only_is_a_one_vs_rest_probe_with_out_of_fold_thresholds(mosaics):
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    X, tags, X_test, _ = mosaics
    clf = tiny(freeze_depth="all").fit(X, tags)
    assert clf.validation_indices_ is None  # every row trains; out-of-fold cuts
    assert not np.allclose(clf.thresholds_, 0.5)
    assert len(clf.history_) == 0  # the probe is the fit
    features = clf._features(clf.net_.module_, list(X), torch.device("cpu")).numpy()
    Y = to_indicator(tags, clf.classes_)
    # one independent tuned logistic regression per label, not a softmax
    assert not np.allclose(clf.predict_proba(X[:5]).sum(axis=1), 1.0)
    for j in range(len(clf.classes_)):
        cv = StratifiedKFold(5, shuffle=True, random_state=0)
        C = LogisticRegressionCV(cv=cv, max_iter=1000, scoring="accuracy").fit(
            features, Y[:, j]).C_[0]
        alone = LogisticRegression(C=C, max_iter=1000).fit(features, Y[:, j])
        np.testing.assert_allclose(clf.predict_proba(X[:5])[:, j],
                                   alone.predict_proba(features[:5])[:, 1],
                                   atol=2e-3)  # float32 features


def test_fixed_threshold_trains_on_every_row(mosaics):
    X, tags, X_test, _ = mosaics
    clf = tiny(threshold=0.3).fit(X, tags)
    assert clf.validation_indices_ is None
    np.testing.assert_array_equal(clf.thresholds_, [0.3] * 4)
    np.testing.assert_array_equal(clf.predict(X_test),
                                  (clf.predict_proba(X_test) >= 0.3).astype(int))


def test_indicator_y_pickle_clone_and_refit_single_label(mosaics):
    X, tags, X_test, _ = mosaics
    Y = pd.DataFrame(to_indicator(tags, np.array(sorted(PHOTOS))),
                     columns=sorted(PHOTOS))
    clf = tiny(max_epochs=1).fit(X, Y)
    assert clf.classes_.tolist() == sorted(PHOTOS)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict(X_test), clf.predict(X_test))
    assert "thresholds_" not in clone(clf).__dict__
    single = clf.fit(X, [t[0] for t in tags])  # the same instance, one label a row
    assert "thresholds_" not in single.__dict__
    assert single.predict(X_test).ndim == 1
    np.testing.assert_allclose(single.predict_proba(X_test).sum(axis=1), 1, 1e-5)


# --- what a multi-label fine-tune starts from --------------------------------------

CONFIG = {"input_size": (3, 32, 32), "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
          "interpolation": "bilinear", "crop_pct": 0.875}
COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0.0]])


def _smallest_tile_share(image) -> float:
    """The smallest share of pixels of the four tile colours (nearest colour)."""
    pixels = (image.permute(1, 2, 0).numpy().reshape(-1, 3) * 0.5) + 0.5
    nearest = np.argmin(((pixels[:, None] - COLOURS[None]) ** 2).sum(-1), axis=1)
    return float(np.bincount(nearest, minlength=5)[:4].min() / len(nearest))


def test_multilabel_default_augmentation_keeps_every_tile():
    from PIL import Image

    from sktransfer.augment import image_augmentation

    mosaic = np.zeros((64, 64, 3), np.uint8)  # red, green / blue, white tiles
    for t, colour in enumerate(COLOURS[:4]):
        row, col = divmod(t, 2)
        mosaic[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32] = colour * 255
    image = Image.fromarray(mosaic)
    torch.manual_seed(0)
    framed = image_augmentation("default", CONFIG, keep_frame=True)
    cropped = image_augmentation("default", CONFIG)
    kept = [_smallest_tile_share(framed(image)) for _ in range(200)]
    lost = [_smallest_tile_share(cropped(image)) for _ in range(200)]
    # a shift of at most 1 - crop_pct: every tile keeps >= 0.75 * 0.75 of its
    # quarter (less what the rotation's corners take): >= 14% of the pixels
    assert min(kept) > 0.14
    # the random resized crop (scale 0.5-1) shrinks a tile to < 10% of them
    # (7.3% at worst in 2,000 draws: it never cuts a tile out entirely)
    assert min(lost) < 0.1


def test_multilabel_fit_keeps_the_frame_and_single_label_crops(mosaics):
    X, tags, _, _ = mosaics

    def steps(clf):
        dataset = clf._make_dataset(list(X[:2]), clf.backbone_, train=True)
        return [type(step).__name__ for step in dataset.transform.transforms]

    clf = tiny(max_epochs=0).fit(X, tags)
    assert "RandomCrop" in steps(clf) and "RandomResizedCrop" not in steps(clf)
    clf.fit(X, [t[0] for t in tags])  # one label a row: the preset as documented
    assert "RandomResizedCrop" in steps(clf) and "RandomCrop" not in steps(clf)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_multilabel_head_starts_from_the_one_vs_rest_probe(mosaics):
    from sktransfer.finetune._multilabel import multilabel_probe

    X, tags, _, _ = mosaics
    clf = tiny(max_epochs=0).fit(X, tags)  # no epoch: the head as it starts
    train = np.setdiff1d(np.arange(len(X)), clf.validation_indices_)
    features = clf._features(clf.net_.module_, [X[i] for i in train],
                             torch.device("cpu")).numpy().astype(np.float64)
    Y = to_indicator(tags, clf.classes_)[train]
    coef, bias, decay, _ = multilabel_probe(features, Y)
    head = clf.net_.module_.head
    np.testing.assert_allclose(head.weight.detach().numpy(), coef, atol=1e-5)
    np.testing.assert_allclose(head.bias.detach().numpy(), bias, atol=1e-5)
    assert clf.head_weight_decay_ == pytest.approx(decay)
    # then the epochs fine-tune the network from there
    trained = tiny(max_epochs=1).fit(X, tags).net_.module_.head.weight.detach()
    assert not np.allclose(trained.numpy(), coef, atol=1e-3)


def _norms(module):
    return [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]


def test_multilabel_fine_tune_keeps_the_pretrained_norm_statistics(mosaics):
    X, tags, _, _ = mosaics
    pretrained = _norms(TinyNet())
    clf = tiny(max_epochs=2).fit(X, tags)
    tuned = _norms(clf.net_.module_.encoder)
    assert len(tuned) == len(pretrained) == 4
    clf.net_.module_.train()  # what skorch calls before each training batch
    assert not any(norm.training for norm in tuned)
    for norm, start in zip(tuned, pretrained, strict=True):
        # the statistics the probe's features were computed with ...
        torch.testing.assert_close(norm.running_mean, start.running_mean)
        torch.testing.assert_close(norm.running_var, start.running_var)
    # ... while the weights, the norms' affine ones included, trained
    assert not all(torch.equal(n.weight, s.weight)
                   for n, s in zip(tuned, pretrained, strict=True))
    single = tiny(max_epochs=2).fit(X, [t[0] for t in tags])  # as before
    moved = _norms(single.net_.module_.encoder)
    assert not torch.allclose(moved[-1].running_mean, pretrained[-1].running_mean)


@pytest.mark.parametrize("estimator", [
    FineTunedClassifier(threshold=0.3),
    FineTunedTextClassifier(threshold=0.3, freeze_depth="all"),
], ids=repr)
def test_multilabel_settings_pass_the_data_free_sklearn_checks(estimator,
                                                               data_free_checks):
    data_free_checks(estimator)


def test_multilabel_errors(mosaics):
    X, tags, _, _ = mosaics
    with pytest.raises(InvalidInputError, match="domain adaptation"):
        tiny(adapt="coral").fit(X, tags)
    with pytest.raises(InvalidInputError, match="no positive row"):
        tiny().fit(X[:3], np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]]))
    with pytest.raises(ValueError, match="threshold"):
        tiny(threshold=1.5).fit(X, tags)
    clf = tiny(max_epochs=1, freeze_depth="all").fit(X, tags)
    with pytest.raises(InvalidInputError, match="unknown label 'cat'"):
        clf.score(X[:2], [["brick"], ["cat"]])


def test_text_multilabel_save_load_round_trip(tiny_bert, tmp_path):
    texts, tags = load_chatterbot_tags(60, topics=["ai", "emotion", "trivia"])
    clf = FineTunedTextClassifier(f"hf/{tiny_bert}", freeze_depth=-1, max_epochs=1,
                                  batch_size=16, max_length=32,
                                  random_state=0).fit(texts, tags)
    assert clf.classes_.tolist() == ["ai", "emotion", "trivia"]
    path = tmp_path / "tags.skt"
    sktransfer.save(clf, path)
    loaded = sktransfer.load(path)
    np.testing.assert_array_equal(loaded.thresholds_, clf.thresholds_)
    np.testing.assert_array_equal(loaded.predict_proba(texts[:10]),
                                  clf.predict_proba(texts[:10]))
    np.testing.assert_array_equal(loaded.predict(texts[:10]), clf.predict(texts[:10]))


# --- label audit ----------------------------------------------------------------

def _tile_colours(X):
    """Mean and spread of each colour in each of a mosaic's four tiles."""
    X = np.asarray(X, dtype=np.float64) / 255
    h = X.shape[1] // 2
    tiles = [X[:, r * h:(r + 1) * h, c * h:(c + 1) * h] for r in (0, 1) for c in (0, 1)]
    return np.hstack([np.hstack([t.mean((1, 2)), t.std((1, 2))]) for t in tiles])


def test_multilabel_label_audit_finds_planted_flips_like_cleanlab():
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    from sktransfer.audit import find_label_issues

    X, tags = load_photo_mosaics(200, 32)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(tags), 20, replace=False)
    noisy = [list(row) for row in tags]
    for i in flipped:  # drop a true tag, or add a wrong one
        extra = [c for c in ("brick", "grass", "moon") if c not in noisy[i]]
        noisy[i] = noisy[i][1:] if len(noisy[i]) > 1 or not extra else (
            noisy[i] + extra[:1])
    estimator = make_pipeline(FunctionTransformer(_tile_colours), StandardScaler(),
                              OneVsRestClassifier(LogisticRegression(max_iter=1000)))
    ours = find_label_issues(estimator, X, noisy)
    theirs = find_label_issues(estimator, X, noisy, method="cleanlab")
    for table in (ours, theirs):
        found = set(table.index[table.is_issue])
        assert len(found & set(flipped)) >= 10  # measured 12 and 13 of 20
        assert table["quality"].is_monotonic_increasing
    flagged = ours[ours.is_issue]
    assert all(set(doubt) <= set(PHOTOS) | {"chelsea", "astronaut", "gravel",
                                            "immunohistochemistry"}
               for doubt in flagged["in_doubt"]) and all(map(len, flagged.in_doubt))
    assert ours.loc[flipped[0], "label"] == sorted(noisy[flipped[0]])
    both = set(ours.index[ours.is_issue]) & set(theirs.index[theirs.is_issue])
    either = set(ours.index[ours.is_issue]) | set(theirs.index[theirs.is_issue])
    assert len(both) / len(either) > 0.6


def test_suggest_labels_for_multilabel_models(mosaics):
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    from sktransfer.active import suggest_labels

    X, tags, X_test, _ = mosaics
    clf = tiny(freeze_depth="all").fit(X, tags)
    distance = np.abs(clf.predict_proba(X_test) - clf.thresholds_).min(axis=1)
    picked = suggest_labels(clf, X_test, 5, strategy="margin")
    np.testing.assert_array_equal(picked, np.argsort(distance, kind="stable")[:5])
    assert len(set(suggest_labels(clf, X_test, 5))) == 5  # "auto": diverse
    features = _tile_colours(X)
    ovr = OneVsRestClassifier(LogisticRegression(max_iter=1000)).fit(
        features, to_indicator(tags, clf.classes_))
    proba = ovr.predict_proba(_tile_colours(X_test))
    entropy = -(proba * np.log(proba) + (1 - proba) * np.log(1 - proba)).sum(1)
    np.testing.assert_array_equal(
        suggest_labels(ovr, _tile_colours(X_test), 3, strategy="entropy"),
        np.argsort(-entropy, kind="stable")[:3])
    np.testing.assert_array_equal(
        suggest_labels(ovr, _tile_colours(X_test), 3, strategy="margin"),
        np.argsort(np.abs(proba - 0.5).min(axis=1), kind="stable")[:3])


@pytest.mark.slow
def test_export_of_a_one_vs_rest_pipeline_gives_the_label_matrix(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    import onnxruntime as ort
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline

    from sktransfer import PretrainedImageFeatures

    X, tags = load_photo_mosaics(40, 64)
    X_test, _ = load_photo_mosaics(20, 64, split="test", random_state=1)
    Y, _ = encode_multilabel(tags)
    pipe = make_pipeline(PretrainedImageFeatures(),
                         OneVsRestClassifier(LogisticRegression(max_iter=1000)))
    path = sktransfer.export(pipe.fit(X, Y), tmp_path / "tags.onnx")
    session = ort.InferenceSession(path)
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    labels, probabilities = session.run(None, {"image": X_test})
    assert labels.shape == probabilities.shape == (20, Y.shape[1])
    # in-graph resize vs torchvision's: close, not identical
    assert np.mean(labels == pipe.predict(X_test)) >= 0.95
    assert np.abs(probabilities - pipe.predict_proba(X_test)).mean() < 0.02


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_export_of_a_head_only_finetuned_classifier_gives_its_decisions(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    import onnxruntime as ort

    from sktransfer.exceptions import ParameterError

    X, tags = load_photo_mosaics(60, 64)
    # 256 px: the eval resize (to 224 / 0.875 = 256) is the identity in the
    # graph and in torchvision, so the outputs must agree to float precision
    X_test, _ = load_photo_mosaics(30, 256, split="test", random_state=1)
    clf = FineTunedClassifier(freeze_depth="all", random_state=0).fit(X, tags)
    path = sktransfer.export(clf, tmp_path / "tags.onnx")
    session = ort.InferenceSession(path)
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    labels, probabilities = session.run(None, {"image": X_test})
    expected = clf.predict_proba(X_test)
    assert labels.shape == probabilities.shape == expected.shape
    assert labels.dtype == np.int64
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-4)
    # the label matrix: each label on where its probability reaches its threshold
    np.testing.assert_array_equal(labels, decide(probabilities, clf.thresholds_))
    assert 0 < labels.sum() < labels.size
    near = np.abs(expected - clf.thresholds_) < 1e-4  # float32 vs float64 cuts
    np.testing.assert_array_equal(labels[~near], clf.predict(X_test)[~near])
    with pytest.raises(ParameterError, match="freeze_depth='all'"):
        sktransfer.export(FineTunedClassifier(model=TinyNet(), image_size=32,
                                              max_epochs=0).fit(X, tags),
                          tmp_path / "full.onnx")

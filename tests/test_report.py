"""The fit report: content, self-containment, escaping, a real browser, the CLI.

Fast tests use cheap models (raw pixels or TF-IDF + a linear model) on real
photos and texts; the page is parsed (every embedded image must decode) and,
when Debian's ``chromium`` is installed, rendered headless.
"""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    mean_absolute_error,
    r2_score,
)
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from skorch.history import History

from sktransfer.datasets import load_chatterbot_topics, load_photo_patches
from sktransfer.evaluate import RawPixels
from sktransfer.report import write_report


class Page(HTMLParser):
    """Tags and attributes, the text of the page, and its tables (cell texts,
    unescaped, row by row, header row included)."""

    def __init__(self, html: str):
        super().__init__()
        self.tags, self.text, self.tables = [], [], []
        self._cell = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "table":
            self.tables.append({**dict(attrs), "rows": []})
        elif tag == "tr":
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, **attrs) -> list:
        """Rows of the tables with these attributes (e.g. ``id="metrics"``)."""
        found = [t for t in self.tables if all(t.get(k) == v for k, v in
                                               attrs.items())]
        return [row for t in found for row in t["rows"]]

    def images(self):
        return [attrs["src"] for tag, attrs in self.tags if tag == "img"]


def decoded_images(html: str) -> list:
    """Every <img>: a base64 data URI that PIL opens; returns the images."""
    images = []
    for src in Page(html).images():
        match = re.fullmatch(r"data:image/(png|jpeg);base64,([A-Za-z0-9+/=]+)", src)
        assert match, src[:80]
        image = Image.open(io.BytesIO(base64.b64decode(match.group(2), validate=True)))
        image.load()
        assert image.format.lower() == match.group(1)
        images.append(image)
    return images


def assert_self_contained(html: str):
    for tag, attrs in Page(html).tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not value or value.startswith("data:"), (tag, value)
    assert not re.search(r"https?://", html)


@pytest.fixture(scope="module")
def photo_report(tmp_path_factory):
    X, y = load_photo_patches(8, 32, random_state=0, classes=("brick", "gravel",
                                                             "coffee"))
    y = np.where(y == "coffee", "coffee <b>&amp; 'cup'", y)  # must be escaped
    model = make_pipeline(RawPixels(16), LogisticRegression(max_iter=500))
    folder = tmp_path_factory.mktemp("photos") / "model.report"
    path = write_report(model, X, y, folder, modality="image", cv=4)
    return path, path.read_text(encoding="utf-8"), y


def shown_examples(html: str) -> list:
    """``(row index, true, predicted, loss)`` of each example, in page order."""
    found = re.findall(r'<div>#(\d+)[^<]*</div>\n<div class="true">true: ([^<]*)'
                       r'</div>\n<div class="pred">predicted: ([^<]*)</div>\n'
                       r'<div class="loss">[^:<]*: ([^<]*)</div>', html)
    return [(int(i), unescape(t), unescape(p), float(loss))
            for i, t, p, loss in found]


def test_classification_numbers_are_sklearn_s(photo_report):
    """Per-class scores, confusion counts and the misclassified examples, checked
    against scikit-learn on the out-of-fold predictions of the report's folds."""
    _, html, y = photo_report
    X, _ = load_photo_patches(8, 32, random_state=0, classes=("brick", "gravel",
                                                             "coffee"))
    model = make_pipeline(RawPixels(16), LogisticRegression(max_iter=500))
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    proba = cross_val_predict(model, X, y, cv=folds, method="predict_proba")
    classes = np.unique(y)
    predicted = classes[proba.argmax(axis=1)]
    expected = classification_report(y, predicted, output_dict=True)
    page = Page(html)
    metrics = page.table(id="metrics")
    assert metrics[0] == ["class", "precision", "recall", "F1", "support"]
    assert len(metrics) == 1 + len(classes) + 2
    for name, *cells in metrics[1:]:
        row = expected[name]
        assert [float(c) for c in cells[:3]] == pytest.approx(
            [row["precision"], row["recall"], row["f1-score"]], abs=5e-4), name
        assert int(cells[3]) == row["support"]
    counts = page.table(**{"class": "figure-data"})
    assert counts[0] == ["true \\ predicted", *classes]
    assert [r[0] for r in counts[1:]] == list(classes)
    assert np.array([r[1:] for r in counts[1:]], dtype=int).tolist() == \
        confusion_matrix(y, predicted, labels=classes).tolist()
    wrong = np.flatnonzero(predicted != y)
    assert 0 < len(wrong) < len(y)
    examples = shown_examples(html)
    assert len(examples) == min(len(wrong), 24)
    loss = -np.log(proba[np.arange(len(y)), np.searchsorted(classes, y)])
    for index, true, shown, shown_loss in examples:
        assert true == y[index] != shown == predicted[index]
        assert shown_loss == pytest.approx(loss[index], rel=1e-3)
    losses = [e[3] for e in examples]
    assert losses == sorted(losses, reverse=True)
    assert {e[0] for e in examples} == set(wrong[np.argsort(-loss[wrong])][:24])


def test_classification_report_content(photo_report):
    path, html, y = photo_report
    assert path.name == "report.html" and path.parent.name == "model.report"
    page = Page(html)
    text = " ".join(page.text)
    for fragment in ("precision", "recall", "F1", "macro avg", "Confusion matrix",
                     "Held-out accuracy", "Misclassified examples"):
        assert fragment in text, fragment
    # one metrics row per class, with the support of each class
    rows = re.findall(r"<tr><td>([^<]*)</td>(?:<td>[^<]*</td>){3}<td>(\d+)</td>", html)
    assert {label: int(n) for label, n in rows[:3]} == {
        "brick": 8, "gravel": 8, "coffee &lt;b&gt;&amp;amp; &#39;cup&#39;": 8}
    images = decoded_images(html)
    figures = [i for i in images if i.format == "PNG"]
    thumbnails = [i for i in images if i.format == "JPEG"]
    assert len(figures) == 2  # confusion matrix, learning curve
    misclassified = int(re.search(r"misclassified</th><td>(\d+)", html).group(1))
    assert len(thumbnails) == min(misclassified, 24) > 0
    assert all(max(t.size) <= 128 for t in thumbnails)
    assert_self_contained(html)


def test_user_text_is_escaped(photo_report):
    _, html, _ = photo_report
    assert "coffee <b>" not in html
    assert "coffee &lt;b&gt;&amp;amp; &#39;cup&#39;" in html


@pytest.fixture(scope="module")
def text_regression_report(tmp_path_factory):
    texts, _ = load_chatterbot_topics(["ai", "coding"])
    texts = [t for t in texts if len(t) < 300][:60] + ["<script>alert(1)</script>"]
    X = pd.Series(texts, name="text")
    y = np.array([len(t.split()) for t in texts], dtype=float)
    model = make_pipeline(TfidfVectorizer(), Ridge(alpha=1.0))
    history = History()
    for loss in (1.0, 0.5, 0.4):
        history.new_epoch()
        history.record("train_loss", loss)
    fitted = Trained().fit(X, y)
    fitted.history_ = history
    folder = tmp_path_factory.mktemp("texts")
    path = write_report(model, X, y, folder, modality="text", cv=3, fitted=fitted)
    return path.read_text(encoding="utf-8"), texts, X, y, model


class Trained(BaseEstimator):
    """Stands for a fitted fine-tuned model: only its history is read."""

    def fit(self, X, y):
        self.n_features_in_ = 1
        return self


def test_regression_report_content(text_regression_report):
    html, texts, *_ = text_regression_report
    text = " ".join(Page(html).text)
    for fragment in ("R²", "MAE", "RMSE", "Predicted against true",
                     "Residuals against predicted", "Held-out R²",
                     "Training curve", "Largest errors"):
        assert fragment in text, fragment
    images = decoded_images(html)
    assert len(images) == 4 and all(i.format == "PNG" for i in images)
    examples = re.findall(r'<div class="text">(.*?)</div>', html, re.S)
    assert len(examples) == 24
    assert "<script>alert(1)</script>" not in html
    assert_self_contained(html)


def test_regression_numbers_are_sklearn_s(text_regression_report):
    html, _, X, y, model = text_regression_report
    predicted = cross_val_predict(model, X, y, cv=KFold(3, shuffle=True,
                                                        random_state=0))
    page = Page(html)
    (header, (name, r2, mae, rmse)) = page.table(id="metrics")
    assert header == ["output", "R²", "MAE", "RMSE"] and name == "target"
    assert float(r2) == pytest.approx(r2_score(y, predicted), abs=5e-4)
    assert float(mae) == pytest.approx(mean_absolute_error(y, predicted), rel=1e-3)
    assert float(rmse) == pytest.approx(np.sqrt(np.mean((y - predicted) ** 2)),
                                        rel=1e-3)
    examples = shown_examples(html)
    error = np.abs(y - predicted) / y.std()
    assert [e[0] for e in examples] == list(np.argsort(-error, kind="stable")[:24])
    for index, true, shown, loss in examples:
        assert float(true) == pytest.approx(y[index], rel=1e-3)
        assert float(shown) == pytest.approx(predicted[index], rel=1e-3)
        assert loss == pytest.approx(error[index], rel=1e-3)
    # the training curve of the fitted model, with its numbers
    assert page.table(**{"class": "figure-data"}) == [
        ["epoch", "train_loss"], ["1", "1"], ["2", "0.5"], ["3", "0.4"]]


def test_an_unfitted_model_is_not_taken_for_one_without_history(tmp_path):
    from sklearn.exceptions import NotFittedError

    from sktransfer.finetune import FineTunedRegressor

    X, _ = load_photo_patches(4, 16, classes=("brick", "coffee"))
    y = X.mean(axis=(1, 2, 3))
    with pytest.raises(NotFittedError):
        write_report(make_pipeline(RawPixels(8), Ridge()), X, y, tmp_path,
                     fitted=FineTunedRegressor("resnet18", weights=None))


def test_one_example_per_class_is_an_error(tmp_path):
    X, y = load_photo_patches(2, 16, classes=("brick", "coffee"))
    model = make_pipeline(RawPixels(8), LogisticRegression())
    with pytest.raises(ValueError, match="class 'brick' has a single example"):
        write_report(model, X[1:], y[1:], tmp_path)


# --- a real browser ----------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PROBE = """<script>
window.addEventListener("load", function () {
  var images = Array.from(document.images);
  var broken = images.filter(function (i) { return !(i.naturalWidth > 0); });
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-broken", broken.length);
  document.body.setAttribute("data-tables", document.querySelectorAll(
    "table#metrics tbody tr").length);
});
</script></body>"""


def rendered(html: str, tmp_path) -> dict:
    """The page's <body> attributes after headless chromium loaded it."""
    page = tmp_path / "probe.html"
    page.write_text(html.replace("</body>", PROBE), encoding="utf-8")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body = re.search(r"<body([^>]*)>", result.stdout)
    assert body, result.stderr[-2000:]
    return dict(re.findall(r'data-(\w+)="(\d+)"', body.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                    "(apt-get install chromium)")
def test_report_renders_in_headless_chromium(photo_report, tmp_path):
    _, html, _ = photo_report
    n_images = len(Page(html).images())
    shown = rendered(html, tmp_path)
    assert shown == {"images": str(n_images), "broken": "0", "tables": "5"}
    # the probe does notice a broken image
    broken = html.replace("</h1>", '</h1><img src="data:image/png;base64,AAAA">')
    assert rendered(broken, tmp_path)["broken"] == "1"


# --- the command line -----------------------------------------------------------------


def sktransfer(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sktransfer.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


def clean_error(result) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sktransfer: error: "), lines
    return lines[0]


@pytest.fixture
def numbers_csv(tmp_path):
    texts, _ = load_chatterbot_topics(["ai", "coding"])
    frame = pd.DataFrame({"text": texts[:40]})
    frame["words"] = [len(t.split()) + 0.5 * i for i, t in enumerate(frame.text)]
    path = tmp_path / "numbers.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_cli_non_numeric_target_names_column_and_row(numbers_csv):
    path, frame = numbers_csv
    frame["words"] = frame["words"].astype(object)
    frame.loc[6, "words"] = "many"
    frame.to_csv(path, index=False)
    result = sktransfer("fit", path, "--text-column", "text", "--target", "words",
                        "--task", "regression")
    assert "column 'words' must hold numbers" in clean_error(result)
    assert "row 6 is 'many'" in clean_error(result)


def test_cli_constant_target_is_an_error(numbers_csv):
    path, frame = numbers_csv
    frame["words"] = 3
    frame.to_csv(path, index=False)
    result = sktransfer("fit", path, "--text-column", "text", "--target", "words",
                        "--task", "regression")
    assert "column 'words' is constant" in clean_error(result)


def test_cli_regression_on_an_image_folder_is_an_error(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / label / "x.png")
    result = sktransfer("fit", tmp_path, "--task", "regression")
    assert "--task regression needs a CSV" in clean_error(result)


@pytest.mark.slow
def test_cli_fits_a_regressor_and_writes_the_report(numbers_csv, tmp_path):
    path, frame = numbers_csv  # 40 distinct numbers: --task auto is regression
    out = tmp_path / "words.skt"
    result = sktransfer("fit", path, "--text-column", "text", "--target", "words",
                        "--cv", "3", "--out", out, "--report")
    assert result.returncode == 0, result.stderr
    assert "regression" in result.stdout and "r2" in result.stdout
    html = (tmp_path / "words.skt.report" / "report.html").read_text()
    assert "Predicted against true" in html and len(decoded_images(html)) == 3
    predicted = sktransfer("predict", out, path)
    values = np.array(predicted.stdout.split(), dtype=float)
    assert len(values) == 40 and np.corrcoef(values, frame.words)[0, 1] > 0.5


def test_open_shows_the_default_report_next_to_the_model(tmp_path, monkeypatch):
    import argparse
    import webbrowser

    from sktransfer.cli import fit

    opened = []
    monkeypatch.setattr(webbrowser, "open", opened.append)
    texts, labels = load_chatterbot_topics(["ai", "coding"])
    keep = np.r_[0:15, len(texts) - 15:len(texts)]  # 15 "ai", 15 "coding"
    X, y = pd.Series(texts).iloc[keep], np.array(labels)[keep]
    model = make_pipeline(TfidfVectorizer(), LogisticRegression())
    out = tmp_path / "topics.skt"
    args = argparse.Namespace(report="", open=True, out=str(out), cv=3,
                              data=str(tmp_path / "topics.csv"))
    fit._write_report(args, X, y, "text", model, clone(model).fit(X, y))
    page = tmp_path / "topics.skt.report" / "report.html"
    assert opened == [page.resolve().as_uri()]
    assert "sktransfer fit topics.csv" in page.read_text()


def test_training_curve_with_a_loss_missing_from_some_epochs():
    from sktransfer.report import _history_figure

    history = [{"epoch": 1, "train_loss": 1.0},
               {"epoch": 2, "train_loss": 0.5, "valid_loss": 0.7}]
    figure = _history_figure(history)
    rows = figure["table"]["rows"]
    assert figure["table"]["columns"] == ["epoch", "train_loss", "valid_loss"]
    assert rows == [[1, "1", ""], [2, "0.5", "0.7"]]


# --- issue 32: labels are text, the network is named, whole sample counts --------

def test_a_mathtext_class_label_is_drawn_as_text(tmp_path):
    X, y = load_photo_patches(6, 16, random_state=0, classes=("brick", "coffee"))
    y = np.where(y == "coffee", r"$\undefinedcmd$", y)  # broken mathtext
    model = make_pipeline(RawPixels(8), LogisticRegression(max_iter=500))
    html = write_report(model, X, y, tmp_path, cv=3).read_text(encoding="utf-8")
    assert [row[0] for row in Page(html).table(id="metrics")[1:3]] == \
        ["$\\undefinedcmd$", "brick"]
    assert len(decoded_images(html)) >= 2  # the figures were drawn


def test_the_summary_names_each_step_with_its_network():
    from sklearn.preprocessing import StandardScaler

    from sktransfer import FineTunedClassifier, PretrainedImageFeatures
    from sktransfer.report import _describe

    pipe = make_pipeline(PretrainedImageFeatures("efficientnet_lite0"),
                         StandardScaler(), LogisticRegression())
    assert _describe(pipe) == ("PretrainedImageFeatures(efficientnet_lite0) → "
                               "StandardScaler → LogisticRegression")
    assert _describe(FineTunedClassifier("resnet18")) == \
        "FineTunedClassifier(resnet18)"


def test_the_learning_curve_counts_whole_samples_per_class():
    from sktransfer.evaluate import learning_curve_figure

    curve = pd.DataFrame({"model": "m", "per_class": [2, 5, 13],
                          "accuracy": [0.5, 0.6, 0.7]})
    figure = learning_curve_figure(curve)
    ticks = figure.axes[0].get_xticks()
    assert ticks.tolist() == [2, 5, 13]


class LabelSpy(ClassifierMixin, BaseEstimator):
    """Records the labels every fit gets; predicts uniform probabilities."""

    seen: list = []

    def fit(self, X, y):
        LabelSpy.seen.append(sorted(set(np.asarray(y).tolist())))
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))

    def predict(self, X):
        return self.classes_[np.zeros(len(X), dtype=int)]


def test_out_of_fold_models_get_the_labels_as_given(tmp_path):
    """The report's and the audit's folds fit on the string labels, as the saved
    model does (cross_val_predict would pass codes 0..k-1)."""
    from sktransfer.audit import out_of_fold_proba

    texts, labels = load_chatterbot_topics(["ai", "coding"])
    keep = np.r_[0:8, len(texts) - 8:len(texts)]
    X, y = [texts[i] for i in keep], np.array(labels)[keep]
    LabelSpy.seen = []
    write_report(LabelSpy(), X, y, tmp_path, modality="text", cv=3)
    out_of_fold_proba(LabelSpy(), X, y, cv=3)
    assert len(LabelSpy.seen) > 6
    assert all(seen == ["ai", "coding"] for seen in LabelSpy.seen)


def test_cli_zero_shot_report_and_audit_of_a_zero_shot_model(tiny_bert, tmp_path,
                                                             capsys):
    from sktransfer import ZeroShotTextClassifier
    from sktransfer.audit import find_label_issues
    from sktransfer.cli import main

    texts, labels = load_chatterbot_topics(["ai", "coding"])
    keep = np.r_[0:6, len(texts) - 6:len(texts)]
    frame = pd.DataFrame({"text": [texts[i] for i in keep],
                          "topic": np.array(labels)[keep]})
    data = tmp_path / "topics.csv"
    frame.to_csv(data, index=False)
    status = main(["fit", str(data), "--column", "text", "--target", "topic",
                   "--zero-shot", "--model", f"hf/{tiny_bert}", "--cv", "2",
                   "--out", str(tmp_path / "z.skt"), "--report",
                   str(tmp_path / "page")])
    assert status == 0, capsys.readouterr().err
    html = (tmp_path / "page" / "report.html").read_text()
    assert [row[0] for row in Page(html).table(id="metrics")[1:3]] == ["ai",
                                                                        "coding"]
    issues = find_label_issues(ZeroShotTextClassifier(model=f"hf/{tiny_bert}"),
                               frame["text"].tolist(), frame["topic"], cv=2)
    assert len(issues) == 12 and set(issues["suggested"]) <= {"ai", "coding"}


# --- issue 36: the multi-label (tags) report ---------------------------------------

DOLLAR = r"$\undefinedcmd$"  # broken mathtext: must be drawn and shown as text


def tag_data(n=60):
    from sktransfer.datasets import load_chatterbot_tags

    texts, lists = load_chatterbot_tags(n, topics=["ai", "emotion", "trivia"])
    return texts, [[DOLLAR if t == "ai" else t for t in row] for row in lists]


def recomputed_multilabel(model, X, y, Y, cv):
    """Out-of-fold scores and predictions over the report's folds, by hand."""
    from sktransfer.report import multilabel_folds

    scores, predicted = np.zeros(Y.shape), np.zeros(Y.shape, dtype=int)
    for train, test in multilabel_folds(Y.to_numpy(), cv, 0):
        fitted = clone(model).fit([X[i] for i in train], y.iloc[train]
                                  if hasattr(y, "iloc") else [y[i] for i in train])
        scores[test] = fitted.predict_proba([X[i] for i in test])
        predicted[test] = fitted.predict([X[i] for i in test])
    return scores, predicted


def check_multilabel_page(html, Y, scores, predicted):
    """The page's numbers against scikit-learn on the out-of-fold predictions."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    names = list(Y.columns)
    page = Page(html)
    metrics = page.table(id="metrics")
    assert metrics[0][:6] == ["label", "precision", "recall", "F1", "support",
                              "threshold"]
    assert [r[0] for r in metrics[1:]] == [*names, "micro avg", "macro avg",
                                           "samples avg"]
    f1 = f1_score(Y, predicted, average=None)
    precision = precision_score(Y, predicted, average=None, zero_division=0)
    recall = recall_score(Y, predicted, average=None)
    for j, row in enumerate(metrics[1:len(names) + 1]):
        assert [float(c) for c in row[1:4]] == pytest.approx(
            [precision[j], recall[j], f1[j]], abs=5e-4), row
        assert int(row[4]) == Y.iloc[:, j].sum()
    summary = dict(page.table(id="summary"))
    for name, average in (("micro F1", "micro"), ("macro F1", "macro"),
                          ("samples F1", "samples")):
        assert float(summary[name]) == pytest.approx(
            f1_score(Y, predicted, average=average), abs=5e-4)
    assert float(summary["subset accuracy"]) == pytest.approx(
        accuracy_score(Y, predicted), abs=5e-4)
    # per label its mistakes: false positives by score down, negatives up
    sections = re.findall(r'<section class="label-mistakes"[^>]*>\n<h3>([^<]*)</h3>'
                          r'(.*?)</section>', html, re.S)
    assert [unescape(label) for label, _ in sections] == names
    y_true = Y.to_numpy()
    for j, (_, body) in enumerate(sections):
        for kind, wrong, order in (("false_positives", (y_true[:, j] == 0), -1),
                                   ("false_negatives", (y_true[:, j] == 1), 1)):
            rows = np.flatnonzero(wrong & (predicted[:, j] != y_true[:, j]))
            expected = rows[np.argsort(order * scores[rows, j], kind="stable")][:6]
            part = next(p for p in body.split("<h4>")[1:]
                        if p.startswith(kind.replace("_", " ").capitalize()))
            assert int(re.match(r"[^:]*: (\d+)</h4>", part).group(1)) == len(rows)
            shown = [int(i) for i in re.findall(r"<div>#(\d+)</div>", part)]
            assert shown == expected.tolist(), (names[j], kind)
    return page


def test_multilabel_report_numbers_are_sklearn_s(tmp_path):
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    texts, lists = tag_data()
    binarizer = MultiLabelBinarizer().fit(lists)
    Y = pd.DataFrame(binarizer.transform(lists), columns=binarizer.classes_)
    model = make_pipeline(TfidfVectorizer(), OneVsRestClassifier(LogisticRegression()))
    html = write_report(model, texts, Y, tmp_path, modality="text",
                        cv=3).read_text(encoding="utf-8")
    scores, predicted = recomputed_multilabel(model, texts, Y, Y, 3)
    assert 0 < (predicted != Y.to_numpy()).sum()
    page = check_multilabel_page(html, Y, scores, predicted)
    text = " ".join(page.text)
    assert "Confusion matrix" not in text and "No learning curve for tags" in text
    # the per-label 2×2 counts
    counts = page.table(**{"class": "figure-data"})
    assert counts[0] == ["label", "true positive", "false positive",
                         "false negative", "true negative"]
    y_true = Y.to_numpy()
    for j, (name, tp, fp, fn, tn) in enumerate(counts[1:]):
        assert name == Y.columns[j]
        assert [int(tp), int(fp), int(fn), int(tn)] == [
            int(((y_true[:, j] == a) & (predicted[:, j] == b)).sum())
            for a, b in ((1, 1), (0, 1), (1, 0), (0, 0))]
    assert len(decoded_images(html)) == 1  # the per-label bar chart, drawn
    assert f"<h3>{DOLLAR}</h3>" in html and f"<td>{DOLLAR}</td>" in html
    assert_self_contained(html)


def test_multilabel_report_of_images_shows_thumbnails(tmp_path):
    from sklearn.multiclass import OneVsRestClassifier

    X, y = load_photo_patches(8, 16, random_state=0,
                              classes=("brick", "gravel", "coffee"))
    # tags: its class, and "rough" for brick and gravel
    Y = pd.DataFrame({"coffee": y == "coffee", "rough": y != "coffee",
                      "brick": y == "brick"}).astype(int)
    model = make_pipeline(RawPixels(8), OneVsRestClassifier(
        LogisticRegression(max_iter=500)))
    html = write_report(model, X, Y, tmp_path, cv=3).read_text(encoding="utf-8")
    thumbnails = [i for i in decoded_images(html) if i.format == "JPEG"]
    shown = len(re.findall(r'<div class="example">', html))
    assert shown == len(thumbnails) > 0
    assert all(max(t.size) <= 128 for t in thumbnails)


def test_multilabel_report_needs_two_rows_with_and_without_each_label(tmp_path):
    texts, lists = tag_data(20)
    lists = [row if i else [*row, "rare"] for i, row in enumerate(lists)]
    with pytest.raises(ValueError, match="label 'rare' has a single positive row"):
        write_report(make_pipeline(TfidfVectorizer(), LogisticRegression()), texts,
                     lists, tmp_path, modality="text")


def test_cli_fit_report_for_tags(tiny_bert, tmp_path, capsys, one_torch_thread):
    """``fit --label-sep "|" --report``: the fold models choose their thresholds
    in their own fit; the page's numbers are those out-of-fold predictions'."""
    from sklearn.metrics import f1_score

    import sktransfer
    from sktransfer.cli import main

    texts, lists = tag_data(48)
    data = tmp_path / "tags.csv"
    pd.DataFrame({"text": texts, "tags": ["|".join(r) for r in lists]}).to_csv(
        data, index=False)
    status = main(["fit", str(data), "--column", "text", "--target", "tags",
                   "--label-sep", "|", "--model", f"hf/{tiny_bert}", "--cv", "3",
                   "--out", str(tmp_path / "tags.skt"), "--report",
                   str(tmp_path / "page")])
    assert status == 0, capsys.readouterr().err
    html = (tmp_path / "page" / "report.html").read_text(encoding="utf-8")
    saved = sktransfer.load(tmp_path / "tags.skt")
    names = saved.classes_.tolist()
    assert names == sorted([DOLLAR, "emotion", "trivia"])
    Y = pd.DataFrame(to_indicator_(lists, names), columns=names)
    model = sktransfer.FineTunedTextClassifier(f"hf/{tiny_bert}", freeze_depth="all",
                                               random_state=0)
    scores, predicted = recomputed_multilabel(model, texts, lists, Y, 3)
    page = check_multilabel_page(html, Y, scores, predicted)
    metrics = page.table(id="metrics")
    assert metrics[0][-1] == "final threshold"
    assert [float(r[-1]) for r in metrics[1:4]] == pytest.approx(
        saved.thresholds_.tolist(), abs=5e-4)
    assert float(metrics[1][3]) == pytest.approx(
        f1_score(Y.iloc[:, 0], predicted[:, 0]), abs=5e-4)
    assert f"<h3>{DOLLAR}</h3>" in html


def to_indicator_(lists, names):
    from sktransfer._utils.multilabel import to_indicator

    return to_indicator(lists, np.asarray(names, dtype=object))

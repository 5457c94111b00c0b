"""The sktransfer command, run as a user would: through a subprocess."""

import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from sktransfer.datasets import load_photo_patches


def sktransfer(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sktransfer.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sktransfer: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def image_folder(tmp_path):
    X, y = load_photo_patches(6, 48, "train", classes=("brick", "grass", "coffee"))
    root = tmp_path / "photos"
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / label / f"{i}.png")
    return root


@pytest.fixture
def text_csv(tmp_path):
    from sktransfer.datasets import load_chatterbot_topics

    texts, labels = load_chatterbot_topics(["ai", "emotion", "coding"])
    frame = pd.DataFrame({"text": texts, "topic": labels})
    frame = frame.groupby("topic").head(12).reset_index(drop=True)
    path = tmp_path / "texts.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_fit_and_predict_an_image_folder(image_folder, tmp_path):
    model = tmp_path / "model.skt"
    fit = sktransfer("fit", image_folder, "--cv", 3, "--out", model)
    assert fit.returncode == 0, fit.stderr
    assert "accuracy" in fit.stdout and model.is_file()
    predict = sktransfer("predict", model, image_folder / "brick",
                         image_folder / "coffee")
    assert predict.returncode == 0, predict.stderr
    rows = [line.split("\t") for line in predict.stdout.strip().splitlines()]
    assert len(rows) == 12
    truth = [path.split("/")[-2] for path, _ in rows]
    assert np.mean([t == p for t, (_, p) in zip(truth, rows, strict=True)]) >= 0.8
    out = tmp_path / "predictions.csv"
    to_csv = sktransfer("predict", model, image_folder / "grass", "--output", out)
    assert to_csv.returncode == 0, to_csv.stderr
    assert list(pd.read_csv(out).columns) == ["input", "prediction"]


@pytest.mark.slow
def test_fit_and_predict_a_text_csv(text_csv, tmp_path):
    model = tmp_path / "text.skt"
    fit = sktransfer("fit", text_csv, "--text-column", "text", "--target", "topic",
                     "--cv", 3, "--out", model)
    assert fit.returncode == 0, fit.stderr
    predict = sktransfer("predict", model, text_csv)
    assert predict.returncode == 0, predict.stderr
    labels = predict.stdout.splitlines()
    truth = pd.read_csv(text_csv)["topic"].tolist()
    assert len(labels) == len(truth)
    assert np.mean(np.asarray(labels) == np.asarray(truth)) >= 0.8


def test_models_lists_block_counts_and_offline_availability():
    result = sktransfer("models")
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines()
                if x.strip().startswith("efficientnet_lite0"))
    assert " 9 " in f" {line} " and "True" in line
    assert "resnet50" in result.stdout


def test_models_prints_the_list_models_table():
    from sktransfer.backbones import list_models

    result = sktransfer("models")
    assert result.returncode == 0, result.stderr
    expected = list_models(blocks=True).to_string(index=False)
    assert result.stdout.strip("\n") == expected


def test_models_does_not_import_torch(tmp_path):
    # the whole command, as `sktransfer models` runs it (argument parsing,
    # error handling, the table): the catalog ships, so no torch is needed.
    # With other torchvision/timm versions than the shipped catalog records,
    # the first call computes the table and keeps it in the user cache: from
    # the second call on, no torch either.
    code = ("import sys; from sktransfer.cli import main; main(['models']); "
            "heavy = ['torch', 'torchvision', 'timm', 'sklearn', 'pandas']; "
            "print([m for m in heavy if m in sys.modules])")
    env = {**os.environ, "SKTRANSFER_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                                text=True, timeout=300, env=env)
        assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"
    assert "resnet50" in result.stdout


def test_missing_path(tmp_path):
    assert_clean_error(sktransfer("fit", tmp_path / "nowhere"), "does not exist")


def test_empty_class_folder(image_folder):
    (image_folder / "empty").mkdir()
    assert_clean_error(sktransfer("fit", image_folder), "empty", "holds no image")


def test_unreadable_images_are_listed_with_a_count(image_folder):
    for name in ("bad1.png", "bad2.jpg"):
        (image_folder / "brick" / name).write_bytes(b"not an image")
    assert_clean_error(sktransfer("fit", image_folder), "2 unreadable image(s)",
                       "bad1.png", "bad2.jpg")


def test_csv_without_the_named_column(text_csv):
    assert_clean_error(
        sktransfer("fit", text_csv, "--text-column", "body", "--target", "topic"),
        "no column 'body'", "['text', 'topic']")


def test_a_model_file_that_is_not_ours(tmp_path):
    import joblib

    joblib.dump({"something": "else"}, tmp_path / "other.joblib")
    (tmp_path / "junk.joblib").write_bytes(b"junk")
    assert_clean_error(sktransfer("predict", tmp_path / "other.joblib", tmp_path),
                       "is a pickle/joblib file", "--trust-pickle", "other.joblib")
    # not a pickle: nothing to trust
    assert_clean_error(sktransfer("predict", tmp_path / "junk.joblib", tmp_path),
                       "not a sktransfer model file", "junk.joblib")
    for name in ("other.joblib", "junk.joblib"):
        assert_clean_error(sktransfer("predict", tmp_path / name, tmp_path,
                                      "--trust-pickle"),
                           "not a sktransfer model file", name)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("a.txt", "hello")
    assert_clean_error(sktransfer("predict", foreign, tmp_path),
                       "not a sktransfer model", "foreign.zip")


class Hostile:
    """Unpickling it creates a file: what a malicious model file would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_hostile_pickle_is_never_loaded(image_folder, tmp_path):
    import joblib

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.joblib"
    joblib.dump({"format": "sktransfer-model", "estimator": Hostile(str(marker))},
                evil)
    image = next((image_folder / "brick").iterdir())
    result = sktransfer("predict", evil, image)
    assert not marker.exists()
    assert_clean_error(result, "evil.joblib", "--trust-pickle")


def test_fit_writes_the_safe_format_and_predict_reads_it(image_folder, tmp_path):
    fit = sktransfer("fit", image_folder, "--model", "resnet18", "--weights", "None",
                     "--cv", 0, cwd=tmp_path)
    assert fit.returncode == 0, fit.stderr
    model = tmp_path / "model.skt"  # the default --out
    with zipfile.ZipFile(model) as archive:
        assert "manifest.json" in archive.namelist()
        assert not any(n.endswith((".pkl", ".joblib")) for n in archive.namelist())
    predict = sktransfer("predict", model, image_folder / "grass")
    assert predict.returncode == 0, predict.stderr
    assert len(predict.stdout.strip().splitlines()) == 6


def test_trust_pickle_still_predicts_with_a_genuine_joblib_model(image_folder,
                                                                  tmp_path):
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from sktransfer import PretrainedImageFeatures

    paths = sorted(str(p) for p in image_folder.rglob("*.png"))
    labels = [p.split("/")[-2] for p in paths]
    pipe = make_pipeline(PretrainedImageFeatures("resnet18", weights=None),
                         LogisticRegression(max_iter=500)).fit(paths, labels)
    model = tmp_path / "old.joblib"
    joblib.dump({"format": "sktransfer-model", "version": 1, "modality": "image",
                 "text_column": None, "estimator": pipe}, model)
    assert_clean_error(sktransfer("predict", model, image_folder), "--trust-pickle")
    result = sktransfer("predict", model, image_folder, "--trust-pickle")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.strip().splitlines()]
    assert [p for _, p in rows] == list(pipe.predict([path for path, _ in rows]))


def test_a_model_spec_that_does_not_resolve(image_folder):
    assert_clean_error(sktransfer("fit", image_folder, "--model", "resnet_nope",
                                  "--cv", 0), "unknown image model 'resnet_nope'")


def test_freeze_depth_beyond_the_blocks(image_folder):
    assert_clean_error(sktransfer("fit", image_folder, "--finetune", "--model",
                                  "resnet18", "--weights", "None", "--freeze-depth",
                                  50, "--cv", 0), "freeze_depth=50", "5 blocks")


def test_a_missing_optional_dependency_prints_the_install_hint(text_csv, tmp_path):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("hello 0.1 0.2\nworld 0.3 0.4\n")
    args = ["fit", str(text_csv), "--text-column", "text", "--target", "topic",
            "--model", str(vectors), "--cv", "0"]
    code = ("import sys; sys.modules['gensim'] = sys.modules['gensim.models'] = None; "
            f"from sktransfer.cli import main; sys.exit(main({args!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=300)
    assert_clean_error(result, "needs gensim", "pip install 'sktransfer[word2vec]'")


def test_sklearn_parameter_errors_become_one_error_family(monkeypatch, capsys):
    """Issue 33: where the CLI checks a pipeline's steps, scikit-learn's own
    InvalidParameterError becomes sktransfer's (a SktransferError), so main
    catches one family; an sklearn error escaping elsewhere is a bug and keeps
    its traceback."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils._param_validation import (
        InvalidParameterError as SklearnInvalidParameterError,
    )

    from sktransfer.cli import main, models
    from sktransfer.cli.fit import check_params
    from sktransfer.exceptions import InvalidParameterError, SktransferError

    bad = make_pipeline(StandardScaler(), LogisticRegression(C=-1.0))
    with pytest.raises(InvalidParameterError, match="'C' parameter") as error:
        check_params(bad)
    assert isinstance(error.value, SktransferError)
    monkeypatch.setattr(models, "run_models", lambda args: check_params(bad))
    assert main(["models"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sktransfer: error: The 'C' parameter")

    def leaked(args):
        raise SklearnInvalidParameterError("n_components must be > 0")

    monkeypatch.setattr(models, "run_models", leaked)
    with pytest.raises(SklearnInvalidParameterError):
        main(["models"])


def test_a_csv_that_cannot_be_parsed(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,topic\n\"unterminated,a\n" + bytes(range(128, 256)))
    assert_clean_error(sktransfer("fit", bad, "--text-column", "text", "--target",
                                  "topic"), "bad.csv", "cannot be read as a CSV")


def test_an_output_folder_that_cannot_be_created(image_folder, tmp_path):
    (tmp_path / "nowhere").write_text("a file, not a folder")
    assert_clean_error(sktransfer("fit", image_folder, "--out",
                                  tmp_path / "nowhere" / "m.skt"),
                       "nowhere", "is a file")


def test_a_bug_shows_its_traceback():
    # Only the package's own exceptions are user errors; a ValueError from a bug
    # must not be disguised as one.
    code = ("import sys; from sktransfer.cli import models; "
            "models.run_models = lambda args: int('not a number'); "
            "from sktransfer.cli import main; sys.exit(main(['models']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ValueError" in result.stderr


def test_bad_freeze_depth(image_folder):
    assert_clean_error(sktransfer("fit", image_folder, "--finetune",
                                  "--freeze-depth", "half"),
                       "freeze_depth", "'half'")


# --- which task a CSV target is (--task auto) ---------------------------------------


def resolved_task(tmp_path, target, texts=None):
    import argparse

    from sktransfer.cli._inputs import load_training_data, resolve_task

    texts = texts or [f"text {i}" for i in range(len(target))]
    path = tmp_path / "data.csv"
    pd.DataFrame({"text": texts, "y": target}).to_csv(path, index=False)
    args = argparse.Namespace(data=str(path), text_column="text", target="y",
                              task="auto")
    X, y, modality = load_training_data(args)
    return resolve_task(args, y)


def test_auto_task_reads_the_target_as_scikit_learn_does(tmp_path):
    ids = np.arange(60) % 20  # 20 integer class ids: classification
    task, y = resolved_task(tmp_path, ids)
    # labels stay as written: the class ids are the strings of the CSV
    assert task == "classification" and y.tolist() == [str(i) for i in ids]
    task, y = resolved_task(tmp_path, ids + 0.25)  # continuous: regression
    assert task == "regression" and y == pytest.approx(ids + 0.25)
    task, _ = resolved_task(tmp_path, np.r_[0.5, 1.5].repeat(3))  # two values
    assert task == "regression"
    task, _ = resolved_task(tmp_path, ["cat", "dog", "7"] * 4)  # labels
    assert task == "classification"
    # whole numbers seen once (prices, years): which task is not guessed
    from sktransfer.exceptions import CLIError

    prices = [100000, 250000, 175000, 320000, 99000, 250000]
    with pytest.raises(CLIError, match=r"'y' holds whole numbers with 5 distinct "
                                       r"values.*Pass --task"):
        resolved_task(tmp_path, prices)


def test_a_numeric_target_with_typos_is_an_error_not_a_classification(tmp_path):
    target = [f"{0.1 * i:.2f}" for i in range(30)]
    target[17] = "1,7"
    from sktransfer.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="column 'y' must hold numbers for "
                                                "regression: row 17 is '1,7'"):
        resolved_task(tmp_path, target)
    path = tmp_path / "data.csv"
    # the command says the same, before any model is loaded
    assert_clean_error(sktransfer("fit", path, "--column", "text", "--target", "y"),
                       "column 'y' must hold numbers", "row 17 is '1,7'")


# --- a CSV of image paths ---------------------------------------------------------


@pytest.fixture
def photo_csv(tmp_path):
    """Crops of real photos at random zoom, as PNG and JPEG files next to a CSV
    of their relative paths, their zoom and their mean brightness."""
    from sktransfer.datasets import load_photo_zoom

    def write(split, n):
        X, zoom = load_photo_zoom(n, 48, split, classes=("brick", "grass",
                                                          "gravel"))
        (tmp_path / split).mkdir()
        paths = [f"{split}/{i}.{'png' if i % 2 else 'jpg'}" for i in range(len(X))]
        for path, image in zip(paths, X, strict=True):
            Image.fromarray(image).save(tmp_path / path)
        frame = pd.DataFrame({"path": paths, "zoom": zoom,
                              "brightness": X.mean(axis=(1, 2, 3)) / 255})
        frame.to_csv(tmp_path / f"{split}.csv", index=False)
        return tmp_path / f"{split}.csv", frame

    return write("train", 12), write("test", 6)


def test_a_missing_image_in_the_csv_names_the_row(photo_csv, tmp_path):
    (path, frame), _ = photo_csv
    (tmp_path / frame.path[4]).unlink()
    assert_clean_error(sktransfer("fit", path, "--column", "path", "--target",
                                  "zoom"), "row 4 of 'path'", frame.path[4],
                       "not found")


@pytest.mark.slow
def test_fit_and_predict_an_image_regression_csv(photo_csv, tmp_path):
    (train, _), (test, frame) = photo_csv
    model = tmp_path / "zoom.skt"
    elsewhere = tmp_path / "elsewhere"  # relative paths start at the CSV's folder
    elsewhere.mkdir()
    fit = sktransfer("fit", train, "--column", "path", "--target", "zoom", "--cv", 3,
                     "--out", model, cwd=elsewhere)
    assert fit.returncode == 0, fit.stderr
    assert "saved image model (36 samples, regression)" in fit.stdout
    assert "r2" in fit.stdout
    predict = sktransfer("predict", model, test, cwd=elsewhere)
    assert predict.returncode == 0, predict.stderr
    rows = [line.split("\t") for line in predict.stdout.strip().splitlines()]
    assert [name for name, _ in rows] == frame.path.tolist()
    predicted = np.array([value for _, value in rows], dtype=float)
    # held-out photos: frozen efficientnet_lite0 features + RidgeCV see the zoom
    # (correlation measured: 0.84)
    assert np.corrcoef(predicted, frame.zoom)[0, 1] > 0.6


def loss_per_epoch(page: str) -> list:
    """``(epoch, train loss)`` rows of the report's training-curve table."""
    import html
    import re

    start = page.index("Training curve of the final model (loss per epoch)")
    table = page[start:page.index("</table>", start)]
    return [(int(epoch), float(html.unescape(loss))) for epoch, loss in
            re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", table)]


@pytest.mark.slow
def test_finetune_regression_report_shows_the_loss_per_epoch(photo_csv, tmp_path):
    from sktransfer import load

    (train, frame), _ = photo_csv
    model = tmp_path / "bright.skt"
    fit = sktransfer("fit", train, "--column", "path", "--target", "brightness",
                     "--finetune", "--model", "resnet18", "--weights", "None",
                     "--image-size", 32, "--max-epochs", 3, "--cv", 2,
                     "--out", model, "--report")
    assert fit.returncode == 0, fit.stderr
    page = (tmp_path / "bright.skt.report" / "report.html").read_text()
    assert "FineTunedRegressor" in page and "Predicted against true" in page
    history = load(model).history_  # the saved model's own curve
    epochs = loss_per_epoch(page)
    assert [epoch for epoch, _ in epochs] == [1, 2, 3]
    assert [loss for _, loss in epochs] == pytest.approx(
        history[:, "train_loss"], rel=1e-3)


def test_finetune_report_of_an_image_folder(image_folder, tmp_path):
    from sktransfer import load

    model = tmp_path / "photos.skt"
    fit = sktransfer("fit", image_folder, "--finetune", "--model", "resnet18",
                     "--weights", "None", "--image-size", 32, "--max-epochs", 2,
                     "--cv", 2, "--out", model, "--report", tmp_path / "page")
    assert fit.returncode == 0, fit.stderr
    page = (tmp_path / "page" / "report.html").read_text()
    assert "FineTunedClassifier" in page and "Confusion matrix" in page
    epochs = loss_per_epoch(page)  # the saved model's own curve
    assert [epoch for epoch, _ in epochs] == [1, 2]
    assert [loss for _, loss in epochs] == pytest.approx(
        load(model).history_[:, "train_loss"], rel=1e-3)

"""The sktransfer command, run as a user would: through a subprocess."""

import subprocess
import sys

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
    model = tmp_path / "model.joblib"
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
    model = tmp_path / "text.joblib"
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
    assert_clean_error(sktransfer("predict", tmp_path / "other.joblib", tmp_path),
                       "not a sktransfer model file")
    (tmp_path / "junk.joblib").write_bytes(b"junk")
    assert_clean_error(sktransfer("predict", tmp_path / "junk.joblib", tmp_path),
                       "not a sktransfer model file")


def test_bad_freeze_depth(image_folder):
    assert_clean_error(sktransfer("fit", image_folder, "--finetune",
                                  "--freeze-depth", "half"), "--freeze-depth")

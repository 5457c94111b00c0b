"""The command with damaged model files and careless inputs (issue 19): one
line and exit status 2, checked before any work; labels kept as written."""

from __future__ import annotations

import argparse
import pickle
import subprocess

import pandas as pd
import pytest

from sktransfer.cli._inputs import load_training_data, resolve_task


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sktransfer: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def labels(tmp_path, target, task="auto"):
    path = tmp_path / "data.csv"
    path.write_text("text,y\n" + "".join(f"text {i},{value}\n"
                                          for i, value in enumerate(target)))
    args = argparse.Namespace(data=str(path), text_column="text", target="y",
                              task=task)
    _, y, _ = load_training_data(args)
    return resolve_task(args, y)


def test_class_labels_stay_as_written(tmp_path):
    task, y = labels(tmp_path, ["007", "7", "1000", "1000.0", "1e3", "cat"] * 2)
    assert task == "classification"
    assert sorted(set(y)) == ["007", "1000", "1000.0", "1e3", "7", "cat"]
    task, y = labels(tmp_path, ["007", "7"] * 3, task="classification")
    assert sorted(set(y)) == ["007", "7"]
    # regression targets (only) are numbers
    task, y = labels(tmp_path, ["1e3", "1000.5", "0.25", "7"], task="regression")
    assert task == "regression" and y.tolist() == [1000.0, 1000.5, 0.25, 7.0]


@pytest.fixture
def label_csv(tmp_path):
    texts = ["The cat sat on the mat.", "A dog barked all night long!",
             "The train left the station.", "Buses run every ten minutes.",
             "My kitten sleeps all day.", "Trams are quiet and fast."]
    path = tmp_path / "labels.csv"
    pd.DataFrame({"text": texts, "y": ["007", "1000.0", "7", "1e3", "007",
                                       "7"]}).to_csv(path, index=False)
    return path


def run(capsys, *args):
    """``sktransfer ARGS`` in this process: (exit status, stdout, stderr)."""
    from sktransfer.cli import main

    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out.out, out.err)


def test_fit_and_predict_keep_the_labels_and_refuse_bad_paths(
        tiny_bert, label_csv, tmp_path, capsys, monkeypatch):
    model = tmp_path / "model.skt"
    spec = f"hf/{tiny_bert}"
    # an output path that is a folder: refused before any work
    assert_clean_error(run(capsys, "fit", label_csv, "--column", "text", "--target",
                           "y", "--model", spec, "--out", tmp_path), "is a folder")
    fit = run(capsys, "fit", label_csv, "--column", "text", "--target", "y",
              "--task", "classification", "--model", spec, "--cv", 0,
              "--out", model)
    assert fit.returncode == 0, fit.stderr
    assert "4 classes" in fit.stdout
    predict = run(capsys, "predict", model, label_csv)
    assert predict.returncode == 0, predict.stderr
    assert set(predict.stdout.split()) <= {"007", "1000.0", "7", "1e3"}
    assert_clean_error(run(capsys, "predict", model, label_csv, "--output",
                           tmp_path), "is a folder")
    # --runtime is the estimator's parameter: its own check, one line
    assert_clean_error(run(capsys, "predict", model, label_csv, "--runtime",
                           "tpu"), "runtime", "'tpu'")
    monkeypatch.setenv("SKTRANSFER_CACHE_MB", "abc")
    assert_clean_error(run(capsys, "predict", model, label_csv),
                       "SKTRANSFER_CACHE_MB='abc'")
    monkeypatch.delenv("SKTRANSFER_CACHE_MB")
    # a truncated model: damaged, and no word of pickles
    truncated = tmp_path / "truncated.skt"
    truncated.write_bytes(model.read_bytes()[:model.stat().st_size // 2])
    line = assert_clean_error(run(capsys, "predict", truncated, label_csv),
                              "damaged or truncated")
    assert "pickle" not in line
    # a flipped byte in the tree: one line, exit 2
    data = bytearray(model.read_bytes())
    data[data.find(b"estimator.skops") + 40] ^= 0xFF
    flipped = tmp_path / "flipped.skt"
    flipped.write_bytes(bytes(data))
    assert_clean_error(run(capsys, "predict", flipped, label_csv), "flipped.skt")


def test_the_library_checks_cv_runtime_and_classes(label_csv, tmp_path, capsys):
    """--cv, --runtime and the one-class case are the estimators' checks: the
    command maps their errors to one line and exit 2, before any work."""
    out = tmp_path / "model.skt"
    common = ("--column", "text", "--target", "y", "--task", "classification")
    assert_clean_error(run(capsys, "fit", label_csv, *common, "--runtime", "tpu",
                           "--out", out), "runtime", "'tpu'")
    assert_clean_error(run(capsys, "fit", label_csv, *common, "--cv", 3,
                           "--out", out), "cv=3", "samples per class")
    two = tmp_path / "two.csv"
    two.write_text("text,y\nhello,a\nthere,a\nagain,b\nonce more,b\n")
    assert_clean_error(run(capsys, "audit", two, *common[:4], "--cv", 1,
                           "--report", tmp_path / "r"), "cv must be at least 2")
    assert_clean_error(run(capsys, "audit", two, *common[:4], "--runtime",
                           "tpu", "--report", tmp_path / "r"), "runtime", "'tpu'")
    one = tmp_path / "one.csv"
    one.write_text("text,y\nhello,a\nthere,a\nagain,a\n")
    assert_clean_error(run(capsys, "fit", one, *common, "--out", out),
                       "single class")
    assert not out.exists() and not (tmp_path / "r").exists()


def test_a_model_path_that_is_a_folder_or_a_legacy_pickle(tmp_path, capsys):
    assert_clean_error(run(capsys, "predict", tmp_path, tmp_path),
                       "is a folder, not a model file")
    legacy = tmp_path / "model.joblib"
    legacy.write_bytes(pickle.dumps({"format": "sktransfer-model"}))
    assert_clean_error(run(capsys, "predict", legacy, tmp_path),
                       "is a pickle/joblib file", "--trust-pickle")


def test_the_memory_cache_size_must_be_a_number(monkeypatch):
    from sktransfer.cache import memory_limit
    from sktransfer.exceptions import ParameterError

    for value in ("abc", "-1", "nan", "inf"):
        monkeypatch.setenv("SKTRANSFER_CACHE_MB", value)
        with pytest.raises(ParameterError, match="SKTRANSFER_CACHE_MB"):
            memory_limit()
    monkeypatch.setenv("SKTRANSFER_CACHE_MB", "1.5")
    assert memory_limit() == int(1.5 * 2**20)

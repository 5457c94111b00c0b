"""Any file ``sktransfer.save`` writes works on the command line (issue 32):
one format for Python and the CLI; model paths that are not regular files and
output paths that cannot be written are one line, before any work."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import sktransfer
from sktransfer.datasets import load_photo_patches

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_clean_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sktransfer: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def run(capsys, *args):
    """``sktransfer ARGS`` in this process: (exit status, stdout, stderr)."""
    from sktransfer.cli import main

    status = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, status, out.out, out.err)


TEXTS = ["The cat sat on the mat.", "A dog barked all night long!",
         "The train left the station.", "Buses run every ten minutes.",
         "My kitten sleeps all day.", "Trams are quiet and fast.",
         "Puppies chew on shoes.", "The tram was late again."]
TOPICS = ["pets", "pets", "transport", "transport", "pets", "transport", "pets",
          "transport"]


@pytest.fixture
def text_pipeline(tiny_bert):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(sktransfer.PretrainedTextEmbeddings(f"hf/{tiny_bert}"),
                         LogisticRegression(max_iter=500)).fit(TEXTS, TOPICS)


def test_a_text_pipeline_saved_from_python_predicts(text_pipeline, tmp_path,
                                                     capsys):
    model = tmp_path / "texts.skt"
    sktransfer.save(text_pipeline, model)  # no metadata: not 'sktransfer fit'
    expected = list(text_pipeline.predict(TEXTS))
    # the default column: "text"
    table = tmp_path / "new.csv"
    pd.DataFrame({"id": range(8), "text": TEXTS}).to_csv(table, index=False)
    result = run(capsys, "predict", model, table)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected
    # the table's only column, whatever its name
    single = tmp_path / "single.csv"
    pd.DataFrame({"sentence": TEXTS}).to_csv(single, index=False)
    result = run(capsys, "predict", model, single)
    assert result.stdout.splitlines() == expected
    # several columns, none named "text": --column, or an error naming them
    other = tmp_path / "other.csv"
    pd.DataFrame({"id": range(8), "body": TEXTS}).to_csv(other, index=False)
    assert_clean_error(run(capsys, "predict", model, other), "--column",
                       "'text'", "['id', 'body']")
    result = run(capsys, "predict", model, other, "--column", "body")
    assert result.stdout.splitlines() == expected
    assert_clean_error(run(capsys, "predict", model, other, "--column", "nope"),
                       "no column 'nope'")


def test_a_bare_zero_shot_classifier_saved_from_python_predicts(tiny_bert, tmp_path,
                                                                 capsys):
    clf = sktransfer.ZeroShotTextClassifier(["pets", "transport"],
                                            model=f"hf/{tiny_bert}").fit()
    model = tmp_path / "zero.skt"
    sktransfer.save(clf, model)
    table = tmp_path / "new.csv"
    pd.DataFrame({"text": TEXTS}).to_csv(table, index=False)
    result = run(capsys, "predict", model, table, "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    written = pd.read_csv(tmp_path / "out.csv")
    assert written["prediction"].tolist() == list(clf.predict(TEXTS))
    assert written["input"].tolist() == TEXTS


def test_a_model_of_plain_numbers_is_one_clear_line(tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    model = tmp_path / "numbers.skt"
    sktransfer.save(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), model)
    assert_clean_error(run(capsys, "predict", model, tmp_path), "numbers.skt",
                       "LogisticRegression", "neither images nor texts")


@pytest.fixture
def photo_folder(tmp_path):
    X, y = load_photo_patches(4, 48, "train", classes=("brick", "grass"))
    root = tmp_path / "photos"
    for i, (image, label) in enumerate(zip(X, y, strict=True)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / label / f"{i}.png")
    return root


def test_an_image_pipeline_saved_from_python_predicts_and_exports(photo_folder,
                                                                  tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    paths = sorted(str(p) for p in photo_folder.rglob("*.png"))
    labels = [p.split(os.sep)[-2] for p in paths]
    pipe = make_pipeline(
        sktransfer.PretrainedImageFeatures("resnet18", weights=None, runtime="torch"),
        LogisticRegression(max_iter=500)).fit(paths, labels)
    model = tmp_path / "photos.skt"
    sktransfer.save(pipe, model)
    result = run(capsys, "predict", model, photo_folder)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [name for name, _ in rows] == paths
    assert [label for _, label in rows] == list(pipe.predict(paths))
    # a CSV of paths: the default column "path"
    table = tmp_path / "paths.csv"
    pd.DataFrame({"id": range(len(paths)), "path": paths}).to_csv(table, index=False)
    result = run(capsys, "predict", model, table)
    assert [line.split("\t")[1] for line in result.stdout.splitlines()] == \
        list(pipe.predict(paths))
    pytest.importorskip("skl2onnx")
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "photos.onnx"
    result = run(capsys, "export", model, out)
    assert result.returncode == 0, result.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    image = np.asarray(Image.open(paths[0]).convert("RGB"))[None]
    label = session.run(["label"], {"image": image})[0]
    assert list(label) == list(pipe.predict(paths[:1]))
    # a 5000 x 10 image is refused by the graph, before a 128000-wide resize
    with pytest.raises(Exception, match="aspect_ratio_over_50_to_1_is_refused"):
        session.run(["label"], {"image": np.zeros((1, 10, 5000, 3), np.uint8)})


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("command", ["predict", "export"])
def test_a_fifo_as_model_is_refused_without_blocking(command, tmp_path):
    fifo = tmp_path / "model.skt"
    os.mkfifo(fifo)
    second = tmp_path if command == "predict" else tmp_path / "m.onnx"
    # a subprocess: were the FIFO opened for reading, it would wait for a writer
    result = subprocess.run([sys.executable, "-m", "sktransfer.cli", command,
                             str(fifo), str(second)],
                            capture_output=True, text=True, timeout=120)
    assert_clean_error(result, "model.skt", "not a regular file")


def test_report_and_out_paths_are_checked_before_any_work(tmp_path, capsys,
                                                          monkeypatch):
    import sktransfer.cli._inputs as inputs
    import sktransfer.cli.fit as fit

    def no_work(*args, **kwargs):
        raise AssertionError("the data was read before the paths were checked")

    monkeypatch.setattr(inputs, "load_training_data", no_work)
    monkeypatch.setattr(fit, "load_training_data", no_work)
    table = tmp_path / "t.csv"
    pd.DataFrame({"text": TEXTS, "y": TOPICS}).to_csv(table, index=False)
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    common = ("--column", "text", "--target", "y")
    out = tmp_path / "m.skt"
    for report in (a_file, a_file / "under"):
        assert_clean_error(run(capsys, "fit", table, *common, "--out", out,
                               "--report", report), "--report", "a_file",
                           "is a file")
        assert_clean_error(run(capsys, "audit", table, *common, "--report",
                               report), "--report", "a_file", "is a file")
    assert_clean_error(run(capsys, "fit", table, *common, "--out",
                           a_file / "m.skt"), "a_file", "is a file")
    # a bare --report is <out>.report: checked too
    (tmp_path / "m.skt.report").write_text("a file")
    assert_clean_error(run(capsys, "fit", table, *common, "--out", out,
                           "--report"), "m.skt.report", "is a file")
    assert not out.exists()


def test_fit_out_creates_its_folder_as_report_does(tiny_bert, tmp_path, capsys):
    table = tmp_path / "t.csv"
    pd.DataFrame({"text": TEXTS, "y": TOPICS}).to_csv(table, index=False)
    out = tmp_path / "a" / "b" / "model.skt"
    result = run(capsys, "fit", table, "--column", "text", "--target", "y",
                 "--model", f"hf/{tiny_bert}", "--cv", 0, "--out", out)
    assert result.returncode == 0, result.stderr
    assert sktransfer.load(out).predict(TEXTS[:2]).shape == (2,)


def test_a_bare_fine_tuned_classifier_saved_from_python_predicts(photo_folder,
                                                                 tmp_path, capsys):
    paths = sorted(str(p) for p in photo_folder.rglob("*.png"))
    labels = [p.split(os.sep)[-2] for p in paths]
    clf = sktransfer.FineTunedClassifier("resnet18", weights=None, image_size=32,
                                         max_epochs=1, batch_size=8,
                                         random_state=0).fit(paths, labels)
    model = tmp_path / "tuned.skt"
    sktransfer.save(clf, model)
    result = run(capsys, "predict", model, photo_folder)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [name for name, _ in rows] == paths
    assert [label for _, label in rows] == list(clf.predict(paths))
    # export names what it cannot do, in one line
    assert_clean_error(run(capsys, "export", model, tmp_path / "t.onnx"),
                       "fine-tuned estimators cannot be exported")

"""Transfer-vs-scratch evaluation and the demo (run as a user would)."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sktransfer.datasets import load_photo_patches
from sktransfer.evaluate import (
    RawPixels,
    compare,
    format_table,
    learning_curve,
    learning_curve_figure,
    plot_learning_curve,
)


@pytest.fixture(scope="module")
def patches():
    X, y = load_photo_patches(6, 32, "train", classes=("brick", "coffee", "grass"))
    X_test, y_test = load_photo_patches(6, 32, "test",
                                        classes=("brick", "coffee", "grass"))
    return X, y, X_test, y_test


def test_compare_scores_every_model_on_the_same_folds(patches):
    X, y, _, _ = patches
    models = {"pixels": make_pipeline(RawPixels(8), LogisticRegression()),
              "majority": DummyClassifier()}
    table = compare(X, y, models, cv=3)
    assert list(table.index) == ["pixels", "majority"]
    assert {"accuracy_mean", "recall_macro_std", "f1_macro_mean",
            "fit_time"} <= set(table.columns)
    assert table.loc["majority", "accuracy_mean"] == pytest.approx(1 / 3)
    assert table.loc["pixels", "accuracy_mean"] > 0.5
    text = format_table(table)
    assert "±" in text and "pixels" in text


def test_raw_pixels_resizes_any_image(patches):
    X, _, _, _ = patches
    out = RawPixels(size=8).fit(X).transform([X[0], X[1][:20], X[2][..., 0]])
    assert out.shape == (3, 192) and out.min() >= 0 and out.max() <= 1


def test_learning_curve_and_its_plot(patches, tmp_path):
    X, y, X_test, y_test = patches
    curve = learning_curve(X, y, X_test, y_test,
                           {"pixels": make_pipeline(RawPixels(8),
                                                    LogisticRegression())},
                           per_class=(2, 4))
    assert list(curve["per_class"]) == [2, 4]
    assert curve["accuracy"].between(0, 1).all()
    fig = learning_curve_figure(curve, "title")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "labelled samples per class"
    assert ax.get_ylabel() == "held-out accuracy"
    assert len(ax.lines) == 1 and list(ax.lines[0].get_xdata()) == [2, 4]
    png = plot_learning_curve(curve, tmp_path / "curve.png")
    with Image.open(png) as image:
        assert image.size[0] > 400 and image.size[1] > 300


@pytest.mark.slow
def test_demo_quick_writes_tables_and_plots(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sktransfer.cli", "demo", "--quick", "--out",
         str(tmp_path)], capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "learning curve:" in result.stdout
    for stem in ("images", "text"):
        png = tmp_path / f"learning_curve_{stem}.png"
        assert png.stat().st_size > 20_000
        with Image.open(png) as image:
            colours = len(set(np.asarray(image.convert("RGB")).reshape(-1, 3)
                              .view([("", np.uint8)] * 3).ravel()))
            assert colours > 50  # lines, markers, text: a real plot
    text = pd.read_csv(tmp_path / "text_comparison.csv", index_col=0)
    scratch = text.loc[text.index.str.contains("scratch"), "accuracy_mean"].max()
    frozen = text.loc[text.index.str.contains("frozen"), "accuracy_mean"].item()
    tuned = text.loc[text.index.str.contains("fine-tuned"), "accuracy_mean"].item()
    assert frozen > scratch and tuned > scratch
    images = pd.read_csv(tmp_path / "images_comparison.csv", index_col=0)
    best_scratch = images.loc[images.index.str.contains("scratch"),
                              "accuracy_mean"].max()
    assert images.loc[images.index.str.contains("frozen"),
                      "accuracy_mean"].item() > best_scratch


def test_raw_pixels_names_its_features_and_sets_output(patches):
    X, _, _, _ = patches
    pixels = RawPixels(size=4).fit(X)
    names = pixels.get_feature_names_out()
    assert names.tolist() == [f"rawpixels{i}" for i in range(48)]
    frame = pixels.set_output(transform="pandas").transform(X[:3])
    assert frame.columns.tolist() == names.tolist()
    np.testing.assert_array_equal(frame.to_numpy(),
                                  RawPixels(size=4).fit(X).transform(X[:3]))

"""What the commands write, and what they read (issue 32): findings.csv cells
a spreadsheet would run as formulas are neutralised; ``embed`` skips elongated
images (their resize would take gigabytes), names each skipped row, refuses a
folder where a part goes and signs small inputs by their content."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sktransfer.cli.audit import spreadsheet_safe, write_audit_report


def test_findings_csv_neutralises_spreadsheet_formulas(tmp_path):
    texts = ["=HYPERLINK(\"http://evil\",\"x\")", "+cmd|' /C calc'!A0",
             "-2+3", "@SUM(A1)", "\tTab", "\rCR", "plain text", "a = b"]
    labels = ["=1+1", "ok", "ok", "ok", "-1", "ok", "ok", "ok"]
    issues = pd.DataFrame({"label": labels, "suggested": ["@x"] + ["ok"] * 7,
                           "quality": np.linspace(0, 1, 8),
                           "is_issue": [True] * 8})
    outliers = pd.DataFrame({"score": np.zeros(8), "is_outlier": [False] * 8})
    write_audit_report(texts, "text", issues, [[6, 7]], outliers, tmp_path)
    found = pd.read_csv(tmp_path / "findings.csv", keep_default_na=False)
    flagged = found[found["finding"] == "label_issue"]
    assert flagged["input"].tolist() == ["'" + t for t in texts[:6]] + texts[6:]
    assert flagged["label"].tolist() == ["'=1+1", "ok", "ok", "ok", "'-1", "ok",
                                         "ok", "ok"]
    assert flagged["suggested"].iloc[0] == "'@x"
    # no cell of the file starts a formula
    cells = [str(v) for v in found.to_numpy().ravel()]
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in cells)
    duplicates = found[found["finding"] == "duplicate"]
    assert duplicates["input"].tolist() == ["plain text", "a = b"]


def test_spreadsheet_safe_leaves_other_values():
    assert spreadsheet_safe(-1.5) == -1.5 and spreadsheet_safe(None) is None
    assert spreadsheet_safe("x=1") == "x=1"


# --- embed: elongated images, real rows in _skipped.csv, parts, signatures ---------

MODEL = ("--model", "shufflenet_v2_x0_5", "--weights", "None")


def thin_png(path, size=(16000, 1)):
    """A tiny PNG (about 130 bytes) of 16000 x 1 pixels: resizing its shorter
    side to a network's input would take gigabytes."""
    from PIL import Image

    Image.new("RGB", size).save(path, optimize=True)
    assert path.stat().st_size < 200
    return path


@pytest.fixture
def photos(tmp_path):
    from PIL import Image

    from sktransfer.datasets import load_photo_patches

    X, _ = load_photo_patches(3, 40, "train", classes=("brick", "grass"))
    folder = tmp_path / "images"
    folder.mkdir()
    paths = []
    for i, image in enumerate(X):  # BMP: every file the same size
        paths.append(folder / f"{i:02d}.bmp")
        Image.fromarray(image).save(paths[-1])
    return folder, paths


def embed(data, out, *args):
    from sktransfer.cli import main

    return main(["embed", str(data), "--out", str(out), *MODEL, "--no-progress",
                 *map(str, args)])


def test_an_elongated_image_is_refused_before_it_is_resized(photos, tmp_path):
    from sktransfer import PretrainedImageFeatures
    from sktransfer.exceptions import InvalidInputError

    _, paths = photos
    thin = thin_png(tmp_path / "thin.png")
    features = PretrainedImageFeatures(MODEL[1], weights=None, cache=False,
                                       runtime="torch").fit(paths[:1])
    with pytest.raises(InvalidInputError,
                       match=r"image 1 \(file '.*thin.png'\) is 16000 x 1 pixels, "
                             r"an aspect ratio over 50:1"):
        features.transform([str(paths[0]), str(thin)])
    with pytest.raises(InvalidInputError, match=r"image 0 is 1 x 400 pixels"):
        features.transform([np.zeros((400, 1, 3), np.uint8)])
    # at the limit: accepted
    assert features.transform([np.zeros((500, 10, 3), np.uint8)]).shape[0] == 1


def test_skip_bad_names_each_skipped_row_and_skips_elongated_images(
        photos, tmp_path, capsys):
    folder, paths = photos
    thin_png(folder / "02-thin.png")
    (folder / "04-junk.png").write_bytes(b"not an image")
    out = tmp_path / "o"
    assert embed(folder, out, "--skip-bad", "--partition-size", 2) == 0, \
        capsys.readouterr().err
    skipped = pd.read_csv(out / "_skipped.csv")
    assert [p.rsplit("/", 1)[-1] for p in skipped["path"]] == ["02-thin.png",
                                                               "04-junk.png"]
    # sorted folder: 00, 01, 02-thin, 02, 03, 04-junk, 04, 05
    assert skipped["error"].str.startswith("image 2 ").iloc[0]
    assert "16000 x 1" in skipped["error"].iloc[0]
    assert skipped["error"].str.startswith("image 5:").iloc[1]
    assert len(pd.read_parquet(out)) == len(paths)


def test_a_folder_in_place_of_a_part_is_a_clear_error(photos, tmp_path, capsys):
    folder, _ = photos
    out = tmp_path / "o"
    assert embed(folder, out, "--partition-size", 2) == 0
    capsys.readouterr()
    part = sorted(out.glob("part-*.parquet"))[1]
    part.unlink()
    part.mkdir()
    assert embed(folder, out) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("sktransfer: error: ") and "\n" not in error
    assert part.name in error and "not a regular file" in error


def test_an_input_replaced_with_the_same_size_and_time_is_embedded_again(
        photos, tmp_path, capsys):
    import os

    from sktransfer import PretrainedImageFeatures

    folder, paths = photos
    out = tmp_path / "o"
    assert embed(folder, out, "--partition-size", 2) == 0
    capsys.readouterr()
    before = os.stat(paths[2])
    paths[2].write_bytes(paths[5].read_bytes())  # same size: both BMPs of 40 x 40
    os.utime(paths[2], ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(paths[2])
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert embed(folder, out) == 0
    assert "2 already done" in capsys.readouterr().out  # of 3 partitions
    result = pd.read_parquet(out)
    reference = PretrainedImageFeatures(MODEL[1], weights=None, cache=False)
    expected = reference.fit(paths).transform([str(p) for p in paths])
    np.testing.assert_allclose(result.iloc[:, 1:].to_numpy(), expected, atol=1e-4)

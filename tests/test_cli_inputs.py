"""The CLI's input rules, written once: one table reader (CSV and parquet) for
fit, predict and embed, with one error type; one image-suffix rule."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from sktransfer.cli._inputs import (
    IMAGE_SUFFIXES,
    image_files,
    is_table,
    load_training_data,
    read_inputs,
    read_table,
)
from sktransfer.exceptions import CLIError

TEXTS = ["a cat sat", "dogs bark", "the cat purrs", "a dog runs"]


def _fit_args(data, column="text", target="label"):
    return argparse.Namespace(data=str(data), text_column=column, target=target)


@pytest.fixture(params=["csv", "parquet"])
def table(request, tmp_path):
    frame = pd.DataFrame({"text": TEXTS, "label": ["cat", "dog", "cat", "dog"]})
    path = tmp_path / f"data.{request.param}"
    if request.param == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


def test_fit_reads_csv_and_parquet_alike(table):
    X, y, modality = load_training_data(_fit_args(table))
    assert list(X) == TEXTS
    assert y.tolist() == ["cat", "dog", "cat", "dog"]
    assert modality == "text"


def test_embed_reads_the_same_tables(table):
    keys, column, modality = read_inputs(str(table), "text")
    assert (column, modality) == ("text", "text")
    assert keys["text"].tolist() == TEXTS


@pytest.mark.parametrize("reader", ["fit", "embed"])
def test_a_missing_column_is_one_error_type(table, reader):
    with pytest.raises(CLIError, match=r"no column 'body' \(--column\).*'text'"):
        if reader == "fit":
            load_training_data(_fit_args(table, column="body"))
        else:
            read_inputs(str(table), "body")


def test_a_missing_target_names_the_option(table):
    with pytest.raises(CLIError, match="with --target; its columns are"):
        load_training_data(_fit_args(table, target=None))


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_an_unreadable_table_is_a_cli_error(tmp_path, suffix):
    bad = tmp_path / f"bad.{suffix}"
    bad.write_bytes(b"text,topic\n\"unterminated,a\n" + bytes(range(128, 256)))
    kind = "CSV" if suffix == "csv" else "parquet"
    with pytest.raises(CLIError, match=f"cannot be read as a {kind} file"):
        read_table(bad, {"--column": "text"})


def test_tables_and_images_by_suffix(tmp_path):
    assert is_table("a.CSV") and is_table("b.parquet") and not is_table("c.txt")
    for name in ("a.JPG", "b.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    found = {p.name for p in image_files(tmp_path)}
    assert found == {"a.JPG", "b.png"}
    assert {".jpg", ".png"} <= IMAGE_SUFFIXES

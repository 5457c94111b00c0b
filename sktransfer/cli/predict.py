"""``sktransfer predict MODEL INPUTS``: predict with a model file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sktransfer.cli._inputs import (
    _check_readable,
    _ensure_path,
    _ensure_writable,
    column_inputs,
    image_files,
    is_table,
    read_table,
)
from sktransfer.cli.fit import MODEL_FORMAT, check_params
from sktransfer.exceptions import CLIError, ModelFileError, UnsafeModelFileError


def load_model_file(path, trust_pickle: bool = False) -> dict:
    """``{"estimator", "modality", "text_column"}`` from a model file.

    Any file written by ``sktransfer.save`` is read, from Python or from
    ``sktransfer fit`` alike (one format): the modality is the estimator's
    (``estimator_modality``), and ``text_column`` the one ``sktransfer fit``
    recorded (None for a file saved from Python). The file is read without
    running code; a pickle/joblib file (what ``sktransfer fit`` wrote before)
    only with ``trust_pickle``. Anything else, a damaged or truncated archive,
    a folder, a FIFO or a device included, is a ``ModelFileError``.
    """
    from sktransfer import persist

    path = _ensure_path(path)
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a model file: give "
                             f"the .skt file written by sktransfer.save or "
                             f"'sktransfer fit'")
    if not path.is_file():  # checked before opening: a FIFO would block
        raise ModelFileError(f"{str(path)!r} is not a regular file (a FIFO, "
                             f"socket or device is never opened as a model file)")
    if not _is_pickle(path):
        metadata = persist.read_metadata(path)  # ModelFileError when not a model
        estimator = persist.load(path)
        modality = estimator_modality(estimator, path)
        if metadata.get("format") != MODEL_FORMAT:  # saved from Python
            metadata = {"text_column": None}
        column = metadata.get("text_column")
        if column is not None and not isinstance(column, str):
            raise ModelFileError(f"{str(path)!r}: its metadata's text_column is a "
                                 f"{type(column).__name__}, not a column name")
        return {**metadata, "modality": modality, "estimator": estimator}
    if not trust_pickle:
        raise UnsafeModelFileError(
            f"{str(path)!r} is a pickle/joblib file (the format 'sktransfer fit' "
            f"wrote before .skt) and is not loaded: unpickling can run any code. "
            f"If you trust its author, pass --trust-pickle; then refit or save it "
            f"with sktransfer.save")
    return _load_pickle(path)


#: the sktransfer classes (and their bases) that fix what a model reads
_MODALITY_OF = {
    "PretrainedImageFeatures": "image", "ImageFineTuning": "image",
    "PretrainedTextEmbeddings": "text", "TextFineTuning": "text",
    "TextClassifierMixin": "text",
}


def estimator_modality(estimator, path) -> str:
    """``"image"`` or ``"text"``: what the saved ``estimator`` reads, from its
    sktransfer step (a pipeline's steps, a search's best estimator, in order).

    A model of other features (e.g. a bare ``LogisticRegression`` on numbers)
    is a ``CLIError``: the command line reads images and texts only.
    """
    modality = _find_modality(estimator, set())
    if modality is None:
        raise CLIError(
            f"{str(path)!r} holds a {type(estimator).__name__} that reads neither "
            f"images nor texts (no sktransfer embedder or fine-tuned network in "
            f"it): predict with it in Python (sktransfer.load)")
    return modality


def _find_modality(obj, seen: set):
    if id(obj) in seen:
        return None
    seen.add(id(obj))
    for cls in type(obj).__mro__:
        if cls.__module__.startswith("sktransfer.") and cls.__name__ in _MODALITY_OF:
            return _MODALITY_OF[cls.__name__]
    if isinstance(obj, dict):
        return None  # several models in one file: none is "the" model
    inner = [step for _, step in getattr(obj, "steps", None) or []]
    inner += [getattr(obj, name) for name in ("best_estimator_", "estimator_",
                                              "estimator")
              if not isinstance(getattr(obj, name, None), (type(None), str))]
    for step in inner:
        if (found := _find_modality(step, seen)) is not None:
            return found
    return None


def _is_pickle(path: Path) -> bool:
    """A pickle, or a joblib file (plain or compressed), by its first bytes."""
    from sktransfer.cache import open_regular

    with open_regular(path) as handle:
        start = handle.read(6)
    return start.startswith((b"\x80", b"\x1f\x8b", b"BZh", b"\xfd7zXZ",
                             b"\x28\xb5\x2f\xfd"))


def _load_pickle(path: Path) -> dict:
    import joblib

    try:
        saved = joblib.load(path)
    except Exception as exc:  # anything unpickling raises: not a model file
        raise CLIError(f"{str(path)!r} is not a sktransfer model file "
                       f"({type(exc).__name__})") from None
    if not isinstance(saved, dict) or saved.get("format") != MODEL_FORMAT:
        raise CLIError(f"{str(path)!r} is not a sktransfer model file (save one "
                       f"with 'sktransfer fit')")
    return saved


def _image_inputs(inputs):
    paths = []
    for item in inputs:
        path = _ensure_path(item)
        if path.is_dir():
            paths += [str(p) for p in image_files(path)]
        else:
            paths.append(str(path))
    _check_readable(paths)
    return paths


def run_predict(args):
    if args.output:
        _ensure_writable(args.output)
    saved = load_model_file(args.model_file, args.trust_pickle)
    X, names = _predict_inputs(args, saved)
    _speed_overrides(saved["estimator"], args)
    predictions = saved["estimator"].predict(X)
    if np.ndim(predictions) == 2:  # tags: each row's labels, joined
        classes = np.asarray(saved["estimator"].classes_, dtype=object)
        sep = str(saved.get("label_sep") or "|")
        predictions = [sep.join(map(str, classes[row == 1])) for row in
                       np.asarray(predictions)]
    if args.output:
        import pandas as pd

        pd.DataFrame({"input": names, "prediction": list(predictions)}).to_csv(
            args.output, index=False)
        print(f"wrote {len(predictions)} predictions to {args.output}")
        return
    for name, label in zip(names, predictions, strict=True):
        # images: "<path>\t<label>"; texts (which may hold tabs and newlines):
        # the label alone, one line per CSV row, in order.
        line = f"{name}\t{label}" if saved["modality"] == "image" else str(label)
        sys.stdout.write(line + "\n")


def _predict_inputs(args, saved):
    """``(X, names)``: image files / folders, or one table whose column holds
    the texts or image paths (``default_column``)."""
    table = len(args.inputs) == 1 and is_table(args.inputs[0])
    if saved["modality"] == "image" and not table:
        names = _image_inputs(args.inputs)
        return names, names
    if not table:
        raise CLIError("a text model predicts on one table (a CSV or parquet file)")
    path = _ensure_path(args.inputs[0])
    frame = read_table(path, {})
    column = default_column(args, saved, frame, path)
    X, names, _ = column_inputs(path, frame[column], saved["modality"])
    return X, names


#: the column read when neither --column nor the model file names one
DEFAULT_COLUMNS = {"text": ("text",), "image": ("path", "image", "file")}


def default_column(args, saved, frame, path) -> str:
    """``--column``, else the column ``sktransfer fit`` recorded, else the
    table's only column, else one named as ``DEFAULT_COLUMNS`` says (``text``
    for a text model; ``path``, ``image`` or ``file`` for an image model)."""
    column = getattr(args, "column", None) or saved.get("text_column")
    if column is not None:
        if column not in frame.columns:
            raise CLIError(f"{str(path)!r} has no column {column!r} (--column); "
                           f"its columns are {list(frame.columns)}")
        return column
    if len(frame.columns) == 1:
        return frame.columns[0]
    for name in DEFAULT_COLUMNS[saved["modality"]]:
        if name in frame.columns:
            return name
    names = " or ".join(repr(n) for n in DEFAULT_COLUMNS[saved["modality"]])
    raise CLIError(f"{str(path)!r}: name the column to predict on with --column "
                   f"(no column is named {names}); its columns are "
                   f"{list(frame.columns)}")


def _speed_overrides(estimator, args):
    """``--runtime`` / ``--exact-decode`` at predict time, on the steps having them.

    The loaded network is kept; only its runner and cache key follow the new
    settings.
    """
    params = {"runtime": args.runtime} if args.runtime else {}
    if args.exact_decode:
        params["fast_decode"] = False
    steps = [step for _, step in getattr(estimator, "steps", [(None, estimator)])]
    for step in steps:
        own = {k: v for k, v in params.items() if k in step.get_params(deep=False)}
        if own:
            step.set_params(**own)
            check_params(step)  # the estimator's own check of --runtime
            if hasattr(step, "runtime_"):
                # the loaded network stays: a refit would rebuild it from its
                # spec, and the file's weights are not the spec's
                step._apply_settings()

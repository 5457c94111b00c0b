"""``sktransfer predict MODEL INPUTS``: predict with a model file."""

from __future__ import annotations

import sys
from pathlib import Path

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
    """``{"estimator", "modality", "text_column"}`` from a ``sktransfer fit`` file.

    The sktransfer.save format is read without running code; a pickle/joblib
    file (what ``sktransfer fit`` wrote before) only with ``trust_pickle``.
    Anything else, a damaged or truncated archive included, is a
    ``ModelFileError``.
    """
    from sktransfer import persist

    path = _ensure_path(path)
    if path.is_dir():
        raise ModelFileError(f"{str(path)!r} is a folder, not a model file: give "
                             f"the .skt file written by 'sktransfer fit'")
    if not _is_pickle(path):
        metadata = persist.read_metadata(path)  # ModelFileError when not a model
        if metadata.get("format") != MODEL_FORMAT:
            raise CLIError(f"{str(path)!r} was not written by 'sktransfer fit' "
                           f"(load it with sktransfer.load in Python)")
        return {**metadata, "estimator": persist.load(path)}
    if not trust_pickle:
        raise UnsafeModelFileError(
            f"{str(path)!r} is a pickle/joblib file (the format 'sktransfer fit' "
            f"wrote before .skt) and is not loaded: unpickling can run any code. "
            f"If you trust its author, pass --trust-pickle; then refit or save it "
            f"with sktransfer.save")
    return _load_pickle(path)


def _is_pickle(path: Path) -> bool:
    """A pickle, or a joblib file (plain or compressed), by its first bytes."""
    with open(path, "rb") as handle:
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
    """``(X, names)``: image files / folders, or one CSV whose column (``--column``
    or the one the model was fitted on) holds the texts or image paths."""
    column = getattr(args, "column", None) or saved["text_column"]
    table = len(args.inputs) == 1 and is_table(args.inputs[0])
    if saved["modality"] == "image" and not table:
        names = _image_inputs(args.inputs)
        return names, names
    if not table:
        raise CLIError("a text model predicts on one table (a CSV or parquet file)")
    path = _ensure_path(args.inputs[0])
    X, names, _ = column_inputs(path, read_table(path, {"--column": column})[column],
                                saved["modality"])
    return X, names


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

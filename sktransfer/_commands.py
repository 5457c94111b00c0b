"""What the ``sktransfer fit / predict / models`` subcommands do."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sktransfer._fit_data import (
    _check_readable,
    _ensure_path,
    _ensure_writable,
    column_inputs,
    image_files,
    load_training_data,
    read_csv,
    resolve_task,
)
from sktransfer.exceptions import CLIError, UnsafeModelFileError

MODEL_FORMAT = "sktransfer-model"


def run_demo(args):
    from sktransfer.demo import run

    run(quick=args.quick, modality=args.modality, out=args.out)


# --- fit -----------------------------------------------------------------------

def _freeze_depth(value: str):
    if value == "all":
        return "all"
    try:
        return int(value)
    except ValueError:
        raise CLIError(f"--freeze-depth must be an int or 'all', got {value!r}") \
            from None


def _weights(value):
    return None if value in ("None", "none", "random") else value


def build_estimator(args, modality, task="classification"):
    """Frozen features + a linear model, or the fine-tuned estimator, for the
    modality (``image`` / ``text``) and task (``classification`` / ``regression``)."""
    import sktransfer as skt
    from sktransfer._fewshot_command import fewshot_estimator

    if (few_labels := fewshot_estimator(args, modality, task)) is not None:
        return few_labels
    regression = task == "regression"
    if args.finetune:
        if modality == "image":
            cls = skt.FineTunedRegressor if regression else skt.FineTunedClassifier
            return cls(args.model or "efficientnet_lite0",
                       weights=_weights(args.weights),
                       freeze_depth=_freeze_depth(args.freeze_depth),
                       max_epochs=args.max_epochs, image_size=args.image_size,
                       random_state=0, fast_decode=_fast_decode(args))
        cls = skt.FineTunedTextRegressor if regression else skt.FineTunedTextClassifier
        return cls(args.model or "all-MiniLM-L6-v2",
                   freeze_depth=_freeze_depth(args.freeze_depth),
                   max_epochs=args.max_epochs, random_state=0)
    return _frozen_pipeline(args, modality, regression)


def _fast_decode(args) -> bool:
    return not getattr(args, "exact_decode", False)


def _frozen_pipeline(args, modality, regression):
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import sktransfer as skt

    runtime = getattr(args, "runtime", None) or "auto"
    head = (RidgeCV(np.logspace(-3, 4, 15)) if regression
            else LogisticRegression(max_iter=2000))
    if modality == "image":
        features = skt.PretrainedImageFeatures(
            args.model or "efficientnet_lite0", weights=_weights(args.weights),
            runtime=runtime, fast_decode=_fast_decode(args))
        return make_pipeline(features, StandardScaler(), head)
    return make_pipeline(skt.PretrainedTextEmbeddings(
        args.model or "all-MiniLM-L6-v2", runtime=runtime), head)


def _cross_validate(args, X, y, estimator, task):
    from sktransfer.evaluate import compare, format_table

    if task == "regression":
        scoring = ("r2", "neg_mean_absolute_error")
        table = compare(X, y, {"model": estimator}, cv=args.cv, scoring=scoring,
                        progress=True)
        print(format_table(table, scoring))
        return
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < args.cv:
        raise CLIError(f"--cv {args.cv} needs at least {args.cv} samples per "
                       f"class; the smallest class has {counts.min()}")
    table = compare(X, y, {"model": estimator}, cv=args.cv, progress=True)
    print(format_table(table))


def _write_report(args, X, y, modality, estimator, fitted):
    """``estimator`` (unfitted) is cross-validated; ``fitted`` (on all rows, the
    model just saved) gives the training curve of a fine-tuned one."""
    import webbrowser

    from sklearn.base import clone

    from sktransfer.report import write_report

    folder = args.report or f"{args.out}.report"
    path = write_report(clone(estimator), X, y, folder, modality=modality,
                        cv=max(args.cv, 2), fitted=fitted,
                        title=f"sktransfer fit {Path(args.data).name}")
    print(f"wrote the report to {path}")
    if args.open:
        webbrowser.open(path.resolve().as_uri())


def run_fit(args):
    from sklearn.base import clone

    from sktransfer import persist
    from sktransfer._fewshot_command import fit_label_names_only

    out = _ensure_writable(args.out)
    if fit_label_names_only(args, lambda model, path, meta: persist.save(
            model, path, metadata={"format": MODEL_FORMAT, **meta})):
        return
    X, y, modality = load_training_data(args)
    task, y = resolve_task(args, y)
    estimator = build_estimator(args, modality, task)
    _, counts = np.unique(y, return_counts=True)
    if task != "regression" and len(counts) < 2:
        raise CLIError(f"{args.data!r} holds a single class: a classifier needs "
                       f"at least 2")
    if args.cv >= 2:
        _cross_validate(args, X, y, estimator, task)
    fitted = clone(estimator).fit(X, y)
    persist.save(fitted, out, metadata={
        "format": MODEL_FORMAT, "modality": modality,
        "text_column": args.text_column, "task": task})
    kind = "regression" if task == "regression" else f"{len(counts)} classes"
    print(f"saved {modality} model ({len(y)} samples, {kind}) to {out}")
    if args.report is not None or args.open:
        _write_report(args, X, y, modality, estimator, fitted)


# --- predict -------------------------------------------------------------------

def load_model_file(path, trust_pickle: bool = False) -> dict:
    """``{"estimator", "modality", "text_column"}`` from a ``sktransfer fit`` file.

    The sktransfer.save format is read without running code; a pickle/joblib
    file (what ``sktransfer fit`` wrote before) only with ``trust_pickle``.
    """
    import zipfile

    from sktransfer import persist

    path = _ensure_path(path)
    if zipfile.is_zipfile(path):
        metadata = persist.read_metadata(path)
        if metadata.get("format") != MODEL_FORMAT:
            raise CLIError(f"{str(path)!r} was not written by 'sktransfer fit' "
                           f"(load it with sktransfer.load in Python)")
        return {**metadata, "estimator": persist.load(path)}
    if not trust_pickle:
        raise UnsafeModelFileError(
            f"{str(path)!r} is not a sktransfer model file (.skt) and is not "
            f"loaded: a pickle/joblib file can run any code when loaded. If you "
            f"trust its author, pass --trust-pickle")
    return _load_pickle(path)


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
    _speed_overrides(saved["estimator"], args, X)
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
    csv = len(args.inputs) == 1 and args.inputs[0].lower().endswith(".csv")
    if saved["modality"] == "image" and not csv:
        names = _image_inputs(args.inputs)
        return names, names
    if not csv:
        raise CLIError("a text model predicts on one CSV file")
    if column is None:
        raise CLIError("name the CSV column holding the image paths with --column")
    path = _ensure_path(args.inputs[0])
    X, names, _ = column_inputs(path, read_csv(path, column)[column],
                                saved["modality"])
    return X, names


def _speed_overrides(estimator, args, X):
    """``--runtime`` / ``--exact-decode`` at predict time, on the steps having them.

    A frozen embedder learned nothing from its data: fitting it again (on the
    first input) only reloads the network with the new settings.
    """
    params = {"runtime": args.runtime} if args.runtime else {}
    if args.exact_decode:
        params["fast_decode"] = False
    steps = [step for _, step in getattr(estimator, "steps", [(None, estimator)])]
    for step in steps:
        own = {k: v for k, v in params.items() if k in step.get_params(deep=False)}
        if own:
            step.set_params(**own)
            if hasattr(step, "runtime_"):
                step.fit(X[:1])


# --- models --------------------------------------------------------------------

def run_models(args):
    from sktransfer.backbones import list_model_rows

    # The static part (block counts, weight file names) is read from the shipped
    # catalog: no torch import, so the table takes a fraction of a second.
    print(plain_table(list_model_rows(blocks=True)))


def plain_table(rows: list[dict]) -> str:
    """``DataFrame(rows).to_string(index=False)`` without pandas: right-aligned
    columns one space apart, None shown as ``<NA>``, and (as pandas does) one
    more space before number and bool columns."""
    columns = list(rows[0])
    cells = [columns] + [["<NA>" if row[c] is None else str(row[c]) for c in columns]
                         for row in rows]
    widths = [max(len(line[i]) for line in cells)
              + (not any(isinstance(row[c], str) for row in rows))
              for i, c in enumerate(columns)]
    return "\n".join(
        " ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True))
        for line in cells
    )

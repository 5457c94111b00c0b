"""What the ``sktransfer fit / predict / models`` subcommands do."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from sktransfer.exceptions import CLIError, UnsafeModelFileError


def _ensure_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CLIError(f"{str(path)!r} does not exist")
    return path


def _ensure_writable(path) -> Path:
    """Checked before the work: a missing folder is not found after training."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CLIError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} "
                       f"does not exist")
    return path


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
MODEL_FORMAT = "sktransfer-model"


def run_demo(args):
    from sktransfer.demo import run

    run(quick=args.quick, modality=args.modality, out=args.out)


# --- data ----------------------------------------------------------------------

def read_image_folder(folder: Path):
    """Paths and labels from ``folder/<class>/<image>``; checks every image."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise CLIError(f"{str(folder)!r} must hold one sub-folder per class "
                       f"(at least 2), found {len(classes)}")
    paths, labels = [], []
    for cls in classes:
        files = sorted(p for p in cls.rglob("*") if p.suffix.lower()
                       in IMAGE_SUFFIXES)
        if not files:
            raise CLIError(f"class folder {str(cls)!r} holds no image "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        paths += files
        labels += [cls.name] * len(files)
    _check_readable(paths)
    return [str(p) for p in paths], np.asarray(labels)


def _check_readable(paths):
    from PIL import Image

    bad = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception:
            bad.append(str(path))
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise CLIError(f"{len(bad)} unreadable image(s): {shown}")


def read_csv(path: Path, text_column, target=None):
    import pandas as pd

    if not text_column:
        raise CLIError("a CSV needs --text-column (and --target for fit)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise CLIError(f"{str(path)!r} cannot be read as a CSV file: "
                       f"{type(exc).__name__}: {exc}") from None
    for option, column in (("--text-column", text_column), ("--target", target)):
        if column is not None and column not in frame.columns:
            raise CLIError(f"{str(path)!r} has no column {column!r} ({option}); "
                           f"its columns are {list(frame.columns)}")
    return frame


AUTO_REGRESSION_MIN_DISTINCT = 10  # --task auto: more distinct numbers: regression


def resolve_task(args, y, modality):
    """``--task`` resolved (see ``AUTO_REGRESSION_MIN_DISTINCT``), and y for it."""
    task = args.task
    if task == "auto":
        numeric = modality == "text" and np.asarray(y).dtype.kind in "iuf"
        many = numeric and len(np.unique(y)) > AUTO_REGRESSION_MIN_DISTINCT
        task = "regression" if many else "classification"
    if task == "regression" and modality == "image":
        raise CLIError("an image folder holds class labels: --task regression "
                       "needs a CSV with a numeric --target")
    if task == "regression":
        y = regression_target(y, args.target)
    return task, y


def regression_target(values, column):
    """``--target`` as floats; errors name the column and the first bad row."""
    import pandas as pd

    from sktransfer.exceptions import InvalidInputError

    values = pd.Series(values)
    numbers = pd.to_numeric(values, errors="coerce").astype(float)
    bad = np.flatnonzero(~np.isfinite(numbers.to_numpy()))
    if len(bad):
        raise InvalidInputError(f"--target column {column!r} must hold numbers for "
                                f"regression: row {bad[0]} is {values[bad[0]]!r}")
    if numbers.nunique() < 2:
        raise InvalidInputError(f"--target column {column!r} is constant (every "
                                f"row is {values[0]!r}): there is nothing to "
                                f"regress")
    return numbers.to_numpy()


def load_training_data(args):
    data = _ensure_path(args.data)
    if data.is_dir():
        X, y = read_image_folder(data)
        return X, y, "image"
    if data.suffix.lower() != ".csv":
        raise CLIError(f"{str(data)!r} is neither an image folder nor a .csv file")
    if not args.target:
        raise CLIError("a CSV needs --target, the column holding the labels")
    frame = read_csv(data, args.text_column, args.target)
    if frame[args.target].isna().any():
        row = int(np.flatnonzero(frame[args.target].isna())[0])
        raise CLIError(f"row {row} of {args.target!r} has no label")
    return frame[args.text_column], frame[args.target].to_numpy(), "text"


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
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import sktransfer as skt

    if task == "regression":
        return build_regressor(args, modality)
    runtime = getattr(args, "runtime", None) or "auto"
    fast_decode = not getattr(args, "exact_decode", False)
    if modality == "image":
        model = args.model or "efficientnet_lite0"
        if args.finetune:
            return skt.FineTunedClassifier(
                model, weights=_weights(args.weights), freeze_depth=_freeze_depth(
                    args.freeze_depth), max_epochs=args.max_epochs,
                image_size=args.image_size, random_state=0, fast_decode=fast_decode)
        return make_pipeline(skt.PretrainedImageFeatures(
            model, weights=_weights(args.weights), runtime=runtime,
            fast_decode=fast_decode),
                             StandardScaler(), LogisticRegression(max_iter=2000))
    model = args.model or "all-MiniLM-L6-v2"
    if args.finetune:
        return skt.FineTunedTextClassifier(
            model, freeze_depth=_freeze_depth(args.freeze_depth),
            max_epochs=args.max_epochs, random_state=0)
    return make_pipeline(skt.PretrainedTextEmbeddings(model, runtime=runtime),
                         LogisticRegression(max_iter=2000))


def build_regressor(args, modality):
    """Text embeddings + ridge, or the fine-tuned text regressor."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline

    import sktransfer as skt

    model = args.model or "all-MiniLM-L6-v2"
    if args.finetune:
        return skt.FineTunedTextRegressor(
            model, freeze_depth=_freeze_depth(args.freeze_depth),
            max_epochs=args.max_epochs, random_state=0)
    return make_pipeline(
        skt.PretrainedTextEmbeddings(model, runtime=getattr(args, "runtime", None)
                                     or "auto"),
        RidgeCV(np.logspace(-3, 4, 15)))


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

    out = _ensure_writable(args.out)
    X, y, modality = load_training_data(args)
    task, y = resolve_task(args, y, modality)
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
            paths += sorted(str(p) for p in path.rglob("*")
                            if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(str(path))
    _check_readable(paths)
    return paths


def run_predict(args):
    if args.output:
        _ensure_writable(args.output)
    saved = load_model_file(args.model_file, args.trust_pickle)
    if saved["modality"] == "image":
        names = _image_inputs(args.inputs)
        X = names
    else:
        if len(args.inputs) != 1 or not args.inputs[0].endswith(".csv"):
            raise CLIError("a text model predicts on one CSV file")
        frame = read_csv(_ensure_path(args.inputs[0]), saved["text_column"])
        X = frame[saved["text_column"]]
        names = X.tolist()
    _speed_overrides(saved["estimator"], args, X)
    predictions = saved["estimator"].predict(X)
    if args.output:
        import pandas as pd

        pd.DataFrame({"input": names, "prediction": predictions}).to_csv(
            args.output, index=False)
        print(f"wrote {len(predictions)} predictions to {args.output}")
        return
    for name, label in zip(names, predictions, strict=True):
        # images: "<path>\t<label>"; texts (which may hold tabs and newlines):
        # the label alone, one line per CSV row, in order.
        line = f"{name}\t{label}" if saved["modality"] == "image" else str(label)
        sys.stdout.write(line + "\n")


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

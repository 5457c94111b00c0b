"""What ``sktransfer fit`` / ``predict`` read: image folders and CSV columns
(texts, or paths of images), and which task a ``--target`` column is."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sktransfer._embed_command import (
    IMAGE_SUFFIXES,
    _looks_like_paths,
    image_files,
)
from sktransfer.exceptions import CLIError, InvalidInputError

AUTO_MIN_NUMERIC = 0.9  # --task auto: a column this numeric is meant to be numbers


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


def read_image_folder(folder: Path):
    """Paths and labels from ``folder/<class>/<image>``; checks every image."""
    classes = sorted(p for p in folder.iterdir() if p.is_dir())
    if len(classes) < 2:
        raise CLIError(f"{str(folder)!r} must hold one sub-folder per class "
                       f"(at least 2), found {len(classes)}")
    paths, labels = [], []
    for cls in classes:
        files = image_files(cls)
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


def read_csv(path: Path, column, target=None):
    import pandas as pd

    if not column:
        raise CLIError("a CSV needs --column, the column holding the texts or "
                       "image paths (and --target for fit)")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError,
            UnicodeDecodeError) as exc:
        raise CLIError(f"{str(path)!r} cannot be read as a CSV file: "
                       f"{type(exc).__name__}: {exc}") from None
    for option, name in (("--column", column), ("--target", target)):
        if name is not None and name not in frame.columns:
            raise CLIError(f"{str(path)!r} has no column {name!r} ({option}); "
                           f"its columns are {list(frame.columns)}")
    return frame


def column_inputs(path: Path, values, modality=None):
    """``(X, names, modality)`` of the CSV ``path``'s column ``values``: texts,
    or images when it holds image paths (relative ones are resolved against the
    CSV's folder; every image is checked). ``modality`` forces one (a saved
    model's).
    """

    column = values.name
    if modality is None:
        modality = "image" if _looks_like_paths(values) else "text"
    if modality == "text":
        return values, values.tolist(), "text"
    if values.isna().any():
        row = int(np.flatnonzero(values.isna())[0])
        raise CLIError(f"row {row} of {column!r} has no image path")
    names = values.astype(str).tolist()
    paths = [str(path.parent / name) for name in names]  # absolute names stay
    for row, image in enumerate(paths):
        if not Path(image).is_file():
            raise CLIError(f"row {row} of {column!r}: image {names[row]!r} not "
                           f"found (relative paths start at {str(path.parent)!r})")
    _check_readable(paths)
    return paths, names, "image"


def load_training_data(args):
    """``(X, y, modality)``: an image folder, or a CSV of texts or image paths."""
    data = _ensure_path(args.data)
    if data.is_dir():
        X, y = read_image_folder(data)
        return X, y, "image"
    if data.suffix.lower() != ".csv":
        raise CLIError(f"{str(data)!r} is neither an image folder nor a .csv file")
    if not args.target:
        raise CLIError("a CSV needs --target, the column holding the labels")
    frame = read_csv(data, args.text_column, args.target)
    target = frame[args.target]
    if target.isna().any():
        row = int(np.flatnonzero(target.isna())[0])
        raise CLIError(f"row {row} of {args.target!r} has no label")
    X, _, modality = column_inputs(data, frame[args.text_column])
    return X, target.to_numpy(), modality


def resolve_task(args, y):
    """``--task`` resolved (``auto``: see :func:`auto_task`), and y for it."""
    task = args.task
    folder = Path(args.data).is_dir()
    if task == "auto":
        task = "classification" if folder else auto_task(y, args.target)
    if task == "regression" and folder:
        raise CLIError("an image folder holds class labels: --task regression "
                       "needs a CSV with a numeric --target")
    if task == "regression":
        y = regression_target(y, args.target)
    return task, y


def auto_task(values, column) -> str:
    """scikit-learn's reading of the target (``type_of_target``): continuous
    numbers are a regression; integers (class ids) and labels a classification.

    A column of numbers with a few values that are not (at least
    ``AUTO_MIN_NUMERIC`` parse as numbers) is an error naming the first bad
    row, as with ``--task regression``, rather than a classification.
    """
    import pandas as pd
    from sklearn.utils.multiclass import type_of_target

    numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(float)
    finite = np.isfinite(numbers)
    if not finite.all():
        if finite.mean() >= AUTO_MIN_NUMERIC:
            try:
                regression_target(values, column)
            except InvalidInputError as exc:  # name the first bad row
                raise InvalidInputError(f"{exc}; or pass --task classification "
                                        f"if the column holds labels") from None
        return "classification"
    kind = type_of_target(numbers)
    if kind.startswith("continuous"):
        return "regression"
    _, counts = np.unique(numbers, return_counts=True)
    if counts.min() < 2:  # whole numbers, some seen once: prices? years? ids?
        raise CLIError(
            f"--target column {column!r} holds whole numbers with {len(counts)} "
            f"distinct values, some on a single row: a quantity (--task "
            f"regression) or class ids (--task classification)? Pass --task")
    return "classification"


def regression_target(values, column):
    """``--target`` as floats; errors name the column and the first bad row."""
    import pandas as pd

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

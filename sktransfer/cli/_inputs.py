"""What the commands read: image folders and table columns (CSV or parquet:
texts, or paths of images) for ``fit`` / ``predict``, which task a ``--target``
column is, and the inputs of ``embed`` (a folder, a table, a list of paths).

One rule each: image suffixes (``IMAGE_SUFFIXES``), tables (``read_table``,
one ``CLIError`` type), "these strings are image paths" (``_looks_like_paths``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sktransfer.exceptions import CLIError, InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TABLE_SUFFIXES = {".csv", ".parquet", ".pq"}
AUTO_MIN_NUMERIC = 0.9  # --task auto: a column this numeric is meant to be numbers


def _ensure_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise CLIError(f"{str(path)!r} does not exist")
    return path


def _ensure_writable(path, *, create_parent: bool = False) -> Path:
    """Checked before the work: an output path that is a folder, or whose
    folder does not exist (``create_parent=False``) or cannot be created
    (``create_parent=True``: it is made when the file is written), is not
    found after training."""
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"cannot write {str(path)!r}: it is a folder; give a file "
                       f"name")
    if create_parent:
        ensure_folder_creatable(path.parent, f"cannot write {str(path)!r}")
    elif not path.parent.is_dir():
        raise CLIError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} "
                       f"does not exist")
    return path


def ensure_folder_creatable(folder, what: str) -> Path:
    """``folder`` is one, or can be made (with its parents): checked before
    any work, so that an output option (``--report``, ``--out``) does not
    fail after it. ``what`` starts the error message."""
    import os

    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        whose = ("it" if existing == folder
                 else f"its parent {str(existing)!r}")
        raise CLIError(f"{what}: folder {str(folder)!r} cannot be created, "
                       f"{whose} is a file")
    if not existing.exists():
        raise CLIError(f"{what}: folder {str(folder)!r} cannot be created "
                       f"({str(existing)!r} is a broken link)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CLIError(f"{what}: no permission to write in folder "
                       f"{str(existing)!r}")
    return folder


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

    from sktransfer.cache import open_regular

    bad = []
    for path in paths:
        try:
            with open_regular(path) as handle, Image.open(handle) as image:
                image.verify()
        except Exception:
            bad.append(str(path))
    if bad:
        shown = ", ".join(bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise CLIError(f"{len(bad)} unreadable image(s): {shown}")


def is_table(path) -> bool:
    """Whether ``path`` names a table (CSV or parquet), by its suffix."""
    return Path(path).suffix.lower() in TABLE_SUFFIXES


def read_table(path: Path, columns: dict) -> pd.DataFrame:
    """The CSV or parquet table ``path``, for ``fit``, ``predict`` and ``embed``
    alike; ``columns`` maps each option (``{"--column": "text"}``) to the column
    it must name. Every problem is one ``CLIError`` naming the file."""
    import pandas as pd

    kind = "CSV" if Path(path).suffix.lower() == ".csv" else "parquet"
    target = columns.get("--target")
    try:
        # labels stay exactly as written ("007" is not 7, "1e3" is not
        # "1000"); regression_target turns them into numbers
        frame = (pd.read_csv(path, dtype=None if target is None else {target: str})
                 if kind == "CSV" else pd.read_parquet(path))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise CLIError(f"{str(path)!r} cannot be read as a {kind} file: "
                       f"{type(exc).__name__}: {exc}") from None
    for flag, name in columns.items():
        if name is None:
            raise CLIError(f"{str(path)!r}: name the column to use with {flag}; "
                           f"its columns are {list(frame.columns)}")
        if name not in frame.columns:
            raise CLIError(f"{str(path)!r} has no column {name!r} ({flag}); "
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
    if not is_table(data):
        raise CLIError(f"{str(data)!r} is neither an image folder nor a table "
                       f"({', '.join(sorted(TABLE_SUFFIXES))})")
    frame = read_table(data, {"--column": args.text_column,
                               "--target": args.target})
    target = frame[args.target]
    if target.isna().any():
        row = int(np.flatnonzero(target.isna())[0])
        raise CLIError(f"row {row} of {args.target!r} has no label")
    X, _, modality = column_inputs(data, frame[args.text_column])
    return X, target.to_numpy(dtype=object), modality


def split_tags(args, y) -> list[list[str]]:
    """``--label-sep``: each target cell as a sorted list of its labels."""
    sep = args.label_sep
    if Path(args.data).is_dir():
        raise CLIError(
            "--label-sep reads several labels a row from a table: an image folder "
            "gives each image one class (its sub-folder), so folders cannot "
            "express tags. Use a CSV with a column of image paths (--column) and "
            "a --target column such as 'grass|brick'")
    if not sep:
        raise CLIError("--label-sep must be a non-empty separator, such as '|'")
    if args.task == "regression":
        raise CLIError("--label-sep is for labels (tags), not --task regression")
    return [sorted({t.strip() for t in str(cell).split(sep) if t.strip()})
            for cell in y]


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


# --- inputs --------------------------------------------------------------------

def image_files(folder: Path) -> list[Path]:
    """The image files under ``folder`` (recursive, by suffix), sorted."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _image_folder(folder: Path) -> pd.DataFrame:
    import pandas as pd

    paths = [str(p) for p in image_files(folder)]
    if not paths:
        raise InvalidInputError(f"{str(folder)!r} holds no image "
                                f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return pd.DataFrame({"path": paths})


def _path_list(path: Path) -> pd.DataFrame:
    """One path or URL per line, read literally (spaces and a leading ``#``
    are part of the name); empty lines are ignored."""
    import pandas as pd

    from sktransfer.cache import read_regular

    paths = [line for line in read_regular(path).decode("utf-8").splitlines()
             if line]
    if not paths:
        raise InvalidInputError(f"{str(path)!r} lists no path or URL")
    return pd.DataFrame({"path": paths})


def _looks_like_paths(values: pd.Series) -> bool:
    head = values.dropna().astype(str).head(50)
    return len(head) > 0 and all(
        Path(value.split("?")[0]).suffix.lower() in IMAGE_SUFFIXES for value in head)


def _table(path: Path, column, modality: str) -> tuple[pd.DataFrame, str]:
    import pandas as pd

    values = read_table(path, {"--column": column})[column]
    if modality == "auto":
        modality = "image" if _looks_like_paths(values) else "text"
    if modality == "image":
        return pd.DataFrame({"path": values.astype(object)}), "image"
    return pd.DataFrame({"row": range(len(values)), "text": values.astype(object)}), \
        "text"


def read_inputs(data: str, column=None, modality: str = "auto"):
    """``(keys frame, input column, modality)`` for DATA, in a fixed order."""
    path = Path(data)
    if not path.exists():
        raise InvalidInputError(f"{data!r} does not exist")
    if not path.is_dir() and not path.is_file():
        raise InvalidInputError(f"{data!r} is not a regular file or a folder (a "
                                f"FIFO, socket or device is never opened)")
    if path.is_dir():
        keys, found = _image_folder(path), "image"
    elif is_table(path):
        keys, found = _table(path, column, modality)
    else:
        keys, found = _path_list(path), "image"
    if modality not in ("auto", found):
        raise InvalidInputError(f"{data!r} holds {found} inputs, not {modality}")
    return keys, ("path" if found == "image" else "text"), found


def _check_texts(keys: pd.DataFrame) -> None:
    missing = keys["text"].isna()
    if missing.any():
        row = int(missing.to_numpy().nonzero()[0][0])
        raise InvalidInputError(
            f"row {row} has no text (empty or NaN); fill or drop it, or pass "
            f"--skip-bad to record it in _skipped.csv")

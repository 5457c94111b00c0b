"""One error family: bad user input raises a ``SktransferError`` that keeps its
builtin base (``ValueError`` / ``TypeError``), so ``except ValueError`` code and
the CLI's one-line error report both keep working."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import sktransfer
import sktransfer.exceptions as exc
from sktransfer.adapt import CORALClassifier, KernelMeanMatchingClassifier
from sktransfer.augment import eda

PACKAGE = Path(sktransfer.__file__).parent
BUILTINS = {"ValueError", "TypeError"}
# raises whose builtin type is a protocol, not a report of bad input
ALLOWED = {
    ("persist/_nets.py", "json_number"),  # json's `default` hook: TypeError
    ("persist/_limits.py", "_check_npy_header"),  # caught on the next line
}


def _bare_raises():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        allowed = {
            id(node)
            for func in ast.walk(tree)
            if isinstance(func, ast.FunctionDef) and (rel, func.name) in ALLOWED
            for node in ast.walk(func)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if (isinstance(target, ast.Name) and target.id in BUILTINS
                    and id(node) not in allowed):
                found.append(f"{rel}:{node.lineno} raise {target.id}")
    return found


def test_no_bare_value_or_type_error_raised_in_the_package():
    assert _bare_raises() == []


def test_the_scan_sees_a_bare_raise(tmp_path, monkeypatch):
    (tmp_path / "bad.py").write_text("def f():\n    raise ValueError('x')\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", tmp_path)
    assert _bare_raises() == ["bad.py:2 raise ValueError"]


def test_every_error_is_a_sktransfer_error_with_a_builtin_base():
    errors = [c for c in vars(exc).values()
              if inspect.isclass(c) and issubclass(c, Exception)
              and not issubclass(c, Warning)]
    assert exc.ParameterTypeError in errors
    for cls in errors:
        assert issubclass(cls, exc.SktransferError), cls
        if cls is not exc.SktransferError:
            assert issubclass(cls, (ValueError, TypeError, ImportError)), cls


def test_one_class_y_for_an_adapt_classifier():
    X = np.random.RandomState(0).normal(size=(10, 3))
    y = np.array([1] * 6 + [-1] * 4)
    with pytest.raises(exc.InvalidInputError, match="one class"):
        CORALClassifier().fit(X, y)


def test_no_labelled_row_for_an_adapt_classifier():
    X = np.random.RandomState(0).normal(size=(6, 3))
    with pytest.raises(exc.InvalidInputError, match="No labelled source rows"):
        KernelMeanMatchingClassifier().fit(X, np.full(6, -1))


@pytest.mark.parametrize(("kwargs", "error", "builtin"), [
    ({"rate": 2.0}, exc.ParameterError, ValueError),
    ({"operations": "delete"}, exc.ParameterTypeError, TypeError),
])
def test_bad_parameters_keep_their_builtin_base(kwargs, error, builtin):
    with pytest.raises(error) as info:
        eda("a few words here", **kwargs)
    assert isinstance(info.value, builtin)

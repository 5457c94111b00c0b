"""Defaults defined once: every estimator's default model is a bundled offline
one (``BUNDLED_IMAGE`` / ``BUNDLED_TEXT``), and the names are written only in
backbones/_bundled.py."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from sklearn.base import BaseEstimator

import sktransfer
from sktransfer.backbones import BUNDLED_IMAGE, BUNDLED_TEXT, list_models

PACKAGE = Path(sktransfer.__file__).parent


def _estimators_with_a_model():
    found = []
    for name in sktransfer.__all__:
        obj = getattr(sktransfer, name)
        if inspect.isclass(obj) and issubclass(obj, BaseEstimator) and \
                "model" in inspect.signature(obj).parameters:
            found.append(obj)
    return found


def test_the_core_estimators_are_covered():
    names = {cls.__name__ for cls in _estimators_with_a_model()}
    assert {"PretrainedImageFeatures", "PretrainedTextEmbeddings",
            "FineTunedClassifier", "FineTunedTextClassifier",
            "FineTunedRegressor", "FineTunedTextRegressor"} <= names


@pytest.mark.parametrize("cls", _estimators_with_a_model(), ids=lambda c: c.__name__)
def test_every_default_model_is_bundled_and_documented(cls):
    default = inspect.signature(cls).parameters["model"].default
    assert default in (BUNDLED_IMAGE, BUNDLED_TEXT)
    assert f'default="{default}"' in (cls.__doc__ or "") or \
        "model" not in (cls.__doc__ or "")


def test_the_bundled_defaults_resolve_offline():
    table = list_models().set_index("model")
    assert table.loc[BUNDLED_IMAGE, "offline"]  # pip install sktransfer[offline]
    assert table.loc[BUNDLED_TEXT, "offline"]


def _code_strings(tree):
    """String constants of a module, docstrings left out."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [node for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def test_the_bundled_names_are_written_once():
    written = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        for node in _code_strings(ast.parse(path.read_text(encoding="utf-8"))):
            if node.value in (BUNDLED_IMAGE, BUNDLED_TEXT):
                written.append(f"{rel}:{node.lineno}")
    assert written and all(w.startswith("backbones/_bundled.py:") for w in written), \
        written


def test_backbones_public_names_are_listed_once():
    """``_LAZY`` is the list; the TYPE_CHECKING imports must name the same
    names from the same modules."""
    import sktransfer.backbones as backbones

    tree = ast.parse(Path(backbones.__file__).read_text(encoding="utf-8"))
    (block,) = [n for n in tree.body if isinstance(n, ast.If)
                and "TYPE_CHECKING" in ast.unparse(n.test)]
    typed = {alias.name: node.module.rsplit(".", 1)[1]
             for node in block.body for alias in node.names}
    assert typed == backbones._LAZY
    assert sorted(backbones.__all__) == sorted(backbones._LAZY)
    for name in backbones.__all__:
        assert getattr(backbones, name) is not None

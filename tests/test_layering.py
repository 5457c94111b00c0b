"""The backbone layer is used only through its public names."""

import ast
from pathlib import Path

import sktransfer
import sktransfer.backbones as backbones

PACKAGE = Path(sktransfer.__file__).parent
ROOT = PACKAGE.parent
# Everything that imports sktransfer: the package, and the scripts shipped beside it.
SCANNED = [PACKAGE, ROOT / "benchmarks", ROOT / "examples"]


def private_backbone_imports(path: Path) -> list[str]:
    """``sktransfer.backbones._x`` imports in ``path``, as "line: module"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[:2] == ["sktransfer", "backbones"] and any(
                part.startswith("_") for part in parts[2:3]
            ):
                found.append(f"{node.lineno}: {module}")
    return found


def test_only_public_backbone_names_are_imported_outside_backbones():
    assert all(folder.is_dir() for folder in SCANNED)
    offenders = {
        str(path.relative_to(ROOT)): hits
        for folder in SCANNED
        for path in sorted(folder.rglob("*.py"))
        if not path.is_relative_to(PACKAGE / "backbones")
        and (hits := private_backbone_imports(path))
    }
    assert offenders == {}


def test_the_scan_catches_every_spelling(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text(
        "from sktransfer.backbones._text import x\n"
        "import sktransfer.backbones._base\n"
        "from sktransfer.backbones import _blocks\n"
        "from sktransfer.backbones import resolve_backbone\n"
    )
    assert private_backbone_imports(source) == [
        "1: sktransfer.backbones._text",
        "1: sktransfer.backbones._text.x",
        "2: sktransfer.backbones._base",
        "3: sktransfer.backbones._blocks",
    ]


def test_public_names_are_sorted_and_importable():
    names = backbones.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    for name in (
        "resolve_backbone", "Backbone", "Block", "POOLINGS", "find_blocks",
        "frozen_block_count", "set_frozen", "list_models", "is_offline",
        "spec_identity", "token_length", "make_eval_transform", "HEAD_NAMES",
    ):  # fmt: skip
        assert name in names and getattr(backbones, name) is not None


MODEL_LIBRARIES = ("transformers", "sentence_transformers", "timm", "gensim")


def test_model_libraries_are_imported_only_in_backbones():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "backbones"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            hits = [m for m in modules if m.split(".")[0] in MODEL_LIBRARIES]
            if hits:
                offenders.setdefault(str(path.relative_to(ROOT)), []).extend(hits)
    assert offenders == {}

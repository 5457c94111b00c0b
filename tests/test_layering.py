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


# --- the import graph: no circles, no private module at the top, cli/ on top ----

def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _runtime_imports(tree: ast.AST):
    """Import nodes that run: at module level and inside functions, not under
    ``if TYPE_CHECKING:`` (annotations only)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph(package: Path) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}`` for every module under
    ``package`` (a folder), imports inside functions and relative ones included;
    ``from pkg import name`` points at ``pkg.name`` when that is a module."""
    root = package.parent
    files = {_module_name(p, root): p for p in sorted(package.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        targets = set()
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                candidates = [[alias.name] for alias in node.names]
            else:
                base = here[: len(here) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                candidates = [[f"{module}.{alias.name}", module]
                              for alias in node.names]
            for options in candidates:
                for option in options:
                    # `import a.b.c` needs a.b.c; the longest prefix that is ours
                    parts = option.split(".")
                    found = next((".".join(parts[:n]) for n in range(len(parts), 0, -1)
                                  if ".".join(parts[:n]) in files), None)
                    if found is not None:
                        targets.add(found)
                        break
        targets.discard(name)
        graph[name] = targets
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of modules (Tarjan), as the
    modules in import order, the first repeated at the end."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_circle_in(graph, set(group)) for group in groups]


def _circle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:  # breadth first: the shortest way back to start
        node = frontier.pop(0)
        for target in sorted(graph[node] & group):
            if target == start:
                return paths[node] + [start]
            if target not in paths:
                paths[target] = paths[node] + [target]
                frontier.append(target)
    raise AssertionError("a strongly connected group always holds a circle")


def test_no_import_circles_in_the_package():
    graph = import_graph(PACKAGE)
    assert len(graph) == len(list(PACKAGE.rglob("*.py")))
    assert "sktransfer.exceptions" in graph["sktransfer.cli"]  # inside a function
    assert import_cycles(graph) == []


def test_the_graph_sees_every_spelling_and_finds_circles(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import b\n")
    (package / "a.py").write_text("def f():\n    from .sub.b import x\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import pkg.c\n"
        "if TYPE_CHECKING:\n    from pkg import a\n")
    (package / "c.py").write_text("from pkg import sub\n")
    graph = import_graph(package)
    assert graph == {"pkg": set(), "pkg.a": {"pkg.sub.b"}, "pkg.sub": {"pkg.sub.b"},
                     "pkg.sub.b": {"pkg.c"}, "pkg.c": {"pkg.sub"}}
    assert import_cycles(graph) == [["pkg.c", "pkg.sub", "pkg.sub.b", "pkg.c"]]
    (package / "c.py").write_text("")
    assert import_cycles(import_graph(package)) == []


def test_at_most_one_private_module_at_the_top():
    private = sorted(path.name for path in PACKAGE.glob("_*.py")
                     if path.name not in ("__init__.py", "__main__.py"))
    assert len(private) <= 1, private


def test_nothing_outside_cli_imports_cli():
    graph = import_graph(PACKAGE)

    def in_cli(module: str) -> bool:
        return module == "sktransfer.cli" or module.startswith("sktransfer.cli.")

    offenders = {module: sorted(filter(in_cli, targets))
                 for module, targets in graph.items()
                 if not in_cli(module) and any(map(in_cli, targets))}
    assert offenders == {}


# --- no reach into another subpackage's private parts (issue 33) ------------------

# Shared internals: any subpackage may import their modules (not their private
# names). Everything else goes through a subpackage's public names.
SHARED_INTERNALS = ("_utils", "_embedding")
# Known reaches (none left: the persistence hooks removed persist's); an entry
# that no longer occurs fails too, so the list only shrinks.
KNOWN_PRIVATE_REACHES: dict[str, set[str]] = {}


def _owner(rel: str) -> str:
    """The subpackage (or top-level module) a file of the package belongs to."""
    return rel.split("/")[0].removesuffix(".py")


def private_reaches(path: Path, rel: str) -> list[str]:
    """``"line: module[.name]"`` for each import in ``path`` (the package file
    ``rel``) of another subpackage's private module or private name."""
    own = _owner(rel)
    # the package a relative import starts from (an __init__'s is its folder)
    here = ["sktransfer", *rel.split("/")[:-1]]
    found = []
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported = [(alias.name, None) for alias in node.names]
        else:
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            imported = [(module, alias.name) for alias in node.names]
        for module, name in imported:
            parts = module.split(".")
            if parts[0] != "sktransfer" or len(parts) < 2 or parts[1] in (
                    own, "exceptions"):
                continue
            shared = parts[1] in SHARED_INTERNALS
            private_module = not shared and any(p.startswith("_") for p in parts[2:])
            private_name = name is not None and name.startswith("_") \
                and not name.startswith("__")
            if private_module or private_name:
                found.append((node.lineno, module
                              + (f".{name}" if private_name else "")))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_no_reach_into_another_subpackages_private_parts():
    offenders, known = {}, {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        hits = private_reaches(path, rel)
        allowed = KNOWN_PRIVATE_REACHES.get(rel, set())
        known[rel] = {h.split(": ", 1)[1] for h in hits} & allowed
        hits = [h for h in hits if h.split(": ", 1)[1] not in allowed]
        if hits:
            offenders[rel] = hits
    assert offenders == {}
    stale = {rel: sorted(modules - known.get(rel, set()))
             for rel, modules in KNOWN_PRIVATE_REACHES.items()
             if modules - known.get(rel, set())}
    assert stale == {}, "remove these from KNOWN_PRIVATE_REACHES"


def test_the_private_reach_scan_sees_every_spelling(tmp_path):
    folder = tmp_path / "sktransfer" / "report"
    folder.mkdir(parents=True)
    source = folder / "page.py"
    source.write_text(
        "from sktransfer.evaluate import _take, learning_curve\n"
        "from sktransfer.finetune._lora import merge_adapters\n"
        "import sktransfer.adapt._utils\n"
        "from sktransfer._embedding.runtime import _export, make_runner\n"
        "from sktransfer._utils.rows import take\n"
        "from sktransfer.report._own import mine\n"
        "from ..finetune import _module\n"
        "def later():\n"
        "    from sktransfer.persist._nets import save_networks\n"
    )
    assert private_reaches(source, "report/page.py") == [
        "1: sktransfer.evaluate._take",
        "2: sktransfer.finetune._lora",
        "3: sktransfer.adapt._utils",
        "4: sktransfer._embedding.runtime._export",
        "7: sktransfer.finetune._module",
        "9: sktransfer.persist._nets",
    ]

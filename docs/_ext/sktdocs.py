"""Pages generated at build time: the API reference and the user guide's index.

Nothing here names a public function or a guide page one by one, so the site
picks up new names, modules and pages without edits:

- **API reference**: every name in ``sktransfer.__all__``, then every public
  module of the package (``pkgutil`` over ``sktransfer/``, names without a
  leading underscore, minus :data:`NOT_API`) that defines ``__all__``, one page
  per name. An object exported in two places (``sktransfer.save`` and
  ``sktransfer.persist.save``) gets one page, at the first place; the second
  module's table links to it.
- **User guide**: every ``docs/*.md`` page, grouped by :data:`TOPICS`; a topic
  whose pages do not exist yet is left out, and a page no topic names is listed
  under "More" (so a new page never breaks the build).
- **Intersphinx**: the remote inventories are used only when they can be
  reached (CI has no network); set ``SKTRANSFER_DOCS_INTERSPHINX=0`` or ``1`` to
  decide without probing.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
import resource
from pathlib import Path
from urllib.request import Request, urlopen

PACKAGE = "sktransfer"
# Public-looking modules that are not API: the command line has its own guide
# page (nothing imports it) and the demo is run through it.
NOT_API = {"cli", "demo"}

# (title, page stems in order). Pages that do not exist are skipped.
TOPICS = [
    ("Getting started", ["demo"]),
    ("Frozen features", ["features", "text", "cache"]),
    ("Fine-tuning", ["finetune_overview", "finetune", "finetune_text", "lora"]),
    ("Few-shot and zero-shot", ["fewshot", "zeroshot"]),
    ("Multi-label (tags)", ["multilabel"]),
    ("Choosing a model and a layer", ["select"]),
    ("Domain adaptation", ["adapt"]),
    ("Auditing labels and active learning", ["audit", "active"]),
    ("Scaling out", ["scaling"]),
    ("Speed: runtimes, int8 and export", ["speed", "export", "int8"]),
    ("Persistence and safety", ["saving", "persistence"]),
    ("The command line", ["cli"]),
    ("Architecture", ["architecture"]),
    ("Benchmarks", ["benchmarks"]),
]

INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
}


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` unless the file already holds it (Sphinx rereads on mtime)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def heading(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


# ---------------------------------------------------------------- API reference


def public_modules() -> list[str]:
    """Public modules and subpackages of the package, sorted by name."""
    package = importlib.import_module(PACKAGE)
    names = [
        info.name
        for info in pkgutil.iter_modules(package.__path__)
        if not info.name.startswith("_") and info.name not in NOT_API
    ]
    return sorted(names)


def kind_of(obj) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if callable(obj):
        return "function"
    return "data"


def summary(obj) -> str:
    """The first line of an object's own docstring ('' for plain data)."""
    if kind_of(obj) == "data":
        return ""
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def exported(module) -> list[tuple[str, object]]:
    names = [n for n in getattr(module, "__all__", ()) if not n.startswith("__")]
    return [(name, getattr(module, name)) for name in names]


def name_page(qualname: str, obj) -> str:
    kind = kind_of(obj)
    text = heading(qualname) + "\n"
    if kind in ("class", "exception"):
        text += (f".. autoclass:: {qualname}\n   :members:\n"
                 "   :inherited-members:\n   :show-inheritance:\n")
        if kind == "class":
            text += "   :special-members: __call__\n"
    elif kind == "function":
        text += f".. autofunction:: {qualname}\n"
    else:
        text += f".. autodata:: {qualname}\n   :no-value:\n"
    return text


def module_page(modname: str, rows: list[tuple[str, str, str]], pages: list[str],
                automodule: bool) -> str:
    """One module: its docstring, a table of its names and a hidden toctree."""
    text = heading(f"``{modname}``") + "\n"
    if automodule:
        text += (f".. automodule:: {modname}\n   :no-members:\n"
                 "   :no-index:\n\n")
    if rows:
        text += ".. list-table::\n   :widths: 40 60\n\n"
        for target, role, line in rows:
            text += f"   * - :py:{role}:`~{target}`\n     - {line or ' '}\n"
        text += "\n"
    if pages:
        text += ".. toctree::\n   :hidden:\n\n"
        text += "".join(f"   {page}\n" for page in pages)
    return text


ROLES = {"class": "class", "exception": "exc", "function": "func", "data": "data"}


def generate_api(srcdir: Path) -> None:
    out = srcdir / "api"
    documented: dict[int | str, str] = {}  # id(object) -> where its page is
    sections = [(PACKAGE, importlib.import_module(PACKAGE))]
    sections += [(f"{PACKAGE}.{name}", importlib.import_module(f"{PACKAGE}.{name}"))
                 for name in public_modules()]
    written = set()
    index = [heading("API reference"), "\n",
             "Generated from ``__all__`` of the package and of each public "
             "module; every public name has a page.\n\n",
             ".. toctree::\n   :maxdepth: 1\n\n"]
    for modname, module in sections:
        rows, pages = [], []
        for name, obj in exported(module):
            kind = kind_of(obj)
            qualname = f"{modname}.{name}"
            key = qualname if kind == "data" else id(obj)
            if key not in documented:
                documented[key] = qualname
                page = f"generated/{qualname}"
                write_if_changed(out / f"{page}.rst", name_page(qualname, obj))
                written.add(f"{page}.rst")
                pages.append(page)
            rows.append((documented[key], ROLES[kind], summary(obj)))
        if not rows and modname != PACKAGE:
            continue
        page = f"{modname}.rst"
        write_if_changed(out / page, module_page(modname, rows, pages,
                                                 automodule=modname != PACKAGE))
        written.add(page)
        index.append(f"   {modname}\n")
    write_if_changed(out / "index.rst", "".join(index))
    # Pages of names that no longer exist would be orphans: remove them.
    for path in out.rglob("*.rst"):
        if str(path.relative_to(out)) not in written | {"index.rst"}:
            path.unlink()


# ------------------------------------------------------------------- user guide


def generate_guide(srcdir: Path) -> None:
    pages = {p.stem for p in srcdir.glob("*.md")}
    used = set()
    text = [heading("User guide"), "\n",
            "One page per topic. The runnable versions are in the "
            ":doc:`gallery <auto_examples/index>`.\n\n"]
    groups = []
    for title, stems in TOPICS:
        present = [s for s in stems if s in pages]
        used.update(present)
        if present:
            groups.append((title, present))
    rest = sorted(pages - used)
    if rest:
        groups.append(("More", rest))
    for title, present in groups:
        text.append(f".. toctree::\n   :maxdepth: 2\n   :caption: {title}\n\n")
        text.extend(f"   {stem}\n" for stem in present)
        text.append("\n")
    write_if_changed(srcdir / "user_guide.rst", "".join(text))


# ------------------------------------------------------------------ intersphinx


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url``'s ``objects.inv`` can be fetched now (a missing inventory
    would be a warning, so an error under ``-W``)."""
    try:
        with urlopen(Request(f"{url}/objects.inv", method="HEAD"),
                     timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):
        return False


def intersphinx_mapping() -> dict:
    choice = os.environ.get("SKTRANSFER_DOCS_INTERSPHINX", "").strip().lower()
    if choice in ("0", "false", "no", "off"):
        return {}
    if choice in ("1", "true", "yes", "on"):
        return dict(INTERSPHINX)
    return {key: value for key, value in INTERSPHINX.items() if reachable(value[0])}


# ------------------------------------------------ links out of docs/ (Markdown)

MD_LINK = re.compile(r"\[([^\]]*)\]\((?!\w+:|#)([^)\s#]+\.md)(#[^)\s]*)?\)")


def rewrite_outside_links(app, docname, source):
    """Links from a page to a Markdown file outside ``docs/`` (the README,
    ``benchmarks/RESULTS.md``) become links to the benchmarks page or file
    downloads, instead of references to documents that are not in the site."""
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".md":
        return
    srcdir = Path(app.srcdir).resolve()
    results = (srcdir.parent / "benchmarks" / "RESULTS.md").resolve()

    def replace(match):
        text, target, anchor = match.group(1), match.group(2), match.group(3) or ""
        resolved = (path.parent / target).resolve()
        if resolved.is_relative_to(srcdir):
            return match.group(0)
        if resolved == results:
            return f"[{text}](benchmarks.md{anchor})"
        text = text.replace("`", "")
        return f"{{download}}`{text} <{target}>`"

    source[0] = MD_LINK.sub(replace, source[0])


# ------------------------------------------------------------- gallery timing

_CPU_AT_START: dict[str, float] = {}


def example_cpu_time(gallery_conf, fname, when):
    """Print each gallery example's CPU seconds (sphinx-gallery reports wall
    time, which means little on a shared machine); a ``reset_modules`` hook."""
    if fname is None:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF)
    now = usage.ru_utime + usage.ru_stime
    if when == "before":
        _CPU_AT_START[str(fname)] = now
    elif str(fname) in _CPU_AT_START:
        spent = now - _CPU_AT_START.pop(str(fname))
        print(f"\n[gallery] {Path(fname).name}: {spent:.1f} s CPU")


# ------------------------------------------------------------ autodoc filtering


def defined_in_package(obj) -> bool:
    """Whether a member comes from sktransfer (not sklearn, skorch, torch...)."""
    target = obj.fget if isinstance(obj, property) else obj
    target = getattr(target, "__func__", target)
    module = getattr(target, "__module__", None) or ""
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def skip_foreign_members(app, what, name, obj, skip, options):
    """Document inherited methods only when sktransfer defines them."""
    if what in ("class", "exception") and not defined_in_package(obj):
        return True
    return None


def setup(app):
    srcdir = Path(app.srcdir)
    generate_api(srcdir)
    generate_guide(srcdir)
    app.connect("autodoc-skip-member", skip_foreign_members)
    app.connect("source-read", rewrite_outside_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

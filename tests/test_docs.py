"""The documentation site's generated pages (docs/_ext/sktdocs.py).

The full build (``python -m sphinx -W -b html docs docs/_build/html``) runs in
CI after the tests (.ci/run); these tests check, in a few seconds, what it is
built from: every public name gets a page, every guide page is in a toctree,
and an offline build asks for no remote inventory.
"""

import importlib
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))
sktdocs = importlib.import_module("sktdocs")


def test_every_public_name_has_a_page(tmp_path):
    sktdocs.generate_api(tmp_path)
    pages = {p.stem for p in (tmp_path / "api" / "generated").glob("*.rst")}
    modules = ["sktransfer"] + [f"sktransfer.{m}" for m in sktdocs.public_modules()]
    assert {"sktransfer.adapt", "sktransfer.backbones", "sktransfer.dask",
            "sktransfer.datasets", "sktransfer.evaluate", "sktransfer.augment",
            "sktransfer.cache", "sktransfer.persist"} <= set(modules)
    assert "sktransfer.cli" not in modules
    index = (tmp_path / "api" / "index.rst").read_text()
    for modname in modules:
        module = importlib.import_module(modname)
        names = [n for n in getattr(module, "__all__", ()) if not n.startswith("__")]
        if not names:
            continue
        assert f"   {modname}\n" in index
        table = (tmp_path / "api" / f"{modname}.rst").read_text()
        for name in names:
            # the table links each name to its one page (where it was first seen)
            target = re.search(rf":py:\w+:`~([\w.]+\.{name})`", table)
            assert target, f"{modname}.{name} is not in its module's table"
            assert target.group(1) in pages, f"{target.group(1)} has no page"
    # an object exported twice is documented once, where it was seen first
    assert "sktransfer.save" in pages and "sktransfer.persist.save" not in pages
    page = (tmp_path / "api" / "generated" / "sktransfer.adapt.CORAL.rst").read_text()
    assert ".. autoclass:: sktransfer.adapt.CORAL" in page


def test_pages_of_removed_names_are_deleted(tmp_path):
    stale = tmp_path / "api" / "generated" / "sktransfer.gone.rst"
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    sktdocs.generate_api(tmp_path)
    assert not stale.exists()


def test_every_guide_page_is_in_the_toctree_and_missing_topics_are_left_out(tmp_path):
    for stem in ("features", "adapt", "fewshot", "zzz_new_page"):
        (tmp_path / f"{stem}.md").write_text(f"# {stem}\n")
    sktdocs.generate_guide(tmp_path)
    guide = (tmp_path / "user_guide.rst").read_text()
    entries = re.findall(r"^   (\w+)$", guide, re.M)
    assert entries == ["features", "fewshot", "adapt", "zzz_new_page"]
    assert ":caption: Few-shot and zero-shot" in guide
    assert ":caption: More" in guide  # a page no topic names is still listed
    assert "select" not in entries  # a topic without its page yet: no dead entry


def test_the_real_guide_lists_every_docs_page(tmp_path):
    for page in DOCS.glob("*.md"):
        (tmp_path / page.name).write_text(page.read_text(encoding="utf-8"))
    sktdocs.generate_guide(tmp_path)
    entries = set(re.findall(r"^   (\w+)$", (tmp_path / "user_guide.rst").read_text(),
                             re.M))
    assert entries == {p.stem for p in DOCS.glob("*.md")}


@pytest.mark.parametrize("setting, reachable, expected", [
    ("0", True, set()),
    ("1", False, set(sktdocs.INTERSPHINX)),
    ("", False, set()),
    ("", True, set(sktdocs.INTERSPHINX)),
])
def test_intersphinx_only_with_reachable_inventories(monkeypatch, setting, reachable,
                                                     expected):
    monkeypatch.setenv("SKTRANSFER_DOCS_INTERSPHINX", setting)
    monkeypatch.setattr(sktdocs, "reachable", lambda url, timeout=3.0: reachable)
    mapping = sktdocs.intersphinx_mapping()
    assert set(mapping) == expected
    assert {"numpy", "sklearn", "torch"} <= set(sktdocs.INTERSPHINX)


def test_links_out_of_docs_become_downloads_or_the_benchmarks_page():
    env = SimpleNamespace(doc2path=lambda name: DOCS / f"{name}.md")
    app = SimpleNamespace(srcdir=str(DOCS), env=env)
    source = ["[results](../benchmarks/RESULTS.md#the-demo), [cache](cache.md), "
              "[the `README`](../README.md), [web](https://x.org/a.md)"]
    sktdocs.rewrite_outside_links(app, "scaling", source)
    assert source[0] == ("[results](benchmarks.md#the-demo), [cache](cache.md), "
                         "{download}`the README <../README.md>`, "
                         "[web](https://x.org/a.md)")

"""Sphinx configuration: the sktransfer documentation site.

Build: ``python -m sphinx -W -b html docs docs/_build/html`` (see README,
"Documentation"). The API reference and the user guide's index are generated at
build time by ``_ext/sktdocs.py``; the gallery runs ``examples/*.py``.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))  # the checkout's package, also uninstalled

# The gallery runs on the bundled models and data only: never reach for a hub.
os.environ.setdefault("SKTRANSFER_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sktdocs  # noqa: E402

import sktransfer  # noqa: E402

project = "sktransfer"
author = "the sktransfer developers"
copyright = "the sktransfer developers"
version = release = sktransfer.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sktdocs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "images/README*", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip"]
templates_path = []

# -- API reference (autodoc + numpydoc) ---------------------------------------
autodoc_typehints = "none"  # the numpydoc "Parameters" give the types
autodoc_member_order = "bysource"
autodoc_default_options = {"exclude-members": "set_fit_request, set_score_request, "
                           "set_predict_request, set_transform_request, "
                           "set_partial_fit_request, set_predict_proba_request"}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()

# -- Markdown pages (docs/*.md) -----------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- Links to scikit-learn, torch and numpy -----------------------------------
# Only inventories that can be reached right now: CI builds offline with -W.
intersphinx_mapping = sktdocs.intersphinx_mapping()
intersphinx_timeout = 10

# -- Gallery (examples/, executed at build time) -------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(HERE.parent / "examples"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r".*\.py$",  # run every example, not only plot_*
    "ignore_pattern": r"(^|/)_[^/]*\.py$",  # helper modules (and __init__.py)
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "show_memory": False,
    "min_reported_time": 1,
    "plot_gallery": "True",
    # CPU seconds of each example in the build log ("[gallery] name: s CPU")
    "reset_modules": ("matplotlib", "sktdocs.example_cpu_time"),
    "reset_modules_order": "both",
}

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"sktransfer {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
}
html_sidebars = {"index": []}

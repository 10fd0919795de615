"""Sphinx configuration for the imrstats documentation (``make docs``; warnings are errors).

The tutorials are the notebooks in ``notebooks/``: they are copied into ``docs/tutorials/`` at
build time (so the notebooks stay in one place) and executed by myst-nb.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import imrstats

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# --- tutorials: the notebooks, copied (generated, ignored by git) ---------------------------
_TUTORIALS = HERE / "tutorials"
_TUTORIALS.mkdir(exist_ok=True)
for _old in _TUTORIALS.glob("*.ipynb"):
    _old.unlink()
for _nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
    shutil.copyfile(_nb, _TUTORIALS / _nb.name)

project = "imrstats"
author = "imrstats developers"
copyright = "2026, imrstats developers"
release = imrstats.__version__
version = release

extensions = [
    "myst_nb",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]
root_doc = "index"

# myst: $...$ maths, ::: fences, heading anchors for in-page links
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

# myst-nb: execute every tutorial on each build, fail the build on any error
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 120
nb_execution_show_tb = True
nb_merge_streams = True

# API reference: one page per public object, numpydoc sections
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # the numpydoc "Parameters" sections carry the types
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

intersphinx_mapping: dict[str, tuple[str, None]] = {}

html_theme = "pydata_sphinx_theme"
html_title = f"imrstats {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []

"""Sphinx configuration of geohm's documentation (``sphinx-build -W -b html docs OUT``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# The docs document the working tree they sit in, installed or not.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import geohm  # noqa: E402

project = "geohm"
author = "geohm contributors"
copyright = "geohm contributors"  # noqa: A001
release = geohm.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "geohm_tables",
    "geohm_config_ref",
    "geohm_models",
    "geohm_api",
    "geohm_risk",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# ---------------------------------------------------------------- MyST and notebooks
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# The quickstart stores no outputs, and running it is a whole demo job (minutes on two
# cores, well past this build's one-minute budget); tests/test_notebook.py executes it.
# The page shows its code and text. `-D nb_execution_mode=cache` renders it with
# outputs (executed once, then cached under docs/_build/.jupyter_cache).
nb_execution_mode = "off"
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_timeout = 900

# ---------------------------------------------------------------- autodoc and numpydoc
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections give the types
autodoc_default_options = {"exclude-members": "__init__, __new__"}
numpydoc_show_class_members = False  # the members are documented by :members: below
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # ruff's D rules and test_docstrings check

# ---------------------------------------------------------------- HTML
html_theme = "alabaster"
html_title = f"geohm {release}"
html_theme_options = {
    "description": "Soil heavy-metal maps from Landsat 8/9, a DEM and soil samples",
    "fixed_sidebar": True,
    "page_width": "1180px",
    "sidebar_width": "240px",
}
html_static_path: list[str] = []
html_last_updated_fmt = None
html_show_sourcelink = False


# ---------------------------------------------------------------- docstring hooks
# scikit-learn adds ``set_fit_request`` / ``set_predict_request`` ... to every estimator
# class; their docstrings point at scikit-learn's own glossary and labels, which do not
# exist here. Only members defined in geohm are documented.


def _skip_foreign_members(
    app: Any, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skip class members that geohm does not define (scikit-learn's request methods)."""
    if what == "class" and callable(obj):
        module = getattr(obj, "__module__", None) or ""
        if module and not module.startswith("geohm"):
            return True
    return None


def setup(app: Any) -> None:
    """Connect the member filter."""
    app.connect("autodoc-skip-member", _skip_foreign_members)

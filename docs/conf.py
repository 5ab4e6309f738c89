"""Sphinx configuration of geohm's documentation (``sphinx-build -W -b html docs OUT``)."""

from __future__ import annotations

import re
import sys
import warnings
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
# Two narrow fixes between geohm's docstrings and reST, applied when autodoc reads them
# (geohm's modules are not edited for the docs):
#
# 1. scikit-learn adds ``set_fit_request`` / ``set_predict_request`` ... to every
#    estimator class; their docstrings point at scikit-learn's own glossary and labels,
#    which do not exist here. Only members defined in geohm are documented.
# 2. In the *type* part of a numpydoc ``name : type`` line, a word ending in ``_``
#    (``ndarray of shape (n_features_in_,)``, ``default="dist_"``) is a reST hyperlink
#    reference to an unknown target. That underscore is escaped. Docstrings with it:
#    geohm.models.spatial.BufferDistances (``prefix``), geohm.models.spectral.
#    SpectralResNetRegressor (``x_mean_``, ``x_std_``), geohm.models.transfer.
#    TransferGABPRegressor (``retrain_history_``).
# 3. numpydoc drops a section it does not know (with a UserWarning, not a Sphinx
#    warning): GABPRegressor's "Defaults, and why", which sits in the extended summary
#    before "Parameters". A heading of an unknown section before the first numpydoc
#    section is turned into a rubric, so its text stays in the extended summary.
#    numpydoc's signature hook still parses the raw docstring: that warning is silenced.
warnings.filterwarnings(
    "ignore", message=r"Unknown section Defaults, And Why", category=UserWarning
)

_FIELD = re.compile(r"^(\s*[\w*][\w*, ]* : )(.*)$")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\\])\b(\w+)_(?![\w`])")


def _skip_foreign_members(
    app: Any, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skip class members that geohm does not define (scikit-learn's request methods)."""
    if what == "class" and callable(obj):
        module = getattr(obj, "__module__", None) or ""
        if module and not module.startswith("geohm"):
            return True
    return None


def _escape_type_underscores(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Escape a trailing ``_`` in the type part of numpydoc ``name : type`` lines."""
    for i, line in enumerate(lines):
        m = _FIELD.match(line)
        if m:
            lines[i] = m.group(1) + _TRAILING_UNDERSCORE.sub(r"\1\\_", m.group(2))


def _known_sections() -> set[str]:
    from numpydoc.docscrape import NumpyDocString

    return {k.lower() for k in NumpyDocString("").sections}


def _keep_unknown_leading_sections(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Turn unknown section headings before the first numpydoc section into rubrics."""
    known = _known_sections()
    for i in range(len(lines) - 1):
        title, rule = lines[i].strip(), lines[i + 1].strip()
        if not title or not rule or set(rule) != {"-"} or len(rule) != len(title):
            continue
        if title.lower() in known:
            return
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines[i], lines[i + 1] = f"{indent}.. rubric:: {title}", ""


def setup(app: Any) -> None:
    """Connect the docstring hooks (before numpydoc reformats the docstrings)."""
    app.connect("autodoc-skip-member", _skip_foreign_members)
    app.connect("autodoc-process-docstring", _escape_type_underscores, priority=100)
    app.connect("autodoc-process-docstring", _keep_unknown_leading_sections, priority=100)

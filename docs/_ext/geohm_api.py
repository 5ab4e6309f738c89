"""Sphinx extension: the Python API page, one autodoc entry per name of ``geohm.__all__``.

``.. geohm-api::`` (in a reStructuredText page) groups the public names by the
subpackage that defines them and emits ``autoexception`` / ``autoclass`` /
``autofunction`` / ``autodata`` for each, so a name added to ``__all__`` appears
without editing the docs. ``geohm`` loads these names lazily (``geohm.__getattr__``):
autodoc's ``getattr(geohm, name)`` imports the defining module on first use, so
``geohm.run_scene`` documents as it is imported.
"""

from __future__ import annotations

import inspect
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from geohm_tables import always_reread
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

#: Section of each defining subpackage, in page order.
_GROUPS = {
    "errors": "Errors",
    "config": "Scene config",
    "pipeline": "Running scene jobs",
    "batch": "Many scenes (batch)",
    "models": "Models",
    "synth": "Synthetic data",
    "_version": "Version",
}


def _group(obj: Any, name: str) -> str:
    import geohm

    module = getattr(obj, "__module__", None) if not isinstance(obj, str | dict) else None
    module = module or getattr(geohm, "_LAZY", {}).get(name) or "geohm._version"
    part = module.split(".")[1] if module.count(".") else "_version"
    return part if part in _GROUPS else "models"


def api_lines() -> list[str]:
    """The reST of the API: a section per group, an autodoc directive per public name."""
    import geohm

    lazy: dict[str, str] = getattr(geohm, "_LAZY", {})
    groups: dict[str, list[str]] = {g: [] for g in _GROUPS}
    for name in geohm.__all__:
        obj = getattr(geohm, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            lines = [f".. autoexception:: geohm.{name}", "   :show-inheritance:"]
        elif inspect.isclass(obj):
            lines = [f".. autoclass:: geohm.{name}", "   :members:", "   :show-inheritance:"]
            if getattr(obj, "model_fields", None) is not None:  # pydantic: fields, not members
                lines = [
                    f".. autoclass:: geohm.{name}",
                    "   :no-members:",
                    "",
                    "   Every key, with its type, default and unit: :doc:`/config`.",
                ]
        elif callable(obj):
            lines = [f".. autofunction:: geohm.{name}"]
        else:  # data: documented where it is defined (its ``#:`` comment)
            where = lazy.get(name, "geohm")
            lines = [f".. autodata:: {where}.{name}", "   :no-value:"]
        groups[_group(obj, name)].extend([*lines, ""])
    out: list[str] = []
    for key, title in _GROUPS.items():
        if groups[key]:
            out.extend([title, "-" * len(title), "", *groups[key]])
    return out


class ApiDirective(SphinxDirective):
    """``.. geohm-api::``: autodoc entries for every name of ``geohm.__all__``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """Autodoc directives for every public name, parsed as reST."""
        always_reread(self.env, self.env.docname)
        box = nodes.container()
        content = StringList(api_lines(), source="<geohm.__all__>")
        nested_parse_with_titles(self.state, content, box)
        return list(box.children)


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``geohm-api`` directive."""
    app.setup_extension("geohm_tables")
    app.add_directive("geohm-api", ApiDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

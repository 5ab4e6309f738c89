"""Public callables document their parameters and results (numpydoc sections).

ruff's D rules (numpy convention, pyproject.toml) check the shape of every docstring in
``geohm/``; this test checks what they cannot: that every callable of the public API
(``geohm.__all__``) has a Parameters section naming each of its parameters, and that the
functions have a Returns section.
"""

from __future__ import annotations

import inspect
import re

import pytest

import geohm

#: Classes documented by their fields or by the exception tree, not by parameters.
NO_PARAMETERS = {"SceneConfig"}


def _public_callables() -> list[str]:
    out = []
    for name in geohm.__all__:
        obj = getattr(geohm, name)
        if not callable(obj) or name in NO_PARAMETERS:
            continue
        if inspect.isclass(obj) and issubclass(obj, Exception):
            continue
        out.append(name)
    return out


def _section(doc: str, title: str) -> str | None:
    m = re.search(rf"^{title}\n-{{{len(title)}}}\n(.*?)(?=^\w[\w ]*\n-+\n|\Z)", doc, re.M | re.S)
    return m.group(1) if m else None


@pytest.mark.parametrize("name", _public_callables())
def test_public_callables_have_numpydoc_sections(name: str) -> None:
    obj = getattr(geohm, name)
    doc = inspect.getdoc(obj) or ""
    params = _section(doc, "Parameters")
    assert params is not None, f"geohm.{name}: no Parameters section"
    target = obj.__init__ if inspect.isclass(obj) else obj
    sig = inspect.signature(target)
    for p in sig.parameters.values():
        if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        assert re.search(rf"(^|[ ,]){re.escape(p.name)}\b", params, re.M), (
            f"geohm.{name}: parameter '{p.name}' is not documented"
        )
    if not inspect.isclass(obj):
        assert _section(doc, "Returns") is not None, f"geohm.{name}: no Returns section"

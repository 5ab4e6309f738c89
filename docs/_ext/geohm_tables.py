"""Small docutils helpers shared by geohm's Sphinx extensions: tables and plain text.

The extensions build docutils nodes directly (no reST text is parsed), so their
directives work the same in reStructuredText and MyST Markdown pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: A table cell: a string (plain text), a node, or a list of nodes.
Cell: TypeAlias = str | nodes.Node | Sequence[nodes.Node]

_ROLE = re.compile(r":[\w:]+:`([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")


def plain(text: str) -> str:
    """Docstring text with its reST markup removed (roles, double-backtick literals).

    ``:class:`~geohm.models.gabp.GABPRegressor``` becomes ``GABPRegressor``, a
    ``:func:`a.b.c``` role ``a.b.c`` and ````x```` ``x``: enough for one-line cells.
    """

    def _role(m: re.Match[str]) -> str:
        content = m.group(1)
        if "<" in content:  # :role:`title <target>`
            return content.split("<", 1)[0].strip()
        if content.startswith("~"):
            return content[1:].rsplit(".", 1)[-1]
        return content

    return _LITERAL.sub(r"\1", _ROLE.sub(_role, text))


def _cell(value: Cell) -> nodes.entry:
    entry = nodes.entry()
    if isinstance(value, str):
        entry += nodes.paragraph(text=value)
    elif isinstance(value, nodes.Node):
        entry += value if isinstance(value, nodes.Body) else nodes.paragraph("", "", value)
    else:
        entry += nodes.paragraph("", "", *value)
    return entry


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    widths: Sequence[int] | None = None,
    classes: Sequence[str] = (),
) -> nodes.table:
    """A docutils table with a header row.

    Parameters
    ----------
    headers : sequence of str
        Column titles.
    rows : sequence of sequence of Cell
        One sequence of cells per row, as many as ``headers``.
    widths : sequence of int, optional
        Relative column widths (default: equal).
    classes : sequence of str
        HTML classes of the table.

    Returns
    -------
    docutils.nodes.table
    """
    ncol = len(headers)
    tbl = nodes.table(classes=list(classes))
    group = nodes.tgroup(cols=ncol)
    tbl += group
    for w in widths or [1] * ncol:
        group += nodes.colspec(colwidth=w)
    head = nodes.thead()
    group += head
    hrow = nodes.row()
    for h in headers:
        hrow += _cell(h)
    head += hrow
    body = nodes.tbody()
    group += body
    for row in rows:
        if len(row) != ncol:
            raise ValueError(f"table row has {len(row)} cells, the header {ncol}: {row!r}")
        r = nodes.row()
        for value in row:
            r += _cell(value)
        body += r
    return tbl


def literal(text: str) -> nodes.literal:
    """Inline code."""
    return nodes.literal(text, text)


def always_reread(env: BuildEnvironment, docname: str) -> None:
    """Mark ``docname`` as generated from the code: it is read again on every build."""
    if not hasattr(env, "geohm_generated"):
        env.geohm_generated = set()  # type: ignore[attr-defined]
    env.geohm_generated.add(docname)  # type: ignore[attr-defined]


def _outdated(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> Iterable[str]:
    return sorted(getattr(env, "geohm_generated", set()) - removed)


def _purge(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "geohm_generated", set()).discard(docname)


def _merge(app: Sphinx, env: BuildEnvironment, docnames: set[str], other: Any) -> None:
    env.geohm_generated = getattr(env, "geohm_generated", set()) | (  # type: ignore[attr-defined]
        getattr(other, "geohm_generated", set()) & docnames
    )


def setup(app: Sphinx) -> dict[str, Any]:
    """Read the pages generated from the code again on every build (incremental too)."""
    app.connect("env-get-outdated", _outdated)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""Sphinx extension: the built-in risk gradings, generated from ``geohm.risk.gradings``.

``geohm-gradings`` lists every grading of ``GRADINGS`` (single factor, Nemerow, Igeo,
Hakanson): each class code, its interval on the index (which side of a threshold is
inclusive follows the grading's ``right``) and its label.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from geohm_tables import Cell, always_reread, literal, table
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _interval(breaks: tuple[float, ...], i: int, right: bool) -> str:
    """The values of class ``i`` (0-based) as text: ``x ≤ 1``, ``1 < x ≤ 2``, ``x > 5``."""
    lo, hi = (breaks[i - 1] if i else None), (breaks[i] if i < len(breaks) else None)
    low_op, high_op = ("<", "≤") if right else ("≤", "<")
    if lo is None:
        return f"x {high_op} {hi:g}"
    if hi is None:
        return f"x {'>' if right else '≥'} {lo:g}"
    return f"{lo:g} {low_op} x {high_op} {hi:g}"


class GradingsDirective(SphinxDirective):
    """``geohm-gradings``: the class tables of the built-in gradings."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        """A row per class of every built-in grading."""
        from geohm.risk.gradings import GRADINGS

        always_reread(self.env, self.env.docname)
        rows: list[list[Cell]] = []
        for key, grading in GRADINGS.items():
            breaks = tuple(float(b) for b in grading.breaks)
            for i, lab in enumerate(grading.labels):
                rows.append(
                    [
                        [literal(key)] if i == 0 else "",
                        str(i + 1),
                        _interval(breaks, i, grading.right),
                        str(lab),
                    ]
                )
        return [
            table(
                ["grading", "raster value", "index value x", "label"], rows, widths=[20, 10, 25, 45]
            )
        ]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the ``geohm-gradings`` directive."""
    app.setup_extension("geohm_tables")
    app.add_directive("geohm-gradings", GradingsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

"""Formatting helpers of report.md: numbers, shares, tables, bullet lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

__all__: list[str] = []


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)


def _pct(value: Any) -> str:
    """A share (0-1) as a percentage; ``-`` for None."""
    return "-" if value is None or value != value else f"{value:.1%}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """A markdown table of the given cells, then a blank line."""
    body = ("| " + " | ".join(map(str, r)) + " |" for r in [header, *rows])
    return [next(body), "|" + "---|" * len(header), *body, ""]


def _list_section(title: str, items: list[str]) -> list[str]:
    """A titled bullet list; nothing when there are no items."""
    if not items:
        return []
    return [f"## {title}", "", *(f"- {item}" for item in items), ""]

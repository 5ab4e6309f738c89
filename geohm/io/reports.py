"""Atomic writers for reports, tables and figures.

Each goes through :func:`geohm.io.rasters.atomic_path`: the file appears under its name
only when written and closed without error; a failed write (no space left, a quota, a
read-only device) raises :class:`~geohm.errors.OutputError` naming the device and the file,
removes the temporary file and leaves an earlier file of that name as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from geohm.io.rasters import atomic_path

__all__ = ["save_figure", "write_csv", "write_json", "write_text"]


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented UTF-8 JSON (NaN written as null)."""
    final = Path(path)
    text = json.dumps(_clean(obj), indent=2, ensure_ascii=False, allow_nan=False)
    return write_text(final, text + "\n")


def _clean(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write a UTF-8 text file atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return final


def write_csv(path: str | os.PathLike[str], table: pd.DataFrame) -> Path:
    """Write a table as CSV atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        table.to_csv(tmp)
    return final


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 110) -> Path:
    """Save a matplotlib figure (PNG) atomically."""
    final = Path(path)
    with atomic_path(final) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=final.suffix.lstrip(".") or "png")
    return final

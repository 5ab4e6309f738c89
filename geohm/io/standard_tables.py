"""Standards tables: the CSV files of ``geohm/standards`` or a user's copy, and YAML standards.

:mod:`geohm.risk` turns what is read here into standards, backgrounds and toxic-response
factors; it never touches a file. Every message names the table (its file name, or the
built-in standard's name) and, for a bad cell, its row and column.

A standards table comes in one of two layouts, told apart by its header line:

- *values* (``gb15618_2018.csv``, ``gb36600_2018.csv``): one row per metal, kind, land use
  and pH band, with at least the columns :data:`VALUES_COLUMNS`;
- *limits* (``seed001_limits.csv``): one row per parameter and medium, with at least the
  columns :data:`LIMITS_COLUMNS` (the header names ``parameter`` and ``mpl_max``).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from geohm.errors import InputError
from geohm.io.text import packaged_text, read_text

__all__ = [
    "LIMITS_COLUMNS",
    "STANDARDS_PACKAGE",
    "VALUES_COLUMNS",
    "names_a_table_file",
    "number_cell",
    "read_standard_table",
    "read_standard_yaml",
    "read_table",
]

#: The package whose data files are the built-in tables.
STANDARDS_PACKAGE = "geohm.standards"
#: Columns a limits table must have.
LIMITS_COLUMNS = ("medium", "parameter", "unit", "mpl_max")
#: Columns a values table must have.
VALUES_COLUMNS = ("metal", "value_mg_kg")

Rows = list[dict[str, str]]
PathLike = str | os.PathLike[str]


def _table_text(path: PathLike | None, filename: str) -> tuple[str, str]:
    """The text of a standards table, and how messages name it.

    The user's table at ``path``, or the packaged ``filename`` when ``path`` is ``None``.
    """
    if path is None:
        return packaged_text(STANDARDS_PACKAGE, filename), filename
    return read_text(path, what="standards file"), os.fspath(path)


def _csv_rows(text: str, where: str, required: Iterable[str]) -> Rows:
    """The non-empty rows of CSV ``text`` as ``{column: cell}``, names and cells stripped."""
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in required if c not in columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {missing}; it has {columns}")
    rows = []
    for raw in reader:
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        if any(row.values()):
            rows.append(row)
    if not rows:
        raise InputError(f"{where}: no rows")
    return rows


def read_table(
    path: PathLike | None, filename: str, required: Iterable[str]
) -> tuple[Rows, str]:
    """The rows of a table (``background.csv``, ``hakanson.csv``) and how messages name it.

    Parameters
    ----------
    path : path-like or None
        A user's CSV; ``None`` reads the packaged ``filename``.
    filename : str
        The built-in table in ``geohm/standards``.
    required : iterable of str
        Columns the table must have.

    Returns
    -------
    rows : list of dict
        ``{column: cell}`` per non-empty row, names and cells stripped (strings).
    where : str
        ``filename`` for the built-in table, else the user's path.

    Raises
    ------
    InputError
        The file is missing or unreadable, lacks a required column or has no rows.
    """
    text, where = _table_text(path, filename)
    return _csv_rows(text, where, required), where


def read_standard_table(
    path: PathLike | None, filename: str = "", *, where: str
) -> tuple[Literal["limits", "values"], Rows]:
    """The layout and the rows of a standards table.

    Parameters
    ----------
    path : path-like or None
        A user's CSV; ``None`` reads the packaged ``filename``.
    filename : str
        The built-in table in ``geohm/standards`` (used when ``path`` is ``None``).
    where : str
        How messages name the table.

    Returns
    -------
    layout : {"limits", "values"}
        ``"limits"`` when the header line names ``parameter`` and ``mpl_max``.
    rows : list of dict
        ``{column: cell}`` per non-empty row (strings), checked for the layout's columns.

    Raises
    ------
    InputError
        The file is missing or unreadable, lacks a required column or has no rows.
    """
    text, _ = _table_text(path, filename)
    head = text.lstrip().split("\n", 1)[0]
    if "mpl_max" in head and "parameter" in head:
        return "limits", _csv_rows(text, where, LIMITS_COLUMNS)
    return "values", _csv_rows(text, where, VALUES_COLUMNS)


def read_standard_yaml(path: PathLike) -> Any:
    """The content of a YAML standards file (a mapping of metal to values, if well formed).

    Raises
    ------
    InputError
        The file is missing, unreadable or not valid YAML.
    """
    import yaml

    try:
        return yaml.safe_load(read_text(path, what="standards file"))
    except yaml.YAMLError as exc:
        raise InputError(f"cannot parse standards file {path}: {exc}") from exc


def names_a_table_file(source: str) -> bool:
    """Whether ``source`` (not a built-in name) is read as a standards CSV file.

    It is when it ends in ``.csv``/``.txt``, exists, or has a folder separator.
    """
    path = Path(source)
    return (
        path.suffix.lower() in (".csv", ".txt")
        or path.exists()
        or os.sep in source
        or "/" in source
    )


def number_cell(text: str, where: str, column: str, default: float | None = None) -> float:
    """A numeric cell of a table; ``default`` for an empty cell when one is given.

    Raises
    ------
    InputError
        The cell is not a number (the message names ``where`` and ``column``).
    """
    if text == "" and default is not None:
        return default
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"{where}: column {column!r} must be a number, got {text!r}") from exc

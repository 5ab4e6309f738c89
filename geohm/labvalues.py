"""Laboratory concentration values as they arrive in sample tables.

Lab reports are typed by people: a target column may hold plain numbers, numbers with
a unit (``"51.8 mg/kg"``, ``"51.8 ppm"``), values below the detection limit
(``"<5"``, ``"< 5 mg/kg"``, ``"ND"``, ``"n.d."``, ``"BDL"``), gaps (``""``, ``"NA"``,
``"-"``) and the odd remark (``"see note"``). :func:`parse_target` reads one column
and says, for every row, what it did:

- a number (decimal point or comma: ``12.5``, ``12,5``; thousands marks where they
  cannot be misread: ``2,000.5``, ``1,250,000``; ``1,250`` alone is an error, as it
  reads as 1.25 or 1250), or a number with a unit equal to mg/kg (``mg/kg``, ``mg kg-1``, ``ppm``,
  ``ug/g``, ``µg/g``), is read as mg/kg; any other unit is an error naming the column
  and the row (geohm does not guess conversions);
- a censored value ``<x`` is substituted by the rule ``samples.censored``: ``x/2`` (the
  default; the common convention, e.g. US EPA 2000 guidance for data below the
  detection limit), ``x/sqrt2`` (``x/sqrt(2)``, Hornung & Reed 1990), ``x`` (the limit
  itself) or ``drop`` (leave the sample out of that target). ``ND`` without a number
  takes ``x`` from ``samples.detection_limits`` and is an error without it;
- a gap or non-numeric text leaves the sample out of that target only, with the reason;
- a negative value is an error naming the rows (a concentration cannot be negative:
  usually a blank-corrected value or a sign typo); zeros are kept and counted.

Hand-written because no library parses lab-report cells; the rules are short and
each is tested.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from geohm.errors import SampleError

__all__ = ["CENSORED_RULES", "CensoredRule", "ParsedTarget", "parse_target"]

CensoredRule = Literal["x/2", "x/sqrt2", "x", "drop"]
#: Substitution factor of a censored value ``<x`` per rule (``drop`` leaves it out).
CENSORED_RULES: dict[str, float | None] = {
    "x/2": 0.5,
    "x/sqrt2": 1.0 / math.sqrt(2.0),
    "x": 1.0,
    "drop": None,
}

# Units that are mg/kg by another name (mass fraction 1e-6).
_MG_PER_KG = {"mg/kg", "mgkg-1", "mg.kg-1", "mg·kg-1", "mg·kg⁻¹", "mgkg⁻¹", "ppm", "ug/g", "µg/g",
              "μg/g"}
_MISSING = {"", "na", "n/a", "nan", "null", "none", "-", "--", "—", "missing", "#n/a", "?"}
_ND = {"nd", "n.d.", "n.d", "bdl", "<dl", "<lod", "<loq", "below detection limit",
       "not detected", "<mdl", "lod"}
_DROP = "samples.censored: drop"
_NUMBER = r"[+-]?(?:\d[\d.,]*|[.,]\d+)(?:[eE][+-]?\d+)?"
# 1,250,000 / 1.250.000 (thousands groups), 2,000.5 / 2.000,5 (both marks)
_GROUPED = re.compile(
    r"^[+-]?\d{1,3}(?:(?P<sep>[.,])\d{3})(?:(?P=sep)\d{3})*(?:(?!(?P=sep))[.,]\d*)?$"
)
_VALUE = re.compile(rf"^(?P<lt><\s*|&lt;\s*)?(?P<num>{_NUMBER})\s*(?P<unit>.*?)\s*$")


@dataclass
class ParsedTarget:
    """One target column read as mg/kg.

    Attributes
    ----------
    values : numpy.ndarray
        (n,) float64 concentrations in mg/kg; NaN where the sample is left out.
    left_out : dict of int to str
        Row position -> why the row has no value for this target.
    censored : list of int
        Rows whose value was below the detection limit and was substituted.
    zeros : list of int
        Rows whose value is exactly 0 mg/kg (kept).
    rule : str
        The substitution rule used for censored values.
    """

    values: np.ndarray
    left_out: dict[int, str] = field(default_factory=dict)
    censored: list[int] = field(default_factory=list)
    zeros: list[int] = field(default_factory=list)
    rule: str = "x/2"


def _number(text: str) -> float:
    """A number written with a decimal point or comma, with or without thousands marks.

    ``12.5``, ``1.250`` and ``12,5`` are decimals; ``2,000.5`` and ``2.000,5`` are
    2000.5; ``1,250,000`` is 1250000. ``1,250`` alone could be 1.25 (decimal comma) or
    1250 (thousands comma): :class:`ValueError`, so the caller names the row.
    """
    sign = "-" if text.startswith("-") else ""
    body = text.lstrip("+-")
    exp = ""
    for e in ("e", "E"):
        if e in body:
            body, rest = body.split(e, 1)
            exp = "e" + rest
    marks = [c for c in body if c in ".,"]
    if not marks:
        return float(sign + body + exp)
    if len(marks) == 1:
        whole, frac = body.split(marks[0])
        if marks[0] == "," and len(frac) == 3 and whole.strip("0"):
            raise ValueError(f"{text!r} is ambiguous")
        return float(f"{sign}{whole}.{frac}{exp}")
    grouped = _GROUPED.match(body)
    if grouped is None:
        raise ValueError(f"{text!r} is not a number")
    clean = body.replace(grouped["sep"], "").replace(",", ".")
    return float(sign + clean + exp)


def parse_target(
    column: Sequence[Any],
    *,
    name: str,
    ids: Sequence[str],
    censored: str = "x/2",
    detection_limit: float | None = None,
) -> ParsedTarget:
    """Read one target column of a sample table as mg/kg.

    Parameters
    ----------
    column : sequence
        The cells of the column (numbers, strings, None/NaN).
    name : str
        Column name (``"Cu"``), for messages.
    ids : sequence of str
        Sample id of every row, for messages.
    censored : {"x/2", "x/sqrt2", "x", "drop"}
        Rule for values below the detection limit ``<x``: ``x/2``, ``x/sqrt(2)``, ``x``,
        or leave the sample out of this target.
    detection_limit : float, optional
        Detection limit (mg/kg) for cells reading ``ND`` without a number.

    Returns
    -------
    ParsedTarget

    Raises
    ------
    SampleError
        A unit other than mg/kg, a negative value, or ``ND`` without a detection limit;
        the message names the column and the rows.
    """
    if censored not in CENSORED_RULES:
        raise SampleError(
            f"samples.censored: unknown rule {censored!r}; use one of "
            f"{', '.join(CENSORED_RULES)}"
        )
    factor = CENSORED_RULES[censored]
    out = ParsedTarget(np.full(len(column), np.nan), rule=censored)
    bad_unit: list[str] = []
    negative: list[str] = []
    nd_without_limit: list[str] = []
    ambiguous: list[str] = []
    for i, cell in enumerate(column):
        lt = False
        if cell is None or (isinstance(cell, float) and math.isnan(cell)):
            out.left_out[i] = "missing value"
            continue
        if isinstance(cell, (int, float, np.integer, np.floating)) and not isinstance(cell, bool):
            value = float(cell)
            if not math.isfinite(value):
                out.left_out[i] = "missing value"
                continue
        else:
            text = str(cell).strip()
            low = text.lower()
            if low in _MISSING:
                out.left_out[i] = "missing value"
                continue
            if low in _ND:
                if factor is None:
                    out.left_out[i] = f"below the detection limit ({text!r}; {_DROP})"
                    continue
                if detection_limit is None:
                    nd_without_limit.append(ids[i])
                    continue
                value, lt = float(detection_limit), True
            else:
                m = _VALUE.match(text)
                if m is None:
                    out.left_out[i] = f"non-numeric text {text!r}"
                    continue
                unit = m["unit"].replace(" ", "").lower()
                if unit and unit not in _MG_PER_KG:
                    bad_unit.append(f"{ids[i]} ({text!r})")
                    continue
                try:
                    value, lt = _number(m["num"]), m["lt"] is not None
                except ValueError as exc:
                    if "ambiguous" in str(exc):
                        ambiguous.append(f"{ids[i]} ({text!r})")
                    else:
                        out.left_out[i] = f"non-numeric text {text!r}"
                    continue
        if value < 0:
            negative.append(f"{ids[i]} ({value:g})")
            continue
        if lt:
            if factor is None:
                out.left_out[i] = f"below the detection limit (<{value:g} mg/kg; {_DROP})"
                continue
            out.censored.append(i)
            value *= factor
        elif value == 0.0:
            out.zeros.append(i)
        out.values[i] = value
    if bad_unit:
        raise SampleError(
            f"column '{name}': values with a unit other than mg/kg in rows "
            f"{_few(bad_unit)}; convert them to mg/kg (ppm, ug/g are the same) in the file"
        )
    if negative:
        raise SampleError(
            f"column '{name}': negative concentrations in rows {_few(negative)}; a "
            "concentration cannot be below 0 mg/kg: correct them, or empty the cells to "
            "leave those samples out"
        )
    if ambiguous:
        raise SampleError(
            f"column '{name}': rows {_few(ambiguous)} hold numbers that read two ways (a "
            "comma or point before exactly three digits may be a decimal or a thousands mark: "
            "1,250 is 1.25 or 1250); write them without thousands marks (1250 or 1.25)"
        )
    if nd_without_limit:
        raise SampleError(
            f"column '{name}': rows {_few(nd_without_limit)} read 'not detected' without a "
            f"value; give the detection limit as samples.detection_limits: {{{name}: <mg/kg>}} "
            "or set samples.censored: drop"
        )
    return out


def _few(items: list[str], k: int = 8) -> str:
    return ", ".join(items[:k]) + (f" and {len(items) - k} more" if len(items) > k else "")

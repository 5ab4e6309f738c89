"""Soil quality standards: screening (and intervention) values by metal, land use and pH.

A :class:`Standard` holds the rows of one standard; :func:`load_standard` gives a built-in
one (:data:`BUILTIN_STANDARDS`, tables in ``geohm/standards``), one read from a user's
CSV or YAML file (through :mod:`geohm.io.standard_tables`), or one from a scene-config
mapping (:meth:`Standard.from_mapping`).
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from geohm.errors import ConfigError
from geohm.io.standard_tables import (
    names_a_table_file,
    number_cell,
    read_standard_table,
    read_standard_yaml,
)
from geohm.risk.indices import FloatArray

__all__ = [
    "BUILTIN_STANDARDS",
    "GB15618_PH_BREAKS",
    "Standard",
    "StandardRow",
    "load_standard",
]

#: Built-in standards: name -> file in ``geohm/standards``.
BUILTIN_STANDARDS: dict[str, str] = {
    "gb15618": "gb15618_2018.csv",
    "gb36600": "gb36600_2018.csv",
    "seed001": "seed001_limits.csv",
}

#: Upper pH bounds of the first three GB 15618-2018 bands (the fourth is pH > 7.5).
GB15618_PH_BREAKS: tuple[float, ...] = (5.5, 6.5, 7.5)


@dataclass(frozen=True)
class StandardRow:
    """One value of a standard: ``value_mg_kg`` for ``ph_min < pH <= ph_max``."""

    metal: str
    kind: str
    land_use: str
    ph_min: float
    ph_max: float
    value_mg_kg: float
    checked: str = ""
    note: str = ""
    source: str = ""


def _norm_land_use(value: object) -> str:
    s = str(value).strip().lower()
    return re.sub(r"[\s_\-]+", "", s) if s.startswith("class") else s


@dataclass(frozen=True)
class Standard:
    """Soil quality standard values (mg/kg) by metal, kind, land use and pH band.

    Load one with :func:`load_standard` or build one with :meth:`from_mapping`.

    Parameters
    ----------
    name : str
        The standard's name (``"gb15618"``, a file path, ``"user"``).
    rows : tuple of StandardRow
        The values; bands of one (metal, kind, land use) must not overlap.
    """

    name: str
    rows: tuple[StandardRow, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", tuple(self.rows))
        if not self.rows:
            raise ConfigError(f"standard {self.name!r} has no values")
        groups: dict[tuple[str, str, str], list[StandardRow]] = {}
        for r in self.rows:
            if not (math.isfinite(r.value_mg_kg) and r.value_mg_kg > 0):
                raise ConfigError(
                    f"standard {self.name!r}: {r.metal} ({r.kind}, {r.land_use}) must be a "
                    f"number > 0 mg/kg, got {r.value_mg_kg:g}"
                )
            if not r.ph_min < r.ph_max:
                raise ConfigError(
                    f"standard {self.name!r}: {r.metal} has an empty pH band "
                    f"({r.ph_min:g}, {r.ph_max:g}]"
                )
            groups.setdefault((r.metal.casefold(), r.kind, r.land_use), []).append(r)
        for (_, kind, lu), rs in groups.items():
            rs = sorted(rs, key=lambda r: r.ph_min)
            for a, b in zip(rs, rs[1:], strict=False):
                if b.ph_min < a.ph_max:
                    raise ConfigError(
                        f"standard {self.name!r}: {a.metal} ({kind}, {lu}) has overlapping pH "
                        f"bands ({a.ph_min:g}, {a.ph_max:g}] and ({b.ph_min:g}, {b.ph_max:g}]"
                    )

    # -- what is in it ------------------------------------------------------------------------

    def metals(self, kind: str | None = None) -> list[str]:
        """Metals covered (of one ``kind``, or any), in table order."""
        return list(dict.fromkeys(r.metal for r in self.rows if kind in (None, r.kind)))

    def kinds(self) -> list[str]:
        """Kinds of value in the table (``screening``, ``intervention``)."""
        return list(dict.fromkeys(r.kind for r in self.rows))

    def land_uses(self, metal: str | None = None) -> list[str]:
        """Land uses in the table (for one metal, or all)."""
        name = None if metal is None else self._metal(metal)
        return list(dict.fromkeys(r.land_use for r in self.rows if name in (None, r.metal)))

    def _metal(self, metal: str) -> str:
        key = str(metal).strip().casefold()
        for m in self.metals():
            if m.casefold() == key:
                return m
        raise ConfigError(
            f"metal {metal!r} is not in standard {self.name!r}; it covers: "
            f"{', '.join(self.metals())}"
        )

    def rows_for(
        self, metal: str, *, land_use: str = "other", kind: str = "screening"
    ) -> tuple[StandardRow, ...]:
        """The rows :meth:`screening` draws from, sorted by pH.

        For provenance: ``checked``, ``note``, ``source``.

        A metal without a column for ``land_use`` falls back to its ``other`` column, then to
        ``all`` (GB 15618: "other" covers every land use without its own column). A land use
        the standard does not name at all is an error, unless the standard names none
        (every row ``all``, as in ``seed001`` or a constant user standard).
        """
        name = self._metal(metal)
        mine = [r for r in self.rows if r.metal == name and r.kind == kind]
        if not mine:
            raise ConfigError(
                f"standard {self.name!r} has no {kind!r} value for {name}; kinds for {name}: "
                f"{', '.join(dict.fromkeys(r.kind for r in self.rows if r.metal == name))}"
            )
        lu = _norm_land_use(land_use)
        every = self.land_uses()
        if lu.isdigit() and f"class{lu}" in every:
            lu = f"class{lu}"
        if lu not in every and lu != "all" and set(every) != {"all"}:
            raise ConfigError(
                f"land use {land_use!r} is not in standard {self.name!r}; land uses: "
                f"{', '.join(every)}"
            )
        have = list(dict.fromkeys(r.land_use for r in mine))
        for candidate in (lu, "other", "all"):
            if candidate in have:
                return tuple(
                    sorted((r for r in mine if r.land_use == candidate), key=lambda r: r.ph_min)
                )
        raise ConfigError(
            f"standard {self.name!r} has no {kind!r} value of {name} for land use {land_use!r}; "
            f"land uses for {name}: {', '.join(have)}"
        )

    # -- values -------------------------------------------------------------------------------

    def screening(
        self,
        metal: str,
        *,
        ph: ArrayLike | None = None,
        land_use: str | int = "other",
        kind: str = "screening",
    ) -> float | FloatArray:
        """The standard value of ``metal`` in mg/kg, at a soil pH or a pH raster window.

        Parameters
        ----------
        metal : str
            Metal symbol (case-insensitive): ``"Cu"``, ``"pb"``, ``"Cr(VI)"``.
        ph : float or array_like, optional
            Soil pH. A scalar gives a float; an array (a pH window) gives an array of the
            same shape, NaN where the pH is NaN or outside 0-14. Bands are
            ``ph_min < pH <= ph_max``: pH 5.5 takes the (-inf, 5.5] band. Needed only when
            the value depends on pH (not for GB 36600 or constant user values).
        land_use : str or int, default "other"
            GB 15618: ``paddy``, ``orchard``, ``other``; GB 36600: ``class1``/``class2``
            (or 1/2).
        kind : str, default "screening"
            ``screening`` or ``intervention``.

        Returns
        -------
        float or numpy.ndarray of float64

        Raises
        ------
        ConfigError
            Unknown metal, land use or kind (the message lists what exists), a pH-dependent
            value without ``ph``, or a scalar pH outside 0-14.

        Examples
        --------
        >>> gb = load_standard("gb15618")
        >>> gb.screening("Pb", ph=6.0), gb.screening("Pb", ph=6.0, land_use="paddy")
        (90.0, 100.0)
        >>> gb.screening("Cd", ph=[5.5, 7.6, float("nan")]).tolist()
        [0.3, 0.6, nan]
        """
        rows = self.rows_for(metal, land_use=str(land_use), kind=kind)
        if all(r.ph_min == -math.inf and r.ph_max == math.inf for r in rows):
            value = rows[0].value_mg_kg
            if ph is None or np.ndim(ph) == 0:
                return value
            return np.full(np.shape(ph), value, dtype=np.float64)
        if ph is None:
            raise ConfigError(
                f"the {kind} value of {rows[0].metal} in standard {self.name!r} depends on "
                f"soil pH: give risk.ph (a number or a pH raster)"
            )
        p = np.asarray(ph, dtype=np.float64)
        if p.ndim == 0 and math.isfinite(float(p)) and not 0.0 <= float(p) <= 14.0:
            raise ConfigError(f"soil pH must be within 0-14, got {float(p):g}")
        with np.errstate(invalid="ignore"):
            p = np.where((p >= 0.0) & (p <= 14.0), p, np.nan)
            conditions = [(p > r.ph_min) & (p <= r.ph_max) for r in rows]
        out = np.select(conditions, [r.value_mg_kg for r in rows], default=np.nan)
        if out.ndim == 0:
            return float(out)
        return np.asarray(out, dtype=np.float64)

    def intervention(
        self, metal: str, *, ph: ArrayLike | None = None, land_use: str | int = "other"
    ) -> float | FloatArray:
        """The risk intervention (control) value; :meth:`screening` with that kind."""
        return self.screening(metal, ph=ph, land_use=land_use, kind="intervention")

    # -- user-defined ------------------------------------------------------------------------

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, name: str = "user") -> Standard:
        """A standard from a scene-config mapping (screening values, mg/kg).

        Each metal maps to one of:

        - a number: one value for every pH and land use (``{Cu: 100, Pb: 120}``);
        - a list of 4 numbers: the GB 15618 pH bands (<= 5.5, 5.5-6.5, 6.5-7.5, > 7.5);
        - ``{ph_breaks: [...], values: [...]}``: own bands, ``len(breaks) + 1`` values,
          upper bounds inclusive;
        - a mapping of land use to any of the above (``{paddy: [...], other: [...]}``).

        Examples
        --------
        >>> s = Standard.from_mapping({"Cu": 100, "Zn": {"ph_breaks": [6.5], "values": [200, 250]}})
        >>> s.screening("cu"), s.screening("Zn", ph=6.5), s.screening("Zn", ph=7.0)
        (100.0, 200.0, 250.0)
        """
        if not isinstance(mapping, Mapping) or not mapping:
            raise ConfigError(f"user standard {name!r}: give a mapping of metal to values")
        rows: list[StandardRow] = []
        for metal, spec in mapping.items():
            if isinstance(spec, Mapping) and not ({"ph_breaks", "values"} & set(spec)):
                for lu, sub in spec.items():
                    rows += _user_rows(str(metal), _norm_land_use(lu), sub, name)
            else:
                rows += _user_rows(str(metal), "all", spec, name)
        return cls(name=name, rows=tuple(rows))


def _user_rows(metal: str, land_use: str, spec: Any, name: str) -> list[StandardRow]:
    where = f"user standard {name!r}, {metal}" + ("" if land_use == "all" else f" ({land_use})")
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"ph_breaks", "values"})
        if unknown or "values" not in spec:
            raise ConfigError(f"{where}: expected keys ph_breaks and values, got {sorted(spec)}")
        breaks, values = list(spec.get("ph_breaks") or []), spec["values"]
    elif isinstance(spec, Sequence) and not isinstance(spec, str | bytes):
        breaks, values = list(GB15618_PH_BREAKS), spec
        if len(values) != len(breaks) + 1:
            raise ConfigError(
                f"{where}: a list gives the 4 GB 15618 pH bands, got {len(values)} values; "
                f"use {{ph_breaks: [...], values: [...]}} for other bands"
            )
    else:
        breaks, values = [], [spec]
    try:
        edges = [-math.inf, *(float(b) for b in breaks), math.inf]
        vals = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: values and pH breaks must be numbers") from exc
    if len(vals) != len(edges) - 1:
        raise ConfigError(f"{where}: {len(breaks)} pH breaks need {len(breaks) + 1} values")
    if any(a >= b for a, b in zip(edges, edges[1:], strict=False)):
        raise ConfigError(f"{where}: pH breaks must increase strictly, got {breaks}")
    return [
        StandardRow(metal, "screening", land_use, lo, hi, v, "", "user-defined", "scene config")
        for lo, hi, v in zip(edges, edges[1:], vals, strict=False)
    ]



def _limits_rows(rows: Sequence[Mapping[str, str]], name: str) -> list[StandardRow]:
    """Screening values from a limits table (``seed001_limits.csv``): its soil mg/kg rows."""
    out = []
    for i, r in enumerate(rows):
        if r["medium"].lower() != "soil" or r["unit"].lower() != "mg/kg":
            continue  # pH, EC and water rows are not soil concentration limits
        where = f"{name}, row {i + 2}"
        out.append(
            StandardRow(
                r["parameter"],
                "screening",
                "all",
                -math.inf,
                math.inf,
                number_cell(r["mpl_max"], where, "mpl_max"),
                r.get("checked", ""),
                r.get("note", ""),
                r.get("source", ""),
            )
        )
    return out


def _values_rows(rows: Sequence[Mapping[str, str]], name: str) -> list[StandardRow]:
    """The rows of a values table (``gb15618_2018.csv``): metal, kind, land use, pH band."""
    out = []
    for i, r in enumerate(rows):
        where = f"{name}, row {i + 2}"
        out.append(
            StandardRow(
                metal=r["metal"],
                kind=(r.get("kind") or "screening").lower(),
                land_use=_norm_land_use(r.get("land_use") or "all"),
                ph_min=number_cell(r.get("ph_min", ""), where, "ph_min", -math.inf),
                ph_max=number_cell(r.get("ph_max", ""), where, "ph_max", math.inf),
                value_mg_kg=number_cell(r["value_mg_kg"], where, "value_mg_kg"),
                checked=r.get("checked", ""),
                note=r.get("note", ""),
                source=r.get("source", ""),
            )
        )
    return out


def _standard_from_table(path: Path | None, filename: str, name: str) -> Standard:
    """The standard in a user's CSV at ``path``, or in the packaged ``filename``."""
    layout, rows = read_standard_table(path, filename, where=name)
    parse = _limits_rows if layout == "limits" else _values_rows
    return Standard(name=name, rows=tuple(parse(rows, name)))


@functools.lru_cache(maxsize=8)
def _builtin_standard(key: str) -> Standard:
    return _standard_from_table(None, BUILTIN_STANDARDS[key], key)


def _builtin_key(name: str) -> str:
    """``name`` as a key of :data:`BUILTIN_STANDARDS` (``"GB15618-2018"`` -> ``"gb15618"``)."""
    key = re.sub(r"[\s_\-]*2018$", "", name.strip().lower()).replace(" ", "")
    return key.replace("_", "").replace("-", "").replace("gb/t", "gb")


def load_standard(source: str | os.PathLike[str] | Mapping[str, Any] | Standard) -> Standard:
    """A built-in standard by name, a standards CSV/YAML file, or a user mapping.

    Parameters
    ----------
    source : str, path-like, mapping or Standard
        ``"gb15618"``, ``"gb36600"``, ``"seed001"`` (case-insensitive; ``"GB15618-2018"`` works
        too), a path to a CSV in the format of ``geohm/standards/gb15618_2018.csv`` (or of
        ``seed001_limits.csv``), a ``.yaml``/``.yml`` file holding a mapping, or a mapping for
        :meth:`Standard.from_mapping`.

    Raises
    ------
    ConfigError
        An unknown name (the message lists the built-in ones) or invalid values.
    InputError
        A file that is missing, unreadable or lacks the needed columns.
    """
    if isinstance(source, Standard):
        return source
    if isinstance(source, Mapping):
        return Standard.from_mapping(source)
    text = os.fspath(source)
    key = _builtin_key(text)
    if key in BUILTIN_STANDARDS:
        return _builtin_standard(key)
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml"):
        return Standard.from_mapping(read_standard_yaml(path), name=str(path))
    if names_a_table_file(text):
        return _standard_from_table(path, "", str(path))
    raise ConfigError(
        f"unknown standard {text!r}; built-in: {', '.join(BUILTIN_STANDARDS)}, or give the "
        f"path of a CSV file"
    )

"""Soil-risk indices, their class tables (gradings) and the standards they compare against.

Arrays in, arrays out: every index function takes NumPy arrays (or scalars) of concentrations
in mg/kg, broadcasts them, and returns a new float64 array. They are called per prediction
window, so nothing here touches rasters, paths or config objects. The one file access is
reading the standards tables (``geohm/standards/*.csv``, package data, or a user's copy).

Formulas (science.md section 4; C concentration, S standard value, B background, all mg/kg):

==================  ==========================================  ======================
index               formula                                     function
==================  ==========================================  ======================
single factor       P_i = C_i / S_i                             :func:`single_factor`
Nemerow             P_N = sqrt((P_max^2 + P_avg^2) / 2)         :func:`nemerow`
geoaccumulation     I_geo = log2(C / (1.5 B))                   :func:`igeo`
Hakanson E_r        E_r = T_r C / B                             :func:`hakanson_er`
Hakanson RI         RI = sum of E_r over metals                 :func:`hakanson_ri`
==================  ==========================================  ======================

A negative, infinite or NaN concentration is invalid and gives NaN. A standard or background
value that is zero or negative is a configuration error (:class:`~geohm.errors.ConfigError`
naming the metal); a NaN one (a NaN pH pixel, say) gives NaN.

Class maps are ``uint8`` with codes ``1..k`` and :data:`CLASS_NODATA` (255) for invalid
pixels; see :class:`Grading`.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geohm.errors import ConfigError, InputError
from geohm.io.text import packaged_text, read_text

__all__ = [
    "BUILTIN_STANDARDS",
    "CLASS_NODATA",
    "GB15618_PH_BREAKS",
    "GRADINGS",
    "HAKANSON_ER",
    "HAKANSON_RI",
    "IGEO",
    "NEMEROW",
    "SINGLE_FACTOR",
    "Grading",
    "Standard",
    "StandardRow",
    "background",
    "get_grading",
    "hakanson_er",
    "hakanson_ri",
    "igeo",
    "load_standard",
    "nemerow",
    "single_factor",
    "toxic_response",
]

FloatArray = NDArray[np.float64]

#: Class code written for invalid pixels (NaN, inf, below a grading's ``valid_min``).
CLASS_NODATA = 255

#: Built-in standards: name -> file in ``geohm/standards``.
BUILTIN_STANDARDS: dict[str, str] = {
    "gb15618": "gb15618_2018.csv",
    "gb36600": "gb36600_2018.csv",
    "seed001": "seed001_limits.csv",
}

#: Upper pH bounds of the first three GB 15618-2018 bands (the fourth is pH > 7.5).
GB15618_PH_BREAKS: tuple[float, ...] = (5.5, 6.5, 7.5)

_CHECKED = ("checked", "partly", "unverified")
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")
_STANDARDS_PACKAGE = "geohm.standards"


# --------------------------------------------------------------------------------------------
# gradings
# --------------------------------------------------------------------------------------------


def _palette(k: int) -> tuple[str, ...]:
    """``k`` colours from green through yellow to red (no matplotlib needed)."""
    stops = ((0x1A, 0x98, 0x50), (0xFE, 0xE0, 0x8B), (0xD7, 0x30, 0x27))
    out = []
    for i in range(k):
        t = 0.0 if k == 1 else 2.0 * i / (k - 1)
        j = min(int(t), 1)
        f = t - j
        rgb = (round(a + (b - a) * f) for a, b in zip(stops[j], stops[j + 1], strict=True))
        out.append("#" + "".join(f"{v:02x}" for v in rgb))
    return tuple(out)


@dataclass(frozen=True)
class Grading:
    """A class table: thresholds on an index, with a label and a colour per class.

    ``k = len(breaks) + 1`` classes get the codes ``1..k``. With ``right=True`` (the default)
    the breaks are inclusive upper bounds, so a value exactly on a threshold goes to the
    **lower** class: with breaks ``(0.7, 1, 2, 3)``, 0.7 is class 1 and 0.7000001 class 2.
    ``right=False`` makes the breaks inclusive lower bounds (Hakanson's "< 40 low,
    40-80 moderate": 40 is moderate). This is ``numpy.digitize(values, breaks, right)`` + 1.

    Parameters
    ----------
    name : str
        Short name (used in messages and band descriptions).
    breaks : sequence of float
        Strictly increasing finite thresholds, in the index's units.
    labels : sequence of str
        One label per class, ``len(breaks) + 1`` of them.
    colors : sequence of str, optional
        One ``#rrggbb`` colour per class; by default green through yellow to red.
    right : bool, default True
        Whether a value on a threshold belongs to the lower class (see above).
    valid_min : float, default 0.0
        Values below it are invalid (nodata): indices that cannot be negative use 0,
        :data:`IGEO` uses ``-inf``.

    Examples
    --------
    >>> NEMEROW.classify([0.5, 0.7, 0.71, 1.0, 2.0, 3.0, 3.5, float("nan"), -1.0]).tolist()
    [1, 1, 2, 2, 3, 4, 5, 255, 255]
    """

    name: str
    breaks: Sequence[float]
    labels: Sequence[str]
    colors: Sequence[str] = ()
    right: bool = True
    valid_min: float = 0.0
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        breaks = tuple(float(b) for b in self.breaks)
        labels = tuple(str(lab) for lab in self.labels)
        colors = tuple(str(c) for c in self.colors) or _palette(len(labels))
        where = f"grading {self.name!r}"
        if not breaks:
            raise ConfigError(f"{where}: give at least one break")
        if not all(math.isfinite(b) for b in breaks):
            raise ConfigError(f"{where}: breaks must be finite numbers, got {list(breaks)}")
        if any(b >= c for b, c in zip(breaks, breaks[1:], strict=False)):
            raise ConfigError(f"{where}: breaks must increase strictly, got {list(breaks)}")
        if len(labels) != len(breaks) + 1:
            raise ConfigError(
                f"{where}: {len(breaks)} breaks need {len(breaks) + 1} labels, got {len(labels)}"
            )
        if len(labels) >= CLASS_NODATA:
            raise ConfigError(f"{where}: at most {CLASS_NODATA - 1} classes fit in uint8")
        if len(colors) != len(labels):
            raise ConfigError(f"{where}: {len(labels)} classes need as many colours")
        bad = [c for c in colors if not _HEX.match(c)]
        if bad:
            raise ConfigError(f"{where}: colours must be '#rrggbb', got {bad}")
        object.__setattr__(self, "breaks", breaks)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "colors", tuple(c.lower() for c in colors))
        object.__setattr__(self, "valid_min", float(self.valid_min))

    @property
    def k(self) -> int:
        """Number of classes."""
        return len(self.labels)

    def classify(self, values: ArrayLike) -> NDArray[np.uint8]:
        """Class codes ``1..k`` of ``values``; :data:`CLASS_NODATA` where invalid.

        Parameters
        ----------
        values : array_like
            Index values (any shape).

        Returns
        -------
        numpy.ndarray of uint8
            Same shape; NaN, +-inf and values below ``valid_min`` get 255.

        Notes
        -----
        float32 (and float16) values are compared with the breaks rounded to the same
        precision, so a float32 raster value written as 0.3 still counts as "on" a 0.3 break.
        """
        v = np.asarray(values)
        dtype = v.dtype if v.dtype in (np.float32, np.float16) else np.dtype(np.float64)
        v = v.astype(dtype, copy=False)
        codes = np.digitize(v, np.asarray(self.breaks, dtype=dtype), right=self.right) + 1
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(v) | (v < self.valid_min)
        return np.asarray(np.where(bad, CLASS_NODATA, codes), dtype=np.uint8)

    def classes(self) -> list[tuple[int, str, str]]:
        """``(code, label, colour)`` per class, for colour tables and QGIS styles."""
        return [
            (i + 1, lab, col)
            for i, (lab, col) in enumerate(zip(self.labels, self.colors, strict=True))
        ]

    @classmethod
    def from_mapping(cls, spec: Mapping[str, Any], *, name: str = "custom") -> Grading:
        """A grading from a config mapping.

        Parameters
        ----------
        spec : mapping
            ``breaks`` and ``labels`` (required); ``colors``, ``right``, ``valid_min``
            (``null`` for no lower limit), ``name`` (optional).
        name : str
            Name used when ``spec`` has none.

        Examples
        --------
        >>> g = Grading.from_mapping({"breaks": [60, 120], "labels": ["low", "mid", "high"]})
        >>> g.classify([60, 61, 500]).tolist()
        [1, 2, 3]
        """
        allowed = {"name", "breaks", "labels", "colors", "right", "valid_min"}
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise ConfigError(f"grading: unknown keys {unknown}; allowed: {sorted(allowed)}")
        for key in ("breaks", "labels"):
            if key not in spec or isinstance(spec[key], str | bytes):
                raise ConfigError(f"grading {name!r}: '{key}' must be a list")
        vmin = spec.get("valid_min", 0.0)
        try:
            breaks = [float(b) for b in spec["breaks"]]
            valid_min = -math.inf if vmin is None else float(vmin)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"grading {name!r}: breaks and valid_min must be numbers") from exc
        return cls(
            name=str(spec.get("name", name)),
            breaks=breaks,
            labels=list(spec["labels"]),
            colors=list(spec.get("colors") or ()),
            right=bool(spec.get("right", True)),
            valid_min=valid_min,
        )


_GREEN_RED_5 = ("#1a9850", "#a6d96a", "#fee08b", "#fc8d59", "#d73027")

#: Single-factor index P_i (◐: four classes as in the 2014 national soil survey bulletin; the
#: 1/2/3/5 cut points were not found in retrieved text). P <= 1 unpolluted, 1-2 slight,
#: 2-3 light, 3-5 moderate, > 5 heavy; a value on a threshold takes the lower class.
SINGLE_FACTOR = Grading(
    "single_factor",
    (1.0, 2.0, 3.0, 5.0),
    (
        "unpolluted",
        "slightly polluted",
        "lightly polluted",
        "moderately polluted",
        "heavily polluted",
    ),
    _GREEN_RED_5,
    description="P_i = C/S; cut points 1/2/3/5 partly checked (science.md section 4)",
)

#: Nemerow index P_N (HJ/T 166-2004 grades, ✔): <= 0.7 safe, 0.7-1 warning line, 1-2 slight,
#: 2-3 moderate, > 3 heavy; a value on a threshold takes the lower grade.
NEMEROW = Grading(
    "nemerow",
    (0.7, 1.0, 2.0, 3.0),
    (
        "I safe",
        "II warning line",
        "III slightly polluted",
        "IV moderately polluted",
        "V heavily polluted",
    ),
    _GREEN_RED_5,
    description="P_N grades I-V, HJ/T 166-2004 (science.md section 4)",
)

#: Geoaccumulation index (Müller 1969 classes 0-6, ✔). Müller class c is written as code
#: ``c + 1`` (codes 1..7) so that every grading starts at 1 and 255 stays nodata; the labels
#: name the Müller class. I_geo <= 0 class 0, 0-1 class 1, ..., > 5 class 6 (a value on a
#: threshold takes the lower class). Negative I_geo is valid.
IGEO = Grading(
    "igeo",
    (0.0, 1.0, 2.0, 3.0, 4.0, 5.0),
    (
        "class 0 unpolluted",
        "class 1 unpolluted to moderately polluted",
        "class 2 moderately polluted",
        "class 3 moderately to strongly polluted",
        "class 4 strongly polluted",
        "class 5 strongly to extremely polluted",
        "class 6 extremely polluted",
    ),
    ("#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027", "#7f0000"),
    valid_min=-math.inf,
    description="Müller (1969) class c has code c + 1",
)

#: Hakanson single-metal potential ecological risk E_r (✔): < 40 low, 40-80 moderate,
#: 80-160 considerable, 160-320 high, >= 320 very high. Here a value on a threshold takes the
#: **higher** class (``right=False``), as the source table reads.
HAKANSON_ER = Grading(
    "hakanson_er",
    (40.0, 80.0, 160.0, 320.0),
    ("low", "moderate", "considerable", "high", "very high"),
    _GREEN_RED_5,
    right=False,
    description="E_r = T_r C / B (science.md section 4)",
)

#: Hakanson risk index RI (✔): < 150 low, 150-300 moderate, 300-600 considerable, >= 600 very
#: high; a value on a threshold takes the higher class (``right=False``). Many studies rescale
#: these cut points to the metals used: build your own with :meth:`Grading.from_mapping`.
HAKANSON_RI = Grading(
    "hakanson_ri",
    (150.0, 300.0, 600.0),
    ("low", "moderate", "considerable", "very high"),
    ("#1a9850", "#fee08b", "#fc8d59", "#d73027"),
    right=False,
    description="RI = sum of E_r (science.md section 4)",
)

#: Built-in gradings by name.
GRADINGS: dict[str, Grading] = {
    g.name: g for g in (SINGLE_FACTOR, NEMEROW, IGEO, HAKANSON_ER, HAKANSON_RI)
}


def get_grading(spec: str | Mapping[str, Any] | Grading) -> Grading:
    """A built-in grading by name, or a custom one from a config mapping.

    Parameters
    ----------
    spec : str, mapping or Grading
        A name in :data:`GRADINGS`, a mapping for :meth:`Grading.from_mapping`, or a grading.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the built-in ones) or a malformed mapping.
    """
    if isinstance(spec, Grading):
        return spec
    if isinstance(spec, Mapping):
        return Grading.from_mapping(spec)
    key = str(spec).strip().lower()
    if key not in GRADINGS:
        raise ConfigError(f"unknown grading {spec!r}; built-in: {', '.join(GRADINGS)}")
    return GRADINGS[key]


# --------------------------------------------------------------------------------------------
# indices
# --------------------------------------------------------------------------------------------


def _floats(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _valid_concentration(c: FloatArray) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return np.isfinite(c) & (c >= 0)


def _check_reference(x: FloatArray, what: str, metal: str | None) -> None:
    """Raise if any finite reference value (standard, background, T_r) is <= 0."""
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(x) & (x <= 0)
    if np.any(bad):
        who = f" of {metal}" if metal else ""
        raise ConfigError(f"the {what}{who} must be > 0 mg/kg, got {x[bad].ravel()[0]:g}")


def single_factor(c: ArrayLike, s: ArrayLike, *, metal: str | None = None) -> FloatArray:
    """Single-factor pollution index P_i = C / S (dimensionless).

    Parameters
    ----------
    c : array_like
        Concentration, mg/kg.
    s : array_like
        Standard (screening) value, mg/kg: a scalar or an array (a pH-dependent value per
        pixel, from :meth:`Standard.screening`). Broadcast against ``c``.
    metal : str, optional
        Named in error messages.

    Returns
    -------
    numpy.ndarray of float64
        NaN where C is negative, infinite or NaN, or S is NaN.

    Raises
    ------
    ConfigError
        A finite S <= 0.

    Examples
    --------
    >>> single_factor([45.0, 90.0, -1.0], 90.0).tolist()
    [0.5, 1.0, nan]
    """
    c, s = _floats(c), _floats(s)
    _check_reference(s, "standard value", metal)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = c / s
    return np.where(_valid_concentration(c), p, np.nan)


def nemerow(p: Sequence[ArrayLike] | FloatArray) -> FloatArray:
    """Nemerow integrated pollution index P_N = sqrt((P_max^2 + P_avg^2) / 2).

    P_max and P_avg are the largest and the mean single-factor index over the metals, pixel
    by pixel.

    Parameters
    ----------
    p : sequence of array_like
        One P_i array per metal (dimensionless), all broadcastable to one shape (a 2-D array
        is read as metals along axis 0).

    Returns
    -------
    numpy.ndarray of float64
        NaN wherever any metal's P_i is NaN, infinite or negative.

    Examples
    --------
    >>> round(float(nemerow([0.5, 2.0])), 4)  # sqrt((2^2 + 1.25^2) / 2)
    1.6677
    """
    arrays = [_floats(a) for a in p]
    if not arrays:
        raise ValueError("nemerow needs the single-factor index of at least one metal")
    stack = np.stack(np.broadcast_arrays(*arrays))
    stack = np.where(_valid_concentration(stack), stack, np.nan)
    pmax = stack.max(axis=0)
    pavg = stack.mean(axis=0)
    return np.asarray(np.sqrt((pmax**2 + pavg**2) / 2.0), dtype=np.float64)


def igeo(c: ArrayLike, b: ArrayLike, *, metal: str | None = None) -> FloatArray:
    """Geoaccumulation index I_geo = log2(C / (1.5 B)) (Müller 1969).

    Parameters
    ----------
    c : array_like
        Concentration, mg/kg.
    b : array_like
        Geochemical background, mg/kg (scalar or array, broadcast against ``c``).
    metal : str, optional
        Named in error messages.

    Returns
    -------
    numpy.ndarray of float64
        NaN where C <= 0 (log undefined), C is not finite, or B is NaN.

    Raises
    ------
    ConfigError
        A finite B <= 0.

    Examples
    --------
    >>> igeo([45.0, 90.0, 0.0], 30.0).tolist()  # log2(1), log2(2), undefined
    [0.0, 1.0, nan]
    """
    c, b = _floats(c), _floats(b)
    _check_reference(b, "background value", metal)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2(c / (1.5 * b))
        ok = np.isfinite(c) & (c > 0)
    return np.where(ok, out, np.nan)


def hakanson_er(c: ArrayLike, b: ArrayLike, tr: float, *, metal: str | None = None) -> FloatArray:
    """Hakanson potential ecological risk of one metal, E_r = T_r C / B.

    Parameters
    ----------
    c : array_like
        Concentration, mg/kg.
    b : array_like
        Background value, mg/kg.
    tr : float
        Toxic-response factor T_r (dimensionless; :func:`toxic_response`).
    metal : str, optional
        Named in error messages.

    Returns
    -------
    numpy.ndarray of float64
        NaN where C is negative or not finite, or B is NaN.

    Raises
    ------
    ConfigError
        T_r or a finite B <= 0.

    Examples
    --------
    >>> hakanson_er([0.194], 0.097, 30).tolist()  # Cd: 30 * 2
    [60.0]
    """
    c, b, t = _floats(c), _floats(b), _floats(tr)
    if not (t.ndim == 0 and math.isfinite(float(t)) and float(t) > 0):
        who = f" of {metal}" if metal else ""
        raise ConfigError(f"the toxic-response factor{who} must be one number > 0, got {tr!r}")
    _check_reference(b, "background value", metal)
    with np.errstate(divide="ignore", invalid="ignore"):
        er = float(t) * c / b
    return np.where(_valid_concentration(c), er, np.nan)


def hakanson_ri(er: Sequence[ArrayLike] | FloatArray) -> FloatArray:
    """Hakanson potential ecological risk index RI = sum of E_r over metals.

    Parameters
    ----------
    er : sequence of array_like
        One E_r array per metal, broadcastable to one shape.

    Returns
    -------
    numpy.ndarray of float64
        NaN wherever any metal's E_r is NaN, infinite or negative.

    Examples
    --------
    >>> hakanson_ri([[60.0, 10.0], [5.0, float("nan")]]).tolist()
    [65.0, nan]
    """
    arrays = [_floats(a) for a in er]
    if not arrays:
        raise ValueError("hakanson_ri needs E_r of at least one metal")
    stack = np.stack(np.broadcast_arrays(*arrays))
    stack = np.where(_valid_concentration(stack), stack, np.nan)
    return np.asarray(stack.sum(axis=0), dtype=np.float64)


# --------------------------------------------------------------------------------------------
# reading the tables (through geohm.io.text: only geohm/io touches files)
# --------------------------------------------------------------------------------------------


def _read_text(source: str | os.PathLike[str]) -> str:
    return read_text(source, what="standards file")


def _package_text(filename: str) -> str:
    return packaged_text(_STANDARDS_PACKAGE, filename)


def _read_rows(text: str, where: str, required: Iterable[str]) -> list[dict[str, str]]:
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


def _number(text: str, where: str, column: str, default: float | None = None) -> float:
    if text == "" and default is not None:
        return default
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"{where}: column {column!r} must be a number, got {text!r}") from exc


# --------------------------------------------------------------------------------------------
# standards
# --------------------------------------------------------------------------------------------


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
        """The rows :meth:`screening` draws from, sorted by pH (for provenance: ``checked``,
        ``note``, ``source``).

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
        p = _floats(ph)
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


def _standard_from_table(text: str, name: str) -> Standard:
    head = text.lstrip().split("\n", 1)[0]
    if "mpl_max" in head and "parameter" in head:  # a limits table like seed001_limits.csv
        rows = []
        for i, r in enumerate(_read_rows(text, name, ("medium", "parameter", "unit", "mpl_max"))):
            if r["medium"].lower() != "soil" or r["unit"].lower() != "mg/kg":
                continue  # pH, EC and water rows are not soil concentration limits
            where = f"{name}, row {i + 2}"
            rows.append(
                StandardRow(
                    r["parameter"],
                    "screening",
                    "all",
                    -math.inf,
                    math.inf,
                    _number(r["mpl_max"], where, "mpl_max"),
                    r.get("checked", ""),
                    r.get("note", ""),
                    r.get("source", ""),
                )
            )
        return Standard(name=name, rows=tuple(rows))
    rows = []
    for i, r in enumerate(_read_rows(text, name, ("metal", "value_mg_kg"))):
        where = f"{name}, row {i + 2}"
        rows.append(
            StandardRow(
                metal=r["metal"],
                kind=(r.get("kind") or "screening").lower(),
                land_use=_norm_land_use(r.get("land_use") or "all"),
                ph_min=_number(r.get("ph_min", ""), where, "ph_min", -math.inf),
                ph_max=_number(r.get("ph_max", ""), where, "ph_max", math.inf),
                value_mg_kg=_number(r["value_mg_kg"], where, "value_mg_kg"),
                checked=r.get("checked", ""),
                note=r.get("note", ""),
                source=r.get("source", ""),
            )
        )
    return Standard(name=name, rows=tuple(rows))


@functools.lru_cache(maxsize=8)
def _builtin_standard(key: str) -> Standard:
    return _standard_from_table(_package_text(BUILTIN_STANDARDS[key]), key)


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
    key = re.sub(r"[\s_\-]*2018$", "", text.strip().lower()).replace(" ", "")
    key = key.replace("_", "").replace("-", "").replace("gb/t", "gb")
    if key in BUILTIN_STANDARDS:
        return _builtin_standard(key)
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(_read_text(path))
        except yaml.YAMLError as exc:
            raise InputError(f"cannot parse standards file {path}: {exc}") from exc
        return Standard.from_mapping(data, name=str(path))
    if suffix in (".csv", ".txt") or path.exists() or os.sep in text or "/" in text:
        return _standard_from_table(_read_text(path), str(path))
    raise ConfigError(
        f"unknown standard {text!r}; built-in: {', '.join(BUILTIN_STANDARDS)}, or give the "
        f"path of a CSV file"
    )


# --------------------------------------------------------------------------------------------
# background values and Hakanson factors
# --------------------------------------------------------------------------------------------


def _table(path: str | os.PathLike[str] | None, filename: str) -> tuple[str, str]:
    if path is None:
        return _package_text(filename), filename
    return _read_text(path), os.fspath(path)


def background(
    metal: str,
    region: str = "national",
    *,
    statistic: str = "mean",
    path: str | os.PathLike[str] | None = None,
) -> float:
    """The soil background value of ``metal`` in mg/kg.

    Parameters
    ----------
    metal : str
        Metal symbol (case-insensitive).
    region : str, default "national"
        ``national`` (China, A horizon, CNEMC 1990) or ``shaanxi`` (seed 002 Table 6, Cu and
        Pb only), or a region of your own file.
    statistic : str, default "mean"
        ``mean``; the Shaanxi rows also have ``min``, ``max``, ``sd``.
    path : path-like, optional
        A CSV in the format of ``geohm/standards/background.csv`` instead of the built-in one.

    Raises
    ------
    ConfigError
        No value for that metal, region and statistic (the message lists what exists).

    Notes
    -----
    Only national Cd, Hg, As are partly checked; national Cu, Pb, Zn, Cr, Ni are unverified
    (see the ``checked`` column).

    Examples
    --------
    >>> background("Cd"), background("cu", "shaanxi")
    (0.097, 21.4)
    """
    text, where = _table(path, "background.csv")
    rows = _read_rows(text, where, ("metal", "region", "value_mg_kg"))
    key = (metal.strip().casefold(), region.strip().casefold(), statistic.strip().casefold())
    for i, r in enumerate(rows):
        if (
            r["metal"].casefold(),
            r["region"].casefold(),
            (r.get("statistic") or "mean").casefold(),
        ) == key:
            return _number(r["value_mg_kg"], f"{where}, row {i + 2}", "value_mg_kg")
    have = sorted({f"{r['metal']}/{r['region']}" for r in rows})
    raise ConfigError(
        f"no {statistic} background value for metal {metal!r} in region {region!r} ({where}); "
        f"available: {', '.join(have)}"
    )


def toxic_response(
    metal: str,
    overrides: Mapping[str, float] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> float:
    """Hakanson's toxic-response factor T_r of ``metal`` (dimensionless).

    Parameters
    ----------
    metal : str
        Metal symbol (case-insensitive).
    overrides : mapping, optional
        ``{metal: T_r}`` taking precedence over the table (e.g. ``{"Ni": 2}``).
    path : path-like, optional
        A CSV in the format of ``geohm/standards/hakanson.csv``.

    Raises
    ------
    ConfigError
        Unknown metal (the message lists the known ones) or an override that is not > 0.

    Examples
    --------
    >>> toxic_response("Cd"), toxic_response("Ni"), toxic_response("Ni", {"ni": 2})
    (30.0, 5.0, 2.0)
    """
    key = metal.strip().casefold()
    for m, v in (overrides or {}).items():
        if str(m).strip().casefold() == key:
            try:
                value = float(v)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"toxic-response factor of {metal} must be a number") from exc
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"toxic-response factor of {metal} must be > 0, got {v!r}")
            return value
    text, where = _table(path, "hakanson.csv")
    rows = _read_rows(text, where, ("metal", "t_r"))
    for i, r in enumerate(rows):
        if r["metal"].casefold() == key:
            return _number(r["t_r"], f"{where}, row {i + 2}", "t_r")
    raise ConfigError(
        f"no toxic-response factor for metal {metal!r} ({where}); known: "
        f"{', '.join(r['metal'] for r in rows)}; give one in overrides"
    )

"""Gradings: class tables on a risk index (thresholds, labels, colours) and the built-in ones.

Class maps are ``uint8`` with codes ``1..k`` and :data:`CLASS_NODATA` (255) for invalid
pixels; see :class:`Grading`. Built in: :data:`SINGLE_FACTOR`, :data:`NEMEROW`,
:data:`IGEO`, :data:`HAKANSON_ER`, :data:`HAKANSON_RI` (science.md section 4).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geohm.errors import ConfigError

__all__ = [
    "CLASS_NODATA",
    "GRADINGS",
    "HAKANSON_ER",
    "HAKANSON_RI",
    "IGEO",
    "NEMEROW",
    "SINGLE_FACTOR",
    "Grading",
    "get_grading",
]

#: Class code written for invalid pixels (NaN, inf, below a grading's ``valid_min``).
CLASS_NODATA = 255

_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


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

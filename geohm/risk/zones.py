"""Area above the screening value, per zone and for the whole scene, summed window by window.

:class:`ExceedanceAreas` is a streaming accumulator: the prediction calls
:meth:`~ExceedanceAreas.update` once per map window (any order, any window size) with the
window's zone codes, P(C > S), the prediction interval's bounds and the screening value S,
and :meth:`~ExceedanceAreas.result` gives, per zone and for the scene:

==================  ===============================================  ===================
quantity            definition (A: the area of one pixel)            field
==================  ===============================================  ===================
mapped area         A x number of mapped pixels                      ``mapped_ha``
expected area       A x sum of P(C > S) over the mapped pixels       ``expected_ha``
certainly above     A x number of pixels whose lower bound > S       ``certain_ha``
possibly above      A x number of pixels whose upper bound > S       ``possible_ha``
shares              each of the three / the mapped area              ``*_share``
==================  ===============================================  ===================

Areas are in hectares (1 ha = 10,000 m^2); the grid is projected, so every pixel has the
same area. A pixel counts as mapped where P is finite and, when the accumulator takes
interval bounds, the bounds and S are finite too. Counts are integers and the sum of P is
accumulated in float64, so the result does not depend on the order or size of the windows
(up to the rounding of the float64 sum, about 1e-16 relative).

Certain <= expected <= possible holds for a zone when P is consistent with the interval
(P = 1 where the lower bound is above S, 0 where the upper bound is below it). From a
(1 - alpha) central interval of the same predictive distribution, P is only >= 1 - alpha/2
where the lower bound is above S (<= alpha/2 where the upper bound is below it), so on a
zone made only of such pixels the certain area can exceed the expected one by up to
alpha/2 of it (and the expected one the possible one, likewise): the three answer
different questions and are reported as computed.

Zones are coded 1..n (:mod:`geohm.io.zones` maps any id values, strings too, to these
codes and back); 0, or the accumulator's ``zone_nodata``, is "in no zone". Several metals:
one accumulator per metal (each metal has its own model, valid pixels and S); their
results are combined by :func:`zone_columns` (one column per metal and statistic, for
``zones.gpkg``) and :func:`areas_report` (report.json).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "NO_ZONE",
    "AreaResult",
    "ExceedanceAreas",
    "ZoneArea",
    "areas_report",
    "zone_columns",
]

#: Zone code of pixels in no zone.
NO_ZONE = 0

#: Square metres per hectare.
_M2_PER_HA = 10_000.0

#: The statistics of a zone, in the order of the tables (``zone_columns``).
_STATS = (
    "area_ha",
    "mapped_ha",
    "expected_ha",
    "certain_ha",
    "possible_ha",
    "expected_share",
    "certain_share",
    "possible_share",
)


@dataclass(frozen=True)
class ZoneArea:
    """The areas of one zone (or of the scene, or of the mapped pixels in no zone).

    Parameters
    ----------
    zone : int
        Zone code (1..n); 0 for the mapped pixels in no zone; -1 for the whole scene.
    area_ha : float
        Area of the zone's pixels on the grid, mapped or not (ha).
    mapped_ha : float
        Area of its mapped pixels (ha).
    expected_ha : float
        Expected area above the screening value: sum of P(C > S) x pixel area (ha).
    certain_ha, possible_ha : float or None
        Area whose interval lower (upper) bound is above S (ha); None without bounds.
    expected_share, certain_share, possible_share : float or None
        The three areas over the mapped area (0-1); None where nothing is mapped or
        without bounds.
    """

    zone: int
    area_ha: float
    mapped_ha: float
    expected_ha: float
    certain_ha: float | None
    possible_ha: float | None
    expected_share: float | None
    certain_share: float | None
    possible_share: float | None


@dataclass(frozen=True)
class AreaResult:
    """Areas above the screening value of one metal: per zone, outside the zones, in all.

    Parameters
    ----------
    metal : str
        The mapped metal (target name).
    pixel_area_m2 : float
        Area of one pixel (m^2).
    scene : ZoneArea
        All mapped pixels (``zone`` -1).
    outside : ZoneArea
        Mapped pixels in no zone (``zone`` 0); with the zones it sums to ``scene``.
    zones : tuple of ZoneArea
        Zones 1..n in code order.
    """

    metal: str
    pixel_area_m2: float
    scene: ZoneArea
    outside: ZoneArea
    zones: tuple[ZoneArea, ...]

    def to_frame(self, labels: Mapping[int, Any] | Sequence[Any] | None = None) -> pd.DataFrame:
        """The zones as a tidy table: one row per zone.

        Parameters
        ----------
        labels : mapping of int to id, or sequence of ids, optional
            The zone ids (code -> id, or ids in code order: ``labels[0]`` is code 1).
            Default: the codes.

        Returns
        -------
        pandas.DataFrame
            Columns ``metal``, ``code``, ``zone`` (the id) and the statistics of
            :class:`ZoneArea` (ha and shares 0-1; NaN for None).
        """
        columns: dict[str, Any] = {
            "metal": [self.metal] * len(self.zones),
            "code": [z.zone for z in self.zones],
            "zone": [_label(labels, z.zone) for z in self.zones],
        }
        for stat in _STATS:  # None -> NaN
            columns[stat] = np.array([getattr(z, stat) for z in self.zones], dtype="float64")
        return pd.DataFrame(columns)

    def as_dict(self, labels: Mapping[int, Any] | Sequence[Any] | None = None) -> dict[str, Any]:
        """The result for report.json (plain types; None where a value is undefined).

        Parameters
        ----------
        labels : mapping of int to id, or sequence of ids, optional
            The zone ids, as in :meth:`to_frame`.

        Returns
        -------
        dict
            ``metal``, ``pixel_area_m2``, ``scene`` and ``outside_zones`` (dicts of the
            statistics) and ``zones`` (a list of them, each with its ``zone`` id).
        """

        def plain(z: ZoneArea, label: Any = None) -> dict[str, Any]:
            out = {k: v for k, v in asdict(z).items() if k != "zone"}
            return {"zone": label, **out} if label is not None else out

        return {
            "metal": self.metal,
            "pixel_area_m2": self.pixel_area_m2,
            "scene": plain(self.scene),
            "outside_zones": plain(self.outside),
            "zones": [plain(z, _label(labels, z.zone)) for z in self.zones],
        }


def _label(labels: Mapping[int, Any] | Sequence[Any] | None, code: int) -> Any:
    if labels is None:
        return code
    if isinstance(labels, Mapping):
        return labels[code]
    return labels[code - 1]


class ExceedanceAreas:
    """Streaming sums of the area above a screening value, per zone, for one metal.

    Parameters
    ----------
    metal : str
        The metal (target name), carried into the result.
    pixel_area_m2 : float
        Area of one pixel of the (projected) grid, m^2 (30 m Landsat pixels: 900).
    n_zones : int
        Number of zones; their codes are 1..n_zones. 0: no zone layer (scene only).
    bounds : bool
        Whether each window gives the prediction interval's bounds and S (then the
        certain and possible areas are computed; otherwise they are None).
    zone_nodata : int, optional
        A zone code that also means "in no zone" (besides 0).

    Examples
    --------
    Two zones on a 2 x 3 window of 100 m^2 pixels (S = 50 mg/kg):

    >>> acc = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=2)
    >>> acc.update(
    ...     np.array([[1, 1, 2], [2, 2, 0]]),
    ...     np.array([[0.5, 1.0, 0.25], [0.0, np.nan, 0.75]]),
    ...     lower=np.array([[40.0, 60, 30], [10, 0, 45]]),
    ...     upper=np.array([[70.0, 90, 55], [40, 0, 80]]),
    ...     screening=50.0,
    ... )
    >>> r = acc.result()
    >>> r.scene.mapped_ha, r.scene.expected_ha, r.scene.certain_ha, r.scene.possible_ha
    (0.05, 0.025, 0.01, 0.04)
    >>> [z.expected_ha for z in r.zones]
    [0.015, 0.0025]
    """

    def __init__(
        self,
        metal: str,
        *,
        pixel_area_m2: float,
        n_zones: int = 0,
        bounds: bool = True,
        zone_nodata: int | None = None,
    ) -> None:
        if not (math.isfinite(pixel_area_m2) and pixel_area_m2 > 0):
            raise ValueError(f"pixel_area_m2 must be a positive area, got {pixel_area_m2!r}")
        if n_zones < 0:
            raise ValueError(f"n_zones must be >= 0, got {n_zones}")
        self.metal = metal
        self.pixel_area_m2 = float(pixel_area_m2)
        self.n_zones = int(n_zones)
        self.bounds = bool(bounds)
        self.zone_nodata = zone_nodata
        size = self.n_zones + 1  # index 0: in no zone
        self._pixels = np.zeros(size, dtype=np.int64)  # every pixel of the zone
        self._mapped = np.zeros(size, dtype=np.int64)
        self._expected = np.zeros(size, dtype=np.float64)  # sum of P
        self._certain = np.zeros(size, dtype=np.int64)
        self._possible = np.zeros(size, dtype=np.int64)

    def update(
        self,
        zones: ArrayLike | None,
        probability: ArrayLike,
        *,
        lower: ArrayLike | None = None,
        upper: ArrayLike | None = None,
        screening: ArrayLike | None = None,
    ) -> None:
        """Add one window.

        Parameters
        ----------
        zones : array-like of int, shape (y, x), or None
            Zone code of each pixel (1..n_zones; 0 or ``zone_nodata``: no zone). None:
            every pixel is in no zone.
        probability : array-like of float, shape (y, x)
            P(C > S) per pixel (0-1); NaN where the pixel is not mapped.
        lower, upper : array-like of float, shape (y, x), optional
            Bounds of the prediction interval (mg/kg). Required when the accumulator
            was made with ``bounds=True``, ignored otherwise.
        screening : float or array-like of float, optional
            The screening value S (mg/kg): a number or a (y, x) array (NaN: none).
            Required with bounds.

        Raises
        ------
        ValueError
            Arrays of different shapes, a probability outside 0-1, a zone code outside
            0..n_zones, or missing bounds / S with ``bounds=True``.
        """
        p = np.asarray(probability, dtype=np.float64)
        shape = p.shape
        z = self._zone_codes(zones, shape)
        mapped = np.isfinite(p)
        if self.bounds:
            if lower is None or upper is None or screening is None:
                raise ValueError(
                    "this accumulator counts the certain and possible areas: give lower, upper "
                    "and screening (or make it with bounds=False)"
                )
            lo, hi = _same_shape(lower, shape, "lower"), _same_shape(upper, shape, "upper")
            s = np.broadcast_to(np.asarray(screening, dtype=np.float64), shape)
            mapped &= np.isfinite(lo) & np.isfinite(hi) & np.isfinite(s)
        pm = p[mapped]
        if pm.size and (pm.min() < 0.0 or pm.max() > 1.0):
            raise ValueError("probability must lie in 0-1 (NaN where not mapped)")
        n = self.n_zones + 1
        self._pixels += np.bincount(z.ravel(), minlength=n)
        zm = z[mapped]
        self._mapped += np.bincount(zm, minlength=n)
        self._expected += np.bincount(zm, weights=pm, minlength=n)
        if self.bounds:
            sm = s[mapped]
            self._certain += np.bincount(zm[lo[mapped] > sm], minlength=n)
            self._possible += np.bincount(zm[hi[mapped] > sm], minlength=n)

    def _zone_codes(self, zones: ArrayLike | None, shape: tuple[int, ...]) -> NDArray[np.intp]:
        if zones is None:
            return np.zeros(shape, dtype=np.intp)
        z = np.asarray(zones)
        if z.shape != shape:
            raise ValueError(f"zones has shape {z.shape}, probability {shape}")
        if not np.issubdtype(z.dtype, np.integer):
            raise ValueError(f"zone codes must be integers, got dtype {z.dtype}")
        z = z.astype(np.intp)
        if self.zone_nodata is not None:
            z = np.where(z == self.zone_nodata, NO_ZONE, z)
        if z.size and (z.min() < 0 or z.max() > self.n_zones):
            bad = z[(z < 0) | (z > self.n_zones)].ravel()[0]
            raise ValueError(f"zone code {bad} outside 0..{self.n_zones} (n_zones)")
        return z

    def result(self) -> AreaResult:
        """The areas so far (hectares and shares).

        Returns
        -------
        AreaResult
            Per zone (codes 1..n), the mapped pixels in no zone, and the scene.
        """
        rows = [self._row(code, slice(code, code + 1)) for code in range(self.n_zones + 1)]
        return AreaResult(
            metal=self.metal,
            pixel_area_m2=self.pixel_area_m2,
            scene=self._row(-1, slice(None)),
            outside=rows[0],
            zones=tuple(rows[1:]),
        )

    def _row(self, zone: int, index: slice) -> ZoneArea:
        ha = self.pixel_area_m2 / _M2_PER_HA
        mapped = int(self._mapped[index].sum())
        expected = float(self._expected[index].sum()) * ha
        certain = int(self._certain[index].sum()) * ha if self.bounds else None
        possible = int(self._possible[index].sum()) * ha if self.bounds else None
        mapped_ha = mapped * ha

        def share(x: float | None) -> float | None:
            return None if x is None or mapped == 0 else x / mapped_ha

        return ZoneArea(
            zone=zone,
            area_ha=int(self._pixels[index].sum()) * ha,
            mapped_ha=mapped_ha,
            expected_ha=expected,
            certain_ha=certain,
            possible_ha=possible,
            expected_share=share(expected),
            certain_share=share(certain),
            possible_share=share(possible),
        )


def _same_shape(x: ArrayLike, shape: tuple[int, ...], name: str) -> NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, probability {shape}")
    return a


def zone_columns(results: Sequence[AreaResult]) -> pd.DataFrame:
    """The zones' statistics of every metal side by side (the columns of ``zones.gpkg``).

    Parameters
    ----------
    results : sequence of AreaResult
        One per metal, all over the same zones.

    Returns
    -------
    pandas.DataFrame
        Indexed by zone code (1..n); columns ``<metal>_<statistic>`` (``Cd_expected_ha``,
        ``Cd_certain_share``, ...; NaN for None), metals in the given order.

    Raises
    ------
    ValueError
        The results have different numbers of zones, or two are for the same metal.
    """
    if len({r.metal for r in results}) != len(results):
        raise ValueError("one result per metal")
    if len({len(r.zones) for r in results}) > 1:
        raise ValueError("the results are not over the same zones")
    n = len(results[0].zones) if results else 0
    frame = pd.DataFrame(index=pd.RangeIndex(1, n + 1, name="code"))
    for r in results:
        table = r.to_frame().set_index("code")
        for stat in _STATS:
            frame[f"{r.metal}_{stat}"] = table[stat].to_numpy(dtype="float64")
    return frame


def areas_report(
    results: Sequence[AreaResult], labels: Mapping[int, Any] | Sequence[Any] | None = None
) -> dict[str, Any]:
    """The areas above the screening values of every metal, for report.json.

    Parameters
    ----------
    results : sequence of AreaResult
        One per metal.
    labels : mapping of int to id, or sequence of ids, optional
        The zone ids (see :meth:`AreaResult.to_frame`).

    Returns
    -------
    dict
        Metal -> :meth:`AreaResult.as_dict` (without the repeated ``metal``).
    """
    out: dict[str, Any] = {}
    for r in results:
        d = r.as_dict(labels)
        d.pop("metal")
        out[r.metal] = d
    return out

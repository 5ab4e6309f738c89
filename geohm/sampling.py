"""Features at soil sample points: the one place a cube becomes an (n_samples, n_features) table.

Points outside the scene, on masked (cloud, shadow, fill...) or nodata pixels are
dropped and *listed* with their id and the reason; nothing is dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine

from geohm.errors import SampleError
from geohm.io.rasters import read_block

__all__ = ["Dropped", "SampleTable", "sample_cube"]


@dataclass(frozen=True)
class Dropped:
    """A sample point that could not be used, and why."""

    id: str
    reason: str


@dataclass
class SampleTable:
    """Features and targets at the usable sample points.

    Attributes
    ----------
    X : pandas.DataFrame
        (n_samples, n_features) feature values, indexed by sample id.
    y : pandas.DataFrame
        (n_samples, n_targets) concentrations in mg/kg, same index.
    xy : numpy.ndarray
        (n_samples, 2) point coordinates in the cube CRS (map units).
    dropped : list of Dropped
        Points not used, with the reason.
    """

    X: pd.DataFrame
    y: pd.DataFrame
    xy: np.ndarray
    dropped: list[Dropped] = field(default_factory=list)

    def dropped_records(self) -> list[dict[str, str]]:
        """The dropped points as plain dicts (for report.json)."""
        return [{"id": d.id, "reason": d.reason} for d in self.dropped]


def _point_xy(points: Any, crs: Any) -> np.ndarray:
    """(n, 2) coordinates of a GeoDataFrame's points in ``crs``."""
    if points.crs is None:
        raise SampleError("the sample points have no CRS; set 'samples.crs' or fix the file")
    pts = points.to_crs(crs)
    geom = pts.geometry
    if not all(geom.geom_type == "Point"):
        geom = geom.representative_point()
    return np.column_stack([geom.x.to_numpy(), geom.y.to_numpy()])


def sample_cube(
    cube: xr.DataArray,
    points: Any,
    *,
    targets: Sequence[str],
    id_column: str | None = None,
    window: int = 1,
    mask_reason: Callable[[np.ndarray, np.ndarray], list[str | None]] | None = None,
) -> SampleTable:
    """Take the feature values at sample points.

    Parameters
    ----------
    cube : xarray.DataArray
        (feature, y, x) cube with a CRS (``cube.rio.crs``), lazy or in memory.
    points : geopandas.GeoDataFrame
        Sample points in any CRS, with the ``targets`` columns (mg/kg).
    targets : sequence of str
        Target columns (``["Cu", "Pb"]``).
    id_column : str, optional
        Column with sample ids; default: the row number as a string.
    window : int
        Odd window size in pixels; ``1`` takes the pixel under the point, ``3`` the
        mean of the 3x3 window around it (NaN pixels in the window are ignored, the
        centre pixel must be valid).
    mask_reason : callable, optional
        ``mask_reason(rows, cols)`` -> reason string or None per point, telling why a
        masked pixel is masked (e.g. ``"cloud"`` from the QA band).

    Returns
    -------
    SampleTable

    Raises
    ------
    SampleError
        Missing target or id columns, no CRS, or not a single usable point.
    """
    if window < 1 or window % 2 == 0:
        raise SampleError(f"samples.window must be an odd number >= 1, got {window}")
    missing = [t for t in targets if t not in points.columns]
    if missing:
        raise SampleError(
            f"sample points have no column {', '.join(repr(m) for m in missing)} "
            f"(columns: {', '.join(map(str, points.columns))}); fix 'samples.targets'"
        )
    if id_column is not None and id_column not in points.columns:
        raise SampleError(f"sample points have no id column '{id_column}'; fix 'samples.id'")
    ids = (
        points[id_column].astype(str).to_numpy()
        if id_column is not None
        else np.array([str(i) for i in range(len(points))])
    )
    dup = pd.Index(ids)[pd.Index(ids).duplicated()].unique().tolist()
    if dup:
        raise SampleError(
            f"sample ids are not unique ({', '.join(map(str, dup[:5]))}"
            f"{'...' if len(dup) > 5 else ''}); fix the id column or set 'samples.id' to a "
            "column with one id per point"
        )
    crs = cube.rio.crs
    xy = _point_xy(points, crs)
    transform: Affine = cube.rio.transform()
    height, width = cube.sizes["y"], cube.sizes["x"]
    inv = ~transform
    cols = np.floor(inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c).astype(int)
    rows = np.floor(inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f).astype(int)
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)

    yvals = points[list(targets)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    dropped: list[tuple[int, Dropped]] = []  # (row in the input, why)
    for i in np.flatnonzero(~inside):
        dropped.append((int(i), Dropped(ids[i], "outside the scene")))

    idx = np.flatnonzero(inside)
    features = [str(f) for f in cube["feature"].values]
    values = np.full((len(points), len(features)), np.nan)
    if idx.size:
        half = window // 2
        offsets = np.arange(-half, half + 1)
        r = np.clip(rows[idx, None] + offsets[None, :], 0, height - 1)  # (n, w)
        c = np.clip(cols[idx, None] + offsets[None, :], 0, width - 1)
        # Vectorised point-wise selection: only the chunks under the points are read.
        rr = xr.DataArray(np.repeat(r, window, axis=1), dims=("point", "k"))
        cc = xr.DataArray(np.tile(c, (1, window)), dims=("point", "k"))
        win = read_block(cube.isel(y=rr, x=cc).transpose("point", "feature", "k"))
        # Window cells beyond the scene edge were clipped onto edge pixels: drop them
        # from the mean rather than counting edge pixels twice.
        rr_raw = np.repeat(rows[idx, None] + offsets[None, :], window, axis=1)
        cc_raw = np.tile(cols[idx, None] + offsets[None, :], (1, window))
        outside = (rr_raw < 0) | (rr_raw >= height) | (cc_raw < 0) | (cc_raw >= width)
        win = np.where(outside[:, None, :], np.nan, win)
        centre = win[:, :, (window * window) // 2]
        centre_ok = np.all(np.isfinite(centre), axis=1)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows -> NaN
            means = (
                np.nanmean(np.where(np.isfinite(win), win, np.nan), axis=2)
                if window > 1
                else centre
            )
        reasons = (
            mask_reason(rows[idx], cols[idx]) if mask_reason is not None else [None] * idx.size
        )
        for k, i in enumerate(idx):
            if not centre_ok[k]:
                bad = [features[j] for j in np.flatnonzero(~np.isfinite(centre[k]))]
                why = reasons[k] or "nodata"
                detail = f" ({', '.join(bad[:4])}{'...' if len(bad) > 4 else ''} missing)"
                text = f"{why} pixel{detail if why == 'nodata' else ''}"
                dropped.append((int(i), Dropped(ids[i], text)))
            else:
                values[i] = means[k]

    keep = np.isfinite(values).all(axis=1)
    for i in np.flatnonzero(keep & ~np.isfinite(yvals).any(axis=1)):
        bad_t = [t for t, v in zip(targets, yvals[i], strict=True) if not np.isfinite(v)]
        dropped.append((int(i), Dropped(ids[i], f"no value for {', '.join(bad_t)}")))
    keep &= np.isfinite(yvals).all(axis=1)
    if not keep.any():
        reasons_txt = "; ".join(sorted({d.reason for _, d in dropped}))
        raise SampleError(
            f"none of the {len(points)} sample points is usable ({reasons_txt}); check that the "
            "points cover the scene and that their CRS is right"
        )
    index = pd.Index(ids[keep], name="id")
    return SampleTable(
        X=pd.DataFrame(values[keep], index=index, columns=features),
        y=pd.DataFrame(yvals[keep], index=index, columns=list(targets)),
        xy=xy[keep],
        dropped=[d for _, d in sorted(dropped, key=lambda t: t[0])],
    )

"""Features at soil sample points: the one place a cube becomes an (n_samples, n_features) table.

Points outside the scene, on masked (cloud, shadow, fill...) or nodata pixels are
dropped and *listed* with their id and the reason; nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS
from pyproj.transformer import AreaOfInterest, TransformerGroup

from geohm.cube import WindowSource
from geohm.errors import SampleError
from geohm.io.reading import TILE, read_block
from geohm.labvalues import parse_target
from geohm.patches import patch_columns, read_patches

log = logging.getLogger(__name__)

__all__ = ["Dropped", "SampleTable", "datum_warnings", "sample_cube", "with_patches"]


@dataclass(frozen=True)
class Dropped:
    """A sample point left out, and why.

    ``target`` is None when the point is left out of every target (outside the scene,
    masked pixel), else the one target it has no usable value for.
    """

    id: str
    reason: str
    target: str | None = None


@dataclass
class SampleTable:
    """Features and targets at the usable sample points.

    Attributes
    ----------
    X : pandas.DataFrame
        (n_samples, n_features) feature values, indexed by sample id.
    y : pandas.DataFrame
        (n_samples, n_targets) concentrations in mg/kg, same index;
        NaN where a sample has no usable value for that target (it is left out of
        that target only, and listed in ``dropped``).
    xy : numpy.ndarray
        (n_samples, 2) point coordinates in the cube CRS (map units).
    dropped : list of Dropped
        Points left out of every target or of one target, with the reason.
    groups : numpy.ndarray, optional
        (n_samples,) location group of every sample: samples on the same pixel
        (field replicates) share a group, so that they always fall in the same
        split and fold. Default: every sample its own group.
    lab : dict, optional
        Per target: ``{"censored": [ids], "rule": str, "zeros": [ids]}`` (values below
        the detection limit substituted, and zero concentrations kept).
    warnings : list of str
        Things the user should know about the points (datum shift, ...).
    patches : pandas.DataFrame, optional
        The ``(2h + 1)``-pixel patch of every feature around each sample, flattened as
        ``<feature>@<dy>,<dx>`` columns (:func:`geohm.patches.patch_columns`), same
        index: the inputs of patch models (:func:`with_patches`).
    """

    X: pd.DataFrame
    y: pd.DataFrame
    xy: np.ndarray
    dropped: list[Dropped] = field(default_factory=list)
    groups: np.ndarray | None = None
    lab: dict[str, dict[str, Any]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    patches: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        if self.groups is None:
            self.groups = np.arange(len(self.X))

    def dropped_records(self) -> list[dict[str, str]]:
        """The left-out points as plain dicts (for report.json); target "all" or one."""
        return [{"id": d.id, "target": d.target or "all", "reason": d.reason} for d in self.dropped]

    def summary(self) -> dict[str, Any]:
        """Counts for report.json: used per target, censored, zeros, location groups."""
        groups = np.asarray(self.groups)
        _, counts = np.unique(groups, return_counts=True)
        per_target: dict[str, Any] = {}
        for t in self.y.columns:
            lab = self.lab.get(str(t), {})
            per_target[str(t)] = {
                "used": int(np.isfinite(self.y[t].to_numpy(dtype=float)).sum()),
                "left_out": sum(1 for d in self.dropped if d.target in (None, t)),
                "censored": len(lab.get("censored", [])),
                "censored_ids": list(lab.get("censored", [])),
                "censored_rule": lab.get("rule"),
                "zeros": len(lab.get("zeros", [])),
                "zero_ids": list(lab.get("zeros", [])),
            }
        replicated = [
            [str(i) for i in self.X.index[groups == g]] for g in np.unique(groups)[counts > 1]
        ]
        return {
            "per_target": per_target,
            "location_groups": int(counts.size),
            "replicate_groups": replicated,
            "warnings": list(self.warnings),
        }


def datum_warnings(src: Any, dst: Any, lonlat: np.ndarray) -> list[str]:
    """What PROJ's transformation of points from ``src`` to ``dst`` may get wrong.

    Two cases are worth a warning: PROJ has only a *ballpark* transformation (no datum
    shift at all) for the points' area, or the most accurate transformation needs a
    grid file that is not installed. For a ballpark, the expected error is estimated
    as the shift the datum transformations PROJ knows elsewhere would apply at the
    points' centre.

    Parameters
    ----------
    src, dst : pyproj.CRS
        The points' CRS and the scene's.
    lonlat : numpy.ndarray
        (n, 2) point coordinates in ``src``'s geographic CRS (degrees), for the area
        of interest.

    Returns
    -------
    list of str
        One sentence per problem (empty when the transformation is exact or known).
    """
    src, dst = CRS.from_user_input(src), CRS.from_user_input(dst)
    if src == dst or lonlat.size == 0:
        return []
    finite = np.isfinite(lonlat).all(axis=1)
    if not finite.any():
        return []
    lon, lat = lonlat[finite, 0], lonlat[finite, 1]
    if (np.abs(lat) > 90).any() or (np.abs(lon) > 360).any():
        return []  # not geographic positions: the caller's range checks report it
    aoi = AreaOfInterest(float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyproj warns about missing grids: we say it below
        group = TransformerGroup(src, dst, always_xy=True, area_of_interest=aoi)
        everywhere = TransformerGroup(src, dst, always_xy=True)
    out: list[str] = []
    names = f"'{src.name}' to '{dst.name}'"
    if group.transformers and "ballpark" in group.transformers[0].description.lower():
        centre = (float(np.median(lon)), float(np.median(lat)))
        ballpark = np.array(group.transformers[0].transform(*centre))
        shifts = []
        for t in everywhere.transformers:
            if "ballpark" in t.description.lower():
                continue
            with np.errstate(all="ignore"):
                moved = np.array(t.transform(*centre))
            if np.isfinite(moved).all():
                shifts.append(float(np.hypot(*(moved - ballpark))))
        if shifts:
            size = (
                f"about {np.median(shifts):.0f} m (the datum shifts PROJ knows for this pair "
                f"elsewhere move the points {min(shifts):.0f}-{max(shifts):.0f} m here)"
            )
        else:
            size = (
                "unknown to PROJ (under 1 m between modern ITRF-based datums, over 100 m "
                "for older local datums)"
            )
        out.append(
            f"PROJ has only a ballpark transformation (no datum shift) from {names} for the "
            f"samples' area: their positions may be off by {size}; give the points in the "
            "scene's datum, or transform them with a local datum transformation first"
        )
    if not group.best_available:
        grids = sorted(
            {
                g.short_name or g.full_name
                for op in group.unavailable_operations
                for g in op.grids
                if not g.available
            }
        )
        used = group.transformers[0] if group.transformers else None
        acc = (
            f" (accuracy {used.accuracy:g} m)"
            if used is not None and used.accuracy is not None and used.accuracy >= 0
            else ""
        )
        out.append(
            f"the most accurate transformation from {names} needs the grid file(s) "
            f"{', '.join(grids)}, which PROJ does not have; geohm uses "
            f"'{used.description if used else 'none'}'{acc}. Install the grids "
            "(projsync --file NAME, or PROJ_NETWORK=ON) for the best positions"
        )
    return out


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
    cube: xr.DataArray | WindowSource,
    points: Any,
    *,
    targets: Sequence[str],
    id_column: str | None = None,
    window: int = 1,
    mask_reason: Callable[[np.ndarray, np.ndarray], list[str | None]] | None = None,
    censored: str = "x/2",
    detection_limits: Mapping[str, float] | None = None,
) -> SampleTable:
    """Take the feature values at sample points.

    Target cells are read by :func:`geohm.labvalues.parse_target` (units, values below
    the detection limit, gaps). A point whose pixel is unusable is left out of every
    target; a point without a usable value for one target is left out of that target
    only (its ``y`` is NaN there). Both are listed in ``dropped`` with the reason.
    Points on the same pixel form one location group (``groups``).

    Parameters
    ----------
    cube : xarray.DataArray or WindowSource
        (feature, y, x) cube with a CRS (``cube.rio.crs``), lazy or in memory, or the
        window source the prediction pass reads (the pipeline's choice: the features at
        the points come from the code that computes every map window).
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
    censored : {"x/2", "x/sqrt2", "x", "drop"}
        Substitution rule for values below the detection limit (``samples.censored``).
    detection_limits : mapping of str to float, optional
        Detection limit (mg/kg) per target for cells reading ``ND`` alone.

    Returns
    -------
    SampleTable

    Raises
    ------
    SampleError
        Missing target or id columns, no CRS, no points, a unit other than mg/kg, a
        negative concentration, x and y swapped, or not a single usable point.
    """
    ids = _check_points(points, targets, id_column, window)
    if isinstance(cube, WindowSource):
        crs, transform = cube.crs, cube.transform
        height, width = cube.shape
        features = list(cube.features)
    else:
        crs, transform = cube.rio.crs, cube.rio.transform()
        height, width = cube.sizes["y"], cube.sizes["x"]
        features = [str(f) for f in cube["feature"].values]
    xy, rows, cols, inside, notes = _locate(points, crs, transform, height, width)
    parsed = {
        t: parse_target(
            points[t].tolist(),
            name=t,
            ids=[str(i) for i in ids],
            censored=censored,
            detection_limit=(detection_limits or {}).get(t),
        )
        for t in targets
    }
    yvals = np.column_stack([parsed[t].values for t in targets])
    # (row in the input, why): a point off the scene or on an unusable pixel is left
    # out of every target; one without a value for a target, of that target only.
    dropped = [(int(i), Dropped(ids[i], "outside the scene")) for i in np.flatnonzero(~inside)]
    values = np.full((len(points), len(features)), np.nan)
    idx = np.flatnonzero(inside)
    if idx.size:
        reasons = (
            mask_reason(rows[idx], cols[idx]) if mask_reason is not None else [None] * idx.size
        )
        means, centre = _features_at(cube, rows[idx], cols[idx], window, (height, width))
        for k, i in enumerate(idx):
            if np.all(np.isfinite(centre[k])):
                values[i] = means[k]
            else:
                dropped.append(
                    (int(i), Dropped(ids[i], _unusable(features, centre[k], reasons[k])))
                )
    keep = np.isfinite(values).all(axis=1)
    for t in targets:
        for i in np.flatnonzero(keep):
            left = parsed[t].left_out.get(int(i))
            if left is not None:
                dropped.append((int(i), Dropped(ids[i], left, target=t)))
    if not keep.any():
        reasons_txt = "; ".join(sorted({d.reason for _, d in dropped}))
        raise SampleError(
            f"none of the {len(points)} sample points is usable ({reasons_txt}); check that the "
            "points cover the scene and that their CRS is right"
        )
    lab = {
        t: {
            "rule": censored,
            "censored": [str(ids[i]) for i in parsed[t].censored if keep[i]],
            "zeros": [str(ids[i]) for i in parsed[t].zeros if keep[i]],
        }
        for t in targets
    }
    keep &= np.isfinite(yvals).any(axis=1)  # no value for any target: listed per target
    if not keep.any():
        raise SampleError(
            f"none of the {len(points)} sample points has a usable value for "
            f"{', '.join(targets)} at a valid pixel; check the target columns"
        )
    index = pd.Index(ids[keep], name="id")
    # Samples on the same pixel are one location: replicates share a group id.
    _, groups = np.unique(rows[keep].astype(np.int64) * width + cols[keep], return_inverse=True)
    return SampleTable(
        X=pd.DataFrame(values[keep], index=index, columns=features),
        y=pd.DataFrame(yvals[keep], index=index, columns=list(targets)),
        xy=xy[keep],
        dropped=[d for _, d in sorted(dropped, key=lambda t: t[0])],
        groups=groups.astype(np.int64),
        lab=lab,
        warnings=notes,
    )


def _check_points(
    points: Any, targets: Sequence[str], id_column: str | None, window: int
) -> np.ndarray:
    """The sample ids (str), after checking the points, their columns and ``window``."""
    if len(points) == 0:
        raise SampleError("the sample file holds no points; check 'samples.path'")
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
    return ids


def _locate(
    points: Any, crs: Any, transform: Affine, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Map coordinates, rows, columns and inside flags of the points, and datum warnings.

    Raises SampleError (x and y swapped) when no point is inside but swapping would fix it.
    """
    xy = _point_xy(points, crs)
    rows, cols, inside = _pixels(xy, transform, height, width)
    notes: list[str] = []
    if not inside.any():
        _raise_if_swapped(points, crs, transform, height, width)
    elif points.crs is not None:
        geog = points.to_crs(CRS.from_user_input(points.crs).geodetic_crs)
        lonlat = np.column_stack([geog.geometry.x.to_numpy(), geog.geometry.y.to_numpy()])
        notes += datum_warnings(points.crs, crs, lonlat[inside])
    for note in notes:
        log.warning("samples: %s", note)
    return xy, rows, cols, inside, notes


def with_patches(table: SampleTable, source: WindowSource, half: int) -> SampleTable:
    """``table`` with the ``(2 half + 1)``-pixel feature patch around each sample.

    Read through ``source``, the window reader of the map (:func:`geohm.patches.read_patches`):
    the centre of each patch is the sample's own pixel, bit for bit (its feature row with
    ``samples.window: 1``; a larger window averages the row, never the patch), and cells
    beyond the scene are NaN.

    Parameters
    ----------
    table : SampleTable
        Samples located on ``source``'s grid (``table.xy`` in its CRS).
    source : WindowSource
        The feature cube the table was sampled from.
    half : int
        Patch half-width ``h`` (pixels).

    Returns
    -------
    SampleTable
        The same samples, with :attr:`SampleTable.patches` set.
    """
    rows, cols, _ = _pixels(table.xy, source.transform, *source.shape)
    patches = read_patches(source, rows, cols, half)
    flat = patches.reshape(len(patches), -1)
    frame = pd.DataFrame(flat, index=table.X.index, columns=patch_columns(source.features, half))
    return dataclasses.replace(table, patches=frame)


def _features_at(
    cube: xr.DataArray | WindowSource,
    rows: np.ndarray,
    cols: np.ndarray,
    window: int,
    shape: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """(mean over the window, centre pixel) features of each point: two (n, feature) arrays.

    NaN pixels in the window are left out of its mean; so are window cells beyond the
    scene edge (clipped onto edge pixels for the read, not counted twice).
    """
    height, width = shape
    half = window // 2
    offsets = np.arange(-half, half + 1)
    r_raw = np.repeat(rows[:, None] + offsets[None, :], window, axis=1)  # (n, window**2)
    c_raw = np.tile(cols[:, None] + offsets[None, :], (1, window))
    win = _window_values(cube, np.clip(r_raw, 0, height - 1), np.clip(c_raw, 0, width - 1))
    outside = (r_raw < 0) | (r_raw >= height) | (c_raw < 0) | (c_raw >= width)
    win = np.where(outside[:, None, :], np.nan, win)
    centre = win[:, :, (window * window) // 2]
    if window == 1:
        return centre, centre
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows -> NaN
        return np.nanmean(np.where(np.isfinite(win), win, np.nan), axis=2), centre


def _unusable(features: list[str], centre: np.ndarray, reason: str | None) -> str:
    """Why a point's pixel cannot be used: the mask's reason, or the missing features."""
    why = reason or "nodata"
    if why != "nodata":
        return f"{why} pixel"
    bad = [features[j] for j in np.flatnonzero(~np.isfinite(centre))]
    return f"nodata pixel ({', '.join(bad[:4])}{'...' if len(bad) > 4 else ''} missing)"


def _window_values(cube: xr.DataArray | WindowSource, rr: np.ndarray, cc: np.ndarray) -> np.ndarray:
    """(point, feature, k) values of the cube at rows ``rr`` and columns ``cc`` (point, k).

    From a window source: one read per tile of :data:`~geohm.io.reading.TILE` pixels that
    holds points (the box around its points, at most a tile and the window): points in
    different tiles cost one small read each, points in one tile share a read. The
    values do not depend on the window read. From a DataArray: vectorised point-wise selection
    (only the chunks under the points are read).
    """
    if not isinstance(cube, WindowSource):
        sel = cube.isel(
            y=xr.DataArray(rr, dims=("point", "k")), x=xr.DataArray(cc, dims=("point", "k"))
        )
        return read_block(sel.transpose("point", "feature", "k"))
    out = np.empty((rr.shape[0], len(cube.features), rr.shape[1]), dtype=np.float32)
    tile = (rr[:, rr.shape[1] // 2] // TILE) * (cube.shape[1] // TILE + 1) + cc[
        :, cc.shape[1] // 2
    ] // TILE
    for t in np.unique(tile):
        pts = np.flatnonzero(tile == t)
        r0, r1 = int(rr[pts].min()), int(rr[pts].max()) + 1
        c0, c1 = int(cc[pts].min()), int(cc[pts].max()) + 1
        block = cube.read(r0, c0, r1 - r0, c1 - c0)
        out[pts] = np.moveaxis(block[:, rr[pts] - r0, cc[pts] - c0], 0, 1)
    return out


def _pixels(
    xy: np.ndarray, transform: Affine, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and inside-the-grid flag of every point (non-finite: outside)."""
    inv = ~transform
    with np.errstate(invalid="ignore"):
        fc = np.floor(inv.a * xy[:, 0] + inv.b * xy[:, 1] + inv.c)
        fr = np.floor(inv.d * xy[:, 0] + inv.e * xy[:, 1] + inv.f)
    finite = np.isfinite(fc) & np.isfinite(fr)
    cols = np.where(finite, fc, -1).astype(np.int64)
    rows = np.where(finite, fr, -1).astype(np.int64)
    inside = finite & (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    return rows, cols, inside


def _raise_if_swapped(points: Any, crs: Any, transform: Affine, height: int, width: int) -> None:
    """No point is inside the scene: say so plainly when swapping x and y would fix it."""
    geom = points.geometry
    swapped = points.set_geometry(
        shapely.points(geom.y.to_numpy(), geom.x.to_numpy()), crs=points.crs
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            xy = _point_xy(swapped, crs)
        except Exception:  # the swapped positions are not even valid coordinates
            return
    _, _, inside = _pixels(xy, transform, height, width)
    if inside.mean() > 0.5:
        raise SampleError(
            "no sample point is inside the scene, but with x and y exchanged "
            f"{int(inside.sum())} of {len(points)} are: x and y look swapped (for a CSV, "
            "exchange samples.x and samples.y; x is the easting or longitude)"
        )

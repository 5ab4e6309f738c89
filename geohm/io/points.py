"""Soil sample points: read and write GeoPackage, Shapefile, GeoJSON and CSV.

Vector files are read with the pyogrio engine and must carry a CRS. A CSV needs the
names of its coordinate columns and their CRS (``samples.x``, ``samples.y``,
``samples.crs`` in the scene config). Every write is atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS
from pyproj.exceptions import CRSError

from geohm.errors import ConfigError, InputError
from geohm.io.rasters import atomic_path

__all__ = ["VECTOR_SUFFIXES", "points_from_xy", "read_points", "write_points"]

#: File suffix -> OGR driver for the point formats geohm reads and writes.
VECTOR_SUFFIXES: dict[str, str] = {
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
}

PathLike = str | os.PathLike[str]


def _parse_crs(crs: Any, key: str) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{key}: {crs!r} is not a coordinate reference system ({exc}); use e.g. 'EPSG:4326'"
        ) from exc


def points_from_xy(
    x: Any,
    y: Any,
    *,
    crs: Any,
    data: Mapping[str, Any] | pd.DataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Build a point GeoDataFrame from coordinate arrays.

    Parameters
    ----------
    x, y : array-like of float
        Coordinates in the units of ``crs`` (metres for projected CRSs, degrees for
        EPSG:4326 with x = longitude).
    crs : str or CRS
        Coordinate reference system of ``x``/``y``.
    data : mapping or DataFrame, optional
        Attribute columns (same length).

    Returns
    -------
    geopandas.GeoDataFrame
    """
    frame = pd.DataFrame(dict(data) if isinstance(data, Mapping) else data)
    geom = gpd.points_from_xy(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    return gpd.GeoDataFrame(frame, geometry=geom, crs=_parse_crs(crs, "crs"))


def read_points(
    path: PathLike,
    *,
    x: str | None = None,
    y: str | None = None,
    crs: Any = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read sample points from a .gpkg, .shp, .geojson or .csv file.

    Parameters
    ----------
    path : path-like
        The file. Vector formats must have a CRS and point geometries.
    x, y : str, optional
        CSV only (required there): names of the coordinate columns.
    crs : str, optional
        CSV only (required there): CRS of the coordinates, e.g. ``"EPSG:4326"``.
    layer : str, optional
        Layer of a multi-layer file (GeoPackage); required when there are several.

    Returns
    -------
    geopandas.GeoDataFrame
        The attribute columns and point geometries in the file's CRS.

    Raises
    ------
    InputError
        Missing or unreadable file, unknown format, missing column, no CRS, bad
        coordinates, non-point geometries, several layers and no ``layer``.
    ConfigError
        A CSV without ``x``, ``y`` or ``crs`` (the message names ``samples.x`` etc.),
        or an unparsable ``crs``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"sample file '{p}' does not exist; check 'samples.path' in the scene config."
        )
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return _read_csv(p, x=x, y=y, crs=crs)
    if suffix not in VECTOR_SUFFIXES:
        raise InputError(
            f"sample file '{p}': unknown format '{suffix}'; use .gpkg, .shp, .geojson or .csv."
        )
    try:
        layers = pyogrio.list_layers(p)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InputError(f"sample file '{p}' cannot be read ({exc}); is it corrupt?") from exc
    if layer is None and len(layers) > 1:
        names = ", ".join(str(r[0]) for r in layers)
        raise InputError(
            f"sample file '{p}' has several layers ({names}); choose one with 'samples.layer'."
        )
    try:
        gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except Exception as exc:
        raise InputError(f"sample file '{p}' cannot be read ({exc}).") from exc
    if len(gdf) == 0:
        raise InputError(
            f"sample file '{p}' holds no points; check 'samples.path' and 'samples.layer'."
        )
    if gdf.crs is None:
        raise InputError(
            f"sample file '{p}' has no coordinate reference system; save it with one (for a "
            "shapefile, the .prj beside it) or export the points as CSV and set 'samples.crs'."
        )
    geom = gdf.geometry
    if geom.isna().any() or geom.is_empty.any():
        rows = np.flatnonzero((geom.isna() | geom.is_empty).to_numpy())[:5].tolist()
        raise InputError(f"sample file '{p}': rows {rows} have no geometry.")
    if set(geom.geom_type) - {"Point"}:
        # A MultiPoint holding one point (some exports) is that point.
        geom = geom.apply(
            lambda g: g.geoms[0] if g.geom_type == "MultiPoint" and len(g.geoms) == 1 else g
        )
        types = set(geom.geom_type)
        if types - {"Point"}:
            raise InputError(
                f"sample file '{p}' holds {', '.join(sorted(types))} geometries; soil samples "
                "must be points."
            )
        gdf = gdf.set_geometry(geom)
    return gdf


def _read_csv(p: Path, *, x: str | None, y: str | None, crs: Any) -> gpd.GeoDataFrame:
    for key, val in (("samples.x", x), ("samples.y", y), ("samples.crs", crs)):
        if val is None:
            raise ConfigError(
                f"{key} is required for the CSV sample file '{p}' (x/y: the coordinate "
                "column names; crs: their CRS, e.g. EPSG:4326)"
            )
    crs_obj = _parse_crs(crs, "samples.crs")
    try:
        df = pd.read_csv(p)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise InputError(f"sample file '{p}' cannot be read as CSV ({exc}).") from exc
    assert x is not None and y is not None
    for col, key in ((x, "samples.x"), (y, "samples.y")):
        if col not in df.columns:
            raise InputError(
                f"sample file '{p}' has no column '{col}' (named by {key}); its columns are "
                f"{', '.join(map(str, df.columns))}."
            )
    xs = pd.to_numeric(df[x], errors="coerce").to_numpy(dtype=float)
    ys = pd.to_numeric(df[y], errors="coerce").to_numpy(dtype=float)
    bad = ~(np.isfinite(xs) & np.isfinite(ys))
    if bad.any():
        rows = (np.flatnonzero(bad)[:5] + 2).tolist()  # file line numbers (header = 1)
        raise InputError(
            f"sample file '{p}': columns '{x}'/'{y}' are empty or not numbers on lines {rows}."
        )
    if len(df) == 0:
        raise InputError(
            f"sample file '{p}' holds no points (only a header); check 'samples.path'."
        )
    if crs_obj.is_geographic:
        bad_lat = np.abs(ys) > 90
        if bad_lat.any():
            i = int(np.flatnonzero(bad_lat)[0])
            swapped = bool((np.abs(xs[bad_lat]) <= 90).all())
            raise InputError(
                f"sample file '{p}': latitude {ys[i]:g} (column '{y}', line {i + 2}) is "
                "impossible in " + crs_obj.name + "; "
                + (
                    f"x and y look swapped: exchange samples.x ('{x}') and samples.y ('{y}')."
                    if swapped
                    else "check samples.y and samples.crs."
                )
            )
    geom = gpd.points_from_xy(xs, ys)
    return gpd.GeoDataFrame(df.drop(columns=[x, y]), geometry=geom, crs=crs_obj)


def write_points(
    gdf: gpd.GeoDataFrame,
    path: PathLike,
    *,
    crs: Any = None,
    layer: str | None = None,
) -> Path:
    """Write points atomically as .gpkg, .shp, .geojson or .csv.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Points with a CRS.
    path : path-like
        Destination; the format follows the suffix. A CSV gets ``x`` and ``y``
        columns in the (output) CRS and no CRS record: read it back with
        ``x="x", y="y", crs=...``.
    crs : str or CRS, optional
        Reproject to this CRS before writing.
    layer : str, optional
        Layer name (GeoPackage); default the file name without suffix.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    InputError
        The points have no CRS or the format is unknown.
    """
    final = Path(path)
    if gdf.crs is None:
        raise InputError(f"cannot write '{final}': the points have no CRS.")
    out = gdf.to_crs(_parse_crs(crs, "crs")) if crs is not None else gdf
    suffix = final.suffix.lower()
    if suffix == ".csv":
        frame = pd.DataFrame(out.drop(columns=out.geometry.name))
        frame["x"] = out.geometry.x.to_numpy()
        frame["y"] = out.geometry.y.to_numpy()
        with atomic_path(final) as tmp:
            frame.to_csv(tmp, index=False)
        return final
    if suffix not in VECTOR_SUFFIXES:
        raise InputError(f"cannot write '{final}': unknown format '{suffix}'.")
    driver = VECTOR_SUFFIXES[suffix]
    if driver == "ESRI Shapefile":
        return _write_shapefile(out, final)
    with atomic_path(final) as tmp:
        out.to_file(tmp, driver=driver, layer=layer or final.stem, engine="pyogrio")
    return final


def _write_shapefile(gdf: gpd.GeoDataFrame, final: Path) -> Path:
    """A shapefile is several files: write them in a scratch folder, then move each."""
    final.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{final.stem}.", dir=final.parent))
    try:
        gdf.to_file(scratch / final.name, driver="ESRI Shapefile", engine="pyogrio")
        parts = sorted(scratch.iterdir(), key=lambda q: q.suffix.lower() == ".shp")
        for part in parts:  # the .shp last, so a reader never sees it without its sidecars
            os.replace(part, final.with_name(part.name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final

"""Zone polygons (parcels, land-use units): read, rasterise on the map grid, write statistics.

:func:`read_zones` reads a polygon layer (GeoPackage, shapefile, GeoJSON; any CRS) with an
id column (``zones: {path: parcels.gpkg, id: parcel_id}`` in the scene config) and gives
a :class:`Zones`: the zones coded 1..n in file order (ids of any type, strings too, map to
codes and back) and their polygons in the grid's CRS. :meth:`Zones.rasterize_window`
burns the codes into one map window (0: in no zone), from the polygons that touch it,
so a full scene is rasterised window by window in flat memory. A pixel belongs to a zone
when its centre lies inside the polygon (GDAL's rule, ``all_touched=False``); a pixel in
two overlapping zones goes to the later one in the file; a zone smaller than a pixel may
get no pixel. Polygon vertices are reprojected to the grid's CRS; edges between them
stay straight there.

:func:`write_zones` writes ``zones.gpkg`` (the zones in their own CRS with one column per
statistic) and :func:`write_next_samples` the suggested sample points
(``next_samples.gpkg`` in the grid's CRS and ``next_samples.csv`` with ``lon``/``lat`` in
EPSG:4326 and ``x``/``y`` in the grid's CRS). Every write is atomic (temporary name, then
rename).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from affine import Affine
from pyproj import CRS, Transformer

from geohm.errors import ConfigError, GridError, InputError
from geohm.grid import Grid
from geohm.io.atomic import atomic_path
from geohm.io.points import VECTOR_SUFFIXES, write_points

__all__ = ["NO_ZONE", "Zones", "read_zones", "write_next_samples", "write_zones"]

#: Code of pixels in no zone (the fill of every rasterised window).
NO_ZONE = 0

PathLike = str | os.PathLike[str]

_POLYGONS = {"Polygon", "MultiPolygon"}


@dataclass(frozen=True, eq=False)
class Zones:
    """Zone polygons coded 1..n and placed on a map grid.

    Made by :func:`read_zones`; code ``k`` is the zone of row ``k - 1`` of the file.

    Parameters
    ----------
    path : pathlib.Path
        The zone file.
    id_column : str
        Its id column.
    frame : geopandas.GeoDataFrame
        The zones as read (their own CRS and attributes), in code order.
    grid : Grid
        The map grid.
    shapes : numpy.ndarray of shapely geometries
        The polygons in the grid's CRS, in code order.
    """

    path: Path
    id_column: str
    frame: gpd.GeoDataFrame
    grid: Grid
    shapes: np.ndarray
    _tree: shapely.STRtree = field(init=False, repr=False)
    _ids: list[Any] = field(init=False, repr=False)
    _codes: dict[Hashable, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Built once, before any thread asks: rasterize_window only reads them.
        ids = list(self.frame[self.id_column].tolist())
        object.__setattr__(self, "_tree", shapely.STRtree(self.shapes))
        object.__setattr__(self, "_ids", ids)
        object.__setattr__(self, "_codes", {v: k for k, v in enumerate(ids, start=1)})

    @property
    def n(self) -> int:
        """Number of zones (their codes are 1..n)."""
        return len(self.shapes)

    @property
    def ids(self) -> list[Any]:
        """The zone ids in code order (``ids[k - 1]`` is the id of code ``k``)."""
        return list(self._ids)

    def code(self, zone_id: Any) -> int:
        """The code (1..n) of a zone id.

        Parameters
        ----------
        zone_id : Any
            A value of the id column.

        Returns
        -------
        int
            Its code.

        Raises
        ------
        KeyError
            No zone has that id.
        """
        return self._codes[zone_id]

    def zone_id(self, code: int) -> Any:
        """The id of a zone code.

        Parameters
        ----------
        code : int
            1..n.

        Returns
        -------
        Any
            The value of the id column (None for :data:`NO_ZONE`).
        """
        if code == NO_ZONE:
            return None
        if not 1 <= code <= self.n:
            raise KeyError(code)
        return self._ids[code - 1]

    def outside_grid(self) -> list[Any]:
        """Ids of the zones that do not touch the grid (they get no pixel).

        Returns
        -------
        list
            Zone ids in code order.
        """
        hit = set(self._tree.query(shapely.box(*self.grid.bounds), predicate="intersects"))
        return [z for k, z in enumerate(self._ids) if k not in hit]

    def rasterize_window(self, row_off: int, col_off: int, height: int, width: int) -> np.ndarray:
        """Zone codes of one window of the grid.

        Parameters
        ----------
        row_off, col_off : int
            The window's first row and column on the grid (pixels).
        height, width : int
            Its size (pixels).

        Returns
        -------
        numpy.ndarray of int32, shape (height, width)
            Zone code of each pixel (1..n), :data:`NO_ZONE` (0) outside every zone.
        """
        transform = self.grid.transform * Affine.translation(col_off, row_off)
        left, top = transform * (0, 0)
        right, bottom = transform * (width, height)
        window = shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        hit = np.sort(self._tree.query(window, predicate="intersects"))  # file order
        if hit.size == 0 or height == 0 or width == 0:
            return np.zeros((height, width), dtype=np.int32)
        # Each pixel whose centre lies inside a polygon takes its code (the later zone in
        # the file wins), tested with shapely on the window's pixel centres: the same rule
        # as GDAL's rasterize (all_touched off), without a GDAL dataset per window (whose
        # warnings were not thread-safe to silence in the parallel prediction pass).
        out = np.zeros((height, width), dtype=np.int32)
        cols = np.arange(width) + 0.5
        rows = np.arange(height) + 0.5
        xs = transform.c + transform.a * cols[None, :] + transform.b * rows[:, None]
        ys = transform.f + transform.d * cols[None, :] + transform.e * rows[:, None]
        for k in hit:
            geom = self.shapes[k]
            shapely.prepare(geom)
            out[shapely.contains_xy(geom, xs, ys)] = int(k) + 1
        return out

    def rasterize(self) -> np.ndarray:
        """Zone codes of the whole grid (small grids; a full scene: per window).

        Returns
        -------
        numpy.ndarray of int32, shape (height, width)
            As :meth:`rasterize_window`.
        """
        return self.rasterize_window(0, 0, self.grid.height, self.grid.width)


def read_zones(path: PathLike, id_column: str, *, grid: Grid, layer: str | None = None) -> Zones:
    """Read a zone polygon layer and place it on a map grid.

    Parameters
    ----------
    path : path-like
        A GeoPackage, shapefile or GeoJSON of polygons with a CRS (``zones.path``).
    id_column : str
        The column naming each zone (``zones.id``): unique, no empty value; numbers or
        text.
    grid : Grid
        The map grid (projected CRS).
    layer : str, optional
        The layer of a file with several.

    Returns
    -------
    Zones
        The zones coded 1..n in file order.

    Raises
    ------
    InputError
        Missing, unreadable or empty file, unknown format, several layers and no
        ``layer``, no CRS, empty or duplicate ids, rows without geometry or with a
        geometry other than a polygon.
    ConfigError
        The file has no column ``id_column`` (the message names the close matches).
    GridError
        No zone overlaps the grid.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"zone file '{p}' does not exist; check 'zones.path' in the scene config.")
    if p.suffix.lower() not in VECTOR_SUFFIXES:
        raise InputError(
            f"zone file '{p}': unknown format '{p.suffix}'; use .gpkg, .shp or .geojson."
        )
    try:
        layers = pyogrio.list_layers(p)
    except Exception as exc:  # pyogrio raises DataSourceError and friends
        raise InputError(f"zone file '{p}' cannot be read ({exc}); is it corrupt?") from exc
    if layer is None and len(layers) > 1:
        names = ", ".join(str(r[0]) for r in layers)
        raise InputError(f"zone file '{p}' has several layers ({names}); keep one in the file.")
    try:
        gdf = gpd.read_file(p, layer=layer, engine="pyogrio")
    except Exception as exc:
        raise InputError(f"zone file '{p}' cannot be read ({exc}).") from exc
    if len(gdf) == 0:
        raise InputError(f"zone file '{p}' holds no zones; check 'zones.path'.")
    if id_column not in gdf.columns or id_column == gdf.geometry.name:
        columns = [str(c) for c in gdf.columns if c != gdf.geometry.name]
        hint = difflib.get_close_matches(id_column, columns, n=1)
        raise ConfigError(
            f"zones.id: zone file '{p}' has no column '{id_column}'"
            + (f"; did you mean '{hint[0]}'?" if hint else "")
            + f" Its columns are {', '.join(columns) or '(none)'}."
        )
    if gdf.crs is None:
        raise InputError(
            f"zone file '{p}' has no coordinate reference system; save it with one (for a "
            "shapefile, the .prj beside it)."
        )
    ids = gdf[id_column]
    if ids.isna().any():
        rows = np.flatnonzero(ids.isna().to_numpy())[:5].tolist()
        raise InputError(
            f"zone file '{p}': column '{id_column}' is empty on rows {rows}; give every zone an id."
        )
    dup = ids[ids.duplicated(keep=False)].unique().tolist()
    if dup:
        shown = ", ".join(map(repr, dup[:5])) + (", ..." if len(dup) > 5 else "")
        raise InputError(
            f"zone file '{p}': ids in column '{id_column}' repeat ({shown}); each zone needs "
            "its own id (merge the parts into one multipolygon or renumber them)."
        )
    geom = gdf.geometry
    missing = (geom.isna() | geom.is_empty).to_numpy()
    if missing.any():
        which = ", ".join(map(repr, ids[missing].tolist()[:5]))
        raise InputError(f"zone file '{p}': zones {which} have no geometry.")
    types = set(geom.geom_type) - _POLYGONS
    if types:
        bad = ~geom.geom_type.isin(_POLYGONS).to_numpy()
        which = ", ".join(map(repr, ids[bad].tolist()[:5]))
        raise InputError(
            f"zone file '{p}' holds {', '.join(sorted(types))} geometries (zones {which}); "
            "zones must be polygons."
        )
    shapes = np.asarray(geom.to_crs(CRS.from_user_input(grid.crs)).to_numpy(), dtype=object)
    zones = Zones(
        path=p, id_column=id_column, frame=gdf.reset_index(drop=True), grid=grid, shapes=shapes
    )
    if len(zones.outside_grid()) == zones.n:
        raise GridError(
            f"zone file '{p}': no zone overlaps the map (grid bounds {grid.bounds} in its CRS); "
            "check 'zones.path' and the zones' CRS."
        )
    return zones


def write_zones(zones: Zones, table: pd.DataFrame, path: PathLike) -> Path:
    """Write the zones with their statistics as columns (``zones.gpkg``), atomically.

    Parameters
    ----------
    zones : Zones
        The zones (written in their own CRS, with their attributes).
    table : pandas.DataFrame
        Indexed by zone code (1..n): the statistics (for example
        :func:`geohm.risk.zones.zone_columns`). A column named like an attribute of
        the zones replaces it.
    path : path-like
        Destination ``.gpkg`` (layer named after the file).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        ``table`` is not indexed by the codes 1..n.
    OutputError
        The write failed (nothing is left under ``path``).
    """
    final = Path(path)
    codes = np.arange(1, zones.n + 1)
    if not np.array_equal(np.sort(np.asarray(table.index)), codes):
        raise ValueError(f"the statistics must be indexed by the zone codes 1..{zones.n}")
    stats = table.reindex(codes)
    out = zones.frame.drop(columns=[c for c in stats.columns if c in zones.frame.columns])
    for col in stats.columns:
        out[col] = stats[col].to_numpy()
    out = gpd.GeoDataFrame(out, geometry=zones.frame.geometry.name, crs=zones.frame.crs)
    with atomic_path(final) as tmp:
        out.to_file(tmp, driver="GPKG", layer=final.stem, engine="pyogrio")
    return final


def write_next_samples(
    points: pd.DataFrame, *, crs: Any, folder: PathLike, stem: str = "next_samples"
) -> tuple[Path, Path]:
    """Write suggested sample points as ``<stem>.gpkg`` and ``<stem>.csv``, atomically.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per point with ``x`` and ``y`` (grid CRS, metres) and any other columns
        (rank, score, ...), in order.
    crs : str or CRS
        The CRS of ``x``/``y`` (the grid's).
    folder : path-like
        The output folder.
    stem : str
        File name without suffix.

    Returns
    -------
    tuple of pathlib.Path
        The GeoPackage (points in ``crs``; columns ``lon``, ``lat`` added after ``x``,
        ``y``) and the CSV (``lon``/``lat`` in EPSG:4326 degrees, then ``x``/``y`` in
        ``crs``, then the rest).

    Raises
    ------
    ValueError
        ``points`` lacks ``x`` or ``y``.
    OutputError
        A write failed.
    """
    if not {"x", "y"} <= set(points.columns):
        raise ValueError("points need columns 'x' and 'y'")
    crs_obj = CRS.from_user_input(crs)
    x = points["x"].to_numpy(dtype="float64")
    y = points["y"].to_numpy(dtype="float64")
    lon, lat = Transformer.from_crs(crs_obj, "EPSG:4326", always_xy=True).transform(x, y)
    first = [c for c in points.columns if c not in ("x", "y")]
    lead = first[:1] if first and first[0] == "rank" else []
    rest = [c for c in first if c not in lead]
    frame = pd.DataFrame(points[lead]).reset_index(drop=True)
    frame["lon"] = np.asarray(lon, dtype="float64")
    frame["lat"] = np.asarray(lat, dtype="float64")
    frame["x"] = x
    frame["y"] = y
    for c in rest:
        frame[c] = points[c].to_numpy()
    folder = Path(folder)
    gdf = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(x, y), crs=crs_obj)
    gpkg = write_points(gdf, folder / f"{stem}.gpkg")
    csv = folder / f"{stem}.csv"
    with atomic_path(csv) as tmp:
        frame.to_csv(tmp, index=False)
    return gpkg, csv


def write_zone_boxes(
    boxes: dict[str, tuple[float, float, float, float]],
    path: PathLike,
    *,
    crs: Any,
    id_column: str = "zone_id",
    attributes: dict[str, list[Any]] | None = None,
) -> Path:
    """Write rectangular zones (parcels) as a polygon GeoPackage, atomically.

    Parameters
    ----------
    boxes : dict of str to tuple of float
        Zone id -> ``(xmin, ymin, xmax, ymax)`` in ``crs`` units (m).
    path : path-like
        The ``.gpkg`` to write.
    crs : Any
        The boxes' coordinate reference system.
    id_column : str
        Name of the id column.
    attributes : dict of str to list, optional
        Further columns, one value per box (in ``boxes`` order).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    data = {id_column: list(boxes), **(attributes or {})}
    geoms = [shapely.box(*b) for b in boxes.values()]
    gdf = gpd.GeoDataFrame(data, geometry=geoms, crs=crs)
    final = Path(path)
    with atomic_path(final) as tmp:
        gdf.to_file(tmp, driver="GPKG", layer=final.stem, engine="pyogrio")
    return final

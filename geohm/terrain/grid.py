"""Terrain of a whole DEM DataArray (eager or dask): elevation, slope, aspect, the stack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from geohm.errors import InputError
from geohm.terrain.kernels import Edges, FloatArray, _check_edges, _check_names, _kernel
from geohm.terrain.spacing import _resolve_crs, _resolve_transform, cell_spacing


def _as_2d(dem: xr.DataArray) -> xr.DataArray:
    if not isinstance(dem, xr.DataArray):
        raise InputError(f"a DEM must be an xarray.DataArray, got {type(dem).__name__}")
    if "band" in dem.dims and dem.sizes["band"] == 1:
        dem = dem.squeeze("band", drop=True)
    if set(dem.dims) != {"y", "x"}:
        raise InputError(f"a DEM must have dims ('y', 'x'), got {dem.dims}")
    return dem.transpose("y", "x")


def _wrap(dem: xr.DataArray, data: Any, *, name: str, long_name: str, units: str) -> xr.DataArray:
    out = xr.DataArray(
        data,
        coords=dem.coords,
        dims=dem.dims,
        name=name,
        attrs={"long_name": long_name, "units": units},
    )
    if "grid_mapping" in dem.attrs:
        out.attrs["grid_mapping"] = dem.attrs["grid_mapping"]
    if "grid_mapping" in dem.encoding:
        out.encoding["grid_mapping"] = dem.encoding["grid_mapping"]
    return out


def _terrain(
    dem: xr.DataArray,
    which: str,
    *,
    crs: Any,
    transform: Any,
    edges: str,
) -> Any:
    """Slope or aspect data (NumPy or dask) for a 2-D DEM."""
    _check_edges(edges)
    ny = dem.sizes["y"]
    dx, dy = cell_spacing(_resolve_crs(dem, crs), _resolve_transform(dem, transform), ny)
    data = dem.data
    if dem.chunks is not None:
        return _terrain_dask(data, dx, dy, which=which, edges=edges)
    z = np.asarray(data, dtype=np.float64)
    if edges == "nearest":
        zp = np.pad(z, 1, mode="edge")
    else:
        zp = np.pad(z, 1, mode="constant", constant_values=np.nan)
    dxp = np.pad(dx, 1, mode="edge") if np.ndim(dx) else dx
    dyp = np.pad(dy, 1, mode="edge") if np.ndim(dy) else dy
    return _kernel(zp, dxp, dyp, which=which)[1:-1, 1:-1]


def _terrain_dask(data: Any, dx: Any, dy: Any, *, which: str, edges: str) -> Any:
    import dask.array as da

    z = data.astype(np.float64)
    boundary: Any = "nearest" if edges == "nearest" else np.nan
    meta = np.array((), dtype=np.float32).reshape(0, 0)
    if np.ndim(dx) == 0 and np.ndim(dy) == 0:
        return da.map_overlap(
            _kernel,
            z,
            depth=1,
            boundary=boundary,
            dtype=np.float32,
            meta=meta,
            dx=float(dx),
            dy=float(dy),
            which=which,
        )
    # Per-row spacing: (ny, 1) columns chunked like the DEM rows, broadcast across x.
    row_chunks = (z.chunks[0], (1,))
    dxa = da.from_array(np.broadcast_to(dx, (z.shape[0],))[:, None], chunks=row_chunks)
    dya = da.from_array(np.broadcast_to(dy, (z.shape[0],))[:, None], chunks=row_chunks)
    halo = {0: 1, 1: 0}

    def kernel(zb: FloatArray, dxb: FloatArray, dyb: FloatArray) -> npt.NDArray[np.float32]:
        return _kernel(zb, dxb, dyb, which=which)

    return da.map_overlap(
        kernel,
        z,
        dxa,
        dya,
        depth=[{0: 1, 1: 1}, halo, halo],
        boundary=[boundary, "nearest", "nearest"],
        dtype=np.float32,
        meta=meta,
    )


def elevation(dem: xr.DataArray, *, name: str = "elevation") -> xr.DataArray:
    """Elevation as a float32 feature, in metres.

    Parameters
    ----------
    dem : xarray.DataArray, dims ("y", "x")
        Elevation in metres (a size-1 ``band`` dim is dropped). NaN marks missing cells.
    name : str, default "elevation"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), the DEM's coords (CRS included), ``units`` "m".
    """
    dem = _as_2d(dem)
    return _wrap(dem, dem.data.astype(np.float32), name=name, long_name="elevation", units="m")


def slope(
    dem: xr.DataArray,
    *,
    crs: Any = None,
    transform: Any = None,
    edges: Edges = "nearest",
    name: str = "slope",
) -> xr.DataArray:
    """Slope of a DEM in degrees, by Horn's method.

    ``slope = atan(sqrt((dz/dx)**2 + (dz/dy)**2))`` with Horn's 3 x 3 gradients (see the
    module docstring); cell distances in metres come from the CRS and transform.

    Parameters
    ----------
    dem : xarray.DataArray, dims ("y", "x")
        Elevation in metres; NaN marks missing cells. NumPy- or dask-backed.
    crs : pyproj.CRS, rasterio CRS, str or int, optional
        The DEM's CRS. Default: ``dem.rio.crs`` (when rioxarray is imported), else the
        ``spatial_ref`` coordinate's WKT.
    transform : affine.Affine, optional
        The DEM's north-up transform. Default: ``dem.rio.transform()``, else derived from
        the x/y coordinates.
    edges : {"nearest", "nan"}, default "nearest"
        ``"nearest"`` pads the grid by replicating its edge cells, so the outer ring gets
        values; ``"nan"`` leaves the outer ring NaN (like ``gdaldem`` without
        ``-compute_edges``).
    name : str, default "slope"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32 slope in degrees (0-90), dims ("y", "x"), the DEM's coords (CRS included).
        NaN where the 3 x 3 window holds a NaN. Lazy when the DEM is dask-backed.

    Raises
    ------
    GridError
        No CRS, a rotated or degenerate transform.
    ConfigError
        An unknown ``edges`` value.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = 15.0 + 30.0 * np.arange(4)
    >>> y = 105.0 - 30.0 * np.arange(4)
    >>> z = 0.5 * x[np.newaxis, :] + 0.0 * y[:, np.newaxis]  # rises 0.5 m per m eastward
    >>> dem = xr.DataArray(z, coords={"y": y, "x": x}, dims=("y", "x"))
    >>> s = slope(dem, crs="EPSG:32649", edges="nan")
    >>> round(float(s[1, 1]), 3)  # atan(0.5)
    26.565
    """
    dem = _as_2d(dem)
    data = _terrain(dem, "slope", crs=crs, transform=transform, edges=edges)
    return _wrap(dem, data, name=name, long_name="slope (Horn)", units="degree")


def aspect(
    dem: xr.DataArray,
    *,
    crs: Any = None,
    transform: Any = None,
    edges: Edges = "nearest",
    name: str = "aspect",
) -> xr.DataArray:
    """Aspect of a DEM in degrees clockwise from north, by Horn's method.

    The direction a slope faces (downhill): 0 north, 90 east, 180 south, 270 west.
    ``A = atan2(dz/dy, -dz/dx)``; aspect is ``90 - A`` for ``A <= 90`` and ``450 - A``
    otherwise. Cell distances in metres enter the gradients, so non-square cells (and
    geographic grids) are handled. Flat cells (both gradients exactly 0) get -1, the
    ArcGIS and xarray-spatial convention; ``gdaldem aspect`` writes nodata there instead.

    Parameters
    ----------
    dem : xarray.DataArray, dims ("y", "x")
        Elevation in metres; NaN marks missing cells. NumPy- or dask-backed.
    crs, transform, edges
        As in :func:`slope`.
    name : str, default "aspect"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32 aspect in degrees, [0, 360) or -1 (flat), dims ("y", "x"), the DEM's coords
        (CRS included). NaN where the 3 x 3 window holds a NaN.

    Raises
    ------
    GridError
        No CRS, a rotated or degenerate transform.
    ConfigError
        An unknown ``edges`` value.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> x = 15.0 + 30.0 * np.arange(4)
    >>> y = 105.0 - 30.0 * np.arange(4)
    >>> z = 0.1 * y[:, np.newaxis] + 0.0 * x[np.newaxis, :]  # rises northward: faces south
    >>> dem = xr.DataArray(z, coords={"y": y, "x": x}, dims=("y", "x"))
    >>> float(aspect(dem, crs="EPSG:32649")[1, 1])
    180.0
    """
    dem = _as_2d(dem)
    data = _terrain(dem, "aspect", crs=crs, transform=transform, edges=edges)
    return _wrap(
        dem,
        data,
        name=name,
        long_name="aspect (Horn), clockwise from north; -1 = flat",
        units="degree",
    )


def stack_terrain(
    dem: xr.DataArray,
    names: Sequence[str],
    *,
    crs: Any = None,
    transform: Any = None,
    edges: Edges = "nearest",
    name: str = "terrain",
) -> xr.DataArray:
    """Several terrain features stacked along a ``feature`` dim.

    Parameters
    ----------
    dem : xarray.DataArray, dims ("y", "x")
        Elevation in metres.
    names : sequence of str
        Features from :data:`TERRAIN_NAMES` ("elevation", "slope", "aspect"), in the order
        wanted.
    crs, transform, edges
        As in :func:`slope`.
    name : str, default "terrain"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("feature", "y", "x"), ``feature`` coord = ``names``; the DEM's y/x
        coords and CRS.

    Raises
    ------
    ConfigError
        An unknown, repeated or empty list of names.
    """
    names = list(names)
    _check_names(names)
    layers = []
    for n in names:
        if n == "elevation":
            layers.append(elevation(dem, name=n))
        elif n == "slope":
            layers.append(slope(dem, crs=crs, transform=transform, edges=edges, name=n))
        else:
            layers.append(aspect(dem, crs=crs, transform=transform, edges=edges, name=n))
    out = xr.concat(layers, dim="feature", combine_attrs="drop", coords="minimal")
    out = out.assign_coords(feature=names)
    out.name = name
    out.attrs["long_name"] = "terrain features"
    return out

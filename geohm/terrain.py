"""Terrain features from a DEM: elevation, slope and aspect (Horn 1981).

A DEM is a 2-D :class:`xarray.DataArray` with dims ``("y", "x")`` holding elevation in
metres, on a grid described by an affine ``transform`` and a ``crs``. Slope and aspect use
Horn's 3 x 3 finite differences (science.md section 3) on the window ``a b c / d e f / g h i``
(row 0 = north on a north-up grid)::

    dz/dx = ((c + 2f + i) - (a + 2d + g)) / (8 dx)
    dz/dy = ((g + 2h + i) - (a + 2b + c)) / (8 dy)
    slope  = atan(sqrt(dz/dx**2 + dz/dy**2))                     [degrees]
    A      = atan2(dz/dy, -dz/dx)                                [degrees]
    aspect = 90 - A (A <= 90), 450 - A (A > 90)                  [degrees from north, clockwise]

``dx`` and ``dy`` are ground distances in metres between neighbouring cells. In a projected
CRS they are the pixel size times the CRS's linear unit (so US-feet grids are converted). In
a geographic CRS they are computed per row on the CRS's ellipsoid: ``dy`` from the meridional
radius of curvature and ``dx`` from the parallel's radius at that row's latitude. Degrees are
never taken as metres.

Eager (NumPy) and lazy (dask) DEMs give identical results: both pad the grid by one cell the
same way and apply the same pure NumPy kernel, :func:`slope_aspect_array`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import xarray as xr

from geohm.errors import ConfigError, GridError, InputError

__all__ = [
    "TERRAIN_NAMES",
    "TerrainWindows",
    "aspect",
    "cell_spacing",
    "elevation",
    "horn_gradients",
    "slope",
    "slope_aspect_array",
    "stack_terrain",
]

#: Terrain feature names, in the order :func:`stack_terrain` knows them.
TERRAIN_NAMES: tuple[str, ...] = ("elevation", "slope", "aspect")

#: Aspect value of a flat cell (both gradients exactly 0): the ArcGIS/xarray-spatial value.
FLAT_ASPECT = -1.0

Edges = Literal["nearest", "nan"]
_EDGES = ("nearest", "nan")

FloatArray = npt.NDArray[np.floating[Any]]
Spacing = float | npt.ArrayLike


# --------------------------------------------------------------------------------------------
# Pure NumPy kernels (shared by the eager path, the dask path and windowed prediction)
# --------------------------------------------------------------------------------------------


def _row_spacing(value: Spacing, nrows: int, what: str) -> FloatArray:
    """Return a spacing as a float64 column (nrows, 1) or a 0-d array, checked."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return arr
    if arr.ndim != 1 or arr.shape[0] != nrows:
        raise GridError(
            f"{what} must be a scalar or one value per row ({nrows} rows), got shape {arr.shape}"
        )
    return arr[:, np.newaxis]


def horn_gradients(z: npt.ArrayLike, dx: Spacing, dy: Spacing) -> tuple[FloatArray, FloatArray]:
    """Horn's 3 x 3 gradients of a 2-D elevation array.

    Parameters
    ----------
    z : array_like, shape (ny, nx)
        Elevation in metres. NaN marks missing cells.
    dx : float or array_like of shape (ny,)
        Signed ground distance in metres from one column to the next, positive eastward.
        One value per row of ``z`` for geographic grids.
    dy : float or array_like of shape (ny,)
        Signed ground distance in metres from one row to the next, positive southward
        (so positive on a north-up grid). One value per row of ``z`` for geographic grids.

    Returns
    -------
    dz_dx, dz_dy : ndarray of float64, shape (ny, nx)
        ``dz_dx`` is the eastward gradient; ``dz_dy`` is the gradient along increasing row
        index (southward on a north-up grid), as in the Horn formula of the module docstring.
        Both are dimensionless (metres per metre). The outer ring of cells, which has no
        full 3 x 3 window, is NaN, and so is every cell whose window holds a NaN.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[3.0, 3.0, 3.0], [2.0, 2.0, 2.0], [1.0, 1.0, 1.0]])  # falls southward
    >>> gx, gy = horn_gradients(z, 1.0, 1.0)
    >>> float(gx[1, 1]), float(gy[1, 1])
    (0.0, -1.0)
    """
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim != 2:
        raise InputError(f"a DEM block must be 2-D, got shape {zz.shape}")
    ny, nx = zz.shape
    dxr = _row_spacing(dx, ny, "dx")
    dyr = _row_spacing(dy, ny, "dy")
    gx = np.full(zz.shape, np.nan)
    gy = np.full(zz.shape, np.nan)
    if ny < 3 or nx < 3:
        return gx, gy
    a, b, c = zz[:-2, :-2], zz[:-2, 1:-1], zz[:-2, 2:]
    d, f = zz[1:-1, :-2], zz[1:-1, 2:]
    g, h, i = zz[2:, :-2], zz[2:, 1:-1], zz[2:, 2:]
    # Spacing of the centre row of each window.
    dxc = dxr if dxr.ndim == 0 else dxr[1:-1]
    dyc = dyr if dyr.ndim == 0 else dyr[1:-1]
    # Horn's weights skip the centre cell e; a NaN there must still give NaN.
    centre_nan = np.where(np.isnan(zz[1:-1, 1:-1]), np.nan, 0.0)
    gx[1:-1, 1:-1] = ((c + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * dxc) + centre_nan
    gy[1:-1, 1:-1] = ((g + 2.0 * h + i) - (a + 2.0 * b + c)) / (8.0 * dyc) + centre_nan
    return gx, gy


def _slope_from_gradients(gx: FloatArray, gy: FloatArray) -> FloatArray:
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def _aspect_from_gradients(gx: FloatArray, gy: FloatArray) -> FloatArray:
    angle = np.degrees(np.arctan2(gy, -gx))
    out = np.where(angle > 90.0, 450.0 - angle, 90.0 - angle)
    out = np.where((gx == 0.0) & (gy == 0.0), FLAT_ASPECT, out)
    return out


def _to_float32_aspect(values: FloatArray) -> npt.NDArray[np.float32]:
    out = values.astype(np.float32)
    out[out == np.float32(360.0)] = 0.0  # rounding of 359.99999... in float32
    return out


def slope_aspect_array(
    z: npt.ArrayLike, dx: Spacing, dy: Spacing
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Slope and aspect of a 2-D elevation block, in degrees (Horn's method).

    This is the pure NumPy kernel behind :func:`slope` and :func:`aspect`. Give it a block
    with a one-cell halo around the cells you want; the outer ring of the result (no full
    3 x 3 window) is NaN, so ``result[1:-1, 1:-1]`` is the block without its halo.

    Parameters
    ----------
    z : array_like, shape (ny, nx)
        Elevation in metres; NaN marks missing cells.
    dx, dy : float or array_like of shape (ny,)
        Signed ground cell distances in metres, as in :func:`horn_gradients`
        (``dx`` positive eastward, ``dy`` positive southward).

    Returns
    -------
    slope_deg : ndarray of float32, shape (ny, nx)
        Slope in degrees, 0 (flat) to 90.
    aspect_deg : ndarray of float32, shape (ny, nx)
        Direction the slope faces, in degrees clockwise from north, in [0, 360);
        -1 where both gradients are exactly 0 (flat).

    Examples
    --------
    >>> import numpy as np
    >>> z = np.array([[0.0, 0.0, 0.0], [30.0, 30.0, 30.0], [60.0, 60.0, 60.0]])
    >>> s, a = slope_aspect_array(z, 30.0, 30.0)  # rises 30 m per 30 m southward
    >>> round(float(s[1, 1]), 4), float(a[1, 1])
    (45.0, 0.0)
    """
    gx, gy = horn_gradients(z, dx, dy)
    return (
        _slope_from_gradients(gx, gy).astype(np.float32),
        _to_float32_aspect(_aspect_from_gradients(gx, gy)),
    )


def _kernel(
    z: FloatArray,
    dx: Spacing,
    dy: Spacing,
    *,
    which: str,
) -> npt.NDArray[np.float32]:
    """Slope or aspect of a padded block; ``dx``/``dy`` may be (ny, 1) columns."""
    dxv = np.asarray(dx)
    dyv = np.asarray(dy)
    gx, gy = horn_gradients(
        z, dxv.reshape(-1) if dxv.ndim else dxv, dyv.reshape(-1) if dyv.ndim else dyv
    )
    if which == "slope":
        return _slope_from_gradients(gx, gy).astype(np.float32)
    return _to_float32_aspect(_aspect_from_gradients(gx, gy))


# --------------------------------------------------------------------------------------------
# Grid geometry: CRS, transform and metric cell size
# --------------------------------------------------------------------------------------------


def _resolve_crs(dem: xr.DataArray, crs: Any) -> Any:
    """Return a pyproj CRS from the argument, the rio accessor or the spatial_ref coord."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    candidate = crs
    if candidate is None:
        try:
            candidate = dem.rio.crs  # only when the caller imported rioxarray
        except AttributeError:
            candidate = None
        except Exception:  # noqa: BLE001 - any accessor failure means "no CRS found"
            candidate = None
    if candidate is None and "spatial_ref" in dem.coords:
        attrs = dem.coords["spatial_ref"].attrs
        candidate = attrs.get("crs_wkt") or attrs.get("spatial_ref")
    if candidate is None:
        raise GridError(
            f"the DEM{f' {dem.name!r}' if dem.name else ''} needs a CRS to turn its cell size "
            "into metres; "
            "give `crs=` or read the DEM with its georeferencing"
        )
    try:
        return CRS.from_user_input(candidate)
    except CRSError as exc:
        raise GridError(f"the DEM's CRS {candidate!r} is not understood: {exc}") from exc


def _transform_tuple(value: Any) -> tuple[float, float, float, float, float, float]:
    if all(hasattr(value, k) for k in "abcdef"):
        return tuple(float(getattr(value, k)) for k in "abcdef")  # type: ignore[return-value]
    seq = list(value)
    if len(seq) not in (6, 9):
        raise GridError(f"a transform needs the 6 affine coefficients a..f, got {value!r}")
    return tuple(float(v) for v in seq[:6])  # type: ignore[return-value]


def _transform_from_coords(dem: xr.DataArray) -> tuple[float, float, float, float, float, float]:
    try:
        x = np.asarray(dem.coords["x"].values, dtype=np.float64)
        y = np.asarray(dem.coords["y"].values, dtype=np.float64)
    except KeyError as exc:
        raise GridError(
            "the DEM has no transform and no x/y coordinates to derive one; give `transform=`"
        ) from exc
    if x.size < 2 or y.size < 2:
        raise GridError("cannot derive the DEM's cell size from fewer than 2 x or y coordinates")
    a = float(x[1] - x[0])
    e = float(y[1] - y[0])
    return (a, 0.0, float(x[0]) - a / 2.0, 0.0, e, float(y[0]) - e / 2.0)


def _resolve_transform(
    dem: xr.DataArray, transform: Any
) -> tuple[float, float, float, float, float, float]:
    if transform is not None:
        return _transform_tuple(transform)
    try:
        rio_transform = dem.rio.transform()
    except AttributeError:
        rio_transform = None
    except Exception:  # noqa: BLE001 - fall back to the coordinates
        rio_transform = None
    if rio_transform is not None:
        return _transform_tuple(rio_transform)
    return _transform_from_coords(dem)


def _horizontal_crs(crs: Any) -> Any:
    if crs.is_compound:
        for sub in crs.sub_crs_list:
            if sub.is_projected or sub.is_geographic:
                return sub
    return crs


def cell_spacing(
    crs: Any,
    transform: Any,
    nrows: int,
) -> tuple[float | FloatArray, float | FloatArray]:
    """Signed ground cell distances in metres for Horn's method.

    Parameters
    ----------
    crs : pyproj.CRS or anything :meth:`pyproj.CRS.from_user_input` accepts
        The grid's CRS.
    transform : affine.Affine or object with attributes ``a`` .. ``f``
        The grid's north-up (unrotated) affine transform.
    nrows : int
        Number of rows of the grid (geographic grids get one spacing per row).

    Returns
    -------
    dx, dy : float or ndarray of shape (nrows,)
        ``dx`` positive eastward, ``dy`` positive southward (positive on north-up grids), in
        metres. Scalars for a projected CRS; per-row arrays for a geographic CRS, from the
        ellipsoid's radii of curvature at each row's centre latitude.

    Raises
    ------
    GridError
        The transform is rotated or degenerate, the CRS has no usable unit, or a
        geographic grid reaches past the poles.
    """
    from pyproj import CRS

    a, b, c, d, e, f = _transform_tuple(transform)
    if b != 0.0 or d != 0.0:
        raise GridError(
            f"rotated grids are not supported for terrain (transform b={b}, d={d}); "
            "warp the DEM to a north-up grid first"
        )
    if a == 0.0 or e == 0.0 or not (math.isfinite(a) and math.isfinite(e)):
        raise GridError(f"the DEM's transform has a degenerate pixel size ({a}, {e})")
    hcrs = _horizontal_crs(CRS.from_user_input(crs))
    axes = hcrs.axis_info
    if not axes:
        raise GridError(f"the DEM's CRS {hcrs.name!r} has no axis units")
    factor = float(axes[0].unit_conversion_factor)
    if hcrs.is_geographic:
        # factor: radians per angular unit (degrees -> pi/180).
        ellipsoid = hcrs.ellipsoid
        semi_major = float(ellipsoid.semi_major_metre)
        inv_f = float(ellipsoid.inverse_flattening)
        flat = 0.0 if inv_f == 0.0 else 1.0 / inv_f
        e2 = flat * (2.0 - flat)
        rows = np.arange(nrows, dtype=np.float64) + 0.5
        lat_units = f + rows * e
        lat = lat_units * factor
        if np.any(np.abs(lat) > math.pi / 2 + 1e-12):
            raise GridError(
                "the DEM's rows reach past +-90 degrees latitude; check its transform and CRS"
            )
        sin2 = np.sin(lat) ** 2
        w = np.sqrt(1.0 - e2 * sin2)
        meridional = semi_major * (1.0 - e2) / w**3  # M(phi)
        prime_vertical = semi_major / w  # N(phi)
        dx_rows = prime_vertical * np.cos(lat) * (a * factor)
        dy_rows = meridional * (-e * factor)
        return dx_rows, dy_rows
    if not hcrs.is_projected:
        raise GridError(
            f"the DEM's CRS {hcrs.name!r} is neither projected nor geographic; "
            "warp the DEM to a projected CRS"
        )
    # factor: metres per linear unit (1 for metre, 0.3048006096 for US survey foot).
    return a * factor, -e * factor


# --------------------------------------------------------------------------------------------
# DataArray functions
# --------------------------------------------------------------------------------------------


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


def _check_edges(edges: str) -> None:
    if edges not in _EDGES:
        raise ConfigError(f"edges must be one of {list(_EDGES)}, got {edges!r}")


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


def _check_names(names: list[str]) -> None:
    if not names:
        raise ConfigError("no terrain feature names given")
    unknown = [n for n in names if n not in TERRAIN_NAMES]
    if unknown:
        raise ConfigError(f"unknown terrain feature(s) {unknown}; known: {list(TERRAIN_NAMES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"terrain feature names repeat: {names}")


# --------------------------------------------------------------------------------------------
# Window by window (prediction): the same numbers as the whole-grid functions
# --------------------------------------------------------------------------------------------


class TerrainWindows:
    """Terrain features of any window of a grid, equal to the whole-grid computation.

    Give :meth:`compute` the DEM under :meth:`halo_window` (the window plus a one-cell
    halo, clipped to the grid): where the halo falls outside the grid it is padded the
    way :func:`slope` pads the whole grid (``edges``), and the cell spacing of each row is
    that of the whole grid, so the result equals the same cells of
    :func:`stack_terrain` on the whole DEM, bit for bit.

    Parameters
    ----------
    names : sequence of str
        Features from :data:`TERRAIN_NAMES`, in the order wanted.
    shape : (int, int)
        Rows and columns of the whole grid.
    crs, transform
        The grid's CRS and north-up transform (as in :func:`slope`; both required).
    edges : {"nearest", "nan"}, default "nearest"
        As in :func:`slope`.

    Examples
    --------
    >>> import numpy as np
    >>> from affine import Affine
    >>> z = np.add.outer(np.arange(5.0), np.arange(6.0)) * 30.0
    >>> tw = TerrainWindows(["slope"], (5, 6), crs="EPSG:32649",
    ...                     transform=Affine(30.0, 0, 0, 0, -30.0, 0))
    >>> r0, c0, h0, w0 = tw.halo_window(0, 2, 2, 3)  # top edge: no row above
    >>> (r0, c0, h0, w0)
    (0, 1, 3, 5)
    >>> tw.compute(z[r0:r0 + h0, c0:c0 + w0], 0, 2, 2, 3).shape
    (1, 2, 3)
    """

    def __init__(
        self,
        names: Sequence[str],
        shape: tuple[int, int],
        *,
        crs: Any,
        transform: Any,
        edges: Edges = "nearest",
    ) -> None:
        self.names = list(names)
        _check_names(self.names)
        _check_edges(edges)
        self.edges = edges
        self.shape = (int(shape[0]), int(shape[1]))
        self.needs_halo = any(n != "elevation" for n in self.names)
        if self.needs_halo:
            from pyproj import CRS

            dx, dy = cell_spacing(
                CRS.from_user_input(crs), _transform_tuple(transform), self.shape[0]
            )
            # One spacing per padded row, padded like the whole-grid computation.
            self._dx: Any = np.pad(dx, 1, mode="edge") if np.ndim(dx) else dx
            self._dy: Any = np.pad(dy, 1, mode="edge") if np.ndim(dy) else dy

    def halo_window(
        self, row_off: int, col_off: int, rows: int, cols: int
    ) -> tuple[int, int, int, int]:
        """The DEM window ``(row_off, col_off, rows, cols)`` to read for a window.

        The window grown by one cell on every side (when slope or aspect is asked),
        clipped to the grid.
        """
        if not self.needs_halo:
            return row_off, col_off, rows, cols
        ny, nx = self.shape
        r0, c0 = max(row_off - 1, 0), max(col_off - 1, 0)
        r1, c1 = min(row_off + rows + 1, ny), min(col_off + cols + 1, nx)
        return r0, c0, r1 - r0, c1 - c0

    def compute(
        self, dem: npt.ArrayLike, row_off: int, col_off: int, rows: int, cols: int
    ) -> npt.NDArray[np.float32]:
        """Terrain features of one window.

        Parameters
        ----------
        dem : array_like
            Elevation (metres, NaN missing) under :meth:`halo_window` of the window.
        row_off, col_off, rows, cols : int
            The window.

        Returns
        -------
        numpy.ndarray
            float32 (feature, rows, cols), features in the order of ``names``.
        """
        out = np.empty((len(self.names), rows, cols), dtype=np.float32)
        z = np.asarray(dem)
        r0, c0, h0, w0 = self.halo_window(row_off, col_off, rows, cols)
        if z.shape != (h0, w0):
            raise InputError(f"the DEM block is {z.shape}, expected {(h0, w0)} with its halo")
        top, left = row_off - r0, col_off - c0
        gx = gy = None
        if self.needs_halo:
            # Pad where the halo fell outside the grid, as the whole grid is padded.
            pad = ((1 - top, 1 - (h0 - top - rows)), (1 - left, 1 - (w0 - left - cols)))
            z64 = z.astype(np.float64)
            if self.edges == "nearest":
                zp = np.pad(z64, pad, mode="edge")
            else:
                zp = np.pad(z64, pad, mode="constant", constant_values=np.nan)
            dxw = self._dx[row_off : row_off + rows + 2] if np.ndim(self._dx) else self._dx
            dyw = self._dy[row_off : row_off + rows + 2] if np.ndim(self._dy) else self._dy
            # As _kernel does: the whole padded block, then the halo is dropped.
            gx, gy = horn_gradients(zp, dxw, dyw)
        for k, name in enumerate(self.names):
            if name == "elevation":
                out[k] = z[top : top + rows, left : left + cols]
            elif name == "slope":
                assert gx is not None and gy is not None
                out[k] = _slope_from_gradients(gx, gy).astype(np.float32)[1:-1, 1:-1]
            else:
                assert gx is not None and gy is not None
                out[k] = _to_float32_aspect(_aspect_from_gradients(gx, gy))[1:-1, 1:-1]
        return out

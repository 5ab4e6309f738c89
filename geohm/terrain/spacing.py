"""Grid geometry: the CRS, the transform and the metric cell size of a DEM."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from geohm.errors import GridError
from geohm.terrain.kernels import FloatArray


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

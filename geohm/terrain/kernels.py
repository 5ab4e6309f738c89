"""Horn's 3 x 3 kernels in pure NumPy: gradients, slope and aspect of a padded block.

Shared by the whole-grid functions (eager and dask) and the windows of the prediction pass.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from geohm.errors import ConfigError, GridError, InputError

#: Terrain feature names, in the order :func:`stack_terrain` knows them.
TERRAIN_NAMES: tuple[str, ...] = ("elevation", "slope", "aspect")

#: Aspect value of a flat cell (both gradients exactly 0): the ArcGIS/xarray-spatial value.
FLAT_ASPECT = -1.0

Edges = Literal["nearest", "nan"]
_EDGES = ("nearest", "nan")

FloatArray = npt.NDArray[np.floating[Any]]
Spacing = float | npt.ArrayLike


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


def _check_edges(edges: str) -> None:
    if edges not in _EDGES:
        raise ConfigError(f"edges must be one of {list(_EDGES)}, got {edges!r}")


def _check_names(names: list[str]) -> None:
    if not names:
        raise ConfigError("no terrain feature names given")
    unknown = [n for n in names if n not in TERRAIN_NAMES]
    if unknown:
        raise ConfigError(f"unknown terrain feature(s) {unknown}; known: {list(TERRAIN_NAMES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"terrain feature names repeat: {names}")

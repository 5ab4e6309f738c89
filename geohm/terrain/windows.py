"""Terrain features of any window of a grid, equal to the whole-grid computation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from geohm.errors import InputError
from geohm.terrain.kernels import (
    Edges,
    _aspect_from_gradients,
    _check_edges,
    _check_names,
    _slope_from_gradients,
    _to_float32_aspect,
    horn_gradients,
)
from geohm.terrain.spacing import _transform_tuple, cell_spacing


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

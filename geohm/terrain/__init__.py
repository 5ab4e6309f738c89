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

from geohm.terrain.grid import aspect, elevation, slope, stack_terrain
from geohm.terrain.kernels import (
    FLAT_ASPECT,
    TERRAIN_NAMES,
    Edges,
    horn_gradients,
    slope_aspect_array,
)
from geohm.terrain.spacing import cell_spacing
from geohm.terrain.windows import TerrainWindows

__all__ = [
    "FLAT_ASPECT",
    "TERRAIN_NAMES",
    "Edges",
    "TerrainWindows",
    "aspect",
    "cell_spacing",
    "elevation",
    "horn_gradients",
    "slope",
    "slope_aspect_array",
    "stack_terrain",
]

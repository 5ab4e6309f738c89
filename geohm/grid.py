"""The raster grid: CRS, affine transform and shape, shared by every layer of a cube."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from affine import Affine

__all__ = ["Grid"]


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Parameters
    ----------
    crs : str
        The coordinate reference system as WKT or an authority string (``"EPSG:32649"``).
    transform : affine.Affine
        Pixel (col, row) to map (x, y) transform, map units (metres for projected CRS).
    width, height : int
        Number of columns and rows.
    """

    crs: str
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns)."""
        return (self.height, self.width)

    @property
    def res(self) -> tuple[float, float]:
        """Pixel size (x, y) in map units, both positive."""
        return (abs(self.transform.a), abs(self.transform.e))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in map units."""
        t = self.transform
        left, top = t.c, t.f
        right = left + t.a * self.width
        bottom = top + t.e * self.height
        return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))

    @classmethod
    def of(cls, da: Any) -> Grid:
        """Grid of a rioxarray-aware DataArray (its ``rio`` accessor must be loaded)."""
        crs = da.rio.crs
        return cls(
            crs=crs.to_wkt() if crs is not None else "",
            transform=da.rio.transform(),
            width=int(da.rio.width),
            height=int(da.rio.height),
        )

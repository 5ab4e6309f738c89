"""Tests for geohm.terrain: Horn slope and aspect on hand-checkable and real DEMs."""

from __future__ import annotations

import shutil
import subprocess

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from pyproj import Geod, Transformer

from geohm import terrain
from geohm.errors import ConfigError, GridError, InputError

# A tilted plane z = A * east + B * north (metres). Its gradient is (A, B), so
#   slope  = atan(sqrt(0.3**2 + 0.4**2)) = atan(0.5)               = 26.56505 degrees
#   aspect = downhill direction (-A, -B) = (-0.3 east, +0.4 north)
#          = atan2(east=-0.3, north=0.4) mod 360 = 360 - 36.86990  = 323.13010 degrees
A, B = 0.3, -0.4
PLANE_SLOPE = 26.56505
PLANE_ASPECT = 323.13010


def make_dem(z, *, dx=30.0, dy=30.0, x0=500_000.0, y0=3_900_000.0, north_up=True):
    """A DEM DataArray with pixel-centre coords; north-up means y decreasing down rows."""
    ny, nx = z.shape
    x = x0 + dx * (np.arange(nx) + 0.5)
    if north_up:
        y = y0 - dy * (np.arange(ny) + 0.5)
    else:
        y = y0 + dy * (np.arange(ny) + 0.5)
    return xr.DataArray(z, coords={"y": y, "x": x}, dims=("y", "x"), name="dem")


def plane_dem(ny=6, nx=7, *, dx=30.0, dy=30.0, north_up=True):
    dem = make_dem(np.zeros((ny, nx)), dx=dx, dy=dy, north_up=north_up)
    east, north = np.meshgrid(dem.x.values, dem.y.values)
    return dem.copy(data=A * (east - east.mean()) + B * (north - north.mean()) + 500.0)


def random_dem(ny=10, nx=13, seed=0):
    rng = np.random.default_rng(seed)
    z = 300.0 + np.cumsum(rng.normal(0, 5, (ny, nx)), axis=1) + rng.normal(0, 2, (ny, nx))
    z[4, 5] = np.nan
    z[0, 12] = np.nan
    return make_dem(z)


# --------------------------------------------------------------------------------------------
# hand-checkable planes
# --------------------------------------------------------------------------------------------


def test_plane_slope_and_aspect_exact():
    dem = plane_dem()
    s = terrain.slope(dem, crs="EPSG:32649")
    a = terrain.aspect(dem, crs="EPSG:32649")
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(s.values[inner], PLANE_SLOPE, atol=1e-4)
    np.testing.assert_allclose(a.values[inner], PLANE_ASPECT, atol=1e-4)
    assert s.dtype == np.float32 and a.dtype == np.float32
    assert s.name == "slope" and s.attrs["units"] == "degree"
    assert a.name == "aspect" and "north" in a.attrs["long_name"]
    # Edge replication keeps values on the outer ring (a damped gradient there).
    assert np.isfinite(s.values).all() and np.isfinite(a.values).all()


@pytest.mark.parametrize(
    ("dx", "dy", "north_up"),
    [(30.0, 20.0, True), (20.0, 45.0, True), (30.0, 30.0, False)],
    ids=["wide-cells", "tall-cells", "south-up"],
)
def test_plane_non_square_and_south_up(dx, dy, north_up):
    dem = plane_dem(dx=dx, dy=dy, north_up=north_up)
    s = terrain.slope(dem, crs="EPSG:32649", edges="nan")
    a = terrain.aspect(dem, crs="EPSG:32649", edges="nan")
    np.testing.assert_allclose(s.values[1:-1, 1:-1], PLANE_SLOPE, atol=1e-4)
    np.testing.assert_allclose(a.values[1:-1, 1:-1], PLANE_ASPECT, atol=1e-4)


@pytest.mark.parametrize(
    ("gx", "gy", "expected"),
    [(0.0, 0.1, 180.0), (-0.1, 0.0, 90.0), (0.0, -0.1, 0.0), (0.1, 0.0, 270.0), (0.1, 0.1, 225.0)],
    ids=["rises-north", "rises-west", "rises-south", "rises-east", "rises-northeast"],
)
def test_aspect_compass_directions(gx, gy, expected):
    dem = make_dem(np.zeros((3, 3)))
    east, north = np.meshgrid(dem.x.values, dem.y.values)
    dem = dem.copy(data=gx * east + gy * north)
    a = terrain.aspect(dem, crs="EPSG:32649", edges="nan")
    assert float(a[1, 1]) == pytest.approx(expected, abs=1e-4)


def test_flat_gives_zero_slope_and_minus_one_aspect():
    dem = make_dem(np.full((4, 5), 123.0))
    s = terrain.slope(dem, crs="EPSG:32649")
    a = terrain.aspect(dem, crs="EPSG:32649")
    np.testing.assert_array_equal(s.values, 0.0)
    np.testing.assert_array_equal(a.values, -1.0)


def test_edges_nan_leaves_outer_ring_nan():
    s = terrain.slope(plane_dem(), crs="EPSG:32649", edges="nan")
    ring = np.ones(s.shape, bool)
    ring[1:-1, 1:-1] = False
    assert np.isnan(s.values[ring]).all()
    assert np.isfinite(s.values[~ring]).all()


def test_nan_propagates_to_its_3x3_neighbourhood():
    z = plane_dem(8, 9).values
    z[4, 5] = np.nan
    dem = make_dem(z)
    for out in (terrain.slope(dem, crs="EPSG:32649"), terrain.aspect(dem, crs="EPSG:32649")):
        nan = np.isnan(out.values)
        expected = np.zeros_like(nan)
        expected[3:6, 4:7] = True
        np.testing.assert_array_equal(nan, expected)


def test_us_feet_crs_converts_cell_size():
    # EPSG:2229: NAD83 / California zone 5 in US survey feet. 100 ft cells, z in metres.
    foot = 1200.0 / 3937.0
    dem_ft = plane_dem(dx=100.0, dy=100.0)
    east, north = np.meshgrid(dem_ft.x.values * foot, dem_ft.y.values * foot)
    dem_ft = dem_ft.copy(data=A * east + B * north)
    s = terrain.slope(dem_ft, crs="EPSG:2229", edges="nan")
    np.testing.assert_allclose(s.values[1:-1, 1:-1], PLANE_SLOPE, atol=1e-3)
    wrong = terrain.slope(dem_ft, crs="EPSG:32611", edges="nan")  # feet taken as metres
    assert abs(float(wrong[2, 2]) - PLANE_SLOPE) > 5.0


# --------------------------------------------------------------------------------------------
# geographic CRS
# --------------------------------------------------------------------------------------------


def geographic_plane(lat0=35.0, lon0=111.0, res=0.0003, n=12):
    """The plane z = A*E + B*N of UTM 49N (central meridian 111E) sampled on a lon/lat grid."""
    lon = lon0 + res * (np.arange(n) + 0.5)
    lat = lat0 - res * (np.arange(n) + 0.5)
    lon2, lat2 = np.meshgrid(lon, lat)
    east, north = Transformer.from_crs("EPSG:4326", "EPSG:32649", always_xy=True).transform(
        lon2, lat2
    )
    z = A * (east - east.mean()) + B * (north - north.mean()) + 800.0
    return xr.DataArray(z, coords={"y": lat, "x": lon}, dims=("y", "x"))


def test_geographic_dem_gets_metric_spacing():
    dem = geographic_plane()
    s = terrain.slope(dem, crs="EPSG:4326", edges="nan")
    a = terrain.aspect(dem, crs="EPSG:4326", edges="nan")
    # Same surface, so the same slope/aspect as in UTM (UTM scale 0.9996 costs ~0.01 deg).
    np.testing.assert_allclose(s.values[1:-1, 1:-1], PLANE_SLOPE, atol=0.05)
    np.testing.assert_allclose(a.values[1:-1, 1:-1], PLANE_ASPECT, atol=0.05)
    # Taking degrees as metres (a projected CRS on the same numbers) is wildly wrong:
    # 0.3 m per m over 0.0003 degrees looks like ~8 m rise per "metre" -> ~89.9 degrees.
    naive = terrain.slope(dem, crs="EPSG:32649", edges="nan")
    assert float(naive[5, 5]) > 89.0
    assert abs(float(naive[5, 5]) - float(s[5, 5])) > 60.0


def test_cell_spacing_geographic_matches_geodesic_distances():
    res = 0.0003
    transform = (res, 0.0, 111.0, 0.0, -res, 35.0)
    dx, dy = terrain.cell_spacing("EPSG:4326", transform, 4)
    geod = Geod(ellps="WGS84")
    for row in range(4):
        lat = 35.0 - res * (row + 0.5)
        ew = geod.inv(111.0, lat, 111.0 + res, lat)[2]
        ns = geod.inv(111.0, lat + res / 2, 111.0, lat - res / 2)[2]
        assert dx[row] == pytest.approx(ew, rel=1e-6)
        assert dy[row] == pytest.approx(ns, rel=1e-6)
    # ~27.3 m east-west and ~33.3 m north-south at 35N: not degrees, not equal.
    assert 27.0 < dx[0] < 27.6 and 33.0 < dy[0] < 33.5


def test_cell_spacing_projected_is_scalar_metres():
    dx, dy = terrain.cell_spacing("EPSG:32649", (30.0, 0.0, 0.0, 0.0, -20.0, 0.0), 5)
    assert (dx, dy) == (30.0, 20.0)
    dx, dy = terrain.cell_spacing("EPSG:32649", (30.0, 0.0, 0.0, 0.0, 20.0, 0.0), 5)
    assert dy == -20.0  # south-up: rows go north


def test_crs_from_rioxarray_and_missing_crs_error():
    rioxarray = pytest.importorskip("rioxarray")
    assert rioxarray  # registers the .rio accessor
    dem = plane_dem().rio.write_crs("EPSG:32649")
    s = terrain.slope(dem)
    assert s.rio.crs == dem.rio.crs
    assert s.rio.transform() == dem.rio.transform()
    np.testing.assert_allclose(s.values[1:-1, 1:-1], PLANE_SLOPE, atol=1e-4)
    with pytest.raises(GridError, match="needs a CRS"):
        terrain.slope(plane_dem())


def test_rotated_transform_and_bad_edges_raise():
    with pytest.raises(GridError, match="rotated"):
        terrain.slope(plane_dem(), crs="EPSG:32649", transform=(30.0, 1.0, 0.0, 0.0, -30.0, 0.0))
    with pytest.raises(ConfigError, match="edges"):
        terrain.slope(plane_dem(), crs="EPSG:32649", edges="reflect")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="dims"):
        terrain.slope(plane_dem().expand_dims(t=2), crs="EPSG:32649")


# --------------------------------------------------------------------------------------------
# lazy == eager, stacking, the pure kernel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("edges", ["nearest", "nan"])
@pytest.mark.parametrize("geographic", [False, True], ids=["projected", "geographic"])
def test_dask_equals_numpy(edges, geographic):
    dem = random_dem()
    crs = "EPSG:32649"
    if geographic:
        dem = dem.assign_coords(x=110.0 + 0.0003 * np.arange(13), y=35.0 - 0.0003 * np.arange(10))
        crs = "EPSG:4326"
    lazy_dem = dem.chunk({"y": 3, "x": 4})
    for func in (terrain.slope, terrain.aspect):
        eager = func(dem, crs=crs, edges=edges)
        lazy = func(lazy_dem, crs=crs, edges=edges)
        assert isinstance(lazy.data, da.Array)
        np.testing.assert_array_equal(lazy.values, eager.values)
        assert lazy.dtype == np.float32


def test_stack_terrain():
    dem = plane_dem()
    stack = terrain.stack_terrain(dem, ["slope", "aspect", "elevation"], crs="EPSG:32649")
    assert stack.dims == ("feature", "y", "x")
    assert list(stack.feature.values) == ["slope", "aspect", "elevation"]
    np.testing.assert_allclose(
        stack.sel(feature="slope").values[1:-1, 1:-1], PLANE_SLOPE, atol=1e-4
    )
    np.testing.assert_allclose(stack.sel(feature="elevation").values, dem.values, rtol=1e-6)
    np.testing.assert_array_equal(stack.x.values, dem.x.values)
    lazy = terrain.stack_terrain(dem.chunk(3), terrain.TERRAIN_NAMES, crs="EPSG:32649")
    assert isinstance(lazy.data, da.Array)
    with pytest.raises(ConfigError, match="curvature"):
        terrain.stack_terrain(dem, ["curvature"], crs="EPSG:32649")


def test_slope_aspect_array_on_a_window_with_halo():
    dem = random_dem()
    block = dem.values[2:8, 3:10]  # a 4 x 5 window plus its one-cell halo
    s, a = terrain.slope_aspect_array(block, 30.0, 30.0)
    full_s = terrain.slope(dem, crs="EPSG:32649").values
    full_a = terrain.aspect(dem, crs="EPSG:32649").values
    np.testing.assert_array_equal(s[1:-1, 1:-1], full_s[3:7, 4:9])
    np.testing.assert_array_equal(a[1:-1, 1:-1], full_a[3:7, 4:9])
    assert np.isnan(s[0]).all() and np.isnan(a[:, -1]).all()


# --------------------------------------------------------------------------------------------
# a real DEM against gdaldem
# --------------------------------------------------------------------------------------------


def jacksboro():
    """matplotlib's Jacksboro fault DEM: int16 metres on a 3 arc-second lon/lat grid.

    Keys: elevation (344, 403), dx = dy = 1/1200 degree, xmin/xmax longitudes, and 'ymin'
    / 'ymax' latitudes whose labels are swapped (ymin = 36.7329 > ymax = 36.4463); we take
    the larger as the top edge and row 0 as north.
    """
    cbook = pytest.importorskip("matplotlib.cbook")
    data = cbook.get_sample_data("jacksboro_fault_dem.npz")
    if not hasattr(data, "files"):  # older matplotlib returned a path
        data = np.load(data)
    z = np.asarray(data["elevation"], dtype=np.float32)
    res = float(data["dx"])
    assert res == pytest.approx(float(data["dy"]))
    west = float(data["xmin"])
    north = max(float(data["ymin"]), float(data["ymax"]))
    return z, res, west, north


@pytest.fixture(scope="module")
def gdaldem_runs(tmp_path_factory):
    """Write the DEM as projected GeoTIFFs and run gdaldem slope/aspect (Horn) on them.

    gdaldem 3.6 cannot do a geographic DEM correctly (one `-s` scale for both axes), so the
    lon/lat grid is written in UTM 16N with its true metric cell size at the centre latitude
    ("true", 74.6 m x 92.5 m) and, for the aspect comparison, with square cells ("square").
    """
    if shutil.which("gdaldem") is None:
        pytest.skip("gdaldem is not installed")
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    z, res, west, north = jacksboro()
    lat_c = north - res * z.shape[0] / 2
    lon_c = west + res * z.shape[1] / 2
    geod = Geod(ellps="WGS84")
    dx_m = geod.inv(lon_c - res / 2, lat_c, lon_c + res / 2, lat_c)[2]
    dy_m = geod.inv(lon_c, lat_c - res / 2, lon_c, lat_c + res / 2)[2]
    x0, y0 = 700_000.0, 4_070_000.0
    tmp = tmp_path_factory.mktemp("gdaldem")
    runs = {}
    for label, (dx, dy) in {"true": (dx_m, dy_m), "square": (dy_m, dy_m)}.items():
        src = tmp / f"dem_{label}.tif"
        profile = {
            "driver": "GTiff",
            "width": z.shape[1],
            "height": z.shape[0],
            "count": 1,
            "dtype": "float32",
            "crs": "EPSG:32616",
            "transform": from_origin(x0, y0, dx, dy),
        }
        with rasterio.open(src, "w", **profile) as dst:
            dst.write(z, 1)
        out = {}
        for mode in ("slope", "aspect"):
            path = tmp / f"{mode}_{label}.tif"
            subprocess.run(
                ["gdaldem", mode, str(src), str(path), "-alg", "Horn", "-of", "GTiff", "-q"],
                check=True,
                capture_output=True,
            )
            with rasterio.open(path) as ds:
                out[mode] = ds.read(1).astype(np.float64)
                out[f"{mode}_nodata"] = ds.nodata
        runs[label] = {"dx": dx, "dy": dy, "x0": x0, "y0": y0, **out}
    return z, res, west, north, runs


def _geohm_on(z, run):
    dem = make_dem(z.astype(np.float64), dx=run["dx"], dy=run["dy"], x0=run["x0"], y0=run["y0"])
    return (
        terrain.slope(dem, crs="EPSG:32616", edges="nan").values.astype(np.float64),
        terrain.aspect(dem, crs="EPSG:32616", edges="nan").values.astype(np.float64),
    )


def _interior(gdal, nodata):
    mask = np.zeros(gdal.shape, bool)
    mask[1:-1, 1:-1] = True
    return mask & (gdal != nodata)


@pytest.mark.gdal
@pytest.mark.parametrize("label", ["true", "square"])
def test_slope_matches_gdaldem(gdaldem_runs, label):
    z, *_, runs = gdaldem_runs
    run = runs[label]
    slope_deg, _ = _geohm_on(z, run)
    ok = _interior(run["slope"], run["slope_nodata"])
    assert ok.sum() > 0.95 * (z.shape[0] - 2) * (z.shape[1] - 2)
    diff = np.abs(slope_deg[ok] - run["slope"][ok])
    assert diff.max() < 0.01
    assert np.isfinite(slope_deg[ok]).all()


@pytest.mark.gdal
def test_aspect_matches_gdaldem_on_square_cells(gdaldem_runs):
    # GDAL's Horn aspect (GDALAspectAlg) uses the raw 3 x 3 differences without the cell
    # size, which is right only for square cells; geohm divides by dx and dy. So compare
    # on the square-cell grid.
    z, *_, runs = gdaldem_runs
    run = runs["square"]
    _, aspect_deg = _geohm_on(z, run)
    ok = _interior(run["aspect"], run["aspect_nodata"])
    d = np.abs(aspect_deg[ok] - run["aspect"][ok])
    circular = np.minimum(d, 360.0 - d)
    assert circular.max() < 0.01
    # gdaldem's flat cells (nodata) are geohm's -1.
    flat = (run["aspect"] == run["aspect_nodata"]) & _interior(run["slope"], -1e30)
    np.testing.assert_array_equal(aspect_deg[flat], -1.0)


@pytest.mark.gdal
def test_geographic_dem_matches_gdaldem_on_metric_cells(gdaldem_runs):
    # The same DEM on its own lon/lat grid: geohm's per-row metric spacing should give the
    # slope gdaldem computes on the metric-cell (centre latitude) version, to within what
    # the +-0.14 degree latitude spread changes cos(lat) (about 0.2 %).
    z, res, west, north, runs = gdaldem_runs
    run = runs["true"]
    ny, nx = z.shape
    dem = xr.DataArray(
        z.astype(np.float64),
        coords={
            "y": north - res * (np.arange(ny) + 0.5),
            "x": west + res * (np.arange(nx) + 0.5),
        },
        dims=("y", "x"),
    )
    s = terrain.slope(dem, crs="EPSG:4326", edges="nan").values
    ok = _interior(run["slope"], run["slope_nodata"])
    diff = np.abs(s[ok] - run["slope"][ok])
    assert diff.max() < 0.1  # measured 0.043
    # Taking the 3 arc-second cells as metres would say nearly vertical everywhere.
    naive = terrain.slope(dem, crs="EPSG:32616", edges="nan").values
    assert np.nanmedian(naive[ok]) > 89.0
    assert np.nanmedian(s[ok]) == pytest.approx(np.nanmedian(run["slope"][ok]), abs=0.05)

"""The feature cube built window by window equals the whole-scene lazy cube, bit for bit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from affine import Affine

from geohm.cube import (
    COORDINATE_FEATURES,
    TERRAIN_FEATURES,
    WindowSource,
    _grid_of,
    _same_grid,
    available_features,
    stack_features,
)
from geohm.errors import ConfigError, GridError, InputError
from geohm.grid import Grid
from geohm.indices import INDEX_NAMES, index_array, stack_indices
from geohm.io.landsat import open_band_files, open_landsat, write_landsat_c2l2
from geohm.io.rasters import open_aligned, read_block, write_geotiff
from geohm.io.reading import AlignedRaster
from geohm.predict import iter_windows
from geohm.terrain import Edges, TerrainWindows, stack_terrain

from .conftest import BANDS, make_da


def _whole_grid_cube(
    reflectance: xr.DataArray | None,
    features: Sequence[str],
    *,
    dem: xr.DataArray | None = None,
    covariates: Mapping[str, xr.DataArray] | None = None,
) -> xr.DataArray:
    """The cube as the whole-grid xarray functions build it (the reference)."""
    covariates = dict(covariates or {})
    bands, template, georef = _grid_of(reflectance, covariates)
    layers: list[xr.DataArray] = []
    index_names = [f for f in features if f in INDEX_NAMES]
    terrain_names = [f for f in features if f in TERRAIN_FEATURES]
    built: dict[str, xr.DataArray] = {}
    if index_names:
        if reflectance is None:
            raise ConfigError(
                f"key 'features': {', '.join(index_names)} need imagery ('landsat' or 'bands')"
            )
        idx = stack_indices(reflectance, index_names)
        built.update({n: idx.sel(feature=n, drop=True) for n in index_names})
    if terrain_names:
        if dem is None:
            raise ConfigError(
                f"key 'features': {', '.join(terrain_names)} need a DEM; add 'dem:' to the config"
            )
        _same_grid(template, dem, "the DEM")
        crs = georef.rio.crs
        ter = stack_terrain(dem, terrain_names, crs=crs, transform=georef.rio.transform())
        built.update({n: ter.sel(feature=n, drop=True) for n in terrain_names})
    for name in COORDINATE_FEATURES:
        if name in features:
            # Lazy: chunked like the template, each chunk filled from the 1-D coordinate.
            built[name] = xr.zeros_like(template, dtype="float64") + template[name]
    for name, cov in covariates.items():
        _same_grid(template, cov, f"covariate '{name}'")
    for f in features:
        if f in built:
            layer = built[f]
        elif reflectance is not None and f in bands:
            layer = reflectance.sel(band=f, drop=True)
        elif f in covariates:
            layer = covariates[f]
        else:
            raise ConfigError(f"key 'features': no input provides '{f}'")
        layer = layer.astype("float32")
        # All layers share the reflectance coordinates exactly (float noise from the
        # warped VRT coordinates would otherwise break alignment in concat).
        layer = layer.assign_coords(x=template["x"], y=template["y"])
        layers.append(layer.drop_vars([c for c in layer.coords if c not in ("x", "y")]))
    cube = xr.concat(layers, dim="feature", join="override").assign_coords(feature=list(features))
    cube = cube.transpose("feature", "y", "x")
    if "spatial_ref" in georef.coords:
        cube = cube.assign_coords(spatial_ref=georef["spatial_ref"])
    cube.attrs = {"long_name": "geohm feature cube"}
    return cube

PID = "LC08_L2SP_127036_20191115_20200825_02_T1"
UTM = "EPSG:32649"
H, W = 45, 53  # odd sizes, not multiples of the chunk
CHUNK = 16
CLEAR, CLOUD, FILL = 21824, 22282, 1


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-identical float32 blocks (NaN included)."""
    return a.dtype == b.dtype == np.float32 and np.array_equal(a.view("uint32"), b.view("uint32"))


def _windows() -> list[tuple[int, int, int, int]]:
    """Whole grid, corners, edges, single pixels, interior, chunk-straddling windows."""
    return [
        (0, 0, H, W),
        (0, 0, 7, 9),
        (0, W - 11, 5, 11),
        (H - 6, 0, 6, 13),
        (H - 3, W - 4, 3, 4),
        (0, 0, 1, 1),
        (H - 1, W - 1, 1, 1),
        (0, 20, 1, 17),
        (12, 0, 17, 1),
        (10, 14, 23, 21),
        (15, 15, 2, 2),
        (0, 0, H, 1),
        (0, W - 1, H, 1),
    ]


def _dem_file(path: Path, crs: str, transform: Affine, shape: tuple[int, int]) -> Path:
    """A rough DEM (ridges plus noise) with a nodata hole, on its own grid."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    z = 1200 + 40 * np.sin(xx / 5.0) + 25 * np.cos(yy / 4.0) + rng.normal(0, 3, shape)
    r, c = shape[0] // 2, shape[1] // 3
    z[r : r + 6, c : c + 6] = -9999.0
    write_geotiff(path, z.astype("float32"), crs=crs, transform=transform, nodata=-9999.0)
    return path


@pytest.fixture(scope="module")
def landsat_case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A Landsat C2 L2 folder (clouds, fill), a DEM and a covariate on other grids."""
    tmp = tmp_path_factory.mktemp("window_cube")
    rng = np.random.default_rng(3)
    transform = Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750240.0)
    sr = {
        b: rng.integers(7500, 30000, size=(H, W)).astype(np.uint16)
        for b in ("coastal", "blue", "green", "red", "nir", "swir1", "swir2")
    }
    sr["red"][4, 5] = 0  # fill in one band only
    qa = np.full((H, W), CLEAR, np.uint16)
    qa[20:24, 30:35] = CLOUD
    qa[0, 0] = FILL
    qa[H - 1, 10] = CLOUD
    write_landsat_c2l2(
        tmp / PID,
        PID,
        sr=sr,
        st_b10=rng.integers(40000, 46000, size=(H, W)).astype(np.uint16),
        qa_pixel=qa,
        crs=UTM,
        transform=transform,
        acquired=dt.date(2019, 11, 15),
        sun_elevation=37.9,
        sun_azimuth=158.2,
        overviews=False,
    )
    # DEM at 20 m, shifted: the warp is exercised; it covers the scene with margin.
    dem = _dem_file(
        tmp / "dem.tif", UTM, Affine(20.0, 0.0, 489950.0, 0.0, -20.0, 3750300.0), (80, 90)
    )
    cov = tmp / "cov.tif"
    write_geotiff(
        cov,
        rng.normal(100.0, 10.0, size=(25, 30)).astype("float32"),
        crs=UTM,
        transform=Affine(60.0, 0.0, 489980.0, 0.0, -60.0, 3750260.0),
        nodata=-9999.0,
    )
    ph = tmp / "ph.tif"
    write_geotiff(
        ph,
        rng.uniform(5.0, 8.0, size=(30, 35)).astype("float32"),
        crs=UTM,
        transform=Affine(50.0, 0.0, 489990.0, 0.0, -50.0, 3750250.0),
        nodata=-9999.0,
    )
    refl = open_landsat(tmp / PID, chunks=CHUNK)
    grid = Grid.of(refl)
    return {
        "paths": {"dem": dem, "cov": cov, "ph": ph},
        "refl": refl,
        "grid": grid,
        "dem": open_aligned(dem, grid, chunks=CHUNK, what="DEM"),
        "cov": open_aligned(cov, grid, chunks=CHUNK, what="covariate 'c'"),
        "ph": open_aligned(ph, grid, resampling="nearest", chunks=CHUNK, what="pH"),
        # The covariate's file again, warped differently (the same dask keys).
        "cov_nearest": open_aligned(cov, grid, resampling="nearest", chunks=CHUNK, what="pH"),
    }


def _check_all_windows(cube: xr.DataArray, source: WindowSource) -> None:
    assert source.features == [str(f) for f in cube["feature"].values]
    assert source.shape == (cube.sizes["y"], cube.sizes["x"])
    for r, c, h, w in _windows():
        expected = read_block(cube.isel(y=slice(r, r + h), x=slice(c, c + w)))
        got = source.read(r, c, h, w)
        assert got.shape == (len(source.features), h, w)
        assert _same(got, expected), (r, c, h, w)


def test_landsat_scene_windows_equal_the_lazy_cube(landsat_case) -> None:
    refl = landsat_case["refl"]
    bands = [str(b) for b in refl["band"].values]
    feats = [*available_features(bands, has_dem=True, covariates=["c"]), "x", "y"]
    kw = {"dem": landsat_case["dem"], "covariates": {"c": landsat_case["cov"]}}
    cube = _whole_grid_cube(refl, feats, **kw)
    source = WindowSource(refl, feats, **kw)
    _check_all_windows(cube, source)
    # QA-masked (cloud) and fill pixels are NaN in every band and index.
    block = source.read(0, 0, H, W)
    band_rows = [feats.index(b) for b in bands if b in feats] + [feats.index("NDVI")]
    assert np.isnan(block[band_rows][:, 21, 31]).all()
    assert np.isnan(block[band_rows][:, 0, 0]).all()
    assert np.isnan(block[feats.index("red"), 4, 5])
    assert np.isfinite(block[feats.index("blue"), 4, 5])
    assert np.isnan(block[feats.index("slope")]).any()  # the DEM's nodata hole
    assert np.isfinite(block[feats.index("slope")]).mean() > 0.9


def test_a_subset_of_features_in_any_order(landsat_case) -> None:
    refl = landsat_case["refl"]
    feats = ["aspect", "CMR", "nir", "elevation", "c", "wetness"]
    kw = {"dem": landsat_case["dem"], "covariates": {"c": landsat_case["cov"]}}
    _check_all_windows(_whole_grid_cube(refl, feats, **kw), WindowSource(refl, feats, **kw))
    only_elev = ["elevation", "red"]
    _check_all_windows(
        _whole_grid_cube(refl, only_elev, dem=landsat_case["dem"]),
        WindowSource(refl, only_elev, dem=landsat_case["dem"]),
    )


def test_extra_layers_are_appended_like_the_risk_layers(landsat_case) -> None:
    refl, ph = landsat_case["refl"], landsat_case["ph"]
    feats = ["NDVI", "slope", "c"]
    kw = {"dem": landsat_case["dem"], "covariates": {"c": landsat_case["cov"]}}
    cube = _whole_grid_cube(refl, feats, **kw)
    # What pipeline.window_source does to the cube.
    extra = ph.assign_coords(x=cube["x"], y=cube["y"]).expand_dims(feature=["ph"])
    extra = extra.drop_vars([c for c in extra.coords if c not in ("x", "y", "feature")])
    full = xr.concat([cube, extra], dim="feature", join="override")
    source = WindowSource(refl, feats, extra={"ph": ph}, **kw)
    assert source.features == ["NDVI", "slope", "c", "ph"]
    _check_all_windows(full, source)
    with pytest.raises(ConfigError, match="repeat"):
        WindowSource(refl, feats, extra={"c": ph}, **kw)


def _readers(case: dict[str, Any]) -> dict[str, Any]:
    grid, paths = case["grid"], case["paths"]
    return {
        "dem_reader": AlignedRaster(paths["dem"], grid, tile=CHUNK, what="DEM"),
        "layer_readers": {
            "c": AlignedRaster(paths["cov"], grid, tile=CHUNK),
            "ph": AlignedRaster(paths["ph"], grid, resampling="nearest", tile=CHUNK),
        },
    }


def test_direct_window_readers_give_the_same_numbers(landsat_case) -> None:
    refl, ph = landsat_case["refl"], landsat_case["ph"]
    bands = [str(b) for b in refl["band"].values]
    feats = available_features(bands, has_dem=True, covariates=["c"])
    kw = {"dem": landsat_case["dem"], "covariates": {"c": landsat_case["cov"]}}
    cube = _whole_grid_cube(refl, feats, **kw)
    extra = ph.assign_coords(x=cube["x"], y=cube["y"]).expand_dims(feature=["ph"])
    extra = extra.drop_vars([c for c in extra.coords if c not in ("x", "y", "feature")])
    full = xr.concat([cube, extra], dim="feature", join="override")
    with WindowSource(refl, feats, extra={"ph": ph}, **kw, **_readers(landsat_case)) as source:
        _check_all_windows(full, source)
        windows = list(iter_windows(H, W, 8)) * 2
        with ThreadPoolExecutor(3) as pool:
            blocks = list(pool.map(lambda w: source.read(*w), windows))
        for (r, c, h, w), block in zip(windows, blocks, strict=True):
            assert _same(block, read_block(full[:, r : r + h, c : c + w]))
    with pytest.raises(ConfigError, match="no layer"):
        WindowSource(refl, feats, **kw, layer_readers={"zz": _readers(landsat_case)["dem_reader"]})
    small = Grid(landsat_case["grid"].crs, landsat_case["grid"].transform, 10, 10)
    with pytest.raises(GridError, match="window reader of the DEM"):
        WindowSource(
            refl, feats, **kw, dem_reader=AlignedRaster(landsat_case["paths"]["dem"], small)
        )


def test_one_file_warped_twice_stays_two_layers(landsat_case) -> None:
    # rioxarray names the dask keys of a warped file after the file alone, so one
    # merged graph would give both layers the same values; each layer is read alone.
    cov, near = landsat_case["cov"], landsat_case["cov_nearest"]
    source = WindowSource(None, ["c"], covariates={"c": cov}, extra={"near": near})
    block = source.read(3, 5, 30, 40)
    assert _same(block[0], read_block(cov[3:33, 5:45]))
    assert _same(block[1], read_block(near[3:33, 5:45]))
    assert not np.array_equal(block[0], block[1], equal_nan=True)


def test_reads_from_many_threads_at_once(landsat_case) -> None:
    refl = landsat_case["refl"]
    bands = [str(b) for b in refl["band"].values]
    feats = available_features(bands, has_dem=True, covariates=["c"])
    kw = {"dem": landsat_case["dem"], "covariates": {"c": landsat_case["cov"]}}
    source = WindowSource(refl, feats, **kw)
    windows = list(iter_windows(H, W, 8)) * 3
    serial = [source.read(*w) for w in windows]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(lambda w: source.read(*w), windows))
    assert all(_same(a, b) for a, b in zip(serial, parallel, strict=True))
    mosaic = np.full((len(feats), H, W), np.nan, dtype="float32")
    for (r, c, h, w), block in zip(windows, parallel, strict=True):
        mosaic[:, r : r + h, c : c + w] = block
    assert _same(mosaic, read_block(_whole_grid_cube(refl, feats, **kw)))


@pytest.mark.parametrize("geographic", [False, True], ids=["projected", "geographic"])
def test_band_files_and_terrain_in_projected_and_geographic_crs(
    tmp_path: Path, geographic: bool
) -> None:
    rng = np.random.default_rng(11)
    if geographic:
        crs = "EPSG:4326"
        transform = Affine(0.0003, 0.0, 110.0, 0.0, -0.00025, 35.0)
        dem_tr = Affine(0.0002, 0.0, 109.999, 0.0, -0.0002, 35.001)
    else:
        crs = UTM
        transform = Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750240.0)
        dem_tr = Affine(25.0, 0.0, 489970.0, 0.0, -25.0, 3750270.0)
    files = {}
    for b in ("blue", "green", "red", "nir", "swir1", "swir2", "thermal"):
        arr = rng.uniform(0.01, 0.6, size=(H, W)).astype("float32")
        if b == "thermal":
            arr = rng.uniform(280.0, 310.0, size=(H, W)).astype("float32")
        arr[7, 8] = -9999.0
        files[b] = write_geotiff(
            tmp_path / f"{b}.tif", arr, crs=crs, transform=transform, nodata=-9999.0
        )
    refl = open_band_files(files, chunks=CHUNK)
    dem = open_aligned(
        _dem_file(tmp_path / "dem.tif", crs, dem_tr, (80, 90)),
        Grid.of(refl),
        chunks=CHUNK,
        what="DEM",
    )
    feats = ["elevation", "slope", "aspect", "red", "EVI", "greenness"]
    _check_all_windows(_whole_grid_cube(refl, feats, dem=dem), WindowSource(refl, feats, dem=dem))


def test_eager_inputs_and_a_covariate_only_scene() -> None:
    rng = np.random.default_rng(5)
    cov = make_da(rng.normal(size=(H, W)).astype("float32"))
    cov2 = make_da(rng.normal(size=(H, W)).astype("float32"))
    cov2[3, 4] = np.nan
    dem = make_da((1000 + rng.normal(0, 20, size=(H, W))).astype("float32"))
    feats = ["a", "x", "slope", "y", "b"]
    kw: dict[str, Any] = {"dem": dem, "covariates": {"a": cov, "b": cov2}}
    _check_all_windows(_whole_grid_cube(None, feats, **kw), WindowSource(None, feats, **kw))
    refl = make_da(rng.uniform(0.01, 0.5, size=(8, H, W)).astype("float32"), band=BANDS)
    feats2 = [*INDEX_NAMES, "elevation", "aspect", "thermal"]
    _check_all_windows(_whole_grid_cube(refl, feats2, dem=dem), WindowSource(refl, feats2, dem=dem))


def test_errors_name_the_problem() -> None:
    rng = np.random.default_rng(1)
    refl = make_da(rng.uniform(0.01, 0.5, size=(2, 10, 12)).astype("float32"), band=["red", "nir"])
    dem = make_da(np.ones((10, 12), dtype="float32"))
    with pytest.raises(ConfigError, match="need a DEM"):
        WindowSource(refl, ["slope"])
    with pytest.raises(ConfigError, match="need imagery"):
        WindowSource(None, ["NDVI"], covariates={"c": dem})
    with pytest.raises(InputError, match="needs band 'blue'"):
        WindowSource(refl, ["EVI"])
    with pytest.raises(ConfigError, match="no input provides 'soil'"):
        WindowSource(refl, ["red", "soil"])
    with pytest.raises(ConfigError, match="nothing to stack"):
        WindowSource(None, ["x"])
    source = WindowSource(refl, ["NDVI"], dem=dem)
    for bad in [(0, 0, 0, 3), (-1, 0, 2, 2), (9, 0, 2, 2), (0, 11, 1, 2)]:
        with pytest.raises(ValueError, match="window"):
            source.read(*bad)


@pytest.mark.parametrize("edges", ["nearest", "nan"])
@pytest.mark.parametrize("geographic", [False, True], ids=["projected", "geographic"])
def test_terrain_windows_equal_the_whole_grid(edges: Edges, geographic: bool) -> None:
    rng = np.random.default_rng(2)
    z = (500 + np.cumsum(rng.normal(0, 4, size=(23, 19)), axis=1)).astype("float32")
    z[6, 7] = np.nan
    transform = (
        Affine(0.0004, 0.0, 100.0, 0.0, -0.0003, 40.0)
        if geographic
        else Affine(10.0, 0.0, 0.0, 0.0, -12.5, 0.0)
    )
    crs = "EPSG:4326" if geographic else UTM
    dem = make_da(z, transform=transform, crs=crs)
    names = ["aspect", "elevation", "slope"]
    whole = stack_terrain(dem, names, crs=crs, transform=transform, edges=edges).values
    tw = TerrainWindows(names, z.shape, crs=crs, transform=transform, edges=edges)
    for r, c, h, w in [(0, 0, 23, 19), (0, 0, 4, 5), (20, 15, 3, 4), (5, 6, 3, 3), (22, 0, 1, 19)]:
        r0, c0, h0, w0 = tw.halo_window(r, c, h, w)
        got = tw.compute(z[r0 : r0 + h0, c0 : c0 + w0], r, c, h, w)
        assert _same(got, whole[:, r : r + h, c : c + w]), (r, c, h, w)
    assert TerrainWindows(["elevation"], z.shape, crs=crs, transform=transform).halo_window(
        0, 0, 4, 4
    ) == (0, 0, 4, 4)
    with pytest.raises(InputError, match="halo"):
        tw.compute(z[:4, :4], 0, 0, 4, 4)


def test_index_array_equals_stack_indices() -> None:
    rng = np.random.default_rng(9)
    refl = make_da(rng.uniform(0.0, 0.5, size=(8, 9, 11)).astype("float32"), band=BANDS)
    refl[3, 2, 2] = 0.0  # a zero denominator
    refl[4, 2, 2] = 0.0
    names = list(INDEX_NAMES)
    expected = stack_indices(refl, names).values
    assert _same(index_array(refl.values, BANDS, names), expected)


@pytest.fixture(scope="module")
def reprojected_dem(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rough geographic (EPSG:4326) DEM with a nodata hole, to be warped onto UTM."""
    rng = np.random.default_rng(4)
    z = (1000 + np.cumsum(rng.normal(0, 3, (260, 700)), axis=1)).astype("float32")
    z[100:110, 50:60] = -9999.0
    path = tmp_path_factory.mktemp("reprojected") / "dem4326.tif"
    write_geotiff(
        path,
        z,
        crs="EPSG:4326",
        transform=Affine(0.0003, 0.0, 110.995, 0.0, -0.0003, 33.975),
        nodata=-9999.0,
    )
    return path


@pytest.mark.parametrize(
    ("shape", "chunks"),
    [((45, 53), 16), ((45, 53), 512), ((150, 620), 128), ((150, 620), 512), ((140, 610), 700)],
    ids=["blocks-small", "one-chunk", "blocks", "blocks-512", "big-chunks"],
)
@pytest.mark.parametrize("resampling", ["bilinear", "nearest"])
def test_aligned_windows_equal_open_aligned(
    reprojected_dem: Path, shape: tuple[int, int], chunks: int, resampling: str
) -> None:
    # A reprojecting warp depends on how GDAL cuts it up; the direct reads must cut it
    # as the dask chunk reads of open_aligned do.
    grid = Grid("EPSG:32649", Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 3760000.0), *shape[::-1])
    lazy = open_aligned(reprojected_dem, grid, resampling=resampling, chunks=chunks)
    whole = read_block(lazy)
    assert np.isnan(whole).any() and np.isfinite(whole).mean() > 0.3
    h, w = shape
    windows = [
        (0, 0, h, w),
        (0, 0, 1, 1),
        (h - 1, w - 1, 1, 1),
        (0, 0, h, min(w, 513)),
        (3, w - 20, h - 3, 20),
        (h // 3, 0, 5, w),
        (1, 1, h - 2, w - 2),
        (h // 2, w // 2, h - h // 2, w - w // 2),
    ]
    windows += [(0, c, h, 3) for c in (126, 127, 510, 511) if c + 3 <= w]
    with AlignedRaster(reprojected_dem, grid, resampling=resampling, tile=chunks) as reader:
        assert reader.shape == shape
        for r, c, hh, ww in windows:
            assert _same(reader.read(r, c, hh, ww), whole[r : r + hh, c : c + ww]), (r, c, hh, ww)
        with ThreadPoolExecutor(3) as pool:
            wins = list(iter_windows(h, w, 37))
            blocks = list(pool.map(lambda win: reader.read(*win), wins))
        for (r, c, hh, ww), block in zip(wins, blocks, strict=True):
            assert _same(block, whole[r : r + hh, c : c + ww])
        with pytest.raises(ValueError, match="window"):
            reader.read(0, 0, h + 1, 1)


def test_aligned_windows_thin_grids_and_errors(tmp_path: Path, reprojected_dem: Path) -> None:
    for shape, chunks in [((1, 40), 16), ((40, 1), 16), ((2, 3), 1)]:
        grid = Grid("EPSG:32649", Affine(30.0, 0.0, 503000.0, 0.0, -30.0, 3755000.0), *shape[::-1])
        whole = read_block(open_aligned(reprojected_dem, grid, chunks=chunks))
        assert np.isfinite(whole).all()
        with AlignedRaster(reprojected_dem, grid, tile=chunks) as reader:
            assert _same(reader.read(0, 0, *shape), whole)
    grid = Grid("EPSG:32649", Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 3760000.0), 20, 20)
    with pytest.raises(InputError, match="does not exist"):
        AlignedRaster(tmp_path / "nope.tif", grid, what="DEM").read(0, 0, 2, 2)
    with pytest.raises(ValueError, match="resampling"):
        AlignedRaster(reprojected_dem, grid, resampling="fancy")


@pytest.mark.slow
def test_geohm_run_maps_equal_those_of_the_lazy_cube(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The maps of a run (window by window) equal those predicted from the lazy cube."""
    import rasterio
    import yaml
    from rasterio.warp import transform_bounds

    from geohm import pipeline
    from geohm.config import load_config
    from geohm.synth import make_demo

    paths = make_demo(tmp_path / "data", size=96)
    data = paths.scene.parent
    with rasterio.open(paths.dem) as ref:
        left, bottom, right, top = transform_bounds(ref.crs, "EPSG:4326", *ref.bounds)
    # A geographic pH raster (reprojected when aligned) and a categorical covariate.
    ph = np.linspace(4.5, 8.5, 60 * 70, dtype="float32").reshape(60, 70)
    write_geotiff(
        data / "ph.tif",
        ph,
        crs="EPSG:4326",
        transform=Affine(
            (right - left) / 60, 0.0, left - 0.001, 0.0, -(top - bottom) / 50, top + 0.001
        ),
        nodata=-1.0,
    )
    # The land cover classes on a coarser, shifted grid: nearest differs from bilinear.
    with rasterio.open(data / "truth" / "landcover.tif") as src:
        classes, t = src.read(1)[::2, ::2], src.transform
    write_geotiff(
        data / "landcover.tif",
        classes,
        crs=UTM,
        transform=Affine(t.a * 2, 0.0, t.c - 17.0, 0.0, t.e * 2, t.f + 11.0),
        nodata=0,
    )
    cfg = yaml.safe_load(paths.scene.read_text())
    cfg["covariates"]["landcover"] = {"path": "landcover.tif", "categorical": True}
    cfg["risk"]["ph"] = "ph.tif"
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 20}}
    cfg["features"] = [
        "red",
        "NDVI",
        "wetness",
        "elevation",
        "slope",
        "aspect",
        "dist_source",
        "landcover",
    ]
    cfg["output"].update({"tile": 40, "workers": 2, "quicklooks": False})
    from geohm.pipeline import outputs

    real_layers, real_predict = outputs.window_source, outputs.predict_map
    used: dict[str, Any] = {}

    def lazy_cube(inputs: Any, features: list[str], risk: Any = None, **kw: Any) -> Any:
        # The whole-scene lazy cube and the risk rasters appended, as before.
        if risk is None:  # the sample points: the window source itself
            return real_layers(inputs, features, risk, **kw)
        cube = _whole_grid_cube(
            inputs.reflectance, features, dem=inputs.dem, covariates=inputs.covariates
        )
        layers = [cube]
        for name, p, resampling, what in pipeline._risk_rasters(risk) if risk else []:
            da = open_aligned(p, inputs.grid, resampling=resampling, chunks=512, what=what)
            da = da.assign_coords(x=cube["x"], y=cube["y"]).expand_dims(feature=[name])
            layers.append(da.drop_vars([c for c in da.coords if c not in ("x", "y", "feature")]))
        used["cube"] = xr.concat(layers, dim="feature", join="override")
        used["source"] = real_layers(inputs, features, risk, **kw)
        return used["source"]

    def predict(source: Any, *args: Any, **kw: Any) -> Any:
        assert isinstance(source, WindowSource)
        return real_predict(used["cube"], *args, **kw)

    maps: dict[str, dict[str, np.ndarray]] = {}
    for path in ("windows", "lazy"):
        cfg["output"]["dir"] = str(tmp_path / path)
        (data / f"{path}.yaml").write_text(yaml.safe_dump(cfg))
        if path == "lazy":
            monkeypatch.setattr(outputs, "window_source", lazy_cube)
            monkeypatch.setattr(outputs, "predict_map", predict)
        out = pipeline.run_scene(load_config(data / f"{path}.yaml")).output_dir
        maps[path] = {}
        for f in sorted(out.glob("*.tif")):
            with rasterio.open(f) as src:
                maps[path][f.name] = src.read()
    assert used["cube"].sizes["feature"] == 9  # the features and the pH raster
    # The pipeline's window source (readers warping as open_inputs does) equals the cube.
    with used["source"] as source:
        h, w = source.shape
        for r, c, hh, ww in [(0, 0, h, w), (0, 0, 40, 40), (40, 80, 40, 16)]:
            assert _same(
                source.read(r, c, hh, ww), read_block(used["cube"][:, r : r + hh, c : c + ww])
            )
    assert set(maps["windows"]) == set(maps["lazy"]) and "Cu_risk.tif" in maps["lazy"]
    for name, arr in maps["lazy"].items():
        assert arr.tobytes() == maps["windows"][name].tobytes(), name


def test_the_lazy_cube_is_the_window_source_chunk_by_chunk(landsat_case) -> None:
    # build_cube's lazy cube, the sample points and the map windows share one code path;
    # its numbers equal the whole-grid xarray functions'.
    refl = landsat_case["refl"]
    bands = [str(b) for b in refl["band"].values]
    feats = available_features(bands, has_dem=True, covariates=["c"])
    kw = {"dem": landsat_case["dem"], "covariates": {"c": landsat_case["cov"]}}
    lazy = stack_features(refl, feats, **kw)
    assert lazy.chunks is not None and lazy.dtype == np.float32
    assert list(lazy["feature"].values) == feats
    assert lazy.rio.crs == refl.rio.crs
    assert _same(read_block(lazy), read_block(_whole_grid_cube(refl, feats, **kw)))
    assert _same(read_block(lazy[:, 5:17, 3:40]), read_block(lazy)[:, 5:17, 3:40])
    # Integer, stepped, reversed and empty indexing reach the source's reads through
    # dask's getter (a point, a row, every other pixel): numpy's results, shapes included.
    whole = read_block(lazy)
    for key in [
        (slice(None), 3, 7),
        (2, slice(None), -1),
        (slice(None), slice(None, None, 3), slice(4, None, 2)),
        (slice(None), slice(None, None, -1), 5),
        (slice(None), slice(6, 6), slice(None)),
    ]:
        got = lazy[key].values
        assert got.shape == whole[key].shape and _same(got, whole[key]), key
    assert _same(lazy.isel(x=3, y=4).values, whole[:, 4, 3])
    dem = open_aligned(landsat_case["paths"]["dem"], landsat_case["grid"])
    assert _same(dem.isel(x=2).values, read_block(dem)[:, 2])

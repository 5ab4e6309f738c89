"""Cube stacking, sampling at points, tile prediction (tiny in-memory rasters)."""

from __future__ import annotations

import dask.array as da
import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point
from sklearn.linear_model import LinearRegression

from geohm.cube import available_features, resolve_features, stack_features
from geohm.errors import ConfigError, GridError, NoDataError, SampleError
from geohm.evaluate import cross_validate, holdout_split, metrics
from geohm.predict import TargetModel, iter_windows, predict_block, predict_map
from geohm.sampling import sample_cube

from .conftest import CRS, make_da


def test_available_and_resolved_features() -> None:
    feats = available_features(
        ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"],
        has_dem=True,
        covariates=["dist"],
    )
    assert feats[:6] == ["blue", "green", "red", "nir", "swir1", "swir2"]
    assert (
        "NDVI" in feats
        and "wetness" in feats
        and feats[-4:] == ["elevation", "slope", "aspect", "dist"]
    )
    assert "coastal" not in feats
    only_rn = available_features(["red", "nir"], has_dem=False)
    assert only_rn == ["red", "nir", "NDVI", "DVI"]
    assert resolve_features("auto", feats) == feats
    assert resolve_features(["NDVI", "slope"], feats) == ["NDVI", "slope"]
    with pytest.raises(ConfigError, match="'EVI' cannot be computed"):
        resolve_features(["EVI"], only_rn)


def test_stack_features_values_and_grid(tiny_reflectance, tiny_dem) -> None:
    dist = make_da(np.full((24, 32), 7.0, dtype="float32"))
    feats = ["red", "nir", "NDVI", "elevation", "slope", "dist"]
    cube = stack_features(tiny_reflectance, feats, dem=tiny_dem, covariates={"dist": dist})
    assert cube.dims == ("feature", "y", "x") and cube.dtype == np.float32
    assert list(cube["feature"].values) == feats
    assert cube.rio.crs.to_epsg() == 32649
    r = tiny_reflectance.sel(band="red").values
    n = tiny_reflectance.sel(band="nir").values
    np.testing.assert_allclose(cube.sel(feature="NDVI").values, (n - r) / (n + r), rtol=1e-5)
    np.testing.assert_array_equal(cube.sel(feature="dist").values, 7.0)
    np.testing.assert_allclose(cube.sel(feature="elevation").values, tiny_dem.values)
    wrong = make_da(np.zeros((10, 10), dtype="float32"))
    with pytest.raises(GridError, match="covariate 'bad'"):
        stack_features(tiny_reflectance, ["red", "bad"], covariates={"bad": wrong})
    with pytest.raises(ConfigError, match="need a DEM"):
        stack_features(tiny_reflectance, ["slope"])


def test_stack_is_lazy_with_dask(tiny_reflectance, tiny_dem) -> None:
    lazy = tiny_reflectance.chunk({"x": 16, "y": 16})
    dem = tiny_dem.chunk({"x": 16, "y": 16})
    cube = stack_features(lazy, ["NDVI", "slope", "blue"], dem=dem)
    assert isinstance(cube.data, da.Array)
    eager = stack_features(tiny_reflectance, ["NDVI", "slope", "blue"], dem=tiny_dem)
    np.testing.assert_allclose(cube.values, eager.values, equal_nan=True)


def _points(xy, crs=CRS, **cols):
    return gpd.GeoDataFrame(cols, geometry=[Point(x, y) for x, y in xy], crs=crs)


def test_sample_pixel_and_window_mean(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance, ["red", "nir"])
    # pixel (row 5, col 7) centre: x = 490000 + 7.5*30, y = 3750000 - 5.5*30
    x, y = 490000 + 7.5 * 30, 3750000 - 5.5 * 30
    pts = _points(
        [(x, y), (x + 10, y - 10), (480000, y), (490000 + 4.5 * 30, 3750000 - 3.5 * 30)],
        id=["a", "b", "out", "nan"],
        Cu=[10.0, 20.0, 30.0, 40.0],
    )
    t = sample_cube(cube, pts, targets=["Cu"], id_column="id")
    assert list(t.X.index) == ["a", "b"]
    red = tiny_reflectance.sel(band="red").values
    assert t.X.loc["a", "red"] == pytest.approx(red[5, 7])
    assert t.X.loc["b", "red"] == pytest.approx(red[5, 7])  # same pixel, 10 m off centre
    assert [(d.id, d.reason.split(" (")[0]) for d in t.dropped] == [
        ("out", "outside the scene"),
        ("nan", "nodata pixel"),
    ]
    assert "red" in t.dropped[1].reason  # says which feature is missing
    w3 = sample_cube(cube, pts.iloc[:1], targets=["Cu"], window=3)
    assert w3.X.iloc[0]["red"] == pytest.approx(red[4:7, 6:9].mean())
    # points in another CRS are reprojected
    pts4326 = pts.iloc[:1].to_crs("EPSG:4326")
    assert sample_cube(cube, pts4326, targets=["Cu"]).X.iloc[0]["red"] == pytest.approx(red[5, 7])


def test_sample_errors(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance, ["red"])
    pts = _points([(480000, 3750000)], Cu=[1.0])
    with pytest.raises(SampleError, match="outside the scene"):
        sample_cube(cube, pts, targets=["Cu"])
    with pytest.raises(SampleError, match="no column 'Pb'"):
        sample_cube(cube, pts, targets=["Pb"])
    reason = sample_cube(
        cube,
        _points(
            [(490000 + 4.5 * 30, 3750000 - 3.5 * 30), (490000 + 45, 3750000 - 45)], Cu=[1.0, 2.0]
        ),
        targets=["Cu"],
        mask_reason=lambda r, c: [
            "cloud" if (ri, ci) == (3, 4) else None for ri, ci in zip(r, c, strict=True)
        ],
    )
    assert reason.dropped[0].reason == "cloud pixel"


def test_predict_block_and_map_match_a_direct_prediction(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance.chunk({"x": 8, "y": 8}), ["red", "nir", "NDVI"])
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 0.5, size=(50, 2))
    model = LinearRegression().fit(X, 100 * X[:, 0] + 50 * X[:, 1] + 3)
    models = {"Cu": TargetModel(model, ["nir", "red"])}

    class Sink:
        def __init__(self) -> None:
            self.arr = np.full((24, 32), -1.0)

        def write(self, r, c, data):
            self.arr[r : r + data.shape[0], c : c + data.shape[1]] = data

    sinks = {"Cu": Sink()}
    calls = []
    stats = predict_map(cube, models, sinks, tile=10, progress=lambda d, n: calls.append((d, n)))
    nir = tiny_reflectance.sel(band="nir").values
    red = tiny_reflectance.sel(band="red").values
    expected = 100 * nir + 50 * red + 3
    got = sinks["Cu"].arr
    np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)
    assert np.isnan(got[3, 4]) and np.isnan(got[10, 20])
    assert calls[-1] == (12, 12) and len(calls) == 12  # 3 x 4 windows of 10
    s = stats["Cu"].as_dict()
    assert s["pixels"] == 24 * 32 - 2
    assert s["mean"] == pytest.approx(np.nanmean(expected), rel=1e-5)
    assert s["std"] == pytest.approx(np.nanstd(expected), rel=1e-4)
    # identical result whatever the tile size
    sinks2 = {"Cu": Sink()}
    predict_map(cube, models, sinks2, tile=7)
    np.testing.assert_array_equal(sinks2["Cu"].arr, got)
    empty = predict_block(np.full((3, 4, 4), np.nan, "float32"), ["red", "nir", "NDVI"], models)
    assert np.isnan(empty["Cu"]).all()


def test_all_nodata_scene_raises(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance * np.nan, ["red"])
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    written = []

    class Sink:
        def write(self, r, c, data):
            written.append(np.isnan(data).all())

    with pytest.raises(NoDataError, match="no pixel"):
        predict_map(cube, {"Cu": TargetModel(model, ["red"])}, {"Cu": Sink()}, tile=16)
    assert written == [True, True, True, True]


def test_windows_cover_the_grid_once() -> None:
    cover = np.zeros((37, 53), int)
    for r, c, h, w in iter_windows(37, 53, 16):
        cover[r : r + h, c : c + w] += 1
    assert (cover == 1).all()


def test_metrics_hand_values_and_cv() -> None:
    m = metrics(np.array([10.0, 20.0, 40.0]), np.array([12.0, 18.0, 40.0]))
    assert m["rmse"] == pytest.approx(np.sqrt(8 / 3))
    assert m["mae"] == pytest.approx(4 / 3)
    assert m["mre"] == pytest.approx((0.2 + 0.1 + 0.0) / 3)
    ss_tot = np.sum((np.array([10, 20, 40]) - 70 / 3) ** 2)
    assert m["r2"] == pytest.approx(1 - 8 / ss_tot)
    tr, te = holdout_split(10, test_fraction=0.2, seed=0)
    assert len(te) == 2 and len(tr) == 8 and not set(tr) & set(te)
    assert holdout_split(10, test_fraction=0.2, seed=0)[1].tolist() == te.tolist()
    assert len(holdout_split(10, test_fraction=0.0, seed=0)[1]) == 0
    X = np.arange(20, dtype=float)[:, None]
    cv = cross_validate(LinearRegression(), X, 3 * X[:, 0] + 1, folds=5, seed=0)
    assert cv["rmse"] == pytest.approx(0.0, abs=1e-9) and cv["folds"] == 5
    assert len(cv["fold_rmse"]) == 5


def test_unused_features_do_not_mask_pixels() -> None:
    model = LinearRegression().fit(
        np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), [0.0, 2.0, 0.0]
    )  # y = 2 * a; b carries no weight
    block = np.array([[[1.0, 2.0]], [[np.nan, 5.0]]])  # feature b is NaN at pixel 0
    out = predict_block(block, ["a", "b"], {"Cu": TargetModel(model, ["a", "b"], required=["a"])})[
        "Cu"
    ]
    np.testing.assert_allclose(out, [[2.0, 4.0]], atol=1e-9)
    strict = predict_block(block, ["a", "b"], {"Cu": TargetModel(model, ["a", "b"])})["Cu"]
    assert np.isnan(strict[0, 0]) and strict[0, 1] == pytest.approx(4.0)


def test_duplicate_sample_ids_are_a_sample_error(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance, ["red"])
    x, y = 490000 + 7.5 * 30, 3750000 - 5.5 * 30
    pts = _points([(x, y), (x + 30, y)], id=["a", "a"], Cu=[1.0, 2.0])
    with pytest.raises(SampleError, match="not unique"):
        sample_cube(cube, pts, targets=["Cu"], id_column="id")


def test_parallel_prediction_leaves_the_dask_config_alone(tiny_reflectance) -> None:
    import dask

    cube = stack_features(tiny_reflectance.chunk({"x": 8, "y": 8}), ["red"])
    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])

    class Sink:
        def write(self, r, c, data):
            pass

    before = dask.config.get("scheduler", None)
    predict_map(cube, {"Cu": TargetModel(model, ["red"])}, {"Cu": Sink()}, tile=8, workers=3)
    assert dask.config.get("scheduler", None) == before


def test_window_mean_at_the_scene_edge_uses_only_pixels_inside(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance, ["red"])
    red = tiny_reflectance.sel(band="red").values
    pts = _points([(490000 + 15, 3750000 - 15)], Cu=[1.0])  # pixel (0, 0)
    t = sample_cube(cube, pts, targets=["Cu"], window=3)
    assert t.X.iloc[0]["red"] == pytest.approx(red[0:2, 0:2].mean())

"""The synthetic two-year demo: determinism, layout, plausibility."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import yaml

from geohm.io.landsat import BAND_NAMES, open_landsat, open_qa, qa_reasons, read_mtl
from geohm.io.points import read_points
from geohm.synth import (
    LANDCOVER_CLASSES,
    SOURCE_PRODUCT_ID,
    TARGET_PRODUCT_ID,
    demo_config_text,
    make_demo,
    simulate,
)

SIZE = 128


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_demo(tmp_path_factory.mktemp("demo"), seed=0, size=SIZE)


def _arrays(world, prefix=""):
    """Every numpy array in a simulate() result, flattened to {name: array}."""
    out = {}
    for k, v in world.items():
        if isinstance(v, np.ndarray):
            out[prefix + k] = v
        elif isinstance(v, dict):
            out.update(_arrays(v, prefix + k + "."))
        elif isinstance(v, list) and v and isinstance(v[0], str):
            out[prefix + k] = np.array(v)
    return out


def test_simulate_is_deterministic():
    a, b = _arrays(simulate(seed=3, size=96)), _arrays(simulate(seed=3, size=96))
    assert a.keys() == b.keys()
    assert len(a) > 30
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].tobytes() == b[k].tobytes(), k
    c = _arrays(simulate(seed=4, size=96))
    for k in ("dem", "target_Cu", "scene_target.sr.nir", "scene_target.qa", "samples_target.x"):
        assert not np.array_equal(a[k], c[k]), k


def test_make_demo_is_deterministic(tmp_path, demo):
    again = make_demo(tmp_path / "again", seed=0, size=SIZE)
    for name in (
        "dem.tif",
        "covariates/dist_source.tif",
        "truth/target_Cu.tif",
        f"target/{TARGET_PRODUCT_ID}/{TARGET_PRODUCT_ID}_SR_B5.TIF",
        f"target/{TARGET_PRODUCT_ID}/{TARGET_PRODUCT_ID}_QA_PIXEL.TIF",
    ):
        with rasterio.open(demo.root / name) as x, rasterio.open(again.root / name) as y:
            assert np.array_equal(x.read(), y.read()), name
    pa, pb = read_points(demo.samples_target), read_points(again.samples_target)
    assert pa.equals(pb)


def test_files_and_sizes(demo):
    root = demo.root
    for p in (
        demo.dem,
        demo.dist_source,
        demo.samples_source,
        demo.samples_target,
        demo.scene,
        demo.info,
        *demo.truth.values(),
    ):
        assert p.is_file(), p
    assert set(demo.truth) == {
        "source_Cu",
        "source_Pb",
        "target_Cu",
        "target_Pb",
        "landcover",
        "landcover_source",
    }
    assert demo.source_landsat == root / "source" / SOURCE_PRODUCT_ID
    assert demo.target_landsat == root / "target" / TARGET_PRODUCT_ID
    for folder, pid in (
        (demo.source_landsat, SOURCE_PRODUCT_ID),
        (demo.target_landsat, TARGET_PRODUCT_ID),
    ):
        names = {p.name for p in folder.iterdir()}
        expected = {f"{pid}_SR_B{n}.TIF" for n in range(1, 8)}
        expected |= {f"{pid}_ST_B10.TIF", f"{pid}_QA_PIXEL.TIF", f"{pid}_MTL.txt"}
        assert names == expected
    with rasterio.open(demo.dem) as ds:
        assert (ds.width, ds.height) == (SIZE, SIZE)
        assert ds.crs.to_epsg() == 32649
        assert ds.res == (30.0, 30.0)
        assert (ds.bounds.left, ds.bounds.bottom) == (490000.0, 3750000.0)
        assert ds.dtypes[0] == "float32"
        dem = ds.read(1)
    assert 900 < dem.min() and dem.max() < 2000 and dem.max() - dem.min() > 700
    with rasterio.open(demo.target_landsat / f"{TARGET_PRODUCT_ID}_SR_B4.TIF") as ds:
        assert ds.dtypes[0] == "uint16" and ds.nodata == 0
    assert not list(root.rglob(".*"))  # no temporary files left


def test_mtl_reads_back(demo):
    mtl = read_mtl(demo.target_landsat / f"{TARGET_PRODUCT_ID}_MTL.txt")
    assert mtl["PRODUCT_CONTENTS"]["PROCESSING_LEVEL"] == "L2SP"
    assert mtl["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"] == TARGET_PRODUCT_ID
    assert mtl["IMAGE_ATTRIBUTES"]["DATE_ACQUIRED"] == "2019-11-15"
    assert mtl["PROJECTION_ATTRIBUTES"]["UTM_ZONE"] == "49"
    assert float(mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]["REFLECTANCE_MULT_BAND_1"]) == 2.75e-5
    src = read_mtl(demo.source_landsat / f"{SOURCE_PRODUCT_ID}_MTL.txt")
    assert src["IMAGE_ATTRIBUTES"]["DATE_ACQUIRED"] == "2017-12-08"


def test_scenes_read_and_look_like_landsat(demo):
    tgt = open_landsat(demo.target_landsat)
    assert list(tgt.band.values) == list(BAND_NAMES)
    v = tgt.values
    valid = np.isfinite(v).all(axis=0)
    assert 0.9 < valid.mean() < 0.995  # a few clouds, shadows, fill, water
    refl = v[:7, valid]
    assert np.nanmin(refl) > -0.05 and np.nanmax(refl) < 1.0
    red, nir = v[3, valid], v[4, valid]
    ndvi = (nir - red) / (nir + red)
    assert np.percentile(ndvi, 90) > 0.6 and np.percentile(ndvi, 5) < 0.35
    thermal = v[7, valid]
    assert 265 < thermal.min() and thermal.max() < 305
    qa = open_qa(demo.target_landsat).values
    assert (qa == 1).any() and (qa & (1 << 3)).any() and (qa & (1 << 4)).any()
    # The sensor changed between the years.
    src = open_landsat(demo.source_landsat).values
    both = valid & np.isfinite(src).all(axis=0)
    assert np.median(v[1, both]) > np.median(src[1, both])  # blue: gain and offset > 0


def test_truth_is_plausible(demo):
    vals = {}
    for k in ("source_Cu", "source_Pb", "target_Cu", "target_Pb"):
        with rasterio.open(demo.truth[k]) as ds:
            assert ds.tags(1).get("units") == "mg/kg" or ds.units[0] == "mg/kg"
            vals[k] = ds.read(1)
    for year in ("source", "target"):
        cu, pb = vals[f"{year}_Cu"], vals[f"{year}_Pb"]
        assert 15 < np.median(cu) < 45 and 5 < cu.min() and 90 < cu.max() < 300
        assert 15 < np.median(pb) < 35 and 5 < pb.min() and 40 < pb.max() < 120
        assert np.corrcoef(cu.ravel(), pb.ravel())[0, 1] > 0.5
    # More mining and a new slag heap: the target year is more contaminated.
    assert vals["target_Cu"].mean() > vals["source_Cu"].mean()
    with rasterio.open(demo.truth["landcover"]) as ds:
        lc = ds.read(1)
    with rasterio.open(demo.truth["landcover_source"]) as ds:
        lc_src = ds.read(1)
    assert set(np.unique(lc)) == set(LANDCOVER_CLASSES)
    assert 9 not in np.unique(lc_src)
    assert vals["target_Cu"][lc == 9].mean() > 1.5 * vals["source_Cu"][lc == 9].mean()


def test_samples(demo):
    src, tgt = read_points(demo.samples_source), read_points(demo.samples_target)
    assert len(src) == 44 and len(tgt) == 43
    assert src.crs.to_epsg() == 4326 and tgt.crs.to_epsg() == 4326
    assert list(src.columns) == ["id", "Cu", "Pb", "geometry"]
    assert src["id"].iloc[0] == "S17-01" and tgt["id"].iloc[-1] == "S19-43"
    assert tgt["id"].is_unique
    assert (src["Cu"] > 5).all() and (tgt["Pb"] > 5).all()
    # The two deliberately unusable target points: one under a cloud, one outside.
    assert sorted(demo.unusable_target_ids.values()) == ["cloud", "outside"]
    qa = open_qa(demo.target_landsat)
    pts = tgt.to_crs(qa.rio.crs)
    cols, rows = ~qa.rio.transform() * (pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
    inside = (rows >= 0) & (rows < SIZE) & (cols >= 0) & (cols < SIZE)
    values = np.full(len(tgt), np.nan)
    values[inside] = qa.values[rows[inside], cols[inside]]
    reasons = qa_reasons(values)
    why = {
        i: ("outside" if not ok else r) for i, ok, r in zip(tgt["id"], inside, reasons, strict=True)
    }
    assert {k: v for k, v in why.items() if v} == demo.unusable_target_ids
    # Every source-year point is usable.
    src_pts = src.to_crs(qa.rio.crs)
    c, r = ~qa.rio.transform() * (src_pts.geometry.x.to_numpy(), src_pts.geometry.y.to_numpy())
    sqa = open_qa(demo.source_landsat).values[np.floor(r).astype(int), np.floor(c).astype(int)]
    assert qa_reasons(sqa) == [None] * 44


def test_covariate_on_another_grid(demo):
    with rasterio.open(demo.dist_source) as ds:
        assert ds.crs.to_epsg() == 32649
        assert ds.res == (60.0, 60.0)
        assert (ds.bounds.left - 490000.0) % 30.0 != 0.0
        assert ds.nodata == -9999.0
        d = ds.read(1, masked=True)
        assert d.mask.any() and not d.mask.all()
        assert d.min() == pytest.approx(0.0, abs=45.0) and d.max() > 1000.0
        assert ds.bounds.left < 490000.0 and ds.bounds.right > 490000.0 + 30.0 * SIZE


def test_scene_yaml(demo):
    text = demo.scene.read_text()
    assert text == demo_config_text("", "out")
    cfg = yaml.safe_load(text)
    assert cfg["landsat"] == f"target/{TARGET_PRODUCT_ID}"
    assert cfg["source"]["landsat"] == f"source/{SOURCE_PRODUCT_ID}"
    assert cfg["samples"] == {
        "path": "samples_target.gpkg",
        "id": "id",
        "targets": ["Cu", "Pb"],
        "window": 1,
    }
    assert cfg["covariates"] == {"dist_source": "covariates/dist_source.tif"}
    assert cfg["model"] == {
        "name": "auto",
        "params": {"candidates": ["rf", "rfsp", "ok", "ga-bp", "tr-ga-bp"]},
    }
    for key in ("landsat", "dem"):
        assert (demo.root / cfg[key]).exists()
    assert (demo.root / cfg["source"]["landsat"]).is_dir()
    other = yaml.safe_load(demo_config_text("../data dir/", "/tmp/out: x"))
    assert other["dem"] == "../data dir/dem.tif"
    assert other["output"]["dir"] == "/tmp/out: x"


def test_too_small():
    with pytest.raises(ValueError, match="at least 64"):
        simulate(size=32)

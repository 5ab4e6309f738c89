"""`geohm synth` + `geohm run` on a small synthetic case; every output opened and checked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml
from typer.testing import CliRunner

from geohm.cli import app

pytestmark = pytest.mark.slow
SIZE = 160


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, CliRunner]:
    root = tmp_path_factory.mktemp("e2e")
    runner = CliRunner()
    data = root / "data"
    res = runner.invoke(app, ["synth", "--out", str(data), "--seed", "0", "--size", str(SIZE)])
    assert res.exit_code == 0, res.output
    out = root / "out"
    res = runner.invoke(app, ["run", str(data / "scene.yaml"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return data, out, runner


def _run_variant(runner: CliRunner, data: Path, name: str, out: Path | None, **changes) -> Path:
    """Run the demo scene with some top-level keys replaced; return the output folder.

    The YAML is written beside the data (relative paths resolve against it). The variants
    test risk and prediction, not the model choice: they use the forest the demo used
    before it chose its model (``auto``), unless they name a model.
    """
    cfg = yaml.safe_load((data / "scene.yaml").read_text())
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 200}}
    # nor the area of applicability, zones and next samples (tested on the main run)
    cfg["output"]["applicability"] = False
    cfg.pop("zones"), cfg.pop("sampling_design")
    cfg.update(changes)
    f = data / f"{name}.yaml"
    f.write_text(yaml.safe_dump(cfg))
    args = ["run", str(f)] + (["--out", str(out)] if out is not None else [])
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    return out if out is not None else Path(cfg["output"]["dir"])


def test_outputs_exist_and_are_georeferenced(case) -> None:
    data, out, _ = case
    landsat = next((data / "target").iterdir())
    with rasterio.open(next(landsat.glob("*_SR_B4.TIF"))) as ref:
        crs, transform, shape = ref.crs, ref.transform, ref.shape
    for target in ("Cu", "Pb"):
        tif = out / f"{target}_concentration.tif"
        with rasterio.open(tif) as src:
            assert src.crs == crs
            assert src.transform == transform
            assert src.shape == shape
            assert src.nodata == -9999.0
            assert src.dtypes == ("float32",)
            assert src.descriptions == (f"{target} concentration",)
            assert src.units == ("mg/kg",)
            assert src.profile["tiled"] and src.compression is not None
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            arr = src.read(1, masked=True)
        assert 0.5 < arr.count() / arr.size < 1.0  # clouds/fill are nodata, the rest mapped
        assert arr.min() >= 0
        assert (out / f"{target}_concentration.qml").read_text().startswith("<!DOCTYPE qgis")
        assert (out / f"{target}_concentration.png").stat().st_size > 10_000
    # no temporary leftovers; the (empty) lock file stays: never unlinked (geohm.io.outdir)
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == [".geohm.lock"]


def test_maps_correlate_with_the_truth(case) -> None:
    data, out, _ = case
    for target in ("Cu", "Pb"):
        with rasterio.open(out / f"{target}_concentration.tif") as src:
            pred = src.read(1, masked=True)
        with rasterio.open(data / "truth" / f"target_{target}.tif") as src:
            truth = src.read(1, masked=True)
        ok = ~np.ma.getmaskarray(pred) & ~np.ma.getmaskarray(truth)
        p, t = pred.data[ok].astype(float), truth.data[ok].astype(float)
        r2 = 1 - np.sum((p - t) ** 2) / np.sum((t - t.mean()) ** 2)
        assert r2 > 0.3, f"{target}: map R2 against the truth {r2:.3f}"


def test_report_contents(case) -> None:
    data, out, _ = case
    rep = json.loads((out / "report.json").read_text())
    assert rep["name"] and rep["config"]["model"]["name"] == "auto"
    assert set(rep["versions"]) >= {"geohm", "gdal", "rasterio", "scikit-learn"}
    for target in ("Cu", "Pb"):
        t = rep["targets"][target]
        assert set(t["test"]) >= {"rmse", "mae", "r2", "mre", "n"}
        assert t["test"]["n"] >= 6 and t["test"]["rmse"] > 0
        assert t["cv"]["folds"] == 5 and t["cv"]["n"] == t["n_train"]
        sp = t["cv_spatial"]
        assert sp["folds"] == 5 and sp["n"] == t["n_train"] and sp["block_size_m"] > 0
        s = t["map_stats"]
        assert 0 <= s["min"] < s["mean"] < s["max"]
        assert "NDVI" in t["features"] and "slope" in t["features"]
        ranked = [r for r in t["auto"]["ranking"] if r["status"] == "scored"]
        assert ranked[0]["rank"] == 1 and t["auto"]["chosen"] == ranked[0]["candidate"]
        assert t["auto"]["folds"]["kind"] == "spatial blocks"
    dropped = {d["reason"].split(" ")[0] for d in rep["samples"]["dropped"]}
    assert "outside" in dropped  # the synthetic case puts a point outside the scene
    assert rep["samples"]["used"] + len(rep["samples"]["dropped"]) == rep["samples"]["total"]
    md = (out / "report.md").read_text()
    chosen = rep["targets"]["Cu"]["auto"]["chosen"]
    assert f"| Cu | auto: {chosen} | test |" in md and "Cu_concentration.png" in md
    assert "## Model choice (auto)" in md
    for name in rep["outputs"]:
        assert (out / name).exists(), name


def test_bad_config_exits_2_naming_the_key(case, tmp_path: Path) -> None:
    data, _, runner = case
    cfg = yaml.safe_load((data / "scene.yaml").read_text())
    cfg["modle"] = cfg.pop("model")
    bad = data / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert "unknown key 'modle'; did you mean 'model'?" in res.output
    assert "Traceback" not in res.output


def test_missing_file_exits_2_naming_the_file(case, tmp_path: Path) -> None:
    data, _, runner = case
    cfg = yaml.safe_load((data / "scene.yaml").read_text())
    cfg["dem"] = "no_such_dem.tif"
    bad = data / "missing.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["run", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "no_such_dem.tif" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["run", str(tmp_path / "nothere.yaml")])
    assert res.exit_code == 2 and "nothere.yaml" in res.output


def test_tr_ga_bp_scene_and_saved_model_prediction(case, tmp_path: Path) -> None:
    data, _, runner = case
    out = _run_variant(
        runner,
        data,
        "tr",
        tmp_path / "tr",
        model={
            "name": "tr-ga-bp",
            "params": {
                "source_params": {"population": 10, "generations": 10, "lm_iterations": 20},
                "retrain_epochs": 200,
            },
        },
        selection={"method": "correlation_vif", "force": ["aspect", "elevation"]},
    )
    rep = json.loads((out / "report.json").read_text())
    for target in ("Cu", "Pb"):
        t = rep["targets"][target]
        assert t["model"] == "tr-ga-bp"
        assert t["transfer"]["beta0"] in (0.0, 0.1, 1.0)
        assert {"aspect", "elevation"} <= set(t["features"])
        assert t["source"]["n"] >= 40 and t["selection"]
        with rasterio.open(out / f"{target}_concentration.tif") as src:
            arr = src.read(1, masked=True)
        assert arr.count() > 0.5 * arr.size and np.isfinite(arr.compressed()).all()
    assert rep["source_samples"]["used"] >= 40
    # the saved model maps the same scene again without training: identical maps
    pred = tmp_path / "pred"
    res = runner.invoke(
        app,
        [
            "predict",
            str(data / "scene.yaml"),
            "--model",
            str(out / "model.geohm"),
            "--out",
            str(pred),
        ],
    )
    assert res.exit_code == 0, res.output
    for target in ("Cu", "Pb"):
        with (
            rasterio.open(out / f"{target}_concentration.tif") as a,
            rasterio.open(pred / f"{target}_concentration.tif") as b,
        ):
            np.testing.assert_array_equal(a.read(1), b.read(1))
    prep = json.loads((pred / "report.json").read_text())
    assert prep["targets"]["Cu"]["validation"]["n"] == rep["samples"]["used"]
    res = runner.invoke(
        app, ["predict", str(data / "scene.yaml"), "--model", str(tmp_path / "none.geohm")]
    )
    assert res.exit_code == 2 and "none.geohm" in res.output


def test_risk_maps_follow_from_the_concentration_maps(case) -> None:
    _, out, _ = case
    rep = json.loads((out / "report.json").read_text())
    risk = rep["risk"]
    # GB 15618-2018, "other" land, pH 6.8 (6.5 < pH <= 7.5): Cu 100, Pb 120 mg/kg
    assert risk["screening_values_mg_kg"] == {"Cu": 100.0, "Pb": 120.0}
    with rasterio.open(out / "Cu_concentration.tif") as src:
        cu = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "Pb_concentration.tif") as src:
        pb = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "Cu_risk.tif") as src:
        assert src.dtypes == ("uint8",) and src.nodata == 255
        cu_cls = src.read(1)
        cmap = src.colormap(1)
        assert cmap[1][:3] != cmap[5][:3]
        assert src.tags()["CLASS_1"] == "unpolluted"
    with rasterio.open(out / "nemerow.tif") as src:
        pn = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "nemerow_class.tif") as src:
        pn_cls = src.read(1)
    p_cu, p_pb = cu / 100.0, pb / 120.0
    expected = np.sqrt((np.maximum(p_cu, p_pb) ** 2 + ((p_cu + p_pb) / 2) ** 2) / 2)
    np.testing.assert_allclose(pn, expected, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(cu_cls == 255, np.isnan(cu))
    # pixels outside a metal's area of applicability are their own class (254)
    cu_in = _read(out / "Cu_aoa.tif") == 1
    both_in = cu_in & (_read(out / "Pb_aoa.tif") == 1)
    ok = np.isfinite(p_cu)
    np.testing.assert_array_equal(cu_cls[ok & ~cu_in], 254)
    np.testing.assert_array_equal(pn_cls[ok & ~both_in], 254)
    # single-factor grading: <= 1 class 1, (1, 2] class 2, ...
    np.testing.assert_array_equal(
        cu_cls[ok & cu_in],
        np.digitize(p_cu[ok & cu_in], [1, 2, 3, 5], right=True).astype("uint8") + 1,
    )
    inside = ok & both_in
    np.testing.assert_array_equal(
        pn_cls[inside], np.digitize(pn[inside], [0.7, 1, 2, 3], right=True).astype("uint8") + 1
    )
    fractions = risk["layers"]["nemerow_class"]["class_area_fraction"]
    assert sum(fractions.values()) == pytest.approx(1.0)
    assert fractions["I safe"] == pytest.approx(np.mean(pn_cls[ok] == 1))
    assert (
        rep["targets"]["Cu"]["class_area_fraction"]
        == risk["layers"]["Cu_risk"]["class_area_fraction"]
    )
    assert (out / "nemerow_class.qml").read_text().count("paletteEntry") == 6  # + outside
    # GDAL category names (PAM sidecar), index = class code
    import xml.etree.ElementTree as ET

    cats = ET.parse(out / "nemerow_class.tif.aux.xml").getroot().findall(".//Category")
    assert [c.text or "" for c in cats][:6] == [
        "",
        "I safe",
        "II warning line",
        "III slightly polluted",
        "IV moderately polluted",
        "V heavily polluted",
    ]
    assert cats[255].text == "nodata"


def test_exceedance_probability_maps(case, tmp_path: Path) -> None:
    # the exceedance votes of a forest's trees (the demo's auto may choose a model whose
    # exceedance map is skipped, with a note)
    data, _, runner = case
    out = _run_variant(runner, data, "votes", tmp_path / "votes")
    rep = json.loads((out / "report.json").read_text())
    with rasterio.open(out / "Cu_concentration.tif") as src:
        cu = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "Cu_exceedance.tif") as src:
        prob = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "Cu_exceedance_class.tif") as src:
        cls = src.read(1)
        assert src.tags()["CLASS_2"] == "likely exceeds (P >= 0.5)"
    ok = np.isfinite(prob)
    np.testing.assert_array_equal(ok, np.isfinite(cu))
    assert prob[ok].min() >= 0 and prob[ok].max() <= 1
    np.testing.assert_array_equal(cls[ok], np.where(prob[ok] >= 0.5, 2, 1))
    # the forest's mean is the map: where it is far above (below) 100 mg/kg, most trees agree
    assert np.all(prob[ok & (cu > 150)] > 0.5) and np.all(prob[ok & (cu < 50)] < 0.5)
    assert np.corrcoef(prob[ok], cu[ok])[0, 1] > 0.7
    frac = rep["risk"]["layers"]["Cu_exceedance_class"]["class_area_fraction"]
    assert sum(frac.values()) == pytest.approx(1.0)


def test_area_by_concentration_table_matches_the_map(case) -> None:
    _, out, _ = case
    rep = json.loads((out / "report.json").read_text())
    with rasterio.open(out / "Cu_concentration.tif") as src:
        cu = src.read(1, masked=True).compressed().astype(float)
    bins = rep["targets"]["Cu"]["area_by_concentration"]
    assert bins[0]["from"] <= cu.min() and bins[-1]["to"] >= cu.max()
    assert sum(b["fraction"] for b in bins) == pytest.approx(1.0, abs=1e-9)
    for b in bins:
        exact = np.mean((cu >= b["from"]) & (cu < b["to"]))
        assert b["fraction"] == pytest.approx(exact, abs=0.005)
    assert "share of the mapped area by concentration" in (out / "report.md").read_text()


def test_contamination_classifier_scene(case, tmp_path: Path) -> None:
    data, _, runner = case
    out = _run_variant(
        runner,
        data,
        "cls",
        tmp_path / "cls",
        model={"name": "knn-classifier"},
        classification={"limits": {"Cu": 50, "Pb": 40}, "folds": 4, "repeats": 2},
    )
    rep = json.loads((out / "report.json").read_text())
    c = rep["classification"]
    cv = c["cv"]
    assert cv["n_splits"] == 8 and np.sum(cv["confusion_matrix"]) == 2 * cv["n"]
    assert 0 <= cv["f1"]["mean"] <= 1 and cv["f1"]["sd"] >= 0
    labels = c["labels"]
    assert labels["contaminated (1)"] + labels["not contaminated (0)"] == cv["n"]
    with rasterio.open(out / "contamination_probability.tif") as src:
        p = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "contamination_class.tif") as src:
        k = src.read(1)
    ok = np.isfinite(p)
    assert ok.mean() > 0.5 and p[ok].min() >= 0 and p[ok].max() <= 1
    np.testing.assert_array_equal(k[ok], np.where(p[ok] >= 0.5, 2, 1))
    assert (k[~ok] == 255).all()
    assert "Contamination classifier" in (out / "report.md").read_text()


def test_risk_with_a_ph_raster(case, tmp_path: Path) -> None:
    from geohm.io.rasters import write_geotiff

    data, _, runner = case
    landsat = next((data / "target").iterdir())
    with rasterio.open(next(landsat.glob("*_SR_B4.TIF"))) as ref:
        crs, transform, (h, w) = ref.crs, ref.transform, ref.shape
    ph = np.full((h, w), 8.0, dtype="float32")
    ph[:, : w // 2] = 5.0  # west half acid (Cu screening 50), east half alkaline (Cu 100)
    write_geotiff(tmp_path / "ph.tif", ph, crs=crs, transform=transform, nodata=-1.0)
    out = _run_variant(
        runner,
        data,
        "ph",
        tmp_path / "ph_out",
        risk={"standard": "gb15618", "ph": str(tmp_path / "ph.tif")},
    )
    with rasterio.open(out / "Cu_concentration.tif") as src:
        cu = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "Cu_risk.tif") as src:
        cls = src.read(1)
    s = np.where(np.arange(w) < w // 2, 50.0, 100.0)[None, :]
    p = cu / s
    ok = np.isfinite(p)
    np.testing.assert_array_equal(
        cls[ok], np.digitize(p[ok], [1, 2, 3, 5], right=True).astype("uint8") + 1
    )
    rep = json.loads((out / "report.json").read_text())
    assert rep["risk"]["ph"].endswith("ph.tif")


def test_parallel_windows_are_bit_identical(case, tmp_path: Path) -> None:
    data, _, runner = case
    results = {}
    for workers, tile in ((1, 64), (2, 96), (2, None)):
        out = _run_variant(
            runner,
            data,
            f"w{workers}_{tile}",
            None,  # output.dir (with the worker settings) comes from the config
            output={
                "dir": str(tmp_path / f"w{workers}_{tile}"),
                "workers": workers,
                "quicklooks": False,
                **({"tile": tile} if tile else {}),
            },
        )
        arrays = {}
        for name in ("Cu_concentration", "Pb_concentration", "nemerow", "Cu_exceedance"):
            with rasterio.open(out / f"{name}.tif") as src:
                arrays[name] = src.read(1)
        results[(workers, tile)] = arrays
    base = results[(1, 64)]
    for other in results.values():
        for name, arr in base.items():
            assert arr.tobytes() == other[name].tobytes(), name


def test_risk_with_a_land_use_raster(case, tmp_path: Path) -> None:
    from geohm.io.rasters import write_geotiff

    data, _, runner = case
    landsat = next((data / "target").iterdir())
    with rasterio.open(next(landsat.glob("*_SR_B4.TIF"))) as ref:
        crs, transform, (h, w) = ref.crs, ref.transform, ref.shape
    lu = np.full((h, w), 3, dtype="uint8")
    lu[: h // 2] = 1  # north half paddy
    lu[h // 2 :, : w // 4] = 9  # a code the config does not list -> no risk class there
    write_geotiff(tmp_path / "lu.tif", lu, crs=crs, transform=transform, nodata=0)
    out = _run_variant(
        runner,
        data,
        "lu",
        tmp_path / "lu_out",
        risk={
            "standard": "gb15618",
            "ph": 6.0,
            "land_use": {"path": str(tmp_path / "lu.tif"), "classes": {1: "paddy", 3: "other"}},
        },
    )
    with rasterio.open(out / "Pb_concentration.tif") as src:
        pb = src.read(1, masked=True).filled(np.nan)
    with rasterio.open(out / "Pb_risk.tif") as src:
        cls = src.read(1)
    # GB 15618, 5.5 < pH <= 6.5: Pb paddy 100, other 90 mg/kg
    s = np.where(lu == 1, 100.0, np.where(lu == 3, 90.0, np.nan))
    p = pb / s
    ok = np.isfinite(p)
    np.testing.assert_array_equal(
        cls[ok], np.digitize(p[ok], [1, 2, 3, 5], right=True).astype("uint8") + 1
    )
    assert (cls[(lu == 9)] == 255).all()


# --------------------------------------------------------------------------- issue 15


def _read(path: Path) -> np.ndarray:
    """Band 1 as float64, NaN at nodata (class rasters too)."""
    with rasterio.open(path) as src:
        arr = src.read(1).astype("float64")
        if src.nodata is not None:
            arr[arr == src.nodata] = np.nan
        return arr


def test_area_of_applicability_maps(case) -> None:
    """DI 0 at every sample pixel (the same feature path as training); the class follows the
    threshold; the report's share inside is the raster's; outside pixels are their own
    risk class."""
    data, out, _ = case
    import pandas as pd

    rep = json.loads((out / "report.json").read_text())
    with rasterio.open(out / "Cu_di.tif") as src:
        inv = ~src.transform

    used = pd.read_csv(out / "samples.csv")
    for target in ("Cu", "Pb"):
        t = rep["targets"][target]
        app_, amap = t["applicability"], t["aoa_map"]
        di = _read(out / f"{target}_di.tif")
        with rasterio.open(out / f"{target}_aoa.tif") as src:
            aoa = src.read(1)
        conc = _read(out / f"{target}_concentration.tif")
        mapped = np.isfinite(conc)
        np.testing.assert_array_equal(np.isfinite(di), mapped)
        np.testing.assert_array_equal(aoa[~mapped], 255)
        np.testing.assert_array_equal(aoa[mapped], (di[mapped] <= app_["threshold"]).astype(int))
        assert amap["share_inside"] == pytest.approx(float(np.mean(aoa[mapped] == 1)))
        assert amap["pixels_inside"] + amap["pixels_outside"] == int(mapped.sum())
        # every training sample's own pixel: distance 0 to itself in factor space
        train = used[used[f"{target}_split"] == "train"]
        cols, rows = (inv * (train["x"].to_numpy(), train["y"].to_numpy()))
        vals = di[rows.astype(int), cols.astype(int)]
        assert np.all(vals[np.isfinite(vals)] < 1e-5), vals
        assert t["importance"]["factors"][0]["rank"] == 1
        assert t["importance"]["folds_kind"] == "spatial blocks"
        risk = _read(out / f"{target}_risk.tif")
        outside = mapped & (aoa == 0)
        np.testing.assert_array_equal(risk[outside], 254)
        assert np.all(risk[mapped & (aoa == 1)] < 254)
    assert "## Where the map can be trusted" in (out / "report.md").read_text()


def test_zone_areas_and_their_bounds(case) -> None:
    import geopandas as gpd

    data, out, _ = case
    rep = json.loads((out / "report.json").read_text())
    zones = gpd.read_file(out / "zones.gpkg")
    assert list(zones["parcel_id"]) == [f"P{k}" for k in range(1, 10)]
    assert zones.crs == gpd.read_file(data / "parcels.gpkg").crs
    for metal, block in rep["zones"]["metals"].items():
        scene, rest = block["scene"], block["outside_zones"]
        rows = block["zones"]
        # the zones and the outside add up to the scene (ha, rounding only)
        for key in ("area_ha", "mapped_ha", "expected_ha", "certain_ha", "possible_ha"):
            total = sum(z[key] for z in rows) + rest[key]
            assert total == pytest.approx(scene[key], rel=1e-9, abs=1e-9), key
        for z in [*rows, scene]:
            # P >= 0.95 where the 90 % interval's lower bound is above S, <= 0.05 where its
            # upper bound is below: certain <= expected <= possible to within 5 % of them
            half = 0.05
            assert z["certain_ha"] * (1 - half) <= z["expected_ha"] + 1e-9
            slack = half * (z["mapped_ha"] - z["possible_ha"])
            assert z["expected_ha"] <= z["possible_ha"] + slack + 1e-9
        # the expected area is the sum of P(C > S) x pixel area over the exceedance map
        prob = _read(out / f"{metal}_exceedance.tif")
        expected = np.nansum(prob) * block["pixel_area_m2"] / 1e4
        assert scene["expected_ha"] == pytest.approx(expected, rel=1e-5)
        np.testing.assert_allclose(zones[f"{metal}_expected_ha"], [z["expected_ha"] for z in rows])
    cu = rep["zones"]["metals"]["Cu"]["scene"]
    assert cu["expected_ha"] > 0 and cu["possible_ha"] > cu["certain_ha"]


def test_next_samples_keep_their_spacing_on_mapped_pixels(case) -> None:
    import pandas as pd
    from scipy.spatial.distance import cdist

    data, out, _ = case
    rep = json.loads((out / "report.json").read_text())
    spacing = rep["next_samples"]["min_spacing_m"]
    pts = pd.read_csv(out / "next_samples.csv")
    used = pd.read_csv(out / "samples.csv")
    assert len(pts) > 0 and {"lon", "lat", "score", "closeness", "di"} <= set(pts.columns)
    for metal, p in pts.groupby("target"):
        conc = _read(out / f"{metal}_concentration.tif")
        assert np.all(np.isfinite(conc[p["row"], p["col"]]))
        assert list(p["rank"]) == list(range(1, len(p) + 1))
        assert np.all(np.diff(p["score"].to_numpy()) <= 0)
        xy = p[["x", "y"]].to_numpy()
        d = cdist(xy, xy) + np.eye(len(xy)) * 1e9
        assert d.min() >= spacing
        assert cdist(xy, used[["x", "y"]].to_numpy()).min() >= spacing

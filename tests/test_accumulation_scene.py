"""`geohm demo --accumulation`'s projection through a real scene run: every flux raster,
the projected concentrations, the years to exceedance and the report agree with the closed
form of the budget, pixel by pixel (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from geohm import load_job, make_demo, run_scene
from geohm.accumulation.projection import closed_form
from geohm.pipeline.accumulation import FLUX_TERMS

pytestmark = pytest.mark.slow
INPUTS = ("deposition", "fertiliser", "manure", "irrigation")


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, masked=True).filled(np.nan).astype("float64")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("acc")
    paths = make_demo(root / "data", seed=0, size=96, accumulation=True)
    cfg = yaml.safe_load(paths.scene.read_text())
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 30}}
    cfg.pop("zones"), cfg.pop("sampling_design")
    cfg["output"] = {"dir": "out", "quicklooks": False}
    scene = paths.root / "acc.yaml"
    scene.write_text(yaml.safe_dump(cfg))
    run_scene(load_job(scene, output_dir=root / "out"))
    return root / "out", cfg


def test_fluxes_balance_and_the_projection_is_the_closed_form(run) -> None:
    out, cfg = run
    acc = cfg["accumulation"]
    soil = acc["depth"] * acc["bulk_density"]  # kg/m2
    for metal in ("Cu", "Pb"):
        c0 = _read(out / f"{metal}_concentration.tif")
        flux = {t: _read(out / f"{metal}_flux_{t}.tif") for t in FLUX_TERMS}
        inputs = sum(flux[t] for t in INPUTS)
        calibrated = out / f"{metal}_flux_calibration.tif"
        if calibrated.exists():  # the two-survey correction: a further net input
            inputs = inputs + _read(calibrated)
        outputs = sum(flux[t] for t in FLUX_TERMS if t not in INPUTS)
        net = _read(out / f"{metal}_net_flux.tif")
        ok = np.isfinite(c0) & (c0 > 0)
        # mass conservation of today's budget (float32 rasters: their rounding only)
        np.testing.assert_allclose(net[ok], (inputs - outputs)[ok], rtol=1e-5, atol=1e-3)
        a, k = inputs / soil, outputs / (soil * c0)  # dC/dt = a - k C, outputs linear in C
        for year in acc["output_years"]:
            got = _read(out / f"{metal}_conc_y{year}.tif")
            want = np.maximum(closed_form(c0, a, k, year), 0.0)
            np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4, atol=1e-3)
        # the stack's plume: deposition peaks near it (a 40 m stack: within about 1 km)
        dep = flux["deposition"]
        assert np.nanmax(dep) > 3 * np.nanmedian(dep)
        with rasterio.open(out / f"{metal}_flux_deposition.tif") as src:
            r, c = np.unravel_index(np.nanargmax(dep), dep.shape)
            px, py = src.transform * (c + 0.5, r + 0.5)
        stack = np.genfromtxt(out.parent / "data" / "stacks.csv", delimiter=",", names=True)
        assert np.hypot(px - stack["x"], py - stack["y"]) < 1500


def test_years_to_exceed_and_the_report(run) -> None:
    out, cfg = run
    rep = json.loads((out / "report.json").read_text())["accumulation"]
    assert any("illustrative" in n for n in rep["notes"])
    # the two surveys (2017, 2019) were compared; the correction is kept only if it helps
    for metal in ("Cu", "Pb"):
        cal = rep["calibration"][metal]
        cv = cal["cv"]
        assert cal["kept"] == (cv["rmse_calibrated"] < cv["rmse_uncalibrated"])
        assert (out / f"{metal}_flux_calibration.tif").exists() == cal["kept"]
    for metal, block in rep["metals"].items():
        s = block["screening_mg_kg"]
        c0 = _read(out / f"{metal}_concentration.tif")
        y50 = _read(out / f"{metal}_conc_y50.tif")
        with rasterio.open(out / f"{metal}_years_to_exceed.tif") as src:
            cls = src.read(1)
            assert src.tags()["CLASS_0"] == "already above"
        mapped = np.isfinite(c0)
        np.testing.assert_array_equal(cls[~mapped], 255)
        np.testing.assert_array_equal(cls[mapped] == 0, c0[mapped] >= s)
        # bins 10, 20, 50 years -> classes 1-3; 4: not within 50 years
        assert set(np.unique(cls[mapped]).tolist()) <= {0, 1, 2, 3, 4}
        # a pixel projected above S in year 50 has reached S by then (or was above)
        assert np.all(cls[mapped & (y50 > s * 1.0001)] <= 3)
        assert block["share_above"]["now"] == pytest.approx(np.mean(c0[mapped] >= s))
        assert block["share_above"]["year_50"] == pytest.approx(
            np.mean(y50[mapped] > s), abs=0.01
        )


def test_a_given_deposition_raster_is_the_deposition_flux(run, tmp_path: Path) -> None:
    from geohm.io.rasters import write_geotiff

    out, cfg = run
    with rasterio.open(out / "Cu_concentration.tif") as src:
        crs, transform, shape = src.crs, src.transform, src.shape
    dep = np.full(shape, 40.0, dtype="float32")
    dep[:, : shape[1] // 2] = 10.0  # west half 10, east half 40 mg/m2/yr
    write_geotiff(tmp_path / "dep_cu.tif", dep, crs=crs, transform=transform, nodata=-1.0)
    variant = dict(cfg)
    variant["accumulation"] = {
        **cfg["accumulation"],
        "deposition": {"rasters": {"Cu": str(tmp_path / "dep_cu.tif")}},
        "calibrate": False,
    }
    scene = out.parent / "data" / "dep.yaml"
    scene.write_text(yaml.safe_dump(variant))
    run_scene(load_job(scene, output_dir=tmp_path / "out"))
    got = _read(tmp_path / "out" / "Cu_flux_deposition.tif")
    c0 = _read(tmp_path / "out" / "Cu_concentration.tif")
    ok = np.isfinite(c0)
    np.testing.assert_array_equal(got[ok], dep.astype("float64")[ok])
    assert np.nanmax(_read(tmp_path / "out" / "Pb_flux_deposition.tif")) == 0.0  # no raster


def test_practice_per_land_use_class_and_kd_from_ph(run, tmp_path: Path) -> None:
    """Agricultural inputs per land-use class (rates x contents) and Kd from a pH raster
    through log10 Kd = a + b pH, cell by cell, against the hand-computed fluxes."""
    from geohm.io.rasters import write_geotiff

    out, cfg = run
    with rasterio.open(out / "Cu_concentration.tif") as src:
        crs, transform, shape = src.crs, src.transform, src.shape
    west = np.zeros(shape, dtype=bool)
    west[:, : shape[1] // 2] = True
    land = np.where(west, 1, 2).astype("uint8")  # 1 paddy (west), 2 other (east)
    ph = np.where(west, 5.0, 7.0).astype("float32")
    write_geotiff(tmp_path / "land.tif", land, crs=crs, transform=transform, nodata=255)
    write_geotiff(tmp_path / "ph.tif", ph, crs=crs, transform=transform, nodata=-1.0)
    acc = {
        k: v
        for k, v in cfg["accumulation"].items()
        if k not in ("fertiliser", "manure", "irrigation_mm", "irrigation_mg_l", "crop_yield")
    }
    acc["calibrate"] = False
    acc["kd"] = {"Cu": {"intercept": 1.0, "ph": 0.5, "source": "test values"}, "Pb": 5000}
    acc["ph"] = str(tmp_path / "ph.tif")
    acc["agriculture"] = {
        "land_use": {"path": str(tmp_path / "land.tif"), "classes": {1: "paddy", 2: "other"}},
        "practice": {
            "paddy": {"fertiliser": 600, "manure": 2000, "irrigation": 400, "crop_yield": 6},
            "other": {},
        },
        "fertiliser_content": {"Cu": 20.0},
        "manure_content": {"Cu": 150.0, "Pb": 10.0},
        "irrigation_content": {"Cu": 0.01},
    }
    variant = {**cfg, "accumulation": acc}
    scene = out.parent / "data" / "practice.yaml"
    scene.write_text(yaml.safe_dump(variant))
    run_scene(load_job(scene, output_dir=tmp_path / "out"))
    got = {t: _read(tmp_path / "out" / f"Cu_flux_{t}.tif") for t in FLUX_TERMS}
    c0 = _read(tmp_path / "out" / "Cu_concentration.tif")
    ok = np.isfinite(c0)
    assert ok[west].any() and ok[~west].any()
    # 600 kg/ha x 20 mg/kg = 12 000 mg/ha = 1.2 mg/m2; 2000 x 150 = 30 mg/m2; 400 mm x 0.01 mg/L
    for term, paddy in (("fertiliser", 1.2), ("manure", 30.0), ("irrigation", 4.0)):
        np.testing.assert_allclose(got[term][ok & west], paddy, rtol=1e-6)
        assert np.all(got[term][ok & ~west] == 0.0)
    # crop: 6 t/ha = 0.6 kg/m2 x BCF x C on the paddy half, nothing elsewhere
    bcf = cfg["accumulation"]["bcf"]["Cu"]
    np.testing.assert_allclose(got["crop"][ok & west], 0.6 * bcf * c0[ok & west], rtol=1e-5)
    assert np.all(got["crop"][ok & ~west] == 0.0)
    # leaching: q C / (Kd + theta / rho_b), Kd = 10 ** (1 + 0.5 pH): 10^3.5 west, 10^4.5 east
    q, theta = acc["percolation_mm"], acc.get("theta", 0.3)
    rho = acc["bulk_density"] / 1000.0
    kd = np.where(west, 10**3.5, 10**4.5)
    np.testing.assert_allclose(
        got["leaching"][ok], (q * c0 / (kd + theta / rho))[ok], rtol=1e-5, atol=1e-9
    )
    pb_manure = _read(tmp_path / "out" / "Pb_flux_manure.tif")
    np.testing.assert_allclose(pb_manure[ok & west], 2.0, rtol=1e-6)  # 2000 x 10 mg/kg
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    notes = report["accumulation"]["notes"]
    assert any("Kd from log10 Kd = 1 + 0.5 pH (test values)" in n for n in notes)

"""The demo's GeoTIFFs and .qml styles open correctly in real QGIS (Debian's python3-qgis).

QGIS's Python bindings live in the system Python (``/usr/bin/python3``), not in the
project's, so ``tests/qgis_check.py`` runs there as a subprocess and reports JSON. Skipped
only when QGIS is not installed (``apt-get install -y --no-install-recommends python3-qgis``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
from typer.testing import CliRunner

from geohm.cli import app
from geohm.io.styles import write_qml_paletted

from .qgis_check import PALETTED_SUFFIXES, SYSTEM_PYTHON, qgis_unavailable, run_qgis_check

pytestmark = [pytest.mark.qgis, pytest.mark.timeout(180)]

CLASS_SUFFIXES = ("_risk", "_class")


@pytest.fixture(scope="module")
def qgis_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("qgis")
    why = qgis_unavailable(tmp)
    if why:
        pytest.skip(
            f"QGIS is not installed for {SYSTEM_PYTHON} ({why}); install it with "
            "`apt-get install -y --no-install-recommends python3-qgis`"
        )
    return tmp


@pytest.fixture(scope="module")
def demo_out(qgis_tmp: Path) -> Path:
    out = qgis_tmp / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--size", "128"])
    assert res.exit_code == 0, res.output
    return out


def run_check(outdir: Path, png: Path, tmp: Path) -> dict[str, Any]:
    return run_qgis_check(outdir, png, tmp)


def assert_layers_match_geotiffs(summary: dict[str, Any], outdir: Path) -> None:
    """QGIS's view of every GeoTIFF agrees with what rasterio reads from it."""
    tifs = sorted(outdir.glob("*.tif"))
    by_file = {layer["file"]: layer for layer in summary["layers"]}
    assert sorted(by_file) == [t.name for t in tifs]
    for tif in tifs:
        layer = by_file[tif.name]
        with rasterio.open(tif) as src:
            epsg, bounds, res = src.crs.to_epsg(), src.bounds, src.res
            size = [src.width, src.height]
        assert layer["valid"], tif.name
        assert layer["style_loaded"], tif.name
        assert layer["crs"] == f"EPSG:{epsg}", (tif.name, layer["crs"])
        assert layer["size"] == size, tif.name
        tol = 1e-6 * min(res)
        assert np.allclose(layer["extent"], list(bounds), rtol=0, atol=tol), (
            tif.name,
            layer["extent"],
            bounds,
        )
        is_class = tif.stem.endswith(PALETTED_SUFFIXES)
        renderer = "paletted" if is_class else "singlebandpseudocolor"
        assert layer["renderer"] == renderer, (tif.name, layer["renderer"])
        # the .qml beside the GeoTIFF is QGIS's default style (what "Add Raster Layer" shows)
        assert layer["default_style_renderer"] == renderer, tif.name
        if is_class:
            assert layer["classes"], tif.name
        else:
            ramp = layer["ramp"]
            assert ramp["interpolated"] and len(ramp["items"]) >= 2, tif.name
            assert ramp["min"] < ramp["max"], tif.name
            assert ramp["items"][0]["value"] == pytest.approx(ramp["min"], rel=1e-6)
            assert ramp["items"][-1]["value"] == pytest.approx(ramp["max"], rel=1e-6)


def assert_rendered(summary: dict[str, Any], png: Path, layers: list[str]) -> None:
    render = summary["render"]
    assert render["layers"] == layers
    assert png.stat().st_size > 1000
    assert render["gray_std"] > 5 and render["distinct_colours"] >= 8
    assert render["non_background_fraction"] > 0.5


def test_demo_outputs_open_styled_in_qgis(demo_out: Path, qgis_tmp: Path) -> None:
    png = qgis_tmp / "demo_render.png"
    summary = run_check(demo_out, png, qgis_tmp)
    assert_layers_match_geotiffs(summary, demo_out)
    names = {layer["file"] for layer in summary["layers"]}
    assert {"Cu_concentration.tif", "Pb_concentration.tif"} <= names
    stems = [n[:-4] for n in sorted(names)]
    classes = sorted((s for s in stems if s.endswith(CLASS_SUFFIXES)), key=_risk_first)
    if classes:  # the first class layer rendered over its metal's concentration
        metal = classes[0].rsplit("_", 1)[0]
        base = f"{metal}_concentration"
        expected = [classes[0], base] if base in stems else [classes[0], "Cu_concentration"]
    else:
        expected = ["Cu_concentration"]
    assert_rendered(summary, png, expected)
    # issue 15: the area of applicability, the zones and the next samples open styled
    assert {"Cu_di.tif", "Cu_aoa.tif"} <= names
    vectors = {v["file"]: v for v in summary["vectors"]}
    assert {"zones.gpkg", "next_samples.gpkg"} <= set(vectors)
    for v in vectors.values():
        assert v["renderer"] == v["default_style_renderer"], v["file"]
    assert vectors["zones.gpkg"]["renderer"] == "graduatedSymbol"
    n_points = len(pd.read_csv(demo_out / "next_samples.csv"))
    assert vectors["next_samples.gpkg"]["feature_count"] == n_points > 0
    assert len(summary["vector_render"]["labels"]["next_samples"]) == n_points


@pytest.mark.timeout(600)  # a demo run with the projection and its calibration
def test_accumulation_outputs_open_styled_in_qgis(qgis_tmp: Path) -> None:
    """Issue 16: the projection and carrying-capacity maps of the demo's accumulation scene
    open in QGIS with their styles: ramps for concentrations, fluxes, headroom and the
    steady state, the classes of the years to exceedance."""
    import yaml

    from geohm import load_job, make_demo, run_scene

    # the demo's accumulation scene, with a small forest for speed (the projection and its
    # styles are the same whatever the model)
    paths = make_demo(qgis_tmp / "acc_data", seed=0, size=64, accumulation=True)
    cfg = yaml.safe_load(paths.scene.read_text())
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 30}}
    for key in ("zones", "sampling_design"):
        cfg.pop(key, None)
    cfg["output"] = {"dir": "out", "quicklooks": False}
    scene = paths.root / "acc.yaml"
    scene.write_text(yaml.safe_dump(cfg))
    out = qgis_tmp / "accumulation"
    run_scene(load_job(scene, output_dir=out))
    png = qgis_tmp / "accumulation_render.png"
    summary = run_check(out, png, qgis_tmp)
    assert_layers_match_geotiffs(summary, out)
    by_file = {layer["file"]: layer for layer in summary["layers"]}
    for metal in ("Cu", "Pb"):
        for stem in (
            "conc_y10",
            "conc_y20",
            "conc_y50",
            "net_flux",
            "flux_deposition",
            "headroom",
            "steady_state",
        ):
            assert f"{metal}_{stem}.tif" in by_file, (metal, stem)
        years = by_file[f"{metal}_years_to_exceed.tif"]
        assert years["renderer"] == "paletted"
        labels = [c["label"] for c in years["classes"]]
        assert labels[0] == "already above" and labels[-1] == "not within 50 years"


def test_series_warning_layer_opens_styled_in_qgis(qgis_tmp: Path) -> None:
    """Issue 17: series_warning.gpkg opens with its style: wells coloured by warning level
    (categorized: low, medium, high) and labelled with their site id."""
    import yaml

    from geohm import run_series

    root = Path(__file__).resolve().parents[1]
    cfg = yaml.safe_load((root / "scenes" / "series_tull.yaml").read_text())
    cfg["lstm"] = {"hidden": 8, "members": 2, "epochs": 3, "batch": 64}  # the style, not skill
    cfg["validation"] = {"origins": 1, "stride": 1, "site_folds": 2, "seed": 0}
    cfg["output"] = {"dir": str(qgis_tmp / "series"), "plots": False}
    job = qgis_tmp / "series.yaml"
    job.write_text(yaml.safe_dump(cfg))
    out = run_series(job).out_dir
    summary = run_check(out, qgis_tmp / "series_render.png", qgis_tmp)
    vectors = {v["file"]: v for v in summary["vectors"]}
    warning = vectors["series_warning.gpkg"]
    assert warning["valid"] and warning["style_loaded"]
    assert warning["renderer"] == warning["default_style_renderer"] == "categorizedSymbol"
    assert warning["feature_count"] == 31  # the tull wells kept


def _risk_first(stem: str) -> tuple[bool, str]:
    return (not stem.endswith("_risk"), stem)


def test_class_layer_paletted_style_in_qgis(demo_out: Path, qgis_tmp: Path) -> None:
    """A class raster with write_qml_paletted's style: paletted renderer, same labels."""
    out = qgis_tmp / "classes"
    out.mkdir()
    for ext in (".tif", ".qml"):
        shutil.copy(demo_out / f"Cu_concentration{ext}", out / f"Cu_concentration{ext}")
    with rasterio.open(out / "Cu_concentration.tif") as src:
        conc = src.read(1, masked=True)
        profile = src.profile
    lo, hi = np.percentile(conc.compressed(), [50, 90])
    cls = np.where(conc.mask, 0, 1 + (conc > lo) + (conc > hi)).astype("uint8")
    profile.update(dtype="uint8", nodata=0)
    with rasterio.open(out / "Cu_class.tif", "w", **profile) as dst:
        dst.write(cls, 1)
    palette = [(1, "low", "#1a9641"), (2, "moderate", "#fdae61"), (3, "high >P90 & <x>", "#d7191c")]
    write_qml_paletted(out / "Cu_class.qml", palette)

    png = qgis_tmp / "class_render.png"
    summary = run_check(out, png, qgis_tmp)
    assert_layers_match_geotiffs(summary, out)
    layer = next(lyr for lyr in summary["layers"] if lyr["file"] == "Cu_class.tif")
    assert layer["classes"] == [{"value": v, "label": lab, "color": c} for v, lab, c in palette]
    assert_rendered(summary, png, ["Cu_class", "Cu_concentration"])

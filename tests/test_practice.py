"""Land-use practice and Kd per cell for the accumulation budget (issue 16):
rates per land-use class times metal contents, Kd from a pH / organic-matter
transfer function over numbers or rasters, and the config errors that name the key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from pydantic import ValidationError

from geohm.config import AccumulationSpec, RiskSpec
from geohm.errors import ConfigError
from geohm.grid import Grid
from geohm.io.rasters import write_geotiff
from geohm.pipeline.practice import LocalParameters

GRID = Grid(
    crs="EPSG:32650", transform=Affine(30.0, 0, 500000.0, 0, -30.0, 3000000.0), width=4, height=3
)
XS = 500000.0 + 30.0 * (np.arange(4) + 0.5)
YS = 3000000.0 - 30.0 * (np.arange(3) + 0.5)


def _spec(**kw: object) -> AccumulationSpec:
    return AccumulationSpec.model_validate(kw)


def test_one_class_for_the_whole_scene_gives_the_hand_computed_fluxes() -> None:
    spec = _spec(
        agriculture={
            "practice": {"paddy": {"fertiliser": 500, "manure": 1000, "irrigation": 300}},
            "fertiliser_content": {"Cd": 10.0},
            "manure_content": {"Cd": 0.5},
            "irrigation_content": {"Cd": 0.005},
        }
    )
    local = LocalParameters(spec, RiskSpec(land_use="paddy"), GRID, ["Cd"])
    got = local.at("Cd", XS, YS)
    # 500 kg/ha x 10 mg/kg = 0.5 mg/m2; 1000 x 0.5 = 0.05 mg/m2; 300 mm x 0.005 mg/L = 1.5
    assert float(got.fertiliser) == pytest.approx(0.5)
    assert float(got.manure) == pytest.approx(0.05)
    assert float(got.irrigation) == pytest.approx(1.5)
    assert got.crop_yield == 0.0 and got.kd is None


def test_a_land_use_raster_and_a_ph_raster_vary_rates_and_kd(tmp_path: Path) -> None:
    codes = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 5, 9]], dtype="uint8")  # 5: unnamed
    write_geotiff(tmp_path / "lu.tif", codes, crs=GRID.crs, transform=GRID.transform, nodata=9)
    ph = np.array([[5, 6, 7, 8]] * 3, dtype="float32")
    write_geotiff(tmp_path / "ph.tif", ph, crs=GRID.crs, transform=GRID.transform, nodata=-1)
    spec = _spec(
        kd={"Cu": {"intercept": 1.0, "ph": 0.5, "log_som": 1.0, "source": "test"}},
        ph=tmp_path / "ph.tif",
        som=2.0,
        agriculture={
            "land_use": {
                "path": tmp_path / "lu.tif",
                "classes": {1: "veg", 2: "orchard", 3: "forest"},
            },
            "practice": {
                "veg": {"fertiliser": 1000, "crop_yield": 4},
                "orchard": {"fertiliser": 200},
                "forest": {},
            },
            "fertiliser_content": {"Cu": 5.0},
        },
    )
    local = LocalParameters(spec, None, GRID, ["Cu"])
    got = local.at("Cu", XS, YS)
    fert = np.array([[0.5, 0.5, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1], [0, 0, np.nan, np.nan]])
    np.testing.assert_allclose(got.fertiliser, fert)
    np.testing.assert_allclose(
        got.crop_yield, np.where(codes == 1, 4.0, np.where(codes >= 5, np.nan, 0.0))
    )
    # log10 Kd = 1 + 0.5 pH + log10(2)
    np.testing.assert_allclose(got.kd, 2.0 * 10 ** (1 + 0.5 * ph.astype("float64")), rtol=1e-12)
    # the same at scattered points (the calibration's samples)
    pts = local.at("Cu", XS[None, [0, 3]], YS[None, [0, 2]])
    np.testing.assert_allclose(pts.fertiliser, [[0.5, np.nan]])
    assert "Kd from log10 Kd = 1 + 0.5 pH + 1 log10(SOM %) (test)" in local.notes[0]


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ValidationError, match="both per land-use class"):
        _spec(fertiliser={"Cu": 1.0}, agriculture={"practice": {"other": {}}})
    with pytest.raises(ValidationError, match="give som"):
        _spec(kd={"Cu": {"intercept": 1, "ph": 0.5, "log_som": 0.4, "source": "x"}})
    with pytest.raises(ValidationError, match="source"):
        _spec(kd={"Cu": {"intercept": 1, "ph": 0.5}})
    spec = _spec(agriculture={"practice": {"paddy": {}}})
    with pytest.raises(ConfigError, match=r"no row for land-use class\(es\) \['other'\]"):
        LocalParameters(spec, RiskSpec(land_use="other"), GRID, ["Cu"])
    spec = _spec(agriculture={"land_use": "paddy", "practice": {"paddy": {}, "padi": {}}})
    with pytest.raises(ConfigError, match=r"\['padi'\] are not classes"):
        LocalParameters(spec, None, GRID, ["Cu"])
    spec = _spec(
        agriculture={"land_use": "paddy", "practice": {"paddy": {}}, "manure_content": {"Zn": 1.0}}
    )
    with pytest.raises(ConfigError, match=r"manure_content: \['Zn'\] are not mapped metals"):
        LocalParameters(spec, None, GRID, ["Cu"])
    spec = _spec(kd={"Cu": {"intercept": 1, "ph": 0.5, "source": "x"}})
    with pytest.raises(ConfigError, match="needs the soil pH"):
        LocalParameters(spec, None, GRID, ["Cu"])

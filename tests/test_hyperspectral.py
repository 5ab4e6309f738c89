"""A hyperspectral raster (bands = wavelengths) mapped by the spectral ResNet via ``geohm run``.

The synthetic image has 40 bands (400-2350 nm) over a 60 x 50 pixel UTM grid: a soil
spectrum with a smooth brightness field and an absorption feature at 2200 nm whose
depth grows with the Pb concentration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from typer.testing import CliRunner

from geohm.cli import app
from geohm.config import load_config, parse_config
from geohm.cube import band_wavelengths, spectral_columns, wavelength_feature
from geohm.errors import ConfigError, InputError
from geohm.io.models import load_model
from geohm.io.rasters import read_block, write_geotiff
from geohm.pipeline import build_cube, window_source

UTM = "EPSG:32649"
TRANSFORM = Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750000.0)
H, W = 60, 50
WAVELENGTHS = np.linspace(400.0, 2350.0, 40)  # 50 nm steps
NODATA = -9999.0


def _truth(seed: int = 3) -> np.ndarray:
    """A smooth Pb field (mg/kg), about 20-160."""
    yy, xx = np.mgrid[0:H, 0:W] / 10.0
    return 90.0 + 45.0 * np.sin(xx * 0.9 + 0.3) * np.cos(yy * 0.6) + 25.0 * np.sin(yy * 0.8)


def _spectra(pb: np.ndarray, seed: int = 3) -> np.ndarray:
    """(band, y, x) reflectance with a Pb-driven absorption at 2200 nm, noise and a hole."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    bright = 0.85 + 0.3 * np.sin(xx / 7.0) * np.sin(yy / 11.0)  # multiplicative scatter
    wl = WAVELENGTHS[:, None, None]
    base = 0.12 + 0.25 * (wl - 400.0) / 2000.0 - 0.05 * np.exp(-(((wl - 1400.0) / 80.0) ** 2))
    depth = 0.0018 * pb[None]  # 0.04-0.3
    absorb = 1.0 - depth * np.exp(-(((wl - 2200.0) / 70.0) ** 2))
    refl = bright[None] * base * absorb + rng.normal(0.0, 0.002, size=(len(WAVELENGTHS), H, W))
    refl = refl.astype("float32")
    refl[:, :4, :6] = NODATA  # a corner without data
    refl[7, 30, 30] = NODATA  # one band missing at one pixel
    return refl


def _write(path: Path, data: np.ndarray, descriptions: list[str] | None, crs: str = UTM) -> Path:
    return write_geotiff(
        path,
        data,
        crs=crs,
        transform=TRANSFORM,
        nodata=NODATA,
        descriptions=descriptions,
        overviews=False,
    )


def _centres(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (
        TRANSFORM.c + TRANSFORM.a * (cols + 0.5),
        TRANSFORM.f + TRANSFORM.e * (rows + 0.5),
    )


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hyper")
    pb = _truth()
    refl = _spectra(pb)
    img = _write(
        tmp / "img.tif", refl, [f"Band {i + 1} ({w} nm)" for i, w in enumerate(WAVELENGTHS)]
    )
    # A covariate on the same grid: the spectral model ignores it.
    dist = np.hypot(*np.mgrid[0:H, 0:W]).astype("float32")
    write_geotiff(tmp / "dist.tif", dist, crs=UTM, transform=TRANSFORM, overviews=False)
    rng = np.random.default_rng(11)
    flat = rng.choice(np.arange(4 * W, H * W), size=160, replace=False)  # off the hole
    rows, cols = np.divmod(flat, W)
    x, y = _centres(rows, cols)
    pd.DataFrame(
        {
            "id": np.arange(len(flat)),
            "x": x,
            "y": y,
            "Pb": pb[rows, cols] + rng.normal(0, 2, len(flat)),
        }
    ).to_csv(tmp / "samples.csv", index=False)
    return {"dir": tmp, "img": img, "pb": pb, "refl": refl}


def _scene(case: dict[str, Any], name: str, **changes: Any) -> Path:
    cfg: dict[str, Any] = {
        "name": name,
        "hyperspectral": {"path": "img.tif"},
        "covariates": {"dist": "dist.tif"},
        "samples": {"path": "samples.csv", "targets": ["Pb"], "x": "x", "y": "y", "crs": UTM},
        "model": {
            "name": "spectral-resnet",
            "params": {
                "max_epochs": 150,
                "patience": 40,
                "batch_size": 16,
                "learning_rate": 0.003,
                "preprocess": ["snv"],
            },
        },
        "validation": {"test_fraction": 0.2, "cv_folds": 0, "seed": 0, "spatial_cv": False},
        "output": {
            "dir": str(case["dir"] / name),
            "uncertainty": False,
            "quicklooks": False,
            "tile": 32,
            "workers": 2,
        },
    }
    cfg.update(changes)
    f = case["dir"] / f"{name}.yaml"
    f.write_text(yaml.safe_dump(cfg))
    return f


def test_wavelengths_are_parsed_from_band_descriptions() -> None:
    bands = [("450", {}), ("500.5 nm", {}), ("Band 3 (0.6 um)", {}), ("", {"wavelength": "700"})]
    assert band_wavelengths(bands, None) == [450.0, 500.5, 600.0, 700.0]
    # A bare number is in the configured unit; one with a unit is converted to it.
    assert band_wavelengths(bands[:2], None, unit="um") == [450.0, 0.5005]
    assert band_wavelengths([("a", {}), ("b", {})], [2.0, 1.0]) == [2.0, 1.0]
    assert wavelength_feature(450) == "wl_450.0"
    assert spectral_columns(["wl_900.0", "dist", "wl_450.0", "wl_x"]) == ["wl_450.0", "wl_900.0"]


def test_cube_has_one_feature_per_band_in_wavelength_order(case: dict[str, Any]) -> None:
    cfg = load_config(_scene(case, "cube"))
    inputs, cube, feats = build_cube(cfg, cfg.features)
    assert feats == ["dist"] + [f"wl_{w}" for w in WAVELENGTHS]
    assert inputs.grid.shape == (H, W) and inputs.grid.transform == TRANSFORM
    band = read_block(cube.sel(feature="wl_2200.0"))
    k = int(np.flatnonzero(WAVELENGTHS == 2200.0)[0])
    expected = np.where(case["refl"][k] == NODATA, np.nan, case["refl"][k])
    np.testing.assert_array_equal(band, expected.astype("float32"))
    # The window path (prediction) reads the same numbers, bit for bit.
    with window_source(inputs, feats) as source:
        for r, c, h, w in [(0, 0, H, W), (0, 0, 7, 9), (25, 20, 17, 30), (H - 1, W - 1, 1, 1)]:
            got = source.read(r, c, h, w)
            want = read_block(cube.isel(y=slice(r, r + h), x=slice(c, c + w)))
            assert got.tobytes() == want.tobytes(), (r, c, h, w)


def test_wavelengths_from_the_config_in_any_band_order(case: dict[str, Any]) -> None:
    # Bands written in decreasing wavelength order, without descriptions.
    _write(case["dir"] / "plain.tif", case["refl"][::-1].copy(), None)
    f = _scene(
        case,
        "plain",
        hyperspectral={"path": "plain.tif", "wavelengths": WAVELENGTHS[::-1].tolist()},
        covariates={},
    )
    cfg = load_config(f)
    inputs, cube, feats = build_cube(cfg, "auto")
    assert feats == [f"wl_{w}" for w in WAVELENGTHS]
    assert inputs.description["grid"] == "hyperspectral raster"
    np.testing.assert_array_equal(read_block(cube.sel(feature="wl_400.0"))[10], case["refl"][0][10])


def test_errors_name_the_file(case: dict[str, Any]) -> None:
    _write(case["dir"] / "nowl.tif", case["refl"][:3].copy(), ["Band 1", "Band 2", "Band 3"])
    cfg = load_config(_scene(case, "nowl", hyperspectral={"path": "nowl.tif"}))
    with pytest.raises(InputError, match=r"nowl\.tif'.*band 1 has no wavelength.*wavelengths"):
        build_cube(cfg, "auto")
    cfg = load_config(
        _scene(case, "count", hyperspectral={"path": "nowl.tif", "wavelengths": [500, 600]})
    )
    with pytest.raises(InputError, match=r"nowl\.tif' has 3 band\(s\) but.*lists 2"):
        build_cube(cfg, "auto")
    with pytest.raises(ConfigError, match="spectral-resnet.*hyperspectral"):
        parse_config(
            {"name": "a", "covariates": {"d": "d.tif"}, "model": {"name": "spectral-resnet"}}
        )
    with pytest.raises(ConfigError, match="hyperspectral.wavelengths.*twice"):
        parse_config({"name": "a", "hyperspectral": {"path": "i.tif", "wavelengths": [1, 1]}})


def test_unknown_spectral_preprocessing_step(case: dict[str, Any]) -> None:
    from geohm.training import model_pipeline

    cfg = load_config(_scene(case, "badstep"))
    cfg.model.params["preprocess"] = ["snv", "msc"]
    with pytest.raises(ConfigError, match="unknown step 'msc'"):
        model_pipeline(cfg.fit_spec(), ["wl_1.0", "wl_2.0"])
    cfg.model.params["preprocess"] = [{"savgol": {"window_length": 5, "deriv": 1}}, "snv"]
    pipe = model_pipeline(cfg.fit_spec(), ["wl_1.0", "wl_2.0"])
    assert [n for n, _ in pipe.steps] == [
        "columns",
        "spectra_0_savgol",
        "spectra_1_snv",
        "scale",
        "impute",
        "select",
        "model",
    ]


def test_geohm_run_maps_pb_from_the_hyperspectral_image(case: dict[str, Any]) -> None:
    f = _scene(case, "run")
    res = CliRunner().invoke(app, ["run", str(f)])
    assert res.exit_code == 0, res.output
    out = case["dir"] / "run"
    with rasterio.open(out / "Pb_concentration.tif") as src:
        assert src.shape == (H, W) and src.transform == TRANSFORM
        assert src.crs.to_epsg() == 32649
        pred = src.read(1, masked=True)
    # Pixels are mapped where every band is valid.
    assert pred.mask[:4, :6].all() and pred.mask[30, 30]
    assert (~pred.mask).sum() == H * W - 24 - 1
    truth = case["pb"][~pred.mask]
    r = np.corrcoef(pred.compressed(), truth)[0, 1]
    assert r > 0.8, r  # about 0.99
    # The model takes the spectra only, in wavelength order, unscaled and unscreened.
    bundle = load_model(out / "model.geohm")
    target = bundle["targets"]["Pb"]
    assert target["features"] == [f"wl_{w}" for w in WAVELENGTHS]
    est = target["estimator"]
    assert [n for n, _ in est.steps] == [
        "columns",
        "spectra_0_snv",
        "scale",
        "impute",
        "select",
        "model",
    ]
    assert est.named_steps["scale"] == "passthrough" and est.named_steps["select"] == "passthrough"
    assert "dist" in bundle["cube_features"]
    # geohm predict maps the scene again with the saved model: the same map.
    res = CliRunner().invoke(
        app, ["predict", "--model", str(out / "model.geohm"), str(f), "--out", str(out / "again")]
    )
    assert res.exit_code == 0, res.output
    with rasterio.open(out / "again" / "Pb_concentration.tif") as src:
        assert src.read(1).tobytes() == pred.filled(NODATA).astype("float32").tobytes()

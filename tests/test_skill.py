"""Skill against the flat map (the training mean) in every report, and a warning when none."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from typer.testing import CliRunner

from geohm.cli import app
from geohm.evaluate import cross_validate, null_skill, with_null


def test_null_skill_by_hand() -> None:
    assert null_skill(5.0, 10.0) == 0.5
    m = with_null({"rmse": 1.0}, np.array([1.0, 3.0]), 2.0)  # flat map 2: errors 1, 1
    assert m["rmse_null"] == 1.0 and m["skill"] == 0.0


def test_cv_skill_is_zero_for_the_mean_and_one_for_a_perfect_model() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    y = 3 * X[:, 0] - X[:, 1] + 10
    flat = cross_validate(DummyRegressor(), X, y, folds=5, seed=0)
    assert flat["skill"] == pytest.approx(0.0, abs=1e-12)
    assert flat["rmse_null"] == pytest.approx(flat["rmse"])
    exact = cross_validate(LinearRegression(), X, y, folds=5, seed=0)
    assert exact["skill"] == pytest.approx(1.0)


@pytest.mark.slow
def test_noise_target_gets_a_warning(tmp_path) -> None:
    root = tmp_path / "case"
    res = CliRunner().invoke(app, ["synth", "--out", str(root), "--size", "96"])
    assert res.exit_code == 0, res.output
    import geopandas as gpd

    pts = gpd.read_file(root / "samples_target.gpkg")
    rng = np.random.default_rng(1)
    pts["Cu"] = rng.lognormal(3.0, 0.4, len(pts))  # unrelated to any covariate
    pts.to_file(root / "noise.gpkg", driver="GPKG")
    cfg = yaml.safe_load((root / "scene.yaml").read_text())
    cfg.pop("source")
    cfg["samples"]["path"] = "noise.gpkg"
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 30}}
    cfg["risk"] = None
    cfg.pop("zones"), cfg.pop("sampling_design")  # they need the risk block
    cfg["output"] = {"dir": "out", "uncertainty": False}
    (root / "noise.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["run", str(root / "noise.yaml")])
    assert res.exit_code == 0, res.output
    rep = json.loads((root / "out" / "report.json").read_text())
    cu, pb = rep["targets"]["Cu"], rep["targets"]["Pb"]
    for t in (cu, pb):
        for name in ("test", "cv", "cv_spatial"):
            m = t[name]
            assert m["skill"] == pytest.approx(1 - m["rmse"] / m["rmse_null"])
    assert cu["skill"]["set"] == "cv_spatial" and cu["skill"]["skill"] <= 0
    (w,) = cu["warnings"]
    assert "not better than a flat map" in w
    assert pb["skill"]["skill"] > 0 and "warnings" not in pb  # Pb still follows the covariates
    md = (root / "out" / "report.md").read_text()
    assert md.split("\n")[2].startswith("> **Warning.** Cu: the map is not better")
    assert "| flat-map RMSE | skill |" in md
    text = " ".join(res.output.split())
    assert "warning: Cu: the map is not better than a flat map" in text
    samples = pd.read_csv(root / "out" / "samples.csv", index_col=0)
    train = samples["Cu_split"] == "train"
    test = samples["Cu_split"] == "test"
    null = samples.loc[train, "Cu_observed"].mean()
    rmse_null = np.sqrt(np.mean((samples.loc[test, "Cu_observed"] - null) ** 2))
    assert cu["test"]["rmse_null"] == pytest.approx(rmse_null)

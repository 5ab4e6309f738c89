"""`model: {name: auto}`: candidates scored on the same spatial folds, the best or a stack."""

from __future__ import annotations

import doctest
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine
from typer.testing import CliRunner

from geohm import autoselect
from geohm.autoselect import RowFolds, conformal_fold_coverage
from geohm.cli import app
from geohm.config import parse_config
from geohm.errors import ConfigError
from geohm.io.rasters import write_geotiff
from geohm.models import make_regressor, model_entry
from geohm.pipeline import load_job
from geohm.report import render_markdown
from geohm.sampling import SampleTable
from geohm.training import fit_target

UTM = "EPSG:32649"


def _table(kind: str, n: int = 60, seed: int = 0) -> SampleTable:
    """Samples over 3 x 3 km with a covariate ``a``, a noise column ``b`` and ``x``, ``y``.

    ``linear``: Cu = 10 + 80 a, and ``a`` follows x (held-out blocks need extrapolation in
    ``a``); ``spatial``: Cu is a smooth field of position only; ``both``: 30 a plus a
    smooth field of position.
    """
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 3000, (n, 2))
    a = rng.uniform(0, 1, n)
    field = np.sin(xy[:, 0] / 500) + np.cos(xy[:, 1] / 600)
    if kind == "linear":
        a = xy[:, 0] / 3000 + rng.normal(0, 0.05, n)
        cu = 10 + 80 * a + rng.normal(0, 2, n)
    elif kind == "spatial":
        cu = 40 + 15 * field + rng.normal(0, 1, n)
    else:
        cu = 20 + 30 * a + 15 * np.sin(xy[:, 0] / 800) + 15 * np.cos(xy[:, 1] / 800)
        cu = cu + rng.normal(0, 1, n)
    X = pd.DataFrame(
        {"a": a, "b": rng.normal(size=n), "x": xy[:, 0], "y": xy[:, 1]},
        index=pd.Index([f"S{i:02d}" for i in range(n)], name="id"),
    )
    return SampleTable(X=X, y=pd.DataFrame({"Cu": cu}, index=X.index), xy=xy)


def _cfg(candidates: list[Any], block: float | None = 600.0, **params: Any) -> Any:
    return parse_config(
        {
            "name": "t",
            "covariates": {"a": "a.tif"},
            "samples": {"path": "s.csv", "targets": ["Cu"]},
            "model": {"name": "auto", "params": {"candidates": candidates, **params}},
            "validation": {"test_fraction": 0.2, "cv_folds": 5, "seed": 0, "block_size": block},
        }
    ).fit_spec()


def _scored(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["candidate"]: r for r in rep["auto"]["ranking"] if r["status"] == "scored"}


def test_doctests() -> None:
    assert doctest.testmod(autoselect).failed == 0


def test_auto_is_a_registry_entry_that_selects() -> None:
    entry = model_entry("auto")
    assert entry.selects and not model_entry("rf").selects
    with pytest.raises(ConfigError, match="not one estimator"):
        make_regressor("auto")


def test_a_linear_truth_is_won_by_the_linear_capable_net() -> None:
    """Cu linear in a covariate that follows x: held-out spatial blocks lie beyond the
    training range of the covariate. Trees (rf) stay flat there and kriging (ok) does not
    see the covariate; the GA-BP net (a smooth, nearly linear function here) extrapolates.
    The registry has no linear model, so the net is the linear-capable candidate."""
    fit = fit_target(_cfg(["rf", "ok", "ga-bp"]), _table("linear"), "Cu")
    rep = fit.report
    auto, scored = rep["auto"], _scored(rep)
    assert rep["model"] == "auto" and auto["chosen"] == "ga-bp"
    assert scored["ga-bp"]["rank"] == 1
    assert scored["ga-bp"]["rmse"] < 0.8 * scored["rf"]["rmse"] < scored["ok"]["rmse"]
    # the chosen net then went through the normal path: its spatial CV is its score
    assert rep["cv_spatial"]["rmse"] == pytest.approx(scored["ga-bp"]["rmse"])
    assert rep["uncertainty"]["method"] == "residual" and rep["test"]["n"] == 12
    for row in scored.values():
        assert row["skill"] == pytest.approx(1 - row["rmse"] / row["rmse_null"])
        assert 0 <= row["interval_coverage"] <= 1 and row["seconds"] >= 0
    assert auto["folds"] == {"kind": "spatial blocks", "block_size_m": 600.0, "n": 5}


def test_a_field_of_position_only_is_won_by_kriging() -> None:
    fit = fit_target(_cfg([{"rf": {"n_estimators": 50}}, "ok"]), _table("spatial"), "Cu")
    scored = _scored(fit.report)
    assert fit.report["auto"]["chosen"] == "ok"
    assert scored["ok"]["rmse"] < 0.7 * scored["rf"]["rmse"]
    assert fit.report["uncertainty"]["method"] == "kriging"
    assert fit.features == ["x", "y"] and fit.required == ["a", "b", "x", "y"]
    # a plain forest sees the covariates only; kriging the coordinates
    assert scored["rf"]["inputs"] == ["a", "b"] and scored["ok"]["inputs"] == ["x", "y"]


def test_the_budget_skips_the_remaining_candidates_and_says_so() -> None:
    cfg = _cfg([{"rf": {"n_estimators": 20}}, "ok", "rfsp"], max_minutes=1e-9)
    rep = fit_target(cfg, _table("spatial", n=30), "Cu").report
    rows = {r["candidate"]: r for r in rep["auto"]["ranking"]}
    assert rows["rf"]["status"] == "scored" and rep["auto"]["chosen"] == "rf"
    for name in ("ok", "rfsp"):
        assert rows[name]["status"] == "skipped"
        assert rows[name]["reason"].startswith("time budget spent (model.params.max_minutes:")
    md = render_markdown({"name": "t", "targets": {"Cu": rep}})
    assert "| - | ok | - | - | - | - | - | - | skipped: time budget spent" in md
    assert "| Cu | auto: rf | cv_spatial |" in md


def test_candidates_without_their_inputs_are_listed_not_applicable() -> None:
    table = _table("spatial", n=30)
    table.X = table.X[["a", "b"]]  # no coordinates (a geographic grid has none)
    cands = [{"rf": {"n_estimators": 20}}, "ok", "rfsp", "tr-ga-bp"]
    rep = fit_target(_cfg(cands), table, "Cu").report
    rows = {r["candidate"]: r for r in rep["auto"]["ranking"]}
    assert rep["auto"]["chosen"] == "rf"
    assert rows["ok"]["status"] == rows["rfsp"]["status"] == "not applicable"
    assert "not projected" in rows["ok"]["reason"]
    assert "source:" in rows["tr-ga-bp"]["reason"]


def test_bad_candidates_and_settings_are_config_errors(tmp_path: Path) -> None:
    def job(params: dict[str, Any]) -> Path:
        f = tmp_path / "s.yaml"
        cfg = {
            "name": "t",
            "covariates": {"a": "a.tif"},
            "samples": {"path": "s.csv"},
            "model": {"name": "auto", "params": params},
        }
        f.write_text(yaml.safe_dump(cfg))
        return f

    with pytest.raises(ConfigError) as err:
        load_job(job({"candidates": ["rf", "xgb"]}))
    msg = str(err.value)
    assert "model.params.candidates: unknown candidate 'xgb'" in msg
    assert "rf, rfsp, gbm, ga-bp, tr-ga-bp, ok, rk" in msg and msg.startswith(str(tmp_path))
    for params, words in (
        ({"max_minutes": 0}, "model.params.max_minutes: 0 is invalid"),
        ({"stack": "yes"}, "model.params.stack: 'yes' is invalid"),
        ({"candidate": ["rf"]}, "did you mean 'candidates'?"),
        ({"candidates": ["rf", "rf"]}, "candidate 'rf' is listed twice"),
        ({"candidates": [{"rf": {"n_trees": 5}}]}, "model.params.candidates.rf.n_trees"),
    ):
        with pytest.raises(ConfigError, match=words):
            load_job(job(params))
    res = CliRunner().invoke(app, ["run", str(job({"candidates": ["xgb"]}))])
    assert res.exit_code == 2 and "unknown candidate 'xgb'" in res.output


def test_row_folds_follow_the_rows_they_are_given() -> None:
    folds = RowFolds(np.array([0, 1, 2, -1, 0, 1, 2]))
    X = pd.DataFrame({"a": np.arange(7.0)})
    sub = X.iloc[[0, 1, 2, 4, 5, 6]]
    assert [t.tolist() for _, t in folds.split(sub)] == [[0, 3], [1, 4], [2, 5]]
    assert folds.get_n_splits() == 3 and folds.get_n_splits(sub.iloc[[0, 1]]) == 2
    with pytest.raises(ValueError, match="outside every fold"):
        list(folds.split(X))  # row 3 is a hold-out sample
    with pytest.raises(ValueError, match="fewer than 2 folds"):
        list(folds.split(sub.iloc[[0, 3]]))
    # coverage by hand: fold 0's errors [1, 3] against the other fold's [2, 2] -> 1 of 2
    y, oof = np.zeros(4), np.array([1.0, 3.0, 2.0, 2.0])
    splits = [(np.array([2, 3]), np.array([0, 1])), (np.array([0, 1]), np.array([2, 3]))]
    assert conformal_fold_coverage(y, oof, splits, 0.5) == 0.75


# --------------------------------------------------------------------------- a real scene

N = 60
TRANSFORM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4000000.0)


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60 x 60 covariate-only UTM scene: Cu = 40 + 30 a + a smooth field of position,
    ``a`` and ``b`` white noise rasters; 80 samples at pixel centres (CSV)."""
    root = tmp_path_factory.mktemp("auto")
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 1, (N, N)).astype("float32")
    b = rng.normal(size=(N, N)).astype("float32")
    rows, cols = np.mgrid[0:N, 0:N]
    east, south = 30.0 * (cols + 0.5), 30.0 * (rows + 0.5)
    cu = 40 + 30 * a + 15 * np.sin(east / 400) + 15 * np.cos(south / 400)
    write_geotiff(root / "a.tif", a, crs=UTM, transform=TRANSFORM, overviews=False)
    write_geotiff(root / "b.tif", b, crs=UTM, transform=TRANSFORM, overviews=False)
    pick = rng.choice(N * N, size=80, replace=False)
    r, c = np.divmod(pick, N)
    pd.DataFrame(
        {
            "id": np.arange(80),
            "x": TRANSFORM.c + east[r, c],
            "y": TRANSFORM.f - south[r, c],
            "Cu": cu[r, c] + rng.normal(0, 1, 80),
        }
    ).to_csv(root / "samples.csv", index=False)
    return root


def _run(root: Path, name: str, **params: Any) -> dict[str, Any]:
    cfg = {
        "name": name,
        "covariates": {"a": "a.tif", "b": "b.tif"},
        "samples": {"path": "samples.csv", "targets": ["Cu"], "x": "x", "y": "y", "crs": UTM},
        "model": {"name": "auto", "params": {"candidates": [{"rf": {"n_estimators": 50}}, "ok"]}},
        "validation": {"test_fraction": 0.2, "cv_folds": 5, "seed": 0},
        "risk": {"standard": "gb15618", "ph": 6.8, "indices": ["single_factor", "exceedance"]},
        "output": {"dir": name, "quicklooks": False, "tile": 32, "workers": 2},
    }
    cfg["model"]["params"].update(params)
    (root / f"{name}.yaml").write_text(yaml.safe_dump(cfg))
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(root / f"{name}.yaml")])
    assert res.exit_code == 0, res.output
    model = root / name / "model.geohm"
    res = runner.invoke(
        app, ["predict", str(root / f"{name}.yaml"), "-m", str(model), "-o", str(root / "p" / name)]
    )
    assert res.exit_code == 0, res.output
    layers = sorted(p.name for p in (root / name).glob("*.tif"))
    assert {"Cu_concentration.tif", "Cu_uncertainty.tif", "Cu_risk.tif"} <= set(layers)
    assert layers == sorted(p.name for p in (root / "p" / name).glob("*.tif"))
    for layer in layers:
        with (
            rasterio.open(root / name / layer) as run,
            rasterio.open(root / "p" / name / layer) as again,
        ):
            assert run.read(1).tobytes() == again.read(1).tobytes(), layer
    rep = json.loads((root / name / "report.json").read_text())
    if "Cu_exceedance.tif" not in layers:  # a model without members' votes: said so
        assert any("no exceedance map" in n for n in rep["risk"]["notes"])
    rep["md"] = (root / name / "report.md").read_text()
    return rep


@pytest.mark.slow
def test_scene_runs_rank_choose_and_reload(scene: Path) -> None:
    # Cu follows the covariate and position: the forest sees one, kriging the other, and
    # their stack beats both on the same spatial folds
    stacked = _run(scene, "stacked")
    t = stacked["targets"]["Cu"]
    auto, scored = t["auto"], _scored(t)
    assert auto["chosen"] == "stack" and set(auto["weights"]) == {"rf", "ok"}
    assert scored["stack"]["rank"] == 1
    assert scored["stack"]["rmse"] < 0.85 * min(scored["rf"]["rmse"], scored["ok"]["rmse"])
    # the stack's score is what refitting it in every spatial fold gives
    assert t["cv_spatial"]["rmse"] == pytest.approx(scored["stack"]["rmse"], rel=1e-9)
    assert t["uncertainty"]["method"] == "residual" and t["features"] == ["a", "b", "x", "y"]
    md = stacked["md"]
    assert "## Model choice (auto)" in md and "Chosen: **stack**" in md
    assert "| 1 | stack |" in md and "weights rf" in md
    assert "| Cu | auto: stack | test |" in md

    # without stacking the best single candidate (kriging) is kept, and maps the same way
    single = _run(scene, "single", stack=False)
    t = single["targets"]["Cu"]
    assert t["auto"]["chosen"] == "ok" and "stack" not in _scored(t)
    assert t["cv_spatial"]["rmse"] == pytest.approx(_scored(t)["ok"]["rmse"], rel=1e-9)
    assert t["uncertainty"]["method"] == "kriging"
    assert [r["candidate"] for r in t["auto"]["ranking"]] == ["ok", "rf"]


def test_a_stacked_model_file_reloads_and_a_crafted_one_is_refused(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.neighbors import KNeighborsRegressor

    from geohm.autoselect import stacked_estimator
    from geohm.errors import InputError
    from geohm.io.models import load_model, save_model
    from geohm.preprocess import build_pipeline

    table = _table("both", n=40)
    X, y = table.X.reset_index(drop=True), table.y["Cu"].to_numpy()
    members = {
        "rf": (build_pipeline(RandomForestRegressor(20, random_state=0)), ["a", "b"]),
        "ok": (make_regressor("ok", random_state=0), ["x", "y"]),
    }
    stack = stacked_estimator(members, np.arange(40) % 4).fit(X, y)
    meta = stack.named_steps["stack"].final_estimator_
    assert meta.positive and (meta.coef_ >= 0).all() and meta.coef_.shape == (2,)

    def bundle(est: Any) -> dict[str, Any]:
        target = {"estimator": est, "features": list(X.columns), "interval": None}
        return {"model": "auto", "cube_features": list(X.columns), "targets": {"Cu": target}}

    save_model(tmp_path / "ok.geohm", bundle(stack))
    loaded = load_model(tmp_path / "ok.geohm")["targets"]["Cu"]["estimator"]
    rows = X.to_numpy()  # the prediction windows pass plain arrays in the cube's order
    np.testing.assert_array_equal(loaded.predict(rows), stack.predict(rows))
    # a file whose stack would call another method of its members than predict
    stack.named_steps["stack"].stack_method_ = ["predict", "fit"]
    save_model(tmp_path / "bad.geohm", bundle(stack))
    with pytest.raises(InputError, match="stacked ensemble of an unexpected kind"):
        load_model(tmp_path / "bad.geohm")
    # nor may a stack hold anything geohm never writes
    stack.named_steps["stack"].stack_method_ = ["predict", "predict"]
    stack.named_steps["stack"].estimators_[1] = KNeighborsRegressor().fit(rows, y)
    save_model(tmp_path / "knn.geohm", bundle(stack))
    with pytest.raises(InputError, match="KNeighborsRegressor"):
        load_model(tmp_path / "knn.geohm")

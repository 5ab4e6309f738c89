"""The model registry: one entry per model name, and no name comparisons elsewhere."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingRegressor
from typer.testing import CliRunner

from geohm.cli import app
from geohm.config import MODEL_NAMES
from geohm.errors import ConfigError
from geohm.models import MODELS, check_model_params, make_regressor, model_entry

PKG = Path(__file__).resolve().parents[1] / "geohm"


def _string_constants(node: ast.AST) -> list[str]:
    return [
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]


def test_no_model_name_is_compared_outside_the_registry() -> None:
    """`x == "ok"`, `x in ("ok", "rk")`, `.endswith("-classifier")` on model names: only in
    geohm/models/registry.py (and the estimator's own file, which may name itself)."""
    # "auto" is also the choose-for-me value of other settings (features, variogram
    # model, interval method): a comparison with it counts when the compared expression
    # is a name (`cfg.model.name == "auto"`, `name == "auto"`, `model_name in (...)`).
    generic = {"auto"}
    named = re.compile(r"\bname\b|model_name")
    names = set(MODELS)
    offenders = []
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG).as_posix()
        if rel == "models/registry.py":
            continue
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                consts = set(_string_constants(node)) & names
                if not named.search(ast.get_source_segment(source, node) or ""):
                    consts -= generic
                if consts:
                    offenders.append(f"{rel}:{node.lineno} compares with {sorted(consts)}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("endswith", "startswith")
                and any(
                    s.endswith("-classifier") or s == "-classifier" for s in _string_constants(node)
                )
            ):
                offenders.append(f"{rel}:{node.lineno} tests a model-name suffix")
    assert not offenders, "\n".join(offenders)


def test_registry_is_the_config_vocabulary() -> None:
    assert MODEL_NAMES == tuple(MODELS)
    assert {"rf", "gbm", "ga-bp", "tr-ga-bp", "ok", "rk", "spectral-resnet"} <= set(MODELS)
    assert model_entry("tr-ga-bp").needs_source and model_entry("tr-ga-bp").source_model == "ga-bp"
    assert model_entry("ok").inputs == "coordinates" and not model_entry("ok").screening
    assert model_entry("rk").raw_coordinates and model_entry("rk").calibrate_interval
    assert all(model_entry(n).classifier for n in MODELS if n.endswith("-classifier"))
    with pytest.raises(ConfigError, match="unknown model 'xgb'"):
        model_entry("xgb")


def test_gbm_is_built_and_checked_through_its_entry() -> None:
    est = make_regressor("gbm", {"max_iter": 50}, random_state=3)
    assert isinstance(est, HistGradientBoostingRegressor)
    assert est.max_iter == 50 and est.random_state == 3 and est.min_samples_leaf == 5
    with pytest.raises(ConfigError, match=r"model.params.max_iter: 0 is invalid for model 'gbm'"):
        check_model_params("gbm", {"max_iter": 0})
    with pytest.raises(ConfigError, match="model.params.n_estimators"):
        check_model_params("gbm", {"n_estimators": 10})
    with pytest.raises(ConfigError, match="model.params.loss: 'poisson' is not supported"):
        check_model_params("gbm", {"loss": "poisson"})
    with pytest.raises(ConfigError, match="model.params.scoring"):
        check_model_params("gbm", {"scoring": "r2"})
    with pytest.raises(ConfigError, match="model.params.scoring: None is not supported"):
        check_model_params("gbm", {"early_stopping": True, "scoring": None})
    for key in ("categorical_features", "monotonic_cst", "interaction_cst"):
        with pytest.raises(ConfigError, match=f"model.params.{key}: gbm's columns"):
            check_model_params("gbm", {key: [0]})
    with pytest.raises(ConfigError, match="model.params.base: .* cannot be the base"):
        check_model_params("rk", {"base": ["rf"]})
    check_model_params("gbm", {"loss": "squared_error", "early_stopping": True})
    rk = make_regressor("rk", {"base": "gbm", "base_params": {"max_iter": 20}})
    assert isinstance(rk.base, HistGradientBoostingRegressor) and rk.base.max_iter == 20


@pytest.mark.slow
def test_gbm_scene_maps_and_reloads(tmp_path: Path) -> None:
    root = tmp_path / "case"
    runner = CliRunner()
    assert runner.invoke(app, ["synth", "--out", str(root), "--size", "96"]).exit_code == 0
    cfg = yaml.safe_load((root / "scene.yaml").read_text())
    cfg.pop("source")
    cfg["model"] = {"name": "gbm", "params": {"max_iter": 100}}
    cfg["output"] = {"dir": "out"}
    (root / "gbm.yaml").write_text(yaml.safe_dump(cfg))
    res = runner.invoke(app, ["run", str(root / "gbm.yaml")])
    assert res.exit_code == 0, res.output
    rep = json.loads((root / "out" / "report.json").read_text())
    for t in ("Cu", "Pb"):
        assert rep["targets"][t]["model"] == "gbm"
        assert rep["targets"][t]["uncertainty"]["method"] == "residual"
        assert np.isfinite(rep["targets"][t]["cv"]["skill"])
    res = runner.invoke(
        app,
        [
            "predict",
            str(root / "gbm.yaml"),
            "-m",
            str(root / "out" / "model.geohm"),
            "-o",
            str(root / "p"),
        ],
    )
    assert res.exit_code == 0, res.output
    import rasterio

    for t in ("Cu", "Pb"):
        with (
            rasterio.open(root / "out" / f"{t}_concentration.tif") as a,
            rasterio.open(root / "p" / f"{t}_concentration.tif") as b,
        ):
            np.testing.assert_array_equal(a.read(1), b.read(1))


def test_public_api_names_resolve() -> None:
    import geohm
    from geohm._version import __version__

    assert geohm.__version__ == __version__
    for name in ("load_config", "run_scene", "predict_scene", "run_batch", "build_cube"):
        assert callable(getattr(geohm, name)), name
    for name in geohm.__all__:
        assert getattr(geohm, name) is not None, name
    with pytest.raises(AttributeError):
        geohm.no_such_name  # noqa: B018


def test_the_cli_uses_only_the_public_api() -> None:
    import geohm

    eager = {"__version__", *(n for n in geohm.__all__ if n.endswith("Error"))}
    assert set(geohm.__all__) - eager == set(geohm._LAZY)
    tree = ast.parse((PKG / "cli.py").read_text())
    imported = {
        (node.module, a.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("geohm")
        for a in node.names
    }
    assert {m for m, _ in imported} == {"geohm"}, imported
    assert {n for _, n in imported} <= set(geohm.__all__)

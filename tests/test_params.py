"""``model.params`` is checked when the config is loaded, by the estimators' own constraints.

Every case goes through the real command line (``geohm run``) on a scene YAML whose input
files do not exist: the job must stop with exit code 2 and one line naming the key
before it reads any input (reading one would fail on the missing file instead).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sklearn.base import BaseEstimator
from sklearn.ensemble import RandomForestRegressor
from sklearn.utils._param_validation import InvalidParameterError
from typer.testing import CliRunner

from geohm.cli import app
from geohm.config import MODEL_NAMES, parse_config
from geohm.errors import ConfigError
from geohm.models import check_model_params, make_regressor
from geohm.models.gabp import GABPRegressor
from geohm.models.kriging import OrdinaryKrigingRegressor, RegressionKriging
from geohm.models.spatial import BufferDistances
from geohm.models.spectral import SpectralResNetRegressor
from geohm.models.transfer import TransferGABPRegressor

#: Inputs that do not exist: reading any of them would fail with "does not exist".
SCENE: dict[str, Any] = {
    "name": "params",
    "landsat": "no_such_scene",
    "samples": {"path": "no_such_samples.gpkg"},
}
#: What some models need beside ``model`` for the schema to pass.
NEEDS: dict[str, dict[str, Any]] = {
    "tr-ga-bp": {"source": {"landsat": "no_such_source", "samples": {"path": "no_such.gpkg"}}},
    "spectral-resnet": {"hyperspectral": {"path": "no_such_image.tif"}},
    "rf-classifier": {"classification": {"limits": {"Cu": 100.0}}},
}

BAD = [
    # model, params, key named, further words the message must contain
    ("rf", {"n_estimators": -5}, "model.params.n_estimators", ["-5", "'rf'", "[1, inf)"]),
    ("rf", {"n_estimators": 10.5}, "model.params.n_estimators", ["10.5", "must be an int"]),
    ("rf", {"max_features": "half"}, "model.params.max_features", ["'half'", "'sqrt'"]),
    ("rf", {"n_trees": 100}, "model.params.n_trees", ["has no parameter", "n_estimators"]),
    ("rf", {"random_state": 1}, "model.params.random_state", ["validation.seed"]),
    ("ga-bp", {"hidden": 0}, "model.params.hidden", ["0 is invalid", "'ga-bp'", "[1, inf)"]),
    ("ga-bp", {"hidden": True}, "model.params.hidden", ["integer", "True"]),
    ("ga-bp", {"hiden": 3}, "model.params.hiden", ["did you mean 'hidden'"]),
    ("ga-bp", {"activation": "relu"}, "model.params.activation", ["'sigmoid'", "'tanh'"]),
    ("ga-bp", {"population": 1}, "model.params.population", ["[2, inf)"]),
    ("ga-bp", {"crossover_prob": 1.5}, "model.params.crossover_prob", ["[0.0, 1.0]"]),
    ("ga-bp", {"device": "gpu0"}, "model.params.device", ["not a torch device"]),
    ("ga-bp", {"random_state": 3}, "model.params.random_state", ["validation.seed"]),
    ("tr-ga-bp", {"momentum": 1.0}, "model.params.momentum", ["[0.0, 1.0)"]),
    ("tr-ga-bp", {"learning_rate": 0}, "model.params.learning_rate", ["(0.0, inf)"]),
    ("tr-ga-bp", {"beta_grid": [0.0, float("nan")]}, "model.params.beta_grid", ["finite"]),
    ("tr-ga-bp", {"source": "x"}, "model.params.source", ["'source:' block"]),
    (
        "tr-ga-bp",
        {"source_params": {"population": 1}},
        "model.params.source_params.population",
        ["'ga-bp'", "[2, inf)"],
    ),
    (
        "tr-ga-bp",
        {"source_params": {"hiden": 2}},
        "model.params.source_params.hiden",
        ["did you mean 'hidden'"],
    ),
    ("tr-ga-bp", {"source_params": 4}, "model.params.source_params", ["dict"]),
    ("ok", {"variogram_model": "cubic"}, "model.params.variogram_model", ["'spherical'"]),
    (
        "ok",
        {"variogram_parameters": [1.0, 500.0, 0.0]},
        "model.params.variogram_parameters",
        ["named variogram_model"],
    ),
    (
        "ok",
        {"variogram_model": "spherical", "variogram_parameters": [1.0, 2.0]},
        "model.params.variogram_parameters",
        ["[sill, range, nugget]"],
    ),
    (
        "ok",
        {"variogram_model": "gaussian", "variogram_parameters": ["a", "b", "c"]},
        "model.params.variogram_parameters",
        ["sill must be a number >= 0", "'a'"],
    ),
    (
        "ok",
        {"variogram_model": "spherical", "variogram_parameters": {"psill": 1, "range": 0}},
        "model.params.variogram_parameters",
        ["[sill, range, nugget]"],
    ),
    ("tr-ga-bp", {"beta_grid": {"a": 1}}, "model.params.beta_grid", ["finite numbers"]),
    ("ok", {"n_closest_points": 1}, "model.params.n_closest_points", ["[2, inf) or None"]),
    ("ok", {"coords": ["x", "y"]}, "model.params.coords", ["pixel-centre coordinates"]),
    ("rk", {"base": "svm"}, "model.params.base", ["rf or gbm or ga-bp"]),
    ("rk", {"cv": 1}, "model.params.cv", ["[2, inf)"]),
    ("rk", {"kriging_params": {}}, "model.params.kriging_params", ["model.params.kriging'"]),
    (
        "rk",
        {"base_params": {"n_estimators": 0}},
        "model.params.base_params.n_estimators",
        ["'rf'", "[1, inf)"],
    ),
    (
        "rk",
        {"base": "ga-bp", "base_params": {"hidden": -1}},
        "model.params.base_params.hidden",
        ["'ga-bp'"],
    ),
    ("rk", {"kriging": {"nlags": 0}}, "model.params.kriging.nlags", ["'ok'", "[1, inf)"]),
    ("rk", {"kriging": {"backend": "gpu"}}, "model.params.kriging.backend", ["'loop'"]),
    ("spectral-resnet", {"max_epochs": 0}, "model.params.max_epochs", ["[1, inf)"]),
    (
        "spectral-resnet",
        {"freeze": ["conv", "residual", "dense"]},
        "model.params.freeze",
        ["nothing would be trained"],
    ),
    ("spectral-resnet", {"validation_fraction": 1.0}, "model.params.validation_fraction", []),
    ("spectral-resnet", {"preprocess": ["msc"]}, "model.params.preprocess", ["unknown step"]),
    ("rf-classifier", {"n_estimators": 50}, "model.params.n_estimators", ["no parameters"]),
]


def _scene(tmp_path: Path, model: str, params: dict[str, Any]) -> Path:
    cfg = {**SCENE, **NEEDS.get(model, {}), "model": {"name": model, "params": params}}
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("model", "params", "key", "words"), BAD, ids=[f"{m}-{k}" for m, _, k, _ in BAD]
)
def test_bad_model_params_stop_the_cli_before_any_input_is_read(
    tmp_path: Path, model: str, params: dict[str, Any], key: str, words: list[str]
) -> None:
    scene = _scene(tmp_path, model, params)
    res = CliRunner().invoke(app, ["run", str(scene), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    message = lines[0]
    assert message.startswith(f"error: {scene}: {key}"), message
    for word in words:
        assert word in message, (word, message)
    assert "Traceback" not in res.output
    assert "does not exist" not in message  # no input was read
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("rf", {"n_estimators": 200, "max_features": 0.333, "min_samples_leaf": 2}),
        ("rf", {"n_jobs": 1, "max_depth": None}),
        ("ga-bp", {"hidden": 6, "activation": "tanh", "crossover_prob": 1, "goal": 0.3}),
        (
            "tr-ga-bp",
            {
                "source_params": {"population": 10, "generations": 10, "lm_iterations": 20},
                "retrain_epochs": 200,
                "beta_grid": [0, 0.5, 1],
                "momentum": 0,
            },
        ),
        ("ok", {"variogram_model": "spherical", "variogram_parameters": [1.0, 500.0, 0.1]}),
        ("ok", {"n_closest_points": None, "nlags": 10, "weight": True}),
        (
            "rk",
            {"base": "rf", "base_params": {"n_estimators": 100}, "kriging": {"nlags": 8}},
        ),
        ("rk", {"base": "ga-bp", "base_params": {"hidden": 3}, "cv": 4}),
        (
            "spectral-resnet",
            {"max_epochs": 150, "freeze": ["conv"], "preprocess": ["absorbance", "snv"]},
        ),
        ("rf-classifier", {}),
    ],
)
def test_valid_model_params_pass_and_build(model: str, params: dict[str, Any]) -> None:
    cfg = parse_config(
        {**SCENE, **NEEDS.get(model, {}), "model": {"name": model, "params": params}},
        source="scene.yaml",
    )
    assert cfg.model.params == params
    if not model.endswith("-classifier"):
        make_regressor(model, params)  # what training builds from them


@pytest.mark.parametrize(
    "cls",
    [
        GABPRegressor,
        TransferGABPRegressor,
        OrdinaryKrigingRegressor,
        RegressionKriging,
        SpectralResNetRegressor,
        BufferDistances,
    ],
)
def test_every_parameter_has_constraints_that_its_default_meets(
    cls: type[BaseEstimator],
) -> None:
    assert set(cls._parameter_constraints) == set(cls._get_param_names())
    args = {"base": RandomForestRegressor()} if cls is RegressionKriging else {}
    cls(**args)._validate_params()  # the defaults are valid


def test_estimator_validation_names_the_parameter() -> None:
    with pytest.raises(InvalidParameterError, match="'hidden' parameter of GABPRegressor"):
        GABPRegressor(hidden=0)._validate_params()
    with pytest.raises(InvalidParameterError, match="'nlags' parameter"):
        OrdinaryKrigingRegressor(nlags=0)._validate_params()


def test_every_model_name_is_checked() -> None:
    for name in MODEL_NAMES:
        with pytest.raises(ConfigError, match=r"^model\.params\.bogus_key: "):
            check_model_params(name, {"bogus_key": 1})
    with pytest.raises(ConfigError, match=r"^model\.params: 3 is invalid"):
        check_model_params("rf", 3)  # type: ignore[arg-type]

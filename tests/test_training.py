"""Model pipelines per target: rf / ga-bp / tr-ga-bp with screening, outliers and CV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geohm.config import parse_config
from geohm.errors import ConfigError
from geohm.models import make_regressor
from geohm.sampling import SampleTable
from geohm.training import fit_target

FAST_GABP = {"population": 10, "generations": 5, "lm_iterations": 15}


def _table(n: int, seed: int, shift: float = 0.0) -> SampleTable:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "NDVI": rng.uniform(0, 0.8, n),
            "CMR": rng.uniform(1, 2, n),
            "noise": rng.normal(size=n),
            "aspect": rng.uniform(0, 360, n),
            "elevation": rng.uniform(900, 2000, n),
        },
        index=pd.Index([f"S{i:02d}" for i in range(n)], name="id"),
    )
    cu = 20 + 60 * (0.8 - X["NDVI"]) ** 2 + 25 * (X["CMR"] - 1) + shift + rng.normal(0, 2, n)
    y = pd.DataFrame({"Cu": cu})
    return SampleTable(X=X, y=y, xy=rng.uniform(0, 1000, (n, 2)))


def _cfg(**model):
    return parse_config(
        {
            "name": "t",
            "landsat": "x",
            "samples": {"path": "s.gpkg", "targets": ["Cu"]},
            "source": {"landsat": "y", "samples": {"path": "s0.gpkg", "targets": ["Cu"]}},
            "selection": {"method": "correlation_vif", "force": ["aspect", "elevation"]},
            "preprocess": {"outliers": "iqr"},
            "model": model,
            "validation": {"test_fraction": 0.25, "cv_folds": 4, "seed": 0},
        }
    ).fit_spec()


def test_rf_pipeline_screens_factors_and_reports() -> None:
    table = _table(44, 0)
    table.y.iloc[3, 0] = 900.0  # a gross outlier
    fit = fit_target(_cfg(name="rf", params={"n_estimators": 50}), table, "Cu")
    rep = fit.report
    assert rep["outliers_removed"] == ["S03"]
    assert set(rep["features"]) == {"NDVI", "CMR", "aspect", "elevation"}
    noise = next(s for s in rep["selection"] if s["feature"] == "noise")
    assert not noise["kept"] and noise["reason"].startswith("dropped: p =")
    assert rep["test"]["n"] == 11 and rep["cv"]["folds"] == 4 and rep["cv"]["n"] == 32
    assert rep["test"]["r2"] > 0.5
    # the fitted pipeline predicts from a plain array in the cube's column order
    pred = fit.estimator.predict(table.X.to_numpy()[:5])
    assert pred.shape == (5,) and np.isfinite(pred).all()
    assert list(fit.samples.columns[:2]) == ["Cu_observed", "Cu_split"]


def test_gabp_pipeline_is_reproducible() -> None:
    cfg = _cfg(name="ga-bp", params=FAST_GABP)
    a = fit_target(cfg, _table(44, 1), "Cu")
    b = fit_target(cfg, _table(44, 1), "Cu")
    assert a.report["test"]["rmse"] == b.report["test"]["rmse"]
    assert a.report["test"]["r2"] > 0.3


def test_transfer_pipeline_uses_the_source_year() -> None:
    params = {"source_params": FAST_GABP, "retrain_epochs": 100}
    cfg = _cfg(name="tr-ga-bp", params=params)
    source, target = _table(44, 2), _table(21, 3, shift=15.0)
    fit = fit_target(cfg, target, "Cu", source=source)
    rep = fit.report
    assert rep["transfer"]["beta0"] in (0.0, 0.1, 1.0)
    assert set(rep["features"]) == {"NDVI", "CMR", "aspect", "elevation"}
    assert "source year" in rep["notes"][0]
    assert rep["source"]["n"] == 44 and rep["source"]["cv"]["n"] == 44
    # the source-only net misses the +15 mg/kg shift; the transferred net does not
    assert rep["test"]["rmse"] < rep["source"]["test_source_only"]["rmse"]
    assert fit.features == rep["features"]
    assert fit.estimator.predict(target.X[fit.features].to_numpy()[:3]).shape == (3,)
    # covariate shift: the target year's samples against the source year's AOA
    shift = rep["applicability"]["covariate_shift"]
    assert shift["n_source"] == 44 and shift["n_target"] == fit.report["n_train"]
    assert fit.source_aoa is not None and fit.source_aoa_features
    X = target.X[fit.source_aoa_features].to_numpy(dtype="float64")
    outside = fit.source_aoa.di(X) > fit.source_aoa.threshold
    # the training rows of the target year are a subset of these
    assert 0.0 <= shift["share_outside"] <= 1.0 and outside.sum() >= shift["n_outside"]


def test_unknown_model_params_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="has no parameter 'hiden'"):
        make_regressor("ga-bp", {"hiden": 3})
    with pytest.raises(ConfigError, match="random forest has no parameter 'n_trees'"):
        make_regressor("rf", {"n_trees": 3})


def test_spatial_block_cv_is_reported_beside_random_cv() -> None:
    table = _table(44, 5)
    # cluster the samples in pairs 5 m apart: random folds see a near twin, blocks do not
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 5000, (22, 2))
    table.xy = np.repeat(centres, 2, axis=0) + rng.normal(0, 5, (44, 2))
    cfg = _cfg(name="rf", params={"n_estimators": 30})
    cfg.validation.block_size = 500.0
    rep = fit_target(cfg, table, "Cu").report
    sp = rep["cv_spatial"]
    assert sp["block_size_m"] == 500.0 and sp["folds"] == 4 and sp["n"] == rep["cv"]["n"]
    assert len(sp["fold_rmse"]) == 4
    cfg.validation.spatial_cv = False
    assert fit_target(cfg, table, "Cu").report["cv_spatial"] is None

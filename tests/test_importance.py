"""Permutation importance on spatial folds and partial dependence (geohm.importance)."""

from __future__ import annotations

import doctest
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.inspection import partial_dependence, permutation_importance
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from geohm import importance
from geohm.config import parse_config
from geohm.errors import SampleError
from geohm.fitting import model_pipeline, spatial_folds
from geohm.importance import (
    aoa_weights,
    partial_dependence_top,
    permutation_importance_cv,
)
from geohm.spatialcv import spatial_block_folds


def _linear_case(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = 3 x1 + x2 + N(0, 0.05); x3 pure noise; 5 spatial block folds of random points."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, (n, 3))
    y = 3 * X[:, 0] + X[:, 1] + rng.normal(0, 0.05, n)
    xy = rng.uniform(0, 1000, (n, 2))
    folds = spatial_block_folds(xy, n_splits=5, block_size=200, random_state=0)
    return X, y, folds


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), LinearRegression()),
        lambda: RandomForestRegressor(n_estimators=30, random_state=0),
    ],
    ids=["linear", "forest"],
)
def test_pure_noise_factor_ranks_last(make) -> None:
    X, y, folds = _linear_case()
    res = permutation_importance_cv(make, X, y, folds, columns=["x1", "x2", "x3"])
    assert [name for name, _, _ in res.ranked()] == ["x1", "x2", "x3"]
    assert res.folds == [0, 1, 2, 3, 4] and not res.skipped
    # x3 plays no part: its mean RMSE increase is ~0 (against ~1.1 mg/kg for x1).
    assert abs(res.mean[2]) < 0.01 * res.mean[0]
    assert res.values.shape == (5, 3, 5)
    assert aoa_weights(res)[2] == max(res.mean[2], 0.0)
    assert np.all(aoa_weights(res) >= 0)


def test_rmse_increase_of_an_exact_linear_model_is_hand_checkable() -> None:
    # y = 2 x1 exactly: the baseline RMSE is 0 and shuffling x1 within a fold gives
    # errors 2 (x1[perm] - x1). For a uniformly random permutation E[(x_perm - x)^2] =
    # 2 var(x) (population variance of the fold), so the RMSE is ~ 2 sqrt(2) sd(x1).
    rng = np.random.default_rng(1)
    n = 600
    X = rng.uniform(0, 1, (n, 2))
    y = 2 * X[:, 0]
    folds = np.arange(n) % 3
    res = permutation_importance_cv(LinearRegression(), X, y, folds, n_repeats=10)
    assert np.allclose(res.baseline_rmse, 0.0, atol=1e-12)
    for i, k in enumerate(res.folds):
        expected = 2 * np.sqrt(2) * X[folds == k, 0].std()
        assert res.per_fold[i, 0] == pytest.approx(expected, rel=0.06)
    assert res.mean[0] == pytest.approx(2 * np.sqrt(2) * X[:, 0].std(), rel=0.03)
    assert abs(res.mean[1]) < 1e-9  # x2's coefficient is 0: shuffling it changes nothing
    assert aoa_weights(res)[1] < 1e-9


def test_seeded_and_deterministic() -> None:
    X, y, folds = _linear_case(n=120)

    def make():
        return RandomForestRegressor(n_estimators=10, random_state=0)

    a = permutation_importance_cv(make, X, y, folds, random_state=3)
    b = permutation_importance_cv(make, X, y, folds, random_state=3)
    c = permutation_importance_cv(make, X, y, folds, random_state=4)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.mean, b.mean)
    assert a.to_report() == b.to_report()
    assert not np.array_equal(a.values, c.values)
    # An estimator (cloned each fold) is the same as a function making it.
    d = permutation_importance_cv(make(), X, y, folds, random_state=3)
    assert np.array_equal(a.values, d.values)


def _frame(n: int = 60, seed: int = 4) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.uniform(0, 1, n),
            "code": rng.integers(0, 4, n),  # an integer column
            "b": rng.uniform(0, 1, n),
        },
        index=pd.Index([f"S{i}" for i in range(n)]),  # not positions
    )
    y = 10 * X["a"] + 2 * X["code"] + X["b"] + rng.normal(0, 0.2, n)
    return X, y.to_numpy(), np.arange(n) % 3


def test_stacked_shuffles_equal_one_prediction_per_shuffle() -> None:
    # The permutations are documented (default_rng([random_state, fold]), factor by
    # factor, repeat by repeat): predicting each shuffled copy alone gives the same values.
    X, y, folds = _frame()

    def make():
        return RandomForestRegressor(n_estimators=20, random_state=0)

    res = permutation_importance_cv(make, X, y, folds, n_repeats=3, random_state=7)
    for i, k in enumerate(res.folds):
        test, train = folds == k, folds != k
        est = make().fit(X[train], y[train])
        Xt, yt = X[test], y[test]
        base = np.sqrt(np.mean((est.predict(Xt) - yt) ** 2))
        assert res.baseline_rmse[i] == pytest.approx(base, rel=1e-12)
        rng = np.random.default_rng([7, k])
        for j, name in enumerate(X.columns):
            for r in range(3):
                shuffled = Xt.assign(**{name: Xt[name].to_numpy()[rng.permutation(len(yt))]})
                rmse = np.sqrt(np.mean((est.predict(shuffled) - yt) ** 2))
                assert res.values[i, j, r] == pytest.approx(rmse - base, rel=1e-9, abs=1e-12)
    # An array gives the same as the DataFrame.
    arr = permutation_importance_cv(make, X.to_numpy(), y, folds, n_repeats=3, random_state=7)
    assert np.allclose(arr.values, res.values) and arr.factors == ["x0", "x1", "x2"]


def test_agrees_with_scikit_learn_permutation_importance() -> None:
    # The reference: sklearn.inspection.permutation_importance on the same fold model
    # (other permutations, so equal in expectation: 150 repeats each).
    X, y, folds = _frame(n=90)
    res = permutation_importance_cv(LinearRegression(), X, y, folds, n_repeats=150)
    for i, k in enumerate(res.folds):
        est = LinearRegression().fit(X[folds != k], y[folds != k])
        ref = permutation_importance(
            est,
            X[folds == k],
            y[folds == k],
            scoring="neg_root_mean_squared_error",
            n_repeats=150,
            random_state=0,
        )
        assert np.allclose(res.per_fold[i], ref.importances_mean, rtol=0.05)


def test_tiny_folds_are_skipped_and_listed() -> None:
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 1, (20, 2))
    y = X[:, 0] + 0.1 * X[:, 1]
    folds = np.array([0] * 8 + [1] * 8 + [2] + [-1] * 3)
    res = permutation_importance_cv(LinearRegression(), X, y, folds)
    assert res.folds == [0, 1] and res.n_test == [8, 8]
    assert res.n_unused == 3
    assert [(s["fold"], s["n_test"]) for s in res.skipped] == [(2, 1)]
    assert "fewer than 2 held-out rows" in res.skipped[0]["reason"]
    rep = json.loads(json.dumps(res.to_report(), allow_nan=False))
    assert rep["skipped"] == res.skipped and rep["n_unused"] == 3
    assert [f["factor"] for f in rep["factors"]] == ["x0", "x1"]
    assert [f["rank"] for f in rep["factors"]] == [1, 2]
    assert len(rep["factors"][0]["per_fold"]) == 2
    assert rep["factors"][0]["mean"] == pytest.approx(np.mean(rep["factors"][0]["per_fold"]))


def test_no_usable_fold_is_an_error_naming_each_fold() -> None:
    X = np.arange(6.0).reshape(3, 2)
    with pytest.raises(SampleError, match="fold 0: fewer than 2.*fold 2: fewer than 2"):
        permutation_importance_cv(LinearRegression(), X, X[:, 0], np.array([0, 1, 2]))
    with pytest.raises(SampleError, match="no other fold to fit on"):
        permutation_importance_cv(LinearRegression(), X, X[:, 0], np.array([0, 0, 0]))
    with pytest.raises(ValueError, match="one of each per row"):
        permutation_importance_cv(LinearRegression(), X, X[:, 0], np.array([0, 1]))


def test_partial_dependence_of_a_linear_model_is_its_slope() -> None:
    rng = np.random.default_rng(3)
    n = 200
    X = pd.DataFrame(
        {
            "x1": rng.uniform(0, 10, n),
            "rock": rng.integers(0, 3, n),  # class codes
            "x2": rng.uniform(0, 1, n),
            "flat": np.full(n, 4.0),
        }
    )
    y = 2.0 * X["x1"] + 3.0 * X["rock"] + 0.5 * X["x2"]
    model = make_pipeline(StandardScaler(), LinearRegression())
    res = permutation_importance_cv(model, X, y, np.arange(n) % 4)
    assert [name for name, _, _ in res.ranked()] == ["x1", "rock", "x2", "flat"]
    fitted = model.fit(X, y)
    curves = partial_dependence_top(fitted, X, res, categorical=["rock"])
    # x1 and x2 drawn; rock (categorical) and flat (constant) named with the reason.
    assert [c["factor"] for c in curves] == ["x1", "rock", "x2", "flat"]
    assert "categorical" in curves[1]["skipped"] and "constant" in curves[3]["skipped"]
    x1 = curves[0]
    assert len(x1["grid"]) == 20
    assert x1["grid"][0] == pytest.approx(np.percentile(X["x1"], 5))
    assert x1["grid"][-1] == pytest.approx(np.percentile(X["x1"], 95))
    slope, _ = np.polyfit(x1["grid"], x1["average"], 1)
    assert slope == pytest.approx(2.0, abs=1e-9)
    assert np.allclose(np.diff(x1["average"]) / np.diff(x1["grid"]), 2.0)
    # The curve passes through the mean prediction at the mean of the others.
    mid = fitted.predict(X.assign(x1=x1["grid"][3])).mean()
    assert x1["average"][3] == pytest.approx(mid)
    assert np.polyfit(curves[2]["grid"], curves[2]["average"], 1)[0] == pytest.approx(0.5)
    # top=1 stops after the first curve.
    assert [c["factor"] for c in partial_dependence_top(fitted, X, res, top=1)] == ["x1"]
    # A missing value of a factor stays out of its grid (the pipeline imputes it).
    Xnan = X.assign(x2=X["x2"].where(np.arange(n) != 5))
    imputing = make_pipeline(SimpleImputer(), LinearRegression()).fit(Xnan, y)
    nan_curves = partial_dependence_top(imputing, Xnan, res, categorical=["rock"])
    assert len(nan_curves[2]["grid"]) == 20 and np.all(np.isfinite(nan_curves[2]["grid"]))
    assert nan_curves[2]["grid"][0] == pytest.approx(np.nanpercentile(Xnan["x2"], 5))


def test_partial_dependence_equals_scikit_learn() -> None:
    X, y, folds = _frame()
    res = permutation_importance_cv(LinearRegression(), X, y, folds)
    forest = RandomForestRegressor(n_estimators=20, random_state=0).fit(X, y)
    curves = partial_dependence_top(forest, X, res, top=3, grid_resolution=7)
    assert [c["factor"] for c in curves] == ["a", "code", "b"]
    for c in curves:
        ref = partial_dependence(
            forest,
            X.astype({"code": float}),  # scikit-learn refuses integer columns
            [c["factor"]],
            method="brute",
            custom_values={c["factor"]: np.array(c["grid"])},
        )
        assert np.allclose(c["average"], ref["average"][0], rtol=1e-12)
    assert curves[1]["grid"] == [0.0, 1.0, 2.0, 3.0]  # few distinct values: those values
    assert len(curves[0]["grid"]) == 7
    # An array (columns in the order of the result's factors) gives the same curves.
    forest_a = RandomForestRegressor(n_estimators=20, random_state=0).fit(X.to_numpy(), y)
    on_array = partial_dependence_top(forest_a, X.to_numpy(), res, top=3, grid_resolution=7)
    for a, c in zip(on_array, curves, strict=True):
        assert np.allclose(a["average"], c["average"]) and a["grid"] == c["grid"]


def _spec(**model):
    return parse_config(
        {
            "name": "t",
            "landsat": "x",
            "samples": {"path": "s.gpkg", "targets": ["Cu"]},
            "selection": {"method": "correlation_vif", "force": ["aspect"]},
            "model": model,
            "validation": {"cv_folds": 4, "seed": 0},
        }
    ).fit_spec()


def test_geohm_pipeline_on_a_sample_table() -> None:
    # The sample table of tests/test_training.py: Cu from NDVI and CMR; "noise" is
    # screened out by the pipeline's correlation/VIF step in every fold, so shuffling it
    # changes no prediction.
    rng = np.random.default_rng(0)
    n = 44
    X = pd.DataFrame(
        {
            "NDVI": rng.uniform(0, 0.8, n),
            "CMR": rng.uniform(1, 2, n),
            "noise": rng.normal(size=n),
            "aspect": rng.uniform(0, 360, n),
            "elevation": rng.uniform(900, 2000, n),
        }
    )
    y = 20 + 60 * (0.8 - X["NDVI"]) ** 2 + 25 * (X["CMR"] - 1) + rng.normal(0, 2, n)
    xy = rng.uniform(0, 1000, (n, 2))
    spec = _spec(name="rf", params={"n_estimators": 30})
    folds, _ = spatial_folds(spec, xy, y.to_numpy(), 4)
    assert folds is not None

    def make():
        return model_pipeline(spec, list(X.columns))

    res = permutation_importance_cv(make, X, y, folds, n_repeats=3)
    assert res.factors == list(X.columns)
    assert [name for name, _, _ in res.ranked()][:2] == ["NDVI", "CMR"]
    assert np.all(np.abs(res.values[:, 2]) < 1e-9)
    json.dumps(res.to_report(), allow_nan=False)
    curves = partial_dependence_top(make().fit(X, y), X, res, top=2, grid_resolution=10)
    assert [c["factor"] for c in curves] == ["NDVI", "CMR"]
    ndvi = curves[0]["average"]
    assert ndvi[0] > ndvi[-1]  # Cu falls with NDVI over this range


def test_doctests() -> None:
    assert doctest.testmod(importance).failed == 0

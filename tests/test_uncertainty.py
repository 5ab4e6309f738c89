"""Prediction intervals (geohm.models.uncertainty) and their calibration (geohm.evaluate)."""

from __future__ import annotations

import doctest
import io
import logging
import pickle
import threading

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from geohm import evaluate
from geohm.evaluate import (
    cross_validate,
    cross_validate_interval,
    interval_coverage,
    interval_metrics,
)
from geohm.models import kernel, make_regressor, uncertainty
from geohm.models.kriging import OrdinaryKrigingRegressor
from geohm.models.uncertainty import (
    IntervalModel,
    conformal_quantile,
    estimator_parts,
    interval_model,
    interval_width,
    prediction_interval,
)
from geohm.preprocess import build_pipeline, log_target

Z90 = 1.6448536269514722  # standard-normal 95 % quantile


def hetero(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    """Concentration-like target whose noise grows sixfold along factor ``b``."""
    X = rng.uniform(0, 1, (n, 4))
    y = 20 + 10 * X[:, 0] + rng.normal(0, 0.3 + 2 * X[:, 1], n)
    return pd.DataFrame(X, columns=["a", "b", "c", "d"]), y


def rf_pipeline(*, log: bool = False) -> Pipeline:
    return build_pipeline(
        make_regressor("rf", {"n_estimators": 60, "n_jobs": 1}, random_state=0), log=log
    )


Data = tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="module")
def hetero_data() -> Data:
    rng = np.random.default_rng(0)
    X, y = hetero(400, rng)
    X_test, y_test = hetero(2000, rng)
    return X, y, X_test.to_numpy(np.float32), y_test  # pixels come as float32 arrays


@pytest.fixture(scope="module")
def rf_fit(hetero_data: Data) -> tuple[Pipeline, IntervalModel]:
    X, y, _, _ = hetero_data
    pipe = rf_pipeline().fit(X, y)
    return pipe, interval_model(pipe, X, y, random_state=0)


def test_doctests() -> None:
    assert doctest.testmod(uncertainty).failed == 0
    assert doctest.testmod(evaluate).failed == 0


# --------------------------------------------------------------------------- QRF


def test_quantile_forest_by_hand() -> None:
    # One unbootstrapped stump splits 0..9 at 4.5: the leaf of x = 2 holds y = 0..4,
    # each of weight 1/5, so F(3) = 0.8 < 0.95 <= F(4) = 1: the 90 % interval is [0, 4].
    X = np.arange(10.0)[:, None]
    rf = RandomForestRegressor(n_estimators=1, bootstrap=False, max_depth=1, random_state=0)
    rf.fit(X, X[:, 0])
    im = IntervalModel(rf, calibrate=False).fit(X, X[:, 0])
    pred, lower, upper = im.predict_interval(np.array([[2.0], [7.0]]))
    assert im.method_ == "quantile-forest"
    assert pred.tolist() == [2.0, 7.0]
    assert lower.tolist() == [0.0, 5.0]
    assert upper.tolist() == [4.0, 9.0]
    assert im.correction_ is None and im.n_calibration_ == 0


def test_quantile_forest_coverage_adaptivity_and_mean(
    hetero_data: Data, rf_fit: tuple[Pipeline, IntervalModel]
) -> None:
    _, _, X_test, y_test = hetero_data
    pipe, im = rf_fit
    pred, lower, upper = im.predict_interval(X_test)
    # The map stays the forest's mean: scikit-learn's prediction, bit for bit.
    np.testing.assert_array_equal(pred, pipe.predict(X_test))
    coverage = interval_coverage(y_test, lower, upper)
    assert coverage == pytest.approx(0.9, abs=0.05)
    # raw QRF intervals of fully grown trees are too narrow; calibration widened them
    assert im.correction_ is not None
    assert im.raw_oof_coverage_ < 0.88 and im.correction_ > 0
    # the band follows the noise (sd 0.3 + 2b), if less than fully: wider where b is large
    width = upper - lower
    assert width[X_test[:, 1] > 0.7].mean() > 1.3 * width[X_test[:, 1] < 0.3].mean()


def test_log_target_bounds_are_back_transformed_log_bounds(hetero_data: Data) -> None:
    X, y, X_test, _ = hetero_data
    logged = rf_pipeline(log=True).fit(X, y)
    # The same forest fitted on log1p(y) without the wrapper: identical trees.
    plain = rf_pipeline().fit(X, np.log1p(y))
    im_log = interval_model(logged, X, y, random_state=0)
    im_plain = interval_model(plain, X, np.log1p(y), random_state=0)
    assert im_log.correction_ == pytest.approx(im_plain.correction_, rel=1e-12)
    pred, lower, upper = im_log.predict_interval(X_test)
    p_log, lo_log, hi_log = im_plain.predict_interval(X_test)
    np.testing.assert_allclose(lower, np.expm1(lo_log), rtol=1e-12)
    np.testing.assert_allclose(upper, np.expm1(hi_log), rtol=1e-12)
    np.testing.assert_array_equal(pred, logged.predict(X_test))
    assert np.all(lower <= pred) and np.all(pred <= upper)


def test_chunks_pickle_and_seed_do_not_change_intervals(
    hetero_data: Data, rf_fit: tuple[Pipeline, IntervalModel]
) -> None:
    X, y, X_test, _ = hetero_data
    pipe, im = rf_fit
    again = interval_model(pipe, X, y, random_state=0)
    assert again.correction_ == im.correction_
    lower, upper = im.interval(X_test)
    again.set_params(chunk_size=37)
    np.testing.assert_array_equal(again.interval(X_test)[0], lower)
    buf = io.BytesIO()
    joblib.dump({"estimator": pipe, "interval": im}, buf)
    buf.seek(0)
    loaded = joblib.load(buf)
    assert loaded["interval"].estimator is loaded["estimator"]  # stored once
    np.testing.assert_array_equal(loaded["interval"].interval(X_test)[1], upper)


def _sparse_reference(
    im: IntervalModel, X: np.ndarray, qs: tuple[float, ...]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Mean and quantiles from scikit-learn's trees and scipy's sparse products."""
    lw, forest = im.forest_, estimator_parts(im.estimator).final
    assert lw is not None
    nodes, mean = lw._apply_trees(forest, X)
    return mean, lw._quantiles_sparse(nodes, qs)


needs_kernel = pytest.mark.skipif(
    not kernel.available(), reason="the forest kernel was not built (no C compiler at install)"
)
LEVELS = (0.0, 0.05, 0.1, 0.5, 0.9, 0.95, 1.0)


@needs_kernel
@pytest.mark.parametrize(
    ("n_train", "params", "bit_vector"),
    [
        (60, {}, True),  # small trees: leaves from the compiled bit-vector tables
        (400, {"max_leaf_nodes": 100}, True),
        (400, {}, False),  # large trees: scikit-learn's apply, compiled quantiles
        (3000, {"n_estimators": 20}, False),  # few weights per row: sorted ranks
        (3000, {"n_estimators": 4}, False),
    ],
)
def test_compiled_quantile_forest_equals_sparse_path(
    n_train: int, params: dict[str, int], bit_vector: bool
) -> None:
    rng = np.random.default_rng(n_train)
    X, y = hetero(n_train, rng)
    X_test = hetero(3000, rng)[0].to_numpy(np.float32, copy=True)
    X_test[:5] = X.to_numpy(np.float32)[:5]  # training rows: their own leaves
    forest = RandomForestRegressor(**{"n_estimators": 50, **params}, n_jobs=1, random_state=0)
    forest.fit(X.to_numpy(), y)
    im = IntervalModel(forest, calibrate=False).fit(X.to_numpy(), y)
    lw = im.forest_
    assert lw is not None
    kernel = lw.kernel(forest)
    assert kernel is not None and (kernel.trees is not None) == bit_vector
    mean, bounds, _ = lw.predict(forest, X_test, LEVELS)
    ref_mean, ref_bounds = _sparse_reference(im, X_test, LEVELS)
    np.testing.assert_array_equal(mean, ref_mean)
    np.testing.assert_array_equal(mean, forest.predict(X_test))
    for got, ref in zip(bounds, ref_bounds, strict=True):
        np.testing.assert_array_equal(got, ref)
    nodes, mean2 = lw.apply(forest, X_test)
    np.testing.assert_array_equal(nodes, lw._apply_trees(forest, X_test)[0])
    np.testing.assert_array_equal(mean2, mean)
    for got, ref in zip(lw.quantiles(nodes, LEVELS, forest), ref_bounds, strict=True):
        np.testing.assert_array_equal(got, ref)
    # Missing values: scikit-learn finds the leaves, the compiled routine the quantiles.
    X_nan = X_test[:200].copy()
    X_nan[::3, 1] = np.nan
    nan_mean, nan_bounds, _ = lw.predict(forest, X_nan, LEVELS)
    ref_mean, ref_bounds = _sparse_reference(im, X_nan, LEVELS)
    np.testing.assert_array_equal(nan_mean, ref_mean)
    for got, ref in zip(nan_bounds, ref_bounds, strict=True):
        np.testing.assert_array_equal(got, ref)


@needs_kernel
def test_compiled_quantile_forest_with_tied_targets_and_threads(hetero_data: Data) -> None:
    # Measured concentrations repeat (rounded to 1 mg/kg): many equal targets.
    X, y, X_test, _ = hetero_data
    y_tied = np.round(y)
    assert np.unique(y_tied).size < y.size / 10
    pipe = build_pipeline(
        make_regressor("rf", {"n_estimators": 60, "n_jobs": 2, "max_leaf_nodes": 64}), log=True
    ).fit(X, y_tied)
    im = interval_model(pipe, X, y_tied, random_state=0)
    big = np.tile(X_test, (10, 1))  # 20 000 rows: a 16 384-row chunk runs in two threads
    two = im.predict_interval(big)
    final = estimator_parts(pipe).final
    assert final.n_jobs == 2 and im.forest_ is not None
    assert im.forest_.kernel(final).trees is not None
    final.set_params(n_jobs=1)
    one = im.predict_interval(big)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(one[0], pipe.predict(big))
    qs = (0.05, 0.95)
    Xt = estimator_parts(pipe).features(X_test)
    mean, bounds, _ = im.forest_.predict(final, Xt, qs)
    ref_mean, ref_bounds = _sparse_reference(im, np.asarray(Xt, dtype=np.float32), qs)
    np.testing.assert_array_equal(mean, ref_mean)
    for got, ref in zip(bounds, ref_bounds, strict=True):
        np.testing.assert_array_equal(got, ref)
    assert set(np.unique(np.expm1(bounds[0]).round(6))) <= set(np.unique(y_tied))


def test_quantile_forest_without_the_kernel(
    monkeypatch: pytest.MonkeyPatch, hetero_data: Data, rf_fit: tuple[Pipeline, IntervalModel]
) -> None:
    # Installed without a C compiler (no extension): scikit-learn's trees and scipy's
    # sparse products, the same intervals.
    X, y, X_test, _ = hetero_data
    pipe, im = rf_fit
    expected = im.predict_interval(X_test)
    monkeypatch.setattr(kernel, "_EXT", None)
    monkeypatch.setattr(kernel, "_WARNED", threading.Event())  # its warning: once, here
    plain = interval_model(pipe, X, y, random_state=0)
    assert plain.forest_ is not None and plain.forest_.kernel(pipe.steps[-1][1]) is None
    assert plain.correction_ == im.correction_
    for got, ref in zip(plain.predict_interval(X_test), expected, strict=True):
        np.testing.assert_array_equal(got, ref)
    Xa = X.to_numpy()
    small = RandomForestRegressor(30, max_leaf_nodes=20, random_state=0).fit(Xa, y)
    fallback = IntervalModel(small, calibrate=False).fit(Xa, y)
    pred, lower, upper = fallback.predict_interval(X_test)
    np.testing.assert_array_equal(pred, small.predict(X_test))
    assert np.all(lower <= upper)


@needs_kernel
def test_fitted_interval_model_pickles_without_the_kernel(
    hetero_data: Data, rf_fit: tuple[Pipeline, IntervalModel]
) -> None:
    _, _, X_test, _ = hetero_data
    pipe, im = rf_fit
    assert im.forest_ is not None
    before = len(pickle.dumps(im))
    expected = im.predict_interval(X_test)
    assert im.forest_.kernel(pipe.steps[-1][1]) is not None  # built and cached
    data = pickle.dumps(im)
    assert len(data) == before  # the kernel's tables are not stored
    loaded = pickle.loads(data)
    assert "_kernel" not in loaded.forest_.__dict__
    for got, ref in zip(loaded.predict_interval(X_test), expected, strict=True):
        np.testing.assert_array_equal(got, ref)
    # the new process's kernel belongs to the loaded forest, not the original one
    loaded_forest = estimator_parts(loaded.estimator).final
    assert loaded.forest_.kernel(loaded_forest).forest is loaded_forest


# --------------------------------------------------------------------------- nets


def test_interval_and_tree_votes_from_one_pass(
    hetero_data: Data, rf_fit: tuple[Pipeline, IntervalModel]
) -> None:
    X, y, X_test, _ = hetero_data
    pipe, im = rf_fit
    parts = estimator_parts(pipe)
    forest = parts.final
    t = np.stack([np.full(len(X_test), 25.0), np.linspace(15.0, 35.0, len(X_test))])
    t[1, :3] = np.nan  # no threshold: no tree counted
    pred, lower, upper, votes = im.predict_distribution(X_test, t)
    for got, ref in zip((pred, lower, upper), im.predict_interval(X_test), strict=True):
        np.testing.assert_array_equal(got, ref)
    # by hand: each tree's prediction is its leaf's value; count those above t
    Xt = np.asarray(parts.features(X_test), dtype=np.float32)
    trees = np.stack([tree.predict(Xt) for tree in forest.estimators_])
    assert votes is not None and votes.dtype == np.int32
    np.testing.assert_array_equal(votes, (trees[None] > t[:, None, :]).sum(axis=1))
    assert (votes[1, :3] == 0).all()
    for row in votes:  # the forest disagrees with itself on some pixels
        assert ((row > 0) & (row < len(forest.estimators_))).any()
    assert im.predict_distribution(X_test)[3] is None
    with pytest.raises(ValueError, match="thresholds of shape"):
        im.predict_distribution(X_test, t[0])
    lr = LinearRegression().fit(X, y)
    residual = interval_model(lr, X, y, random_state=0)
    with pytest.raises(ValueError, match="need a quantile forest"):
        residual.predict_distribution(X_test, t)


def test_conformal_gabp_coverage_and_oof_reuse() -> None:
    rng = np.random.default_rng(3)

    def data(n: int) -> tuple[pd.DataFrame, np.ndarray]:
        X = rng.uniform(0, 1, (n, 3))
        y = 50 + 20 * np.sin(3 * X[:, 0]) + 10 * X[:, 1] + rng.normal(0, 2 + 4 * X[:, 2], n)
        return pd.DataFrame(X, columns=["a", "b", "c"]), y

    X, y = data(250)
    X_test, y_test = data(2000)
    params = {"population": 20, "generations": 10, "lm_iterations": 20}
    pipe = build_pipeline(make_regressor("ga-bp", params, random_state=0))
    cv = cross_validate(pipe, X, y, folds=5, seed=0)
    pipe.fit(X, y)
    im = interval_model(pipe, X, y, oof_predictions=cv["predictions"], random_state=0)
    assert im.method_ == "residual" and im.n_calibration_ == 250
    # Q is the 226th smallest absolute out-of-fold residual: ceil(0.9 * 251) = 226
    resid = np.sort(np.abs(y - cv["predictions"]))
    assert im.correction_ == pytest.approx(resid[225])
    pred, lower, upper = im.predict_interval(X_test.to_numpy(np.float32))
    np.testing.assert_array_equal(pred, pipe.predict(X_test.to_numpy(np.float32)))
    np.testing.assert_allclose(upper - pred, im.correction_ or np.nan)
    assert interval_coverage(y_test, lower, upper) == pytest.approx(0.9, abs=0.05)


def test_residual_log_target_and_self_computed_oof() -> None:
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, (120, 2))
    y = np.exp(2 + X[:, 0] + rng.normal(0, 0.3, 120))  # lognormal concentrations
    pipe = build_pipeline(LinearRegression(), log=True).fit(X, y)
    oof = cross_validate(pipe, X, y, folds=4, seed=7)["predictions"]
    given = interval_model(pipe, X, y, oof_predictions=oof, cv=4, random_state=7)
    computed = interval_model(pipe, X, y, cv=4, random_state=7)  # same folds as above
    assert computed.correction_ == pytest.approx(given.correction_, rel=1e-9)
    parts = estimator_parts(pipe)
    z = parts.final.predict(parts.features(X[:5]))  # log1p space
    lower, upper = given.interval(X[:5])
    np.testing.assert_allclose(lower, np.expm1(z - given.correction_), rtol=1e-12)
    np.testing.assert_allclose(upper, np.expm1(z + given.correction_), rtol=1e-12)
    assert np.all(upper - lower > 0)


def test_frozen_preprocessing_pipeline_like_tr_gabp() -> None:
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.uniform(0, 1, (60, 2)), columns=["a", "b"])
    y = 5 + 3 * X["a"].to_numpy() + rng.normal(0, 0.2, 60)
    prep = Pipeline(build_pipeline(LinearRegression()).steps[:-2]).fit(X)
    pipe = Pipeline(
        [("prep", FrozenEstimator(prep)), ("model", log_target(LinearRegression(), enabled=True))]
    ).fit(X, y)
    im = interval_model(pipe, X, y, random_state=0)
    lower, upper = im.interval(X.to_numpy())
    assert im.method_ == "residual"
    assert np.all(lower < pipe.predict(X)) and np.all(pipe.predict(X) < upper)


# --------------------------------------------------------------------------- kriging


def kriging_field(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 2000, (n, 2))
    return xy, 3 + np.sin(xy[:, 0] / 400) + np.cos(xy[:, 1] / 500) + rng.normal(0, 0.1, n)


FIXED = {"sill": 1.0, "range": 800.0, "nugget": 0.01}


def test_kriging_interval_is_gaussian() -> None:
    xy, z = kriging_field(80, 0)
    ok = OrdinaryKrigingRegressor("spherical", variogram_parameters=FIXED).fit(xy, z)
    new = np.random.default_rng(1).uniform(0, 2000, (50, 2))
    pred, std = ok.predict(new, return_std=True)
    im = interval_model(ok, xy, z)
    assert im.method_ == "kriging" and not im.calibrated_
    p, lower, upper = im.predict_interval(new)
    np.testing.assert_allclose(p, pred)
    np.testing.assert_allclose(lower, pred - Z90 * std, rtol=1e-12)
    np.testing.assert_allclose(upper, pred + Z90 * std, rtol=1e-12)
    lo2, hi2 = prediction_interval(ok, new)
    np.testing.assert_allclose(lo2, lower)
    np.testing.assert_allclose(hi2, upper)
    # log target: Gaussian in log1p space, then expm1
    logged = log_target(
        OrdinaryKrigingRegressor("spherical", variogram_parameters=FIXED), enabled=True
    ).fit(xy, z)
    pl, sl = logged.regressor_.predict(new, return_std=True)
    lo3, hi3 = prediction_interval(logged, new)
    np.testing.assert_allclose(lo3, np.expm1(pl - Z90 * sl), rtol=1e-12)
    np.testing.assert_allclose(hi3, np.expm1(pl + Z90 * sl), rtol=1e-12)


def test_kriging_calibrated_scales_the_std() -> None:
    xy, z = kriging_field(80, 0)
    ok = OrdinaryKrigingRegressor("spherical", variogram_parameters=FIXED).fit(xy, z)
    im = interval_model(ok, xy, z, calibrate=True, random_state=0)
    assert im.calibrated_ and 0.0 <= im.raw_oof_coverage_ <= 1.0
    new = np.random.default_rng(1).uniform(0, 2000, (20, 2))
    pred, std = ok.predict(new, return_std=True)
    _, upper = im.interval(new)
    assert im.correction_ is not None
    np.testing.assert_allclose(upper - pred, im.correction_ * std, rtol=1e-9)


# --------------------------------------------------------------------------- API


def test_errors() -> None:
    X = np.arange(20.0)[:, None]
    rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X[:, 0])
    with pytest.raises(TypeError, match="interval_model"):
        prediction_interval(rf, X)
    lin = LinearRegression().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="calibrate cannot be False"):
        interval_model(lin, X, X[:, 0], calibrate=False)
    with pytest.raises(ValueError, match="needs a random forest"):
        interval_model(lin, X, X[:, 0], method="quantile-forest")
    with pytest.raises(ValueError, match="coverage"):
        interval_model(lin, X, X[:, 0], coverage=90)
    with pytest.raises(ValueError, match="FrozenEstimator"):
        interval_model(FrozenEstimator(lin), X, X[:, 0])  # refits would be no-ops
    im = interval_model(lin, X, X[:, 0] + np.sin(X[:, 0]), random_state=0)
    with pytest.raises(ValueError, match="fitted for coverage"):
        prediction_interval(im, X, coverage=0.8)
    np.testing.assert_array_equal(prediction_interval(im, X)[0], im.interval(X)[0])


def test_conformal_quantile_small_samples(caplog: pytest.LogCaptureFixture) -> None:
    assert conformal_quantile([3.0, 1.0, 2.0, np.nan], 0.5) == 2.0  # ceil(0.5 * 4) = 2nd
    with caplog.at_level(logging.WARNING, logger="geohm.models.uncertainty"):
        assert conformal_quantile([1.0, 2.0, 3.0], 0.9) == 3.0
    assert "unbounded" in caplog.text


def test_interval_width_and_metrics() -> None:
    np.testing.assert_array_equal(interval_width([-1.0, 2.0], [3.0, 2.5]), [4.0, 0.5])
    np.testing.assert_array_equal(interval_width([-1.0, 2.0], [3.0, 2.5], floor=0.0), [3.0, 0.5])
    m = interval_metrics([1.0, 5.0, np.nan], [0.0, 0.0, 0.0], [2.0, 4.0, 1.0], coverage=0.9)
    # sample 2 is 1 above its interval: score 4 + (2 / 0.1) * 1
    assert m == pytest.approx(
        {
            "coverage": 0.5,
            "nominal": 0.9,
            "mean_width": 3.0,
            "median_width": 3.0,
            "interval_score": (2.0 + 24.0) / 2,
            "n": 2,
        }
    )
    assert np.isnan(interval_coverage([np.nan], [0.0], [1.0]))


def test_cross_validate_interval_is_nested_and_calibrated() -> None:
    rng = np.random.default_rng(11)
    X = rng.uniform(0, 1, (400, 2))
    y = 2 * X[:, 0] - X[:, 1] + rng.normal(0, 0.5, 400)
    out = cross_validate_interval(LinearRegression(), X, y, coverage=0.9, folds=5, seed=0)
    assert out["method"] == "residual" and out["folds"] == 5 and out["n"] == 400
    assert len(out["fold_coverage"]) == 5
    assert out["coverage"] == pytest.approx(0.9, abs=0.04)
    assert out["coverage"] == pytest.approx(interval_coverage(y, out["lower"], out["upper"]))
    # width of a 90 % normal interval, noise sd 0.5: 2 * 1.645 * 0.5
    assert out["mean_width"] == pytest.approx(2 * Z90 * 0.5, rel=0.15)

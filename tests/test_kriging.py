"""Ordinary kriging and regression kriging estimators (geohm.models.kriging)."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pytest
from pykrige.ok import OrdinaryKriging
from sklearn.base import clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils.estimator_checks import parametrize_with_checks

from geohm.models import kriging
from geohm.models.kriging import VARIOGRAM_MODELS, OrdinaryKrigingRegressor, RegressionKriging
from geohm.spatialcv import SpatialBlockKFold

FIXED = {"sill": 2.0, "range": 300.0, "nugget": 0.0}


def field(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth field (range of correlation ~ 500 m) sampled at random in 2 km x 2 km."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 2000, size=(n, 2))
    z = np.sin(xy[:, 0] / 400) + np.cos(xy[:, 1] / 500) + rng.normal(0, 0.1, n)
    return xy, z


# --------------------------------------------------------------------------- OK


def test_exact_at_samples_with_zero_nugget() -> None:
    xy, z = field(30)
    ok = OrdinaryKrigingRegressor("spherical", variogram_parameters=FIXED, exact_values=True).fit(
        xy, z
    )
    pred, std = ok.predict(xy, return_std=True)
    np.testing.assert_allclose(pred, z, atol=1e-6)
    np.testing.assert_allclose(std, 0.0, atol=1e-6)
    _, std_between = ok.predict(xy[:5] + 50.0, return_std=True)
    assert np.all(std_between > 0.01)
    assert ok.variogram_parameters_ == pytest.approx(FIXED)


@pytest.mark.parametrize("n_closest_points", [None, 8])
def test_far_from_data_gives_neighbourhood_mean_and_sill(n_closest_points: int | None) -> None:
    # 16 data 1000 m apart, variogram range 300 m: every pair is uncorrelated, so by
    # symmetry the OK weights far away are 1/k over the k neighbours and the kriging
    # variance is sill * (1 + 1/k) (sill of the prediction error plus that of the mean).
    gx, gy = np.meshgrid(np.arange(4) * 1000.0, np.arange(4) * 1000.0)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    z = np.arange(16.0) ** 1.5
    ok = OrdinaryKrigingRegressor(
        "spherical", variogram_parameters=FIXED, n_closest_points=n_closest_points
    ).fit(xy, z)
    far = np.array([[50_000.0, 60_000.0]])  # ~ 200 ranges away
    pred, std = ok.predict(far, return_std=True)
    k = 16 if n_closest_points is None else n_closest_points
    nearest = np.argsort(np.hypot(*(xy - far).T))[:k]
    assert pred[0] == pytest.approx(z[nearest].mean(), rel=1e-9)
    assert std[0] ** 2 == pytest.approx(FIXED["sill"] * (1 + 1 / k), rel=1e-9)


def test_far_from_data_with_fitted_variogram_gives_gls_mean() -> None:
    # Beyond the range every neighbour has semivariance = sill, so OK returns the
    # generalised-least-squares mean m = 1'C^-1 z / 1'C^-1 1 (C: data covariance,
    # sill - gamma) with variance sill + 1 / 1'C^-1 1: the sill plus that of the mean.
    xy, z = field(60)
    ok = OrdinaryKrigingRegressor("exponential", n_closest_points=None).fit(xy, z)
    pred, std = ok.predict([[1e6, 1e6]], return_std=True)
    sill, range_, nugget = (ok.variogram_parameters_[k] for k in ("sill", "range", "nugget"))
    d = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    gamma = (sill - nugget) * (1 - np.exp(-3 * d / range_)) + nugget
    np.fill_diagonal(gamma, 0.0)
    cinv_one = np.linalg.solve(sill - gamma, np.ones(60))
    assert pred[0] == pytest.approx(cinv_one @ z / cinv_one.sum(), rel=1e-6)
    assert std[0] ** 2 == pytest.approx(sill + 1 / cinv_one.sum(), rel=1e-6)
    assert abs(pred[0] - z.mean()) < 0.5 * z.std()


def test_auto_picks_by_cross_validation_reproducibly() -> None:
    xy, z = field(50)
    a = OrdinaryKrigingRegressor("auto", cv=5, random_state=3).fit(xy, z)
    b = OrdinaryKrigingRegressor("auto", cv=5, random_state=3).fit(xy, z)
    assert set(a.cv_rmse_) == set(VARIOGRAM_MODELS)
    assert a.cv_rmse_ == b.cv_rmse_
    assert a.variogram_model_ == min(a.cv_rmse_, key=a.cv_rmse_.__getitem__)
    np.testing.assert_array_equal(a.predict(xy + 7.0), b.predict(xy + 7.0))
    # The documented protocol, by hand: seeded shuffled KFold, variogram refitted per fold.
    sq = np.empty(z.size)
    for train, test in KFold(5, shuffle=True, random_state=3).split(xy):
        ref = OrdinaryKriging(xy[train, 0], xy[train, 1], z[train], variogram_model="spherical")
        pred, _ = ref.execute(
            "points", xy[test, 0], xy[test, 1], backend="loop", n_closest_points=32
        )
        sq[test] = (pred - z[test]) ** 2
    assert a.cv_rmse_["spherical"] == pytest.approx(np.sqrt(sq.mean()), rel=1e-10)
    c = OrdinaryKrigingRegressor("auto", cv=5, random_state=4).fit(xy, z)
    assert c.cv_rmse_ != a.cv_rmse_  # the seed drives the folds


@pytest.mark.parametrize(
    ("model", "weight", "n_closest_points", "backend"),
    [
        ("spherical", False, 12, "loop"),
        ("exponential", True, 12, "loop"),
        ("gaussian", False, 20, "loop"),
        ("exponential", False, None, "vectorized"),
    ],
)
def test_same_as_pykrige(
    model: str, weight: bool, n_closest_points: int | None, backend: str
) -> None:
    xy, z = field(45, seed=1)
    targets = np.random.default_rng(2).uniform(-200, 2200, size=(300, 2))
    ref = OrdinaryKriging(xy[:, 0], xy[:, 1], z, variogram_model=model, nlags=8, weight=weight)
    ref_z, ref_var = ref.execute(
        "points", targets[:, 0], targets[:, 1], backend=backend, n_closest_points=n_closest_points
    )
    ok = OrdinaryKrigingRegressor(
        model, nlags=8, weight=weight, n_closest_points=n_closest_points, backend="loop"
    ).fit(xy, z)
    psill, range_, nugget = ref.variogram_model_parameters
    assert ok.variogram_parameters_ == pytest.approx(
        {"sill": psill + nugget, "range": range_, "nugget": nugget}, rel=1e-12
    )
    pred, std = ok.predict(targets, return_std=True)
    np.testing.assert_allclose(pred, ref_z, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(np.clip(ref_var, 0, None)), rtol=1e-9, atol=1e-12)
    # The fitted parameters, passed back, reproduce the model.
    again = OrdinaryKrigingRegressor(
        model,
        variogram_parameters=ok.variogram_parameters_,
        n_closest_points=n_closest_points,
        backend="loop",
    ).fit(xy, z)
    np.testing.assert_allclose(again.predict(targets), pred, rtol=1e-9, atol=1e-12)


def test_c_backend_equals_loop_backend() -> None:
    xy, z = field(40)
    targets = np.random.default_rng(5).uniform(0, 2000, size=(500, 2))
    loop = OrdinaryKrigingRegressor("spherical", backend="loop").fit(xy, z)
    comp = OrdinaryKrigingRegressor("spherical", backend="C").fit(xy, z)
    p1, s1 = loop.predict(targets, return_std=True)
    p2, s2 = comp.predict(targets, return_std=True)
    np.testing.assert_allclose(p1, p2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s1, s2, rtol=1e-9, atol=1e-12)


def test_coords_pick_columns_and_others_are_ignored() -> None:
    xy, z = field(40)
    noise = np.random.default_rng(9).normal(size=(40, 2))
    X = np.column_stack([xy[:, 1], noise[:, 0], xy[:, 0], noise[:, 1]])  # y, -, x, -
    plain = OrdinaryKrigingRegressor("spherical").fit(xy, z)
    wide = OrdinaryKrigingRegressor("spherical", coords=(2, 0)).fit(X, z)
    targets = np.random.default_rng(3).uniform(0, 2000, size=(50, 2))
    Xt = np.column_stack([targets[:, 1], np.zeros(50), targets[:, 0], np.ones(50)])
    np.testing.assert_allclose(wide.predict(Xt), plain.predict(targets), rtol=1e-12)


def test_repeated_locations_are_averaged() -> None:
    xy, z = field(20)
    xy2 = np.vstack([xy, xy[:1]])
    z2 = np.append(z, z[0] + 2.0)
    ok = OrdinaryKrigingRegressor("spherical", variogram_parameters=FIXED).fit(xy2, z2)
    assert ok.xy_.shape == (20, 2)
    assert ok.predict(xy[:1])[0] == pytest.approx(z[0] + 1.0)


def test_constant_values_give_that_constant_with_zero_std() -> None:
    xy, _ = field(20)
    ok = OrdinaryKrigingRegressor().fit(xy, np.full(20, 4.5))
    pred, std = ok.predict(xy[:3] + 10, return_std=True)
    np.testing.assert_array_equal(pred, 4.5)
    np.testing.assert_array_equal(std, 0.0)


@pytest.mark.parametrize(
    "params",
    [
        {"variogram_model": "linear"},
        {"variogram_model": "auto", "variogram_parameters": FIXED},
        {"n_closest_points": 1},
        {"cv": 1},
        {"chunk_size": 0},
        {"backend": "vectorized"},
        {"coords": (0, 0)},
        {"coords": (0,)},
    ],
)
def test_bad_parameters_raise_in_fit(params: dict) -> None:
    xy, z = field(20)
    with pytest.raises(ValueError):
        OrdinaryKrigingRegressor(**params).fit(xy, z)


def test_predict_200k_rows_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    xy, z = field(80)
    ok = OrdinaryKrigingRegressor("exponential", n_closest_points=8).fit(xy, z)
    big = np.random.default_rng(1).uniform(0, 2000, size=(200_000, 2))
    calls: list[int] = []
    real_execute = kriging._execute

    def counting_execute(model: object, pts: np.ndarray, **kw: Any) -> object:
        calls.append(pts.shape[0])
        return real_execute(model, pts, **kw)

    monkeypatch.setattr(kriging, "_execute", counting_execute)
    pred, std = ok.predict(big, return_std=True)
    assert calls == [65_536] * 3 + [200_000 - 3 * 65_536]  # one pykrige call per chunk
    assert pred.shape == std.shape == (200_000,)
    assert np.all(np.isfinite(pred)) and np.all(std >= 0)
    sub = big[:3000]
    one_go = ok.set_params(chunk_size=10**6).predict(sub, return_std=True)
    np.testing.assert_allclose(pred[:3000], one_go[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std[:3000], one_go[1], rtol=1e-12, atol=1e-12)
    small = ok.set_params(chunk_size=700).predict(sub)
    np.testing.assert_allclose(small, one_go[0], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- RK


def covariate_data(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X = (x, y, cov1, cov2); y = linear in the covariates + a smooth spatial field."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 2000, size=(n, 2))
    cov = rng.normal(size=(n, 2))
    spatial = np.sin(xy[:, 0] / 400) + np.cos(xy[:, 1] / 500)
    y = 3 * cov[:, 0] - cov[:, 1] + spatial + rng.normal(0, 0.05, n)
    return np.column_stack([xy, cov]), y


def test_rk_with_constant_base_equals_ok() -> None:
    X, y = covariate_data(60)
    c = 7.0
    rk = RegressionKriging(DummyRegressor(strategy="constant", constant=c), random_state=0).fit(
        X, y
    )
    ok = OrdinaryKrigingRegressor(random_state=0).fit(X[:, :2], y)
    np.testing.assert_allclose(rk.oof_residuals_, y - c)
    assert rk.kriging_.variogram_model_ == ok.variogram_model_
    targets = np.column_stack(
        [np.random.default_rng(1).uniform(-100, 2100, size=(400, 2)), np.zeros((400, 2))]
    )
    rk_pred, rk_std = rk.predict(targets, return_std=True)
    ok_pred, ok_std = ok.predict(targets[:, :2], return_std=True)
    np.testing.assert_allclose(rk_pred, ok_pred, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(rk_std, ok_std, rtol=1e-7, atol=1e-8)


def test_rk_krige_out_of_fold_residuals_not_in_sample_ones() -> None:
    X, y = covariate_data(80)
    base = RandomForestRegressor(n_estimators=50, random_state=0)
    rk = RegressionKriging(base, cv=5, random_state=2).fit(X, y)
    # Exactly the out-of-fold residuals of the seeded KFold, base without coordinates.
    oof = cross_val_predict(clone(base), X[:, 2:], y, cv=KFold(5, shuffle=True, random_state=2))
    np.testing.assert_allclose(rk.oof_residuals_, y - oof)
    in_sample = y - clone(base).fit(X[:, 2:], y).predict(X[:, 2:])
    assert np.std(rk.oof_residuals_) > 2 * np.std(in_sample)  # a forest fits its data
    assert rk.base_.n_features_in_ == 2
    assert rk.kriging_.n_features_in_ == 2


def test_rk_beats_its_base_on_spatially_structured_residuals() -> None:
    X, y = covariate_data(150, seed=3)
    Xt, yt = covariate_data(400, seed=4)
    base = LinearRegression().fit(X[:, 2:], y)
    rk = RegressionKriging(LinearRegression(), random_state=0).fit(X, y)
    rmse_base = np.sqrt(np.mean((base.predict(Xt[:, 2:]) - yt) ** 2))
    rmse_rk = np.sqrt(np.mean((rk.predict(Xt) - yt) ** 2))
    assert rmse_rk < 0.6 * rmse_base


def test_rk_base_uses_coords_and_spatial_cv() -> None:
    X, y = covariate_data(80)
    rk = RegressionKriging(
        LinearRegression(),
        cv=SpatialBlockKFold(4, block_size=500, random_state=0),
        base_uses_coords=True,
        kriging_params={"variogram_model": "exponential"},
    ).fit(X, y)
    assert rk.base_.n_features_in_ == 4
    assert rk.kriging_.variogram_model_ == "exponential"
    pred, std = rk.predict(X[:5], return_std=True)
    assert pred.shape == std.shape == (5,)


@pytest.mark.parametrize(
    ("params", "X_cols"),
    [
        ({}, 2),  # only coordinates: nothing left for the base
        ({"cv": 1}, 4),
        ({"cv": "five"}, 4),
        ({"kriging_params": {"coords": (0, 1)}}, 4),
        ({"kriging_params": {"variogram_model": "cubic"}}, 4),
    ],
)
def test_rk_bad_parameters_raise(params: dict, X_cols: int) -> None:
    X, y = covariate_data(30)
    with pytest.raises(ValueError):
        RegressionKriging(LinearRegression(), **params).fit(X[:, :X_cols], y)


# --------------------------------------------------------------------------- contract


def test_docstring_examples() -> None:
    res = doctest.testmod(kriging, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0


@parametrize_with_checks(
    [
        OrdinaryKrigingRegressor(cv=3, random_state=0),
        # Several checks fit on 2-column X, which here is all coordinates: with the
        # default base_uses_coords=False the base would get no column and fit raises.
        RegressionKriging(
            RandomForestRegressor(n_estimators=5, random_state=0),
            cv=3,
            random_state=0,
            kriging_params={"variogram_model": "spherical"},
            base_uses_coords=True,
        ),
    ]
)
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)

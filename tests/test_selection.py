"""Correlation + VIF factor screening (geohm.selection)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.utils.estimator_checks import parametrize_with_checks

from geohm.errors import ConfigError
from geohm.selection import CorrelationVIFSelector, vif

# --- vif ------------------------------------------------------------------------------


def test_vif_two_factors_is_one_over_one_minus_rho_squared() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=30)
    b = 0.6 * a + rng.normal(size=30)
    rho = np.corrcoef(a, b)[0, 1]
    expected = 1.0 / (1.0 - rho**2)
    np.testing.assert_allclose(vif(np.column_stack([a, b])), [expected, expected], rtol=1e-10)


def test_vif_exact_linear_combination_is_inf_without_warnings() -> None:
    rng = np.random.default_rng(2)
    a, b, c = rng.normal(size=(3, 25))
    X = np.column_stack([a, b, 2 * a - 3 * b + 7, c])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = vif(X)
    assert np.isinf(out[:3]).all()
    assert np.isfinite(out[3]) and out[3] >= 1


def test_vif_constant_single_and_empty() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=10)
    # A constant factor is collinear with the intercept; it leaves the others alone.
    out = vif(np.column_stack([a, np.full(10, 4.0)]))
    assert out[0] == pytest.approx(1.0) and np.isinf(out[1])
    assert vif(a[:, None]).tolist() == [1.0]
    assert vif(np.empty((5, 0))).shape == (0,)
    with pytest.raises(ValueError, match="finite"):
        vif(np.array([[1.0, np.nan], [2.0, 3.0]]))


def test_vif_has_an_intercept_unlike_the_no_constant_version() -> None:
    # Two independent factors with a large mean (elevation-like, ~1000 m).
    rng = np.random.default_rng(4)
    a = 1000 + rng.normal(size=40)
    b = 1000 + rng.normal(size=40)
    rho = np.corrcoef(a, b)[0, 1]
    with_intercept = vif(np.column_stack([a, b]))
    np.testing.assert_allclose(with_intercept, 1 / (1 - rho**2))
    assert with_intercept.max() < 1.2
    # statsmodels' variance_inflation_factor without add_constant: regress a on b alone,
    # uncentred R^2 = 1 - SS_res / sum(a^2).
    coef = (a @ b) / (b @ b)
    r2_uncentred = 1 - np.sum((a - coef * b) ** 2) / np.sum(a**2)
    no_constant = 1 / (1 - r2_uncentred)
    assert no_constant > 1e5


# --- the selector on a designed table -------------------------------------------------


@pytest.fixture
def table() -> tuple[pd.DataFrame, np.ndarray]:
    """n = 44: x1 drives y, x2 = x1 + small noise, x3 noise, x4 constant, aspect noise."""
    rng = np.random.default_rng(9)
    n = 44
    x1 = rng.normal(size=n)
    y = 10 + 3 * x1 + rng.normal(scale=1.0, size=n)
    x2 = x1 + rng.normal(scale=0.1, size=n)
    x3 = rng.normal(size=n)
    aspect = rng.uniform(0, 360, size=n)
    X = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "x4": np.full(n, 2.5), "aspect": aspect})
    return X, y


def test_selector_designed_table(table: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = table
    # Preconditions of the design, checked by hand here.
    p = {c: stats.pearsonr(X[c], y).pvalue for c in ["x1", "x2", "x3", "aspect"]}
    assert p["x1"] < 1e-10 and p["x2"] < 1e-10
    assert p["x3"] > 0.05 and p["aspect"] > 0.05
    v3 = vif(X[["x1", "x2", "aspect"]])
    assert v3[1] > v3[0] > 10  # x2 is the most collinear: dropped first
    v2 = vif(X[["x1", "aspect"]])
    assert v2.max() < 10

    sel = CorrelationVIFSelector(force=["aspect"]).fit(X, y)

    assert sel.selected_ == ["x1", "aspect"]
    assert sel.support_.tolist() == [True, False, False, False, True]
    assert sel.get_feature_names_out().tolist() == ["x1", "aspect"]
    assert sel.feature_names_in_.tolist() == list(X.columns)
    assert sel.fallback_used_ is False
    out = sel.transform(X)
    np.testing.assert_array_equal(out, X[["x1", "aspect"]].to_numpy())

    scores = {s["feature"]: s for s in sel.scores_}
    assert [s["feature"] for s in sel.scores_] == list(X.columns)
    assert scores["x1"]["reason"] == "p < 0.05"
    assert scores["x2"]["reason"] == f"dropped: VIF {v3[1]:.3g} >= 10"
    assert scores["x3"]["reason"] == f"dropped: p = {p['x3']:.2g} >= 0.05"
    assert scores["x4"]["reason"] == "dropped: constant"
    assert scores["aspect"]["reason"] == "forced"
    assert [s["kept"] for s in sel.scores_] == [True, False, False, False, True]
    # r and p are scipy's; constant -> r nan, p 1.
    for c in ["x1", "x2", "x3", "aspect"]:
        res = stats.pearsonr(X[c], y)
        assert scores[c]["r"] == pytest.approx(res.statistic, abs=1e-12)
        assert scores[c]["p"] == pytest.approx(res.pvalue, rel=1e-9, abs=1e-300)
    assert np.isnan(scores["x4"]["r"]) and scores["x4"]["p"] == 1.0
    # vif: final among the kept, at the drop, None when screened out by p.
    assert scores["x1"]["vif"] == pytest.approx(v2[0])
    assert scores["aspect"]["vif"] == pytest.approx(v2[1])
    assert scores["x2"]["vif"] == pytest.approx(v3[1])
    assert scores["x3"]["vif"] is None and scores["x4"]["vif"] is None
    # JSON-serialisable, plain Python types.
    text = json.dumps(sel.scores_)
    assert json.loads(text)[0]["feature"] == "x1"
    assert all(type(s["r"]) is float and type(s["p"]) is float for s in sel.scores_)


def test_selector_force_by_index_on_arrays(table: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = table
    sel = CorrelationVIFSelector(force=[4]).fit(X.to_numpy(), y)
    assert sel.selected_ == ["x0", "x4"]
    assert sel.get_feature_names_out().tolist() == ["x0", "x4"]
    assert not hasattr(sel, "feature_names_in_")


def test_selector_forced_factor_is_never_dropped_for_collinearity() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(size=40)
    y = a + rng.normal(scale=0.3, size=40)
    X = pd.DataFrame({"a": a, "elevation": a + rng.normal(scale=0.01, size=40)})
    sel = CorrelationVIFSelector(force=["elevation"]).fit(X, y)
    assert sel.selected_ == ["elevation"]
    assert sel.scores_[0]["reason"].startswith("dropped: VIF")


def test_selector_perfect_collinearity_drops_the_weakest_tie(
    table: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = table
    rng = np.random.default_rng(6)
    X = pd.DataFrame({"a": X["x1"], "b": rng.normal(size=44) + 0.5 * y})
    X["c"] = X["a"] + X["b"]  # all three VIF = inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sel = CorrelationVIFSelector().fit(X, y)
    p = [stats.pearsonr(X[c], y).pvalue for c in X.columns]
    weakest = X.columns[int(np.argmax(p))]
    assert weakest not in sel.selected_ and len(sel.selected_) == 2
    dropped = next(s for s in sel.scores_ if s["feature"] == weakest)
    assert dropped["reason"] == "dropped: VIF inf >= 10" and dropped["vif"] == np.inf


def test_selector_min_features_fallback() -> None:
    rng = np.random.default_rng(7)
    X = pd.DataFrame(rng.normal(size=(30, 4)), columns=list("abcd"))
    y = rng.normal(size=30)
    p = np.array([stats.pearsonr(X[c], y).pvalue for c in X.columns])
    assert (p >= 0.05).all()
    sel = CorrelationVIFSelector(min_features=2).fit(X, y)
    best2 = sorted(np.argsort(p)[:2])
    assert sel.support_.nonzero()[0].tolist() == best2
    assert sel.fallback_used_ is True
    reasons = [sel.scores_[i]["reason"] for i in best2]
    assert all(r.startswith("kept: min_features=2 fallback, p = ") for r in reasons)
    empty = CorrelationVIFSelector(min_features=0).fit(X, y)
    assert empty.selected_ == [] and empty.fallback_used_ is False


def test_selector_constant_target_keeps_min_features() -> None:
    X = np.arange(20.0).reshape(10, 2) ** 1.5
    sel = CorrelationVIFSelector().fit(X, np.full(10, 3.0))
    assert sel.selected_ == ["x0"]
    assert np.isnan(sel.correlations_).all() and (sel.pvalues_ == 1).all()


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"max_p": 0}, "max_p"),
        ({"max_p": 1.5}, "max_p"),
        ({"max_vif": 1.0}, "max_vif"),
        ({"min_features": -1}, "min_features"),
        ({"force": ["slope"]}, "'slope' is not a column"),
        ({"force": [9]}, "out of range"),
        ({"force": [1.5]}, "names or indices"),
    ],
)
def test_selector_bad_params_raise_config_error(
    table: tuple[pd.DataFrame, np.ndarray], params: dict, match: str
) -> None:
    X, y = table
    with pytest.raises(ConfigError, match=match):
        CorrelationVIFSelector(**params).fit(X, y)


def test_selector_force_by_name_needs_names(table: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = table
    with pytest.raises(ConfigError, match="no column names"):
        CorrelationVIFSelector(force=["aspect"]).fit(X.to_numpy(), y)


@parametrize_with_checks([CorrelationVIFSelector(), CorrelationVIFSelector(max_vif=5.0)])
def test_sklearn_compatible(estimator, check) -> None:  # noqa: ANN001
    # No expected failures: every check passes (array-API checks skip without SCIPY_ARRAY_API).
    check(estimator)

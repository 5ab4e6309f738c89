"""Outliers, imputation, scaling, log target and the model pipeline (geohm.preprocess)."""

from __future__ import annotations

import pickle
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.impute import KNNImputer
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import cross_val_predict
from sklearn.preprocessing import MinMaxScaler

from geohm.errors import ConfigError, SampleError
from geohm.preprocess import KNNImputer as GeohmKNNImputer
from geohm.preprocess import build_pipeline, iqr_outliers, log_target, make_preprocessor
from geohm.selection import CorrelationVIFSelector

# --- iqr_outliers ----------------------------------------------------------------------


def test_iqr_outliers_hand_example() -> None:
    # Q1 = 2, Q3 = 4, IQR = 2: fences [-1, 7].
    assert iqr_outliers([1, 2, 3, 4, 100]).tolist() == [False, False, False, False, True]
    assert iqr_outliers(np.array([-1.0, 2, 3, 4, 7])).tolist() == [False] * 5  # on the fences
    assert iqr_outliers([-1.01, 2, 3, 4, 7.01]).tolist() == [True, False, False, False, True]


def test_iqr_outliers_k_nan_and_empty() -> None:
    # k = 0: the fences are the quartiles themselves (2 and 4).
    assert iqr_outliers([1, 2, 3, 4, 5], k=0).tolist() == [True, False, False, False, True]
    # NaN is ignored for the quartiles and never flagged.
    assert iqr_outliers([1, 2, np.nan, 3, 4, 100]).tolist() == [
        False,
        False,
        False,
        False,
        False,
        True,
    ]
    assert iqr_outliers([]).shape == (0,)
    with pytest.raises(ConfigError, match="k must be"):
        iqr_outliers([1, 2, 3], k=-1)
    with pytest.raises(ValueError, match="1-D"):
        iqr_outliers(np.ones((3, 2)))


# --- make_preprocessor / log_target ----------------------------------------------------


def test_make_preprocessor_steps() -> None:
    pre = make_preprocessor()
    assert [name for name, _ in pre.steps] == ["scale", "impute"]
    assert isinstance(pre.named_steps["scale"], MinMaxScaler)
    assert pre.named_steps["impute"].n_neighbors == 5
    assert [n for n, _ in make_preprocessor(scale="none", n_neighbors=2).steps] == ["impute"]
    assert make_preprocessor(impute="none", scale="none") == "passthrough"
    with pytest.raises(ConfigError, match="impute"):
        make_preprocessor(impute="mean")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="scale"):
        make_preprocessor(scale="zscore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="n_neighbors"):
        make_preprocessor(n_neighbors=0)


def test_knn_imputes_in_scaled_units() -> None:
    # Row 4 lacks blue. In scaled units (elevation / 1000) its nearest neighbour is row 0
    # (distance 0.2); in raw metres it would be row 1 (distance sqrt(1 + 10**2)).
    X = pd.DataFrame(
        {
            "blue": [0.0, 1.0, 0.5, 0.5, np.nan],
            "ndvi": [0.0, 1.0, 0.5, 0.5, 0.0],
            "elevation": [700.0, 510.0, 0.0, 1000.0, 500.0],
        }
    )
    out = make_preprocessor(n_neighbors=1).fit_transform(X)
    assert out.loc[4, "blue"] == 0.0
    raw = KNNImputer(n_neighbors=1).fit_transform(X)
    assert raw[4, 0] == 1.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_knn_imputer_matches_scikit_learn(dtype: str) -> None:
    # Complete tables come back unchanged (a copy); incomplete ones are imputed by
    # scikit-learn; arrays and pandas frames alike.
    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.random((40, 4)), columns=list("abcd"))
    train.iloc[3, 1] = np.nan
    complete = rng.random((30, 4)).astype(dtype)
    holes = complete.copy()
    holes[[2, 7, 11], [0, 3, 1]] = np.nan
    for X in (complete, holes):
        ours = GeohmKNNImputer(n_neighbors=3).fit(train.to_numpy()).transform(X)
        ref = KNNImputer(n_neighbors=3).fit(train.to_numpy()).transform(X)
        assert ours.dtype == ref.dtype and ours is not X
        np.testing.assert_array_equal(ours, ref)
        frame = pd.DataFrame(X, columns=list("abcd"))
        ours_df = GeohmKNNImputer(n_neighbors=3).set_output(transform="pandas").fit(train)
        ref_df = KNNImputer(n_neighbors=3).set_output(transform="pandas").fit(train)
        pd.testing.assert_frame_equal(ours_df.transform(frame), ref_df.transform(frame))
    assert not np.isnan(GeohmKNNImputer().fit(train.to_numpy()).transform(holes)).any()


def test_knn_imputer_leaves_special_cases_to_scikit_learn() -> None:
    train = np.array([[0.0, np.nan], [1.0, np.nan], [2.0, np.nan]])
    X = np.array([[0.5, 1.0]])
    # A column empty at fit is dropped by scikit-learn, complete rows or not.
    assert GeohmKNNImputer().fit(train).transform(X).shape == (1, 1)
    with pytest.raises(ValueError, match="infinity|Infinity"):
        GeohmKNNImputer().fit(train[:, :1]).transform(np.array([[np.inf]]))
    # With add_indicator the output gains columns: scikit-learn's transform.
    ok = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 3.0]])
    out = GeohmKNNImputer(add_indicator=True).fit(ok).transform(np.array([[0.5, 1.0]]))
    assert out.shape == (1, 3)


def test_pipeline_uses_the_complete_table_imputer() -> None:
    pipe = build_pipeline(LinearRegression())
    assert type(pipe.named_steps["impute"]) is GeohmKNNImputer


def test_log_target() -> None:
    est = LinearRegression()
    assert log_target(est, enabled=False) is est
    wrapped = log_target(est, enabled=True)
    assert isinstance(wrapped, TransformedTargetRegressor)
    assert wrapped.func is np.log1p and wrapped.inverse_func is np.expm1


# --- build_pipeline ----------------------------------------------------------------------


@pytest.fixture
def samples() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 60
    X = pd.DataFrame(
        {
            "blue": rng.uniform(0.02, 0.3, n),
            "ndvi": rng.uniform(-0.1, 0.8, n),
            "noise": rng.normal(size=n),
            "elevation": rng.uniform(800, 1600, n),
        }
    )
    y = 20 + 100 * X["blue"].to_numpy() - 0.01 * X["elevation"].to_numpy()
    y = y + rng.normal(scale=0.5, size=n)
    return X, y


def test_pipeline_steps_and_names(samples: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = samples
    pipe = build_pipeline(LinearRegression(), selector=CorrelationVIFSelector(force=["ndvi"]))
    assert [n for n, _ in pipe.steps] == ["columns", "scale", "impute", "select", "model"]
    pipe.fit(X, y)
    sel = pipe.named_steps["select"]
    assert sel.feature_names_in_.tolist() == list(X.columns)
    assert sel.selected_ == ["blue", "ndvi", "elevation"]
    assert pipe[:-1].get_feature_names_out().tolist() == ["blue", "ndvi", "elevation"]
    assert pipe.named_steps["model"].feature_names_in_.tolist() == sel.selected_
    # Same factors as selecting on the raw table: correlation and VIF are scale-invariant.
    raw = CorrelationVIFSelector(force=["ndvi"]).fit(X, y)
    assert raw.selected_ == sel.selected_
    none = build_pipeline(LinearRegression(), impute="none", scale="none")
    assert [s for _, s in none.steps[1:4]] == ["passthrough"] * 3


def test_scaler_is_fitted_on_training_rows_only(
    samples: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = samples
    train = X["elevation"] > X["elevation"].min()  # leave the lowest sample out
    pipe = build_pipeline(LinearRegression()).fit(X[train], y[train])
    scaler = pipe.named_steps["scale"]
    np.testing.assert_array_equal(scaler.data_min_, X[train].min().to_numpy())
    assert scaler.data_min_[3] > X["elevation"].min()


def test_imputation_fills_nan(samples: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = samples
    X = X.copy()
    X.loc[[3, 17], "ndvi"] = np.nan
    pipe = build_pipeline(LinearRegression()).fit(X, y)
    filled = pipe[:-1].transform(X)
    assert not filled.isna().any().any()
    assert np.isfinite(pipe.predict(X)).all()
    # Observed values only get scaled.
    scaler = pipe.named_steps["scale"]
    expected = (X.loc[0, "ndvi"] - scaler.data_min_[1]) / scaler.data_range_[1]
    assert filled.loc[0, "ndvi"] == pytest.approx(expected)


def test_log_option_round_trips() -> None:
    # log1p(y) is exactly linear in x, so the back-transformed predictions are y.
    x = np.linspace(0.0, 2.0, 12)
    y = np.expm1(1.5 + 2.0 * x)
    X = pd.DataFrame({"x": x})
    pipe = build_pipeline(LinearRegression(), log=True).fit(X, y)
    assert isinstance(pipe.named_steps["model"], TransformedTargetRegressor)
    np.testing.assert_allclose(pipe.predict(X), y, rtol=1e-9)
    np.testing.assert_allclose(pipe.predict(x[:, None]), y, rtol=1e-9)


def test_predict_on_numpy_matches_dataframe(samples: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = samples
    pipe = build_pipeline(LinearRegression(), selector=CorrelationVIFSelector()).fit(X, y)
    expected = pipe.predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        np.testing.assert_allclose(pipe.predict(X.to_numpy()), expected)
        np.testing.assert_allclose(
            pipe.predict(X.to_numpy(dtype="float32")), expected, rtol=1e-5, atol=1e-4
        )
        # A table in another column order is reordered by name.
        np.testing.assert_allclose(pipe.predict(X[X.columns[::-1]]), expected)
    with pytest.raises(SampleError, match="lacks factor columns"):
        pipe.predict(X.drop(columns="noise"))
    with pytest.raises(SampleError, match="4 factor columns"):
        pipe.predict(X.to_numpy()[:, :3])


def test_pipeline_clones_pickles_and_cross_validates(
    samples: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = samples
    pipe = build_pipeline(LinearRegression(), selector=CorrelationVIFSelector())
    pred = cross_val_predict(pipe, X, y, cv=3)
    assert pred.shape == y.shape
    fitted = clone(pipe).fit(X, y)
    assert fitted.named_steps["select"].selected_[0] == "blue"
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(again.predict(X.to_numpy()), fitted.predict(X))


def test_pipeline_fitted_on_numpy_uses_generic_names(
    samples: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = samples
    pipe = build_pipeline(LinearRegression(), selector=CorrelationVIFSelector(force=[1]))
    pipe.fit(X.to_numpy(), y)
    assert pipe.named_steps["select"].selected_ == ["x0", "x1", "x3"]
    assert pipe.predict(X.to_numpy()).shape == y.shape


def test_predict_262k_rows_is_fast() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 20)), columns=[f"f{i}" for i in range(20)])
    y = 3 * X["f0"] + X["f1"] + rng.normal(size=200)
    pipe = build_pipeline(LinearRegression(), selector=CorrelationVIFSelector()).fit(X, y)
    tile = rng.normal(size=(512 * 512, 20))
    best = np.inf
    for _ in range(3):
        start = time.perf_counter()
        out = pipe.predict(tile)
        best = min(best, time.perf_counter() - start)
    assert out.shape == (512 * 512,)
    assert best < 0.5, f"predicting 262,144 rows took {best:.3f} s"

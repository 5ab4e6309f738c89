"""Sample preprocessing: target outliers, imputation, scaling, log target, the model pipeline.

The steps follow the usual soil-mapping flow (handle missing values, remove outliers,
normalise): :func:`iqr_outliers` flags implausible target values (the caller removes
those rows and reports their ids); :func:`build_pipeline` chains min-max scaling,
KNN imputation, factor selection and the regressor in one scikit-learn
:class:`~sklearn.pipeline.Pipeline`, so every learned statistic (scaler range, imputer
donors, selected factors) comes from the training rows only, also inside
cross-validation.

Everything here sees plain arrays or pandas tables; it never sees rasters, files or
config objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.impute import KNNImputer as _SklearnKNNImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from geohm.errors import ConfigError, SampleError

__all__ = [
    "KNNImputer",
    "build_pipeline",
    "iqr_outliers",
    "log_target",
    "make_preprocessor",
    "source_columns",
]

ImputeMethod = Literal["knn", "none"]
ScaleMethod = Literal["minmax", "none"]


class KNNImputer(_SklearnKNNImputer):
    """scikit-learn's :class:`~sklearn.impute.KNNImputer` that hands complete tables back.

    Prediction tables (a window's valid pixels) never miss a value, yet scikit-learn's
    ``transform`` validates, masks and re-indexes every row before finding that out:
    about 0.1 s per 600,000 x 18 table, 6-8 % of a whole-scene GA-BP or compiled-forest
    map. Here a float table without NaN (and without infinities, which scikit-learn
    rejects) is returned as it is, or copied when ``copy`` is set: the values
    scikit-learn would return. Anything else goes to scikit-learn's ``transform``.
    Same parameters and fitted attributes as the parent.
    """

    def transform(self, X: Any) -> Any:
        """Impute the missing values of ``X`` (see the class docstring).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Rows in the columns the imputer was fitted on.

        Returns
        -------
        numpy.ndarray or DataFrame of shape (n_samples, n_features_kept)
            ``X`` with its missing values imputed.
        """
        check_is_fitted(self)
        values = X.to_numpy() if isinstance(X, pd.DataFrame) else X
        if (
            isinstance(values, np.ndarray)
            and values.ndim == 2
            and values.dtype.kind == "f"
            and values.shape[1] == self.n_features_in_
            and not self.add_indicator
            and bool(np.all(getattr(self, "_valid_mask", False)))  # no all-NaN column at fit
            and (not isinstance(self.missing_values, float) or np.isnan(self.missing_values))
            and bool(np.isfinite(values).all())
        ):
            return X.copy() if self.copy else X
        return super().transform(X)


def iqr_outliers(y: Any, *, k: float = 1.5) -> np.ndarray:
    """Flag target values outside Tukey's fences ``[Q1 - k*IQR, Q3 + k*IQR]``.

    The quartiles are :func:`numpy.nanpercentile` 25 and 75 with its default linear
    interpolation (type 7 of Hyndman & Fan, as R's ``quantile`` and pandas'
    ``quantile``). Values on a fence are not outliers. NaN values are ignored when the
    quartiles are computed and are never flagged (missing targets are dropped
    elsewhere).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Target values, e.g. concentrations in mg/kg.
    k : float, default=1.5
        Fence width in interquartile ranges (1.5 "outlier", 3 "far out").

    Returns
    -------
    numpy.ndarray of bool, shape (n_samples,)
        True for the outliers.

    Raises
    ------
    ConfigError
        ``k`` is negative or not finite.
    ValueError
        ``y`` is not 1-D.

    Examples
    --------
    >>> iqr_outliers([1, 2, 3, 4, 100]).tolist()
    [False, False, False, False, True]
    """
    if isinstance(k, bool) or not isinstance(k, int | float) or not np.isfinite(k) or k < 0:
        raise ConfigError(f"outlier fence k must be a finite number >= 0, got {k!r}")
    values = np.asarray(y, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"iqr_outliers needs a 1-D target, got shape {values.shape}")
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(values.shape, dtype=bool)
    q1, q3 = np.percentile(values[finite], [25, 75])
    spread = k * (q3 - q1)
    with np.errstate(invalid="ignore"):
        return finite & ((values < q1 - spread) | (values > q3 + spread))


def make_preprocessor(
    *,
    impute: ImputeMethod = "knn",
    scale: ScaleMethod = "minmax",
    n_neighbors: int = 5,
) -> Pipeline | Literal["passthrough"]:
    """Min-max scaling and KNN imputation of the factors, as one pipeline.

    Scaling comes **before** imputation: :class:`~sklearn.impute.KNNImputer` finds
    neighbours by (NaN-aware) Euclidean distance, which on raw factors would be ruled by
    the factor with the largest units (elevation in metres, not reflectance in 0-1).
    :class:`~sklearn.preprocessing.MinMaxScaler` ignores NaN when it learns each
    factor's range and passes NaN through, so this order is safe. Both steps output
    pandas DataFrames, so factor names flow to later steps.

    Parameters
    ----------
    impute : {"knn", "none"}, default="knn"
        ``"knn"`` fills a missing factor value with the mean of that factor over the
        ``n_neighbors`` nearest training samples.
    scale : {"minmax", "none"}, default="minmax"
        ``"minmax"`` maps each factor's training range onto [0, 1].
    n_neighbors : int, default=5
        Neighbours used by the imputer.

    Returns
    -------
    sklearn.pipeline.Pipeline or "passthrough"
        Steps ``scale`` and ``impute`` (those enabled), or the string ``"passthrough"``
        when both are ``"none"``.

    Raises
    ------
    ConfigError
        An unknown method, or ``n_neighbors`` < 1.
    """
    steps = _preprocess_steps(impute=impute, scale=scale, n_neighbors=n_neighbors)
    steps = [(name, step) for name, step in steps if not isinstance(step, str)]
    if not steps:
        return "passthrough"
    return Pipeline(steps).set_output(transform="pandas")


def log_target(estimator: Any, *, enabled: bool) -> Any:
    """Fit ``estimator`` on ``log1p(y)`` and back-transform its predictions with ``expm1``.

    Metal concentrations are >= 0, right-skewed, and can be 0 (below detection), where
    ``log`` is ``-inf``; ``log1p(0) = 0`` and ``expm1`` is its exact inverse, and for
    concentrations well above 1 mg/kg ``log1p`` is practically ``log``. The
    back-transformed prediction estimates a median rather than a mean (no smearing
    correction is applied). Targets must be > -1; concentrations always are.

    Parameters
    ----------
    estimator : regressor
        Any scikit-learn regressor.
    enabled : bool
        Wrap when True; return ``estimator`` itself when False.

    Returns
    -------
    regressor
        A :class:`~sklearn.compose.TransformedTargetRegressor` or ``estimator``.
    """
    if not enabled:
        return estimator
    return TransformedTargetRegressor(regressor=estimator, func=np.log1p, inverse_func=np.expm1)


def build_pipeline(
    estimator: Any,
    *,
    selector: Any = None,
    impute: ImputeMethod = "knn",
    scale: ScaleMethod = "minmax",
    log: bool = False,
    n_neighbors: int = 5,
    raw: Sequence[str] = (),
    categorical: Sequence[str] = (),
) -> Pipeline:
    """The full model: name columns, scale, impute, select factors, regress.

    Steps, in order (a disabled one is ``"passthrough"``, so the names are stable):
    ``columns`` (see below), ``scale`` (:class:`~sklearn.preprocessing.MinMaxScaler`),
    ``impute`` (:class:`~sklearn.impute.KNNImputer`; scaling comes first, see
    :func:`make_preprocessor`), ``select`` (``selector``, e.g.
    :class:`~geohm.selection.CorrelationVIFSelector`) and ``model`` (``estimator``,
    wrapped by :func:`log_target` when ``log``). Selecting after scaling gives the same
    factors as selecting before: Pearson correlation and VIF do not change when a factor
    is shifted or rescaled.

    Fit it on a DataFrame so the factors keep their names: every transformer outputs a
    DataFrame, so the selector reports (and can force) factors by name. The first step,
    ``columns``, lets the fitted pipeline also predict from a plain numpy array whose
    columns are in the training order (what the tile predictor passes), without
    scikit-learn's "X does not have valid feature names" warning; a DataFrame is
    reordered to the training columns by name.

    Parameters
    ----------
    estimator : regressor
        Any scikit-learn regressor.
    selector : transformer or None, default=None
        A feature selector; None skips selection.
    impute : {"knn", "none"}, default="knn"
        See :func:`make_preprocessor`.
    scale : {"minmax", "none"}, default="minmax"
        See :func:`make_preprocessor`.
    log : bool, default=False
        Model ``log1p`` of the target (:func:`log_target`).
    n_neighbors : int, default=5
        Neighbours of the KNN imputer.
    raw : sequence of str, default=()
        Columns passed to later steps unscaled (map coordinates: kriging needs metres, and
        min-max scaling x and y separately would stretch distances).
    categorical : sequence of str, default=()
        Class-code columns (rock type, soil unit), one-hot encoded instead of scaled:
        ``<name>_<code>`` indicator columns, all zero for a code not seen in training.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Unfitted; steps ``columns``, ``scale``, ``impute``, ``select``, ``model``. With
        ``raw`` or ``categorical`` columns the ``scale`` step is a
        :class:`~sklearn.compose.ColumnTransformer` (scaled, then one-hot, then raw
        columns).

    Raises
    ------
    ConfigError
        An unknown ``impute`` or ``scale`` method, or ``n_neighbors`` < 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> from sklearn.linear_model import LinearRegression
    >>> X = pd.DataFrame({"blue": [0.1, 0.2, np.nan, 0.4], "elevation": [900.0, 950, 1000, 1100]})
    >>> pipe = build_pipeline(LinearRegression()).fit(X, [10.0, 20, 30, 40])
    >>> pipe.named_steps["scale"].data_min_.tolist()
    [0.1, 900.0]
    >>> pipe.predict(np.array([[0.1, 900.0]])).shape
    (1,)
    """
    steps: list[tuple[str, Any]] = [("columns", _ColumnFrame())]
    steps += _preprocess_steps(impute=impute, scale=scale, n_neighbors=n_neighbors)
    if raw or categorical:
        overlap = set(raw) & set(categorical)
        if overlap:
            raise ConfigError(f"columns {sorted(overlap)} cannot be both raw and categorical")
        special = (*raw, *categorical)
        parts: list[tuple[str, Any, Any]] = [("scale", steps[1][1], _Except(special))]
        if categorical:
            encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
            parts.append(("onehot", encoder, list(categorical)))
        if raw:
            parts.append(("raw", "passthrough", list(raw)))
        steps[1] = ("scale", ColumnTransformer(parts, verbose_feature_names_out=False))
    steps.append(("select", "passthrough" if selector is None else selector))
    steps.append(("model", log_target(estimator, enabled=log)))
    return Pipeline(steps).set_output(transform="pandas")


def _preprocess_steps(*, impute: str, scale: str, n_neighbors: int) -> list[tuple[str, Any]]:
    if scale not in ("minmax", "none"):
        raise ConfigError(f"scale must be 'minmax' or 'none', got {scale!r}")
    if impute not in ("knn", "none"):
        raise ConfigError(f"impute must be 'knn' or 'none', got {impute!r}")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, int) or n_neighbors < 1:
        raise ConfigError(f"n_neighbors must be an integer >= 1, got {n_neighbors!r}")
    return [
        ("scale", MinMaxScaler() if scale == "minmax" else "passthrough"),
        ("impute", KNNImputer(n_neighbors=n_neighbors) if impute == "knn" else "passthrough"),
    ]


class _Except:
    """Column selector of a ColumnTransformer: every column but the given ones.

    A class rather than a lambda so that fitted pipelines pickle (joblib model files).
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def __call__(self, X: pd.DataFrame) -> list[str]:
        return [c for c in X.columns if c not in self.names]


def source_columns(
    names: Sequence[str], columns: Sequence[str], categorical: Sequence[str]
) -> list[str]:
    """The input columns behind model columns (one-hot ``soil_2.0`` -> ``soil``), in order.

    Examples
    --------
    >>> source_columns(["ndvi", "soil_2.0", "soil_3.0"], ["ndvi", "soil", "x"], ["soil"])
    ['ndvi', 'soil']
    """
    out: list[str] = []
    for name in names:
        if name in columns:
            src = name
        else:
            src = next((c for c in categorical if name.startswith(f"{c}_")), name)
        if src not in out:
            out.append(src)
    return out


# auto_wrap_output_keys=None: its output container follows its input, never set_output.
class _ColumnFrame(TransformerMixin, BaseEstimator, auto_wrap_output_keys=None):  # type: ignore[call-arg]
    """Remember the training columns; turn a numpy table into a DataFrame with them.

    Fitted on a DataFrame, ``transform`` accepts a DataFrame holding those columns (in
    any order: it is reordered) or a 2-D array with that many columns in training order
    (wrapped without copying). Fitted on an array it passes arrays through. This keeps
    factor names flowing through a pipeline that is fitted on a table and applied to
    raster tiles given as arrays.
    """

    def fit(self, X: Any, y: Any = None) -> _ColumnFrame:
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.n_features_in_ = X.shape[1]
        else:
            self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X: Any) -> Any:
        check_is_fitted(self, "n_features_in_")
        names = getattr(self, "feature_names_in_", None)
        if isinstance(X, pd.DataFrame):
            if names is None:
                return X
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise SampleError(f"the table lacks factor columns {missing}")
            return X if list(X.columns) == list(names) else X[list(names)]
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[1] != self.n_features_in_:
            raise SampleError(
                f"expected a table of {self.n_features_in_} factor columns, got shape {arr.shape}"
            )
        if names is None:
            return arr
        return pd.DataFrame(arr, columns=list(names), copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "n_features_in_")
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return np.asarray(names, dtype=object)

    def set_output(self, *, transform: str | None = None) -> _ColumnFrame:
        # The output container is decided by what was fitted; nothing to configure.
        return self

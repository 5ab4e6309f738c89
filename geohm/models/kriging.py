"""Ordinary kriging and regression kriging behind the scikit-learn fit/predict interface.

Both estimators wrap :class:`pykrige.ok.OrdinaryKriging` without changing its maths: the
variogram is fitted by pykrige (least squares on the experimental variogram, weighted when
``weight=True``) and predictions come from pykrige's ``execute`` with a moving neighbourhood.

pykrige's side (coordinate columns, variogram fit and parameters, kriging at points) is
in :mod:`geohm.models.variogram`.

Coordinates are **columns of X** (projected metres, e.g. UTM or RD New), picked by
``coords=(i, j)``; the other columns are ignored by :class:`OrdinaryKrigingRegressor` and
fed to the base model by :class:`RegressionKriging`. Models see only arrays: never xarray,
paths or config.

Variogram parameters follow pykrige's conventions for the three supported models: ``range``
is the *practical* range in metres (the distance where the model reaches about 95 % of its
sill for the exponential and Gaussian models, the exact range for the spherical model);
``sill`` is the total sill (partial sill + nugget) and ``nugget`` the nugget, both in squared
target units (e.g. (mg/kg)^2).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import RegressorMixin, clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from geohm.models.base import GeohmEstimator
from geohm.models.variogram import (
    check_coords,
    check_variogram_parameters,
    coords_of,
    fit_pykrige,
    merge_duplicates,
    variogram_dict,
)
from geohm.models.variogram import krige_at as _execute  # one call per chunk (tests count)

__all__ = ["VARIOGRAM_MODELS", "OrdinaryKrigingRegressor", "RegressionKriging"]

log = logging.getLogger(__name__)

#: Variogram models that ``variogram_model="auto"`` chooses among, in tie-break order.
VARIOGRAM_MODELS: tuple[str, ...] = ("spherical", "exponential", "gaussian")

_BACKENDS = ("C", "loop")


class OrdinaryKrigingRegressor(RegressorMixin, GeohmEstimator):
    """Ordinary kriging (pykrige) as a scikit-learn regressor on coordinate columns.

    ``X`` holds the sample coordinates in projected metres: either an ``(n, 2)`` array of
    ``x, y`` or a wider table whose ``x`` and ``y`` columns are given by ``coords`` (other
    columns are ignored, so the model fits into pipelines built for other features).

    Parameters
    ----------
    variogram_model : {"auto", "spherical", "exponential", "gaussian"}, default="auto"
        Variogram model. Each model's parameters are fitted by pykrige's least squares on
        the experimental variogram (``nlags`` equal-width lag classes up to the largest
        inter-point distance; weighted towards short lags when ``weight=True``). ``"auto"``
        fits all three and keeps the one with the lowest cross-validated RMSE: ``cv``-fold
        :class:`~sklearn.model_selection.KFold` (shuffled with ``random_state``; leave-one-out
        when ``cv`` >= the number of distinct locations), refitting the variogram on every
        training fold and predicting the held-out samples with the same neighbourhood as
        :meth:`predict`. Ties go to the earlier model in :data:`VARIOGRAM_MODELS`.
    variogram_parameters : dict or list, optional
        Fixed variogram parameters instead of a fit, in any form pykrige takes:
        ``{"sill", "range", "nugget"}`` (total sill), ``{"psill", "range", "nugget"}`` or
        ``[psill, range, nugget]``; range in metres, sill and nugget in squared target
        units. Needs a named ``variogram_model`` (not ``"auto"``).
    nlags : int, default=6
        Number of lag classes of the experimental variogram (pykrige's ``nlags``).
    weight : bool, default=False
        Weighted least squares for the variogram fit (pykrige's ``weight``): short lags
        weigh more.
    n_closest_points : int or None, default=32
        Moving neighbourhood: each prediction uses its ``n_closest_points`` nearest data
        (all data when there are fewer), so the cost per predicted point does not grow with
        the number of samples. ``None`` kriges with all the data.
    exact_values : bool, default=True
        pykrige's ``exact_values``: at a data location the prediction is the datum itself
        (kriging is an exact interpolator), whatever the nugget.
    cv : int, default=5
        Folds of the cross-validation of ``variogram_model="auto"``.
    coords : tuple of int or of str, default=(0, 1)
        Column indices of ``x`` and ``y`` in ``X``, or their names when ``X`` is a
        DataFrame.
    backend : {"C", "loop"}, default="C"
        pykrige's moving-window backend: ``"C"`` is its compiled loop, ``"loop"`` the same
        loop in Python (about 50 times slower; results equal to rounding). ``"C"`` falls
        back to ``"loop"`` when pykrige's extension is missing.
    chunk_size : int, default=65536
        Rows kriged per pykrige call in :meth:`predict`; bounds memory, not results.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds of ``variogram_model="auto"``.

    Attributes
    ----------
    variogram_model_ : str
        The variogram model used.
    variogram_parameters_ : dict
        ``{"sill", "range", "nugget"}`` of the variogram used: total sill and nugget in
        squared target units, (practical) range in metres. Passing it back as
        ``variogram_parameters`` with ``variogram_model_`` reproduces the model.
    cv_rmse_ : dict
        Cross-validated RMSE (target units) of each candidate when
        ``variogram_model="auto"`` (``inf`` for a candidate whose fit failed); empty
        otherwise.
    lags_, semivariance_ : ndarray
        Experimental variogram of the training data: lag distances (m) and semivariances.
    xy_, values_ : ndarray
        The kriged data: distinct locations ``(n, 2)`` and their values (samples at repeated
        locations are averaged, since the kriging system is singular otherwise).
    ok_ : pykrige.ok.OrdinaryKriging or None
        The fitted pykrige object; ``None`` when all values are equal (then the variogram is
        flat, kriging is undefined, and :meth:`predict` returns that value with std 0).
    n_features_in_ : int
        Number of columns of ``X``.

    Notes
    -----
    Far from the data (beyond the range from every neighbour) the prediction tends to the
    generalised-least-squares mean of the neighbourhood data (their arithmetic mean when
    they are themselves more than a range apart) and the kriging variance to the sill plus
    the variance of that mean's estimate (``sill * (1 + 1/n)`` in the latter case).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> xy = rng.uniform(0, 1000, size=(50, 2))
    >>> z = np.sin(xy[:, 0] / 300) + 0.01 * xy[:, 1] / 100
    >>> ok = OrdinaryKrigingRegressor(random_state=0).fit(xy, z)
    >>> sorted(ok.cv_rmse_) == sorted(VARIOGRAM_MODELS)
    True
    >>> pred, std = ok.predict(xy[:3], return_std=True)
    >>> bool(np.allclose(pred, z[:3])), bool(np.allclose(std, 0))
    (True, True)
    """

    #: Valid values of each parameter (scikit-learn's ``_validate_params``); geohm's
    #: config checks ``model.params`` against them before any data is read, then
    #: :meth:`_check_params` (parameters that depend on each other, ``coords``).
    _parameter_constraints: dict[str, list[Any]] = {
        "variogram_model": [StrOptions({*VARIOGRAM_MODELS, "auto"})],
        "variogram_parameters": [dict, list, tuple, None],
        "nlags": [Interval(numbers.Integral, 1, None, closed="left")],
        "weight": ["boolean"],
        "n_closest_points": [Interval(numbers.Integral, 2, None, closed="left"), None],
        "exact_values": ["boolean"],
        "cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "coords": [tuple, list],
        "backend": [StrOptions(set(_BACKENDS))],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }
    _fitted_attribute = "variogram_parameters_"

    def __init__(
        self,
        variogram_model: str = "auto",
        *,
        variogram_parameters: Any = None,
        nlags: int = 6,
        weight: bool = False,
        n_closest_points: int | None = 32,
        exact_values: bool = True,
        cv: int = 5,
        coords: tuple[int, int] | tuple[str, str] = (0, 1),
        backend: str = "C",
        chunk_size: int = 65_536,
        random_state: Any = None,
    ) -> None:
        self.variogram_model = variogram_model
        self.variogram_parameters = variogram_parameters
        self.nlags = nlags
        self.weight = weight
        self.n_closest_points = n_closest_points
        self.exact_values = exact_values
        self.cv = cv
        self.coords = coords
        self.backend = backend
        self.chunk_size = chunk_size
        self.random_state = random_state

    # ----------------------------------------------------------------- validation

    def _check_params(self) -> tuple[int, int]:
        def check_int(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        if self.variogram_model not in (*VARIOGRAM_MODELS, "auto"):
            raise ValueError(
                f"variogram_model must be one of {', '.join((*VARIOGRAM_MODELS, 'auto'))}, "
                f"got {self.variogram_model!r}"
            )
        if self.variogram_model == "auto" and self.variogram_parameters is not None:
            raise ValueError("variogram_parameters need a named variogram_model, not 'auto'")
        if self.variogram_parameters is not None:
            check_variogram_parameters(self.variogram_parameters)
        check_int("nlags", 1)
        check_int("cv", 2)
        check_int("chunk_size", 1)
        if self.n_closest_points is not None:
            check_int("n_closest_points", 2)
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be 'C' or 'loop', got {self.backend!r}")
        if not isinstance(self.weight, bool | np.bool_):
            raise ValueError(f"weight must be True or False, got {self.weight!r}")
        if not isinstance(self.exact_values, bool | np.bool_):
            raise ValueError(f"exact_values must be True or False, got {self.exact_values!r}")
        return check_coords(self.coords)

    # ----------------------------------------------------------------- fit

    def _build(self, xy: np.ndarray, z: np.ndarray, model: str, parameters: Any) -> Any:
        return fit_pykrige(
            xy,
            z,
            model=model,
            parameters=parameters,
            nlags=int(self.nlags),
            weight=bool(self.weight),
            exact_values=bool(self.exact_values),
        )

    def _cv_rmse(self, xy: np.ndarray, z: np.ndarray, model: str) -> float:
        """Pooled out-of-fold RMSE of ``model`` (variogram refitted on every training fold)."""
        folds = KFold(min(int(self.cv), z.size), shuffle=True, random_state=self.random_state)
        sq = np.empty(z.size)
        for train, test in folds.split(xy):
            ok = self._build(xy[train], z[train], model, None)
            pred, _ = _execute(
                ok, xy[test], n_closest_points=self.n_closest_points, backend=self.backend
            )
            sq[test] = (pred - z[test]) ** 2
        return float(np.sqrt(sq.mean()))

    def fit(self, X: Any, y: Any) -> OrdinaryKrigingRegressor:
        """Fit the variogram (choosing the model when ``"auto"``) and keep the data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Coordinates in projected metres in the columns ``coords``; other columns
            are ignored.
        y : array-like of shape (n_samples,)
            Values to interpolate (e.g. mg/kg).

        Returns
        -------
        self : OrdinaryKrigingRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            Bad parameters, non-finite input, or fewer than three distinct locations.
        """
        ix, iy = self._check_params()
        X, y = self._fit_data(X, y, ensure_min_samples=3, ensure_min_features=max(ix, iy, 1) + 1)
        ix, iy = coords_of(self)
        xy, z = merge_duplicates(X[:, [ix, iy]], np.asarray(y, dtype=np.float64))
        if z.size < 3:
            raise ValueError(
                f"ordinary kriging needs at least 3 distinct sample locations, got {z.size}"
            )
        self.xy_, self.values_ = xy, z
        self.cv_rmse_: dict[str, float] = {}

        if np.ptp(z) == 0.0:  # flat variogram: pykrige cannot fit it, kriging is undefined
            self.variogram_model_ = (
                VARIOGRAM_MODELS[0] if self.variogram_model == "auto" else self.variogram_model
            )
            self.variogram_parameters_ = {"sill": 0.0, "range": 0.0, "nugget": 0.0}
            self.lags_ = np.empty(0)
            self.semivariance_ = np.empty(0)
            self.ok_ = None
            return self

        if self.variogram_model == "auto":
            for model in VARIOGRAM_MODELS:
                try:
                    self.cv_rmse_[model] = self._cv_rmse(xy, z, model)
                except (ValueError, np.linalg.LinAlgError) as err:
                    log.info("kriging: variogram %s failed in cross-validation: %s", model, err)
                    self.cv_rmse_[model] = math.inf
            finite = {m: r for m, r in self.cv_rmse_.items() if math.isfinite(r)}
            if not finite:
                raise ValueError(
                    "no variogram model could be cross-validated on these data "
                    f"({z.size} locations); give variogram_model and variogram_parameters"
                )
            model = min(finite, key=finite.__getitem__)  # first of VARIOGRAM_MODELS on ties
        else:
            model = self.variogram_model

        ok = self._build(xy, z, model, self.variogram_parameters)
        self.ok_ = ok
        self.variogram_model_ = model
        self.variogram_parameters_ = variogram_dict(ok.variogram_model_parameters)
        self.lags_ = np.asarray(ok.lags, dtype=np.float64)
        self.semivariance_ = np.asarray(ok.semivariance, dtype=np.float64)
        return self

    # ----------------------------------------------------------------- predict

    def _chunks(self, xy: np.ndarray) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
        step = int(self.chunk_size)
        for start in range(0, xy.shape[0], step):
            sl = slice(start, start + step)
            pred, var = _execute(
                self.ok_, xy[sl], n_closest_points=self.n_closest_points, backend=self.backend
            )
            yield sl, pred, var

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Krige at the coordinates of ``X``, ``chunk_size`` rows at a time.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Coordinates in projected metres in the columns ``coords``.
        return_std : bool, default=False
            Also return the kriging standard deviation.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Kriged values, in the units of ``y``.
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std``: the kriging standard deviation (square root of the
            kriging variance, clipped at 0), in the units of ``y``. It depends on the data
            layout and the variogram only, not on the local values.
        """
        X = self._predict_data(X)
        ix, iy = coords_of(self)
        xy = X[:, [ix, iy]]
        n = xy.shape[0]
        if self.ok_ is None:
            pred = np.full(n, self.values_[0])
            return (pred, np.zeros(n)) if return_std else pred
        pred = np.empty(n)
        std = np.empty(n) if return_std else None
        for sl, p, var in self._chunks(xy):
            pred[sl] = p
            if std is not None:
                std[sl] = np.sqrt(np.clip(var, 0.0, None))
        return (pred, std) if return_std else pred


# --------------------------------------------------------------------------- RK


class RegressionKriging(RegressorMixin, GeohmEstimator):
    """Regression kriging: a base regressor plus ordinary kriging of its residuals.

    1. Out-of-fold predictions of ``base`` on the training data (``cross_val_predict``)
       give out-of-fold residuals ``y - oof``.
    2. An :class:`OrdinaryKrigingRegressor` is fitted to those residuals at the sample
       coordinates.
    3. ``base`` is refitted on all samples.
    4. The prediction is ``base`` prediction + kriged residual.

    The residuals must be out-of-fold: a flexible base such as a random forest fits its own
    training samples almost exactly, so its in-sample residuals are near zero and carry
    neither the size nor the spatial structure of its errors at new locations. Kriging them
    would add almost nothing (a flat, tiny variogram); the out-of-fold residuals are the
    errors the base actually makes away from its training data, which is what kriging
    corrects.

    Parameters
    ----------
    base : regressor
        Any scikit-learn regressor (a forest, a geohm pipeline, GA-BP...); cloned.
    cv : int or cross-validation splitter, default=5
        Folds of the out-of-fold predictions: an int gives a
        :class:`~sklearn.model_selection.KFold` shuffled with ``random_state``; a splitter
        (e.g. :class:`geohm.spatialcv.SpatialBlockKFold`) is called on the full ``X``
        (coordinates included) and must put every sample in exactly one test fold.
    random_state : int, RandomState instance or None, default=None
        Seeds the ``KFold`` of an int ``cv``, and the kriging model unless
        ``kriging_params`` sets its own ``random_state``. The base model keeps its own
        ``random_state``.
    kriging_params : dict, optional
        Parameters of the :class:`OrdinaryKrigingRegressor` of the residuals (not
        ``coords``).
    coords : tuple of int or of str, default=(0, 1)
        Column indices of ``x`` and ``y`` (projected metres) in ``X``, or their names when
        ``X`` is a DataFrame.
    base_uses_coords : bool, default=False
        Whether ``base`` sees the coordinate columns; by default they are removed from its
        input.

    Attributes
    ----------
    base_ : regressor
        ``base`` fitted on all samples.
    kriging_ : OrdinaryKrigingRegressor
        Ordinary kriging of the out-of-fold residuals (its X is ``(x, y)``).
    oof_residuals_ : ndarray of shape (n_samples,)
        ``y`` minus the out-of-fold predictions of ``base``.
    n_features_in_ : int
        Number of columns of ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> xy = rng.uniform(0, 1000, size=(60, 2))
    >>> cov = rng.normal(size=(60, 1))
    >>> y = 2 * cov[:, 0] + np.sin(xy[:, 0] / 200)
    >>> X = np.column_stack([xy, cov])
    >>> rk = RegressionKriging(LinearRegression(), random_state=0).fit(X, y)
    >>> rk.oof_residuals_.shape
    (60,)
    >>> pred, std = rk.predict(X[:2], return_std=True)
    >>> pred.shape, std.shape
    ((2,), (2,))
    """

    #: Valid values of each parameter (scikit-learn's ``_validate_params``); geohm's
    #: config checks ``model.params`` against them before any data is read.
    _parameter_constraints: dict[str, list[Any]] = {
        "base": [HasMethods(["fit", "predict"])],
        "cv": [Interval(numbers.Integral, 2, None, closed="left"), HasMethods(["split"])],
        "random_state": ["random_state"],
        "kriging_params": [dict, None],
        "coords": [tuple, list],
        "base_uses_coords": ["boolean"],
    }
    _fitted_attribute = "kriging_"

    def __init__(
        self,
        base: Any,
        *,
        cv: Any = 5,
        random_state: Any = None,
        kriging_params: dict[str, Any] | None = None,
        coords: tuple[int, int] | tuple[str, str] = (0, 1),
        base_uses_coords: bool = False,
    ) -> None:
        self.base = base
        self.cv = cv
        self.random_state = random_state
        self.kriging_params = kriging_params
        self.coords = coords
        self.base_uses_coords = base_uses_coords

    def _base_columns(self, X: np.ndarray, ix: int, iy: int) -> np.ndarray:
        if self.base_uses_coords:
            return X
        keep = [c for c in range(X.shape[1]) if c not in (ix, iy)]
        return X[:, keep]

    def _splits(self, X: np.ndarray, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be >= 2, got {cv!r}")
            cv = KFold(int(cv), shuffle=True, random_state=self.random_state)
        elif isinstance(cv, str) or not hasattr(cv, "split"):
            raise ValueError(f"cv must be an int or a splitter with split(), got {cv!r}")
        return list(cv.split(X, y))

    def _kriging(self) -> OrdinaryKrigingRegressor:
        params = dict(self.kriging_params or {})
        if "coords" in params:
            raise ValueError("kriging_params cannot set coords; set RegressionKriging.coords")
        params.setdefault("random_state", self.random_state)
        return OrdinaryKrigingRegressor(**params)

    def fit(self, X: Any, y: Any) -> RegressionKriging:
        """Fit the base model, krige its out-of-fold residuals, refit the base on all data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, with the coordinates (projected metres) in the columns ``coords``.
        y : array-like of shape (n_samples,)
            Target (e.g. mg/kg).

        Returns
        -------
        self : RegressionKriging
            The fitted estimator.

        Raises
        ------
        ValueError
            Bad parameters, or no feature left for the base model.
        """
        ix, iy = check_coords(self.coords)
        X, y = self._fit_data(X, y, ensure_min_samples=3, ensure_min_features=max(ix, iy, 1) + 1)
        ix, iy = coords_of(self)
        y = np.asarray(y, dtype=np.float64)
        Xb = self._base_columns(X, ix, iy)
        if Xb.shape[1] == 0:
            raise ValueError(
                "X holds only the coordinate columns, so the base model has no feature: "
                "add covariates or set base_uses_coords=True"
            )
        kriging = self._kriging()  # validate kriging_params before the costly part
        splits = self._splits(X, y)
        oof = cross_val_predict(clone(self.base), Xb, y, cv=splits)
        self.oof_residuals_ = y - np.asarray(oof, dtype=np.float64).reshape(-1)
        self.kriging_ = kriging.fit(X[:, [ix, iy]], self.oof_residuals_)
        self.base_ = clone(self.base).fit(Xb, y)
        return self

    def predict(self, X: Any, return_std: bool = False) -> Any:
        """Predict: base prediction plus kriged out-of-fold residual.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features, with the coordinates (projected metres) in the columns ``coords``.
        return_std : bool, default=False
            Also return the kriging standard deviation of the residual.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predictions, in the units of ``y``.
        y_std : ndarray of shape (n_samples,)
            Only with ``return_std``: the kriging standard deviation of the residual, in
            the units of ``y``. It ignores the base model's own uncertainty (the error of
            its fitted trend), so it understates the total prediction uncertainty.
        """
        X = self._predict_data(X)
        ix, iy = coords_of(self)
        trend = np.asarray(self.base_.predict(self._base_columns(X, ix, iy)), dtype=np.float64)
        trend = trend.reshape(-1)
        if return_std:
            resid, std = self.kriging_.predict(X[:, [ix, iy]], return_std=True)
            return trend + resid, std
        return trend + self.kriging_.predict(X[:, [ix, iy]])

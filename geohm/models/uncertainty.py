"""Prediction intervals for every geohm model: the data behind the uncertainty map.

What the uncertainty map shows
------------------------------
``<target>_uncertainty.tif`` is the **width of the central prediction interval**,
``upper - lower`` in mg/kg, of nominal coverage ``coverage`` (0.9: the 5 % and 95 %
bounds). Every model uses this definition. Bounds are computed in the space the model was
fitted in (``log1p`` of the concentration when ``preprocess.log_target`` is on) and
back-transformed with the model's inverse (``expm1``). The back-transform is monotone, so
bounds map onto bounds and the 90 % coverage carries over to mg/kg. A standard deviation
would not carry over this way. With a log target the interval is therefore asymmetric
around the map value and wider where concentrations are high.

Method per model (chosen by :class:`IntervalModel` from the last step of the pipeline)
-------------------------------------------------------------------------------------
``"quantile-forest"`` (:class:`~sklearn.ensemble.RandomForestRegressor`,
:class:`~sklearn.ensemble.ExtraTreesRegressor`)
    Quantile regression forest (Meinshausen 2006, *JMLR* 7:983). Every training sample
    is dropped down every tree. A sample in the leaf of ``x`` in tree ``t`` weighs
    ``1 / (T * leaf size)``. The bound is the weighted quantile of the training targets,
    ``inf{y : F(y | x) >= q}``. The forest is used as fitted; no second forest is grown.
    Raw QRF intervals of fully grown trees (``min_samples_leaf=1``, geohm's default) are
    too narrow: on synthetic heteroscedastic data they covered 0.81-0.83 at a nominal
    0.9. They are therefore calibrated by conformalized quantile regression (CQR; Romano,
    Patterson & Candes 2019). Out-of-fold QRF bounds (the pipeline refitted on each
    training fold) give scores ``max(lower - y, y - upper)``, and both bounds move
    outwards by their conformal quantile (inwards when that quantile is negative).
``"kriging"`` (a final step whose ``predict`` takes ``return_std``:
:class:`~geohm.models.kriging.OrdinaryKrigingRegressor`,
:class:`~geohm.models.kriging.RegressionKriging`)
    Gaussian interval ``pred +- z * std``, with ``z = 1.645`` for 90 %. It is computed in
    log space under a log target, then back-transformed. Regression kriging's std leaves
    out the trend model's error, so the interval tends to be too narrow.
    ``calibrate=True`` replaces ``z`` by the conformal quantile of the out-of-fold
    normalised residuals ``|y - pred| / std`` (normalised conformal prediction).
``"residual"`` (GA-BP, Tr-GA-BP, any other regressor)
    Conformal interval ``pred +- Q``. ``Q`` is the conformal quantile of the absolute
    out-of-fold residuals ``|y - oof|``, taken in log space under a log target. A
    constant ``Q`` in log space is a relative (multiplicative) band in mg/kg.

The conformal quantile, and the assumptions and limits of the intervals:
:mod:`geohm.models.conformal`.

How the quantile forest is computed, and why not the ``quantile-forest`` package:
:mod:`geohm.models.leafweights`.

The same leaves give the exceedance votes of the forest's trees
(:meth:`IntervalModel.predict_distribution`): the concentration, its interval and
P(C > threshold) of a window come from one traversal of the forest.

Models see only arrays (and the DataFrames of geohm pipelines): never rasters, paths or
config.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterable, Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from geohm.models.conformal import (
    _check_coverage,
    _has_std,
    _n_rows,
    _ordered,
    _rows,
    conformal_quantile,
    interval_width,
)
from geohm.models.leafweights import _LeafWeights
from geohm.models.parts import EstimatorParts, estimator_parts

__all__ = [
    "METHODS",
    "EstimatorParts",
    "IntervalModel",
    "conformal_quantile",
    "estimator_parts",
    "interval_model",
    "interval_width",
    "prediction_interval",
]

log = logging.getLogger(__name__)

#: Interval methods, in the order ``method="auto"`` tries them.
METHODS: tuple[str, ...] = ("quantile-forest", "kriging", "residual")

Method = Literal["auto", "quantile-forest", "kriging", "residual"]

_FORESTS = (RandomForestRegressor, ExtraTreesRegressor)


# --------------------------------------------------------------------------- model


class IntervalModel(BaseEstimator):
    """Prediction intervals around a fitted geohm estimator (see the module docstring).

    The estimator is used as fitted and is never refitted. Only the calibration fits
    clones of it on training folds. Fit on the estimator's own training samples.
    Then :meth:`interval` gives bounds for any table the estimator can predict, e.g. a
    window of pixels as an ``(n, n_features)`` float32 array. Save it together with
    the estimator (one :func:`geohm.io.models.save_model`), so that the shared estimator
    is stored once.

    Parameters
    ----------
    estimator : fitted estimator
        The model (pipeline) whose predictions the intervals surround.
    coverage : float, default=0.9
        Nominal coverage: 0.9 gives the 5 % and 95 % bounds.
    method : {"auto", "quantile-forest", "kriging", "residual"}, default="auto"
        ``"auto"`` picks ``"quantile-forest"`` for a random forest / extra trees final
        step, ``"kriging"`` for a final step whose ``predict`` takes ``return_std``, and
        ``"residual"`` otherwise. ``"residual"`` works for any estimator.
    calibrate : bool or None, default=None
        Conformal calibration on out-of-fold data. None means True for
        ``"quantile-forest"`` and ``"residual"`` (which has no interval without it) and
        False for ``"kriging"`` (the Gaussian interval).
    cv : int or iterable of (train, test) index arrays, default=5
        Folds of the calibration. An int gives a
        :class:`~sklearn.model_selection.KFold` shuffled with ``random_state``, the same
        folds as :func:`geohm.evaluate.cross_validate` with ``seed=random_state``.
        Index pairs (e.g. spatial blocks) are used as given, and every sample must be
        in exactly one test fold.
    random_state : int or None, default=None
        Seed of the ``KFold`` folds. Estimators keep their own seeds.
    chunk_size : int, default=16384
        Rows handled at once by :meth:`interval`. It bounds memory, not results.

    Attributes
    ----------
    method_ : str
        The method used (one of :data:`METHODS`).
    calibrated_ : bool
        Whether a conformal correction is applied.
    correction_ : float or None
        The conformal quantile, in the final regressor's target space (``log1p`` mg/kg
        under a log target). For ``"residual"`` it is the half-width ``Q``; for
        ``"quantile-forest"`` the outward shift of each bound; for ``"kriging"`` the
        multiple of the std that replaces ``z``. None when not calibrated.
    z_ : float
        Standard-normal quantile of the Gaussian interval (1.645 for 0.9).
    n_calibration_ : int
        Number of out-of-fold scores behind ``correction_`` (0 when not calibrated).
    raw_oof_coverage_ : float
        Share of the out-of-fold samples inside their *uncalibrated* interval (QRF
        quantiles, Gaussian kriging interval). It shows how much calibration was
        needed. NaN for ``"residual"`` and when not calibrated.
    forest_ : object or None
        Leaf weights of the quantile regression forest (``"quantile-forest"`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (200, 2))
    >>> y = 3 * X[:, 0] + rng.normal(0, 0.5, 200)
    >>> model = LinearRegression().fit(X, y)
    >>> im = IntervalModel(model, random_state=0).fit(X, y)
    >>> im.method_
    'residual'
    >>> lower, upper = im.interval(X[:3])
    >>> bool(np.allclose(upper - lower, 2 * im.correction_))
    True
    """

    method_: str
    calibrated_: bool
    correction_: float | None
    z_: float
    n_calibration_: int
    raw_oof_coverage_: float
    forest_: _LeafWeights | None

    def __init__(
        self,
        estimator: Any,
        *,
        coverage: float = 0.9,
        method: Method = "auto",
        calibrate: bool | None = None,
        cv: Any = 5,
        random_state: Any = None,
        chunk_size: int = 16_384,
    ) -> None:
        self.estimator = estimator
        self.coverage = coverage
        self.method = method
        self.calibrate = calibrate
        self.cv = cv
        self.random_state = random_state
        self.chunk_size = chunk_size

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the state; quantile-forest weights must match the estimator's forest.

        Raises
        ------
        ValueError
            Leaf weights of another forest (a corrupt or crafted file).
        """
        super().__setstate__(state)
        weights = self.__dict__.get("forest_")
        if weights is not None:
            if not isinstance(weights, _LeafWeights):
                raise ValueError(f"IntervalModel.forest_ is a {type(weights).__name__}")
            weights.check_forest(estimator_parts(self.estimator).final)

    # ----------------------------------------------------------------- fit

    def _resolve_method(self, parts: EstimatorParts) -> str:
        if self.method not in ("auto", *METHODS):
            raise ValueError(
                f"method must be one of {', '.join(('auto', *METHODS))}, got {self.method!r}"
            )
        forest = isinstance(parts.final, _FORESTS)
        kriging = _has_std(parts.final)
        if self.method == "auto":
            return "quantile-forest" if forest else "kriging" if kriging else "residual"
        if self.method == "quantile-forest" and not forest:
            raise ValueError(
                f"method 'quantile-forest' needs a random forest, got {type(parts.final).__name__}"
            )
        if self.method == "kriging" and not kriging:
            raise ValueError(
                f"method 'kriging' needs predict(X, return_std=True), which "
                f"{type(parts.final).__name__} lacks"
            )
        return str(self.method)

    def _splits(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be >= 2, got {cv!r}")
            kf = KFold(min(int(cv), n), shuffle=True, random_state=self.random_state)
            return list(kf.split(np.zeros((n, 1))))
        if isinstance(cv, str) or not isinstance(cv, Iterable):
            raise ValueError(f"cv must be an int or (train, test) index pairs, got {cv!r}")
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
        seen = np.concatenate([te for _, te in splits]) if splits else np.empty(0, int)
        if np.sort(seen).tolist() != list(range(n)):
            raise ValueError("cv folds must put every sample in exactly one test fold")
        return splits

    def fit(self, X: Any, y: Any, *, oof_predictions: Any = None) -> IntervalModel:
        """Prepare the intervals from the estimator's training samples.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The training table of ``estimator`` (the same columns it was fitted on).
        y : array-like of shape (n_samples,)
            Its training targets, in target units (mg/kg).
        oof_predictions : array-like of shape (n_samples,), optional
            Out-of-fold predictions of ``estimator`` on ``X`` in target units. An
            example is ``geohm.evaluate.cross_validate(...)["predictions"]``.
            ``"residual"`` uses them instead of refitting the estimator on ``cv`` folds.
            The other methods need out-of-fold intervals and refit anyway.

        Returns
        -------
        self : IntervalModel
            The fitted interval model.

        Raises
        ------
        ValueError
            Bad parameters, an unfitted or unsuitable estimator, or mismatched lengths.
        """
        self.z_ = float(norm.ppf(0.5 + _check_coverage(self.coverage) / 2))
        if not isinstance(self.chunk_size, numbers.Integral) or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        parts = estimator_parts(self.estimator)
        check_is_fitted(parts.final)
        method = self._resolve_method(parts)
        calibrate = self.calibrate if self.calibrate is not None else method != "kriging"
        if method == "residual" and not calibrate:
            raise ValueError("method 'residual' is a conformal interval: calibrate cannot be False")
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        n = _n_rows(X)
        if y.size != n:
            raise ValueError(f"X has {n} rows but y has {y.size} values")
        self.method_ = method
        self.calibrated_ = bool(calibrate)
        self.forest_ = (
            _LeafWeights(parts.final, parts.features(X), parts.to_model(y))
            if method == "quantile-forest"
            else None
        )
        self.correction_ = None
        self.n_calibration_ = 0
        self.raw_oof_coverage_ = float("nan")
        if calibrate:
            scores = self._oof_scores(X, y, oof_predictions, parts)
            self.correction_ = conformal_quantile(scores, self.coverage)
            self.n_calibration_ = int((~np.isnan(scores)).sum())
        return self

    def _oof_scores(self, X: Any, y: np.ndarray, oof: Any, parts: EstimatorParts) -> np.ndarray:
        """Conformity scores of the training samples, from models that did not see them."""
        yt = parts.to_model(y)
        if self.method_ == "residual" and oof is not None:
            oof = np.asarray(oof, dtype=np.float64).reshape(-1)
            if oof.size != y.size:
                raise ValueError(f"oof_predictions has {oof.size} values, y has {y.size}")
            return np.abs(yt - parts.to_model(oof))
        if isinstance(self.estimator, FrozenEstimator):
            raise ValueError(
                "a FrozenEstimator cannot be refitted on calibration folds: pass "
                "oof_predictions (method 'residual') or the unfrozen estimator"
            )
        scores = np.empty(y.size)
        inside = np.zeros(y.size, dtype=bool)
        for train, test in self._splits(y.size):
            fold = clone(self.estimator).fit(_rows(X, train), y[train])
            if self.method_ == "residual":
                center = estimator_parts(fold).to_model(fold.predict(_rows(X, test)))
                scores[test] = np.abs(yt[test] - center)
                continue
            raw = IntervalModel(
                fold,
                coverage=self.coverage,
                method=self.method_,  # type: ignore[arg-type]
                calibrate=False,
                chunk_size=self.chunk_size,
            ).fit(_rows(X, train), y[train])
            center, lower, upper, std, _ = raw._model_space(_rows(X, test))
            inside[test] = (yt[test] >= lower) & (yt[test] <= upper)
            if self.method_ == "quantile-forest":
                scores[test] = np.maximum(lower - yt[test], yt[test] - upper)
            else:  # kriging: normalised residuals; a zero std scores 0 or inf
                err = np.abs(yt[test] - center)
                with np.errstate(divide="ignore", invalid="ignore"):
                    scores[test] = np.where(err == 0, 0.0, err / std)
        if self.method_ != "residual":
            self.raw_oof_coverage_ = float(inside.mean())
        return scores

    # ----------------------------------------------------------------- predict

    def _chunks(self, X: Any) -> Iterator[tuple[slice, Any]]:
        n = _n_rows(X)
        step = int(self.chunk_size)
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            yield sl, (X.iloc[sl] if isinstance(X, pd.DataFrame) else X[sl])

    def _model_space(
        self, X: Any, thresholds: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(prediction, lower, upper, std, votes) in the final regressor's target space.

        ``thresholds`` ((k, n), target units): also the (k, n) int32 number of trees
        above each, from the quantile forest's own traversal (None without them).
        """
        check_is_fitted(self, "method_")
        parts = estimator_parts(self.estimator)
        X = X if isinstance(X, pd.DataFrame) else np.asarray(X)
        n = _n_rows(X)
        center, lower, upper = np.empty(n), np.empty(n), np.empty(n)
        std = np.full(n, np.nan)
        alpha = 1.0 - float(self.coverage)
        counts = None
        if thresholds is not None:
            if self.method_ != "quantile-forest" or self.forest_ is None:
                raise ValueError(
                    f"exceedance votes need a quantile forest, not method {self.method_!r}"
                )
            counts = np.empty(thresholds.shape, dtype=np.int32)
            leaf_values = parts.from_model(self.forest_.values)  # mg/kg, as the thresholds
        for sl, Xc in self._chunks(X):
            Xt = parts.features(Xc)
            if self.method_ == "quantile-forest":
                assert self.forest_ is not None
                votes = None
                if counts is not None and thresholds is not None:
                    votes = (leaf_values, thresholds[:, sl])
                center[sl], (lo, hi), chunk_votes = self.forest_.predict(
                    parts.final, Xt, (alpha / 2, 1 - alpha / 2), votes
                )
                if counts is not None and chunk_votes is not None:
                    counts[:, sl] = chunk_votes
                if self.correction_ is not None:
                    lo, hi = lo - self.correction_, hi + self.correction_
                    mid = 0.5 * (lo + hi)  # a negative correction cannot cross the bounds
                    lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
                lower[sl], upper[sl] = lo, hi
            elif self.method_ == "kriging":
                pred, s = parts.final.predict(Xt, return_std=True)
                pred = np.asarray(pred, dtype=np.float64).reshape(-1)
                s = np.asarray(s, dtype=np.float64).reshape(-1)
                half = (self.z_ if self.correction_ is None else self.correction_) * s
                center[sl], std[sl] = pred, s
                lower[sl], upper[sl] = pred - half, pred + half
            else:
                pred = np.asarray(parts.final.predict(Xt), dtype=np.float64).reshape(-1)
                assert self.correction_ is not None
                center[sl] = pred
                lower[sl], upper[sl] = pred - self.correction_, pred + self.correction_
        return center, lower, upper, std, counts

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction and interval bounds, in target units (mg/kg), in one pass.

        The prediction equals ``estimator.predict(X)`` (bit for bit for a single-threaded
        forest, whose trees are summed in the same order). A window can therefore give its
        concentration and its uncertainty from one traversal of the model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Rows in the estimator's input columns, e.g. a window's valid pixels (float32).

        Returns
        -------
        prediction, lower, upper : numpy.ndarray of shape (n,)
            float64, in target units; ``lower <= upper``.
        """
        center, lower, upper, _, _ = self._model_space(X)
        parts = estimator_parts(self.estimator)
        lo, hi = _ordered(parts.from_model(lower), parts.from_model(upper))
        return parts.from_model(center), lo, hi

    def predict_distribution(
        self, X: Any, thresholds: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Prediction, interval bounds and tree votes above thresholds, in one pass.

        :meth:`predict_interval` plus, for a quantile forest, the number of its trees
        whose leaf value (back-transformed to target units) is above each threshold:
        the leaves each row ends in are found once per chunk of rows and give the mean,
        the weighted quantiles and the votes. The exceedance probability is the votes
        divided by the number of trees
        (:func:`geohm.models.ensemble.predict_distribution` does that).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Rows in the estimator's input columns, e.g. a window's valid pixels (float32).
        thresholds : array-like of shape (k, n), optional
            Values in target units (mg/kg); a NaN threshold counts no tree.

        Returns
        -------
        prediction, lower, upper : numpy.ndarray of shape (n,)
            As :meth:`predict_interval`.
        votes : numpy.ndarray or None
            (k, n) int32 in ``0 .. n_trees``; None without ``thresholds``.

        Raises
        ------
        ValueError
            ``thresholds`` of another shape, or given to an interval model that is not a
            quantile forest.
        """
        t = None
        if thresholds is not None:
            t = np.asarray(thresholds, dtype=np.float64)
            if t.ndim != 2 or t.shape[1] != _n_rows(X):
                raise ValueError(f"thresholds of shape {t.shape} for {_n_rows(X)} rows")
        center, lower, upper, _, counts = self._model_space(X, t)
        parts = estimator_parts(self.estimator)
        lo, hi = _ordered(parts.from_model(lower), parts.from_model(upper))
        return parts.from_model(center), lo, hi, counts

    def interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the central ``coverage`` interval (mg/kg).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Rows in the estimator's input columns.

        Returns
        -------
        lower, upper : numpy.ndarray of shape (n,)
            float64, in target units. Take :func:`interval_width` for the uncertainty
            map.
        """
        _, lower, upper = self.predict_interval(X)
        return lower, upper


def interval_model(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    oof_predictions: Any = None,
    coverage: float = 0.9,
    method: Method = "auto",
    calibrate: bool | None = None,
    cv: Any = 5,
    random_state: Any = None,
) -> IntervalModel:
    """Fit the :class:`IntervalModel` suited to ``estimator`` on its training samples.

    Shorthand for ``IntervalModel(estimator, ...).fit(X, y, oof_predictions=...)``;
    the parameters are those of :class:`IntervalModel` and :meth:`IntervalModel.fit`.
    ``X, y`` are the estimator's training table and targets (mg/kg). Pass
    ``oof_predictions`` from :func:`geohm.evaluate.cross_validate` run with
    ``folds=cv, seed=random_state`` to spare the refits of the ``"residual"`` method.

    Returns
    -------
    IntervalModel
        Fitted; call ``.interval(X)`` or ``.predict_interval(X)``.
    """
    return IntervalModel(
        estimator,
        coverage=coverage,
        method=method,
        calibrate=calibrate,
        cv=cv,
        random_state=random_state,
    ).fit(X, y, oof_predictions=oof_predictions)


def prediction_interval(
    estimator: Any, X: Any, *, coverage: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the central ``coverage`` interval from a fitted estimator alone.

    Only two kinds of object carry their uncertainty with them. An
    :class:`IntervalModel` gives its own (calibrated) interval; its ``coverage`` must
    match. An estimator whose final step predicts a standard deviation (kriging) gives
    the Gaussian ``pred +- z * std``, computed in the fitted target space and
    back-transformed. Other models need their training samples: use
    :func:`interval_model`.

    Parameters
    ----------
    estimator : IntervalModel or fitted estimator
        See above.
    X : array-like or DataFrame of shape (n, n_features)
        Rows in the estimator's input columns.
    coverage : float, default=0.9
        Nominal coverage.

    Returns
    -------
    lower, upper : numpy.ndarray of shape (n,)
        float64, in target units (mg/kg).

    Raises
    ------
    TypeError
        The estimator has no uncertainty of its own.
    ValueError
        ``coverage`` outside (0, 1), or different from an IntervalModel's.

    Examples
    --------
    >>> import numpy as np
    >>> from geohm.models.kriging import OrdinaryKrigingRegressor
    >>> xy = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    >>> ok = OrdinaryKrigingRegressor(
    ...     "spherical", variogram_parameters={"sill": 1.0, "range": 150.0, "nugget": 0.0}
    ... ).fit(xy, [1.0, 2.0, 3.0, 4.0])
    >>> lower, upper = prediction_interval(ok, [[50.0, 50.0]])
    >>> pred, std = ok.predict([[50.0, 50.0]], return_std=True)
    >>> bool(np.allclose(upper - pred, 1.6448536 * std))
    True
    """
    coverage = _check_coverage(coverage)
    if isinstance(estimator, IntervalModel):
        check_is_fitted(estimator, "method_")
        if not math.isclose(float(estimator.coverage), coverage):
            raise ValueError(
                f"this IntervalModel was fitted for coverage {estimator.coverage}, not {coverage}"
            )
        return estimator.interval(X)
    parts = estimator_parts(estimator)
    if not _has_std(parts.final):
        raise TypeError(
            f"{type(parts.final).__name__} predicts no uncertainty of its own; build an "
            "IntervalModel from its training samples with interval_model(estimator, X, y)"
        )
    z = float(norm.ppf(0.5 + coverage / 2))
    pred, std = parts.final.predict(parts.features(X), return_std=True)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    half = z * np.asarray(std, dtype=np.float64).reshape(-1)
    return _ordered(parts.from_model(pred - half), parts.from_model(pred + half))

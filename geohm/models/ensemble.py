"""Predictive distributions per table of pixels, from one traversal of the model.

The concentration, its interval and P(concentration > threshold).

:func:`predict_distribution` is what the map prediction calls once per window and
target: it returns the concentration and whatever the model's predictive distribution
gives, as arrays. For a random forest everything comes from the leaves each pixel ends
in, found once per chunk of rows (one traversal of the forest, compiled where the
kernel was built): the mean (the map, bit-identical to the forest's ``predict``), the
weighted quantiles of the quantile regression forest (the interval, see
:mod:`geohm.models.uncertainty`) and the exceedance votes.

Exceedance probability: a forest's trees give one prediction each, the value of the leaf
a pixel ends in; the share of trees above a threshold estimates P(C > threshold). Only a
count per pixel is kept. This spread reflects model (bootstrap) variability, not the
full predictive uncertainty (a quantile forest or kriging variance is wider): it ranks
pixels well but its probabilities tend to be over-confident; report.json says which
estimate was used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from geohm.models.compiled import CompiledForest, apply_trees
from geohm.models.kernel import tree_votes
from geohm.models.uncertainty import EstimatorParts, IntervalModel, estimator_parts

__all__ = [
    "Distribution",
    "exceedance_probability",
    "has_members",
    "interval_exceedance",
    "predict_distribution",
    "votes_to_probability",
]

#: Rows per chunk: the (rows, trees) int32 leaf ids of one chunk take 13 MB for 200
#: trees (per window thread).
_CHUNK_ROWS = 16_384


@dataclass(frozen=True)
class Distribution:
    """What a fitted model gives for a table of rows, in target units (mg/kg).

    Attributes
    ----------
    prediction : numpy.ndarray
        (n,) float64, the model's ``predict`` (bit for bit).
    lower, upper : numpy.ndarray or None
        (n,) float64 bounds of the central prediction interval (with an interval model).
    exceedance : numpy.ndarray or None
        P(C > threshold), float32 in [0, 1], the shape of the thresholds given ((n,) or
        (k, n)); NaN where a threshold is NaN. None without thresholds.
    """

    prediction: np.ndarray
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    exceedance: np.ndarray | None = None


def _members(estimator: Any) -> list[Any] | None:
    members = getattr(estimator, "estimators_", None)
    if members is None or not hasattr(members[0], "tree_"):
        return None
    return list(members)


def has_members(estimator: Any) -> bool:
    """Whether the fitted estimator ends in a tree ensemble, so that it gives P(C > t).

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> has_members(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    False
    """
    return _members(estimator_parts(estimator).final) is not None


def interval_exceedance(
    prediction: Any, lower: Any, upper: Any, thresholds: Any, coverage: float
) -> np.ndarray:
    """P(C > t) from a central prediction interval, for models without ensemble members.

    A split normal distribution fitted to the interval: its median is the prediction, and
    each half has the standard deviation that puts that side's bound at the interval's
    quantile (``(bound - prediction) / z``, ``z`` the standard-normal quantile of
    ``(1 + coverage) / 2``). So P(C > upper) = (1 - coverage) / 2, P(C > prediction) =
    0.5 and P(C > lower) = (1 + coverage) / 2, whatever the interval's method (conformal
    residuals, kriging, a log target's skewed interval). The shape between the bounds is
    an assumption; the bounds themselves are calibrated.

    Parameters
    ----------
    prediction, lower, upper : array-like of shape (n,)
        Prediction and interval bounds (mg/kg).
    thresholds : array-like of shape (n,)
        The value per row (mg/kg); NaN gives NaN.
    coverage : float
        Nominal coverage of the interval (0-1).

    Returns
    -------
    numpy.ndarray
        float32 probabilities, shape (n,).

    Examples
    --------
    >>> [round(float(p), 3) for p in interval_exceedance([10.0], [5.0], [20.0], [20.0], 0.9)]
    [0.05]
    """
    from scipy.special import ndtr, ndtri

    pred = np.asarray(prediction, dtype="float64")
    t = np.broadcast_to(np.asarray(thresholds, dtype="float64"), pred.shape)
    z = float(ndtri((1.0 + coverage) / 2.0))
    side = np.where(t >= pred, np.asarray(upper) - pred, pred - np.asarray(lower))
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = np.where(side > 0, (t - pred) * z / side, np.sign(t - pred) * np.inf)
    p = 1.0 - ndtr(zscore)
    p[t == pred] = 0.5
    p[~np.isfinite(t)] = np.nan
    return p.astype("float32")


def votes_to_probability(counts: np.ndarray, n_trees: int, thresholds: np.ndarray) -> np.ndarray:
    """Share of trees above the threshold (float32), NaN where the threshold is NaN.

    Examples
    --------
    >>> votes_to_probability(np.array([0, 5, 10]), 10, np.array([1.0, np.nan, 2.0])).tolist()
    [0.0, nan, 1.0]
    """
    out = counts.astype("float32") / max(n_trees, 1)
    out[~np.isfinite(thresholds)] = np.nan
    return out


def _thresholds(thresholds: Any, n: int) -> np.ndarray:
    """Thresholds as a (k, n) float64 array (a scalar or (n,) array gives k = 1)."""
    t = np.asarray(thresholds, dtype="float64")
    if t.ndim > 2 or (t.ndim == 2 and t.shape[1] != n) or (t.ndim == 1 and t.shape[0] != n):
        raise ValueError(f"thresholds of shape {t.shape} for {n} rows; give (n,) or (k, n)")
    return np.broadcast_to(t, (1, n) if t.ndim < 2 else t.shape)


def _parts(estimator: Any, X: Any) -> tuple[EstimatorParts, list[Any], np.ndarray]:
    """(parts, trees, float32 table the trees see) of a fitted tree ensemble."""
    parts = estimator_parts(estimator)
    members = _members(parts.final)
    if members is None:
        raise TypeError(f"{type(parts.final).__name__} has no ensemble members (trees)")
    return parts, members, np.ascontiguousarray(parts.features(X), dtype="float32")


def _leaves(final: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global leaf ids and the mean of a forest for the rows ``x``: one traversal."""
    if isinstance(final, CompiledForest):
        return final.apply_mean(x, global_ids=True)
    return apply_trees(final.estimators_, x, global_ids=True)


def _mean_and_votes(estimator: Any, X: Any, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The forest's prediction and, per threshold row of ``t`` (k, n), the trees above it.

    A tree's prediction is the value of the leaf a row ends in, so the back-transformed
    leaf values are computed once and compared with the thresholds: the same numbers as
    back-transforming each tree's ``predict`` (the target transforms are elementwise).
    """
    parts, members, Xt = _parts(estimator, X)
    values = np.concatenate([np.asarray(m.tree_.value, dtype="float64")[:, 0, 0] for m in members])
    leaf_values = parts.from_model(values)
    final = parts.final
    jobs = getattr(final, "n_jobs", 1)
    if jobs is None and isinstance(final, CompiledForest):
        jobs = final.forest_.n_jobs
    mean = np.empty(len(Xt))
    counts = np.zeros(t.shape, dtype="int32")
    for start in range(0, len(Xt), _CHUNK_ROWS):
        sl = slice(start, start + _CHUNK_ROWS)
        ids, mean[sl] = _leaves(final, Xt[sl])
        for k in range(t.shape[0]):
            counts[k, sl] = tree_votes(ids, leaf_values, t[k, sl], n_jobs=jobs)
    return parts.from_model(mean), counts


def exceedance_probability(estimator: Any, X: Any, threshold: Any) -> np.ndarray:
    """Share of ensemble members predicting more than ``threshold``.

    Parameters
    ----------
    estimator : fitted pipeline or regressor
        Ending in a tree ensemble (random forest), optionally inside a log-target wrapper.
    X : numpy.ndarray
        (n, n_features) table in the estimator's input columns.
    threshold : float or numpy.ndarray
        Screening value(s) in the target's units (mg/kg), scalar or one per row.

    Returns
    -------
    numpy.ndarray
        (n,) float32 probabilities in [0, 1]; NaN where the threshold is NaN.

    Raises
    ------
    TypeError
        The estimator has no ensemble members.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> X = np.arange(20.0)[:, None]
    >>> rf = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, X[:, 0])
    >>> exceedance_probability(rf, np.array([[0.0], [19.0]]), 10.0).tolist()
    [0.0, 1.0]
    """
    t = _thresholds(threshold, len(X))
    counts = _mean_and_votes(estimator, X, t)[1]
    n_trees = len(estimator_parts(estimator).final.estimators_)
    return votes_to_probability(counts[0], n_trees, t[0])


def predict_distribution(
    estimator: Any, X: Any, *, interval: Any = None, thresholds: Any = None
) -> Distribution:
    """The prediction of ``estimator`` and what its predictive distribution gives.

    One traversal of a forest per chunk of rows gives the mean, the interval bounds of
    its quantile regression forest (``interval``) and the exceedance votes
    (``thresholds``). Other models: ``estimator.predict`` or the interval model's
    ``predict_interval``.

    Parameters
    ----------
    estimator : fitted estimator
        The model (e.g. the pipeline, possibly accelerated by
        :func:`geohm.models.compiled.accelerate`).
    X : array-like of shape (n, n_features)
        Rows in the estimator's input columns (a window's valid pixels, float32).
    interval : IntervalModel or None
        Fitted around ``estimator`` (the same fitted model): the interval bounds. Any
        object with ``predict_interval(X) -> (prediction, lower, upper)`` also works.
    thresholds : float or array-like of shape (n,) or (k, n), optional
        Values (target units, e.g. the screening value of each pixel) whose exceedance
        probabilities are wanted; NaN gives a NaN probability. Needs a tree ensemble
        (:func:`has_members`: the share of trees above) or an ``interval`` (a split
        normal fitted to it: :func:`interval_exceedance`).

    Returns
    -------
    Distribution
        prediction (n,), interval bounds (with ``interval``), exceedance (with
        ``thresholds``: (n,) for a scalar or (n,) threshold, else (k, n)).

    Raises
    ------
    TypeError
        ``thresholds`` for a model without ensemble members.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> X = np.arange(20.0)[:, None]
    >>> rf = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, X[:, 0])
    >>> d = predict_distribution(rf, np.array([[0.0], [19.0]]), thresholds=10.0)
    >>> d.exceedance.tolist(), bool(np.array_equal(d.prediction, rf.predict([[0.0], [19.0]])))
    ([0.0, 1.0], True)
    """
    n = int(np.shape(X)[0])
    t = None if thresholds is None else _thresholds(thresholds, n)
    one = thresholds is not None and np.ndim(thresholds) < 2
    lower = upper = counts = None
    n_trees = 0
    if interval is not None and t is None:
        pred, lower, upper = interval.predict_interval(X)
    elif interval is not None and _interval_votes(interval):  # a quantile forest
        pred, lower, upper, counts = interval.predict_distribution(X, t)
        n_trees = len(estimator_parts(interval.estimator).final.estimators_)
    elif t is not None and interval is not None and not has_members(estimator):
        pred, lower, upper = interval.predict_interval(X)
        cov = interval.coverage
        split = np.stack([interval_exceedance(pred, lower, upper, tk, cov) for tk in t])
        return Distribution(pred, lower, upper, split[0] if one else split)
    elif t is not None:
        if interval is not None:  # an interval of another kind: a second traversal
            _, lower, upper = interval.predict_interval(X)
        pred, counts = _mean_and_votes(estimator, X, t)
        n_trees = len(estimator_parts(estimator).final.estimators_)
    else:
        pred = np.asarray(estimator.predict(X), dtype="float64")
    exceedance = None
    if t is not None and counts is not None:
        exceedance = np.stack(
            [votes_to_probability(counts[k], n_trees, t[k]) for k in range(t.shape[0])]
        )
        if one:
            exceedance = exceedance[0]
    return Distribution(pred, lower, upper, exceedance)


def _interval_votes(interval: Any) -> bool:
    """Whether ``interval`` gives the exceedance votes from its own traversal."""
    return isinstance(interval, IntervalModel) and interval.method_ == "quantile-forest"

"""Predictive distributions from ensembles: P(concentration > threshold) per pixel.

A random forest's trees give one prediction each; the share of trees above a threshold
estimates the exceedance probability. Trees are visited one at a time and only a count
is kept, so memory stays at one prediction vector whatever the number of trees. This
spread reflects model (bootstrap) variability, not the full predictive uncertainty (a
quantile forest or kriging variance is wider): it ranks pixels well but its
probabilities tend to be over-confident; report.json says which estimate was used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.pipeline import Pipeline

__all__ = ["exceedance_probability", "has_members"]


def _unwrap(estimator: Any, X: np.ndarray) -> tuple[Any, np.ndarray, Callable[[np.ndarray], Any]]:
    """(final regressor, its input table, inverse target transform) of a fitted pipeline."""
    inverse: Callable[[np.ndarray], Any] = lambda v: v  # noqa: E731
    Xt: Any = X
    if isinstance(estimator, Pipeline):
        if len(estimator.steps) > 1:
            Xt = estimator[:-1].transform(X)
        estimator = estimator.steps[-1][1]
    if isinstance(estimator, TransformedTargetRegressor):
        reg = estimator
        # geohm's log target uses func/inverse_func (log1p/expm1); a transformer object
        # is inverted through its own inverse_transform.
        if reg.inverse_func is not None:
            inverse = reg.inverse_func
        else:
            inverse = lambda v: reg.transformer_.inverse_transform(v[:, None])[:, 0]  # noqa: E731
        estimator = reg.regressor_
    return estimator, np.asarray(Xt, dtype="float32"), inverse


def _members(estimator: Any) -> list[Any] | None:
    members = getattr(estimator, "estimators_", None)
    if members is None or not hasattr(members[0], "tree_"):
        return None
    return list(members)


def has_members(estimator: Any) -> bool:
    """Whether :func:`exceedance_probability` can use this fitted estimator."""
    final = estimator.steps[-1][1] if isinstance(estimator, Pipeline) else estimator
    if isinstance(final, TransformedTargetRegressor):
        final = final.regressor_
    return _members(final) is not None


def _iter_members(estimator: Any, X: np.ndarray) -> Iterator[np.ndarray]:
    final, Xt, inverse = _unwrap(estimator, X)
    members = _members(final)
    if members is None:
        raise TypeError(f"{type(final).__name__} has no ensemble members (trees)")
    for tree in members:
        yield np.asarray(inverse(tree.predict(Xt)), dtype="float64")


def exceedance_probability(estimator: Any, X: np.ndarray, threshold: Any) -> np.ndarray:
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
        (n,) float32 probabilities in [0, 1].

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> X = np.arange(20.0)[:, None]
    >>> rf = RandomForestRegressor(n_estimators=10, random_state=0).fit(X, X[:, 0])
    >>> exceedance_probability(rf, np.array([[0.0], [19.0]]), 10.0).tolist()
    [0.0, 1.0]
    """
    t = np.broadcast_to(np.asarray(threshold, dtype="float64"), (len(X),))
    count = np.zeros(len(X), dtype="int32")
    n = 0
    for pred in _iter_members(estimator, X):
        count += pred > t
        n += 1
    out = count.astype("float32") / max(n, 1)
    out[~np.isfinite(t)] = np.nan
    return out

"""Predictive distributions from ensembles: P(concentration > threshold) per pixel.

A random forest's trees give one prediction each; the share of trees above a threshold
estimates the exceedance probability. Trees are visited one at a time and only a count
is kept, so memory stays at one prediction vector whatever the number of trees. With
geohm's compiled forest the leaves of all trees come from one traversal of its kernel,
for chunks of rows (their leaf ids: rows x trees int32), and the kernel counts the votes. This
spread reflects model (bootstrap) variability, not the full predictive uncertainty (a
quantile forest or kriging variance is wider): it ranks pixels well but its
probabilities tend to be over-confident; report.json says which estimate was used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from geohm.models.compiled import tree_votes
from geohm.models.uncertainty import EstimatorParts, estimator_parts

__all__ = ["exceedance_probability", "has_members"]

#: Rows per chunk of the compiled path: the (rows, trees) int32 leaf ids of one chunk
#: take 13 MB for 200 trees (per window thread).
_CHUNK_ROWS = 16_384


def _members(estimator: Any) -> list[Any] | None:
    members = getattr(estimator, "estimators_", None)
    if members is None or not hasattr(members[0], "tree_"):
        return None
    return list(members)


def has_members(estimator: Any) -> bool:
    """Whether :func:`exceedance_probability` can use this fitted estimator."""
    return _members(estimator_parts(estimator).final) is not None


def _parts(estimator: Any, X: np.ndarray) -> tuple[EstimatorParts, list[Any], np.ndarray]:
    """(parts, trees, float32 table the trees see) of a fitted tree ensemble."""
    parts = estimator_parts(estimator)
    members = _members(parts.final)
    if members is None:
        raise TypeError(f"{type(parts.final).__name__} has no ensemble members (trees)")
    return parts, members, np.asarray(parts.features(X), dtype="float32")


def _iter_members(
    parts: EstimatorParts, members: list[Any], Xt: np.ndarray
) -> Iterator[np.ndarray]:
    """Each tree's prediction in target units (scikit-learn's tree walk)."""
    for tree in members:
        yield parts.from_model(tree.predict(Xt))


def _count_compiled(
    parts: EstimatorParts, members: list[Any], Xt: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Trees above ``t`` per row, from the compiled forest's leaf ids (one traversal).

    A tree's prediction is the value of the leaf a row ends in, so the back-transformed
    leaf values are computed once per forest and the kernel counts, per row, the leaves
    above the threshold: the same numbers as back-transforming each tree's ``predict``
    (the target transforms are elementwise), without a Python-level walk of every tree.
    """
    final = parts.final
    values = np.concatenate([np.asarray(m.tree_.value, dtype="float64")[:, 0, 0] for m in members])
    leaf_values = parts.from_model(values)
    jobs = final.n_jobs if final.n_jobs is not None else final.forest_.n_jobs
    count = np.zeros(len(Xt), dtype="int32")
    for start in range(0, len(Xt), _CHUNK_ROWS):
        sl = slice(start, start + _CHUNK_ROWS)
        ids, _ = final.apply_mean(Xt[sl], global_ids=True)
        count[sl] = tree_votes(ids, leaf_values, t[sl], n_jobs=jobs)
    return count


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
    parts, members, Xt = _parts(estimator, X)
    if getattr(parts.final, "bit_vector", False) and np.isfinite(Xt).all():
        # geohm's compiled forest (geohm.models.compiled): leaf ids from its kernel
        count = _count_compiled(parts, members, Xt, t)
    else:
        count = np.zeros(len(X), dtype="int32")
        for pred in _iter_members(parts, members, Xt):
            count += pred > t
    out = count.astype("float32") / max(len(members), 1)
    out[~np.isfinite(t)] = np.nan
    return out

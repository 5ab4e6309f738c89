"""What drives a model: permutation importance on the spatial folds, partial dependence.

**Permutation importance** (Breiman 2001; Fisher et al. 2019) of a factor is how much the
error of a model grows when that factor's values are shuffled among the samples, which
breaks its link with the target while keeping its distribution. Here it is measured
where the map needs the model, away from its samples: for each spatial CV fold
(:mod:`geohm.spatialcv`) a fresh model is fitted on the other folds, its RMSE on the
held-out fold is the baseline, and each factor is shuffled within the held-out fold
``n_repeats`` times. The importance is the increase of the RMSE, in the target's units
(mg/kg): what scikit-learn's :func:`~sklearn.inspection.permutation_importance` gives
with ``scoring="neg_root_mean_squared_error"`` (the tests check the two agree), but all
shuffled copies of a fold are predicted in one call rather than one call per factor and
repeat: a 200-tree forest takes about as long for 3,000 rows as for 8, so a 15-factor,
5-fold, 5-repeat run is several times faster. Its mean and standard deviation are taken
over all folds x repeats (each fold counts the same). A factor the model ignores scores exactly 0;
a negative value (the shuffled factor fits the held-out fold better) means no importance
(:func:`aoa_weights` sets it to 0). Correlated factors share their importance: shuffling
one leaves the other to carry the signal, so both may look less important than they are.

**Partial dependence** (Friedman 2001) of a factor is the model's prediction averaged over
the samples when every sample's factor is set to one grid value: how the prediction moves
with that factor, the others held at their observed values
(what :func:`~sklearn.inspection.partial_dependence` gives with ``method="brute"``: any
fitted estimator or pipeline; here the copies are predicted in one call per factor).

Both see arrays (or the sample table) and an estimator; nothing here reads files or
draws: the report draws the bar plot and the curves from :meth:`ImportanceResult.to_report`
and :func:`partial_dependence_top`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from geohm.errors import SampleError

__all__ = [
    "MIN_HELD_OUT",
    "ImportanceResult",
    "aoa_weights",
    "partial_dependence_top",
    "permutation_importance_cv",
]

#: Fewest held-out rows of a fold whose permutation importance is measured: shuffling
#: one value changes nothing.
MIN_HELD_OUT = 2
#: Rows of the shuffled tables predicted in one call (the copies of a held-out fold).
_ROWS_PER_CALL = 100_000


@dataclass(frozen=True)
class ImportanceResult:
    """Permutation importance of each factor over the spatial CV folds.

    Attributes
    ----------
    factors : list of str
        Factor names, in the column order of the table.
    mean : numpy.ndarray of shape (n_factors,)
        Mean increase of the held-out RMSE when the factor is shuffled (target units,
        mg/kg), over every used fold and repeat.
    sd : numpy.ndarray of shape (n_factors,)
        Standard deviation (``ddof=0``, as scikit-learn's ``importances_std``) of the same
        values (mg/kg).
    values : numpy.ndarray of shape (n_folds, n_factors, n_repeats)
        Every RMSE increase (mg/kg): fold ``folds[i]``, factor, repeat.
    folds : list of int
        Ids of the folds used, in increasing order.
    n_test : list of int
        Held-out rows of each used fold.
    baseline_rmse : numpy.ndarray of shape (n_folds,)
        RMSE (mg/kg) of each used fold's model on its held-out rows, nothing shuffled.
    skipped : list of dict
        Folds left out: ``{"fold", "n_test", "reason"}``.
    n_repeats : int
        Shuffles of each factor in each fold.
    random_state : int
        Seed of the shuffles.
    n_unused : int
        Rows in no fold (negative fold id: e.g. hold-out test samples), neither fitted
        on nor held out.
    """

    factors: list[str]
    mean: np.ndarray
    sd: np.ndarray
    values: np.ndarray
    folds: list[int]
    n_test: list[int]
    baseline_rmse: np.ndarray
    skipped: list[dict[str, Any]] = field(default_factory=list)
    n_repeats: int = 5
    random_state: int = 0
    n_unused: int = 0

    @property
    def per_fold(self) -> np.ndarray:
        """Mean RMSE increase (mg/kg) of each used fold (rows) and factor (columns)."""
        return np.asarray(self.values.mean(axis=2))

    def ranked(self) -> list[tuple[str, float, float]]:
        """The factors from most to least important: ``(factor, mean, sd)`` in mg/kg.

        Ties keep the column order.

        Returns
        -------
        list of tuple of (str, float, float)
            Factor name, mean and standard deviation of its RMSE increase.
        """
        order = np.argsort(-self.mean, kind="stable")
        return [(self.factors[i], float(self.mean[i]), float(self.sd[i])) for i in order]

    def to_report(self) -> dict[str, Any]:
        """A JSON-able summary for report.json (the table and bar plot of report.md).

        Returns
        -------
        dict
            ``metric`` (what the numbers are), ``unit``, ``n_repeats``, ``random_state``,
            ``folds`` (``{"fold", "n_test", "baseline_rmse"}`` per used fold),
            ``skipped`` (folds left out and why), ``n_unused`` and ``factors``: one
            ``{"factor", "rank", "mean", "sd", "per_fold"}`` per factor, most important
            first (``per_fold``: the mean over repeats in each used fold, in ``folds``
            order).
        """
        index = {name: i for i, name in enumerate(self.factors)}
        per_fold = self.per_fold
        return {
            "metric": (
                "increase of the RMSE on the held-out spatial CV fold when the factor is "
                "shuffled within it (permutation importance)"
            ),
            "unit": "mg/kg",
            "n_repeats": int(self.n_repeats),
            "random_state": int(self.random_state),
            "folds": [
                {"fold": int(k), "n_test": int(n), "baseline_rmse": float(b)}
                for k, n, b in zip(self.folds, self.n_test, self.baseline_rmse, strict=True)
            ],
            "skipped": [dict(s) for s in self.skipped],
            "n_unused": int(self.n_unused),
            "factors": [
                {
                    "factor": name,
                    "rank": rank,
                    "mean": mean,
                    "sd": sd,
                    "per_fold": [float(v) for v in per_fold[:, index[name]]],
                }
                for rank, (name, mean, sd) in enumerate(self.ranked(), start=1)
            ],
        }


def _factor_names(X: Any, columns: Sequence[str] | None) -> list[str]:
    """The factor names of ``X``: a DataFrame's columns, else ``columns`` or ``x0 ...``."""
    if isinstance(X, pd.DataFrame):
        names = [str(c) for c in X.columns]
        if columns is not None and list(columns) != names:
            raise ValueError(
                f"columns {list(columns)} differ from the DataFrame's columns {names}; "
                "leave columns out for a DataFrame"
            )
        return names
    n = np.shape(X)[1]
    if columns is None:
        return [f"x{i}" for i in range(n)]
    if len(columns) != n:
        raise ValueError(f"{len(columns)} column names for a table of {n} columns")
    return [str(c) for c in columns]


def _rows(X: Any, idx: np.ndarray) -> Any:
    """Rows ``idx`` of a DataFrame (names kept) or an array."""
    return X.iloc[idx] if isinstance(X, pd.DataFrame) else np.asarray(X)[idx]


def _rmse(pred: Any, y: np.ndarray) -> np.ndarray:
    """RMSE of each row of ``pred`` (shape ``(m, n)``) against ``y`` (shape ``(n,)``)."""
    err = np.asarray(pred, dtype=float).reshape(-1, y.size) - y
    return np.asarray(np.sqrt(np.mean(err**2, axis=1)))


def _fold_importance(
    estimator: Any, X: Any, y: np.ndarray, perms: np.ndarray
) -> tuple[float, np.ndarray]:
    """Baseline RMSE of a fitted model on ``X`` and the increase for each shuffle.

    ``perms[j, r]`` is the order of factor ``j``'s values in repeat ``r``. The shuffled
    copies of ``X`` are stacked into tables of at most about :data:`_ROWS_PER_CALL` rows
    and predicted in one call each: a forest answers 3,000 rows about as fast as 8.

    Returns
    -------
    tuple of (float, numpy.ndarray)
        Baseline RMSE and the RMSE increase, shape ``(n_factors, n_repeats)`` (units of y).
    """
    n_factors, n_repeats, n = perms.shape
    base = float(_rmse(estimator.predict(X), y)[0])
    out = np.empty((n_factors, n_repeats))
    step = max(1, _ROWS_PER_CALL // (n_repeats * n))
    frame = isinstance(X, pd.DataFrame)
    values = np.empty((0, 0)) if frame else np.asarray(X)
    for start in range(0, n_factors, step):
        cols = range(start, min(start + step, n_factors))
        blocks = len(cols) * n_repeats
        tiled = np.tile(np.arange(n), blocks)  # row of X in every row of the big table
        big = X.iloc[tiled].reset_index(drop=True) if frame else values[tiled]
        for a, j in enumerate(cols):
            rows = tiled.copy()
            at = slice(a * n_repeats * n, (a + 1) * n_repeats * n)
            rows[at] = perms[j].reshape(-1)  # factor j shuffled in its own blocks only
            if frame:
                name = X.columns[j]
                big[name] = X[name].take(rows).reset_index(drop=True)
            else:
                big[:, j] = values[rows, j]
        rmse = _rmse(estimator.predict(big), y).reshape(len(cols), n_repeats)
        out[start : start + len(cols)] = rmse - base
    return base, out


def permutation_importance_cv(
    make_estimator: Callable[[], Any] | Any,
    X: Any,
    y: Any,
    folds: Any,
    *,
    n_repeats: int = 5,
    random_state: int = 0,
    columns: Sequence[str] | None = None,
    fitted: Mapping[int, Any] | None = None,
) -> ImportanceResult:
    """Permutation importance of each factor on the spatial CV folds (RMSE increase, mg/kg).

    For every fold id in ``folds`` (negative ids excepted): fit a fresh estimator on the
    rows of the other folds and take its RMSE on the held-out rows; then shuffle each
    factor among the held-out rows ``n_repeats`` times (permutations drawn by
    ``numpy.random.default_rng([random_state, fold]).permutation(n_test)``, factor by
    factor in column order, repeat by repeat) and take the RMSE increase each
    time: scikit-learn's :func:`~sklearn.inspection.permutation_importance` with
    ``scoring="neg_root_mean_squared_error"``, computed with one prediction call per fold
    (see the module docstring).

    Parameters
    ----------
    make_estimator : callable or estimator
        A function returning a fresh unfitted estimator (a geohm pipeline:
        ``lambda: model_pipeline(...)``), or an estimator, cloned for every fold.
    X : pandas.DataFrame or array-like of shape (n_samples, n_factors)
        The factors of each sample. A DataFrame keeps its column names (geohm pipelines
        select factors by name).
    y : array-like of shape (n_samples,)
        Target (mg/kg).
    folds : array-like of int, shape (n_samples,)
        Fold id of each row (:func:`geohm.fitting.spatial_folds`); a negative id puts the
        row in no fold (as :class:`geohm.autoselect.RowFolds`): neither fitted on nor
        held out.
    n_repeats : int, default=5
        Shuffles of each factor in each fold.
    random_state : int, default=0
        Seed of the shuffles: the same seed gives the same result (with a seeded
        estimator).
    columns : sequence of str, optional
        Factor names of an array ``X`` (default ``x0, x1, ...``); a DataFrame's own
        columns are used.
    fitted : mapping of int to estimator, optional
        Fold id -> the model already fitted on the other folds (the cross-validation's
        own fold models): used as it is, not refitted.

    Returns
    -------
    ImportanceResult
        Mean and sd of the RMSE increase per factor, every fold's values and the folds
        left out: those holding fewer than :data:`MIN_HELD_OUT` rows, or leaving no
        training rows.

    Raises
    ------
    ValueError
        ``folds`` or ``y`` not one per row, ``n_repeats`` < 1, wrong ``columns``.
    SampleError
        No fold could be used (every fold listed with its reason).

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (60, 2))
    >>> y = 2.0 * X[:, 0]
    >>> res = permutation_importance_cv(
    ...     LinearRegression, X, y, np.arange(60) % 3, columns=["a", "b"]
    ... )
    >>> [name for name, _, _ in res.ranked()], bool(abs(res.mean[1]) < 1e-9)
    (['a', 'b'], True)
    """
    if isinstance(n_repeats, bool) or not isinstance(n_repeats, int) or n_repeats < 1:
        raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
    factors = _factor_names(X, columns)
    y_arr = np.asarray(y, dtype=float).reshape(-1)
    fold = np.asarray(folds).reshape(-1)
    n = len(X)
    if y_arr.size != n or fold.size != n:
        raise ValueError(
            f"X has {n} rows but y has {y_arr.size} and folds {fold.size}: give one of each per row"
        )
    if fold.dtype.kind not in "iu":
        raise ValueError(f"folds must be integer fold ids, got dtype {fold.dtype}")
    fold = fold.astype(np.int64)
    used = fold >= 0
    instance = hasattr(make_estimator, "fit") and not isinstance(make_estimator, type)
    factory = None if instance else make_estimator

    values: list[np.ndarray] = []
    kept: list[int] = []
    n_test: list[int] = []
    baseline: list[float] = []
    skipped: list[dict[str, Any]] = []
    for k in np.unique(fold[used]).tolist():
        test = np.flatnonzero(fold == k)
        train = np.flatnonzero(used & (fold != k))
        if test.size < MIN_HELD_OUT:
            skipped.append(
                {
                    "fold": int(k),
                    "n_test": int(test.size),
                    "reason": f"fewer than {MIN_HELD_OUT} held-out rows: shuffling changes nothing",
                }
            )
            continue
        if train.size == 0:
            skipped.append(
                {"fold": int(k), "n_test": int(test.size), "reason": "no other fold to fit on"}
            )
            continue
        if fitted is not None and int(k) in fitted:  # the CV's own fold model: no refit
            est = fitted[int(k)]
        else:
            est = factory() if factory is not None else clone(make_estimator)
            est.fit(_rows(X, train), y_arr[train])
        rng = np.random.default_rng([random_state, int(k)])
        perms = np.stack([[rng.permutation(test.size) for _ in range(n_repeats)] for _ in factors])
        base, increase = _fold_importance(est, _rows(X, test), y_arr[test], perms)
        values.append(increase)
        baseline.append(base)
        kept.append(int(k))
        n_test.append(int(test.size))
    if not kept:
        why = "; ".join(f"fold {s['fold']}: {s['reason']}" for s in skipped) or "no fold ids"
        raise SampleError(
            f"permutation importance: no usable fold among {len(skipped)} ({why}); use fewer "
            "or larger folds (validation.cv_folds, validation.block_size)"
        )
    stack = np.stack(values)  # (fold, factor, repeat)
    pooled = stack.transpose(1, 0, 2).reshape(len(factors), -1)
    return ImportanceResult(
        factors=factors,
        mean=pooled.mean(axis=1),
        sd=pooled.std(axis=1),
        values=stack,
        folds=kept,
        n_test=n_test,
        baseline_rmse=np.asarray(baseline),
        skipped=skipped,
        n_repeats=n_repeats,
        random_state=random_state,
        n_unused=int(np.count_nonzero(~used)),
    )


def aoa_weights(result: ImportanceResult) -> np.ndarray:
    """Factor weights of the area of applicability: the mean importances, negatives -> 0.

    Meyer & Pebesma (2021) weight each standardised predictor by the model's importance
    before measuring distances; a factor whose shuffling does not raise the error gets
    weight 0.

    Parameters
    ----------
    result : ImportanceResult
        Permutation importance of the model (:func:`permutation_importance_cv`).

    Returns
    -------
    numpy.ndarray of shape (n_factors,)
        ``max(mean, 0)`` per factor (mg/kg), in the order of ``result.factors``.

    Examples
    --------
    >>> r = ImportanceResult(
    ...     ["a", "b"], np.array([2.0, -0.5]), np.zeros(2), np.zeros((1, 2, 1)), [0], [5],
    ...     np.zeros(1),
    ... )
    >>> aoa_weights(r).tolist()
    [2.0, 0.0]
    """
    return np.maximum(np.asarray(result.mean, dtype=float), 0.0)


def _grid(values: np.ndarray, grid_resolution: int, percentiles: tuple[float, float]) -> np.ndarray:
    """Grid of a numeric factor (NaN left out).

    Its distinct values when at most ``grid_resolution``, else evenly spaced between the
    percentiles (between its extremes when those coincide).
    """
    finite = values[np.isfinite(values)]
    uniq = np.unique(finite)
    if uniq.size <= grid_resolution:
        return uniq
    lo, hi = np.percentile(finite, [100 * percentiles[0], 100 * percentiles[1]])
    if hi <= lo:
        lo, hi = uniq[0], uniq[-1]
    return np.linspace(lo, hi, grid_resolution)


def _average_prediction(estimator: Any, X: Any, feature: str | int, grid: np.ndarray) -> np.ndarray:
    """Mean prediction over the rows of ``X`` with ``feature`` set to each grid value.

    :func:`sklearn.inspection.partial_dependence` (``method="brute"``, ``kind="average"``,
    ``custom_values``) predicts once per grid value; here the copies of ``X`` are stacked
    and predicted in calls of about :data:`_ROWS_PER_CALL` rows (the tests check the two
    agree).
    """
    frame = isinstance(X, pd.DataFrame)
    values = np.empty((0, 0)) if frame else np.asarray(X, dtype=float)
    n = len(X)
    step = max(1, _ROWS_PER_CALL // max(n, 1))
    out = []
    for start in range(0, grid.size, step):
        part = grid[start : start + step]
        tiled = np.tile(np.arange(n), part.size)
        if frame:
            big = X.iloc[tiled].reset_index(drop=True)
            big[feature] = np.repeat(part.astype(float), n)  # an integer column turns float
        else:
            big = values[tiled]
            big[:, int(feature)] = np.repeat(part, n)
        pred = np.asarray(estimator.predict(big), dtype=float).reshape(part.size, n)
        out.append(pred.mean(axis=1))
    return np.concatenate(out)


def partial_dependence_top(
    estimator_fitted: Any,
    X: Any,
    result: ImportanceResult,
    *,
    top: int = 4,
    grid_resolution: int = 20,
    percentiles: tuple[float, float] = (0.05, 0.95),
    categorical: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Partial dependence of the ``top`` most important numeric factors.

    The factors are taken in :meth:`ImportanceResult.ranked` order; categorical ones
    (named in ``categorical`` or of a non-numeric dtype) and constant ones (fewer than two
    distinct finite values) are skipped and named, and the next factor is taken, until
    ``top`` curves are computed or the factors run out.

    Parameters
    ----------
    estimator_fitted : estimator
        The fitted model (a geohm pipeline), predicting mg/kg.
    X : pandas.DataFrame or array-like of shape (n_samples, n_factors)
        The samples to average over (the training samples), with the factors of
        ``result`` (a DataFrame by name, an array in ``result.factors`` order).
    result : ImportanceResult
        Importance of the model's factors (:func:`permutation_importance_cv`).
    top : int, default=4
        Curves to compute.
    grid_resolution : int, default=20
        Grid points per factor; a factor with fewer distinct values uses those values.
    percentiles : tuple of float, default=(0.05, 0.95)
        Ends of the grid as quantiles of the factor's finite values.
    categorical : sequence of str, default=()
        Class-code factors (rock type, soil unit): not drawn as curves.

    Returns
    -------
    list of dict
        In importance order. A curve: ``{"factor", "rank", "importance", "grid",
        "average"}`` (``grid``: factor values; ``average``: mean prediction, mg/kg, at
        each). A skipped factor: ``{"factor", "rank", "importance", "skipped"}`` (the
        reason).

    Raises
    ------
    ValueError
        ``X`` lacks a factor of ``result``, or ``top`` / ``grid_resolution`` < 1.

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (60, 2))
    >>> y = 2.0 * X[:, 0] + 1.0
    >>> res = permutation_importance_cv(LinearRegression, X, y, np.arange(60) % 3)
    >>> pd_ = partial_dependence_top(LinearRegression().fit(X, y), X, res, top=1)
    >>> pd_[0]["factor"], round(float(np.polyfit(pd_[0]["grid"], pd_[0]["average"], 1)[0]), 6)
    ('x0', 2.0)
    """
    if top < 1 or grid_resolution < 1:
        raise ValueError(f"top and grid_resolution must be >= 1, got {top} and {grid_resolution}")
    frame = isinstance(X, pd.DataFrame)
    if frame:
        missing = [f for f in result.factors if f not in X.columns]
        if missing:
            raise ValueError(f"X lacks the factors {missing} of the importance result")
    elif np.shape(X)[1] != len(result.factors):
        raise ValueError(
            f"X has {np.shape(X)[1]} columns but the importance result {len(result.factors)} "
            "factors"
        )
    index = {name: i for i, name in enumerate(result.factors)}
    out: list[dict[str, Any]] = []
    drawn = 0
    for rank, (name, mean, _) in enumerate(result.ranked(), start=1):
        if drawn >= top:
            break
        head = {"factor": name, "rank": rank, "importance": mean}
        col = X[name] if frame else np.asarray(X)[:, index[name]]
        kind = col.dtype.kind
        if name in categorical or kind not in "iuf":
            out.append({**head, "skipped": "categorical factor: no curve"})
            continue
        values = np.asarray(col, dtype=float)
        if np.unique(values[np.isfinite(values)]).size < 2:
            out.append({**head, "skipped": "constant factor (fewer than 2 distinct values)"})
            continue
        grid = _grid(values, grid_resolution, percentiles)
        average = _average_prediction(estimator_fitted, X, name if frame else index[name], grid)
        out.append(
            {**head, "grid": [float(v) for v in grid], "average": [float(v) for v in average]}
        )
        drawn += 1
    return out

"""Accuracy metrics and validation schemes (hold-out split, k-fold cross-validation).

Also the calibration of prediction intervals: the share of held-out samples inside
their interval, with intervals built without those samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, train_test_split

__all__ = [
    "skill_summary",
    "trust_warning",
    "cross_validate",
    "cross_validate_interval",
    "group_kfold",
    "group_order",
    "holdout_split",
    "interval_coverage",
    "interval_metrics",
    "metrics",
    "mre",
    "null_skill",
    "with_null",
]


def mre(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean relative error, mean(|y_pred - y_true| / |y_true|) (dimensionless).

    Samples with ``y_true == 0`` are left out (the ratio is undefined).

    Examples
    --------
    >>> mre(np.array([10.0, 20.0]), np.array([12.0, 15.0]))
    0.225
    """
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ok = t != 0
    return float(np.mean(np.abs(p[ok] - t[ok]) / np.abs(t[ok])))


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE and MAE (units of y, mg/kg), R2 (coefficient of determination), MRE, n.

    Examples
    --------
    >>> m = metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    >>> round(m["rmse"], 4), m["mae"], m["r2"], m["n"]
    (0.5774, 0.3333333333333333, 0.5, 3)
    """
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1.0 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
        "mre": mre(t, p),
        "n": int(t.size),
    }


def null_skill(rmse: float, rmse_null: float) -> float:
    """Skill against the flat map: ``1 - RMSE / RMSE_null``.

    ``RMSE_null`` is the error of predicting the training mean everywhere (a flat map).
    1 is a perfect map, 0 no better than the flat map, below 0 worse than it.

    Examples
    --------
    >>> null_skill(5.0, 10.0)
    0.5
    """
    return float(1.0 - rmse / rmse_null) if rmse_null > 0 else float("nan")


def with_null(m: dict[str, Any], y_true: np.ndarray, y_null: np.ndarray | float) -> dict[str, Any]:
    """``m`` plus ``rmse_null`` (RMSE of the flat-map prediction ``y_null``) and ``skill``."""
    t = np.asarray(y_true, dtype=float)
    err = np.broadcast_to(np.asarray(y_null, dtype=float), t.shape) - t
    rmse_null = float(np.sqrt(np.mean(err**2))) if t.size else float("nan")
    return {**m, "rmse_null": rmse_null, "skill": null_skill(m["rmse"], rmse_null)}


def group_order(groups: Any, n: int) -> np.ndarray:
    """The distinct groups in order of first appearance (``arange(n)`` without groups)."""
    if groups is None:
        return np.arange(n)
    g = np.asarray(groups)
    uniq, first = np.unique(g, return_index=True)
    return np.asarray(uniq[np.argsort(first)])


def holdout_split(
    n: int, *, test_fraction: float, seed: int, groups: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/test indices; ``test_fraction == 0`` gives an empty test set.

    With ``groups`` (one label per sample, e.g. the pixel of each sample), whole groups
    go to the test set, ``test_fraction`` of the groups: replicates at one location never
    sit on both sides. With one sample per group the split is the same as without groups.
    """
    idx = np.arange(n)
    order = group_order(groups, n)
    if test_fraction <= 0 or order.size < 2:
        return idx, idx[:0]
    _, gtest = train_test_split(order, test_size=test_fraction, random_state=seed, shuffle=True)
    labels = idx if groups is None else np.asarray(groups)
    test = np.isin(labels, gtest)
    return idx[~test], idx[test]


def group_kfold(n: int, *, folds: int, seed: int, groups: Any = None) -> list[tuple[Any, Any]]:
    """Seeded shuffled k-fold (train, test) index pairs that never split a group.

    The groups are dealt to folds as :class:`~sklearn.model_selection.KFold` deals
    samples, so with one sample per group the folds equal ``KFold``'s.
    """
    order = group_order(groups, n)
    labels = np.arange(n) if groups is None else np.asarray(groups)
    kf = KFold(n_splits=folds, shuffle=True, random_state=seed)
    out = []
    for _, gte in kf.split(order):
        test = np.isin(labels, order[gte])
        out.append((np.flatnonzero(~test), np.flatnonzero(test)))
    return out


def cross_validate(
    estimator: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
    splits: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    groups: Any = None,
    keep_models: bool = False,
) -> dict[str, Any]:
    """Seeded k-fold CV: metrics of the pooled out-of-fold predictions, plus per-fold RMSE.

    ``splits`` (train, test index pairs, e.g. spatial blocks) replaces the random folds;
    ``groups`` (a label per sample) keeps each group in one fold (:func:`group_kfold`).
    ``folds`` is capped at the number of groups.

    Returns
    -------
    dict
        ``{"folds", "rmse", "mae", "r2", "mre", "n", "rmse_null", "skill",
        "fold_rmse": [...], "predictions": ndarray}``; ``rmse_null`` is the error of each
        fold's training mean (the flat map), ``skill`` is ``1 - rmse / rmse_null``;
        ``predictions`` is the out-of-fold prediction of every sample (drop it before
        serialising); with ``keep_models``, ``models`` holds each fold's fitted model (in
        ``splits`` order; drop it too).
    """
    y = np.asarray(y, dtype=float)
    if splits is None:
        folds = min(folds, group_order(groups, len(y)).size)
        splits = group_kfold(len(y), folds=folds, seed=seed, groups=groups)
    folds = len(splits)

    def rows(idx: np.ndarray) -> Any:
        # DataFrames keep their factor names (selectors may force factors by name).
        return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]

    oof = np.empty_like(y)
    null = np.empty_like(y)  # the flat map of each fold: its training mean
    fold_rmse = []
    models = []
    for train, test in splits:
        model = clone(estimator).fit(rows(train), y[train])
        if keep_models:
            models.append(model)
        oof[test] = model.predict(rows(test))
        null[test] = y[train].mean()
        fold_rmse.append(float(np.sqrt(np.mean((oof[test] - y[test]) ** 2))))
    out: dict[str, Any] = {
        "folds": folds,
        **with_null(metrics(y, oof), y, null),
        "fold_rmse": fold_rmse,
    }
    out["predictions"] = oof
    if keep_models:
        out["models"] = models
    return out


def interval_coverage(y_true: Any, lower: Any, upper: Any) -> float:
    """Share of observed values inside their interval, ``lower <= y <= upper``.

    Rows where any of the three is NaN are left out.

    Parameters
    ----------
    y_true, lower, upper : array-like of shape (n,)
        Observations and interval bounds, in the same units (mg/kg).

    Returns
    -------
    float
        Coverage in [0, 1]; NaN when no row is usable.

    Examples
    --------
    >>> interval_coverage([1.0, 5.0, 9.0, 3.0], [0.0, 0.0, 0.0, 3.0], [2.0, 4.0, 10.0, 3.0])
    0.75
    """
    t, lo, hi = (np.asarray(a, dtype=float).reshape(-1) for a in (y_true, lower, upper))
    ok = ~(np.isnan(t) | np.isnan(lo) | np.isnan(hi))
    if not ok.any():
        return float("nan")
    return float(np.mean((t[ok] >= lo[ok]) & (t[ok] <= hi[ok])))


def interval_metrics(y_true: Any, lower: Any, upper: Any, *, coverage: float) -> dict[str, Any]:
    """Calibration and sharpness of prediction intervals of nominal ``coverage``.

    Returns
    -------
    dict
        ``coverage`` (share of ``y`` inside, see :func:`interval_coverage`), ``nominal``
        (``coverage`` asked for), ``mean_width`` and ``median_width`` (``upper - lower``,
        units of y), ``interval_score`` (mean interval score of Gneiting & Raftery 2007,
        eq. 43: ``width + (2/alpha) * distance outside``, alpha = 1 - nominal; lower is
        better, units of y) and ``n``.

    Examples
    --------
    >>> m = interval_metrics([1.0, 5.0], [0.0, 0.0], [2.0, 4.0], coverage=0.5)
    >>> m["coverage"], m["mean_width"], m["interval_score"]
    (0.5, 3.0, 5.0)
    """
    t, lo, hi = (np.asarray(a, dtype=float).reshape(-1) for a in (y_true, lower, upper))
    ok = ~(np.isnan(t) | np.isnan(lo) | np.isnan(hi))
    t, lo, hi = t[ok], lo[ok], hi[ok]
    alpha = 1.0 - float(coverage)
    width = hi - lo
    score = width + (2.0 / alpha) * (np.maximum(lo - t, 0.0) + np.maximum(t - hi, 0.0))
    empty = t.size == 0
    return {
        "coverage": interval_coverage(t, lo, hi),
        "nominal": float(coverage),
        "mean_width": float("nan") if empty else float(np.mean(width)),
        "median_width": float("nan") if empty else float(np.median(width)),
        "interval_score": float("nan") if empty else float(np.mean(score)),
        "n": int(t.size),
    }


def cross_validate_interval(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    coverage: float = 0.9,
    folds: int = 5,
    seed: int = 0,
    splits: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    method: str = "auto",
    calibrate: bool | None = None,
    inner_folds: int | None = None,
) -> dict[str, Any]:
    """Honest interval calibration by nested cross-validation.

    For each outer fold, ``estimator`` is refitted on the training part. Its
    :class:`~geohm.models.uncertainty.IntervalModel` is built from that part alone,
    with its own inner folds for the conformal calibration. The held-out part is then
    scored. The held-out samples therefore never inform the intervals that cover them.
    With a hold-out test split, the simpler honest check is
    ``interval_metrics(y_test, *interval_model(est, X_train, y_train).interval(X_test))``.

    Parameters
    ----------
    estimator : estimator
        The (unfitted or fitted) model; cloned for every outer fold.
    X : array-like or DataFrame of shape (n_samples, n_features)
        Factors.
    y : array-like of shape (n_samples,)
        Targets (mg/kg).
    coverage : float, default=0.9
        Nominal coverage of the intervals.
    folds : int, default=5
        Outer folds (seeded, shuffled :class:`~sklearn.model_selection.KFold`).
    seed : int, default=0
        Seed of the outer and inner folds.
    splits : sequence of (train, test) index arrays, optional
        Outer folds to use instead (e.g. spatial blocks).
    method : {"auto", "quantile-forest", "kriging", "residual"}, default="auto"
        Interval method (see :class:`~geohm.models.uncertainty.IntervalModel`).
    calibrate : bool or None, default=None
        Conformal calibration (None: the method's default).
    inner_folds : int, optional
        Folds of the inner calibration; ``folds`` by default.

    Returns
    -------
    dict
        :func:`interval_metrics` of the pooled held-out intervals, plus ``folds``,
        ``fold_coverage`` (list), ``method`` and the arrays ``lower`` and ``upper``
        (held-out bounds of every sample; drop them before serialising).
    """
    from geohm.models.uncertainty import IntervalModel

    y = np.asarray(y, dtype=float)
    n_folds = len(splits) if splits is not None else min(folds, len(y))

    def rows(idx: np.ndarray) -> Any:
        return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]

    kf = KFold(n_splits=n_folds, shuffle=True, random_state=seed)
    lower = np.full(len(y), np.nan)
    upper = np.full(len(y), np.nan)
    fold_coverage = []
    method_used = method
    for train, test in splits if splits is not None else kf.split(np.zeros((len(y), 1))):
        model = clone(estimator).fit(rows(train), y[train])
        im = IntervalModel(
            model,
            coverage=coverage,
            method=method,  # type: ignore[arg-type]
            calibrate=calibrate,
            cv=inner_folds or folds,
            random_state=seed,
        ).fit(rows(train), y[train])
        lower[test], upper[test] = im.interval(rows(test))
        fold_coverage.append(interval_coverage(y[test], lower[test], upper[test]))
        method_used = im.method_
    out: dict[str, Any] = interval_metrics(y, lower, upper, coverage=coverage)
    out.update(folds=n_folds, fold_coverage=fold_coverage, method=method_used)
    out["lower"], out["upper"] = lower, upper
    return out


def skill_summary(rep: dict[str, Any]) -> dict[str, Any] | None:
    """The most honest skill against the flat map: spatial CV, else random CV, else test."""
    for name in ("cv_spatial", "cv", "test"):
        m = rep.get(name)
        if m and np.isfinite(m.get("skill", np.nan)):
            return {
                "set": name,
                "skill": m["skill"],
                "rmse": m["rmse"],
                "rmse_null": m["rmse_null"],
            }
    return None


def trust_warning(target: str, rep: dict[str, Any]) -> str | None:
    """A line for the user when the map is no better than a flat one or its intervals miss."""
    parts = []
    s = rep.get("skill")
    if s is not None and s["skill"] <= 0:
        parts.append(
            f"the map is not better than a flat map: {s['set']} skill {s['skill']:.2f} "
            f"(RMSE {s['rmse']:.3g} vs {s['rmse_null']:.3g} mg/kg for the training mean "
            "everywhere); try more samples, other covariates or another model"
        )
    test_cov = (rep.get("uncertainty") or {}).get("test") or {}
    cov, nominal = test_cov.get("coverage"), test_cov.get("nominal")
    if cov is not None and nominal is not None and np.isfinite(cov):
        if abs(cov - nominal) > 0.10:
            parts.append(
                f"the {nominal:.0%} prediction intervals hold {cov:.0%} of the test samples: "
                "the uncertainty map is off; more samples calibrate it better"
            )
    return f"{target}: " + "; ".join(parts) if parts else None

"""Accuracy metrics and validation schemes (hold-out split, k-fold cross-validation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold, train_test_split

__all__ = ["cross_validate", "holdout_split", "metrics", "mre"]


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


def holdout_split(n: int, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random train/test indices; ``test_fraction == 0`` gives an empty test set."""
    idx = np.arange(n)
    if test_fraction <= 0:
        return idx, idx[:0]
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed, shuffle=True)
    return np.sort(train), np.sort(test)


def cross_validate(
    estimator: Any,
    X: np.ndarray,
    y: np.ndarray,
    *,
    folds: int,
    seed: int,
    splits: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Seeded k-fold CV: metrics of the pooled out-of-fold predictions, plus per-fold RMSE.

    ``splits`` (train, test index pairs, e.g. spatial blocks) replaces the random folds.

    Returns
    -------
    dict
        ``{"folds", "rmse", "mae", "r2", "mre", "n", "fold_rmse": [...],
        "predictions": ndarray}`` (``predictions`` is the out-of-fold prediction of
        every sample; drop it before serialising).
    """
    y = np.asarray(y, dtype=float)
    folds = len(splits) if splits is not None else min(folds, len(y))

    def rows(idx: np.ndarray) -> Any:
        # DataFrames keep their factor names (selectors may force factors by name).
        return X.iloc[idx] if hasattr(X, "iloc") else np.asarray(X)[idx]

    kf = KFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = np.empty_like(y)
    fold_rmse = []
    for train, test in splits if splits is not None else kf.split(np.zeros((len(y), 1))):
        model = clone(estimator).fit(rows(train), y[train])
        oof[test] = model.predict(rows(test))
        fold_rmse.append(float(np.sqrt(np.mean((oof[test] - y[test]) ** 2))))
    out: dict[str, Any] = {"folds": folds, **metrics(y, oof), "fold_rmse": fold_rmse}
    out["predictions"] = oof
    return out

"""How a fitted target is checked: hold-out scores, random and spatial-block CV, intervals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from geohm.config import FitSpec
from geohm.evaluate import (
    cross_validate,
    group_kfold,
    interval_metrics,
    metrics,
    with_null,
)
from geohm.models import ModelEntry
from geohm.models.uncertainty import IntervalModel, Method, interval_model
from geohm.spatialcv import block_folds

__all__ = ["spatial_folds"]


def _test_scores(
    estimator: Any,
    X: pd.DataFrame,
    y: pd.Series,
    train: np.ndarray,
    test: np.ndarray,
    samples: pd.DataFrame,
    target: str,
) -> dict[str, Any] | None:
    """Hold-out scores (mg/kg, with skill against the training mean); None without a test set.

    The test predictions go into ``samples`` (``<target>_test_predicted``).
    """
    if not len(test):
        return None
    pred = np.maximum(estimator.predict(X.iloc[test]), 0.0)
    col = np.full(len(y), np.nan)
    col[test] = pred
    samples[f"{target}_test_predicted"] = col  # positional: ids need not be unique here
    y_all = y.to_numpy()
    return with_null(metrics(y_all[test], pred), y_all[test], y_all[train].mean())


def _cv_folds(asked: int, groups: np.ndarray, skipped: list[str]) -> int:
    """Folds of the random CV: at most one per training location (why fewer: ``skipped``)."""
    n = int(np.unique(groups).size)
    folds = min(asked, n)
    if asked < 2:
        skipped.append("cross-validation off (validation.cv_folds: 0)")
    elif folds < 2:
        skipped.append(f"cross-validation skipped: the training set has {n} location(s)")
    elif folds < asked:
        skipped.append(
            f"validation.cv_folds is {asked} but the training set has only {folds} "
            f"locations: {folds}-fold cross-validation used"
        )
    return folds


#: The interval method of each predictive distribution of the model registry.
_INTERVAL_METHOD: dict[str, Method] = {
    "quantiles": "quantile-forest",
    "std": "kriging",
    "residuals": "residual",
}


def _interval(
    spec: FitSpec,
    entry: ModelEntry,
    estimator: Any,
    Xtr: pd.DataFrame,
    ytr: np.ndarray,
    oof: np.ndarray | None,
    X: pd.DataFrame,
    y: pd.Series,
    test: np.ndarray,
    *,
    groups: np.ndarray,
) -> tuple[IntervalModel, dict[str, Any]]:
    """Prediction intervals of the fitted model, and their calibration on the test split.

    The interval model sees the training samples only (its conformal calibration uses the
    same seeded, location-grouped folds as the reported CV, reusing their out-of-fold
    predictions), so the hold-out coverage is an honest check of the nominal coverage.
    The method comes from the model's registry entry (quantile forest, kriging standard
    deviation or conformal residuals).
    """
    val = spec.validation
    n_groups = int(np.unique(groups).size)
    folds = min(val.cv_folds if val.cv_folds >= 2 else 5, n_groups)
    # Replicates at one location stay in one fold here too; a single location leaves
    # nothing to group, and the interval model's own folds (as many as samples) are used.
    cv: Any = (
        group_kfold(len(ytr), folds=folds, seed=val.seed, groups=groups)
        if folds >= 2
        else min(5, len(ytr))
    )
    interval = interval_model(
        estimator,
        Xtr,
        ytr,
        oof_predictions=oof,
        coverage=val.interval_coverage,
        # Regression kriging's std leaves out the trend model's error: calibrate it on the
        # out-of-fold residuals (normalised conformal). Ordinary kriging keeps its own.
        method=_INTERVAL_METHOD[entry.distribution],
        calibrate=entry.calibrate_interval,
        cv=cv,
        random_state=val.seed,
    )
    rep: dict[str, Any] = {
        "map": f"width (mg/kg) of the central {val.interval_coverage:.0%} prediction interval",
        "method": interval.method_,
        "calibrated": bool(interval.calibrated_),
        "nominal": float(val.interval_coverage),
    }
    if np.isfinite(interval.raw_oof_coverage_):
        rep["raw_oof_coverage"] = float(interval.raw_oof_coverage_)
    if len(test):
        lower, upper = interval.interval(X.iloc[test])
        lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
        rep["test"] = interval_metrics(
            y.to_numpy()[test], lower, upper, coverage=val.interval_coverage
        )
    return interval, rep


def _spatial_cv(
    spec: FitSpec,
    estimator: Any,
    X: Any,
    y: np.ndarray,
    xy: np.ndarray,
    folds: int,
    skipped: list[str],
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, list[Any]] | None:
    """Spatial block k-fold CV of ``estimator`` on the training samples (at ``xy``).

    Returns its report, each sample's fold, the out-of-fold predictions and the fold
    models (None when skipped, with the reason in ``skipped``).

    Random k-fold flatters spatially clustered samples (a test point usually has a
    training neighbour a few metres away); here whole square blocks, by default as large
    as the variogram range of the target, go to the test fold together (see
    :func:`spatial_folds`).
    """
    val = spec.validation
    if not val.spatial_cv:
        skipped.append("spatial cross-validation off (validation.spatial_cv: false)")
        return None
    fold, block = spatial_folds(spec, xy, y, folds)
    if fold is None:
        skipped.append(
            f"spatial cross-validation skipped: fewer than {folds} occupied blocks even at "
            f"{block:.0f} m"
        )
        return None
    splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(folds)]
    cv = cross_validate(
        estimator, X, y, folds=folds, seed=val.seed, splits=splits, keep_models=True
    )
    oof, models = cv.pop("predictions"), cv.pop("models")
    cv["block_size_m"] = float(block)
    return cv, fold, oof, models


def spatial_folds(
    spec: FitSpec, xy: np.ndarray, y: np.ndarray, folds: int
) -> tuple[np.ndarray | None, float]:
    """The spatial block fold of each training sample, and the block size (m).

    :func:`geohm.spatialcv.block_folds` with ``validation.block_size`` and ``seed``; the
    spatial CV and ``auto``'s scoring use these same folds.
    """
    val = spec.validation
    return block_folds(xy, y, folds, block_size=val.block_size, seed=val.seed)


def _assessment_folds(
    spatial: tuple[dict[str, Any], np.ndarray, np.ndarray, list[Any]] | None,
    folds: int,
    oof: np.ndarray | None,
    random_models: list[Any],
    n: int,
    groups: np.ndarray,
    seed: int,
) -> tuple[np.ndarray | None, np.ndarray | None, list[Any], str]:
    """The folds importance and the area of applicability are measured on.

    The spatial blocks when the spatial CV ran, else the random CV's folds by location
    (the same splits :func:`geohm.evaluate.cross_validate` made), else none. Returns each
    sample's fold, the out-of-fold predictions, the fold models and what the folds are.
    """
    if spatial is not None:
        return spatial[1], spatial[2], spatial[3], "spatial blocks"
    if folds < 2:
        return None, None, [], ""
    fold = np.empty(n, dtype=np.int64)
    for k, (_, held) in enumerate(group_kfold(n, folds=folds, seed=seed, groups=groups)):
        fold[held] = k
    return fold, oof, random_models, "random (by location)"

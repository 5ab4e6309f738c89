"""Fit and validate one model for one target: the normal path every model takes.

Removes target outliers, makes the seeded hold-out split, fits, tests, cross-validates
(random and spatial-block folds), builds the prediction intervals and assesses what drives
the model and where it applies (:mod:`geohm.applicability`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geohm.aoa import AreaOfApplicability
from geohm.applicability import assess, source_shift
from geohm.config import FitSpec
from geohm.errors import SampleError
from geohm.evaluate import (
    cross_validate,
    metrics,
    skill_summary,
    trust_warning,
)
from geohm.fitting.checks import (
    _assessment_folds,
    _cv_folds,
    _interval,
    _spatial_cv,
    _test_scores,
)
from geohm.fitting.pipelines import model_columns, model_pipeline, source_model
from geohm.fitting.rows import _target_rows, split_rows
from geohm.models import ModelEntry
from geohm.models.uncertainty import IntervalModel
from geohm.patches import patch_channels
from geohm.preprocess import source_columns
from geohm.sampling import SampleTable

__all__ = ["FittedTarget", "fit_model"]

log = logging.getLogger(__name__)


@dataclass
class FittedTarget:
    """A fitted model for one target and what is known about its accuracy.

    Attributes
    ----------
    estimator : sklearn estimator
        Predicts the target (mg/kg) from a table whose columns are ``features``.
    features : list of str
        Input columns of ``estimator``, in order.
    report : dict
        ``model``, ``features`` (used by the net after screening), ``selection``,
        ``test``, ``cv``, ``n_train``, ``outliers`` ... (goes into report.json).
    samples : pandas.DataFrame
        Per sample: observed value, split, hold-out and CV predictions.
    """

    estimator: Any
    features: list[str]
    report: dict[str, Any]
    samples: pd.DataFrame = field(default_factory=pd.DataFrame)
    required: list[str] | None = None  # the factors kept by screening, when it ran
    #: Prediction intervals around ``estimator`` (None when output.uncertainty is off).
    interval: IntervalModel | None = None
    #: Area of applicability on ``aoa_features`` (None: off, or not computable).
    aoa: AreaOfApplicability | None = None
    aoa_features: list[str] | None = None
    #: Transfer models: the source year's AOA on ``source_aoa_features`` (covariate shift).
    source_aoa: AreaOfApplicability | None = None
    source_aoa_features: list[str] | None = None


def fit_model(
    spec: FitSpec,
    table: SampleTable,
    target: str,
    entry: ModelEntry,
    *,
    source: SampleTable | None = None,
    estimator: Any = None,
) -> FittedTarget:
    """Fit, test and cross-validate one model for one target.

    See :func:`geohm.training.fit_target`.

    Parameters
    ----------
    spec : FitSpec
        Model (``model.name`` is the one reported), preprocessing, selection and
        validation settings.
    table : SampleTable
        Target-year samples: the columns the model may take.
    target : str
        Target column (``"Cu"``).
    entry : ModelEntry
        The registry entry of the model (its inputs, source year, screening and
        predictive distribution).
    source : SampleTable, optional
        Source-year samples (required when ``entry.needs_source``).
    estimator : estimator, optional
        An unfitted estimator taking every column of ``table`` (``auto``'s stacked
        ensemble); default: the pipeline of ``spec``.

    Raises
    ------
    SampleError
        Too few samples to train.
    """
    val = spec.validation
    X, y, groups, removed, pos, train, test = split_rows(spec, table, target)
    ids = y.index
    rep: dict[str, Any] = {"model": spec.model.name, "outliers_removed": removed}
    skipped: list[str] = []
    n_groups = int(np.unique(groups).size)
    rep["samples"] = {
        "n": int(len(y)),
        "locations": n_groups,
        "train_locations": int(np.unique(groups[train]).size),
        "test_locations": int(np.unique(groups[test]).size),
    }
    if val.test_fraction > 0 and len(test) == 0:
        skipped.append(
            f"no hold-out test set: {n_groups} location(s) cannot be split "
            "(validation.test_fraction)"
        )
    source_only = None
    cube_columns = list(X.columns)
    if entry.needs_source:
        if source is None:
            raise SampleError(f"model '{entry.name}' needs the source year's samples")
        estimator, features, src_rep = source_model(spec, source, target)
        source_only = src_rep.pop("source_only_estimator")
        rep["source"] = src_rep
        rep["selection"] = src_rep.get("selection")
        rep["notes"] = [
            "factors screened and preprocessing fitted on the source year, "
            "reused unchanged for the target year"
        ]
        X = X[features]
    elif estimator is None:
        features = model_columns(spec, cube_columns)
        X = X[features]
        estimator = model_pipeline(spec, features)
    else:
        features = cube_columns
    Xtr, ytr = X.iloc[train], y.to_numpy()[train]
    estimator.fit(Xtr, ytr)
    rep.update(_fitted_report(entry, estimator, features))
    if entry.inputs == "patches":
        rep["patch_gaps"] = _patch_gaps(Xtr, ids[train])
    samples = pd.DataFrame(index=ids)
    samples[f"{target}_observed"] = y.to_numpy()
    samples[f"{target}_split"] = "train"
    samples.iloc[test, samples.columns.get_loc(f"{target}_split")] = "test"
    rep["test"] = _test_scores(estimator, X, y, train, test, samples, target)
    if source_only is not None and len(test):
        rep["source"]["test_source_only"] = metrics(
            y.to_numpy()[test], np.maximum(source_only.predict(X.iloc[test]), 0.0)
        )
    oof = None
    gtr = groups[train]
    folds = _cv_folds(val.cv_folds, gtr, skipped)
    spatial = None
    random_models: list[Any] = []
    if folds >= 2:
        cv = cross_validate(
            estimator, Xtr, ytr, folds=folds, seed=val.seed, groups=gtr, keep_models=True
        )
        col = np.full(len(y), np.nan)
        col[train] = oof = cv.pop("predictions")
        samples[f"{target}_cv_predicted"] = col
        random_models = cv.pop("models")
        rep["cv"] = cv
        spatial = _spatial_cv(spec, estimator, Xtr, ytr, table.xy[pos[train]], folds, skipped)
        rep["cv_spatial"] = None if spatial is None else spatial[0]
    else:
        rep["cv"] = None
    rep["n_train"] = int(len(train))
    rep["train_mean"] = float(ytr.mean())  # the flat map (mg/kg) that skill is measured against
    if skipped:
        rep["skipped"] = skipped
        for note in skipped:
            log.warning("%s: %s", target, note)
    interval = None
    if spec.uncertainty:
        interval, rep["uncertainty"] = _interval(
            spec, entry, estimator, Xtr, ytr, oof, X, y, test, groups=gtr
        )
    rep["skill"] = skill_summary(rep)
    warning = trust_warning(target, rep)
    if warning:
        rep["warnings"] = [warning]
        log.warning("%s", warning)
    required = _required_inputs(spec, entry, rep, features, cube_columns)
    found = None
    if spec.applicability and entry.inputs == "patches":
        note = (
            "area of applicability and drivers not computed: the model's inputs are "
            "neighbourhood patches, not one feature row per pixel"
        )
        rep["skipped"] = [*rep.get("skipped", []), note]
        log.warning("%s: %s", target, note)
    elif spec.applicability:
        fold, soof, models, kind = _assessment_folds(
            spatial, folds, oof, random_models, len(ytr), gtr, val.seed
        )
        found = assess(
            estimator,
            Xtr,
            ytr,
            fold,
            oof=soof,
            fold_models=dict(enumerate(models)),
            columns=[c for c in (required or features) if c in Xtr.columns],
            categorical=spec.categorical,
            folds_kind=kind,
            seed=val.seed,
            ids=[str(i) for i in ids[train]],
        )
        more = found.report.pop("skipped", [])
        rep.update(found.report)
        if more:
            rep["skipped"] = [*rep.get("skipped", []), *more]
            for note in more:
                log.warning("%s: %s", target, note)
        if entry.needs_source and source is not None and "applicability" in rep:
            Xs = _target_rows(source, target, spec)[0]
            rep["applicability"]["covariate_shift"] = source_shift(
                found, Xs, Xtr, spec.categorical
            )
    return FittedTarget(
        estimator,
        features,
        rep,
        samples,
        required,
        interval,
        aoa=None if found is None else found.aoa,
        aoa_features=None if found is None else found.columns,
        source_aoa=None if found is None else found.source_aoa,
        source_aoa_features=None if found is None else found.source_columns,
    )


def _fitted_report(entry: ModelEntry, estimator: Any, features: list[str]) -> dict[str, Any]:
    """What the fitted pipeline chose: its factors (and screening scores) or transfer."""
    if entry.needs_source:
        model = estimator.named_steps["model"]
        model = getattr(model, "regressor_", model)
        return {
            "features": features,
            "transfer": {
                "beta0": float(model.beta0_),
                "beta": float(model.beta_),
                "retrain_epochs": int(model.n_epochs_),
                "cv_rmse_by_beta0": {str(k): float(v) for k, v in model.cv_scores_.items()},
            },
        }
    if entry.inputs == "patches":  # the channels, not their (2h+1)^2 pixels each
        return {"features": patch_channels(features)}
    sel = estimator.named_steps.get("select", "passthrough")
    if sel != "passthrough":
        return {"selection": sel.scores_, "features": list(sel.selected_)}
    return {"features": features}


def _patch_gaps(X: pd.DataFrame, ids: Any) -> dict[str, Any]:
    """The training patches' missing cells (beyond the scene or nodata), named by sample.

    The patch model fills them with the training mean of their feature and marks them in
    its validity channel: a substitution, so the report says where.
    """
    gaps = ~np.isfinite(X.to_numpy(dtype="float64"))
    per_sample = gaps.sum(axis=1)
    return {
        "cells_filled": int(gaps.sum()),
        "cells": int(gaps.size),
        "rule": "training mean of the feature, marked in the validity channel",
        "samples": {str(i): int(n) for i, n in zip(ids, per_sample, strict=True) if n},
    }


def _required_inputs(
    spec: FitSpec,
    entry: ModelEntry,
    rep: dict[str, Any],
    features: list[str],
    cube_columns: list[str],
) -> list[str] | None:
    """The inputs that must be valid for a pixel to be mapped (None: all the features)."""
    if entry.inputs == "coordinates":
        # Kriging needs only x, y, but maps the same pixels as the other models: where
        # every input layer is valid (the study area), not the whole grid rectangle.
        return cube_columns
    if rep.get("selection") and not entry.needs_source:
        categorical = list(spec.categorical)
        return source_columns(rep["features"], features, categorical)
    return None

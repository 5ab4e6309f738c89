"""Train and validate one model per target metal from sample tables.

:func:`fit_target` fits the model a scene config names through the normal path of
:mod:`geohm.fitting` (hold-out test, CV, spatial CV, intervals). For
``model: {name: auto}`` it first scores the candidates of the model registry on the
spatial-block folds of the training samples (:mod:`geohm.autoselect`), then fits the
chosen one, or the stacked ensemble, through that same path, as if it had been named.
:func:`fit_classifier` fits the contamination classifiers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from geohm.autoselect import Proposal, select_model, stacked_estimator
from geohm.config import FitSpec, ModelSpec
from geohm.errors import ConfigError, SampleError
from geohm.evaluate import group_kfold
from geohm.fitting import (
    FittedTarget,
    fit_model,
    model_columns,
    model_pipeline,
    source_model,
    spatial_folds,
    split_rows,
)
from geohm.models import COORDS, check_model_params, model_entry
from geohm.models.registry import STACKED, Candidate, auto_settings
from geohm.sampling import SampleTable
from geohm.spectra import spectral_preprocessors

__all__ = [
    "FittedClassifier",
    "check_model_config",
    "FittedTarget",
    "fit_classifier",
    "fit_target",
    "model_columns",
    "model_pipeline",
    "uses_source",
    "wants_coordinates",
]

log = logging.getLogger(__name__)


def check_model_config(spec: FitSpec, *, source: str | None = None) -> None:
    """Check ``model.params`` of a fit spec without reading or fitting anything.

    The estimators' own parameter constraints (:func:`geohm.models.check_model_params`)
    and the spectral ``preprocess`` steps. Called when a job's config is loaded
    (:func:`geohm.pipeline.load_job`) and again by :func:`geohm.pipeline.run_scene`, so
    a bad parameter stops a job before any input is read or any output folder made.

    Parameters
    ----------
    spec : FitSpec
        The scene's fit settings (:meth:`geohm.config.SceneConfig.fit_spec`).
    source : str, optional
        The config file, to start the message with (default: the scene's name).

    Raises
    ------
    ConfigError
        One line naming ``model.params.<key>``, its value and what it must be.
    """
    prefix = f"{source}: " if source is not None else f"scene '{spec.name}': "
    params = dict(spec.model.params or {})
    try:
        check_model_params(spec.model.name, params)
        if "preprocess" in params:
            try:
                spectral_preprocessors(params.get("preprocess"))
            except ConfigError as exc:  # "key 'model.params.preprocess': unknown step ..."
                detail = str(exc).split(": ", 1)[-1]
                raise ConfigError(f"model.params.preprocess: {detail}") from None
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


def fit_target(
    spec: FitSpec,
    table: SampleTable,
    target: str,
    *,
    source: SampleTable | None = None,
) -> FittedTarget:
    """Fit, test and cross-validate the configured model for one target.

    With ``model: {name: auto}`` the candidates are first scored on the spatial-block
    folds of the training samples (:mod:`geohm.autoselect`); the chosen one (or the
    stacked ensemble) is then fitted, tested and cross-validated exactly as if it had
    been named, and ``report["auto"]`` holds the ranking and why it was chosen.

    Parameters
    ----------
    spec : FitSpec
        Model, preprocessing, selection and validation settings.
    table : SampleTable
        Target-year samples (all cube features).
    target : str
        Target column (``"Cu"``).
    source : SampleTable, optional
        Source-year samples with the same feature columns (required by ``tr-ga-bp``).

    Raises
    ------
    SampleError
        Too few samples to train.
    """
    entry = model_entry(spec.model.name)
    if entry.selects:
        return _fit_auto(spec, table, target, source)
    return fit_model(spec, table, target, entry, source=source)


# --------------------------------------------------------------------------- auto


def uses_source(spec: FitSpec) -> bool:
    """Whether the configured model fits on the ``source:`` year's samples too.

    Tr-GA-BP, or ``auto`` with a transfer candidate and a ``source:`` block.
    """
    entry = model_entry(spec.model.name)
    if entry.selects:
        candidates = auto_settings(spec.model.params).candidates
        return spec.has_source and any(model_entry(c.model).needs_source for c, _ in candidates)
    return entry.needs_source


def wants_coordinates(spec: FitSpec) -> bool:
    """Whether ``auto`` has candidates that take the map coordinates ``x``, ``y``.

    Kriging and RFsp: the cube then carries them where the grid is projected, and those
    candidates are left out (and listed) where it is not.
    """
    entry = model_entry(spec.model.name)
    return entry.selects and any(
        _takes_coordinates(c) for c, _ in auto_settings(spec.model.params).candidates
    )


def _takes_coordinates(cand: Candidate) -> bool:
    return model_entry(cand.model).raw_coordinates or cand.coordinates or cand.buffer_distances


def _user_coordinates(spec: FitSpec) -> bool:
    """Whether the user asked for ``x``, ``y`` as features (then every candidate gets them)."""
    sf = spec.spatial_features
    listed = isinstance(spec.features, list) and any(c in spec.features for c in COORDS)
    return sf.coordinates or sf.buffer_distances or listed


def _candidate(
    spec: FitSpec, cand: Candidate, params: dict[str, Any], table: SampleTable
) -> tuple[FitSpec, list[str]]:
    """The fit spec of a candidate (as if the user had named it) and its table columns."""
    sf = spec.spatial_features
    spatial = sf.model_copy(
        update={
            "coordinates": sf.coordinates or cand.coordinates,
            "buffer_distances": sf.buffer_distances or cand.buffer_distances,
        }
    )
    cspec = spec.model_copy(
        update={"model": ModelSpec(name=cand.model, params=params), "spatial_features": spatial}
    )
    if model_entry(cand.model).inputs == "patches" and table.patches is not None:
        return cspec, list(table.patches.columns)
    columns = list(table.X.columns)
    if not (_takes_coordinates(cand) or _user_coordinates(spec)):
        columns = [c for c in columns if c not in COORDS]
    return cspec, columns


def _restrict(table: SampleTable, columns: list[str]) -> SampleTable:
    return replace(table, X=table.X[[c for c in table.X.columns if c in columns]])


def _proposal(
    spec: FitSpec,
    cand: Candidate,
    params: dict[str, Any],
    table: SampleTable,
    source: SampleTable | None,
    target: str,
    n_train: int,
) -> Proposal:
    """A candidate for :func:`geohm.autoselect.select_model`, or why it does not apply."""
    entry = model_entry(cand.model)
    patches = entry.inputs == "patches"
    reason = None
    if n_train < cand.min_samples:
        reason = f"needs at least {cand.min_samples} training samples, {n_train} here"
    elif patches and table.patches is None:
        reason = "the samples were read without their neighbourhood patches"
    elif _takes_coordinates(cand) and not all(c in table.X.columns for c in COORDS):
        reason = "needs the map coordinates x, y: the scene grid is not projected (metres)"
    elif entry.needs_source and source is None:
        reason = "needs a 'source:' block (an earlier year's imagery and samples)"
    elif entry.needs_source and source is not None and target not in source.y.columns:
        reason = f"the source year's samples have no {target}"
    if reason is not None:
        return Proposal(cand.name, cand.summary, entry.distribution, None, reason, not patches)
    cspec, columns = _candidate(spec, cand, params, table)

    def build() -> tuple[Any, list[str]]:
        if entry.needs_source:
            assert source is not None
            est, features, _ = source_model(
                cspec, _restrict(source, columns), target, source_cv=False
            )
            return est, features
        features = model_columns(cspec, columns)
        return model_pipeline(cspec, features), features

    return Proposal(cand.name, cand.summary, entry.distribution, build, stackable=not patches)


def _fit_auto(
    spec: FitSpec, table: SampleTable, target: str, source: SampleTable | None
) -> FittedTarget:
    """Fit ``auto``: score the candidates, then fit the chosen one.

    The candidates are scored on the training samples' spatial folds; the chosen one (or
    the stacked ensemble) is fitted through :func:`geohm.fitting.fit_model`, as if it had
    been named.
    """
    val = spec.validation
    settings = auto_settings(spec.model.params)
    X, y, groups, _, pos, train, _ = split_rows(spec, table, target)
    ytr, gtr = y.to_numpy()[train], groups[train]
    n_folds = min(val.cv_folds if val.cv_folds >= 2 else 5, int(np.unique(gtr).size))
    if n_folds < 2:
        raise SampleError(
            f"model 'auto' compares candidates by cross-validation, but the {target} "
            f"training samples lie at {np.unique(gtr).size} location(s); name a model instead"
        )
    fold, block = spatial_folds(spec, table.xy[pos[train]], ytr, n_folds)
    if fold is not None:
        folds_rep: dict[str, Any] = {"kind": "spatial blocks", "block_size_m": block}
        splits = [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(n_folds)]
    else:
        splits = group_kfold(len(ytr), folds=n_folds, seed=val.seed, groups=gtr)
        folds_rep = {"kind": "random (too few spatial blocks)"}
    folds_rep["n"] = n_folds
    proposals = [
        _proposal(spec, cand, params, table, source, target, len(train))
        for cand, params in settings.candidates
    ]
    if table.patches is not None:  # the patch candidates' columns beside the others'
        X = pd.concat([X, table.patches.iloc[pos].reset_index(drop=True)], axis=1)
    found_sel = select_model(
        proposals,
        X.iloc[train],
        ytr,
        splits,
        max_minutes=settings.max_minutes,
        stack=settings.stack,
        coverage=val.interval_coverage,
    )
    if found_sel.stacked:
        fold_of = np.full(len(y), -1, dtype=np.int64)
        for k, (_, test) in enumerate(splits):
            fold_of[train[test]] = k
        used = {c for _, cols in found_sel.members.values() for c in cols}
        union = [c for c in table.X.columns if c in used]
        stack = stacked_estimator(found_sel.members, fold_of)
        fit = fit_model(spec, _restrict(table, union), target, STACKED, estimator=stack)
    else:
        cand, params = {c.name: (c, p) for c, p in settings.candidates}[found_sel.chosen]
        cspec, columns = _candidate(spec, cand, params, table)
        fit = fit_model(
            cspec,
            _restrict(table, columns),
            target,
            model_entry(cand.model),
            source=None if source is None else _restrict(source, columns),
        )
    fit.report["model"] = spec.model.name
    fit.report["auto"] = {
        "chosen": found_sel.chosen,
        "why": found_sel.why,
        "folds": folds_rep,
        "max_minutes": settings.max_minutes,
        "interval_nominal": val.interval_coverage,
        "ranking": found_sel.ranking,
    }
    if found_sel.weights:
        fit.report["auto"]["weights"] = found_sel.weights
    for row in found_sel.ranking:
        if row["status"] in ("skipped", "failed"):
            log.warning(
                "%s: auto: %s %s: %s", target, row["candidate"], row["status"], row["reason"]
            )
    log.info("%s: auto chose %s (%s)", target, found_sel.chosen, found_sel.why)
    return fit


@dataclass
class FittedClassifier:
    """A contamination classifier fitted on every labelled sample, and its CV scores."""

    estimator: Any
    features: list[str]
    report: dict[str, Any]
    labels: pd.Series


def fit_classifier(
    spec: FitSpec, table: SampleTable, limits: dict[str, float]
) -> FittedClassifier:
    """Label samples (1 when any metal exceeds its limit), cross-validate, fit.

    The cross-validation is stratified k-fold repeated with fixed seeds (seed 001);
    the map model is then fitted on every labelled sample.

    Raises
    ------
    SampleError
        Fewer than two samples in a class.
    """
    from geohm.models.classify import (
        UNKNOWN_LABEL,
        contamination_labels,
        evaluate_classifier,
        make_classifier,
    )

    c = spec.classification
    labels = pd.Series(contamination_labels(table.y, limits), index=table.X.index)
    keep = labels != UNKNOWN_LABEL
    X, y = table.X[keep], labels[keep].to_numpy()
    counts = {str(k): int((y == k).sum()) for k in (0, 1)}
    if min(counts.values()) < 2:
        raise SampleError(
            f"classification needs at least 2 samples in each class, got {counts} with limits "
            f"{limits}; change 'classification.limits' or use a regression model"
        )
    estimator = make_classifier(spec.model.name, random_state=spec.validation.seed)
    cv = evaluate_classifier(
        estimator, X, y, folds=c.folds, repeats=c.repeats, seed=spec.validation.seed
    )
    estimator.fit(X, y)
    report = {
        "model": spec.model.name,
        "limits_mg_kg": limits,
        "labels": {"not contaminated (0)": counts["0"], "contaminated (1)": counts["1"]},
        "cv": cv,
        "best_params": {
            k: (v if isinstance(v, int | float | str | None) else str(v))
            for k, v in estimator.best_params_.items()
        },
        "features": list(X.columns),
        "left_out": [
            {"id": str(i), "reason": f"no value for any of {', '.join(limits)}"}
            for i in labels.index[~keep]
        ],
    }
    return FittedClassifier(estimator, list(X.columns), report, labels)

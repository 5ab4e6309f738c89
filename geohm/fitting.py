"""Fit and validate one model for one target: the normal path every model takes.

Builds the scikit-learn pipeline a scene config asks for (name columns -> scale ->
impute -> select factors -> regress), removes target outliers, makes the seeded
hold-out split, fits, tests, cross-validates (random and spatial-block folds) and
builds the prediction intervals. For Tr-GA-BP the factors are screened and the
preprocessing and the source net are fitted on the *source* year, then reused
unchanged on the target year. :mod:`geohm.training` calls it for the model a config
names, and for the one ``auto`` chose.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from geohm.config import FitSpec
from geohm.cube import spectral_columns
from geohm.errors import ConfigError, SampleError
from geohm.evaluate import (
    cross_validate,
    group_kfold,
    holdout_split,
    interval_metrics,
    metrics,
    skill_summary,
    trust_warning,
    with_null,
)
from geohm.models import COORDS, ModelEntry, make_regressor, model_entry
from geohm.models.spatial import BufferDistances
from geohm.models.uncertainty import IntervalModel, Method, interval_model
from geohm.preprocess import build_pipeline, iqr_outliers, log_target, source_columns
from geohm.sampling import SampleTable
from geohm.selection import CorrelationVIFSelector
from geohm.spatialcv import block_folds
from geohm.spectra import spectral_preprocessors

__all__ = [
    "MIN_TRAIN",
    "FittedTarget",
    "fit_model",
    "model_columns",
    "model_pipeline",
    "source_model",
    "spatial_folds",
    "split_rows",
]

#: Fewest training samples of a target.
MIN_TRAIN = 5
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


def _selector(spec: FitSpec, force: tuple[str, ...] = ()) -> CorrelationVIFSelector | None:
    s = spec.selection
    if s.method == "none":
        return None
    keep = tuple(dict.fromkeys((*s.force, *force)))
    return CorrelationVIFSelector(max_p=s.max_p, max_vif=s.max_vif, force=keep)


def model_columns(spec: FitSpec, columns: list[str]) -> list[str]:
    """The sample-table columns the configured model takes.

    Ordinary kriging takes the coordinates only; ``spectral-resnet`` the hyperspectral
    bands (``wl_<wavelength>``) in increasing wavelength order; every other model takes
    all columns.

    Raises
    ------
    ConfigError
        ``spectral-resnet`` without hyperspectral band features.
    """
    entry = model_entry(spec.model.name)
    if entry.inputs == "coordinates":
        return list(COORDS)
    if entry.inputs == "spectra":
        spectral = spectral_columns(columns)
        if len(spectral) < 2:
            raise ConfigError(
                "model 'spectral-resnet' needs the hyperspectral bands (wl_<wavelength>) "
                f"among the features, got {len(spectral)}; give 'hyperspectral:' and keep "
                "its bands in 'features'"
            )
        return spectral
    return list(columns)


def model_pipeline(spec: FitSpec, columns: list[str]) -> Pipeline:
    """The unfitted model pipeline of ``spec`` for these sample-table columns.

    Coordinates stay unscaled for kriging and buffer distances (metres); with
    ``spatial_features.buffer_distances`` a :class:`~geohm.models.spatial.BufferDistances`
    step before the model adds the distance to every training sample (RFsp).
    """
    p = spec.preprocess
    entry = model_entry(spec.model.name)
    if entry.inputs == "spectra":
        return _spectral_pipeline(spec)
    kriging = entry.raw_coordinates
    buffers = spec.spatial_features.buffer_distances and not kriging
    raw = tuple(c for c in COORDS if c in columns) if kriging or buffers else ()
    if buffers and len(raw) < 2:
        raise ConfigError(
            "key 'spatial_features.buffer_distances' needs the coordinates x and y among the "
            "features (set spatial_features.coordinates or list x and y in 'features')"
        )
    categorical = tuple(
        name for name in spec.categorical if name in columns
    )
    pipe = build_pipeline(
        make_regressor(spec.model.name, spec.model.params, random_state=spec.validation.seed),
        selector=_selector(spec, force=raw) if entry.screening else None,
        impute=p.impute,
        scale=p.scale,
        log=p.log_target,
        n_neighbors=p.n_neighbors,
        raw=raw,
        categorical=categorical,
    )
    if buffers:
        pipe.steps.insert(len(pipe.steps) - 1, ("buffers", BufferDistances(coords=COORDS)))
        pipe.set_output(transform="pandas")
    return pipe


def _spectral_pipeline(spec: FitSpec) -> Pipeline:
    """The ``spectral-resnet`` pipeline: spectra, optional preprocessing, then the net.

    The spectra come in wavelength order; the preprocessing is ``model.params.preprocess``.

    No per-band min-max scaling, imputation or factor screening: they would break the
    shape of the spectrum (the net standardises each wavelength itself). Only samples
    and pixels with every band valid are used.
    """
    params = dict(spec.model.params)
    pipe = build_pipeline(
        make_regressor(spec.model.name, params, random_state=spec.validation.seed),
        impute="none",
        scale="none",
        log=spec.preprocess.log_target,
    )
    # After "columns" (which names the spectra of a numpy table in wavelength order).
    pipe.steps[1:1] = spectral_preprocessors(params.get("preprocess"))
    return pipe.set_output(transform="pandas")


def _target_rows(
    table: SampleTable, target: str, spec: FitSpec
) -> tuple[pd.DataFrame, pd.Series, np.ndarray, list[str], np.ndarray]:
    """The samples with a value for ``target``, less the IQR outliers.

    Also their groups, the ids of the outliers and the rows' positions in ``table``.

    Samples without a value for this target (NaN, listed in ``table.dropped``) are left
    out of this target only.
    """
    has = np.isfinite(table.y[target].to_numpy(dtype=float))
    X, y = table.X[has], table.y[target][has]
    groups = np.asarray(table.groups)[has]
    pos = np.flatnonzero(has)
    if spec.preprocess.outliers != "iqr":
        return X, y, groups, [], pos
    out = iqr_outliers(y.to_numpy(), k=spec.preprocess.iqr_k)
    return X[~out], y[~out], groups[~out], [str(i) for i in y.index[out]], pos[~out]


def source_model(
    spec: FitSpec, source: SampleTable, target: str, *, source_cv: bool = True
) -> tuple[Pipeline, list[str], dict[str, Any]]:
    """Screen factors, fit preprocessing and the source GA-BP net on the source year.

    Returns the frozen target-year estimator (source preprocessing + Tr-GA-BP), the
    factors it takes, and the source part of the report (with the source year's CV
    unless ``source_cv`` is off: ``auto`` scoring a candidate needs no report).
    """
    p = spec.preprocess
    seed = spec.validation.seed
    Xs, ys, groups, removed, _ = _target_rows(source, target, spec)
    selector = _selector(spec)
    features = list(Xs.columns)
    rep: dict[str, Any] = {"n": int(len(ys)), "outliers_removed": removed}
    if selector is not None:
        selector.fit(Xs, ys)
        features = list(selector.selected_)
        rep["selection"] = selector.scores_
    params = dict(spec.model.params)
    source_params = dict(params.get("source_params") or {})
    source_name = model_entry(spec.model.name).source_model
    assert source_name is not None
    source_pipe = build_pipeline(
        make_regressor(source_name, source_params, random_state=seed),
        impute=p.impute,
        scale=p.scale,
        log=p.log_target,
        n_neighbors=p.n_neighbors,
    ).fit(Xs[features], ys)
    net = source_pipe.named_steps["model"]
    net = getattr(net, "regressor_", net)  # unwrap the log-target wrapper
    prep = Pipeline(source_pipe.steps[:-2])  # columns, scale, impute: fitted on the source
    if source_cv and len(ys) >= 4:
        cv = cross_validate(
            build_pipeline(
                make_regressor(source_name, source_params, random_state=seed),
                impute=p.impute,
                scale=p.scale,
                log=p.log_target,
                n_neighbors=p.n_neighbors,
            ),
            Xs[features],
            ys.to_numpy(),
            folds=5,
            seed=seed,
            groups=groups,
        )
        cv.pop("predictions")
        rep["cv"] = cv
    transfer = make_regressor(spec.model.name, params, random_state=seed)
    transfer.set_params(source=FrozenEstimator(net))
    estimator = Pipeline(
        [
            ("prep", FrozenEstimator(prep)),
            ("model", log_target(transfer, enabled=p.log_target)),
        ]
    )
    rep["source_only_estimator"] = FrozenEstimator(source_pipe)  # has its own preprocessing
    return estimator, features, rep


def split_rows(
    spec: FitSpec, table: SampleTable, target: str
) -> tuple[pd.DataFrame, pd.Series, np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The target's rows and the seeded hold-out split (train, test positions).

    The rows are indexed by position, with their groups, outliers and positions in
    ``table``.

    Raises
    ------
    SampleError
        Fewer than :data:`MIN_TRAIN` training samples.
    """
    val = spec.validation
    X, y, groups, removed, pos = _target_rows(table, target, spec)
    train, test = holdout_split(
        len(y), test_fraction=val.test_fraction, seed=val.seed, groups=groups
    )
    if len(train) < MIN_TRAIN:
        raise SampleError(
            f"only {len(train)} usable training samples for {target}; geohm needs at least "
            f"{MIN_TRAIN} (see the dropped points in the report, or lower "
            "validation.test_fraction)"
        )
    # Rows are labelled by position (sample ids need not be unique): auto's stacked
    # ensemble finds each row's spatial fold by it (geohm.autoselect.RowFolds).
    return X.reset_index(drop=True), y, groups, removed, pos, train, test


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
    if folds >= 2:
        cv = cross_validate(estimator, Xtr, ytr, folds=folds, seed=val.seed, groups=gtr)
        col = np.full(len(y), np.nan)
        col[train] = oof = cv.pop("predictions")
        samples[f"{target}_cv_predicted"] = col
        rep["cv"] = cv
        rep["cv_spatial"] = _spatial_cv(
            spec, estimator, Xtr, ytr, table.xy[pos[train]], folds, skipped
        )
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
    return FittedTarget(estimator, features, rep, samples, required, interval)


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
    sel = estimator.named_steps.get("select", "passthrough")
    if sel != "passthrough":
        return {"selection": sel.scores_, "features": list(sel.selected_)}
    return {"features": features}


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
) -> dict[str, Any] | None:
    """Spatial block k-fold CV of ``estimator`` on the training samples (at ``xy``).

    Random k-fold flatters spatially clustered samples (a test point usually has a
    training neighbour a few metres away); here whole square blocks, by default as large
    as the variogram range of the target, go to the test fold together (see
    :func:`_spatial_folds`).
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
    cv = cross_validate(estimator, X, y, folds=folds, seed=val.seed, splits=splits)
    cv.pop("predictions")
    cv["block_size_m"] = float(block)
    return cv


def spatial_folds(
    spec: FitSpec, xy: np.ndarray, y: np.ndarray, folds: int
) -> tuple[np.ndarray | None, float]:
    """The spatial block fold of each training sample, and the block size (m).

    :func:`geohm.spatialcv.block_folds` with ``validation.block_size`` and ``seed``; the
    spatial CV and ``auto``'s scoring use these same folds.
    """
    val = spec.validation
    return block_folds(xy, y, folds, block_size=val.block_size, seed=val.seed)

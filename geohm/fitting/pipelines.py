"""The unfitted scikit-learn pipeline a fit spec asks for, and Tr-GA-BP's source year.

Name columns -> scale -> impute -> select factors -> regress; for Tr-GA-BP the factors are
screened and the preprocessing and the source net are fitted on the *source* year, then
reused unchanged on the target year.
"""

from __future__ import annotations

from typing import Any

from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline

from geohm.config import FitSpec
from geohm.cube import spectral_columns
from geohm.errors import ConfigError
from geohm.evaluate import (
    cross_validate,
)
from geohm.fitting.rows import _target_rows
from geohm.models import COORDS, make_regressor, model_entry
from geohm.models.spatial import BufferDistances
from geohm.preprocess import build_pipeline, log_target
from geohm.sampling import SampleTable
from geohm.selection import CorrelationVIFSelector
from geohm.spectra import spectral_preprocessors

__all__ = ["model_columns", "model_pipeline", "source_model"]


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
    if entry.inputs == "patches":
        # The net fills gaps with the training means and standardises every feature
        # itself (the same numbers in every window of the map): nothing before it.
        return build_pipeline(
            make_regressor(spec.model.name, spec.model.params, random_state=spec.validation.seed),
            impute="none",
            scale="none",
            log=p.log_target,
        )
    kriging = entry.raw_coordinates
    buffers = spec.spatial_features.buffer_distances and not kriging
    raw = tuple(c for c in COORDS if c in columns) if kriging or buffers else ()
    if buffers and len(raw) < 2:
        raise ConfigError(
            "key 'spatial_features.buffer_distances' needs the coordinates x and y among the "
            "features (set spatial_features.coordinates or list x and y in 'features')"
        )
    categorical = tuple(name for name in spec.categorical if name in columns)
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

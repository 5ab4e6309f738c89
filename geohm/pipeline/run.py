"""``run_scene`` and ``predict_scene``: one scene job, every step in order."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from geohm._version import __version__
from geohm.aoa import AreaOfApplicability
from geohm.config import SceneConfig, load_config
from geohm.errors import ConfigError, InputError
from geohm.evaluate import metrics, with_null
from geohm.io.models import load_model
from geohm.io.outdir import compare_locked, job_fingerprint, output_folder
from geohm.io.rasters import (
    gdal_env,
)
from geohm.models import model_entry
from geohm.models.compiled import accelerate
from geohm.pipeline.accumulation import AccumulationPlan, dem_on_grid
from geohm.pipeline.common import Progress, log
from geohm.pipeline.inputs import (
    SceneInputs,
    build_cube,
    needs_coordinates,
    patch_half,
    sample_points,
    source_spec,
)
from geohm.pipeline.outputs import (
    RunResult,
    _finish_report,
    _grid_report,
    _Layer,
    _list_outliers,
    _scene_report,
    _versions,
    _write_maps,
    _write_samples_and_model,
)
from geohm.predict import TargetModel
from geohm.riskmaps import (
    plan_risk,
    probability_class_plan,
)
from geohm.sampling import SampleTable
from geohm.training import (
    FittedTarget,
    check_model_config,
    fit_classifier,
    fit_target,
    uses_source,
    wants_coordinates,
)


def run_scene(cfg: SceneConfig, *, progress: Progress | None = None) -> RunResult:
    """Run one scene job and write every output into ``cfg.output.dir``.

    Parameters
    ----------
    cfg : SceneConfig
        A validated config (see :func:`geohm.config.load_config`).
    progress : callable, optional
        ``progress(stage, done, total)``; stage ``"predict"`` reports windows.

    Returns
    -------
    RunResult

    Raises
    ------
    GeohmError
        Any input, grid, sample or config problem, with a message naming the file,
        band or key; :class:`~geohm.errors.OutputError` (before any input is read) when
        the output folder cannot be written or another run holds it.

    Notes
    -----
    The output folder is held for the run (:func:`geohm.io.outdir.output_folder`):
    locked, the outputs of an earlier run removed before the first new one is written,
    and ``manifest.json`` written last.
    """
    # Config problems first: before any output folder is made or input read.
    if cfg.samples is None:
        raise ConfigError(
            f"scene '{cfg.name}': 'samples:' is required by geohm run "
            "(geohm predict --model can map without samples)"
        )
    check_model_config(cfg.fit_spec())
    if cfg.risk is not None and not model_entry(cfg.model.name).classifier:
        plan_risk(cfg.risk, cfg.samples.targets)  # a bad risk block fails before training
    with output_folder(cfg.output.dir) as folder:
        job = job_fingerprint(cfg, command="run")  # the inputs as they are before reading
        folder.protect(job.inputs)  # never removed or overwritten as an output
        result = _run_scene(cfg, progress)
        folder.seal(result.outputs, job)
    return result


def job_status(
    cfg: SceneConfig,
    *,
    command: str = "run",
    model: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> tuple[bool, str]:
    """Whether a job must run, and why: its output folder's manifest against the job.

    Parameters
    ----------
    cfg : SceneConfig
        The job's config.
    command : {"run", "predict"}
        Which job.
    model : path-like, optional
        The model file of a ``predict`` job (one of its inputs).
    force : bool
        Run whatever the manifest says.

    Returns
    -------
    (bool, str)
        ``(False, "outputs match manifest")`` when the outputs are up to date (same
        config, inputs, geohm and library versions); else ``(True, why)``.

    Raises
    ------
    OutputError
        Another run holds the folder (checked under its lock: a held folder is never
        reported up to date).
    """
    if force:
        return True, "forced (--force)"
    inputs = (Path(model),) if model is not None else ()
    verdict = compare_locked(cfg.output.dir, job_fingerprint(cfg, command=command, inputs=inputs))
    return (not verdict.match), verdict.reason


def load_job(
    path: str | os.PathLike[str], *, output_dir: str | os.PathLike[str] | None = None
) -> SceneConfig:
    """Read a scene YAML (:func:`geohm.config.load_config`) and check its model parameters.

    Parameters
    ----------
    path : path-like
        The scene YAML.
    output_dir : path-like, optional
        Overrides ``output.dir`` (the command line's ``--out``).

    Returns
    -------
    SceneConfig
        The validated job, its model parameters checked against the model's estimator.

    Raises
    ------
    InputError, ConfigError
        As :func:`~geohm.config.load_config`; a bad ``model.params.<key>`` is named with
        the file (:func:`geohm.training.check_model_config`).
    """
    cfg = load_config(path, output_dir=output_dir)
    check_model_config(cfg.fit_spec(), source=str(path))
    return cfg


def _run_scene(cfg: SceneConfig, progress: Progress | None) -> RunResult:
    """:func:`run_scene` in its held output folder (config already checked)."""
    assert cfg.samples is not None
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with gdal_env():
        inputs, cube, features = build_cube(
            cfg,
            cfg.features,
            coordinates=needs_coordinates(cfg),
            optional_coordinates=wants_coordinates(cfg.fit_spec()),
        )
        timings["open"] = time.perf_counter() - t0

        t = time.perf_counter()
        table, n_points = sample_points(cfg, inputs, cube, patch=patch_half(cfg.model))
        log.info("%d of %d sample points usable", len(table.X), n_points)
        if model_entry(cfg.model.name).classifier:
            timings["sample"] = time.perf_counter() - t
            return _run_classifier(
                cfg, inputs, cube, features, table, n_points, timings, t0, progress
            )
        source_table = None
        source_info: dict[str, Any] = {}
        if uses_source(cfg.fit_spec()):
            spec = source_spec(cfg)
            s_inputs, s_cube, _ = build_cube(spec, features)
            source_table, s_points = sample_points(spec, s_inputs, s_cube)
            source_info = {
                "inputs": s_inputs.description,
                "total": s_points,
                "used": len(source_table.X),
                "dropped": source_table.dropped_records(),
                **source_table.summary(),
            }
        timings["sample"] = time.perf_counter() - t

        t = time.perf_counter()
        fitted = {
            target: fit_target(cfg.fit_spec(), table, target, source=source_table)
            for target in cfg.samples.targets
        }
        timings["train"] = time.perf_counter() - t

        t = time.perf_counter()
        models = {k: _target_model(f, accelerated=True) for k, f in fitted.items()}
        accum, calibration = None, None
        if cfg.accumulation is not None and cfg.accumulation.calibrate and cfg.risk is not None:
            accum = AccumulationPlan(
                cfg,
                inputs.grid,
                dem_on_grid(inputs.dem if cfg.accumulation.erosion is not None else None),
                dict(plan_risk(cfg.risk, list(models)).screening),
                list(models),
            )
            c0, c1, X, xy, used, left_out = _two_surveys(cfg, table, features, source_table)
            calibration = accum.calibrate(c0, c1, X, xy, used, seed=cfg.validation.seed)
            for block in calibration.values():
                block["samples_left_out"] = left_out
        maps, risk_report, outputs = _write_maps(
            cfg,
            inputs,
            cube,
            models,
            label=cfg.model.name,
            points_xy=table.xy,
            progress=progress,
            accum=accum,
        )
        if calibration is not None and risk_report is not None:
            risk_report["accumulation"]["calibration"] = calibration
        timings["predict"] = time.perf_counter() - t

    samples = pd.DataFrame({"x": table.xy[:, 0], "y": table.xy[:, 1]}, index=table.X.index)
    samples = pd.concat([samples] + [f.samples for f in fitted.values()], axis=1)
    # The fitted estimators, not the accelerated copies: geohm predict accelerates them
    # again on load (or keeps scikit-learn's predict where the kernel was not built);
    # io.models.save_model refuses a compiled forest.
    saved = {k: _target_model(f, accelerated=False) for k, f in fitted.items()}
    outputs += _write_samples_and_model(
        cfg, samples, features, saved, {k: f.report["train_mean"] for k, f in fitted.items()}
    )
    timings["total"] = time.perf_counter() - t0
    report = _scene_report(cfg, inputs, features, table, n_points, timings)
    report["targets"] = {k: {**f.report, **maps[k]} for k, f in fitted.items()}
    _list_outliers(report["samples"], {k: f.report["outliers_removed"] for k, f in fitted.items()})
    if risk_report is not None:
        report["risk"] = risk_report
        for key in ("zones", "next_samples", "accumulation"):  # the report's own sections
            if key in risk_report:
                report[key] = risk_report.pop(key)
    if source_info:
        _list_outliers(
            source_info,
            {k: f.report.get("source", {}).get("outliers_removed", []) for k, f in fitted.items()},
        )
        report["source_samples"] = source_info
    elif cfg.source is not None:
        report["notes"] = [
            f"source: block given; model '{cfg.model.name}' uses the target year only"
        ]
    estimators = {k: f.estimator for k, f in fitted.items()}
    return _finish_report(cfg, report, outputs, inputs=inputs, estimators=estimators)


def _classifier_maps(cfg: SceneConfig) -> dict[str, Any]:
    """The layers of a classifier job: P(contaminated) and its two classes."""
    return {
        "target_layers": {
            "contamination": _Layer(
                "contamination_probability", "probability that the soil is contaminated", "1"
            )
        },
        "plan": probability_class_plan(
            "contamination",
            "contamination_class",
            "soil contamination class",
            cfg.classification.probability,
        ),
    }


class _Probability:
    """Adapter: a fitted classifier whose ``predict`` is P(contaminated), for the tile loop."""

    def __init__(self, classifier: Any) -> None:
        self.classifier = classifier

    def predict(self, X: np.ndarray) -> np.ndarray:
        from geohm.models.classify import contamination_probability

        return contamination_probability(self.classifier, X)


def _run_classifier(
    cfg: SceneConfig,
    inputs: SceneInputs,
    cube: xr.DataArray,
    features: list[str],
    table: SampleTable,
    n_points: int,
    timings: dict[str, float],
    t0: float,
    progress: Progress | None,
) -> RunResult:
    """Seed 001's contamination classifiers: labels, repeated stratified CV, class maps."""
    limits = cfg.classification.limits
    if limits is None:
        assert cfg.risk is not None and isinstance(cfg.risk.ph, float)
        plan = plan_risk(
            cfg.risk.model_copy(update={"indices": ["single_factor"]}), list(table.y.columns)
        )
        limits = {k: v for k, v in plan.screening.items() if v is not None}
    t = time.perf_counter()
    fitted = fit_classifier(cfg.fit_spec(), table, limits)
    timings["train"] = time.perf_counter() - t
    t = time.perf_counter()
    models = {
        "contamination": TargetModel(_Probability(fitted.estimator), fitted.features, clip_min=None)
    }
    maps, _, outputs = _write_maps(
        cfg,
        inputs,
        cube,
        models,
        label=cfg.model.name,
        points_xy=table.xy,
        progress=progress,
        **_classifier_maps(cfg),
    )
    timings["predict"] = time.perf_counter() - t
    samples = pd.DataFrame(
        {"x": table.xy[:, 0], "y": table.xy[:, 1], "label": fitted.labels}, index=table.X.index
    )
    samples = pd.concat([samples, table.y], axis=1)
    outputs += _write_samples_and_model(
        cfg,
        samples,
        features,
        {"contamination": TargetModel(_Probability(fitted.estimator), fitted.features)},
    )
    timings["total"] = time.perf_counter() - t0
    report = _scene_report(cfg, inputs, features, table, n_points, timings)
    report["classification"] = {**fitted.report, **maps["contamination"]}
    estimators = {"contamination": fitted.estimator}
    return _finish_report(cfg, report, outputs, inputs=inputs, estimators=estimators)


def predict_scene(
    cfg: SceneConfig, model_path: str | Path, *, progress: Progress | None = None
) -> RunResult:
    """Map a scene with a model saved by :func:`run_scene` (``model.geohm``).

    No training happens. When the config has ``samples:``, the saved model is scored
    on all of them (an independent validation) and the scores are reported under
    ``targets.<metal>.validation``.

    Parameters
    ----------
    cfg : SceneConfig
        The scene to map (imagery, DEM, covariates, output settings).
    model_path : path-like
        A ``model.geohm`` written by :func:`run_scene`.
    progress : callable, optional
        Called as ``progress(stage, done, total)``.

    Returns
    -------
    RunResult
        The output folder, the report (concentration maps in mg/kg) and the files written.

    Raises
    ------
    GeohmError
        Unreadable model, or the scene cannot provide the features the model needs;
        :class:`~geohm.errors.OutputError` (before the model is read) when the output
        folder cannot be written or another run holds it.
    """
    with output_folder(cfg.output.dir) as folder:
        job = job_fingerprint(cfg, command="predict", inputs=[model_path])
        folder.protect(job.inputs)  # the model may lie in this folder: it stays
        result = _predict_scene(cfg, model_path, progress)
        folder.seal(result.outputs, job)
    return result


def _predict_scene(
    cfg: SceneConfig, model_path: str | Path, progress: Progress | None
) -> RunResult:
    """:func:`predict_scene` in its held output folder."""
    t0 = time.perf_counter()
    bundle = load_model(model_path)
    try:
        model_entry(str(bundle["model"]))
    except ConfigError:
        raise InputError(
            f"model file '{model_path}' holds model '{bundle['model']}', which this geohm "
            f"({__version__}) does not know; re-run geohm run with this version"
        ) from None
    train_means = {
        k: float(v["train_mean"])
        for k, v in bundle["targets"].items()
        if isinstance(v.get("train_mean"), int | float)
    }
    needed: list[str] = list(bundle["cube_features"])
    targets = bundle["targets"]
    with gdal_env():
        try:
            inputs, cube, features = build_cube(cfg, needed)
        except ConfigError as exc:
            raise ConfigError(f"the model '{model_path}' needs features {needed}: {exc}") from None
        models = {
            k: TargetModel(
                accelerate(v["estimator"]),
                v["features"],
                required=v.get("required"),
                interval=v.get("interval") if cfg.output.uncertainty else None,
                aoa=_aoa_from(model_path, k, v.get("aoa")) if cfg.output.applicability else None,
                aoa_features=v.get("aoa_features"),
                source_aoa=_aoa_from(model_path, k, v.get("source_aoa"))
                if cfg.output.applicability
                else None,
                source_aoa_features=v.get("source_aoa_features"),
            )
            for k, v in targets.items()
        }
        per_target: dict[str, Any] = {
            k: {
                "model": bundle["model"],
                # a patch model's channels, not its (2h+1)^2 columns per channel
                "features": models[k].inputs() if models[k].halo else v["features"],
            }
            for k, v in targets.items()
        }
        points_xy = None
        sample_report = None
        if cfg.samples is not None:
            halo = max((tm.halo for tm in models.values()), default=0)
            table, n_points = sample_points(cfg, inputs, cube, patch=halo)
            points_xy = table.xy
            sample_report = {
                "total": n_points,
                "used": len(table.X),
                "dropped": table.dropped_records(),
                **table.summary(),
            }
            for k, tm in models.items():
                if k in table.y.columns:
                    has = np.isfinite(table.y[k].to_numpy(dtype=float))  # left out: listed
                    rows = table.patches if tm.halo and table.patches is not None else table.X
                    X = rows.loc[has, list(tm.features)]
                    pred = np.maximum(tm.estimator.predict(X), 0.0)
                    y_obs = table.y[k].to_numpy()[has]
                    m = metrics(y_obs, pred)
                    mean = train_means.get(k)
                    per_target[k]["validation"] = m if mean is None else with_null(m, y_obs, mean)
        extra: dict[str, Any] = {}
        if model_entry(str(bundle["model"])).classifier:
            extra = _classifier_maps(cfg)
            per_target["contamination"].pop("validation", None)
        maps, risk_report, outputs = _write_maps(
            cfg,
            inputs,
            cube,
            models,
            label=bundle["model"],
            points_xy=points_xy,
            progress=progress,
            **extra,
        )
    report: dict[str, Any] = {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "versions": _versions(),
        "model_file": str(model_path),
        "model_trained_on": bundle.get("scene"),
        "inputs": inputs.description,
        "grid": _grid_report(inputs.grid),
        "features": features,
        "targets": {k: {**per_target[k], **maps[k]} for k in models},
        "timings": {"total": time.perf_counter() - t0},
    }
    if risk_report is not None:
        report["risk"] = risk_report
        for key in ("zones", "next_samples", "accumulation"):  # the report's own sections
            if key in risk_report:
                report[key] = risk_report.pop(key)
    if sample_report is not None:
        report["samples"] = sample_report
    return _finish_report(
        cfg,
        report,
        outputs,
        inputs=inputs,
        command="predict",
        model_path=model_path,
        estimators={k: v["estimator"] for k, v in targets.items()},
    )


def _aoa_from(model_path: str | Path, target: str, state: Any) -> AreaOfApplicability | None:
    """The area of applicability a model file stored for ``target`` (None: none stored)."""
    if state is None:
        return None
    try:
        return AreaOfApplicability.from_state(state)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"model file '{model_path}': the area of applicability of {target} is incomplete "
            f"({exc}); run geohm run again to rewrite the model file"
        ) from None


def _two_surveys(
    cfg: SceneConfig, table: SampleTable, features: list[str], source: SampleTable | None
) -> tuple[
    dict[str, np.ndarray],
    dict[str, np.ndarray],
    np.ndarray,
    np.ndarray,
    list[str],
    list[dict[str, str]],
]:
    """What the accumulation calibration compares, at the target year's samples.

    The source year's concentration there (a random forest fitted on the source year's
    samples, applied to the source year's imagery at the target samples), the target
    year's observed value, the target year's features and the coordinates.
    """
    from geohm.fitting import model_pipeline

    spec = source_spec(cfg)
    s_inputs, s_cube, _ = build_cube(spec, features)
    if source is None:  # not sampled yet for the model (a model that ignores the source)
        source, _ = sample_points(spec, s_inputs, s_cube)
    at_target, _ = sample_points(spec.model_copy(update={"samples": cfg.samples}), s_inputs, s_cube)
    keep = table.X.index.isin(at_target.X.index)
    left_out = [
        {"id": str(i), "reason": "no valid source-year pixel under it (see the source survey)"}
        for i in table.X.index[~keep]
    ]
    X = table.X[keep][features]
    fit = cfg.fit_spec().model_copy(
        update={
            "model": cfg.model.model_copy(update={"name": "rf", "params": {"n_estimators": 200}})
        }
    )
    c0, c1 = {}, {}
    for metal in cfg.samples.targets if cfg.samples is not None else []:
        if metal not in source.y.columns:
            continue
        has = np.isfinite(source.y[metal].to_numpy(dtype=float))
        cols = [c for c in features if c in source.X.columns]
        pipe = model_pipeline(fit, cols).fit(source.X[has][cols], source.y[metal][has])
        c0[metal] = np.asarray(pipe.predict(at_target.X.loc[X.index, cols]), dtype="float64")
        c1[metal] = table.y[metal][keep].to_numpy(dtype="float64")
    return c0, c1, X.to_numpy(dtype="float64"), table.xy[keep], features, left_out


def _target_model(fit: FittedTarget, *, accelerated: bool) -> TargetModel:
    """The prediction pass's model of a fitted target (``accelerated``: the forest kernel)."""
    return TargetModel(
        accelerate(fit.estimator) if accelerated else fit.estimator,
        fit.features,
        required=fit.required,
        interval=fit.interval,
        aoa=fit.aoa,
        aoa_features=fit.aoa_features,
        source_aoa=fit.source_aoa,
        source_aoa_features=fit.source_aoa_features,
    )

"""``run_scene``: one scene job, every step in order.

read -> cube -> sample -> train/validate -> predict tiles -> write (maps, styles,
quicklooks, report). The library never prints: progress goes to a callback and to
the ``geohm`` logger.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from geohm import __version__
from geohm.config import SceneConfig
from geohm.cube import available_features, resolve_features, stack_features
from geohm.errors import InputError, SampleError
from geohm.evaluate import cross_validate, holdout_split, metrics
from geohm.grid import Grid
from geohm.io.landsat import open_band_files, open_landsat, open_qa, qa_reasons
from geohm.io.points import read_points
from geohm.io.rasters import TileWriter, gdal_env, io_versions, open_aligned, read_overview
from geohm.io.reports import save_figure, write_csv, write_json, write_text
from geohm.io.styles import write_qml_ramp
from geohm.models import make_regressor
from geohm.predict import TargetModel, predict_map
from geohm.report import quicklook_figure, render_markdown
from geohm.sampling import SampleTable, sample_cube

__all__ = ["RunResult", "SceneInputs", "open_inputs", "run_scene"]

log = logging.getLogger("geohm")

#: Progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]

NODATA = -9999.0
CHUNK = 512


@dataclass
class SceneInputs:
    """The opened (lazy) inputs of one acquisition, all on the scene grid."""

    reflectance: xr.DataArray
    grid: Grid
    dem: xr.DataArray | None
    covariates: dict[str, xr.DataArray]
    qa_reason: Callable[[np.ndarray, np.ndarray], list[str | None]] | None
    description: dict[str, str] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a scene job produced."""

    output_dir: Path
    report: dict[str, Any]
    outputs: list[Path]


def open_inputs(spec: Any, *, chunks: int = CHUNK) -> SceneInputs:
    """Open the imagery, DEM and covariates of a scene (or ``source:``) block, lazily.

    The DEM and covariates are warped onto the Landsat grid: bilinear for continuous
    layers, nearest for categorical ones, nodata masked before resampling.
    """
    description: dict[str, str] = {}
    if spec.landsat is not None:
        refl = open_landsat(spec.landsat, mask=tuple(spec.qa_mask), chunks=chunks)
        description["landsat"] = f"{spec.landsat} ({refl.attrs.get('product_id', '?')})"
    elif spec.bands is not None:
        refl = open_band_files(
            spec.bands, scale=spec.band_scale, offset=spec.band_offset, chunks=chunks
        )
        description["bands"] = ", ".join(f"{k}={v}" for k, v in spec.bands.items())
    else:
        raise InputError("the scene has no imagery: give 'landsat' or 'bands'")
    grid = Grid.of(refl)
    dem = None
    if spec.dem is not None:
        dem = open_aligned(spec.dem, grid, resampling="bilinear", chunks=chunks, what="DEM")
        description["dem"] = str(spec.dem)
    covariates = {}
    for name, cov in spec.covariates.items():
        covariates[name] = open_aligned(
            cov.path,
            grid,
            resampling="nearest" if cov.categorical else "bilinear",
            chunks=chunks,
            what=f"covariate '{name}'",
        )
        description[f"covariate {name}"] = f"{cov.path}{' (categorical)' if cov.categorical else ''}"

    reason = None
    if spec.landsat is not None and spec.qa_mask:
        qa = open_qa(spec.landsat, chunks=chunks)
        mask_names = tuple(spec.qa_mask)

        def reason(rows: np.ndarray, cols: np.ndarray) -> list[str | None]:
            # QA_PIXEL values under the points tell *why* a pixel is masked.
            r = xr.DataArray(rows, dims="point")
            c = xr.DataArray(cols, dims="point")
            return qa_reasons(qa.isel(y=r, x=c).values, mask_names)

    return SceneInputs(refl, grid, dem, covariates, reason, description)


def _sample(spec: Any, inputs: SceneInputs, cube: xr.DataArray) -> tuple[SampleTable, int]:
    """Read the sample points of ``spec.samples`` and take the cube's features there."""
    s = spec.samples
    points = read_points(s.path, x=s.x, y=s.y, crs=s.crs, layer=s.layer)
    id_col = s.id if s.id is not None else ("id" if "id" in points.columns else None)
    table = sample_cube(
        cube,
        points,
        targets=spec.samples.targets,
        id_column=id_col,
        window=spec.samples.window,
        mask_reason=inputs.qa_reason,
    )
    return table, len(points)


def _fit_target(
    cfg: SceneConfig, table: SampleTable, target: str
) -> tuple[Any, dict[str, Any], pd.DataFrame]:
    """Split, fit, test and cross-validate one target; return the map model and report."""
    X = table.X.to_numpy()
    y = table.y[target].to_numpy()
    val = cfg.validation
    train, test = holdout_split(len(y), test_fraction=val.test_fraction, seed=val.seed)
    if len(train) < 5:
        raise SampleError(
            f"only {len(train)} usable training samples for {target}; geohm needs at least 5 "
            "(see the dropped points in the report, or lower validation.test_fraction)"
        )
    model = make_regressor(cfg.model.name, cfg.model.params, random_state=val.seed)
    model.fit(X[train], y[train])
    out: dict[str, Any] = {"model": cfg.model.name, "features": list(table.X.columns)}
    table_out = pd.DataFrame(index=table.X.index)
    table_out["x"], table_out["y"] = table.xy[:, 0], table.xy[:, 1]
    table_out[f"{target}_observed"] = y
    table_out[f"{target}_split"] = "train"
    table_out.iloc[test, table_out.columns.get_loc(f"{target}_split")] = "test"
    if len(test):
        pred = np.maximum(model.predict(X[test]), 0.0)
        out["test"] = metrics(y[test], pred)
        table_out.loc[table_out.index[test], f"{target}_test_predicted"] = pred
    else:
        out["test"] = None
    if val.cv_folds >= 2 and len(train) >= val.cv_folds:
        cv = cross_validate(model, X[train], y[train], folds=val.cv_folds, seed=val.seed)
        oof = cv.pop("predictions")
        out["cv"] = cv
        table_out.loc[table_out.index[train], f"{target}_cv_predicted"] = oof
    else:
        out["cv"] = None
    out["n_train"] = int(len(train))
    return model, out, table_out


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
        band or key.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    out_dir = Path(cfg.output.dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with gdal_env():
        inputs = open_inputs(cfg)
        bands = [str(b) for b in inputs.reflectance["band"].values]
        available = available_features(
            bands, has_dem=inputs.dem is not None, covariates=list(inputs.covariates)
        )
        features = resolve_features(cfg.features, available)
        cube = stack_features(
            inputs.reflectance, features, dem=inputs.dem, covariates=inputs.covariates
        )
        timings["open"] = time.perf_counter() - t0

        t = time.perf_counter()
        table, n_points = _sample(cfg, inputs, cube)
        timings["sample"] = time.perf_counter() - t
        log.info("%d of %d sample points usable", len(table.X), n_points)

        t = time.perf_counter()
        targets_report: dict[str, Any] = {}
        models: dict[str, TargetModel] = {}
        sample_tables = []
        for target in cfg.samples.targets:
            model, rep, tab = _fit_target(cfg, table, target)
            models[target] = TargetModel(model, features)
            targets_report[target] = rep
            sample_tables.append(tab if not sample_tables else tab.drop(columns=["x", "y"]))
        timings["train"] = time.perf_counter() - t

        t = time.perf_counter()
        outputs: list[Path] = []
        writers = {
            target: TileWriter(
                out_dir / f"{target}_concentration.tif",
                inputs.grid,
                dtype="float32",
                nodata=NODATA,
                descriptions=[f"{target} concentration"],
                units="mg/kg",
                tags={"geohm_version": __version__, "target": target, "model": cfg.model.name,
                      "scene": cfg.name},
            )
            for target in models
        }
        try:
            stats = predict_map(
                cube,
                models,
                writers,
                tile=cfg.output.tile,
                progress=(lambda d, n: progress("predict", d, n)) if progress else None,
            )
        except BaseException:
            for w in writers.values():
                w.abort()
            raise
        for w in writers.values():
            outputs.append(w.close())
        timings["predict"] = time.perf_counter() - t

    t = time.perf_counter()
    for target, path in zip(models, list(outputs), strict=True):
        targets_report[target]["map_stats"] = stats[target].as_dict()
        arr, extent = read_overview(path, max_size=800)
        finite = arr[np.isfinite(arr)]
        vmin, vmax = (float(np.percentile(finite, 2)), float(np.percentile(finite, 98))) \
            if finite.size else (0.0, 1.0)
        outputs.append(write_qml_ramp(path.with_suffix(".qml"), vmin=vmin, vmax=vmax,
                                      units="mg/kg"))
        if cfg.output.quicklooks:
            fig = quicklook_figure(arr, extent, title=f"{cfg.name}: {target} (mg/kg)",
                                   units=f"{target} (mg/kg)", vmin=vmin, vmax=vmax,
                                   points=table.xy)
            png = save_figure(fig, out_dir / f"{target}_concentration.png")
            outputs.append(png)
            targets_report[target]["quicklook"] = png.name
    outputs.append(write_csv(out_dir / "samples.csv", pd.concat(sample_tables, axis=1)))
    timings["styles_quicklooks"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    report: dict[str, Any] = {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "versions": _versions(),
        "inputs": inputs.description,
        "grid": {
            "crs": inputs.grid.crs,
            "transform": list(inputs.grid.transform)[:6],
            "width": inputs.grid.width,
            "height": inputs.grid.height,
        },
        "features": features,
        "samples": {
            "total": n_points,
            "used": len(table.X),
            "dropped": table.dropped_records(),
        },
        "targets": targets_report,
        "timings": timings,
    }
    if cfg.source is not None:
        report["notes"] = [f"source: block given; model '{cfg.model.name}' uses the target year only"]
    report_paths = [out_dir / "report.json", out_dir / "report.md"]
    report["outputs"] = sorted(p.name for p in outputs + report_paths)
    write_json(report_paths[0], report)
    write_text(report_paths[1], render_markdown(report))
    return RunResult(out_dir, report, outputs + report_paths)


def _versions() -> dict[str, str]:
    import sklearn

    return {
        "geohm": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "xarray": xr.__version__,
        "scikit-learn": sklearn.__version__,
        **io_versions(),
    }

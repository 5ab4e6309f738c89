"""The outputs of a scene job: maps tile by tile, styles, quicklooks, samples, model, report."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from geohm._system import usable_cpus
from geohm._version import __version__
from geohm.config import SceneConfig
from geohm.grid import Grid
from geohm.io.models import MODEL_FILE, save_model
from geohm.io.outdir import held_folder
from geohm.io.provenance import config_sha256
from geohm.io.rasters import (
    TileWriter,
    io_versions,
    read_overview,
)
from geohm.io.reports import save_figure, write_csv, write_json, write_text
from geohm.io.styles import AOA_CLASSES, write_qml_paletted, write_qml_ramp
from geohm.models.ensemble import has_members
from geohm.pipeline.accumulation import AccumulationPlan, dem_on_grid
from geohm.pipeline.common import CHUNK, NODATA, Progress
from geohm.pipeline.inputs import SceneInputs, window_source
from geohm.pipeline.provenance import PROVENANCE_NAMES, write_provenance
from geohm.pipeline.trust import TrustMaps
from geohm.predict import CLASS_NODATA, TargetModel, predict_map, window_size
from geohm.report import class_figure, drivers_figure, quicklook_figure, render_markdown
from geohm.riskmaps import (
    RiskPlan,
    plan_risk,
)
from geohm.sampling import SampleTable


@dataclass
class RunResult:
    """What a scene job produced."""

    output_dir: Path
    report: dict[str, Any]
    outputs: list[Path]


@dataclass(frozen=True)
class _Layer:
    """An output raster of the prediction pass."""

    name: str  # file stem
    description: str
    units: str
    classes: list[tuple[int, str, str]] | None = None  # class rasters: (code, label, colour)


def _open_writer(cfg: SceneConfig, grid: Grid, layer: _Layer, label: str) -> TileWriter:
    out_dir = Path(cfg.output.dir)
    tags = {
        "geohm_version": __version__,
        "model": label,
        "scene": cfg.name,
        "config_sha256": config_sha256(cfg),
    }
    if layer.classes is None:
        return TileWriter(
            out_dir / f"{layer.name}.tif",
            grid,
            dtype="float32",
            nodata=NODATA,
            descriptions=[layer.description],
            units=layer.units,
            tags=tags,
        )
    tags.update({f"CLASS_{code}": text for code, text, _ in layer.classes})
    colormap = {code: (*_rgb(color), 255) for code, _, color in layer.classes}
    colormap[CLASS_NODATA] = (0, 0, 0, 0)
    return TileWriter(
        out_dir / f"{layer.name}.tif",
        grid,
        dtype="uint8",
        nodata=CLASS_NODATA,
        descriptions=[layer.description],
        units=layer.units,
        tags=tags,
        colormap=colormap,
        categories={**{code: text for code, text, _ in layer.classes}, CLASS_NODATA: "nodata"},
        overview_resampling="nearest",
    )


def _layer_info(
    cfg: SceneConfig,
    layer: _Layer,
    path: Path,
    png: str | None,
    stats: dict[str, Any],
    names: dict[str, str],
) -> dict[str, Any]:
    """report.json entry of one written layer: statistics or class area fractions."""
    st = stats[names.get(layer.name, layer.name)].as_dict()
    info: dict[str, Any] = {"file": path.name}
    if layer.classes is not None:
        counts = st.get("class_pixels", {})
        total = sum(counts.values()) or 1
        info["class_area_fraction"] = {
            text: counts.get(str(code), 0) / total for code, text, _ in layer.classes
        }
        if layer.name.endswith("_aoa"):  # <t>_aoa, <t>_source_aoa
            info["class_pixels"] = {t: counts.get(str(c), 0) for c, t, _ in layer.classes}
    else:
        info["map_stats"] = st
        if layer.name in names and st["pixels"]:
            target = names[layer.name]
            edges = cfg.output.bins.get(target) or _nice_edges(st["min"], st["max"])
            info["area_by_concentration"] = stats[target].bin_fractions(edges)
    if png:
        info["quicklook"] = png
    return info


def _nice_edges(vmin: float, vmax: float) -> list[float]:
    """About five round-numbered intervals covering [vmin, vmax] (like seed 002's Table 7)."""
    from matplotlib.ticker import MaxNLocator

    ticks = MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
    return (
        [float(t) for t in ticks if t >= 0]
        if ticks[0] >= 0
        else [0.0] + [float(t) for t in ticks if t > 0]
    )


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return (int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16))


def _style_and_quicklook(
    cfg: SceneConfig, layer: _Layer, path: Path, points_xy: np.ndarray | None
) -> tuple[list[Path], str | None]:
    """QGIS style beside the GeoTIFF and (optionally) a quicklook PNG."""
    arr, extent = read_overview(path, max_size=800)
    outputs: list[Path] = []
    title = f"{cfg.name}: {layer.description}"
    if layer.classes is not None:
        outputs.append(write_qml_paletted(path.with_suffix(".qml"), layer.classes))
        fig = (
            class_figure(arr, extent, title=title, classes=layer.classes, points=points_xy)
            if cfg.output.quicklooks
            else None
        )
    else:
        finite = arr[np.isfinite(arr)]
        vmin, vmax = (
            (float(np.percentile(finite, 2)), float(np.percentile(finite, 98)))
            if finite.size
            else (0.0, 1.0)
        )
        units = "" if layer.units == "1" else layer.units
        outputs.append(write_qml_ramp(path.with_suffix(".qml"), vmin=vmin, vmax=vmax, units=units))
        fig = (
            quicklook_figure(
                arr,
                extent,
                title=title,
                units=units or layer.description,
                vmin=vmin,
                vmax=vmax,
                points=points_xy,
            )
            if cfg.output.quicklooks
            else None
        )
    if fig is None:
        return outputs, None
    png = save_figure(fig, path.with_suffix(".png"))
    return [*outputs, png], png.name


def _write_maps(
    cfg: SceneConfig,
    inputs: SceneInputs,
    cube: xr.DataArray,
    models: dict[str, TargetModel],
    *,
    label: str,
    points_xy: np.ndarray | None,
    progress: Progress | None,
    target_layers: dict[str, _Layer] | None = None,
    plan: Any = None,
    accum: AccumulationPlan | None = None,
) -> tuple[dict[str, Any], dict[str, Any] | None, list[Path]]:
    """Predict every target tile by tile and write the maps.

    The risk layers are derived in the same pass; GeoTIFFs, QGIS styles and quicklooks
    are written.

    Returns per-target info, the risk report (or None) and the files written.
    """
    folder = held_folder(cfg.output.dir)
    if folder is not None:  # the first output of the run: the earlier run's go now
        folder.clear_previous()
    if target_layers is None:
        target_layers = {
            t: _Layer(f"{t}_concentration", f"{t} concentration", "mg/kg") for t in models
        }
    if plan is None and cfg.risk is not None:
        plan = plan_risk(
            cfg.risk,
            list(models),
            [t for t, m in models.items() if has_members(m.estimator) or m.interval is not None],
        )
    layers = _output_layers(cfg, models, target_layers, plan)
    if accum is None and cfg.accumulation is not None and isinstance(plan, RiskPlan):
        accum = AccumulationPlan(
            cfg,
            inputs.grid,
            dem_on_grid(inputs.dem if cfg.accumulation.erosion is not None else None),
            dict(plan.screening),
            list(models),
        )
        if cfg.accumulation.calibrate:
            accum.notes.append(
                "calibrate: not applied (geohm predict has no samples of the two surveys)"
            )
    if accum is not None:
        layers += [_Layer(*spec) for spec in accum.layers()]
    trust = TrustMaps(cfg, inputs.grid, models, plan) if isinstance(plan, RiskPlan) else None
    if trust is None and (cfg.zones is not None or cfg.sampling_design is not None):
        trust = TrustMaps(cfg, inputs.grid, models, None)  # raises: no exceedance map
    names = {target_layers[t].name: t for t in models}
    source = window_source(
        inputs,
        [str(f) for f in cube["feature"].values],
        cfg.risk if isinstance(plan, RiskPlan) else None,
        assume_crs=getattr(cfg, "assume_crs", None),
    )
    workers = cfg.output.workers or usable_cpus()
    # Windows are multiples of the dask chunk (the input block): a window that straddles
    # chunks reads them more than once.
    tile = cfg.output.tile or window_size(
        len(source.features), workers=workers, memory_mb=cfg.output.memory_mb, block=CHUNK
    )
    writers: dict[str, TileWriter] = {}
    outputs: list[Path] = []
    per_layer: dict[str, Any] = {}
    try:  # whatever fails, no scratch file or open GDAL handle is left behind
        for layer in layers:
            writers[layer.name] = _open_writer(cfg, inputs.grid, layer, label)
        stats = predict_map(
            source,
            models,
            {names.get(k, k): w for k, w in writers.items()},
            tile=tile,
            progress=(lambda d, n: progress("predict", d, n)) if progress else None,
            derive=plan.derive if plan is not None else None,
            workers=workers,
            thresholds=plan.exceedance_thresholds if isinstance(plan, RiskPlan) else None,
            on_window=trust.on_window if trust is not None and trust.active else None,
            bounds=trust is not None and trust.active,
            derive_window=accum.derive_window if accum is not None else None,
        )
        for layer in layers:
            path = writers[layer.name].close()
            outputs.append(path)
            files, png = _style_and_quicklook(cfg, layer, path, points_xy)
            outputs += files
            per_layer[layer.name] = _layer_info(cfg, layer, path, png, stats, names)
        if trust is not None and trust.active:
            trust_report, files = trust.finish(points_xy)
            outputs += files
    finally:
        source.close()
        for w in writers.values():
            w.abort()  # no-op for the writers already published
    accum_report = None
    if accum is not None:
        names_acc = [spec[0] for spec in accum.layers()]
        accum_report = accum.report(per_layer, stats)
        accum_report["layers"] = {n: per_layer.pop(n) for n in names_acc if n in per_layer}
    per_target = _target_info(models, target_layers, per_layer)
    risk_report = _risk_report(cfg, plan, per_layer) if isinstance(plan, RiskPlan) else None
    if risk_report is not None and trust is not None and trust.active:
        risk_report.update(trust_report)
    if risk_report is not None and accum_report is not None:
        risk_report["accumulation"] = accum_report
    return per_target, risk_report, outputs


def _output_layers(
    cfg: SceneConfig,
    models: dict[str, TargetModel],
    target_layers: dict[str, _Layer],
    plan: Any,
) -> list[_Layer]:
    """The rasters of a prediction pass: concentrations, interval widths, risk layers."""
    layers = [target_layers[t] for t in models]
    for t, m in models.items():
        if m.interval is not None:
            coverage = getattr(m.interval, "coverage", cfg.validation.interval_coverage)
            layers.append(
                _Layer(
                    f"{t}_uncertainty",
                    f"{t} {float(coverage):.0%} prediction interval width",
                    "mg/kg",
                )
            )
    for t, m in models.items():
        if m.aoa is not None:
            di_text = f"{t} dissimilarity index (area of applicability)"
            layers.append(_Layer(f"{t}_di", di_text, "1"))
            layers.append(_Layer(f"{t}_aoa", f"{t} area of applicability", "1", list(AOA_CLASSES)))
        if m.source_aoa is not None:
            text = f"{t} inside the source year's area of applicability (covariate shift)"
            layers.append(_Layer(f"{t}_source_aoa", text, "1", list(AOA_CLASSES)))
    for rl in plan.layers if plan is not None else []:
        aoa = any(m.aoa is not None for m in models.values())
        classes = None
        if rl.grading is not None:
            classes = (
                plan.layer_classes(rl, aoa) if isinstance(plan, RiskPlan) else rl.grading.classes()
            )
        layers.append(_Layer(rl.name, rl.description, rl.units, classes))
    return layers


def _target_info(
    models: dict[str, TargetModel],
    target_layers: dict[str, _Layer],
    per_layer: dict[str, Any],
) -> dict[str, Any]:
    """report.json entries of each target's maps (taken out of ``per_layer``)."""
    per_target = {}
    for t, m in models.items():
        info = dict(per_layer.pop(target_layers[t].name))
        if m.interval is not None:
            info["uncertainty_map"] = per_layer.pop(f"{t}_uncertainty")
        if m.aoa is not None:
            info["aoa_map"] = _aoa_map(per_layer.pop(f"{t}_di"), per_layer.pop(f"{t}_aoa"))
        if m.source_aoa is not None:
            src = per_layer.pop(f"{t}_source_aoa")
            fractions = src.get("class_area_fraction", {})
            info.setdefault("aoa_map", {})["source"] = {
                "file": src["file"],
                "share_outside": fractions.get(AOA_CLASSES[0][1]),
            }
        if f"{t}_risk" in per_layer:
            info["class_area_fraction"] = per_layer[f"{t}_risk"]["class_area_fraction"]
        per_target[t] = info
    return per_target


def _aoa_map(di: dict[str, Any], aoa: dict[str, Any]) -> dict[str, Any]:
    """report.json's ``aoa_map`` of a target: its files and the share of the map inside."""
    share = aoa.get("class_area_fraction", {})
    pixels = aoa.get("class_pixels", {})
    outside, inside = (label for _, label, _ in AOA_CLASSES)
    return {
        "di_file": di["file"],
        "aoa_file": aoa["file"],
        "share_inside": share.get(inside),
        "pixels_inside": pixels.get(inside, 0),
        "pixels_outside": pixels.get(outside, 0),
        "di_stats": di.get("map_stats"),
        **({"quicklook": aoa["quicklook"]} if "quicklook" in aoa else {}),
    }


def _risk_report(cfg: SceneConfig, plan: RiskPlan, per_layer: dict[str, Any]) -> dict[str, Any]:
    """report.json's ``risk`` block: the standard, land use, pH, values and layers."""
    risk = cfg.risk
    assert risk is not None
    return {
        "standard": risk.standard if risk.user_standard is None else "user",
        "land_use": risk.land_use
        if isinstance(risk.land_use, str)
        else {"path": str(risk.land_use.path), "classes": risk.land_use.classes},
        "ph": risk.ph if isinstance(risk.ph, float) else str(risk.ph),
        "screening_values_mg_kg": plan.screening,
        "layers": per_layer,
        "notes": plan.notes,
    }


def _finish_report(
    cfg: SceneConfig,
    report: dict[str, Any],
    outputs: list[Path],
    *,
    inputs: SceneInputs | None = None,
    command: str = "run",
    model_path: str | Path | None = None,
    estimators: dict[str, Any] | None = None,
) -> RunResult:
    """report.json, report.md, then the provenance files (run.json, the STAC Item)."""
    out_dir = Path(cfg.output.dir)
    report_paths = [out_dir / "report.json", out_dir / "report.md"]
    for t, rep in (report.get("targets") or {}).items():  # what drives each model
        fig = (
            drivers_figure(rep, title=f"{cfg.name}: what drives {t}")
            if cfg.output.quicklooks
            else None
        )
        if fig is not None:
            png = save_figure(fig, out_dir / f"{t}_drivers.png")
            rep["drivers_figure"] = png.name
            outputs = [*outputs, png]
    report["outputs"] = sorted([*(p.name for p in outputs + report_paths), *PROVENANCE_NAMES])
    folder = held_folder(out_dir)
    if folder is not None and folder.report_note():
        report["output_folder"] = folder.report_note()
    write_json(report_paths[0], report)
    write_text(report_paths[1], render_markdown(report))
    refl = inputs.reflectance if inputs is not None else None
    provenance = write_provenance(
        cfg,
        report,
        outputs + report_paths,
        command=command,
        model_path=model_path,
        acquired=(refl.attrs.get("date_acquired") or None) if refl is not None else None,
        estimators=estimators,
    )
    return RunResult(out_dir, report, outputs + report_paths + provenance)


def _write_samples_and_model(
    cfg: SceneConfig,
    samples: pd.DataFrame,
    features: list[str],
    targets: dict[str, TargetModel],
    train_means: dict[str, float] | None = None,
) -> list[Path]:
    """samples.csv and the model bundle (model.geohm) for ``geohm predict``.

    ``train_means`` (mg/kg per target) is the flat map a later validation's skill is
    measured against.
    """
    out_dir = Path(cfg.output.dir)
    bundle = {
        "geohm_version": __version__,
        "scene": cfg.name,
        "model": cfg.model.name,
        "cube_features": features,
        "targets": {
            k: {
                "estimator": tm.estimator,
                "features": list(tm.features),
                "required": None if tm.required is None else list(tm.required),
                "interval": tm.interval,
                "train_mean": (train_means or {}).get(k),
                # plain arrays and numbers: no geohm type in the model file
                "aoa": None if tm.aoa is None else tm.aoa.to_state(),
                "aoa_features": None if tm.aoa_features is None else list(tm.aoa_features),
                "source_aoa": None if tm.source_aoa is None else tm.source_aoa.to_state(),
                "source_aoa_features": None
                if tm.source_aoa_features is None
                else list(tm.source_aoa_features),
            }
            for k, tm in targets.items()
        },
    }
    return [
        write_csv(out_dir / "samples.csv", samples),
        save_model(out_dir / MODEL_FILE, bundle),
    ]


def _scene_report(
    cfg: SceneConfig,
    inputs: SceneInputs,
    features: list[str],
    table: SampleTable,
    n_points: int,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The parts of report.json every scene job has."""
    return {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "versions": _versions(),
        "inputs": inputs.description,
        "grid": _grid_report(inputs.grid),
        "features": features,
        "samples": {
            "total": n_points,
            "used": len(table.X),
            "dropped": table.dropped_records(),
            **table.summary(),
        },
        "targets": {},
        "timings": timings,
    }


def _list_outliers(samples: dict[str, Any], removed: dict[str, list[str]]) -> None:
    """Add the samples left out of a target as IQR outliers to the report's sample list."""
    per = samples.get("per_target", {})
    for target, ids in removed.items():
        for i in ids:
            samples["dropped"].append(
                {"id": i, "target": target, "reason": "outlier (preprocess.outliers: iqr)"}
            )
        if target in per and ids:
            per[target]["outliers"] = len(ids)
            per[target]["used"] -= len(ids)
            per[target]["left_out"] += len(ids)


def _grid_report(grid: Grid) -> dict[str, Any]:
    return {
        "crs": grid.crs,
        "transform": list(grid.transform)[:6],
        "width": grid.width,
        "height": grid.height,
    }


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

"""``run_scene``: one scene job, every step in order.

read -> cube -> sample -> train/validate -> predict tiles -> write (maps, styles,
quicklooks, report). The library never prints: progress goes to a callback and to
the ``geohm`` logger.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS

from geohm._system import usable_cpus
from geohm._version import __version__
from geohm.config import SceneConfig, load_config
from geohm.cube import (
    COORDINATE_FEATURES,
    WindowSource,
    available_features,
    band_wavelengths,
    resolve_features,
    stack_features,
    wavelength_feature,
)
from geohm.errors import ConfigError, GridError, InputError, NoDataError, SampleError
from geohm.evaluate import metrics, with_null
from geohm.grid import Grid
from geohm.io.landsat import open_band_files, open_landsat, open_qa, qa_reasons
from geohm.io.models import MODEL_FILE, load_model, save_model
from geohm.io.outdir import compare_locked, held_folder, job_fingerprint, output_folder
from geohm.io.points import read_points
from geohm.io.rasters import (
    TileWriter,
    band_metadata,
    gdal_env,
    io_versions,
    open_aligned_bands,
    raster_grid,
    read_overview,
)
from geohm.io.reading import AlignedRaster
from geohm.io.reports import save_figure, write_csv, write_json, write_text
from geohm.io.styles import write_qml_paletted, write_qml_ramp
from geohm.models import model_entry
from geohm.models.compiled import accelerate
from geohm.models.ensemble import has_members
from geohm.predict import CLASS_NODATA, TargetModel, predict_map, window_size
from geohm.report import class_figure, quicklook_figure, render_markdown
from geohm.riskmaps import (
    LAND_USE_LAYER,
    PH_LAYER,
    RiskPlan,
    plan_risk,
    probability_class_plan,
)
from geohm.sampling import SampleTable, sample_cube
from geohm.training import (
    check_model_config,
    fit_classifier,
    fit_target,
    uses_source,
    wants_coordinates,
)

__all__ = [
    "RunResult",
    "SceneInputs",
    "build_cube",
    "open_inputs",
    "predict_scene",
    "run_scene",
    "sample_points",
    "source_spec",
    "window_source",
]

log = logging.getLogger("geohm")

#: Progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]

NODATA = -9999.0
CHUNK = 512


@dataclass
class SceneInputs:
    """The opened (lazy) inputs of one acquisition, all on the scene grid."""

    reflectance: xr.DataArray | None  # None: a scene of covariates only
    grid: Grid
    dem: xr.DataArray | None
    covariates: dict[str, xr.DataArray]
    qa_reason: Callable[[np.ndarray, np.ndarray], list[str | None]] | None
    description: dict[str, str] = field(default_factory=dict)
    #: The tile readers behind ``dem`` (key None) and the single-band covariates: the
    #: window source reads them directly, with the numbers of the lazy layers.
    readers: dict[str | None, AlignedRaster] = field(default_factory=dict)


@dataclass
class RunResult:
    """What a scene job produced."""

    output_dir: Path
    report: dict[str, Any]
    outputs: list[Path]


def open_inputs(spec: Any, *, chunks: int = CHUNK) -> SceneInputs:
    """Open the imagery, DEM and covariates of a scene (or ``source:``) block, lazily.

    The DEM and covariates are warped onto the Landsat grid: bilinear for continuous
    layers, nearest for categorical ones, nodata masked before resampling. A scene
    without imagery is mapped on the grid of ``grid:``, of its hyperspectral raster or
    of its first covariate. The bands of a ``hyperspectral:`` raster join the
    covariates as ``wl_<wavelength>`` layers (bilinear), in wavelength order.
    """
    description: dict[str, str] = {}
    refl: xr.DataArray | None = None
    assume_crs = getattr(spec, "assume_crs", None)
    hyper = getattr(spec, "hyperspectral", None)
    if spec.landsat is not None:
        refl = open_landsat(spec.landsat, mask=tuple(spec.qa_mask), chunks=chunks)
        description["landsat"] = f"{spec.landsat} ({refl.attrs.get('product_id', '?')})"
    elif spec.bands is not None:
        refl = open_band_files(
            spec.bands, scale=spec.band_scale, offset=spec.band_offset, chunks=chunks
        )
        description["bands"] = ", ".join(f"{k}={v}" for k, v in spec.bands.items())
    if refl is not None:
        grid = Grid.of(refl)
    elif getattr(spec, "grid", None) is not None:
        grid = raster_grid(spec.grid, what="grid", assume_crs=assume_crs)
        description["grid"] = str(spec.grid)
    elif hyper is not None:
        grid = raster_grid(hyper.path, what="hyperspectral raster", assume_crs=assume_crs)
        description["grid"] = "hyperspectral raster"
    elif spec.covariates:
        name, first = next(iter(spec.covariates.items()))
        grid = raster_grid(first.path, what=f"covariate '{name}'", assume_crs=assume_crs)
        description["grid"] = f"covariate '{name}'"
    else:
        raise InputError(
            "the scene has no imagery and no covariates: give 'landsat', 'bands' or 'hyperspectral'"
        )
    dem = None
    covariates = {}
    readers: dict[str | None, AlignedRaster] = {}
    for name, path, resampling, what in _static_layers(spec):
        readers[name] = AlignedRaster(
            path, grid, resampling=resampling, tile=chunks, what=what, assume_crs=assume_crs
        )
        layer = readers[name].lazy()
        if name is None:
            dem = layer
            description["dem"] = str(path)
        else:
            covariates[name] = layer
            categorical = " (categorical)" if resampling == "nearest" else ""
            description[f"covariate {name}"] = f"{path}{categorical}"
    if hyper is not None:
        # The bands, named wl_<wavelength>, in increasing wavelength order: bilinear and
        # nodata-masked like a continuous covariate, all from one warped VRT.
        wavelengths = band_wavelengths(
            band_metadata(hyper.path, what="hyperspectral raster"),
            hyper.wavelengths,
            unit=hyper.unit,
            what=f"hyperspectral raster '{hyper.path}'",
        )
        stack = open_aligned_bands(
            hyper.path,
            grid,
            resampling="bilinear",
            chunks=chunks,
            what="hyperspectral raster",
            assume_crs=assume_crs,
        )
        for i in sorted(range(len(wavelengths)), key=lambda k: wavelengths[k]):
            covariates[wavelength_feature(wavelengths[i])] = stack.isel(band=i, drop=True)
        description["hyperspectral"] = f"{hyper.path} ({len(wavelengths)} bands, {hyper.unit})"

    reason = None
    if spec.landsat is not None and spec.qa_mask:
        qa = open_qa(spec.landsat, chunks=chunks)
        mask_names = tuple(spec.qa_mask)

        def reason(rows: np.ndarray, cols: np.ndarray) -> list[str | None]:
            # QA_PIXEL values under the points tell *why* a pixel is masked.
            r = xr.DataArray(rows, dims="point")
            c = xr.DataArray(cols, dims="point")
            return qa_reasons(qa.isel(y=r, x=c).values, mask_names)

    return SceneInputs(refl, grid, dem, covariates, reason, description, readers)


def sample_points(spec: Any, inputs: SceneInputs, cube: xr.DataArray) -> tuple[SampleTable, int]:
    """Read the sample points of ``spec.samples`` and take the cube's features there.

    The features come from the window source of the prediction pass
    (:func:`window_source`), so a sample's feature vector is the one its pixel has in
    the map, bit for bit.
    """
    s = spec.samples
    points = read_points(s.path, x=s.x, y=s.y, crs=s.crs, layer=s.layer)
    id_col = s.id if s.id is not None else ("id" if "id" in points.columns else None)
    try:
        with window_source(inputs, [str(f) for f in cube["feature"].values]) as source:
            table = sample_cube(
                source,
            points,
                targets=spec.samples.targets,
                id_column=id_col,
                window=spec.samples.window,
                mask_reason=inputs.qa_reason,
                censored=s.censored,
                detection_limits=s.detection_limits,
            )
    except SampleError as exc:  # say which file the points came from
        if "none of the" in str(exc):
            check_inputs_have_data(spec, inputs)  # blame an empty scene before the points
        raise SampleError(f"samples '{s.path}': {exc}") from None
    return table, len(points)


def _has_data(layer: xr.DataArray) -> bool:
    """Whether a (lazy) layer has any valid pixel; dask reduces it chunk by chunk."""
    return bool(layer.notnull().any())


def check_inputs_have_data(spec: Any, inputs: SceneInputs) -> None:
    """Raise NoDataError when the imagery is entirely masked or the DEM/a covariate is empty.

    Called when no sample point is usable, so that an empty scene (all cloud, a DEM of
    nodata over the grid) is named before the points or their CRS are blamed. Reads a
    layer chunk by chunk (on this error path only).
    """
    if inputs.reflectance is not None:
        band = inputs.reflectance.isel(band=0, drop=True)
        if not _has_data(band):
            what = (
                f"Landsat scene '{spec.landsat}'" if spec.landsat is not None else "band files"
            )
            qa = (
                f" by QA_PIXEL (qa_mask: {', '.join(spec.qa_mask)})"
                if spec.landsat is not None and spec.qa_mask
                else " (nodata)"
            )
            raise NoDataError(
                f"100 % of the {what} is masked{qa}, so no sample point can be used; choose a "
                "clearer acquisition, or narrow 'qa_mask' if the mask is too strict"
            )
    layers = [("DEM", getattr(spec, "dem", None), inputs.dem)]
    layers += [
        (f"covariate '{k}'", getattr(spec.covariates.get(k), "path", None), v)
        for k, v in inputs.covariates.items()
    ]
    for what, path, layer in layers:
        if layer is not None and not _has_data(layer):
            raise NoDataError(
                f"the {what} '{path}' holds no valid data over the scene grid (all nodata after "
                "alignment), so no sample point can be used; check its nodata value and that "
                "it covers the scene"
            )


def source_spec(cfg: SceneConfig) -> Any:
    """The source block, with the scene's DEM and covariates when it gives none (static layers)."""
    assert cfg.source is not None
    update: dict[str, Any] = {}
    if cfg.source.dem is None:
        update["dem"] = cfg.dem
    if not cfg.source.covariates:
        update["covariates"] = cfg.covariates
    return cfg.source.model_copy(update=update)


def needs_coordinates(cfg: SceneConfig) -> bool:
    """Whether the configured model takes the map coordinates ``x``, ``y`` as features."""
    sf = cfg.spatial_features
    return model_entry(cfg.model.name).raw_coordinates or sf.coordinates or sf.buffer_distances


def build_cube(
    spec: Any,
    features: list[str] | str,
    *,
    coordinates: bool = False,
    optional_coordinates: bool = False,
) -> tuple[SceneInputs, xr.DataArray, list[str]]:
    """Open a scene (or source) block and stack the requested features into a lazy cube.

    ``coordinates`` adds the pixel-centre coordinates ``x`` and ``y`` (needs a projected
    CRS); ``optional_coordinates`` adds them only where the grid is projected (``auto``'s
    kriging and RFsp candidates). Returns the opened inputs, the (feature, y, x) cube and
    the resolved feature names.
    """
    inputs = open_inputs(spec)
    refl = inputs.reflectance
    bands = [] if refl is None else [str(b) for b in refl["band"].values]
    available = available_features(
        bands, has_dem=inputs.dem is not None, covariates=list(inputs.covariates)
    )
    feats = resolve_features(features, available)
    geographic = CRS.from_user_input(inputs.grid.crs).is_geographic
    if coordinates or (optional_coordinates and not geographic):
        feats += [c for c in COORDINATE_FEATURES if c not in feats]
    if any(c in feats for c in COORDINATE_FEATURES) and geographic:
        raise GridError(
            "the coordinates x, y are used as features (kriging or spatial_features) but "
            "the scene grid is in a geographic CRS (degrees); reproject the inputs to a "
            "projected CRS (UTM) first"
        )
    cube = stack_features(inputs.reflectance, feats, dem=inputs.dem, covariates=inputs.covariates)
    return inputs, cube, feats


@dataclass(frozen=True)
class _Layer:
    """An output raster of the prediction pass."""

    name: str  # file stem
    description: str
    units: str
    classes: list[tuple[int, str, str]] | None = None  # class rasters: (code, label, colour)


def _open_writer(cfg: SceneConfig, grid: Grid, layer: _Layer, label: str) -> TileWriter:
    out_dir = Path(cfg.output.dir)
    tags = {"geohm_version": __version__, "model": label, "scene": cfg.name}
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
    else:
        info["map_stats"] = st
        if layer.name in names and st["pixels"]:
            target = names[layer.name]
            edges = cfg.output.bins.get(target) or _nice_edges(st["min"], st["max"])
            info["area_by_concentration"] = stats[target].bin_fractions(edges)
    if png:
        info["quicklook"] = png
    return info


def _static_layers(spec: Any) -> list[tuple[str | None, Any, str, str]]:
    """The DEM (name None) and covariates of a scene block: ``(name, path, resampling,
    what)``, bilinear for continuous layers and nearest for categorical ones."""
    out: list[tuple[str | None, Any, str, str]] = []
    if spec.dem is not None:
        out.append((None, spec.dem, "bilinear", "DEM"))
    for name, cov in spec.covariates.items():
        resampling = "nearest" if cov.categorical else "bilinear"
        out.append((name, cov.path, resampling, f"covariate '{name}'"))
    return out


def _risk_rasters(risk: Any) -> list[tuple[str, Any, str, str]]:
    """The pH and land-use rasters of a risk block (when given as rasters).

    ``(layer name, path, resampling, what)``: aligned like covariates (pH bilinear, land
    use nearest) and used by the risk layers only: no model reads them, and their
    nodata does not mask predictions.
    """
    extra: list[tuple[str, Any, str, str]] = []
    if not isinstance(risk.ph, float):
        extra.append((PH_LAYER, risk.ph, "bilinear", "pH raster (risk.ph)"))
    if not isinstance(risk.land_use, str):
        extra.append(
            (LAND_USE_LAYER, risk.land_use.path, "nearest", "land-use raster (risk.land_use)")
        )
    return extra


def window_source(
    inputs: SceneInputs,
    features: list[str],
    risk: Any | None = None,
    *,
    assume_crs: str | None = None,
) -> WindowSource:
    """The feature cube of a scene, built window by window: ``features`` from the opened
    inputs, then the pH and land-use rasters of ``risk`` (see :func:`_risk_rasters`).

    The one feature path: the sample points (:func:`sample_points`), every map window
    and the lazy cube of :func:`build_cube` are read through it. The DEM and the
    single-band covariates are read by the tile readers :func:`open_inputs` opened.

    Parameters
    ----------
    inputs : SceneInputs
        The opened inputs (:func:`open_inputs`, :func:`build_cube`).
    features : list of str
        Feature names in cube order, e.g. ``build_cube``'s resolved features.
    risk : RiskConfig, optional
        Adds its pH and land-use rasters as extra layers (not features).
    assume_crs : str, optional
        CRS of risk rasters that carry none.

    Returns
    -------
    WindowSource
        For :func:`geohm.predict.predict_map`; close it (or use it as a context
        manager) when done.
    """
    grid = inputs.grid
    readers: dict[str, Any] = {
        name: reader
        for name, reader in inputs.readers.items()
        if name is not None and name in inputs.covariates
    }
    extra = {}
    for name, path, resampling, what in _risk_rasters(risk) if risk is not None else []:
        reader = AlignedRaster(
            path, grid, resampling=resampling, tile=CHUNK, what=what, assume_crs=assume_crs
        )
        extra[name] = reader.lazy()
        readers[name] = reader
    return WindowSource(
        inputs.reflectance,
        features,
        dem=inputs.dem,
        covariates=inputs.covariates,
        extra=extra,
        dem_reader=inputs.readers.get(None) if inputs.dem is not None else None,
        layer_readers=readers,
    )


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
) -> tuple[dict[str, Any], dict[str, Any] | None, list[Path]]:
    """Predict every target tile by tile, derive the risk layers in the same pass, and
    write GeoTIFFs, QGIS styles and quicklooks.

    Returns per-target info, the risk report (or None) and the files written.
    """
    folder = held_folder(cfg.output.dir)
    if folder is not None:  # the first output of the run: the earlier run's go now
        folder.clear_previous()
    if target_layers is None:
        target_layers = {
            t: _Layer(f"{t}_concentration", f"{t} concentration", "mg/kg") for t in models
        }
    layers = [target_layers[t] for t in models]
    names = {target_layers[t].name: t for t in models}
    uncertain = [t for t, m in models.items() if m.interval is not None]
    for t in uncertain:
        coverage = getattr(models[t].interval, "coverage", cfg.validation.interval_coverage)
        layers.append(
            _Layer(
                f"{t}_uncertainty",
                f"{t} {float(coverage):.0%} prediction interval width",
                "mg/kg",
            )
        )
    if plan is None and cfg.risk is not None:
        plan = plan_risk(
            cfg.risk, list(models), [t for t, m in models.items() if has_members(m.estimator)]
        )
    if plan is not None:
        for rl in plan.layers:
            layers.append(
                _Layer(
                    rl.name,
                    rl.description,
                    rl.units,
                    rl.grading.classes() if rl.grading is not None else None,
                )
            )
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
        sinks = {names.get(k, k): w for k, w in writers.items()}
        stats = predict_map(
            source,
            models,
            sinks,
            tile=tile,
            progress=(lambda d, n: progress("predict", d, n)) if progress else None,
            derive=plan.derive if plan is not None else None,
            workers=workers,
            thresholds=plan.exceedance_thresholds if isinstance(plan, RiskPlan) else None,
        )
        for layer in layers:
            path = writers[layer.name].close()
            outputs.append(path)
            files, png = _style_and_quicklook(cfg, layer, path, points_xy)
            outputs += files
            per_layer[layer.name] = _layer_info(cfg, layer, path, png, stats, names)
    finally:
        source.close()
        for w in writers.values():
            w.abort()  # no-op for the writers already published
    per_target = {}
    for t in models:
        info = dict(per_layer.pop(target_layers[t].name))
        if t in uncertain:
            info["uncertainty_map"] = per_layer.pop(f"{t}_uncertainty")
        if f"{t}_risk" in per_layer:
            info["class_area_fraction"] = per_layer[f"{t}_risk"]["class_area_fraction"]
        per_target[t] = info
    risk_report = None
    if isinstance(plan, RiskPlan) and cfg.risk is not None:
        risk_report = {
            "standard": cfg.risk.standard if cfg.risk.user_standard is None else "user",
            "land_use": cfg.risk.land_use
            if isinstance(cfg.risk.land_use, str)
            else {"path": str(cfg.risk.land_use.path), "classes": cfg.risk.land_use.classes},
            "ph": cfg.risk.ph if isinstance(cfg.risk.ph, float) else str(cfg.risk.ph),
            "screening_values_mg_kg": plan.screening,
            "layers": per_layer,
            "notes": plan.notes,
        }
    return per_target, risk_report, outputs


def _finish_report(cfg: SceneConfig, report: dict[str, Any], outputs: list[Path]) -> RunResult:
    out_dir = Path(cfg.output.dir)
    report_paths = [out_dir / "report.json", out_dir / "report.md"]
    report["outputs"] = sorted(p.name for p in outputs + report_paths)
    folder = held_folder(out_dir)
    if folder is not None and folder.report_note():
        report["output_folder"] = folder.report_note()
    write_json(report_paths[0], report)
    write_text(report_paths[1], render_markdown(report))
    return RunResult(out_dir, report, outputs + report_paths)


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
    check_model_config(cfg)
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

    Raises
    ------
    InputError, ConfigError
        As :func:`~geohm.config.load_config`; a bad ``model.params.<key>`` is named with
        the file (:func:`geohm.training.check_model_config`).
    """
    cfg = load_config(path, output_dir=output_dir)
    check_model_config(cfg, source=str(path))
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
            optional_coordinates=wants_coordinates(cfg),
        )
        timings["open"] = time.perf_counter() - t0

        t = time.perf_counter()
        table, n_points = sample_points(cfg, inputs, cube)
        log.info("%d of %d sample points usable", len(table.X), n_points)
        if model_entry(cfg.model.name).classifier:
            timings["sample"] = time.perf_counter() - t
            return _run_classifier(
                cfg, inputs, cube, features, table, n_points, timings, t0, progress
            )
        source_table = None
        source_info: dict[str, Any] = {}
        if uses_source(cfg):
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
            target: fit_target(cfg, table, target, source=source_table)
            for target in cfg.samples.targets
        }
        timings["train"] = time.perf_counter() - t

        t = time.perf_counter()
        models = {
            k: TargetModel(
                accelerate(f.estimator), f.features, required=f.required, interval=f.interval
            )
            for k, f in fitted.items()
        }
        maps, risk_report, outputs = _write_maps(
            cfg, inputs, cube, models, label=cfg.model.name, points_xy=table.xy, progress=progress
        )
        timings["predict"] = time.perf_counter() - t

    samples = pd.DataFrame({"x": table.xy[:, 0], "y": table.xy[:, 1]}, index=table.X.index)
    samples = pd.concat([samples] + [f.samples for f in fitted.values()], axis=1)
    # The fitted estimators, not the accelerated copies: geohm predict accelerates them
    # again on load (or keeps scikit-learn's predict where the kernel was not built);
    # io.models.save_model refuses a compiled forest.
    saved = {
        k: TargetModel(f.estimator, f.features, required=f.required, interval=f.interval)
        for k, f in fitted.items()
    }
    outputs += _write_samples_and_model(
        cfg, samples, features, saved, {k: f.report["train_mean"] for k, f in fitted.items()}
    )
    timings["total"] = time.perf_counter() - t0
    report = _scene_report(cfg, inputs, features, table, n_points, timings)
    report["targets"] = {k: {**f.report, **maps[k]} for k, f in fitted.items()}
    _list_outliers(report["samples"], {k: f.report["outliers_removed"] for k, f in fitted.items()})
    if risk_report is not None:
        report["risk"] = risk_report
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
    return _finish_report(cfg, report, outputs)


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
    fitted = fit_classifier(cfg, table, limits)
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
    return _finish_report(cfg, report, outputs)


def predict_scene(
    cfg: SceneConfig, model_path: str | Path, *, progress: Progress | None = None
) -> RunResult:
    """Map a scene with a model saved by :func:`run_scene` (``model.geohm``).

    No training happens. When the config has ``samples:``, the saved model is scored
    on all of them (an independent validation) and the scores are reported under
    ``targets.<metal>.validation``.

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
            )
            for k, v in targets.items()
        }
        per_target: dict[str, Any] = {
            k: {"model": bundle["model"], "features": v["features"]} for k, v in targets.items()
        }
        points_xy = None
        sample_report = None
        if cfg.samples is not None:
            table, n_points = sample_points(cfg, inputs, cube)
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
                    X = table.X.loc[has, list(tm.features)]
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
    if sample_report is not None:
        report["samples"] = sample_report
    return _finish_report(cfg, report, outputs)


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

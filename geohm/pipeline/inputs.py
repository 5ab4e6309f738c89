"""The inputs of a scene job: open the rasters, stack the features, read the sample points."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr
from pyproj import CRS

from geohm.config import SceneConfig
from geohm.config.stac import StacSpec
from geohm.cube import (
    COORDINATE_FEATURES,
    WindowSource,
    available_features,
    band_wavelengths,
    resolve_features,
    stack_features,
    wavelength_feature,
)
from geohm.errors import GridError, InputError, NoDataError, SampleError
from geohm.grid import Grid
from geohm.io.landsat import (
    ItemFilter,
    find_stac_item,
    open_band_files,
    open_landsat,
    open_qa,
    open_stac_landsat,
    open_stac_qa,
    qa_reasons,
    search_stac_api,
)
from geohm.io.points import read_points
from geohm.io.rasters import (
    band_metadata,
    open_aligned_bands,
    raster_grid,
)
from geohm.io.reading import AlignedRaster
from geohm.models import make_regressor, model_entry
from geohm.models.registry import auto_settings
from geohm.pipeline.common import CHUNK
from geohm.riskmaps import (
    LAND_USE_LAYER,
    PH_LAYER,
)
from geohm.sampling import SampleTable, sample_cube, with_patches


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
    item: Any = None
    if isinstance(spec.landsat, StacSpec):
        item = stac_item(spec.landsat)
        refl = open_stac_landsat(item, mask=tuple(spec.qa_mask), chunks=chunks)
        description["landsat"] = f"STAC {refl.attrs['source']} ({item.id})"
    elif spec.landsat is not None:
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
        qa = (
            open_stac_qa(item, chunks=chunks)
            if item is not None
            else open_qa(spec.landsat, chunks=chunks)
        )
        mask_names = tuple(spec.qa_mask)

        def reason(rows: np.ndarray, cols: np.ndarray) -> list[str | None]:
            # QA_PIXEL values under the points tell *why* a pixel is masked.
            r = xr.DataArray(rows, dims="point")
            c = xr.DataArray(cols, dims="point")
            return qa_reasons(qa.isel(y=r, x=c).values, mask_names)

    return SceneInputs(refl, grid, dem, covariates, reason, description, readers)


def stac_item(spec: StacSpec) -> Any:
    """The Landsat STAC item of a ``landsat: {stac: ...}`` block (``pystac.Item``).

    A static document (``stac``) is read and, when it is a catalogue, searched; a STAC
    API (``stac_api``) is searched through ``pystac-client``. Either way the least cloudy
    item matching ``datetime``, ``bbox``, ``max_cloud`` and ``collection`` is chosen.

    Raises
    ------
    InputError
        The document or API cannot be read, or no item matches.
    """
    start, end = spec.date_range
    where = ItemFilter(start, end, spec.bbox, spec.max_cloud, spec.collection)
    if spec.stac_api is not None:
        return search_stac_api(spec.stac_api, where)
    assert spec.stac is not None  # the schema asks for one of the two
    return find_stac_item(spec.stac, where)


def patch_half(model: Any) -> int:
    """The patch half-width (pixels) a ``model:`` block's samples need (0: none).

    ``auto`` needs the widest of its patch candidates'.
    """
    if model_entry(model.name).selects:
        named = [(c.model, p) for c, p in auto_settings(model.params).candidates]
    else:
        named = [(model.name, model.params)]
    halves = [
        int(make_regressor(name, params).patch)
        for name, params in named
        if model_entry(name).inputs == "patches"
    ]
    return max(halves, default=0)


def sample_points(
    spec: Any, inputs: SceneInputs, cube: xr.DataArray, *, patch: int = 0
) -> tuple[SampleTable, int]:
    """Read the sample points of ``spec.samples`` and take the cube's features there.

    The features come from the window source of the prediction pass
    (:func:`window_source`), so a sample's feature vector is the one its pixel has in
    the map, bit for bit; with ``patch`` (pixels, for patch models: :func:`patch_half`)
    also the ``(2 patch + 1)``-pixel neighbourhood of every feature around each sample,
    read by the same source.
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
            if patch:
                table = with_patches(table, source, patch)
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
                "band files"
                if spec.landsat is None
                else f"Landsat scene '{spec.landsat.where}' (STAC)"
                if isinstance(spec.landsat, StacSpec)
                else f"Landsat scene '{spec.landsat}'"
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

    The cube is the window source of the scene read chunk by chunk (one feature path:
    :func:`window_source`).

    Parameters
    ----------
    spec : SceneConfig or SourceSpec
        The scene (or its ``source:`` year): imagery, DEM, covariates, ``assume_crs``.
    features : list of str or "auto"
        Feature names (``features:`` of the config).
    coordinates : bool
        Add the pixel-centre coordinates ``x`` and ``y`` (CRS units, metres; needs a
        projected CRS).
    optional_coordinates : bool
        Add them only where the grid is projected (``auto``'s kriging and RFsp
        candidates).

    Returns
    -------
    tuple of (SceneInputs, xarray.DataArray, list of str)
        The opened inputs, the lazy (feature, y, x) float32 cube (reflectance 0-1,
        indices unitless, elevation m, slope and aspect degrees) and the resolved
        feature names.

    Raises
    ------
    ConfigError, InputError, GridError
        A feature without a source, a missing or damaged file, coordinates on a
        geographic grid.
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


def _static_layers(spec: Any) -> list[tuple[str | None, Any, str, str]]:
    """The DEM (name None) and covariates of a scene block.

    As ``(name, path, resampling, what)``: bilinear for continuous layers and nearest for
    categorical ones.
    """
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
    """The feature cube of a scene, built window by window.

    ``features`` from the opened inputs, then the pH and land-use rasters of ``risk``
    (see :func:`_risk_rasters`).

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
        owned_readers=list(extra),  # the scene's tile readers stay open: shared
    )

"""The feature cube: reflectance, indices, terrain and covariates on one grid.

``cube.py`` decides *what* goes on the reference (Landsat) grid and how each layer
is resampled; the warping itself is a lazy GDAL warped VRT opened by
:mod:`geohm.io.rasters`, so a whole scene is never loaded here. The result is a lazy
(feature, y, x) float32 DataArray.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from geohm.errors import ConfigError, GridError
from geohm.indices import INDEX_NAMES, stack_indices
from geohm.terrain import stack_terrain

__all__ = [
    "COORDINATE_FEATURES",
    "REFLECTANCE_FEATURES",
    "TERRAIN_FEATURES",
    "available_features",
    "resolve_features",
    "stack_features",
    "valid_mask",
]

#: Reflectance bands used as features by ``features: auto`` (coastal is left out:
#: it is mostly aerosol signal).
REFLECTANCE_FEATURES: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2", "thermal")
TERRAIN_FEATURES: tuple[str, ...] = ("elevation", "slope", "aspect")
#: Pixel-centre map coordinates (CRS units). Never part of ``features: auto``: they are
#: asked for by name, by the kriging models or by ``spatial_features.coordinates``.
COORDINATE_FEATURES: tuple[str, ...] = ("x", "y")


def available_features(
    bands: Sequence[str], *, has_dem: bool, covariates: Sequence[str] = ()
) -> list[str]:
    """Every feature that can be computed from the given inputs, in cube order.

    Parameters
    ----------
    bands : sequence of str
        Reflectance band names present (``blue``, ``nir``, ...).
    has_dem : bool
        Whether a DEM is given (enables elevation, slope, aspect).
    covariates : sequence of str
        Names of covariate rasters.
    """
    out = [b for b in bands if b != "coastal"]
    refl = set(bands)
    need = {
        "NDVI": {"nir", "red"},
        "EVI": {"nir", "red", "blue"},
        "DVI": {"nir", "red"},
        "CMR": {"swir1", "swir2"},
        "MNDWI": {"green", "swir1"},
        "brightness": {"blue", "green", "red", "nir", "swir1", "swir2"},
        "greenness": {"blue", "green", "red", "nir", "swir1", "swir2"},
        "wetness": {"blue", "green", "red", "nir", "swir1", "swir2"},
    }
    out += [name for name in INDEX_NAMES if need[name] <= refl]
    if has_dem:
        out += list(TERRAIN_FEATURES)
    out += list(covariates)
    return out


def resolve_features(requested: str | Sequence[str], available: Sequence[str]) -> list[str]:
    """Expand ``"auto"`` or check a user's feature list against what is available.

    The coordinates ``x`` and ``y`` (:data:`COORDINATE_FEATURES`) can always be listed;
    ``"auto"`` does not include them.

    Raises
    ------
    ConfigError
        A requested feature cannot be computed; the message names it and lists the
        available ones.
    """
    if isinstance(requested, str):
        if requested != "auto":
            raise ConfigError(f"key 'features': expected 'auto' or a list, got '{requested}'")
        return list(available)
    missing = [f for f in requested if f not in available and f not in COORDINATE_FEATURES]
    if missing:
        raise ConfigError(
            f"key 'features': {', '.join(repr(m) for m in missing)} cannot be computed from the "
            f"inputs (available: {', '.join(available)}); add the band/DEM/covariate or remove it"
        )
    if len(set(requested)) != len(requested):
        raise ConfigError("key 'features': a feature is listed twice")
    return list(requested)


def _same_grid(a: xr.DataArray, b: xr.DataArray, what: str) -> None:
    if a.sizes["y"] != b.sizes["y"] or a.sizes["x"] != b.sizes["x"]:
        raise GridError(
            f"{what} is {b.sizes['y']}x{b.sizes['x']} pixels but the scene grid is "
            f"{a.sizes['y']}x{a.sizes['x']}; open it aligned onto the scene grid"
        )
    if not (
        np.allclose(a["x"].values, b["x"].values) and np.allclose(a["y"].values, b["y"].values)
    ):
        raise GridError(f"{what} is not on the scene grid (its coordinates differ)")


def stack_features(
    reflectance: xr.DataArray | None,
    features: Sequence[str],
    *,
    dem: xr.DataArray | None = None,
    covariates: Mapping[str, xr.DataArray] | None = None,
) -> xr.DataArray:
    """Stack the requested features into one lazy (feature, y, x) float32 cube.

    Parameters
    ----------
    reflectance : xarray.DataArray or None
        (band, y, x) reflectance (0-1) with word band names; thermal in kelvin. None for
        a scene of covariates only: the first covariate then sets the grid.
    features : sequence of str
        Feature names, as returned by :func:`resolve_features`.
    dem : xarray.DataArray, optional
        (y, x) elevation in metres, already on the reflectance grid.
    covariates : mapping of str to xarray.DataArray, optional
        (y, x) layers already on the reflectance grid.

    Returns
    -------
    xarray.DataArray
        (feature, y, x) float32, the reflectance grid's coordinates and CRS.

    Raises
    ------
    GridError
        A layer is not on the reflectance grid.
    ConfigError
        A feature has no source.
    """
    covariates = dict(covariates or {})
    if reflectance is not None:
        bands = [str(b) for b in reflectance["band"].values]
        template = reflectance.isel(band=0, drop=True)
        georef = reflectance
    elif covariates:
        bands = []
        template = next(iter(covariates.values()))
        georef = template
    else:
        raise ConfigError("the scene has no imagery and no covariates: nothing to stack")
    layers: list[xr.DataArray] = []
    index_names = [f for f in features if f in INDEX_NAMES]
    terrain_names = [f for f in features if f in TERRAIN_FEATURES]
    built: dict[str, xr.DataArray] = {}
    if index_names:
        if reflectance is None:
            raise ConfigError(
                f"key 'features': {', '.join(index_names)} need imagery ('landsat' or 'bands')"
            )
        idx = stack_indices(reflectance, index_names)
        built.update({n: idx.sel(feature=n, drop=True) for n in index_names})
    if terrain_names:
        if dem is None:
            raise ConfigError(
                f"key 'features': {', '.join(terrain_names)} need a DEM; add 'dem:' to the config"
            )
        _same_grid(template, dem, "the DEM")
        crs = georef.rio.crs
        ter = stack_terrain(dem, terrain_names, crs=crs, transform=georef.rio.transform())
        built.update({n: ter.sel(feature=n, drop=True) for n in terrain_names})
    for name in COORDINATE_FEATURES:
        if name in features:
            # Lazy: chunked like the template, each chunk filled from the 1-D coordinate.
            built[name] = xr.zeros_like(template, dtype="float64") + template[name]
    for name, cov in covariates.items():
        _same_grid(template, cov, f"covariate '{name}'")
    for f in features:
        if f in built:
            layer = built[f]
        elif reflectance is not None and f in bands:
            layer = reflectance.sel(band=f, drop=True)
        elif f in covariates:
            layer = covariates[f]
        else:
            raise ConfigError(f"key 'features': no input provides '{f}'")
        layer = layer.astype("float32")
        # All layers share the reflectance coordinates exactly (float noise from the
        # warped VRT coordinates would otherwise break alignment in concat).
        layer = layer.assign_coords(x=template["x"], y=template["y"])
        layers.append(layer.drop_vars([c for c in layer.coords if c not in ("x", "y")]))
    cube = xr.concat(layers, dim="feature", join="override").assign_coords(feature=list(features))
    cube = cube.transpose("feature", "y", "x")
    if "spatial_ref" in georef.coords:
        cube = cube.assign_coords(spatial_ref=georef["spatial_ref"])
    cube.attrs = {"long_name": "geohm feature cube"}
    return cube


def valid_mask(block: np.ndarray) -> np.ndarray:
    """Pixels of a (feature, y, x) block where every feature is finite."""
    return np.all(np.isfinite(block), axis=0)

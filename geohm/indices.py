"""Spectral indices from Landsat 8/9 surface reflectance.

Every function takes a reflectance :class:`xarray.DataArray` with dims ``("band", "y", "x")``,
reflectance in 0-1, and a ``band`` coordinate of word names (``coastal``, ``blue``, ``green``,
``red``, ``nir``, ``swir1``, ``swir2``, ``thermal``). It returns a new float32 DataArray with
dims ``("y", "x")``, the input's y/x coordinates and its ``spatial_ref`` coordinate (so the CRS
and transform survive), a ``name`` and attrs ``long_name`` and ``units``. NumPy- and
dask-backed inputs both work; dask inputs stay lazy.

Formulas (science.md section 2; B blue, G green, R red, N nir, S1 swir1, S2 swir2):

==========  =================================================  ==============================
name        formula                                            reference
==========  =================================================  ==============================
NDVI        (N - R) / (N + R)                                  USGS
EVI         2.5 (N - R) / (N + 6 R - 7.5 B + 1)                USGS
DVI         N - R                                              ASI
CMR         S1 / S2  (clay minerals ratio)                     ArcGIS ClayMinerals
MNDWI       (G - S1) / (G + S1)                                Xu 2006
brightness  Baig et al. 2014 tasseled cap, B..S2 coefficients  Baig 2014
greenness   idem                                               Baig 2014
wetness     idem                                               Baig 2014
==========  =================================================  ==============================

A zero denominator gives NaN (never inf), without a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import xarray as xr

from geohm.errors import ConfigError, InputError

__all__ = [
    "INDEX_BANDS",
    "INDEX_NAMES",
    "TASSELED_CAP",
    "brightness",
    "cmr",
    "compute_index",
    "dvi",
    "evi",
    "greenness",
    "index_array",
    "mndwi",
    "ndvi",
    "stack_indices",
    "wetness",
]

#: The spectral indices geohm knows, in catalogue order.
INDEX_NAMES: tuple[str, ...] = (
    "NDVI",
    "EVI",
    "DVI",
    "CMR",
    "MNDWI",
    "brightness",
    "greenness",
    "wetness",
)

_TC_BANDS: tuple[str, ...] = ("blue", "green", "red", "nir", "swir1", "swir2")

#: The reflectance bands each index needs.
INDEX_BANDS: dict[str, tuple[str, ...]] = {
    "NDVI": ("nir", "red"),
    "EVI": ("nir", "red", "blue"),
    "DVI": ("nir", "red"),
    "CMR": ("swir1", "swir2"),
    "MNDWI": ("green", "swir1"),
    "brightness": _TC_BANDS,
    "greenness": _TC_BANDS,
    "wetness": _TC_BANDS,
}

#: Landsat 8 OLI tasseled-cap coefficients (Baig et al. 2014, doi 10.1080/2150704X.2014.915434)
#: on blue, green, red, nir, swir1, swir2. Derived for TOA reflectance; on surface
#: reflectance they are an approximation.
TASSELED_CAP: dict[str, tuple[float, ...]] = {
    "brightness": (0.3029, 0.2786, 0.4733, 0.5599, 0.5080, 0.1872),
    "greenness": (-0.2941, -0.2430, -0.5424, 0.7276, 0.0713, -0.1608),
    "wetness": (0.1511, 0.1973, 0.3283, 0.3407, -0.7117, -0.4559),
}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _band_names(refl: xr.DataArray) -> list[str]:
    if "band" not in refl.coords:
        return []
    return [str(b) for b in np.atleast_1d(refl.coords["band"].values)]


def _bands(refl: xr.DataArray, index: str, needed: Sequence[str]) -> list[xr.DataArray]:
    """Return the needed bands as float 2-D DataArrays, or raise InputError naming one."""
    if not isinstance(refl, xr.DataArray):
        raise InputError(f"{index} needs a reflectance xarray.DataArray, got {type(refl).__name__}")
    if "band" not in refl.dims or "y" not in refl.dims or "x" not in refl.dims:
        raise InputError(f"{index} needs reflectance with dims ('band', 'y', 'x'), got {refl.dims}")
    have = _band_names(refl)
    for band in needed:
        if band not in have:
            raise InputError(
                f"{index} needs band {band!r} but the reflectance has bands {have}; "
                f"add it to `bands:` or drop {index} from `features:`"
            )
    out = []
    for band in needed:
        da = refl.sel(band=band, drop=True)
        if not np.issubdtype(da.dtype, np.floating):
            da = da.astype(np.float64)
        out.append(da)
    return out


def _safe_divide(num: xr.DataArray, den: xr.DataArray) -> xr.DataArray:
    """``num / den`` with NaN where ``den == 0``; no warning, lazy on dask."""
    return num / den.where(den != 0)


def _finish(result: xr.DataArray, refl: xr.DataArray, *, name: str, long_name: str) -> xr.DataArray:
    out = result.astype(np.float32).transpose(..., "y", "x")
    out.name = name
    out.attrs = {"long_name": long_name, "units": "1"}
    if "grid_mapping" in refl.attrs:
        out.attrs["grid_mapping"] = refl.attrs["grid_mapping"]
    if "grid_mapping" in refl.encoding:
        out.encoding["grid_mapping"] = refl.encoding["grid_mapping"]
    return out


# --------------------------------------------------------------------------------------------
# indices
# --------------------------------------------------------------------------------------------


def ndvi(refl: xr.DataArray, *, name: str = "NDVI") -> xr.DataArray:
    """NDVI, the Normalized Difference Vegetation Index: ``(nir - red) / (nir + red)``.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with a ``band`` coordinate holding ``nir`` and ``red``.
    name : str, default "NDVI"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), dimensionless (-1 to 1), the input's coords and CRS.
        NaN where ``nir + red == 0``.

    Raises
    ------
    InputError
        A needed band is missing.

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> refl = xr.DataArray(
    ...     np.array([[[0.1]], [[0.5]]]),
    ...     coords={"band": ["red", "nir"], "y": [0.5], "x": [0.5]},
    ...     dims=("band", "y", "x"),
    ... )
    >>> round(float(ndvi(refl)[0, 0]), 4)
    0.6667
    """
    n, r = _bands(refl, "NDVI", ("nir", "red"))
    return _finish(
        _safe_divide(n - r, n + r),
        refl,
        name=name,
        long_name="Normalized Difference Vegetation Index",
    )


def evi(refl: xr.DataArray, *, name: str = "EVI") -> xr.DataArray:
    """Enhanced Vegetation Index, ``2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1)``.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with ``nir``, ``red`` and ``blue`` bands.
    name : str, default "EVI"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), dimensionless, the input's coords and CRS. NaN where the
        denominator is 0.

    Raises
    ------
    InputError
        A needed band is missing.
    """
    n, r, b = _bands(refl, "EVI", ("nir", "red", "blue"))
    return _finish(
        2.5 * _safe_divide(n - r, n + 6.0 * r - 7.5 * b + 1.0),
        refl,
        name=name,
        long_name="Enhanced Vegetation Index",
    )


def dvi(refl: xr.DataArray, *, name: str = "DVI") -> xr.DataArray:
    """Difference Vegetation Index, ``nir - red``.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with ``nir`` and ``red`` bands.
    name : str, default "DVI"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), reflectance difference (dimensionless, -1 to 1).

    Raises
    ------
    InputError
        A needed band is missing.
    """
    n, r = _bands(refl, "DVI", ("nir", "red"))
    return _finish(n - r, refl, name=name, long_name="Difference Vegetation Index")


def cmr(refl: xr.DataArray, *, name: str = "CMR") -> xr.DataArray:
    """Clay Minerals Ratio, ``swir1 / swir2`` (Landsat 8/9 band 6 / band 7).

    The same expression is called STI (Simple Tillage Index) in Awesome Spectral Indices.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with ``swir1`` and ``swir2`` bands.
    name : str, default "CMR"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), dimensionless ratio; NaN where ``swir2 == 0``.

    Raises
    ------
    InputError
        A needed band is missing.
    """
    s1, s2 = _bands(refl, "CMR", ("swir1", "swir2"))
    return _finish(_safe_divide(s1, s2), refl, name=name, long_name="Clay Minerals Ratio")


def mndwi(refl: xr.DataArray, *, name: str = "MNDWI") -> xr.DataArray:
    """MNDWI, the Modified Normalized Difference Water Index (Xu 2006).

    ``(green - swir1) / (green + swir1)``.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with ``green`` and ``swir1`` bands.
    name : str, default "MNDWI"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), dimensionless (-1 to 1); NaN where ``green + swir1 == 0``.

    Raises
    ------
    InputError
        A needed band is missing.
    """
    g, s1 = _bands(refl, "MNDWI", ("green", "swir1"))
    return _finish(
        _safe_divide(g - s1, g + s1),
        refl,
        name=name,
        long_name="Modified Normalized Difference Water Index",
    )


def _tasseled_cap(refl: xr.DataArray, component: str, *, name: str) -> xr.DataArray:
    layers = _bands(refl, component, _TC_BANDS)
    coefs = TASSELED_CAP[component]
    total = coefs[0] * layers[0]
    for coef, layer in zip(coefs[1:], layers[1:], strict=True):
        total = total + coef * layer
    return _finish(total, refl, name=name, long_name=f"tasseled cap {component} (Baig et al. 2014)")


def brightness(refl: xr.DataArray, *, name: str = "brightness") -> xr.DataArray:
    """Tasseled-cap brightness (Baig et al. 2014, Landsat 8 OLI).

    ``0.3029 blue + 0.2786 green + 0.4733 red + 0.5599 nir + 0.5080 swir1 + 0.1872 swir2``.
    The coefficients were derived for TOA reflectance; on surface reflectance the result is
    an approximation.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with bands blue, green, red, nir, swir1, swir2.
    name : str, default "brightness"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), reflectance units (dimensionless).

    Raises
    ------
    InputError
        A needed band is missing.
    """
    return _tasseled_cap(refl, "brightness", name=name)


def greenness(refl: xr.DataArray, *, name: str = "greenness") -> xr.DataArray:
    """Tasseled-cap greenness (Baig et al. 2014, Landsat 8 OLI).

    ``-0.2941 blue - 0.2430 green - 0.5424 red + 0.7276 nir + 0.0713 swir1
    - 0.1608 swir2``.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with bands blue, green, red, nir, swir1, swir2.
    name : str, default "greenness"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), reflectance units (dimensionless).

    Raises
    ------
    InputError
        A needed band is missing.
    """
    return _tasseled_cap(refl, "greenness", name=name)


def wetness(refl: xr.DataArray, *, name: str = "wetness") -> xr.DataArray:
    """Tasseled-cap wetness (Baig et al. 2014, Landsat 8 OLI).

    ``0.1511 blue + 0.1973 green + 0.3283 red + 0.3407 nir - 0.7117 swir1 - 0.4559 swir2``.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1 with bands blue, green, red, nir, swir1, swir2.
    name : str, default "wetness"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("y", "x"), reflectance units (dimensionless).

    Raises
    ------
    InputError
        A needed band is missing.
    """
    return _tasseled_cap(refl, "wetness", name=name)


_FUNCTIONS: dict[str, Callable[..., xr.DataArray]] = {
    "NDVI": ndvi,
    "EVI": evi,
    "DVI": dvi,
    "CMR": cmr,
    "MNDWI": mndwi,
    "brightness": brightness,
    "greenness": greenness,
    "wetness": wetness,
}


def _lookup(name: str) -> Callable[..., xr.DataArray]:
    try:
        return _FUNCTIONS[name]
    except (KeyError, TypeError):
        pass
    hint = ""
    folded = {k.lower(): k for k in INDEX_NAMES}
    if isinstance(name, str) and name.lower() in folded:
        hint = f" (did you mean {folded[name.lower()]!r}?)"
    raise ConfigError(f"unknown spectral index {name!r}{hint}; known: {list(INDEX_NAMES)}")


def compute_index(refl: xr.DataArray, name: str) -> xr.DataArray:
    """Compute one index of :data:`INDEX_NAMES` by name.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1.
    name : str
        One of :data:`INDEX_NAMES` (case-sensitive: ``"NDVI"``, ``"brightness"``).

    Returns
    -------
    xarray.DataArray
        As the index function returns, named ``name``.

    Raises
    ------
    ConfigError
        ``name`` is not a known index.
    InputError
        A band the index needs is missing.
    """
    return _lookup(name)(refl, name=name)


def stack_indices(
    refl: xr.DataArray, names: Sequence[str], *, name: str = "indices"
) -> xr.DataArray:
    """Several indices stacked along a ``feature`` dim.

    Parameters
    ----------
    refl : xarray.DataArray, dims ("band", "y", "x")
        Reflectance in 0-1.
    names : sequence of str
        Index names from :data:`INDEX_NAMES`, in the order wanted.
    name : str, default "indices"
        Name of the result.

    Returns
    -------
    xarray.DataArray
        float32, dims ("feature", "y", "x"), ``feature`` coord = ``names``, the input's y/x
        coords and CRS. Lazy when ``refl`` is dask-backed.

    Raises
    ------
    ConfigError
        An unknown or repeated name, or no names.
    InputError
        A band an index needs is missing.
    """
    names = list(names)
    if not names:
        raise ConfigError("no spectral index names given")
    funcs = [_lookup(n) for n in names]
    if len(set(names)) != len(names):
        raise ConfigError(f"spectral index names repeat: {names}")
    layers: list[Any] = [f(refl, name=n) for f, n in zip(funcs, names, strict=True)]
    out = xr.concat(layers, dim="feature", combine_attrs="drop", coords="minimal")
    out = out.assign_coords(feature=names)
    out.name = name
    out.attrs = {"long_name": "spectral indices", "units": "1"}
    return out


def index_array(
    refl: np.ndarray, bands: Sequence[str], names: Sequence[str]
) -> npt.NDArray[np.float32]:
    """Indices of a NumPy reflectance block (one prediction window).

    The same functions as for a whole scene run on the block, so every value equals the
    one :func:`stack_indices` gives for those pixels.

    Parameters
    ----------
    refl : numpy.ndarray
        (band, y, x) reflectance in 0-1.
    bands : sequence of str
        The band names of ``refl``'s first axis.
    names : sequence of str
        Index names from :data:`INDEX_NAMES`, in the order wanted.

    Returns
    -------
    numpy.ndarray
        float32 (index, y, x).

    Examples
    --------
    >>> block = np.array([[[0.1]], [[0.5]]], dtype="float32")
    >>> [round(float(v), 4) for v in index_array(block, ["red", "nir"], ["NDVI", "DVI"]).ravel()]
    [0.6667, 0.4]
    """
    da = xr.DataArray(refl, dims=("band", "y", "x"), coords={"band": list(bands)})
    out = np.empty((len(names), *refl.shape[1:]), dtype=np.float32)
    for k, name in enumerate(names):
        out[k] = compute_index(da, name).values
    return out

"""Landsat 8/9 Collection 2 scenes: MTL metadata, band files, QA_PIXEL masks.

Reading is lazy: every band is opened with rioxarray as a dask array, scaled with
the factors found in the scene's own ``_MTL.txt`` (never hard-coded) and stacked
into one float32 ``(band, y, x)`` DataArray whose band coordinate uses the words
of :data:`BAND_NAMES` (``"red"``, ``"nir"``), not ``B4``/``B5``.

Level-2 (``L2SP``/``L2SR``) scenes give surface reflectance (0-1) and, for L2SP,
surface temperature in kelvin. Level-1 (``L1TP``/``L1GT``/``L1GS``) scenes give
top-of-atmosphere reflectance corrected for the sun elevation and the band-10
brightness temperature in kelvin. Collection 1 scenes (a different QA bit layout)
are refused.

The writer :func:`write_landsat_c2l2` lays out a Collection 2 Level-2 folder the
way USGS ships it; the synthetic demo (:mod:`geohm.synth`) uses it.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr
from affine import Affine

from geohm.errors import ConfigError, GridError, InputError
from geohm.io.rasters import atomic_path, open_raster, write_geotiff

__all__ = [
    "BAND_NAMES",
    "DEFAULT_MASK",
    "QA_BITS",
    "REFLECTIVE_BANDS",
    "find_mtl",
    "open_band_files",
    "open_landsat",
    "open_qa",
    "qa_mask",
    "qa_reasons",
    "read_mtl",
    "write_landsat_c2l2",
]

#: Reflective bands in output order, with their OLI band numbers.
REFLECTIVE_BANDS: dict[str, int] = {
    "coastal": 1,
    "blue": 2,
    "green": 3,
    "red": 4,
    "nir": 5,
    "swir1": 6,
    "swir2": 7,
}
#: Every band name geohm reads from Landsat, in output order (``thermal`` last).
BAND_NAMES: tuple[str, ...] = (*REFLECTIVE_BANDS, "thermal")

#: QA_PIXEL bit of each maskable condition (Collection 2, CFMask; science.md section 1.3).
QA_BITS: dict[str, int] = {
    "fill": 0,
    "dilated_cloud": 1,
    "cirrus": 2,
    "cloud": 3,
    "shadow": 4,
    "snow": 5,
    "water": 7,
}
#: Order in which :func:`qa_reasons` names a pixel flagged by several bits.
_REASON_ORDER = ("fill", "cloud", "dilated_cloud", "cirrus", "shadow", "snow", "water")
DEFAULT_MASK: tuple[str, ...] = (
    "fill",
    "dilated_cloud",
    "cirrus",
    "cloud",
    "shadow",
    "snow",
    "water",
)

_L2_LEVELS = ("L2SP", "L2SR")
_L1_LEVELS = ("L1TP", "L1GT", "L1GS")
_SR_GROUP = "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"
_ST_GROUP = "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"
_L1_GROUP = "LEVEL1_RADIOMETRIC_RESCALING"
_K_GROUP = "LEVEL1_THERMAL_CONSTANTS"
_PRODUCT_ID_RE = re.compile(
    r"^L[COTEM]0\d_(L1TP|L1GT|L1GS|L2SP|L2SR)_(\d{3})(\d{3})_(\d{8})_(\d{8})_(\d{2})_(T1|T2|RT)$"
)

PathLike = str | os.PathLike[str]


# --------------------------------------------------------------------------- MTL


def read_mtl(path: PathLike) -> dict[str, dict[str, str]]:
    """Parse a Collection 2 ``_MTL.txt`` into ``{group: {key: value}}``.

    Keys are stored under their *innermost* ``GROUP``, so the Level-2 scale
    (``LEVEL2_SURFACE_REFLECTANCE_PARAMETERS/REFLECTANCE_MULT_BAND_n``) is never
    confused with the Level-1 TOA factor of the same name in
    ``LEVEL1_RADIOMETRIC_RESCALING``. Values are strings with USGS's double quotes
    removed; convert them where they are used.

    Parameters
    ----------
    path : path-like
        The ``_MTL.txt`` file.

    Returns
    -------
    dict
        ``{group_name: {key: value}}``; a group without keys maps to ``{}``.

    Raises
    ------
    InputError
        The file is missing, not text, or not GROUP/END_GROUP structured.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "X_MTL.txt"
    >>> _ = p.write_text('GROUP = A\\n  GROUP = B\\n    K = "v"\\n  END_GROUP = B\\n'
    ...                  'END_GROUP = A\\nEND\\n')
    >>> read_mtl(p)
    {'A': {}, 'B': {'K': 'v'}}
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"Landsat metadata file '{p}' does not exist; give the scene folder or its _MTL.txt."
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Landsat metadata file '{p}' cannot be read as text ({exc}).") from exc
    groups: dict[str, dict[str, str]] = {}
    stack: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "END":
            break
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise InputError(
                f"Landsat metadata file '{p}' line {lineno} is not 'KEY = VALUE' ({line[:60]!r}); "
                "is it really an _MTL.txt?"
            )
        if key == "GROUP":
            stack.append(value)
            groups.setdefault(value, {})
        elif key == "END_GROUP":
            if not stack or stack[-1] != value:
                raise InputError(
                    f"Landsat metadata file '{p}' line {lineno}: END_GROUP = {value} does not "
                    "close the open group; the file is damaged."
                )
            stack.pop()
        else:
            if not stack:
                raise InputError(
                    f"Landsat metadata file '{p}' line {lineno}: '{key}' is outside any GROUP; "
                    "is it really an _MTL.txt?"
                )
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            groups[stack[-1]][key] = value
    if not groups:
        raise InputError(f"Landsat metadata file '{p}' holds no GROUP; is it really an _MTL.txt?")
    if stack:
        raise InputError(
            f"Landsat metadata file '{p}' ends inside GROUP = {stack[-1]}; it is truncated."
        )
    return groups


def find_mtl(path: PathLike) -> Path:
    """The ``_MTL.txt`` of a scene given as its folder or as the MTL file itself.

    Raises
    ------
    InputError
        No MTL (or several) in the folder, or the path does not exist.
    """
    p = Path(path)
    if p.is_file():
        return p
    if not p.exists():
        raise InputError(
            f"Landsat scene '{p}' does not exist; check the 'landsat' path in the scene config."
        )
    found = sorted(q for q in p.iterdir() if q.name.upper().endswith("_MTL.TXT"))
    if not found:
        raise InputError(
            f"Landsat scene folder '{p}' has no *_MTL.txt; geohm reads the scale factors from "
            "it. Copy the MTL from the USGS download, or give the band files with 'bands:' "
            "and 'band_scale'/'band_offset' instead."
        )
    if len(found) > 1:
        names = ", ".join(q.name for q in found)
        raise InputError(
            f"Landsat scene folder '{p}' holds several MTL files ({names}); point 'landsat' at "
            "one of them."
        )
    return found[0]


def _get(mtl: Mapping[str, Mapping[str, str]], group: str, key: str, mtl_path: Path) -> str:
    try:
        return mtl[group][key]
    except KeyError:
        raise InputError(
            f"Landsat metadata file '{mtl_path}' lacks {group}/{key}; the file is incomplete: "
            "download the scene's MTL again."
        ) from None


def _getf(mtl: Mapping[str, Mapping[str, str]], group: str, key: str, mtl_path: Path) -> float:
    value = _get(mtl, group, key, mtl_path)
    try:
        return float(value)
    except ValueError:
        raise InputError(
            f"Landsat metadata file '{mtl_path}': {group}/{key} = {value!r} is not a number."
        ) from None


# --------------------------------------------------------------------------- QA


def _check_mask_names(names: Iterable[str]) -> list[str]:
    out = list(names)
    unknown = [n for n in out if n not in QA_BITS]
    if unknown:
        raise ConfigError(
            f"unknown QA mask name {', '.join(repr(u) for u in unknown)}; valid names are "
            f"{', '.join(QA_BITS)}"
        )
    return out


def _bitmask(names: Iterable[str]) -> int:
    m = 0
    for n in _check_mask_names(names):
        m |= 1 << QA_BITS[n]
    return m


def qa_reasons(qa_values: Any, names: Sequence[str] = DEFAULT_MASK) -> list[str | None]:
    """Why each pixel is masked, from its raw QA_PIXEL value.

    Parameters
    ----------
    qa_values : array-like of int
        Raw 16-bit QA_PIXEL values (any shape; flattened). NaN (a point outside the
        QA raster) gives ``None``.
    names : sequence of str
        The conditions that mask a pixel (keys of :data:`QA_BITS`).

    Returns
    -------
    list of str or None
        Per value, the first flagged condition among ``names`` in the order fill,
        cloud, dilated_cloud, cirrus, shadow, snow, water; ``None`` for a clear pixel.

    Raises
    ------
    ConfigError
        Unknown name in ``names``.

    Examples
    --------
    >>> qa_reasons([21824, 22280, 23888, 1, 21952], ["fill", "cloud", "shadow"])
    [None, 'cloud', 'shadow', 'fill', None]
    """
    wanted = set(_check_mask_names(names))
    order = [n for n in _REASON_ORDER if n in wanted]
    arr = np.asarray(qa_values, dtype=float).ravel()
    out: list[str | None] = []
    for v in arr:
        if not np.isfinite(v):
            out.append(None)
            continue
        iv = int(v)
        out.append(next((n for n in order if iv >> QA_BITS[n] & 1), None))
    return out


def _qa_file(mtl: Mapping[str, Mapping[str, str]], mtl_path: Path) -> Path:
    name = mtl.get("PRODUCT_CONTENTS", {}).get("FILE_NAME_QUALITY_L1_PIXEL")
    if name is None:
        pid = mtl.get("PRODUCT_CONTENTS", {}).get("LANDSAT_PRODUCT_ID", mtl_path.stem[:-4])
        name = f"{pid}_QA_PIXEL.TIF"
    return mtl_path.parent / name


def open_qa(path: PathLike, *, chunks: int | None = 512) -> xr.DataArray:
    """Open the raw QA_PIXEL band (uint16, ``(y, x)``) of a scene or a QA_PIXEL file.

    Parameters
    ----------
    path : path-like
        A C2 scene folder, its ``_MTL.txt``, or a ``*_QA_PIXEL.TIF`` file.
    chunks : int, optional
        Dask chunk size in pixels.

    Raises
    ------
    InputError
        Missing or corrupt file.
    """
    p = Path(path)
    if p.is_dir() or p.name.upper().endswith("_MTL.TXT"):
        mtl_path = find_mtl(p)
        qa_path = _qa_file(read_mtl(mtl_path), mtl_path)
        if not qa_path.exists():
            raise InputError(
                f"Landsat scene '{mtl_path.parent}' lacks its QA_PIXEL file '{qa_path.name}', "
                "needed for cloud masking; download it, or pass mask=() to read without masking."
            )
    else:
        qa_path = p
    da = open_raster(qa_path, chunks=chunks, masked=False, what="Landsat QA_PIXEL band")
    da = da.isel(band=0, drop=True)
    da.attrs = {"long_name": "QA_PIXEL", "source": str(qa_path)}
    return da.rename("qa_pixel")


def qa_mask(
    path_or_qa: PathLike | xr.DataArray, names: Sequence[str] = DEFAULT_MASK
) -> xr.DataArray:
    """Boolean mask of the pixels flagged by any of the named QA_PIXEL conditions.

    ``True`` means *masked* (drop the pixel), as in :mod:`numpy.ma`. Each condition
    is tested on its own bit: the "clear" bit 6 is not used, because cloud-shadow,
    snow and water pixels may carry it.

    Parameters
    ----------
    path_or_qa : path-like or xarray.DataArray
        A scene folder, its MTL, a QA_PIXEL file, or raw QA values.
    names : sequence of str
        Conditions to mask (keys of :data:`QA_BITS`).

    Returns
    -------
    xarray.DataArray
        bool, same dims/coords as the QA band; lazy when the input is.

    Raises
    ------
    ConfigError
        Unknown name in ``names``.
    """
    bits = _bitmask(names)
    qa = path_or_qa if isinstance(path_or_qa, xr.DataArray) else open_qa(path_or_qa)
    out = (qa.astype("uint16") & np.uint16(bits)) != 0
    out.attrs = {"long_name": "QA mask (True = masked)", "qa_names": ",".join(names)}
    return out.rename("qa_mask")


# --------------------------------------------------------------------------- reading


def _open_band(path: Path, band: str, chunks: int | None, scene: str) -> xr.DataArray:
    if not path.exists():
        raise InputError(
            f"{scene} lacks the file for band '{band}': '{path}' does not exist. Download the "
            "complete product (every SR/ST band and QA_PIXEL), or list the bands you have with "
            "'bands:' in the scene config."
        )
    da = open_raster(path, chunks=chunks, masked=False, what=f"Landsat band '{band}'")
    if da.sizes.get("band", 1) != 1:
        raise InputError(f"Landsat band file '{path}' has {da.sizes['band']} bands, expected 1.")
    return da.isel(band=0, drop=True)


def _check_same_grid(
    arrays: Sequence[tuple[str, Path, xr.DataArray]],
) -> None:
    name0, path0, ref = arrays[0]
    crs0, tr0, shape0 = ref.rio.crs, ref.rio.transform(), ref.shape
    for name, path, da in arrays[1:]:
        same = (
            da.shape == shape0
            and da.rio.crs == crs0
            and da.rio.transform().almost_equals(tr0, precision=1e-6)
        )
        if not same:
            raise GridError(
                f"band files are on different grids: '{path0}' ({name0}: {shape0[1]}x{shape0[0]} "
                f"px, {crs0}, origin {tr0.c:.3f},{tr0.f:.3f}, pixel {tr0.a:g}) and '{path}' "
                f"({name}: {da.shape[1]}x{da.shape[0]} px, {da.rio.crs}, origin "
                f"{da.rio.transform().c:.3f},{da.rio.transform().f:.3f}, pixel "
                f"{da.rio.transform().a:g}); resample them onto one grid first."
            )


def _stack(layers: Sequence[tuple[str, xr.DataArray]], crs: Any, transform: Affine) -> xr.DataArray:
    names = [n for n, _ in layers]
    out = xr.concat(
        [da for _, da in layers], dim="band", coords="minimal", compat="override", join="override"
    )
    out = out.assign_coords(band=np.array(names, dtype=object))
    out = out.rio.write_crs(crs).rio.write_transform(transform)
    return out


def _dn_to_float(
    dn: xr.DataArray, mult: float, add: float, *, fill: float | None = 0.0
) -> xr.DataArray:
    """``dn * mult + add`` in float32, NaN where ``dn == fill``."""
    val = dn.astype("float32") * np.float32(mult) + np.float32(add)
    if fill is not None:
        val = val.where(dn != fill)
    return val.astype("float32")


def open_landsat(
    path: PathLike,
    *,
    mask: Sequence[str] = DEFAULT_MASK,
    chunks: int | None = 512,
    bands: Sequence[str] | None = None,
) -> xr.DataArray:
    """Open a Landsat 8/9 Collection 2 scene as a lazy reflectance (+ thermal) stack.

    Parameters
    ----------
    path : path-like
        The scene folder as USGS ships it, or its ``_MTL.txt``.
    mask : sequence of str
        QA_PIXEL conditions set to NaN in every band (keys of :data:`QA_BITS`);
        ``()`` reads without the QA band. Fill (DN 0) is NaN in any case.
    chunks : int, optional
        Dask chunk size in pixels (``None``: read on first access, no dask).
    bands : sequence of str, optional
        A subset of :data:`BAND_NAMES` to read; default every band the scene has.

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)``; band coordinate from :data:`BAND_NAMES`.
        Reflectance bands are unitless (0-1): surface reflectance for Level-2,
        ``(M*Q + A) / sin(SUN_ELEVATION)`` TOA reflectance for Level-1. ``thermal``
        (when the scene has it) is in kelvin: Level-2 ST_B10 surface temperature, or
        Level-1 band-10 brightness temperature. CRS and transform are kept
        (``.rio.crs``); attrs hold ``product_id``, ``processing_level``,
        ``spacecraft``, ``date_acquired`` and ``sun_elevation`` (degrees).

    Raises
    ------
    InputError
        Missing/corrupt MTL or band file, Collection 1 or unknown processing level.
    GridError
        The band files are not on one grid.
    ConfigError
        Unknown name in ``mask`` or ``bands``.
    """
    mask = _check_mask_names(mask)
    wanted = list(BAND_NAMES) if bands is None else list(bands)
    unknown = [b for b in wanted if b not in BAND_NAMES]
    if unknown:
        raise ConfigError(
            f"unknown Landsat band {', '.join(repr(u) for u in unknown)}; valid names are "
            f"{', '.join(BAND_NAMES)}"
        )
    mtl_path = find_mtl(path)
    mtl = read_mtl(mtl_path)
    contents = mtl.get("PRODUCT_CONTENTS")
    if contents is None:
        if "PRODUCT_METADATA" in mtl or "L1_METADATA_FILE" in mtl:
            raise InputError(
                f"'{mtl_path}' is a Collection 1 MTL; geohm reads Collection 2 scenes only "
                "(their QA bits differ). Download the Collection 2 product, or give the band "
                "files with 'bands:'."
            )
        raise InputError(f"Landsat metadata file '{mtl_path}' has no PRODUCT_CONTENTS group.")
    level = _get(mtl, "PRODUCT_CONTENTS", "PROCESSING_LEVEL", mtl_path)
    if level not in _L2_LEVELS + _L1_LEVELS:
        raise InputError(
            f"'{mtl_path}': unknown PROCESSING_LEVEL {level!r}; expected one of "
            f"{', '.join(_L2_LEVELS + _L1_LEVELS)}."
        )
    product_id = contents.get("LANDSAT_PRODUCT_ID", mtl_path.name[: -len("_MTL.txt")])
    scene = f"Landsat scene '{mtl_path.parent}'"
    attrs_img = mtl.get("IMAGE_ATTRIBUTES", {})
    sun_elev = _getf(mtl, "IMAGE_ATTRIBUTES", "SUN_ELEVATION", mtl_path)
    is_l2 = level in _L2_LEVELS
    folder = mtl_path.parent

    opened: list[tuple[str, Path, xr.DataArray]] = []
    for name in wanted:
        if name == "thermal":
            key = "FILE_NAME_BAND_ST_B10" if is_l2 else "FILE_NAME_BAND_10"
            if key not in contents:
                if bands is not None:
                    raise InputError(f"{scene} has no thermal band ({level} product).")
                continue
            file = folder / contents[key]
        else:
            n = REFLECTIVE_BANDS[name]
            suffix = f"SR_B{n}" if is_l2 else f"B{n}"
            file = folder / contents.get(f"FILE_NAME_BAND_{n}", f"{product_id}_{suffix}.TIF")
        opened.append((name, file, _open_band(file, name, chunks, scene)))
    if not opened:
        raise InputError(f"{scene}: none of the requested bands is present.")

    qa: xr.DataArray | None = None
    if mask:
        qa_path = _qa_file(mtl, mtl_path)
        if not qa_path.exists():
            raise InputError(
                f"{scene} lacks its QA_PIXEL file '{qa_path.name}', needed to mask "
                f"{', '.join(mask)}; download it, or set the QA mask to an empty list."
            )
        qa = open_raster(qa_path, chunks=chunks, masked=False, what="Landsat QA_PIXEL band")
        qa = qa.isel(band=0, drop=True)
        _check_same_grid([*opened, ("QA_PIXEL", qa_path, qa)])
    else:
        _check_same_grid(opened)

    layers: list[tuple[str, xr.DataArray]] = []
    sin_e = math.sin(math.radians(sun_elev))
    for name, _file, dn in opened:
        if name == "thermal":
            if is_l2:
                mult = _getf(mtl, _ST_GROUP, "TEMPERATURE_MULT_BAND_ST_B10", mtl_path)
                add = _getf(mtl, _ST_GROUP, "TEMPERATURE_ADD_BAND_ST_B10", mtl_path)
                val = _dn_to_float(dn, mult, add)
            else:
                ml = _getf(mtl, _L1_GROUP, "RADIANCE_MULT_BAND_10", mtl_path)
                al = _getf(mtl, _L1_GROUP, "RADIANCE_ADD_BAND_10", mtl_path)
                k1 = _getf(mtl, _K_GROUP, "K1_CONSTANT_BAND_10", mtl_path)
                k2 = _getf(mtl, _K_GROUP, "K2_CONSTANT_BAND_10", mtl_path)
                radiance = _dn_to_float(dn, ml, al)
                # Brightness temperature: K2 / ln(K1 / L + 1).
                log_term = cast(xr.DataArray, np.log(np.float32(k1) / radiance + np.float32(1)))
                val = (np.float32(k2) / log_term).astype("float32")
        else:
            n = REFLECTIVE_BANDS[name]
            group = _SR_GROUP if is_l2 else _L1_GROUP
            mult = _getf(mtl, group, f"REFLECTANCE_MULT_BAND_{n}", mtl_path)
            add = _getf(mtl, group, f"REFLECTANCE_ADD_BAND_{n}", mtl_path)
            if not is_l2:
                if sin_e <= 0:
                    raise InputError(f"'{mtl_path}': SUN_ELEVATION {sun_elev} <= 0 (night scene).")
                mult, add = mult / sin_e, add / sin_e
            val = _dn_to_float(dn, mult, add)
        layers.append((name, val))

    ref = opened[0][2]
    out = _stack(layers, ref.rio.crs, ref.rio.transform())
    if qa is not None:
        flagged = (qa & np.uint16(_bitmask(mask))) != 0
        out = out.where(~flagged).astype("float32")
    out = out.rename("reflectance")
    out.attrs = {
        "product_id": product_id,
        "processing_level": level,
        "spacecraft": attrs_img.get("SPACECRAFT_ID", ""),
        "date_acquired": attrs_img.get("DATE_ACQUIRED", ""),
        "sun_elevation": sun_elev,
        "qa_mask": ",".join(mask),
        "units": "reflectance bands: 1 (0-1); thermal: K",
        "source": str(folder),
    }
    return out


def open_band_files(
    bands: Mapping[str, PathLike],
    *,
    scale: float | None = None,
    offset: float | None = None,
    nodata: float | None = None,
    chunks: int | None = 512,
) -> xr.DataArray:
    """Stack plain single-band files ``{name: path}`` into a lazy float32 cube.

    Parameters
    ----------
    bands : mapping of str to path-like
        Band name (from :data:`BAND_NAMES`; ``thermal`` optional) to file.
    scale, offset : float, optional
        Reflectance = ``value * scale + offset`` for the *reflective* bands (e.g.
        ``2.75e-05`` and ``-0.2`` for Collection 2 Level-2 DNs). ``thermal`` is read
        as stored (give it already in kelvin); it is never scaled by these.
    nodata : float, optional
        Value read as NaN in addition to each file's own nodata (e.g. ``0`` for
        Landsat DNs in files without a nodata tag).
    chunks : int, optional
        Dask chunk size in pixels.

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)``, bands in :data:`BAND_NAMES` order, NaN at nodata,
        CRS and transform of the files.

    Raises
    ------
    ConfigError
        Unknown band name, or no band given.
    InputError
        Missing or corrupt file.
    GridError
        Two files on different grids (both are named).
    """
    unknown = [b for b in bands if b not in BAND_NAMES]
    if unknown:
        raise ConfigError(
            f"unknown band name {', '.join(repr(u) for u in unknown)} in 'bands'; valid names "
            f"are {', '.join(BAND_NAMES)}"
        )
    if not bands:
        raise ConfigError("'bands' is empty; give at least one band file")
    opened: list[tuple[str, Path, xr.DataArray]] = []
    for name in BAND_NAMES:
        if name not in bands:
            continue
        file = Path(bands[name])
        if not file.exists():
            raise InputError(
                f"band file for '{name}' does not exist: '{file}'; check 'bands.{name}' in the "
                "scene config."
            )
        da = open_raster(file, chunks=chunks, masked=True, what=f"band '{name}'")
        if da.sizes.get("band", 1) != 1:
            raise InputError(f"band file '{file}' has {da.sizes['band']} bands, expected 1.")
        opened.append((name, file, da.isel(band=0, drop=True)))
    _check_same_grid(opened)
    layers: list[tuple[str, xr.DataArray]] = []
    for name, _file, da in opened:
        val = da.astype("float32")
        if nodata is not None:
            val = val.where(da != nodata)
        if name != "thermal" and (scale is not None or offset is not None):
            val = val * np.float32(1.0 if scale is None else scale) + np.float32(
                0.0 if offset is None else offset
            )
        layers.append((name, val.astype("float32")))
    ref = opened[0][2]
    out = _stack(layers, ref.rio.crs, ref.rio.transform()).rename("reflectance")
    out.attrs = {
        "scale": float("nan") if scale is None else float(scale),
        "offset": float("nan") if offset is None else float(offset),
        "source": ",".join(f"{n}={p}" for n, p, _ in opened),
    }
    return out


# --------------------------------------------------------------------------- writing

#: Typical Landsat 8 OLI/TIRS Level-1 radiance rescaling (W/(m2 sr um) per DN) at 1 AU.
_L1_RADIANCE = {
    1: (1.2368e-02, -61.84),
    2: (1.2665e-02, -63.32),
    3: (1.1671e-02, -58.35),
    4: (9.8415e-03, -49.21),
    5: (6.0225e-03, -30.11),
    6: (1.4977e-03, -7.49),
    7: (5.0481e-04, -2.52),
    8: (1.1138e-02, -55.69),
    9: (2.3537e-03, -11.77),
}
_K_CONSTANTS = {10: (774.8853, 1321.0789), 11: (480.8883, 1201.1442)}


def _earth_sun_distance(day: _dt.date) -> float:
    """Earth-Sun distance in AU (a standard cosine approximation)."""
    doy = day.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def _mtl_text(groups: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for name, items in groups:
        lines.append(f"  GROUP = {name}")
        lines.extend(f"    {k} = {v}" for k, v in items)
        lines.append(f"  END_GROUP = {name}")
    lines += ["END_GROUP = LANDSAT_METADATA_FILE", "END", ""]
    return "\n".join(lines)


def _q(s: str) -> str:
    return f'"{s}"'


def write_landsat_c2l2(
    folder: PathLike,
    product_id: str,
    *,
    sr: Mapping[str, np.ndarray],
    st_b10: np.ndarray,
    qa_pixel: np.ndarray,
    crs: Any,
    transform: Affine,
    acquired: _dt.date,
    sun_elevation: float,
    sun_azimuth: float,
    scene_center_time: str = "03:35:12.3456780Z",
    sr_mult: float = 2.75e-05,
    sr_add: float = -0.2,
    st_mult: float = 0.00341802,
    st_add: float = 149.0,
    spacecraft: str = "LANDSAT_8",
    overviews: bool = True,
) -> Path:
    """Write a Landsat 8/9 Collection 2 Level-2 (L2SP) scene folder as USGS ships it.

    Writes ``<product_id>_SR_B1.TIF`` ... ``_SR_B7.TIF``, ``_ST_B10.TIF``,
    ``_QA_PIXEL.TIF`` (uint16 COGs; SR/ST nodata 0, QA nodata 1) and
    ``<product_id>_MTL.txt`` with the real Collection 2 group and key names
    (PRODUCT_CONTENTS, IMAGE_ATTRIBUTES, PROJECTION_ATTRIBUTES,
    LEVEL2_SURFACE_REFLECTANCE_PARAMETERS, LEVEL2_SURFACE_TEMPERATURE_PARAMETERS,
    LEVEL1_RADIOMETRIC_RESCALING with TOA-like values, LEVEL1_THERMAL_CONSTANTS).
    Only the files listed are written; the MTL still names USGS's other files.

    Parameters
    ----------
    folder : path-like
        Destination folder (created); files go directly in it.
    product_id : str
        Collection 2 product id, e.g. ``LC08_L2SP_127036_20191115_20200825_02_T1``.
    sr : mapping of str to numpy.ndarray
        uint16 DNs ``(y, x)`` for each of coastal, blue, green, red, nir, swir1, swir2.
    st_b10 : numpy.ndarray
        uint16 surface-temperature DNs ``(y, x)``.
    qa_pixel : numpy.ndarray
        uint16 QA_PIXEL values ``(y, x)``.
    crs, transform
        Georeferencing of every band.
    acquired : datetime.date
        DATE_ACQUIRED.
    sun_elevation, sun_azimuth : float
        Scene-centre sun angles in degrees.
    scene_center_time : str
        SCENE_CENTER_TIME (UTC).
    sr_mult, sr_add, st_mult, st_add : float
        Scale factors recorded in the MTL (the USGS values by default).
    spacecraft : str
        SPACECRAFT_ID (``LANDSAT_8`` or ``LANDSAT_9``).
    overviews : bool
        Build internal overviews in the COGs.

    Returns
    -------
    pathlib.Path
        The MTL file written.

    Raises
    ------
    ConfigError
        Malformed product id, missing SR band, wrong dtype or shape.
    """
    m = _PRODUCT_ID_RE.match(product_id)
    if m is None or m.group(1) not in _L2_LEVELS:
        raise ConfigError(
            f"'{product_id}' is not a Collection 2 Level-2 product id "
            "(LXSS_L2SP_PPPRRR_YYYYMMDD_yyyymmdd_02_TX)"
        )
    level, wrs_path, wrs_row, _acq, processed, coll, tier = m.groups()
    missing = [b for b in REFLECTIVE_BANDS if b not in sr]
    if missing:
        raise ConfigError(f"write_landsat_c2l2: missing SR band(s) {', '.join(missing)}")
    shape = np.asarray(qa_pixel).shape
    arrays: dict[str, np.ndarray] = {}
    for name, n in REFLECTIVE_BANDS.items():
        arrays[f"SR_B{n}"] = np.asarray(sr[name])
    arrays["ST_B10"] = np.asarray(st_b10)
    arrays["QA_PIXEL"] = np.asarray(qa_pixel)
    for key, arr in arrays.items():
        if arr.dtype != np.uint16 or arr.shape != shape:
            raise ConfigError(
                f"write_landsat_c2l2: {key} must be uint16 {shape}, got {arr.dtype} {arr.shape}"
            )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, arr in arrays.items():
        write_geotiff(
            folder / f"{product_id}_{key}.TIF",
            arr,
            crs=crs,
            transform=transform,
            nodata=1 if key == "QA_PIXEL" else 0,
            dtype="uint16",
            overviews=overviews,
            overview_resampling="nearest",
        )

    height, width = shape
    qa = arrays["QA_PIXEL"]
    valid = (qa & 1) == 0
    cloudy = (qa & (1 << 3)) != 0
    cloud_cover = 100.0 * float(cloudy.sum()) / max(int(valid.sum()), 1)
    d = _earth_sun_distance(acquired)
    generated = _dt.datetime.strptime(processed, "%Y%m%d").date()

    from pyproj import CRS, Transformer

    crs_obj = CRS.from_user_input(crs)
    epsg = crs_obj.to_epsg() or 0
    utm_zone = (
        epsg - 32600 if 32601 <= epsg <= 32660 else (epsg - 32700 if 32701 <= epsg <= 32760 else 0)
    )
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * width, top + transform.e * height
    to_ll = Transformer.from_crs(crs_obj, "EPSG:4326", always_xy=True)
    corners = {"UL": (left, top), "UR": (right, top), "LL": (left, bottom), "LR": (right, bottom)}

    contents: list[tuple[str, str]] = [
        ("ORIGIN", _q("Image courtesy of the U.S. Geological Survey")),
        ("DIGITAL_OBJECT_IDENTIFIER", _q("https://doi.org/10.5066/P9OGBGM6")),
        ("LANDSAT_PRODUCT_ID", _q(product_id)),
        ("PROCESSING_LEVEL", _q(level)),
        ("COLLECTION_NUMBER", coll),
        ("COLLECTION_CATEGORY", _q(tier)),
        ("OUTPUT_FORMAT", _q("GEOTIFF")),
    ]
    contents += [(f"FILE_NAME_BAND_{n}", _q(f"{product_id}_SR_B{n}.TIF")) for n in range(1, 8)]
    contents += [
        ("FILE_NAME_BAND_ST_B10", _q(f"{product_id}_ST_B10.TIF")),
        ("FILE_NAME_THERMAL_RADIANCE", _q(f"{product_id}_ST_TRAD.TIF")),
        ("FILE_NAME_UPWELL_RADIANCE", _q(f"{product_id}_ST_URAD.TIF")),
        ("FILE_NAME_DOWNWELL_RADIANCE", _q(f"{product_id}_ST_DRAD.TIF")),
        ("FILE_NAME_ATMOSPHERIC_TRANSMITTANCE", _q(f"{product_id}_ST_ATRAN.TIF")),
        ("FILE_NAME_EMISSIVITY", _q(f"{product_id}_ST_EMIS.TIF")),
        ("FILE_NAME_EMISSIVITY_STDEV", _q(f"{product_id}_ST_EMSD.TIF")),
        ("FILE_NAME_CLOUD_DISTANCE", _q(f"{product_id}_ST_CDIST.TIF")),
        ("FILE_NAME_QUALITY_L2_AEROSOL", _q(f"{product_id}_SR_QA_AEROSOL.TIF")),
        ("FILE_NAME_QUALITY_L2_SURFACE_TEMPERATURE", _q(f"{product_id}_ST_QA.TIF")),
        ("FILE_NAME_QUALITY_L1_PIXEL", _q(f"{product_id}_QA_PIXEL.TIF")),
        ("FILE_NAME_QUALITY_L1_RADIOMETRIC_SATURATION", _q(f"{product_id}_QA_RADSAT.TIF")),
        ("FILE_NAME_ANGLE_COEFFICIENT", _q(f"{product_id}_ANG.txt")),
        ("FILE_NAME_METADATA_ODL", _q(f"{product_id}_MTL.txt")),
        ("FILE_NAME_METADATA_XML", _q(f"{product_id}_MTL.xml")),
    ]
    contents += [(f"DATA_TYPE_BAND_{n}", _q("UINT16")) for n in range(1, 8)]
    contents += [
        ("DATA_TYPE_BAND_ST_B10", _q("UINT16")),
        ("DATA_TYPE_QUALITY_L1_PIXEL", _q("UINT16")),
    ]
    image = [
        ("SPACECRAFT_ID", _q(spacecraft)),
        ("SENSOR_ID", _q("OLI_TIRS")),
        ("WRS_TYPE", "2"),
        ("WRS_PATH", str(int(wrs_path))),
        ("WRS_ROW", str(int(wrs_row))),
        ("NADIR_OFFNADIR", _q("NADIR")),
        ("TARGET_WRS_PATH", str(int(wrs_path))),
        ("TARGET_WRS_ROW", str(int(wrs_row))),
        ("DATE_ACQUIRED", acquired.isoformat()),
        ("SCENE_CENTER_TIME", _q(scene_center_time)),
        ("STATION_ID", _q("LGN")),
        ("CLOUD_COVER", f"{cloud_cover:.2f}"),
        ("CLOUD_COVER_LAND", f"{cloud_cover:.2f}"),
        ("IMAGE_QUALITY_OLI", "9"),
        ("IMAGE_QUALITY_TIRS", "9"),
        ("TIRS_SSM_MODEL", _q("FINAL")),
        ("TIRS_SSM_POSITION_STATUS", _q("ESTIMATED")),
        ("ROLL_ANGLE", "-0.001"),
        ("SUN_AZIMUTH", f"{sun_azimuth:.8f}"),
        ("SUN_ELEVATION", f"{sun_elevation:.8f}"),
        ("EARTH_SUN_DISTANCE", f"{d:.7f}"),
    ]
    proj: list[tuple[str, str]] = [
        ("MAP_PROJECTION", _q("UTM" if utm_zone else "UNKNOWN")),
        ("DATUM", _q("WGS84")),
        ("ELLIPSOID", _q("WGS84")),
    ]
    if utm_zone:
        proj.append(("UTM_ZONE", str(utm_zone)))
    proj += [
        ("GRID_CELL_SIZE_REFLECTIVE", f"{abs(transform.a):.2f}"),
        ("GRID_CELL_SIZE_THERMAL", f"{abs(transform.a):.2f}"),
        ("REFLECTIVE_LINES", str(height)),
        ("REFLECTIVE_SAMPLES", str(width)),
        ("THERMAL_LINES", str(height)),
        ("THERMAL_SAMPLES", str(width)),
        ("ORIENTATION", _q("NORTH_UP")),
    ]
    for c, (x, y) in corners.items():
        lon, lat = to_ll.transform(x, y)
        proj += [
            (f"CORNER_{c}_LAT_PRODUCT", f"{lat:.5f}"),
            (f"CORNER_{c}_LON_PRODUCT", f"{lon:.5f}"),
        ]
    for c, (x, y) in corners.items():
        proj += [
            (f"CORNER_{c}_PROJECTION_X_PRODUCT", f"{x:.3f}"),
            (f"CORNER_{c}_PROJECTION_Y_PRODUCT", f"{y:.3f}"),
        ]
    l2_record = [
        ("ORIGIN", _q("Image courtesy of the U.S. Geological Survey")),
        ("DIGITAL_OBJECT_IDENTIFIER", _q("https://doi.org/10.5066/P9OGBGM6")),
        ("REQUEST_ID", _q("geohm_synthetic")),
        ("LANDSAT_PRODUCT_ID", _q(product_id)),
        ("PROCESSING_LEVEL", _q(level)),
        ("OUTPUT_FORMAT", _q("GEOTIFF")),
        ("DATE_PRODUCT_GENERATED", f"{generated.isoformat()}T12:00:00Z"),
        ("PROCESSING_SOFTWARE_VERSION", _q("LPGS_15.3.1c")),
        ("ALGORITHM_SOURCE_SURFACE_REFLECTANCE", _q("LaSRC_1.5.0")),
        ("ALGORITHM_SOURCE_SURFACE_TEMPERATURE", _q("singleChannel_1.3.0")),
    ]
    sr_params: list[tuple[str, str]] = []
    qmax, qmin = 65535, 1
    for n in range(1, 8):
        sr_params += [
            (f"REFLECTANCE_MAXIMUM_BAND_{n}", f"{qmax * sr_mult + sr_add:.6f}"),
            (f"REFLECTANCE_MINIMUM_BAND_{n}", f"{qmin * sr_mult + sr_add:.6f}"),
        ]
    for n in range(1, 8):
        sr_params += [
            (f"QUANTIZE_CAL_MAX_BAND_{n}", str(qmax)),
            (f"QUANTIZE_CAL_MIN_BAND_{n}", str(qmin)),
        ]
    sr_params += [(f"REFLECTANCE_MULT_BAND_{n}", repr(float(sr_mult))) for n in range(1, 8)]
    sr_params += [(f"REFLECTANCE_ADD_BAND_{n}", repr(float(sr_add))) for n in range(1, 8)]
    st_params = [
        ("TEMPERATURE_MAXIMUM_BAND_ST_B10", f"{qmax * st_mult + st_add:.6f}"),
        ("TEMPERATURE_MINIMUM_BAND_ST_B10", f"{qmin * st_mult + st_add:.6f}"),
        ("QUANTIZE_CAL_MAXIMUM_BAND_ST_B10", str(qmax)),
        ("QUANTIZE_CAL_MINIMUM_BAND_ST_B10", str(qmin)),
        ("TEMPERATURE_MULT_BAND_ST_B10", repr(float(st_mult))),
        ("TEMPERATURE_ADD_BAND_ST_B10", repr(float(st_add))),
    ]
    l1_record = [
        ("ORIGIN", _q("Image courtesy of the U.S. Geological Survey")),
        ("DIGITAL_OBJECT_IDENTIFIER", _q("https://doi.org/10.5066/P975CC9B")),
        ("LANDSAT_PRODUCT_ID", _q(product_id.replace(level, "L1TP", 1))),
        ("PROCESSING_LEVEL", _q("L1TP")),
        ("COLLECTION_NUMBER", coll),
        ("COLLECTION_CATEGORY", _q(tier)),
    ]
    # Reflective radiance factors scale with 1/d^2 (solar irradiance); thermal ones do not.
    radiance = {n: _L1_RADIANCE.get(n, (3.3420e-04, 0.1)) for n in range(1, 12)}
    radiance = {n: (m / d**2, a / d**2) if n <= 9 else (m, a) for n, (m, a) in radiance.items()}
    rescale = [(f"RADIANCE_MULT_BAND_{n}", f"{m:.4E}") for n, (m, _a) in radiance.items()]
    rescale += [(f"RADIANCE_ADD_BAND_{n}", f"{a:.5f}") for n, (_m, a) in radiance.items()]
    rescale += [(f"REFLECTANCE_MULT_BAND_{n}", "2.0000E-05") for n in range(1, 10)]
    rescale += [(f"REFLECTANCE_ADD_BAND_{n}", "-0.100000") for n in range(1, 10)]
    thermal_k = []
    for b, (k1, k2) in _K_CONSTANTS.items():
        thermal_k += [
            (f"K1_CONSTANT_BAND_{b}", f"{k1:.4f}"),
            (f"K2_CONSTANT_BAND_{b}", f"{k2:.4f}"),
        ]
    text = _mtl_text(
        [
            ("PRODUCT_CONTENTS", contents),
            ("IMAGE_ATTRIBUTES", image),
            ("PROJECTION_ATTRIBUTES", proj),
            ("LEVEL2_PROCESSING_RECORD", l2_record),
            (_SR_GROUP, sr_params),
            (_ST_GROUP, st_params),
            ("LEVEL1_PROCESSING_RECORD", l1_record),
            (_L1_GROUP, rescale),
            (_K_GROUP, thermal_k),
        ]
    )
    mtl_path = folder / f"{product_id}_MTL.txt"
    with atomic_path(mtl_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return mtl_path

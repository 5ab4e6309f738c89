"""Read Landsat 8/9 Collection 2 scenes (and plain band files) as lazy reflectance stacks.

Reading is lazy: every band is opened with rioxarray as a dask array, scaled with
the factors found in the scene's own ``_MTL.txt`` (never hard-coded) and stacked
into one float32 ``(band, y, x)`` DataArray whose band coordinate uses the words
of :data:`~geohm.io.landsat.mtl.BAND_NAMES` (``"red"``, ``"nir"``), not ``B4``/``B5``.

Level-2 (``L2SP``/``L2SR``) scenes give surface reflectance (0-1) and, for L2SP,
surface temperature in kelvin. Level-1 (``L1TP``/``L1GT``/``L1GS``) scenes give
top-of-atmosphere reflectance corrected for the sun elevation and the band-10
brightness temperature in kelvin. Collection 1 scenes (a different QA bit layout)
are refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import xarray as xr
from affine import Affine

from geohm.errors import ConfigError, GridError, InputError
from geohm.io.landsat.mtl import (
    BAND_NAMES,
    K_GROUP,
    L1_GROUP,
    L1_LEVELS,
    L2_LEVELS,
    REFLECTIVE_BANDS,
    SR_GROUP,
    ST_GROUP,
    PathLike,
    find_mtl,
    get_number,
    get_value,
    read_mtl,
)
from geohm.io.landsat.qa import DEFAULT_MASK, bitmask, check_mask_names, qa_file
from geohm.io.rasters import open_raster

__all__ = ["open_band_files", "open_landsat"]


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
    mask = check_mask_names(mask)
    wanted = _wanted_bands(bands)
    scene = _read_scene(path)
    opened = _open_scene_bands(scene, wanted, chunks, subset=bands is not None)
    qa = _open_scene_qa(scene, opened, mask, chunks)
    layers = [(name, _physical_values(scene, name, dn)) for name, _file, dn in opened]
    ref = opened[0][2]
    out = _stack(layers, ref.rio.crs, ref.rio.transform())
    if qa is not None:
        flagged = (qa & np.uint16(bitmask(mask))) != 0
        out = out.where(~flagged).astype("float32")
    out = out.rename("reflectance")
    out.attrs = {
        "product_id": scene.product_id,
        "processing_level": scene.level,
        "spacecraft": scene.image.get("SPACECRAFT_ID", ""),
        "date_acquired": scene.image.get("DATE_ACQUIRED", ""),
        "sun_elevation": scene.sun_elevation,
        "qa_mask": ",".join(mask),
        "units": "reflectance bands: 1 (0-1); thermal: K",
        "source": str(scene.folder),
    }
    return out


@dataclass(frozen=True)
class _Scene:
    """What :func:`open_landsat` needs from a scene's MTL."""

    mtl_path: Path
    mtl: Mapping[str, Mapping[str, str]]
    level: str
    product_id: str
    sun_elevation: float

    @property
    def contents(self) -> Mapping[str, str]:
        return self.mtl["PRODUCT_CONTENTS"]

    @property
    def image(self) -> Mapping[str, str]:
        return self.mtl.get("IMAGE_ATTRIBUTES", {})

    @property
    def is_l2(self) -> bool:
        return self.level in L2_LEVELS

    @property
    def folder(self) -> Path:
        return self.mtl_path.parent

    @property
    def label(self) -> str:
        """How messages name the scene."""
        return f"Landsat scene '{self.mtl_path.parent}'"

    def number(self, group: str, key: str) -> float:
        return get_number(self.mtl, group, key, self.mtl_path)


def _wanted_bands(bands: Sequence[str] | None) -> list[str]:
    """The bands to read, in the caller's order; every band by default."""
    wanted = list(BAND_NAMES) if bands is None else list(bands)
    unknown = [b for b in wanted if b not in BAND_NAMES]
    if unknown:
        raise ConfigError(
            f"unknown Landsat band {', '.join(repr(u) for u in unknown)}; valid names are "
            f"{', '.join(BAND_NAMES)}"
        )
    return wanted


def _read_scene(path: PathLike) -> _Scene:
    """The scene's MTL, checked: Collection 2, a known processing level, a sun elevation."""
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
    level = get_value(mtl, "PRODUCT_CONTENTS", "PROCESSING_LEVEL", mtl_path)
    if level not in L2_LEVELS + L1_LEVELS:
        raise InputError(
            f"'{mtl_path}': unknown PROCESSING_LEVEL {level!r}; expected one of "
            f"{', '.join(L2_LEVELS + L1_LEVELS)}."
        )
    return _Scene(
        mtl_path=mtl_path,
        mtl=mtl,
        level=level,
        product_id=contents.get("LANDSAT_PRODUCT_ID", mtl_path.name[: -len("_MTL.txt")]),
        sun_elevation=get_number(mtl, "IMAGE_ATTRIBUTES", "SUN_ELEVATION", mtl_path),
    )


def _band_file(scene: _Scene, name: str) -> Path | None:
    """The file of band ``name``; ``None`` when the product has no thermal band."""
    contents = scene.contents
    if name == "thermal":
        key = "FILE_NAME_BAND_ST_B10" if scene.is_l2 else "FILE_NAME_BAND_10"
        return scene.folder / contents[key] if key in contents else None
    n = REFLECTIVE_BANDS[name]
    suffix = f"SR_B{n}" if scene.is_l2 else f"B{n}"
    return scene.folder / contents.get(f"FILE_NAME_BAND_{n}", f"{scene.product_id}_{suffix}.TIF")


def _open_scene_bands(
    scene: _Scene, wanted: Sequence[str], chunks: int | None, *, subset: bool
) -> list[tuple[str, Path, xr.DataArray]]:
    """Open each wanted band as ``(name, file, DNs)``.

    A missing thermal band is skipped unless the caller asked for it (``subset``).
    """
    opened: list[tuple[str, Path, xr.DataArray]] = []
    for name in wanted:
        file = _band_file(scene, name)
        if file is None:
            if subset:
                raise InputError(f"{scene.label} has no thermal band ({scene.level} product).")
            continue
        opened.append((name, file, _open_band(file, name, chunks, scene.label)))
    if not opened:
        raise InputError(f"{scene.label}: none of the requested bands is present.")
    return opened


def _open_scene_qa(
    scene: _Scene,
    opened: Sequence[tuple[str, Path, xr.DataArray]],
    mask: Sequence[str],
    chunks: int | None,
) -> xr.DataArray | None:
    """Open the raw QA_PIXEL band when ``mask`` names a condition (``None`` otherwise).

    Checks first that it and every band lie on one grid.
    """
    if not mask:
        _check_same_grid(opened)
        return None
    qa_path = qa_file(scene.mtl, scene.mtl_path)
    if not qa_path.exists():
        raise InputError(
            f"{scene.label} lacks its QA_PIXEL file '{qa_path.name}', needed to mask "
            f"{', '.join(mask)}; download it, or set the QA mask to an empty list."
        )
    qa = open_raster(qa_path, chunks=chunks, masked=False, what="Landsat QA_PIXEL band")
    qa = qa.isel(band=0, drop=True)
    _check_same_grid([*opened, ("QA_PIXEL", qa_path, qa)])
    return qa


def _physical_values(scene: _Scene, name: str, dn: xr.DataArray) -> xr.DataArray:
    """Band ``name`` in physical units: reflectance (0-1) or, for ``thermal``, kelvin."""
    if name == "thermal":
        return _thermal_kelvin(scene, dn)
    n = REFLECTIVE_BANDS[name]
    group = SR_GROUP if scene.is_l2 else L1_GROUP
    mult = scene.number(group, f"REFLECTANCE_MULT_BAND_{n}")
    add = scene.number(group, f"REFLECTANCE_ADD_BAND_{n}")
    if not scene.is_l2:
        # Level-1 TOA reflectance is (M*Q + A) / sin(sun elevation).
        sin_e = math.sin(math.radians(scene.sun_elevation))
        if sin_e <= 0:
            raise InputError(
                f"'{scene.mtl_path}': SUN_ELEVATION {scene.sun_elevation} <= 0 (night scene)."
            )
        mult, add = mult / sin_e, add / sin_e
    return _dn_to_float(dn, mult, add)


def _thermal_kelvin(scene: _Scene, dn: xr.DataArray) -> xr.DataArray:
    """Level-2 surface temperature, or Level-1 band-10 brightness temperature, in kelvin."""
    if scene.is_l2:
        mult = scene.number(ST_GROUP, "TEMPERATURE_MULT_BAND_ST_B10")
        add = scene.number(ST_GROUP, "TEMPERATURE_ADD_BAND_ST_B10")
        return _dn_to_float(dn, mult, add)
    ml = scene.number(L1_GROUP, "RADIANCE_MULT_BAND_10")
    al = scene.number(L1_GROUP, "RADIANCE_ADD_BAND_10")
    k1 = scene.number(K_GROUP, "K1_CONSTANT_BAND_10")
    k2 = scene.number(K_GROUP, "K2_CONSTANT_BAND_10")
    radiance = _dn_to_float(dn, ml, al)
    # Brightness temperature: K2 / ln(K1 / L + 1).
    log_term = cast(xr.DataArray, np.log(np.float32(k1) / radiance + np.float32(1)))
    return (np.float32(k2) / log_term).astype("float32")


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


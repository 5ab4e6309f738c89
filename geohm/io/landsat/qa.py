"""Collection 2 QA_PIXEL: which bit flags which condition, masks and reasons per pixel."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from geohm.errors import ConfigError, InputError
from geohm.io.landsat.mtl import PathLike, find_mtl, read_mtl
from geohm.io.rasters import open_raster

__all__ = ["DEFAULT_MASK", "QA_BITS", "open_qa", "qa_mask", "qa_reasons"]

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


def check_mask_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list; :class:`ConfigError` listing the valid names for an unknown one."""
    out = list(names)
    unknown = [n for n in out if n not in QA_BITS]
    if unknown:
        raise ConfigError(
            f"unknown QA mask name {', '.join(repr(u) for u in unknown)}; valid names are "
            f"{', '.join(QA_BITS)}"
        )
    return out


def bitmask(names: Iterable[str]) -> int:
    """The QA_PIXEL bits of the named conditions, OR-ed into one integer."""
    m = 0
    for n in check_mask_names(names):
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
    wanted = set(check_mask_names(names))
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


def qa_file(mtl: Mapping[str, Mapping[str, str]], mtl_path: Path) -> Path:
    """The QA_PIXEL file the MTL names (or the USGS default name next to it)."""
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
        qa_path = qa_file(read_mtl(mtl_path), mtl_path)
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
    bits = bitmask(names)
    qa = path_or_qa if isinstance(path_or_qa, xr.DataArray) else open_qa(path_or_qa)
    out = (qa.astype("uint16") & np.uint16(bits)) != 0
    out.attrs = {"long_name": "QA mask (True = masked)", "qa_names": ",".join(names)}
    return out.rename("qa_mask")


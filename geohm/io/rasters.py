"""GeoTIFF / Cloud-Optimised GeoTIFF writing: whole arrays and tile by tile.

Reading lives in :mod:`geohm.io.reading`, atomic renames in :mod:`geohm.io.atomic` and
the completeness check in :mod:`geohm.io.geotiff_check` (all re-exported here). Every
file geohm writes goes to a temporary name in the destination folder and is
renamed when complete (:func:`atomic_path`), so a killed run never leaves a
half-written file under its final name. A write that fails (a full disk, a quota, an
I/O error) raises :class:`~geohm.errors.OutputError` naming the device and the file,
and nothing is renamed: a GeoTIFF is renamed only once it has been closed and opened
again, its block index checked against the file size and its last blocks decoded
(:func:`verify_geotiff`), because GDAL reports some failed writes only on stderr.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
from rasterio._err import CPLE_BaseError  # raised as is by rasterio.shutil.copy
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geohm.grid import Grid
from geohm.io.atomic import (  # noqa: F401  (re-exported)
    IncompleteWrite,
    _make_folder,
    _remove_temporaries,
    atomic_path,
    before_write,
    write_error,
)
from geohm.io.geotiff_check import verify_geotiff
from geohm.io.reading import (  # noqa: F401  (re-exported: the reading half of this module)
    band_metadata,
    check_raster,
    open_aligned,
    open_aligned_bands,
    open_raster,
    raster_grid,
    read_block,
    read_overview,
)

__all__ = [
    "IncompleteWrite",
    "TileWriter",
    "atomic_path",
    "check_raster",
    "gdal_env",
    "io_versions",
    "band_metadata",
    "open_aligned",
    "open_aligned_bands",
    "open_raster",
    "raster_grid",
    "read_block",
    "read_overview",
    "verify_geotiff",
    "write_category_names",
    "write_error",
    "write_geotiff",
]

#: Creation options of every GeoTIFF geohm writes (Cloud-Optimised GeoTIFF layout).
COG_OPTIONS: dict[str, str] = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "256",
    "OVERVIEW_RESAMPLING": "AVERAGE",
    "BIGTIFF": "IF_SAFER",
    "NUM_THREADS": "ALL_CPUS",
}

_OVERVIEW_RESAMPLING = {"average": "AVERAGE", "nearest": "NEAREST", "mode": "MODE"}


def _set_band_meta(
    dst: Any,
    count: int,
    descriptions: Sequence[str] | None,
    units: Sequence[str] | str | None,
) -> None:
    if descriptions is not None:
        for i, d in enumerate(descriptions, start=1):
            dst.set_band_description(i, d)
    if units is not None:
        unit_list = [units] * count if isinstance(units, str) else list(units)
        for i, u in enumerate(unit_list, start=1):
            dst.update_tags(i, units=u)
            dst.set_band_unit(i, u)


def _finish_cog(
    tmp_src: Any,
    final: Path,
    *,
    overviews: bool,
    overview_resampling: str,
    paletted: bool = False,
) -> None:
    """Copy an open dataset to ``final`` in COG layout, atomically.

    The copy is renamed only when :func:`verify_geotiff` finds it complete; any failure
    raises :class:`~geohm.errors.OutputError` and leaves no temporary file.
    """
    options = dict(COG_OPTIONS)
    options["OVERVIEW_RESAMPLING"] = _OVERVIEW_RESAMPLING[overview_resampling]
    options["OVERVIEWS"] = "AUTO" if overviews else "NONE"
    if paletted:  # class rasters: a predictor only hurts
        options.pop("PREDICTOR")
    shape = (tmp_src.count, tmp_src.height, tmp_src.width)
    dtype = tmp_src.dtypes[0]

    def check(tmp: Path) -> None:
        verify_geotiff(tmp, shape=shape, dtype=dtype)

    with atomic_path(final, check=check, nbytes=_raw_bytes(shape, dtype)) as tmp:
        try:
            rasterio.shutil.copy(tmp_src, tmp, driver="COG", **options)
        except (RasterioError, CPLE_BaseError) as exc:
            raise IncompleteWrite(str(exc)) from exc


def _raw_bytes(shape: tuple[int, int, int], dtype: str) -> int:
    """Uncompressed size of a raster (what a write of it may need at most, about)."""
    return int(np.prod(shape)) * np.dtype(dtype).itemsize


def write_geotiff(
    path: str | os.PathLike[str],
    data: np.ndarray,
    *,
    crs: Any,
    transform: Any,
    nodata: float | int | None = None,
    descriptions: Sequence[str] | None = None,
    units: Sequence[str] | str | None = None,
    tags: Mapping[str, str] | None = None,
    dtype: str | None = None,
    overviews: bool = True,
    overview_resampling: str = "average",
    colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
) -> Path:
    """Write an in-memory array as a Cloud-Optimised GeoTIFF, atomically.

    Parameters
    ----------
    path : path-like
        Destination; its folder is created.
    data : numpy.ndarray
        (y, x) or (band, y, x). NaN is written as ``nodata`` for float outputs.
    crs, transform
        Georeferencing (anything rasterio accepts).
    nodata : number, optional
        The nodata value recorded in the file.
    descriptions, units : sequence of str, optional
        Per-band description and unit (``"mg/kg"``).
    tags : mapping, optional
        Dataset-level metadata tags.
    dtype : str, optional
        Output data type (default: ``data.dtype``).
    overviews : bool
        Build internal overviews.
    overview_resampling : {"average", "nearest", "mode"}
        ``nearest``/``mode`` for class rasters.
    colormap : mapping, optional
        Colour table for a single-band integer raster.

    Returns
    -------
    pathlib.Path
        The final path.
    """
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"write_geotiff expects (y, x) or (band, y, x), got shape {arr.shape}")
    out_dtype = np.dtype(dtype or arr.dtype)
    if nodata is not None and np.issubdtype(out_dtype, np.floating):
        arr = np.where(np.isnan(arr), nodata, arr)
    arr = arr.astype(out_dtype, copy=False)
    final = Path(path)
    profile = {
        "driver": "GTiff",
        "count": arr.shape[0],
        "height": arr.shape[1],
        "width": arr.shape[2],
        "dtype": out_dtype.name,
        "crs": crs,
        "transform": transform,
        "nodata": nodata,
    }
    with rasterio.MemoryFile() as mem, mem.open(**profile) as ds:
        ds.write(arr)
        _set_band_meta(ds, arr.shape[0], descriptions, units)
        if tags:
            ds.update_tags(**tags)
        if colormap is not None:
            ds.write_colormap(1, dict(colormap))
        _finish_cog(
            ds,
            final,
            overviews=overviews,
            overview_resampling=overview_resampling,
            paletted=colormap is not None,
        )
    return final


class TileWriter:
    """Write a single- or multi-band raster window by window, then publish it as a COG.

    Windows go to a tiled scratch GeoTIFF (a temporary name in the destination
    folder); :meth:`close` checks it (:func:`verify_geotiff`), converts it to COG layout
    with overviews, checks that and renames it to the final name. If the block raises,
    or a write fails, nothing appears under the final name and no temporary file stays;
    a failed write raises :class:`~geohm.errors.OutputError` ("no space left on device
    ... while writing ...").

    Parameters
    ----------
    path : path-like
        Final destination.
    grid : Grid
        Output grid.
    dtype : str
        Output data type.
    nodata : number
        Written where the array is NaN (floats) and recorded in the file.
    count : int
        Number of bands.
    descriptions, units, tags, overview_resampling, colormap
        As in :func:`write_geotiff`.
    categories : mapping of int to str, optional
        Class names of a class raster, written as GDAL category names (see
        :func:`write_category_names`).
    blocksize : int
        Internal tile size of the scratch file.

    Examples
    --------
    >>> with TileWriter(path, grid, dtype="float32", nodata=-9999) as w:  # doctest: +SKIP
    ...     w.write(0, 0, array)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: Grid,
        *,
        dtype: str = "float32",
        nodata: float | int | None = None,
        count: int = 1,
        descriptions: Sequence[str] | None = None,
        units: Sequence[str] | str | None = None,
        tags: Mapping[str, str] | None = None,
        overview_resampling: str = "average",
        colormap: Mapping[int, tuple[int, int, int, int]] | None = None,
        categories: Mapping[int, str] | None = None,
        blocksize: int = 256,
    ) -> None:
        self.path = Path(path)
        self.grid = grid
        self.dtype = np.dtype(dtype)
        self.nodata = nodata
        self.overview_resampling = overview_resampling
        self.categories = dict(categories) if categories else None
        self._shape = (count, grid.height, grid.width)
        self._nbytes = _raw_bytes(self._shape, self.dtype.name)
        self._paletted = colormap is not None
        self._closed = True  # until the scratch file is open
        _make_folder(self.path, self._nbytes)
        self._scratch = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(4)}.scratch.tif")
        ds = None
        try:
            # Not sparse: every block is written, so that one missing from the block index
            # can only be a failed write (see verify_geotiff).
            ds = rasterio.open(
                self._scratch,
                "w",
                driver="GTiff",
                count=count,
                height=grid.height,
                width=grid.width,
                dtype=self.dtype.name,
                crs=grid.crs,
                transform=grid.transform,
                nodata=nodata,
                tiled=True,
                blockxsize=blocksize,
                blockysize=blocksize,
                compress="DEFLATE",
                BIGTIFF="IF_SAFER",
            )
            _set_band_meta(ds, count, descriptions, units)
            if tags:
                ds.update_tags(**tags)
            if colormap is not None:
                ds.write_colormap(1, dict(colormap))
        except (OSError, RasterioError, CPLE_BaseError) as exc:
            error = write_error(self.path, exc, nbytes=self._nbytes)
            if ds is not None:
                with contextlib.suppress(OSError, RasterioError, CPLE_BaseError):
                    ds.close()
            _remove_temporaries(self._scratch)
            raise error from exc
        self._ds = ds
        self._closed = False

    def write(self, row_off: int, col_off: int, data: np.ndarray) -> None:
        """Write ``data`` ((y, x) or (band, y, x)) with its top-left pixel at (row_off, col_off).

        NaN becomes nodata.
        """
        arr = np.asarray(data)
        if arr.ndim == 2:
            arr = arr[None]
        if self.nodata is not None and np.issubdtype(arr.dtype, np.floating):
            arr = np.where(np.isnan(arr), self.nodata, arr)
        window = Window(col_off, row_off, arr.shape[2], arr.shape[1])
        try:
            self._ds.write(arr.astype(self.dtype, copy=False), window=window)
        except (OSError, RasterioError, CPLE_BaseError) as exc:
            raise write_error(self.path, exc, nbytes=self._nbytes) from exc

    def close(self) -> Path:
        """Finish: build the COG with overviews, rename it to the final name.

        Raises
        ------
        OutputError
            A write failed (no space left, a quota, an I/O error); nothing was renamed.
        """
        if self._closed:
            return self.path
        self._closed = True
        try:
            try:
                self._ds.close()
                verify_geotiff(self._scratch, shape=self._shape, dtype=self.dtype.name)
            except (OSError, RasterioError, CPLE_BaseError) as exc:
                raise write_error(self.path, exc, nbytes=self._nbytes) from exc
            with rasterio.open(self._scratch) as src:
                _finish_cog(
                    src,
                    self.path,
                    overviews=True,
                    overview_resampling=self.overview_resampling,
                    paletted=self._paletted,
                )
        finally:
            self._discard_scratch()
        if self.categories:
            write_category_names(self.path, self.categories)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; the final path is untouched."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError, RasterioError, CPLE_BaseError):  # a full disk
            self._ds.close()
        self._discard_scratch()

    def _discard_scratch(self) -> None:
        _remove_temporaries(self._scratch)

    def __enter__(self) -> TileWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


@contextlib.contextmanager
def gdal_env(cache_mb: int = 64) -> Iterator[None]:
    """GDAL settings for streaming work: a small block cache keeps memory flat.

    GDAL's default cache is a share of RAM (about 1.2 GB on a 24 GB machine) and
    dominates peak memory of a windowed loop; 64 MB costs no speed (design.md).

    Parameters
    ----------
    cache_mb : int, default=64
        GDAL's raster block cache, in MiB.
    """
    # rasterio hands an integer GDAL_CACHEMAX to GDALSetCacheMax64, which counts bytes
    # (not megabytes as the GDAL config option does): 64 would be a 64-byte cache, and
    # every decimated or unaligned read would decode its blocks again and again.
    with rasterio.Env(GDAL_CACHEMAX=int(cache_mb) * 2**20):
        yield


def io_versions() -> dict[str, str]:
    """Versions of the I/O stack (for report.json)."""
    return {
        "rasterio": rasterio.__version__,
        "gdal": rasterio.__gdal_version__,
        "rioxarray": rioxarray.__version__,
    }


def write_category_names(path: str | os.PathLike[str], names: Mapping[int, str]) -> Path:
    """Record class names of band 1 as GDAL category names, beside a GeoTIFF.

    TIFF has no tag for category names: GDAL keeps them (like statistics) in the
    ``<file>.aux.xml`` sidecar, where gdalinfo, QGIS and rasterio-based tools find them.
    The names are also in the GeoTIFF's own metadata tags (``CLASS_<code>``) when written
    by geohm, so nothing is lost if the sidecar is not copied along.
    """
    import xml.etree.ElementTree as ET

    final = Path(str(path) + ".aux.xml")
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    cats = ET.SubElement(band, "CategoryNames")
    for code in range(max(names) + 1):
        ET.SubElement(cats, "Category").text = names.get(code, "")
    ET.indent(root)
    with atomic_path(final) as tmp:
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=False)
    return final

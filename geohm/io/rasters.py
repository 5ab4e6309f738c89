"""Raster reading and atomic GeoTIFF / Cloud-Optimised GeoTIFF writing.

Every file geohm writes goes to a temporary name in the destination folder and is
renamed when complete (:func:`atomic_path`), so a killed run never leaves a
half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geohm.errors import GridError, InputError
from geohm.grid import Grid

__all__ = [
    "AlignedWindows",
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
    "write_category_names",
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


@contextlib.contextmanager
def atomic_path(final_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it there on success.

    The temporary name keeps the extension (drivers such as GPKG choose by it) and
    starts with a dot, so a half-written file is never mistaken for an output. On
    an exception the temporary file (and any GDAL ``.aux.xml`` beside it) is removed
    and the exception propagates; an existing file at ``final_path`` is untouched.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    final = Path(final_path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.tmp{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".aux.xml")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    aux = final.with_name(final.name + ".aux.xml")
    with contextlib.suppress(FileNotFoundError):
        aux.unlink()


def _open_error(path: str | os.PathLike[str], exc: Exception, what: str) -> InputError:
    p = Path(path)
    if not p.exists():
        return InputError(f"{what} '{p}' does not exist; check the path in the scene config.")
    return InputError(
        f"{what} '{p}' cannot be read as a raster ({exc}); it may be corrupt or truncated: "
        "download or export it again."
    )


def check_raster(
    path: str | os.PathLike[str], *, what: str = "raster", assume_crs: str | None = None
) -> Grid:
    """Open ``path`` once to check it is a readable, georeferenced raster; return its grid.

    Reads the header and the last block, which catches most truncated files.
    ``assume_crs`` (e.g. ``"EPSG:28992"``) is the CRS of a file that carries none; a CRS
    in the file always wins.

    Raises
    ------
    InputError
        Missing, unreadable or corrupt file.
    GridError
        The raster has no CRS.
    """
    try:
        with rasterio.open(path) as src:
            crs = src.crs if src.crs is not None else _assumed(assume_crs)
            if crs is None:
                raise GridError(
                    f"{what} '{path}' has no coordinate reference system; assign one "
                    "(gdal_edit.py -a_srs EPSG:XXXX) or set 'assume_crs: EPSG:XXXX' in the "
                    "config, and run again."
                )
            src.read(1, window=Window(src.width - 1, src.height - 1, 1, 1))
            return Grid(crs.to_wkt(), src.transform, src.width, src.height)
    except (RasterioIOError, RasterioError) as exc:
        raise _open_error(path, exc, what) from exc


def _assumed(crs: str | None) -> CRS | None:
    if crs is None:
        return None
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise GridError(f"'assume_crs: {crs}' is not a known CRS ({exc})") from None


def raster_grid(
    path: str | os.PathLike[str], *, what: str = "raster", assume_crs: str | None = None
) -> Grid:
    """Grid (CRS, transform, shape) of a raster file (checked by :func:`check_raster`)."""
    return check_raster(path, what=what, assume_crs=assume_crs)


def open_raster(
    path: str | os.PathLike[str],
    *,
    chunks: int | None = None,
    masked: bool = True,
    what: str = "raster",
) -> xr.DataArray:
    """Open a raster lazily as a (band, y, x) DataArray with its CRS.

    Parameters
    ----------
    path : path-like
        Any GDAL-readable raster.
    chunks : int, optional
        Dask chunk size in pixels; ``None`` reads eagerly on first access.
    masked : bool
        Replace the file's nodata value with NaN (values become float).
    what : str
        How to name the file in error messages ("DEM", "covariate 'rock'").

    Raises
    ------
    InputError
        The file is missing, unreadable or corrupt.
    """
    check_raster(path, what=what)
    try:
        da = rioxarray.open_rasterio(
            path, masked=masked, chunks=chunks if chunks is None else {"x": chunks, "y": chunks}
        )
    except (RasterioIOError, RasterioError) as exc:
        raise _open_error(path, exc, what) from exc
    assert isinstance(da, xr.DataArray)
    return da


def _warped_vrt(
    src: Any, grid: Grid, resampling: str, assume_crs: str | None, **extra: Any
) -> WarpedVRT:
    """The warped VRT of ``src`` on ``grid``: float32, source nodata masked before resampling."""
    nodata = src.nodata
    return WarpedVRT(
        src,
        src_crs=src.crs if src.crs is not None else _assumed(assume_crs),
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=Resampling[resampling],
        src_nodata=nodata,
        nodata=np.nan if nodata is not None or src.dtypes[0].startswith("float") else None,
        dtype="float32",
        **extra,
    )


def open_aligned(
    path: str | os.PathLike[str],
    grid: Grid,
    *,
    resampling: str = "bilinear",
    chunks: int | None = 512,
    what: str = "raster",
    assume_crs: str | None = None,
) -> xr.DataArray:
    """Open band 1 of ``path`` lazily, warped onto ``grid``.

    The warp is a GDAL warped VRT read block by block, so nothing is loaded until a
    window is asked for. Source nodata is masked *before* resampling (GDAL's warper
    excludes invalid source pixels from the kernel); pixels with no valid source are
    NaN.

    Parameters
    ----------
    path : path-like
        Raster in any CRS and resolution that overlaps ``grid``.
    grid : Grid
        The target grid (usually the Landsat grid).
    resampling : {"bilinear", "nearest", "cubic", "average", "mode"}
        Bilinear for continuous data, nearest (or mode) for categorical data.
    chunks : int, optional
        Dask chunk size in pixels.
    what : str
        How to name the layer in error messages.
    assume_crs : str, optional
        CRS of the file when it carries none (``"EPSG:28992"``).

    Returns
    -------
    xarray.DataArray
        float32 (y, x) on ``grid``, NaN where no valid data.

    Raises
    ------
    InputError, GridError
        Missing/corrupt file, no CRS, or no overlap with the grid.
    """
    src_grid = check_raster(path, what=what, assume_crs=assume_crs)
    _check_overlap(src_grid, grid, path, what)
    try:
        with rasterio.open(path) as src:
            vrt = _warped_vrt(src, grid, resampling, assume_crs)
            da = rioxarray.open_rasterio(
                vrt,
                masked=True,
                chunks=None if chunks is None else {"x": chunks, "y": chunks},
            )
    except (RasterioIOError, RasterioError) as exc:
        raise _open_error(path, exc, what) from exc
    assert isinstance(da, xr.DataArray)
    return da.isel(band=0, drop=True).astype("float32")


def _check_overlap(src: Grid, dst: Grid, path: str | os.PathLike[str], what: str) -> None:
    from rasterio.warp import transform_bounds

    try:
        left, bottom, right, top = transform_bounds(src.crs, dst.crs, *src.bounds)
    except Exception as exc:  # pyproj/GDAL errors for impossible transforms
        raise GridError(
            f"{what} '{path}': cannot transform its extent to the scene CRS: {exc}"
        ) from None
    dl, db, dr, dt = dst.bounds
    if right <= dl or left >= dr or top <= db or bottom >= dt:
        raise GridError(
            f"{what} '{path}' does not overlap the scene (its extent in the scene CRS is "
            f"{left:.0f},{bottom:.0f},{right:.0f},{top:.0f}; the scene is "
            f"{dl:.0f},{db:.0f},{dr:.0f},{dt:.0f}); check that it covers the same area."
        )


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
    """Copy an open dataset to ``final`` in COG layout, atomically."""
    options = dict(COG_OPTIONS)
    options["OVERVIEW_RESAMPLING"] = _OVERVIEW_RESAMPLING[overview_resampling]
    options["OVERVIEWS"] = "AUTO" if overviews else "NONE"
    if paletted:  # class rasters: a predictor only hurts
        options.pop("PREDICTOR")
    with atomic_path(final) as tmp:
        rasterio.shutil.copy(tmp_src, tmp, driver="COG", **options)


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
    folder); :meth:`close` converts it to COG layout with overviews and renames it to
    the final name. If the block raises, nothing appears under the final name.

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._scratch = self.path.with_name(f".{self.path.stem}.{secrets.token_hex(4)}.scratch.tif")
        self._ds = rasterio.open(
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
            SPARSE_OK="TRUE",
        )
        _set_band_meta(self._ds, count, descriptions, units)
        if tags:
            self._ds.update_tags(**tags)
        if colormap is not None:
            self._ds.write_colormap(1, dict(colormap))
        self._paletted = colormap is not None
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
        self._ds.write(arr.astype(self.dtype, copy=False), window=window)

    def close(self) -> Path:
        """Finish: build the COG with overviews, rename it to the final name."""
        if self._closed:
            return self.path
        self._closed = True
        try:
            self._ds.close()
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
        self._ds.close()
        self._discard_scratch()

    def _discard_scratch(self) -> None:
        for p in (self._scratch, self._scratch.with_name(self._scratch.name + ".aux.xml")):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()

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


def read_overview(
    path: str | os.PathLike[str], *, max_size: int = 800, band: int = 1
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A decimated read of one band (using internal overviews) for quicklooks.

    Returns the array (float64, nodata as NaN) and the extent (left, right, bottom, top).
    """
    with rasterio.open(path) as src:
        scale = max(src.width, src.height) / max_size
        shape = (
            max(1, round(src.height / max(scale, 1))),
            max(1, round(src.width / max(scale, 1))),
        )
        arr = src.read(band, out_shape=shape, masked=True, resampling=Resampling.nearest)
        b = src.bounds
        return np.ma.filled(arr.astype("float64"), np.nan), (b.left, b.right, b.bottom, b.top)


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


def read_block(da: xr.DataArray) -> np.ndarray:
    """Compute a (lazy) window of rasters on the calling thread; read errors -> InputError.

    A corrupt block inside an otherwise readable GeoTIFF only shows when that block is
    read: GDAL's message names the file and the block offsets.
    """
    try:
        return np.asarray(da.compute(scheduler="synchronous").values)
    except (RasterioIOError, RasterioError) as exc:
        cause = exc.__cause__ or exc
        raise InputError(
            f"a raster block cannot be read ({cause}); the file is damaged: download or "
            "export it again"
        ) from None


class AlignedWindows:
    """Windows of band 1 of ``path`` warped onto ``grid``, read directly (no dask).

    The values equal those of :func:`open_aligned` with the same arguments, bit for
    bit, for any window: each thread opens its own warped VRT exactly as
    rioxarray does for :func:`open_aligned`, and the requests are shaped so that GDAL
    warps the same pieces as the dask chunk reads do. A reprojecting warp is not
    independent of how it is cut up (GDAL estimates the kernel scale per warped piece);
    chunk reads of at most one VRT block width (512) warp the VRT's own blocks, so a
    window is read here one block column at a time, never as the whole image; a grid
    that fits in one chunk is read whole, as its single chunk is; larger chunks are
    read chunk by chunk as dask does. Only the window (and the VRT blocks under it) is
    warped, not every chunk it touches: a window with a one-pixel halo costs about one
    window, not nine chunks.

    Safe to call from several threads at once (one dataset handle per thread). Nothing
    is opened until the first read; :meth:`close` closes every handle.

    Parameters
    ----------
    path, grid, resampling, assume_crs, what
        As in :func:`open_aligned`.
    chunks : int
        The ``chunks`` of the :func:`open_aligned` array these reads must equal.

    Examples
    --------
    >>> with AlignedWindows(path, grid) as dem:  # doctest: +SKIP
    ...     block = dem.read(0, 0, 512, 512)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: Grid,
        *,
        resampling: str = "bilinear",
        chunks: int = 512,
        what: str = "raster",
        assume_crs: str | None = None,
    ) -> None:
        if resampling not in Resampling.__members__:
            raise ValueError(f"unknown resampling {resampling!r}")
        if chunks < 1:
            raise ValueError("chunks must be a positive number of pixels")
        self.path = Path(path)
        self.grid = grid
        self.resampling = resampling
        self.chunks = int(chunks)
        self.what = what
        self.assume_crs = assume_crs
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: list[Any] = []
        self._params: dict[str, Any] | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        return self.grid.shape

    def _warp_params(self, src: Any) -> dict[str, Any]:
        # The VRT of open_aligned, then the parameters rioxarray re-creates it from.
        with _warped_vrt(src, self.grid, self.resampling, self.assume_crs) as vrt:
            return {
                "src_crs": vrt.src_crs.to_string() if vrt.src_crs else None,
                "crs": vrt.dst_crs.to_string() if vrt.dst_crs else None,
                "resampling": vrt.resampling,
                "tolerance": vrt.tolerance,
                "src_nodata": vrt.src_nodata,
                "nodata": vrt.dst_nodata,
                "width": vrt.dst_width,
                "height": vrt.dst_height,
                "src_transform": vrt.src_transform,
                "transform": vrt.dst_transform,
                "dtype": vrt.working_dtype,
                **vrt.warp_extras,
            }

    def _vrt(self) -> Any:
        vrt = getattr(self._local, "vrt", None)
        if vrt is not None:
            return vrt
        try:
            src = rasterio.open(self.path, sharing=False)
            with self._lock:
                self._handles.append(src)
                if self._params is None:
                    self._params = self._warp_params(src)
                params = self._params
            vrt = WarpedVRT(src, **params)
        except (RasterioIOError, RasterioError) as exc:
            raise _open_error(self.path, exc, self.what) from exc
        with self._lock:
            self._handles.append(vrt)
        self._local.vrt = vrt
        return vrt

    def _read(self, vrt: Any, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        window = ((row_off, row_off + rows), (col_off, col_off + cols))
        try:
            out = vrt.read([1], window=window, masked=True)
        except (RasterioIOError, RasterioError) as exc:
            cause = exc.__cause__ or exc
            raise InputError(
                f"{self.what} '{self.path}': a block cannot be read ({cause}); the file is "
                "damaged: download or export it again"
            ) from None
        return np.ma.filled(out.astype(np.float32), np.float32(np.nan))[0]

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """The (rows, cols) float32 window with its top-left pixel at (row_off, col_off).

        NaN where no valid data, as in :func:`open_aligned`.

        Raises
        ------
        ValueError
            The window is empty or reaches outside the grid.
        InputError
            The file is missing or damaged.
        """
        height, width = self.grid.shape
        if rows < 1 or cols < 1 or row_off < 0 or col_off < 0:
            raise ValueError(f"bad window {(row_off, col_off, rows, cols)}")
        if row_off + rows > height or col_off + cols > width:
            raise ValueError(
                f"window {(row_off, col_off, rows, cols)} exceeds the grid {height}x{width}"
            )
        vrt = self._vrt()
        block_w = int(vrt.block_shapes[0][1])
        out = np.empty((rows, cols), dtype=np.float32)
        if (height <= self.chunks and width <= self.chunks) or self.chunks > block_w:
            # As dask reads them: whole chunks (the whole grid when it is one chunk).
            step = self.chunks
        else:
            # GDAL warps VRT blocks for requests at most one block wide: one block
            # column at a time. A request for the whole grid is warped in one piece
            # instead, so that one is split in two.
            step = block_w
        for r0 in range(row_off // step * step, row_off + rows, step):
            for c0 in range(col_off // step * step, col_off + cols, step):
                r1, c1 = min(r0 + step, height), min(c0 + step, width)
                if step == block_w:
                    # Only the part under the window.
                    rr0, rr1 = max(r0, row_off), min(r1, row_off + rows)
                    cc0, cc1 = max(c0, col_off), min(c1, col_off + cols)
                    if (rr1 - rr0, cc1 - cc0) == (height, width):
                        if height > 1:
                            half = height // 2
                            out[:half] = self._read(vrt, 0, 0, half, width)
                            out[half:] = self._read(vrt, half, 0, height - half, width)
                        else:
                            half = width // 2
                            out[:, :half] = self._read(vrt, 0, 0, 1, half)
                            out[:, half:] = self._read(vrt, 0, half, 1, width - half)
                        continue
                    block = self._read(vrt, rr0, cc0, rr1 - rr0, cc1 - cc0)
                    out[rr0 - row_off : rr1 - row_off, cc0 - col_off : cc1 - col_off] = block
                else:
                    block = self._read(vrt, r0, c0, r1 - r0, c1 - c0)
                    rr0, rr1 = max(r0, row_off), min(r1, row_off + rows)
                    cc0, cc1 = max(c0, col_off), min(c1, col_off + cols)
                    out[rr0 - row_off : rr1 - row_off, cc0 - col_off : cc1 - col_off] = block[
                        rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0
                    ]
        return out

    def close(self) -> None:
        """Close every handle opened so far (later reads open new ones)."""
        with self._lock:
            handles, self._handles = self._handles, []
            self._local = threading.local()
        for h in reversed(handles):  # the VRTs before their sources
            with contextlib.suppress(Exception):
                h.close()

    def __enter__(self) -> AlignedWindows:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def band_metadata(
    path: str | os.PathLike[str], *, what: str = "raster"
) -> list[tuple[str, dict[str, str]]]:
    """Per band of ``path``: its description (``""`` when none) and its metadata tags.

    Raises
    ------
    InputError
        Missing or unreadable file.
    """
    try:
        with rasterio.open(path) as src:
            return [(src.descriptions[i] or "", dict(src.tags(i + 1))) for i in range(src.count)]
    except (RasterioIOError, RasterioError) as exc:
        raise _open_error(path, exc, what) from exc


def open_aligned_bands(
    path: str | os.PathLike[str],
    grid: Grid,
    *,
    resampling: str = "bilinear",
    chunks: int | None = 512,
    what: str = "raster",
    assume_crs: str | None = None,
) -> xr.DataArray:
    """Open every band of ``path`` lazily, warped onto ``grid`` (one warped VRT).

    As :func:`open_aligned` (nodata masked before resampling, band by band; NaN where no
    valid data), for all bands at once: a (band, y, x) float32 DataArray whose ``band``
    coordinate is 1, 2, ... (the file's band numbers). One warped VRT serves every band,
    so GDAL warps each block once for all bands (its block cache keeps the other bands).

    Raises
    ------
    InputError, GridError
        Missing/corrupt file, no CRS, or no overlap with the grid.
    """
    src_grid = check_raster(path, what=what, assume_crs=assume_crs)
    _check_overlap(src_grid, grid, path, what)
    try:
        with rasterio.open(path) as src:
            # Each band's nodata masks that band only (GDAL's default for several
            # bands treats a pixel as nodata only when *every* band is).
            vrt = _warped_vrt(src, grid, resampling, assume_crs, UNIFIED_SRC_NODATA="NO")
            da = rioxarray.open_rasterio(
                vrt,
                masked=True,
                chunks=None if chunks is None else {"band": 1, "x": chunks, "y": chunks},
            )
    except (RasterioIOError, RasterioError) as exc:
        raise _open_error(path, exc, what) from exc
    assert isinstance(da, xr.DataArray)
    return da.astype("float32")

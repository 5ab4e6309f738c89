"""Raster reading: checked opening, and layers warped onto the scene grid in fixed tiles.

Every warped layer geohm reads (a DEM, a covariate, a pH or land-use raster) goes through
one :class:`AlignedRaster`: the windows of the prediction pass, the pixels under the
sample points and the chunks of the lazy cube (:func:`open_aligned`) are all assembled
from the same fixed tiles, each warped by one GDAL request of exactly that tile, so a
value never depends on who asks for it or through which window.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import dask.array
import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from dask.base import tokenize
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from rioxarray.rioxarray import affine_to_coords

from geohm.errors import GridError, InputError
from geohm.grid import Grid

__all__ = [
    "AlignedRaster",
    "band_metadata",
    "check_raster",
    "open_aligned",
    "open_aligned_bands",
    "open_raster",
    "raster_grid",
    "read_block",
    "read_overview",
    "window_index",
]

#: Side (pixels) of the tiles every warped layer is read in, and the chunk size of the
#: lazy layers built on them.
TILE = 512


def _open_error(path: str | os.PathLike[str], exc: Exception, what: str) -> InputError:
    p = Path(path)
    if not p.exists():
        return InputError(f"{what} '{p}' does not exist; check the path in the scene config.")
    return InputError(
        f"{what} '{p}' cannot be read as a raster ({exc}); it may be corrupt or truncated: "
        "download or export it again."
    )


def index_span(k: Any, n: int) -> tuple[int, int, Any]:
    """The cells ``[lo, hi)`` to read for one axis index ``k``, and the index after.

    Returns ``(lo, hi, local)`` for an axis of ``n`` cells: ``local`` is applied to the
    cells read (an int drops the axis).
    """
    if isinstance(k, slice) and k.step in (None, 1):
        lo, hi, _ = k.indices(n)
        hi = max(hi, lo)
        return lo, hi, slice(0, hi - lo)
    idx = np.arange(n)[k]
    if idx.ndim == 0:
        return int(idx), int(idx) + 1, 0
    if idx.size == 0:
        return 0, 0, slice(0, 0)
    lo, hi = int(idx.min()), int(idx.max()) + 1
    return lo, hi, idx - lo


def window_index(read: Any, shape: tuple[int, int], key: Any, lead: int = 0) -> np.ndarray:
    """Index a window source like an array of ``lead`` leading axes + ``shape``.

    ``read(row_off, col_off, rows, cols)`` returns ``(..., rows, cols)``; ``key`` indexes
    the two spatial axes (after ``lead`` leading ones, indexed whole here), with slices
    of any step, integers or integer arrays. Only the bounding box is read.
    """
    if not isinstance(key, tuple):
        key = (key,)
    key = key + (slice(None),) * (lead + 2 - len(key))
    (r0, r1, ly), (c0, c1, lx) = (
        index_span(key[lead], shape[0]),
        index_span(key[lead + 1], shape[1]),
    )
    if r1 > r0 and c1 > c0:
        block = read(r0, c0, r1 - r0, c1 - c0)
    else:
        block = read(0, 0, 1, 1)[..., :0, :0]
        block = np.empty((*block.shape[:-2], r1 - r0, c1 - c0), dtype=np.float32)
    block = block[(slice(None),) * lead + (ly,)]
    x_axis = lead + (0 if isinstance(ly, int) else 1)
    block = block[(slice(None),) * x_axis + (lx,)]
    return block[key[:lead]] if lead else block


def _block_error(exc: Exception, what: str) -> InputError:
    """A block of a readable file that cannot be decoded: the file is damaged."""
    cause = exc.__cause__ or exc
    return InputError(
        f"{what} cannot be read ({cause}); the file is damaged: download or export it again"
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
    chunks: int | None = TILE,
    what: str = "raster",
    assume_crs: str | None = None,
) -> xr.DataArray:
    """Open band 1 of ``path`` lazily, warped onto ``grid``.

    The lazy view (:meth:`AlignedRaster.lazy`) of an :class:`AlignedRaster`: its dask
    chunks are the reader's tiles, so its values equal any window read of the reader.
    Source nodata is masked *before* resampling (GDAL's warper excludes invalid source
    pixels from the kernel); pixels with no valid source are NaN.

    Parameters
    ----------
    path : path-like
        Raster in any CRS and resolution that overlaps ``grid``.
    grid : Grid
        The target grid (usually the Landsat grid).
    resampling : {"bilinear", "nearest", "cubic", "average", "mode"}
        Bilinear for continuous data, nearest (or mode) for categorical data.
    chunks : int, optional
        Tile (and dask chunk) side in pixels; ``None``: :data:`TILE`.
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
    reader = AlignedRaster(
        path,
        grid,
        resampling=resampling,
        tile=TILE if chunks is None else chunks,
        what=what,
        assume_crs=assume_crs,
    )
    return reader.lazy()


class AlignedRaster:
    """Band 1 of ``path`` warped onto ``grid``, read in fixed tiles.

    A reprojecting warp is not independent of how it is cut up (GDAL estimates the
    kernel scale per warped piece), so every read is assembled from the same pieces:
    tiles of ``tile`` x ``tile`` pixels aligned to the grid origin, each warped by one
    request of exactly that tile (the request a dask chunk of rioxarray makes too). A
    map window, the pixels under a sample point and a chunk of :meth:`lazy` therefore
    hold the same numbers, bit for bit. A small cache of recently warped tiles, shared
    by the threads, keeps a window with a one-pixel halo from warping its neighbours'
    tiles again: memory is at most ``cache_tiles`` tiles (1 MiB each at 512 pixels).

    Safe to call from several threads at once (one dataset handle per thread); the file
    is checked when the reader is made, and handles are opened at the first read.

    Parameters
    ----------
    path : path-like
        Raster in any CRS and resolution that overlaps ``grid``.
    grid : Grid
        The target grid.
    resampling : str
        GDAL resampling (``"bilinear"``, ``"nearest"``, ...).
    tile : int
        Tile side in pixels.
    what : str
        How to name the layer in error messages.
    assume_crs : str, optional
        CRS of the file when it carries none.
    cache_tiles : int
        Warped tiles kept in memory.

    Raises
    ------
    InputError, GridError
        Missing/corrupt file, no CRS, or no overlap with the grid.

    Examples
    --------
    >>> with AlignedRaster(path, grid, what="DEM") as dem:  # doctest: +SKIP
    ...     block = dem.read(0, 0, 512, 512)
    """

    dtype = np.dtype("float32")
    ndim = 2

    def __init__(
        self,
        path: str | os.PathLike[str],
        grid: Grid,
        *,
        resampling: str = "bilinear",
        tile: int = TILE,
        what: str = "raster",
        assume_crs: str | None = None,
        cache_tiles: int = 48,
    ) -> None:
        if resampling not in Resampling.__members__:
            raise ValueError(f"unknown resampling {resampling!r}")
        if tile < 1:
            raise ValueError("tile must be a positive number of pixels")
        src_grid = check_raster(path, what=what, assume_crs=assume_crs)
        _check_overlap(src_grid, grid, path, what)
        self.path = Path(path)
        self.grid = grid
        self.resampling = resampling
        self.tile = int(tile)
        self.what = what
        self.assume_crs = assume_crs
        self.cache_tiles = int(cache_tiles)
        stat = os.stat(self.path)
        self._token = tokenize(
            str(self.path.resolve()),
            stat.st_mtime_ns,
            stat.st_size,
            grid,
            resampling,
            tile,
            assume_crs,
        )
        self._init_state()

    def _init_state(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._handles: list[Any] = []
        self._tiles: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:  # handles, locks and tiles stay behind
        skip = ("_local", "_lock", "_handles", "_tiles")
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        return self.grid.shape

    def _vrt(self) -> Any:
        vrt = getattr(self._local, "vrt", None)
        if vrt is not None:
            return vrt
        try:
            src = rasterio.open(self.path, sharing=False)
            with self._lock:
                self._handles.append(src)
            vrt = _warped_vrt(src, self.grid, self.resampling, self.assume_crs)
        except (RasterioIOError, RasterioError) as exc:
            raise _open_error(self.path, exc, self.what) from exc
        with self._lock:
            self._handles.append(vrt)
        self._local.vrt = vrt
        return vrt

    def _tile(self, ti: int, tj: int) -> np.ndarray:
        """Tile (ti, tj), warped by one request (cached)."""
        key = (ti, tj)
        with self._lock:
            hit = self._tiles.get(key)
            if hit is not None:
                self._tiles.move_to_end(key)
                return hit
        height, width = self.grid.shape
        r0, c0 = ti * self.tile, tj * self.tile
        window = ((r0, min(r0 + self.tile, height)), (c0, min(c0 + self.tile, width)))
        try:
            data = self._vrt().read([1], window=window, masked=True)
        except (RasterioIOError, RasterioError) as exc:
            raise _block_error(exc, f"{self.what} '{self.path}': a block") from None
        out = np.ma.filled(data.astype(np.float32), np.float32(np.nan))[0]
        out.setflags(write=False)
        with self._lock:
            self._tiles[key] = out
            while len(self._tiles) > self.cache_tiles:
                self._tiles.popitem(last=False)
        return out

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """The (rows, cols) float32 window with its top-left pixel at (row_off, col_off).

        NaN where no valid data.

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
        t = self.tile
        out = np.empty((rows, cols), dtype=np.float32)
        for ti in range(row_off // t, (row_off + rows - 1) // t + 1):
            for tj in range(col_off // t, (col_off + cols - 1) // t + 1):
                block = self._tile(ti, tj)
                r0, c0 = ti * t, tj * t
                rr0, rr1 = max(r0, row_off), min(r0 + block.shape[0], row_off + rows)
                cc0, cc1 = max(c0, col_off), min(c0 + block.shape[1], col_off + cols)
                out[rr0 - row_off : rr1 - row_off, cc0 - col_off : cc1 - col_off] = block[
                    rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0
                ]
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        """``reader[rows, cols]``: numpy basic or integer-array indexing of the grid.

        What dask asks for: slices (of any step), integers (``isel(x=3)`` folded into the
        read), integer arrays. The bounding box of the rows and columns is read, then
        indexed.
        """
        return window_index(self.read, self.grid.shape, key)

    def lazy(self) -> xr.DataArray:
        """The layer as a lazy (y, x) float32 DataArray on the grid (chunks = tiles)."""
        height, width = self.grid.shape
        data = dask.array.from_array(
            self,
            chunks=(self.tile, self.tile),
            name=f"aligned-{self._token}",
            asarray=False,
            lock=False,
            meta=np.empty((0, 0), dtype=np.float32),
        )
        coords = affine_to_coords(self.grid.transform, width, height)
        da = xr.DataArray(data, dims=("y", "x"), coords={"y": coords["y"], "x": coords["x"]})
        da = da.rio.write_crs(self.grid.crs).rio.write_transform(self.grid.transform)
        da.attrs["_FillValue"] = np.float32(np.nan)
        return da

    def close(self) -> None:
        """Close every handle opened so far (later reads open new ones)."""
        with self._lock:
            handles, self._handles = self._handles, []
            self._local = threading.local()
        for h in reversed(handles):  # the VRTs before their sources
            with contextlib.suppress(Exception):
                h.close()

    def __enter__(self) -> AlignedRaster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


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


def read_block(da: xr.DataArray) -> np.ndarray:
    """Compute a (lazy) window of rasters on the calling thread; read errors -> InputError.

    A corrupt block inside an otherwise readable GeoTIFF only shows when that block is
    read: GDAL's message names the file and the block offsets.
    """
    try:
        return np.asarray(da.compute(scheduler="synchronous").values)
    except (RasterioIOError, RasterioError) as exc:
        raise _block_error(exc, "a raster block") from None


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

"""Raster reading and atomic GeoTIFF / Cloud-Optimised GeoTIFF writing.

Every file geohm writes goes to a temporary name in the destination folder and is
renamed when complete (:func:`atomic_path`), so a killed run never leaves a
half-written file under its final name. A write that fails (a full disk, a quota, an
I/O error) raises :class:`~geohm.errors.OutputError` naming the device and the file,
and nothing is renamed: a GeoTIFF is renamed only once it has been closed and opened
again, its block index checked against the file size and its last blocks decoded
(:func:`verify_geotiff`), because GDAL reports some failed writes only on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import glob
import os
import secrets
import struct
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio._err import CPLE_BaseError  # raised as is by rasterio.shutil.copy
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import CRSError, RasterioError, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from geohm.errors import GeohmError, GridError, InputError, OutputError
from geohm.grid import Grid

__all__ = [
    "AlignedWindows",
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


class IncompleteWrite(OSError):
    """A written file is not complete (GDAL failed a write without raising)."""


#: Errors of the device rather than of the data written (see :func:`write_error`).
_DEVICE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

#: Called with each final path before :func:`atomic_path` writes it (every writer of
#: geohm ends there). :mod:`geohm.io.outdir` adds one that records the name in the held
#: output folder's journal, so that a killed run's outputs are known by name.
before_write: list[Callable[[Path], None]] = []

#: Bytes asked of the filesystem to tell why a write failed, at least / at most.
_PROBE_MIN, _PROBE_MAX = 2**20, 64 * 2**20


def _existing_folder(path: Path) -> Path:
    folder = Path(os.path.abspath(path))
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder


def _device(folder: Path) -> str:
    """``"DEVICE at MOUNT POINT"`` of the filesystem holding ``folder`` (for messages)."""
    mount = _existing_folder(folder).resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    device = ""
    with contextlib.suppress(Exception):  # only a nicer message: never fail on it
        import psutil  # comes with dask.distributed; without it the message has the mount

        for part in psutil.disk_partitions(all=True):
            if part.mountpoint == str(mount):
                device = part.device  # the last one wins: mounts stack
    return f"{device} at {mount}" if device and device != str(mount) else str(mount)


def _probe_errno(folder: Path, nbytes: int) -> int | None:
    """The errno the OS gives when asked for ``nbytes`` more in ``folder`` (None: it can).

    GDAL reports a failed ``write(2)`` only on stderr (libtiff's handler), never with its
    errno, so after a failed raster write the cause is asked of the OS itself: allocating
    the bytes that file needs fails with the same ENOSPC / EDQUOT / EFBIG the write got.
    Written by hand: no library answers "why did GDAL's write fail".
    """
    folder = _existing_folder(folder)
    probe = folder / f".geohm-probe-{secrets.token_hex(4)}.space"
    # Twice the raw size: incompressible data with overviews and block framing takes ~1.4x.
    nbytes = int(min(max(2 * nbytes, _PROBE_MIN), _PROBE_MAX))
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return exc.errno
    try:
        os.posix_fallocate(fd, 0, nbytes)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # not on this fs
            st = os.statvfs(folder)
            return errno.ENOSPC if st.f_bavail * st.f_frsize < nbytes else None
        return exc.errno
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            probe.unlink()
    return None


def write_error(
    final: str | os.PathLike[str], exc: BaseException, *, nbytes: int = 0
) -> OutputError:
    """The :class:`~geohm.errors.OutputError` for a failed write of ``final``.

    Parameters
    ----------
    final : path-like
        The file being written (its final name: the one the user knows).
    exc : BaseException
        What failed: an ``OSError`` with its errno, or a GDAL/rasterio error (then the
        cause is asked of the filesystem, see :func:`_probe_errno`).
    nbytes : int
        About how many bytes the file needs (for that question).

    Returns
    -------
    OutputError
        One line: "no space left on device DEVICE at MOUNT while writing FILE; ...".
    """
    final = Path(final)
    code = exc.errno if isinstance(exc, OSError) and exc.errno else None
    if code is None and "No space left on device" in str(exc):
        code = errno.ENOSPC
    if code is None:
        code = _probe_errno(final.parent, nbytes)
    where = _device(final.parent)
    todo = "free space there or choose another --out folder"
    if code == errno.ENOSPC:
        msg = f"no space left on device {where} while writing {final}; {todo}"
    elif code == errno.EDQUOT:
        msg = f"disk quota exceeded on device {where} while writing {final}; {todo}"
    elif code == errno.EFBIG:
        msg = (
            f"file too large for device {where} or over this process's file size limit "
            f"(ulimit -f) while writing {final}; raise the limit or choose another --out folder"
        )
    elif code == errno.EROFS:
        msg = f"device {where} is read-only: cannot write {final}; choose another --out folder"
    elif code in (errno.EACCES, errno.EPERM):
        msg = f"permission denied writing {final}; choose a folder you can write to (--out)"
    else:
        why = os.strerror(code) if code else (str(exc) or type(exc).__name__)
        msg = (
            f"writing {final} failed ({why}); it was not written: check the device {where} "
            "and run again"
        )
    return OutputError(msg)


def _make_folder(final: Path, nbytes: int = 0) -> None:
    """Create the folder of ``final``; OutputError when it cannot be."""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(
            f"cannot create the folder {final.parent} for {final.name}: a file is in the way; "
            "choose another --out folder"
        ) from None
    except OSError as exc:
        raise write_error(final, exc, nbytes=nbytes) from None


def _remove_temporaries(tmp: Path) -> None:
    """``tmp`` and what GDAL puts beside it (``.aux.xml``, the COG driver's ``.ovr.tmp``)."""
    for leftover in (tmp, *tmp.parent.glob(glob.escape(tmp.name) + ".*")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


@contextlib.contextmanager
def atomic_path(
    final_path: str | os.PathLike[str],
    *,
    check: Callable[[Path], None] | None = None,
    nbytes: int = 0,
) -> Iterator[Path]:
    """Yield a temporary path beside ``final_path``; rename it there on success.

    The temporary name keeps the extension (drivers such as GPKG choose by it) and
    starts with a dot, so a half-written file is never mistaken for an output. On
    an exception the temporary file (and any GDAL ``.aux.xml`` or ``.ovr.tmp`` beside
    it) is removed and the exception propagates; an existing file at ``final_path`` is
    untouched. An ``OSError`` (a full disk, a quota, a read-only device) becomes an
    :class:`~geohm.errors.OutputError` naming the device and the final name, and so does
    another library's error (pyogrio's, say) when the filesystem is full.

    Parameters
    ----------
    final_path : path-like
        The final name; its folder is created.
    check : callable, optional
        Called with the temporary path once the body is done (the file closed) and
        before the rename; raises (an ``OSError``) when the file is not complete.
    nbytes : int
        About how many bytes the file needs (to tell why a write failed).

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
    _make_folder(final, nbytes)
    for hook in before_write:
        hook(final)
    tmp = final.with_name(f".{final.stem}.{secrets.token_hex(4)}.tmp{final.suffix}")
    try:
        try:
            yield tmp
            if check is not None:
                check(tmp)
            os.replace(tmp, final)
        except OSError as exc:  # before the clean-up: the OS is asked why with tmp still there
            raise write_error(final, exc, nbytes=nbytes) from exc
        except GeohmError:
            raise
        except Exception as exc:  # another library's write error (pyogrio, ...): a full disk?
            code = _probe_errno(final.parent, nbytes)
            if code in _DEVICE_ERRNOS:
                raise write_error(final, OSError(code, os.strerror(code)), nbytes=nbytes) from exc
            raise
    finally:
        _remove_temporaries(tmp)
    aux = final.with_name(final.name + ".aux.xml")
    with contextlib.suppress(FileNotFoundError):
        aux.unlink()


def verify_geotiff(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int] | None = None,
    dtype: str | None = None,
) -> None:
    """Check that a GeoTIFF just written is complete; cheap (no full read).

    The file is opened again (its header), every block of every band and overview
    level must be recorded in the block index and lie inside the file (a block whose
    write failed has no byte count, and GDAL would read it as nodata without a word),
    and the last block of the full resolution and of each overview is decoded. In a
    Cloud-Optimised GeoTIFF the size written before each block and the copy of its last
    4 bytes written after it (GDAL's block leader and trailer) are compared for those
    last blocks too, so a file cut off even in its last bytes is found.

    Parameters
    ----------
    path : path-like
        The written (temporary) file.
    shape : (bands, rows, columns), optional
        What the header must say.
    dtype : str, optional
        The data type the header must say.

    Raises
    ------
    IncompleteWrite
        The file is truncated, a block is missing, or the header is not as written.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(1024)
            layout = _Layout(
                size=size,
                order="<" if head[:2] == b"II" else ">",
                leader=b"BLOCK_LEADER=SIZE_AS_UINT4" in head,
                trailer=b"BLOCK_TRAILER=LAST_4_BYTES_REPEATED" in head,
            )
            with rasterio.open(p) as src:
                got = (src.count, src.height, src.width)
                if shape is not None and got != tuple(shape):
                    raise IncompleteWrite(
                        f"its header says {got} (bands, rows, columns), not {shape}"
                    )
                if dtype is not None and src.dtypes[0] != np.dtype(dtype).name:
                    raise IncompleteWrite(f"its header says {src.dtypes[0]}, not {dtype}")
                levels = len(src.overviews(1))
                _verify_level(src, fh, layout, "full resolution")
            for level in range(levels):
                with rasterio.open(p, overview_level=level) as ovr:
                    _verify_level(ovr, fh, layout, f"overview {level + 1}")
    except (RasterioError, CPLE_BaseError) as exc:
        raise IncompleteWrite(f"it cannot be read back ({exc})") from exc


@dataclasses.dataclass(frozen=True)
class _Layout:
    """What :func:`verify_geotiff` knows of a file: its size, byte order, block framing."""

    size: int
    order: str  # struct byte order of the TIFF
    leader: bool  # a uint32 block size before each block (COG)
    trailer: bool  # the block's last 4 bytes repeated after it (COG)


def _verify_level(ds: Any, fh: Any, layout: _Layout, what: str) -> None:
    bh, bw = ds.block_shapes[0]
    nby, nbx = -(-ds.height // bh), -(-ds.width // bw)
    extra = 4 if layout.trailer else 0
    for band in range(1, ds.count + 1):
        for by in range(nby):
            for bx in range(nbx):
                offset = ds.get_tag_item(f"BLOCK_OFFSET_{bx}_{by}", "TIFF", bidx=band)
                nbytes = ds.get_tag_item(f"BLOCK_SIZE_{bx}_{by}", "TIFF", bidx=band)
                if not offset or not nbytes or int(offset) + int(nbytes) + extra > layout.size:
                    raise IncompleteWrite(
                        f"block ({by}, {bx}) of band {band} ({what}) is missing or cut off "
                        f"(offset {offset}, {nbytes} bytes, file {layout.size} bytes)"
                    )
                if by == nby - 1 and bx == nbx - 1:  # the last block: its framing too
                    _verify_framing(fh, layout, int(offset), int(nbytes), f"{what}, band {band}")
    col0, row0 = (nbx - 1) * bw, (nby - 1) * bh
    ds.read(window=Window(col0, row0, ds.width - col0, ds.height - row0))


def _verify_framing(fh: Any, layout: _Layout, offset: int, nbytes: int, what: str) -> None:
    if layout.leader and offset >= 4:
        fh.seek(offset - 4)
        (leader,) = struct.unpack(layout.order + "I", fh.read(4))
        if leader != nbytes:
            raise IncompleteWrite(f"the last block ({what}) says {leader} bytes, not {nbytes}")
    if layout.trailer and nbytes >= 4:
        fh.seek(offset + nbytes - 4)
        tail = fh.read(8)
        if tail[:4] != tail[4:]:
            raise IncompleteWrite(f"the last block ({what}) is cut off or damaged")


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

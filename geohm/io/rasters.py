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
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
from rasterio._err import CPLE_BaseError  # raised as is by rasterio.shutil.copy
from rasterio.errors import RasterioError
from rasterio.windows import Window

from geohm.errors import GeohmError, OutputError
from geohm.grid import Grid
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



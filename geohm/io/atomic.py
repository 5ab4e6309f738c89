"""Atomic writes: a file is written under a temporary name and renamed when complete.

A write that fails (a full disk, a quota, an I/O error) raises
:class:`~geohm.errors.OutputError` naming the device and the file, and nothing is renamed.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import rioxarray  # noqa: F401  (registers the .rio accessor)

from geohm.errors import GeohmError, OutputError


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

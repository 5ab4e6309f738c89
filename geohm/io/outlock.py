"""The output folder's check and lock: a probe file proves it writable, a file lock holds it.

:func:`check_output_folder` creates the folder if needed and writes a probe file into it;
:func:`take_lock` takes its ``.geohm.lock`` (:class:`filelock.FileLock`) without waiting.
On Unix the lock is an ``flock`` that the kernel releases when its holder dies, so a
killed run never blocks the next one; the holder file ``.geohm.lock.json`` names the
holder (pid, host, start time) in the message a second run gets. Failures are
:class:`~geohm.errors.OutputError`: one line naming the folder and what to do.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from contextlib import suppress
from pathlib import Path

from filelock import FileLock, Timeout

from geohm.errors import OutputError
from geohm.io.outnames import HOLDER_NAME, LOCK_NAME, PROBE_PREFIX

__all__ = ["check_output_folder", "in_use_message", "os_reason", "take_lock"]


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """Create the output folder if needed and prove it writable with a probe file.

    Parameters
    ----------
    path : path-like
        The output folder.

    Returns
    -------
    Path
        The folder, absolute.

    Raises
    ------
    OutputError
        The path is a file, lies under a file, cannot be created, or is not writable
        (permissions, a read-only file system, a full disk).
    """
    folder = Path(os.path.abspath(path))
    todo = "; give --out (or output.dir) a folder you can write to"
    if _is_file(folder):
        raise OutputError(f"output folder '{folder}' is an existing file, not a folder{todo}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        blocker = next((p for p in folder.parents if _is_file(p)), None)
        why = f"'{blocker}' is a file" if blocker is not None else os_reason(exc)
        raise OutputError(f"cannot create the output folder '{folder}': {why}{todo}") from None
    probe = folder / f"{PROBE_PREFIX}{secrets.token_hex(4)}"
    try:
        with open(probe, "xb") as f:
            f.write(b"geohm probe\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise OutputError(
            f"cannot write into the output folder '{folder}': {os_reason(exc)}{todo}"
        ) from None
    finally:
        with suppress(OSError):
            probe.unlink()
    return folder


def _is_file(path: Path) -> bool:
    """Whether something that is not a folder exists at ``path`` (False when unknowable)."""
    try:
        return path.exists() and not path.is_dir()
    except OSError:
        return False


def os_reason(exc: OSError) -> str:
    """Why a file operation failed, in words (``"permission denied"``, ...).

    Parameters
    ----------
    exc : OSError
        The error of the operation.

    Returns
    -------
    str
        A few words for the common causes, else the system's message.
    """
    return {
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENOTDIR: "a part of the path is a file",
    }.get(exc.errno or 0, exc.strerror or str(exc))


def _holder(folder: Path) -> str:
    """Who holds ``folder``, in words, from the holder file."""
    try:
        h = json.loads((folder / HOLDER_NAME).read_text(encoding="utf-8"))
        return f"process id {int(h['pid'])} on {h['host']}, started {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its process id is not recorded yet"


def in_use_message(folder: Path) -> str:
    """The message a run gets for a folder another run holds (names the holder).

    Parameters
    ----------
    folder : Path
        The output folder.

    Returns
    -------
    str
        One line: the folder, its holder, and what to do.
    """
    return (
        f"output folder '{folder}' is in use by another geohm run ({_holder(folder)}); wait "
        "for it to finish or give --out (or output.dir) another folder"
    )


def take_lock(folder: Path) -> FileLock:
    """Take the lock of ``folder`` without waiting.

    Parameters
    ----------
    folder : Path
        The output folder, absolute (checked by :func:`check_output_folder`).

    Returns
    -------
    filelock.FileLock
        The lock, held; give it back with ``release()``.

    Raises
    ------
    OutputError
        Another run holds it (the message names its pid), or the folder's file system
        cannot lock files.
    """
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputError(in_use_message(folder)) from None
    except OSError as exc:
        raise OutputError(
            f"cannot lock the output folder '{folder}': {os_reason(exc)}; give --out "
            "(or output.dir) a folder on a local file system"
        ) from None
    return lock

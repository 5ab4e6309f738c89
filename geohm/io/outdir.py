"""The output folder's life: checked, locked, cleared of the earlier run, sealed.

A scene job writes into one folder (``output.dir``). :func:`output_folder` holds it
for the job:

1. **Check**, before any input is read: the path must be a folder that exists or can
   be created, and a probe file must be writable in it; otherwise
   :class:`~geohm.errors.OutputError`, one line naming the folder and what to do.
2. **Lock**: ``.geohm.lock`` is a :class:`filelock.FileLock` taken without waiting.
   On Unix it is an ``flock`` that the kernel releases when its holder dies, so a
   killed run never blocks the next one. ``.geohm.lock.json`` names the holder (pid,
   host, start time): a second run into the folder fails at once with a message naming
   it. The holder file goes when the run ends; the lock file (empty) stays: removing a
   lock file that another process may have opened to wait on it would let two runs
   hold two different files.
3. **Scratch**: the temporary files of runs that no longer hold the lock (a killed
   run's ``.NAME.xxxxxxxx.scratch.tif``, ``.NAME.xxxxxxxx.tmp.tif`` and GDAL's
   ``.ovr.tmp`` beside them, and probe files) are removed.
4. **Clear** (:meth:`OutputFolder.clear_previous`, called right before the first
   output is written, so that a run failing on its inputs leaves the earlier complete
   result as it was): the files the earlier run's manifest lists (for a folder written
   before manifests: the ``outputs`` of a report.json that geohm wrote) and those of an
   unfinished run (see the journal below) are removed. Files geohm did not write stay,
   named in a warning, and so do the input files of this run (a ``model.geohm`` that
   ``geohm predict`` reads from the folder it writes into), named in the log.
   While a run writes, the journal ``.geohm.run.json`` lists by name every output it
   is about to write (:func:`geohm.io.rasters.atomic_path`, which every writer of
   geohm goes through, tells :meth:`OutputFolder.claim` before each file): if the run
   dies, the next one removes those names and nothing else.
5. **Seal** (:meth:`OutputFolder.seal`): ``manifest.json`` is written last and
   atomically: its format, the geohm version, the job (command, a hash of the config,
   every input file with its size and mtime, the versions of the libraries that make
   the numbers) and every output with its size, mtime and sha256 (GDAL ``.aux.xml``
   sidecars only by name: QGIS rewrites them when it computes statistics).

:func:`compare` tells whether a folder's manifest matches a job, so that a rerun may
skip it, and if not, why; :func:`compare_locked` asks it again under the folder's lock
when it matches, so that a run in progress is never reported as up to date.

The parts live in their own modules, and every name is importable from here:
:mod:`geohm.io.outnames` (the names of geohm's files in a folder),
:mod:`geohm.io.outlock` (the check and the lock), :mod:`geohm.io.manifest` (the job and
the manifest), :mod:`geohm.io.journal` (the journal and what a run clears) and
:mod:`geohm.io.outfolder` (:class:`OutputFolder`). This module holds the folders this
process holds, and the hook that makes every writer claim its file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from geohm.errors import OutputError
from geohm.io import rasters
from geohm.io.manifest import (
    DEPENDENCIES,
    MANIFEST_FORMAT,
    NEUTRAL_SETTINGS,
    Job,
    Verdict,
    compare,
    dependency_versions,
    job_fingerprint,
    outputs_complete,
    read_manifest,
)
from geohm.io.outfolder import OutputFolder
from geohm.io.outlock import check_output_folder, in_use_message
from geohm.io.outnames import HOLDER_NAME, JOURNAL_NAME, LOCK_NAME, MANIFEST_NAME, is_scratch

__all__ = [
    "HOLDER_NAME",
    "JOURNAL_NAME",
    "LOCK_NAME",
    "MANIFEST_FORMAT",
    "DEPENDENCIES",
    "MANIFEST_NAME",
    "NEUTRAL_SETTINGS",
    "Job",
    "OutputFolder",
    "Verdict",
    "check_output_folder",
    "compare",
    "compare_locked",
    "dependency_versions",
    "held_folder",
    "is_scratch",
    "job_fingerprint",
    "output_folder",
    "outputs_complete",
    "read_manifest",
]


def compare_locked(folder: str | os.PathLike[str], job: Job, *, hashes: bool = False) -> Verdict:
    """:func:`compare`; when it matches, asked again while holding the folder's lock.

    A job is skipped only on this answer: a run writing into the folder (a ``--force``
    run that has not yet removed the earlier manifest, say) makes it fail with the
    holder's message, as the run itself would, instead of reporting the folder up to
    date. A folder whose lock file cannot be created (a read-only archive) cannot be
    written by any run either: the first answer stands.

    Parameters
    ----------
    folder : path-like
        The output folder.
    job : Job
        From :func:`job_fingerprint`.
    hashes : bool
        Also compare each output's sha256.

    Returns
    -------
    Verdict

    Raises
    ------
    OutputError
        Another run holds the folder (the message names its pid).
    """
    verdict = compare(folder, job, hashes=hashes)
    path = Path(os.path.abspath(folder))
    if not verdict.match or held_folder(path) is not None:  # a mismatch: the run locks it
        return verdict
    lock = FileLock(str(path / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise OutputError(in_use_message(path)) from None
    except OSError:
        return verdict
    try:
        return compare(folder, job, hashes=hashes)
    finally:
        lock.release()


def _claim_before_write(final: Path) -> None:
    """:data:`geohm.io.rasters.before_write` hook: claim a file written in a held folder."""
    if not _held:  # nothing held in this process (synth, tests): nothing to record
        return
    parent = os.path.realpath(final.parent)
    with _registry_lock:
        folder = next((f for f in _held.values() if f.real == parent), None)
    if folder is not None:
        folder.claim(final.name)


_registry_lock = threading.Lock()
_held: dict[tuple[str, int], OutputFolder] = {}


@contextmanager
def output_folder(path: str | os.PathLike[str]) -> Iterator[OutputFolder]:
    """Hold an output folder for a run: check, lock, remove dead runs' scratch.

    Re-entrant on one thread: a nested call for the same folder (a batch job that
    holds the folder for its log, then :func:`geohm.pipeline.run_scene`) yields the
    folder already held.

    Parameters
    ----------
    path : path-like
        The output folder (created if needed).

    Yields
    ------
    OutputFolder

    Raises
    ------
    OutputError
        The folder is not usable, or another run holds it (the message names its pid).

    Examples
    --------
    >>> with output_folder(tmp / "out") as folder:  # doctest: +SKIP
    ...     folder.clear_previous()
    ...     ...  # write the outputs
    ...     folder.seal(outputs, job)
    """
    key = (os.path.abspath(path), threading.get_ident())
    with _registry_lock:
        existing = _held.get(key)
    if existing is not None:
        yield existing
        return
    folder = OutputFolder(path)
    folder.acquire()
    with _registry_lock:
        _held[key] = folder
    try:
        yield folder
    finally:
        with _registry_lock:
            _held.pop(key, None)
        folder.release()


def held_folder(path: str | os.PathLike[str]) -> OutputFolder | None:
    """The folder this thread holds at ``path`` (:func:`output_folder`), or None."""
    with _registry_lock:
        return _held.get((os.path.abspath(path), threading.get_ident()))


# Every file geohm writes goes through atomic_path (rasters, COGs, styles, reports, figures,
# tables, model files): one hook there claims each name before the file exists, for every
# writer, including those added later. Explicit claim() calls at each of the pipeline's
# write sites would be more code and would miss the next one added: a missed name would
# survive a killed run as a file "geohm did not write".
rasters.before_write.append(_claim_before_write)

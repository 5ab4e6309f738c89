"""An output folder held by one run: taken, cleared of the earlier run, sealed.

:class:`OutputFolder` is the state of a held folder (:func:`geohm.io.outdir.output_folder`
takes and gives it back; its module docstring tells the whole life): the lock
(:mod:`geohm.io.outlock`), the temporary files of dead runs, the inputs of this run that
lie in the folder, the outputs it claims in its journal and the earlier run's outputs
it removes (:mod:`geohm.io.journal`), and the manifest it writes last
(:mod:`geohm.io.manifest`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from geohm.errors import OutputError
from geohm.io.journal import earlier_outputs, journal_record
from geohm.io.manifest import Job, manifest_record
from geohm.io.outlock import check_output_folder, os_reason, take_lock
from geohm.io.outnames import (
    HOLDER_NAME,
    INTERNAL_NAMES,
    JOURNAL_NAME,
    MANIFEST_NAME,
    SIDECAR,
    is_scratch,
)
from geohm.io.reports import write_json

__all__ = ["OutputFolder"]

log = logging.getLogger("geohm.outdir")


class OutputFolder:
    """An output folder held by one run; use :func:`geohm.io.outdir.output_folder`.

    :mod:`geohm.io.outdir` tells the folder's life: check, lock, scratch, clear, seal.

    Attributes
    ----------
    path : Path
        The folder, absolute.
    removed : list of str
        Files of an earlier run removed by :meth:`clear_previous`.
    foreign : list of str
        Files geohm did not write, left in place.
    kept_inputs : list of str
        Input files of this run that lie in the folder, left in place (among them any
        that an earlier run wrote and its manifest lists).
    scratch_removed : list of str
        Temporary files of dead runs removed when the folder was taken.
    keep : set of str
        Files this run writes outside the pipeline's outputs (a batch job's log):
        never removed as an earlier run's, and listed in the manifest as ``logs``.
    inputs : set of Path
        The input files of this run (:meth:`protect`): never removed, never overwritten.
    written : set of str
        The outputs this run has claimed (:meth:`claim`), as listed in its journal.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))
        self.removed: list[str] = []
        self.foreign: list[str] = []
        self.kept_inputs: list[str] = []
        self.scratch_removed: list[str] = []
        self.keep: set[str] = set()
        self.inputs: set[Path] = set()
        self.written: set[str] = set()
        self.real = os.path.realpath(self.path)
        self._input_ids: set[tuple[int, int]] = set()
        self._removing: list[str] = []
        self._started = datetime.now(UTC).isoformat(timespec="seconds")
        self._lock: FileLock | None = None
        self._cleared = False
        # Re-entrant: clear_previous() writes the journal through atomic_path, whose hook
        # calls claim() (which returns at once for the journal's name).
        self._mutex = threading.RLock()

    # -- taking and giving back

    def acquire(self) -> None:
        """Check the folder, take its lock without waiting, remove dead runs' scratch.

        Raises
        ------
        OutputError
            The folder is not usable, or another run holds it.
        """
        check_output_folder(self.path)
        self.real = os.path.realpath(self.path)
        self._lock = take_lock(self.path)
        try:
            self._write(
                HOLDER_NAME,
                {"pid": os.getpid(), "host": socket.gethostname(), "started": self._started},
            )
            self._remove_scratch()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give the lock back; the holder file goes, the (empty) lock file stays.

        Unlinking the lock file, before or after the release, would let a run that had
        opened it to try the lock take a lock on a file no longer in the folder while a
        third run creates and locks a new one: two holders. An empty ``.geohm.lock``
        left in the folder is harmless (:func:`geohm.io.manifest.compare` and the
        clearing ignore it).
        """
        if self._lock is None:
            return
        with suppress(OSError):
            (self.path / HOLDER_NAME).unlink()
        self._lock.release()
        self._lock = None

    def _remove_scratch(self) -> None:
        """Remove temporary files: only a dead run can have left them (we hold the lock)."""
        size = 0
        for p in self._files():
            if is_scratch(p.name):
                with suppress(OSError):
                    size += p.stat().st_size
                    p.unlink()
                    self.scratch_removed.append(p.name)
        if self.scratch_removed:
            log.warning(
                "removed %d temporary file(s) (%.1f MB) left in %s by a run that was killed: %s",
                len(self.scratch_removed),
                size / 1e6,
                self.path,
                ", ".join(sorted(self.scratch_removed)),
            )

    def _files(self) -> list[Path]:
        try:
            return sorted(p for p in self.path.iterdir() if p.is_file() or p.is_symlink())
        except OSError:
            return []

    # -- inputs and outputs of this run

    def protect(self, paths: Iterable[str | os.PathLike[str]]) -> None:
        """Declare input files of this run: never removed or overwritten in this folder.

        Call it before the first output is written, with the job's inputs
        (``folder.protect(job.inputs)``): ``geohm predict --model OUT/model.geohm --out
        OUT`` reads a file that the earlier run's manifest lists as its output.
        """
        with self._mutex:
            for p in paths:
                path = Path(os.path.abspath(p))
                self.inputs.add(path)
                with suppress(OSError):
                    st = path.stat()
                    self._input_ids.add((st.st_dev, st.st_ino))

    def _is_input(self, path: Path) -> bool:
        """Whether ``path`` is one of :attr:`inputs` (by name, or the same file by link)."""
        if path in self.inputs:
            return True
        try:
            st = path.stat()
        except OSError:
            return False
        return (st.st_dev, st.st_ino) in self._input_ids

    def claim(self, name: str) -> None:
        """Record an output's name in the journal before it is written.

        Called by :func:`geohm.io.rasters.atomic_path` (through a hook) for every file
        written into a held folder, so that if the run dies, the next one removes exactly
        these names. The first claim clears the earlier run's outputs
        (:meth:`clear_previous`) if that was not done yet.

        Parameters
        ----------
        name : str
            The final name, in this folder.

        Raises
        ------
        OutputError
            The name is an input file of this run (it would be overwritten), or the
            journal cannot be written.
        """
        if name in INTERNAL_NAMES or name == MANIFEST_NAME or is_scratch(name):
            return
        with self._mutex:
            if not self._cleared:
                self.clear_previous()
            if self._is_input(self.path / name):
                raise OutputError(
                    f"'{self.path / name}' is an input of this run and geohm would write "
                    f"its output {name} over it; move the input out of the output folder "
                    "or give --out (or output.dir) another folder"
                )
            if name in self.written:
                return
            self.written.add(name)
            self._write_journal()

    # -- clearing and sealing

    def clear_previous(self) -> list[str]:
        """Remove the earlier run's outputs before this run writes its own (once).

        Removed: the manifest and the files it lists (or, without a manifest, the
        ``outputs`` of a report.json that geohm wrote), the files an unfinished run
        claimed (journal), and GDAL's ``.aux.xml`` beside any of them. Kept: files geohm
        did not write (named in a warning), and the input files of this run
        (:meth:`protect`; named in the log). Then the journal of this run is written.

        Returns
        -------
        list of str
            The names removed (also in :attr:`removed`).

        Raises
        ------
        OutputError
            A file cannot be removed.
        """
        with self._mutex:
            if self._cleared:
                return self.removed
            self._clear()
            self._cleared = True
            return self.removed

    def _clear(self) -> None:
        present = {p.name: p for p in self._files()}
        doomed = earlier_outputs(self.path, present)
        doomed |= {n + SIDECAR for n in doomed if n + SIDECAR in present}
        doomed &= set(present)
        doomed -= self.keep | INTERNAL_NAMES
        spared = {n for n in doomed if self._is_input(present[n])}
        spared |= {n + SIDECAR for n in spared if n + SIDECAR in doomed}
        doomed -= spared
        if spared:
            log.info(
                "kept %s in %s: an input of this run, although the earlier run wrote it",
                ", ".join(sorted(spared)),
                self.path,
            )
        # The journal first: if this run dies while clearing, the next one finishes it.
        self._removing = sorted(doomed)
        self._write_journal()
        for name in sorted(doomed, key=lambda n: n != MANIFEST_NAME):  # the manifest first
            try:
                present[name].unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise OutputError(
                    f"cannot remove '{present[name]}' (an earlier run's output): {os_reason(exc)}; "
                    "remove it by hand or give --out (or output.dir) another folder"
                ) from None
            self.removed.append(name)
        self._removing = []  # done: the next journal write drops them
        left = [
            p
            for p in self._files()
            if p.name not in INTERNAL_NAMES | self.keep and not is_scratch(p.name)
        ]
        self.kept_inputs = sorted(p.name for p in left if self._is_input(p))
        self.foreign = sorted(p.name for p in left if p.name not in self.kept_inputs)
        if self.removed:
            log.info(
                "removed %d file(s) of an earlier run from %s: %s",
                len(self.removed),
                self.path,
                ", ".join(self.removed),
            )
        if self.kept_inputs:
            log.info(
                "kept %d input file(s) of this run in %s: %s",
                len(self.kept_inputs),
                self.path,
                ", ".join(self.kept_inputs),
            )
        if self.foreign:
            log.warning(
                "output folder %s holds %d file(s) geohm did not write (kept): %s",
                self.path,
                len(self.foreign),
                ", ".join(self.foreign),
            )

    def _write(self, name: str, obj: Any) -> Path:
        """Write a JSON file of geohm's own here (atomically); a failure is an OutputError."""
        try:
            return write_json(self.path / name, obj)
        except OSError as exc:  # write_json names the device where it can; else say why here
            raise OutputError(
                f"cannot write '{self.path / name}': {os_reason(exc)}; free some space or give "
                "--out (or output.dir) another folder"
            ) from None

    def _write_journal(self) -> None:
        self._write(
            JOURNAL_NAME, journal_record(self._started, self.written, self._removing, self.keep)
        )

    def seal(self, outputs: Iterable[str | os.PathLike[str]], job: Job) -> Path:
        """Write ``manifest.json`` (last, atomically) and end the journal.

        Parameters
        ----------
        outputs : iterable of path-like
            The files this run wrote, in this folder. Every file it claimed
            (:meth:`claim`) is listed too, and GDAL's ``.aux.xml`` beside any of them
            under ``sidecars`` (by name only: never compared).
        job : Job
            From :func:`geohm.io.manifest.job_fingerprint`, taken before the inputs were read.

        Returns
        -------
        Path
            The manifest.
        """
        with self._mutex:
            if not self._cleared:
                raise RuntimeError(
                    "seal() before clear_previous(): the earlier outputs are unknown"
                )
            names: set[str] = set()
            for out in outputs:
                p = Path(os.path.abspath(out))
                if p.parent != self.path:
                    raise ValueError(f"output '{p}' is not in the output folder '{self.path}'")
                names.add(p.name)
            names |= {n for n in self.written if (self.path / n).is_file()}
            names |= {n + SIDECAR for n in names if (self.path / (n + SIDECAR)).is_file()}
            manifest = manifest_record(self.path, names, job, self.keep)
            path = self._write(MANIFEST_NAME, manifest)
            with suppress(FileNotFoundError):
                (self.path / JOURNAL_NAME).unlink()
            return path

    def report_note(self) -> dict[str, Any]:
        """What the run found in the folder, for report.json (empty when nothing)."""
        note: dict[str, Any] = {}
        if self.removed:
            note["removed_earlier_outputs"] = list(self.removed)
        if self.scratch_removed:
            note["removed_temporary_files"] = list(self.scratch_removed)
        if self.kept_inputs:
            note["kept_input_files"] = list(self.kept_inputs)
        if self.foreign:
            note["kept_files_not_written_by_geohm"] = list(self.foreign)
        return note

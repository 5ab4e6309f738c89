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
   it. Both files go when the run ends.
3. **Scratch**: the temporary files of runs that no longer hold the lock (a killed
   run's ``.NAME.xxxxxxxx.scratch.tif``, ``.NAME.xxxxxxxx.tmp.tif`` and GDAL's
   ``.ovr.tmp`` beside them, and probe files) are removed.
4. **Clear** (:meth:`OutputFolder.clear_previous`, called right before the first
   output is written, so that a run failing on its inputs leaves the earlier complete
   result as it was): the files the earlier run's manifest lists (for a folder written
   before manifests: its report's ``outputs``) and those of an unfinished run (see the
   journal below) are removed. Files geohm did not write stay, named in a warning.
   While a run writes, the journal ``.geohm.run.json`` lists the files that were in
   the folder before it: if the run dies, the next one removes what it left.
5. **Seal** (:meth:`OutputFolder.seal`): ``manifest.json`` is written last and
   atomically: its format, the geohm version, the job (command, a hash of the config,
   every input file with its size and mtime) and every output with its size, mtime and
   sha256.

:func:`compare` tells whether a folder's manifest matches a job, so that a rerun may
skip it, and if not, why.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import BaseModel

from geohm import __version__
from geohm.errors import OutputError
from geohm.io.reports import write_json

__all__ = [
    "HOLDER_NAME",
    "JOURNAL_NAME",
    "LOCK_NAME",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "NEUTRAL_SETTINGS",
    "Job",
    "OutputFolder",
    "Verdict",
    "check_output_folder",
    "compare",
    "held_folder",
    "is_scratch",
    "job_fingerprint",
    "output_folder",
    "outputs_complete",
    "read_manifest",
]

log = logging.getLogger("geohm.outdir")

#: The manifest of a finished run, written last.
MANIFEST_NAME = "manifest.json"
#: Version of the manifest's layout.
MANIFEST_FORMAT = 1
#: The lock file (filelock) held for the duration of a run.
LOCK_NAME = ".geohm.lock"
#: Who holds the lock: pid, host and start time (written by the holder).
HOLDER_NAME = ".geohm.lock.json"
#: Present while a run writes: the files the folder held before it.
JOURNAL_NAME = ".geohm.run.json"
_PROBE_PREFIX = ".geohm-probe-"
_INTERNAL = frozenset({LOCK_NAME, HOLDER_NAME, JOURNAL_NAME})

#: Config settings that cannot change the outputs, left out of the config hash: where
#: the folder is (the manifest lies in it), and the worker count and window size (the
#: maps are bit-identical whatever they are; tests/test_end_to_end.py checks it).
NEUTRAL_SETTINGS: dict[str, Any] = {"output": {"dir", "workers", "memory_mb", "tile"}}

# geohm's temporary names (geohm.io.rasters): atomic_path writes ``.<stem>.<8 hex>.tmp<suffix>``,
# TileWriter ``.<stem>.<8 hex>.scratch.tif``; GDAL adds ``.aux.xml`` beside either and the
# COG driver builds overviews in ``<temporary name>.ovr.tmp`` (``.msk.ovr.tmp``).
_SCRATCH = re.compile(r"^\..+\.[0-9a-f]{8}\.(?:scratch|tmp)(?:\..*)?$")
# GDAL's sidecar of a raster (statistics, category names): it goes with its raster.
_SIDECAR = ".aux.xml"


def is_scratch(name: str) -> bool:
    """Whether a file name is one of geohm's temporary names (never an output).

    Examples
    --------
    >>> is_scratch(".Cu_concentration.0a1b2c3d.scratch.tif")
    True
    >>> is_scratch(".Cu_concentration.0a1b2c3d.tmp.tif.ovr.tmp")
    True
    >>> is_scratch("Cu_concentration.tif")
    False
    """
    return bool(_SCRATCH.match(name)) or name.startswith(_PROBE_PREFIX)


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class Job:
    """What a run's outputs depend on: compared with a folder's manifest.

    Attributes
    ----------
    command : str
        ``"run"`` or ``"predict"``.
    config_sha256 : str
        Hash of the config (paths absolute, :data:`NEUTRAL_SETTINGS` left out).
    inputs : dict
        Absolute path of every input file -> ``{"size", "mtime_ns"}`` (``-1`` for both
        when the file does not exist).
    geohm_version : str
    """

    command: str
    config_sha256: str
    inputs: dict[str, dict[str, int]]
    geohm_version: str = __version__


def job_fingerprint(
    config: BaseModel, *, command: str = "run", inputs: Iterable[str | os.PathLike[str]] = ()
) -> Job:
    """The job of a scene config, with its input files as they are now.

    Every path in the config (outside ``output``) is an input: a file, with the files
    beside it that share its stem (a shapefile's ``.dbf``, a raster's ``.aux.xml``), or
    a folder (a Landsat scene), with every file under it. Call it before the inputs are
    read: a file changed during the run then makes the next run redo it.

    Parameters
    ----------
    config : pydantic model
        A validated scene config (paths already absolute).
    command : str
        The job kind, ``"run"`` or ``"predict"``.
    inputs : iterable of path-like
        Further input files (the model file of ``geohm predict``).

    Returns
    -------
    Job
    """
    data = config.model_dump(mode="json", exclude=NEUTRAL_SETTINGS)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    out_dir = getattr(getattr(config, "output", None), "dir", None)
    roots = [*_config_paths(config.model_dump(mode="python", exclude={"output"})), *inputs]
    files = _input_files(
        [Path(os.path.abspath(p)) for p in roots],
        Path(os.path.abspath(out_dir)) if out_dir is not None else None,
    )
    return Job(command, hashlib.sha256(text.encode()).hexdigest(), files)


def _config_paths(obj: Any) -> Iterator[Path]:
    """Every path a dumped config names: Path values and absolute path strings."""
    if isinstance(obj, Path):
        yield obj
    elif isinstance(obj, str):
        if os.path.isabs(obj) and os.path.isfile(obj):  # risk.standard as a CSV, ...
            yield Path(obj)
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _config_paths(v)
    elif isinstance(obj, list | tuple):
        for v in obj:
            yield from _config_paths(v)


def _stat(path: Path) -> dict[str, int]:
    try:
        st = path.stat()
    except OSError:
        return {"size": -1, "mtime_ns": -1}
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _input_files(roots: Sequence[Path], out_dir: Path | None) -> dict[str, dict[str, int]]:
    named: set[Path] = {*roots}  # a missing one is recorded as such
    found: set[Path] = set()
    for root in roots:
        with suppress(OSError):  # unreadable: the run's own reading will say what is wrong
            if root.is_dir():
                named.discard(root)
                found.update(p for p in root.rglob("*") if p.is_file())
            elif root.is_file():
                found.update(
                    p
                    for p in root.parent.iterdir()
                    if p.name.startswith(root.stem + ".") and p.is_file()
                )
    if out_dir is not None:  # files found in the output folder are outputs, not inputs
        found = {p for p in found if out_dir not in p.parents}
    return {str(p): _stat(p) for p in sorted(named | found)}


# --------------------------------------------------------------------------- manifest


@dataclass(frozen=True)
class Verdict:
    """Whether a folder's outputs match a job.

    Attributes
    ----------
    match : bool
        True when a rerun may skip the job.
    reason : str
        ``"outputs match manifest"``, or why the job must run: ``"no earlier
        outputs"`` (no folder, or an empty one), ``"no manifest"``, ``"config
        changed"``, ``"inputs changed (...)"``, ...
    """

    match: bool
    reason: str


def read_manifest(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A folder's manifest, or None when it has none that geohm can read."""
    try:
        data = json.loads((Path(folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != MANIFEST_FORMAT
        or not isinstance(data.get("outputs"), dict)
        or not isinstance(data.get("inputs"), dict)
    ):
        return None
    return data


def compare(folder: str | os.PathLike[str], job: Job, *, hashes: bool = False) -> Verdict:
    """Whether ``folder`` holds the outputs of ``job``, complete and unchanged.

    They match when the manifest exists, its geohm version, command, config hash and
    inputs (size and mtime of each file) equal the job's, and every output it lists
    exists with its recorded size. Output hashes are compared only with ``hashes``:
    re-reading every map of every scene whenever a batch starts would cost as much I/O
    as the maps' writing, while a truncated or replaced file shows in its size.

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
    """
    path = Path(folder)
    try:
        if not path.is_dir() or not any(path.iterdir()):
            return Verdict(False, "no earlier outputs")
        if not (path / MANIFEST_NAME).is_file():
            return Verdict(False, "no manifest")
    except OSError:  # unreadable: the run's own check will say what is wrong
        return Verdict(False, "no manifest")
    m = read_manifest(path)
    if m is None:
        return Verdict(False, "manifest unreadable")
    if m.get("geohm_version") != job.geohm_version:
        return Verdict(
            False, f"geohm version changed ({m.get('geohm_version')} -> {job.geohm_version})"
        )
    if m.get("command") != job.command:
        return Verdict(False, f"the earlier outputs are from geohm {m.get('command')}")
    if m.get("config_sha256") != job.config_sha256:
        return Verdict(False, "config changed")
    changed = _changed_inputs(m["inputs"], job.inputs)
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        return Verdict(False, f"inputs changed ({changed[0]}{more})")
    try:
        problem = _outputs_problem(path, m, hashes=hashes)
    except OSError as exc:
        problem = f"cannot read them: {_why(exc)}"
    if problem:
        return Verdict(False, f"outputs changed ({problem})")
    return Verdict(True, "outputs match manifest")


def outputs_complete(folder: str | os.PathLike[str], *, hashes: bool = False) -> bool:
    """Whether ``folder`` has a manifest and every output it lists, with its size.

    Unlike :func:`compare`, says nothing of the job that wrote them.
    """
    m = read_manifest(folder)
    if m is None or not m["outputs"]:
        return False
    try:
        return _outputs_problem(Path(folder), m, hashes) is None
    except OSError:
        return False


def _outputs_problem(path: Path, manifest: Mapping[str, Any], hashes: bool) -> str | None:
    """The first output of a manifest that is missing or changed, in words; else None."""
    for name, rec in manifest["outputs"].items():
        p = path / str(name)
        if not _plain_name(str(name)) or not p.is_file():
            return f"{name} is missing"
        if not isinstance(rec, dict) or p.stat().st_size != rec.get("size"):
            return f"{name} differs in size"
        if hashes and _sha256(p) != rec.get("sha256"):
            return f"{name} differs in content"
    return None


def _changed_inputs(old: Mapping[str, Any], new: Mapping[str, Mapping[str, int]]) -> list[str]:
    out = []
    for p in sorted(set(old) | set(new)):
        if p not in new:
            out.append(f"{p} is no longer an input")
        elif p not in old:
            out.append(f"{p} is new")
        elif old[p] != dict(new[p]):
            out.append(f"{p} was modified" if new[p]["size"] >= 0 else f"{p} is missing")
    return out


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _plain_name(name: str) -> bool:
    """A file name in the folder itself (a manifest cannot point anywhere else)."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


# --------------------------------------------------------------------------- the folder


def check_output_folder(path: str | os.PathLike[str]) -> Path:
    """Create the output folder if needed and prove it writable with a probe file.

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
        why = f"'{blocker}' is a file" if blocker is not None else _why(exc)
        raise OutputError(f"cannot create the output folder '{folder}': {why}{todo}") from None
    probe = folder / f"{_PROBE_PREFIX}{secrets.token_hex(4)}"
    try:
        with open(probe, "xb") as f:
            f.write(b"geohm probe\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise OutputError(
            f"cannot write into the output folder '{folder}': {_why(exc)}{todo}"
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


def _why(exc: OSError) -> str:
    return {
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.ENOTDIR: "a part of the path is a file",
    }.get(exc.errno or 0, exc.strerror or str(exc))


class OutputFolder:
    """An output folder held by one run (see the module docstring); use :func:`output_folder`.

    Attributes
    ----------
    path : Path
        The folder, absolute.
    removed : list of str
        Files of an earlier run removed by :meth:`clear_previous`.
    foreign : list of str
        Files geohm did not write, left in place.
    scratch_removed : list of str
        Temporary files of dead runs removed when the folder was taken.
    keep : set of str
        Files this run writes outside the pipeline's outputs (a batch job's log):
        never removed as an earlier run's, and listed in the manifest as ``logs``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(os.path.abspath(path))
        self.removed: list[str] = []
        self.foreign: list[str] = []
        self.scratch_removed: list[str] = []
        self.keep: set[str] = set()
        self._lock: FileLock | None = None
        self._cleared = False

    # -- taking and giving back

    def acquire(self) -> None:
        """Check the folder, take its lock without waiting, remove dead runs' scratch.

        Raises
        ------
        OutputError
            The folder is not usable, or another run holds it.
        """
        check_output_folder(self.path)
        lock = FileLock(str(self.path / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise OutputError(
                f"output folder '{self.path}' is in use by another geohm run "
                f"({self._holder()}); wait for it to finish or give --out (or output.dir) "
                "another folder"
            ) from None
        except OSError as exc:
            raise OutputError(
                f"cannot lock the output folder '{self.path}': {_why(exc)}; give --out "
                "(or output.dir) a folder on a local file system"
            ) from None
        self._lock = lock
        try:
            self._write(
                HOLDER_NAME,
                {
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "started": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )
            self._remove_scratch()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Give the lock back, leaving no lock file behind.

        The lock file is unlinked while still held: a process that opened the old file
        and locks it after the release finds it unlinked (filelock checks ``st_nlink``)
        and does not count it as held; one that comes later creates a new file. A run
        that is killed leaves the file, whose lock the kernel has already dropped.
        """
        if self._lock is None:
            return
        for name in (HOLDER_NAME, LOCK_NAME):
            with suppress(OSError):
                (self.path / name).unlink()
        self._lock.release()
        self._lock = None

    def _holder(self) -> str:
        try:
            h = json.loads((self.path / HOLDER_NAME).read_text(encoding="utf-8"))
            return f"process id {int(h['pid'])} on {h['host']}, started {h['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            return "its process id is not recorded yet"

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

    # -- clearing and sealing

    def clear_previous(self) -> list[str]:
        """Remove the earlier run's outputs before this run writes its own (once).

        Removed: the manifest and the files it lists (or, without a manifest, the
        ``outputs`` of a geohm ``report.json``), the files an unfinished run left
        (journal), and GDAL's ``.aux.xml`` beside any of them. Files geohm did not
        write stay and are named in a warning. Then the journal of this run is written.

        Returns
        -------
        list of str
            The names removed (also in :attr:`removed`).

        Raises
        ------
        OutputError
            A file cannot be removed.
        """
        if self._cleared:
            return self.removed
        present = {p.name: p for p in self._files()}
        doomed = self._earlier_outputs(present)
        doomed |= {n + _SIDECAR for n in doomed if n + _SIDECAR in present}
        doomed &= set(present)
        doomed -= self.keep | _INTERNAL
        # The journal first: if this run dies while clearing, the next one finishes it.
        self._write_journal(sorted(set(present) - doomed - _INTERNAL), sorted(doomed))
        for name in sorted(doomed, key=lambda n: n != MANIFEST_NAME):  # the manifest first
            try:
                present[name].unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise OutputError(
                    f"cannot remove '{present[name]}' (an earlier run's output): {_why(exc)}; "
                    "remove it by hand or give --out (or output.dir) another folder"
                ) from None
            self.removed.append(name)
        self.foreign = sorted(
            p.name
            for p in self._files()
            if p.name not in _INTERNAL | self.keep and not is_scratch(p.name)
        )
        if self.removed:
            log.info(
                "removed %d file(s) of an earlier run from %s: %s",
                len(self.removed),
                self.path,
                ", ".join(self.removed),
            )
        if self.foreign:
            log.warning(
                "output folder %s holds %d file(s) geohm did not write (kept): %s",
                self.path,
                len(self.foreign),
                ", ".join(self.foreign),
            )
        self._cleared = True
        return self.removed

    def _earlier_outputs(self, present: Mapping[str, Path]) -> set[str]:
        """Names of files an earlier geohm run wrote here."""
        names: set[str] = set()
        manifest = read_manifest(self.path)
        if manifest is not None:
            names |= set(manifest["outputs"]) | set(manifest.get("logs") or [])
        elif "report.json" in present:  # a folder written before manifests
            with suppress(OSError, ValueError, AttributeError):
                report = json.loads(present["report.json"].read_text(encoding="utf-8"))
                listed = report.get("outputs")
                if isinstance(listed, list):
                    names |= {n for n in listed if isinstance(n, str)}
        if MANIFEST_NAME in present:
            names.add(MANIFEST_NAME)  # also one geohm cannot read: it is stale now
        journal = present.get(JOURNAL_NAME)
        if journal is not None:
            names |= self._unfinished(journal, present)
        return {n for n in names if _plain_name(n)}

    def _unfinished(self, journal: Path, present: Mapping[str, Path]) -> set[str]:
        """Files written by a run that died: not in its journal's list of earlier files."""
        try:
            data = json.loads(journal.read_text(encoding="utf-8"))
            since = journal.stat().st_mtime_ns
            before = set(data["before"]) | set(data.get("keep") or [])
            removing = {n for n in data.get("removing", []) if isinstance(n, str)}
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignored an unreadable %s in %s", JOURNAL_NAME, self.path)
            return set()
        names = set(removing)
        for name, p in present.items():
            if name in before or name in _INTERNAL or name == MANIFEST_NAME:
                continue
            with suppress(OSError):
                if p.lstat().st_mtime_ns >= since:  # written while (or after) it ran
                    names.add(name)
        if names:
            log.warning(
                "an earlier run into %s did not finish (pid %s); removing what it left: %s",
                self.path,
                data.get("pid", "?"),
                ", ".join(sorted(names & set(present))),
            )
        return names

    def _write(self, name: str, obj: Any) -> Path:
        """Write a JSON file of geohm's own here (atomically); a failure is an OutputError."""
        try:
            return write_json(self.path / name, obj)
        except OSError as exc:  # write_json names the device where it can; else say why here
            raise OutputError(
                f"cannot write '{self.path / name}': {_why(exc)}; free some space or give "
                "--out (or output.dir) another folder"
            ) from None

    def _write_journal(self, before: list[str], removing: list[str]) -> None:
        self._write(
            JOURNAL_NAME,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
                "before": before,
                "removing": removing,
                "keep": sorted(self.keep),
            },
        )

    def seal(self, outputs: Iterable[str | os.PathLike[str]], job: Job) -> Path:
        """Write ``manifest.json`` (last, atomically) and end the journal.

        Parameters
        ----------
        outputs : iterable of path-like
            The files this run wrote, in this folder; GDAL's ``.aux.xml`` beside any of
            them is added.
        job : Job
            From :func:`job_fingerprint`, taken before the inputs were read.

        Returns
        -------
        Path
            The manifest.
        """
        if not self._cleared:
            raise RuntimeError("seal() before clear_previous(): the earlier outputs are unknown")
        names: list[str] = []
        for out in outputs:
            p = Path(os.path.abspath(out))
            if p.parent != self.path:
                raise ValueError(f"output '{p}' is not in the output folder '{self.path}'")
            names.append(p.name)
            if (self.path / (p.name + _SIDECAR)).is_file():
                names.append(p.name + _SIDECAR)
        records = {}
        for name in sorted(set(names)):
            p = self.path / name
            st = p.stat()
            records[name] = {
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
                "sha256": _sha256(p),
            }
        manifest = {
            "format": MANIFEST_FORMAT,
            "geohm_version": job.geohm_version,
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": job.command,
            "config_sha256": job.config_sha256,
            "inputs": job.inputs,
            "outputs": records,
            "logs": sorted(self.keep),
        }
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
        if self.foreign:
            note["kept_files_not_written_by_geohm"] = list(self.foreign)
        return note


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

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
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from pydantic import BaseModel

from geohm._version import __version__
from geohm.errors import OutputError
from geohm.io import rasters
from geohm.io.reports import write_json

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

log = logging.getLogger("geohm.outdir")

#: The manifest of a finished run, written last.
MANIFEST_NAME = "manifest.json"
#: Version of the manifest's layout.
MANIFEST_FORMAT = 1
#: The lock file (filelock) held for the duration of a run.
LOCK_NAME = ".geohm.lock"
#: Who holds the lock: pid, host and start time (written by the holder).
HOLDER_NAME = ".geohm.lock.json"
#: Present while a run writes: the outputs it is writing, by name.
JOURNAL_NAME = ".geohm.run.json"
_PROBE_PREFIX = ".geohm-probe-"
_INTERNAL = frozenset({LOCK_NAME, HOLDER_NAME, JOURNAL_NAME})
#: The libraries whose versions can change the numbers (distribution names), recorded in
#: the manifest with GDAL's version: an upgrade reruns the job.
DEPENDENCIES = ("numpy", "scikit-learn", "torch", "rasterio")

#: Config settings that cannot change the outputs, left out of the config hash: where
#: the folder is (the manifest lies in it), and the worker count and window size (the
#: maps are bit-identical whatever they are; tests/test_end_to_end.py checks it).
NEUTRAL_SETTINGS: dict[str, Any] = {"output": {"dir", "workers", "memory_mb", "tile"}}

# geohm's temporary names (geohm.io.rasters): atomic_path writes ``.<stem>.<8 hex>.tmp<suffix>``,
# TileWriter ``.<stem>.<8 hex>.scratch.tif``; GDAL adds ``.aux.xml`` beside either and the
# COG driver builds overviews in ``<temporary name>.ovr.tmp`` (``.msk.ovr.tmp``).
_SCRATCH = re.compile(r"^\..+\.[0-9a-f]{8}\.(?:scratch|tmp)(?:\..*)?$")
# GDAL's sidecar of a raster (statistics, category names): it goes with its raster. QGIS
# rewrites it when it computes statistics, even on a read-only open: never compared.
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


@functools.cache
def dependency_versions() -> dict[str, str]:
    """Versions of :data:`DEPENDENCIES` and of GDAL, as installed (read once a process).

    Read from the installed packages' metadata, so that no library is imported for it
    (torch takes seconds); GDAL's from rasterio, already loaded.

    Examples
    --------
    >>> sorted(dependency_versions())
    ['GDAL', 'numpy', 'rasterio', 'scikit-learn', 'torch']
    """
    out: dict[str, str] = {}
    for dist in DEPENDENCIES:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    out["GDAL"] = rasters.io_versions()["gdal"]
    return out


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
    versions : dict
        Versions of the libraries that make the numbers (:func:`dependency_versions`).
    """

    command: str
    config_sha256: str
    inputs: dict[str, dict[str, int]]
    geohm_version: str = __version__
    versions: dict[str, str] = field(default_factory=lambda: dict(dependency_versions()))


def job_fingerprint(
    config: BaseModel, *, command: str = "run", inputs: Iterable[str | os.PathLike[str]] = ()
) -> Job:
    """The job of a scene config, with its input files as they are now.

    Every path in the config (outside ``output``) is an input: a file, with the files
    beside it that share its stem (a shapefile's ``.dbf``); a Landsat ``_MTL.txt``,
    with every file in its folder (the bands beside it); or a folder (a Landsat scene),
    with every file under it. Left out: GDAL ``.aux.xml`` sidecars (QGIS rewrites them
    when it shows a raster), geohm's temporary names, and files that lie directly in
    the output folder (geohm's outputs and its own files), unless named in the config
    or in ``inputs``, or the config names the output folder itself as an input folder
    (then only geohm's files there are left out). Files in a subfolder of the output
    folder (``demo/data`` beside maps in ``demo``) are inputs. Call it before the
    inputs are read: a file changed during the run then makes the next run redo it.

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
    return Job(
        command,
        hashlib.sha256(text.encode()).hexdigest(),
        files,
        versions=dict(dependency_versions()),
    )


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


def _is_mtl(path: Path) -> bool:
    """A Landsat metadata file: its scene is the folder it lies in."""
    return path.name.upper().endswith("_MTL.TXT")


def _input_files(roots: Sequence[Path], out_dir: Path | None) -> dict[str, dict[str, int]]:
    named: set[Path] = {*roots}  # always inputs; a missing one is recorded as such
    found: set[Path] = set()
    own = _own_names(out_dir) if out_dir is not None else frozenset()

    def add(files: Iterable[Path], listed: Path) -> None:
        """Files found by listing the folder ``listed`` (for a folder: under it)."""
        for p in files:
            if p.name.endswith(_SIDECAR) or is_scratch(p.name) or not p.is_file():
                continue
            if out_dir is not None and p.parent == out_dir:
                # Directly in the output folder: geohm's outputs and files, unless the
                # config names that folder itself as an input folder.
                if listed != out_dir or p.name in own:
                    continue
            found.add(p)

    for root in roots:
        with suppress(OSError):  # unreadable: the run's own reading will say what is wrong
            if root.is_dir():
                named.discard(root)
                add(root.rglob("*"), root)
            elif root.is_file() and _is_mtl(root):  # the scene's bands lie beside it
                add(root.parent.iterdir(), root.parent)
            elif root.is_file():  # a shapefile's parts, a raster's .ovr, ...
                add(
                    (p for p in root.parent.iterdir() if p.name.startswith(root.stem + ".")),
                    root.parent,
                )
    return {str(p): _stat(p) for p in sorted(named | found)}


def _own_names(folder: Path) -> frozenset[str]:
    """Names of the files geohm wrote or writes directly in ``folder``."""
    names = {*_INTERNAL, MANIFEST_NAME}
    manifest = read_manifest(folder)
    if manifest is not None:
        names |= _listed(manifest)
    return frozenset(names)


def _listed(manifest: Mapping[str, Any]) -> set[str]:
    """Every name a manifest lists: outputs, logs and sidecars."""
    names = {str(n) for n in manifest["outputs"]}
    for key in ("logs", "sidecars"):
        listed = manifest.get(key)
        if isinstance(listed, list):
            names |= {n for n in listed if isinstance(n, str)}
    return names


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

    They match when the manifest exists, its geohm version, library versions
    (:func:`dependency_versions`), command, config hash and inputs (size and mtime of
    each file) equal the job's, and every output it lists exists with its recorded size.
    Output hashes are compared only with ``hashes``: re-reading every map of every scene
    whenever a batch starts would cost as much I/O as the maps' writing, while a
    truncated or replaced file shows in its size. GDAL ``.aux.xml`` sidecars are never
    compared: QGIS rewrites them (statistics) when it merely shows a map.

    The answer holds for the moment it is asked: a run may be writing into the folder
    (use :func:`compare_locked` to decide a skip).

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
        if not path.is_dir() or not any(p.name not in _INTERNAL for p in path.iterdir()):
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
    if m.get("versions") != job.versions:
        return Verdict(False, f"library versions changed ({_versions_changed(m, job)})")
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


def _versions_changed(manifest: Mapping[str, Any], job: Job) -> str:
    old = manifest.get("versions")
    if not isinstance(old, dict):
        return "not recorded in the manifest"
    return ", ".join(
        f"{k} {old.get(k, 'none')} -> {job.versions.get(k, 'none')}"
        for k in sorted(set(old) | set(job.versions))
        if old.get(k) != job.versions.get(k)
    )


def compare_locked(folder: str | os.PathLike[str], job: Job, *, hashes: bool = False) -> Verdict:
    """:func:`compare`; when it matches, asked again while holding the folder's lock.

    A job is skipped only on this answer: a run writing into the folder (a ``--force``
    run that has not yet removed the earlier manifest, say) makes it fail with the
    holder's message, as the run itself would, instead of reporting the folder up to
    date. A folder whose lock file cannot be created (a read-only archive) cannot be
    written by any run either: the first answer stands.

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
        raise OutputError(_in_use(path)) from None
    except OSError:
        return verdict
    try:
        return compare(folder, job, hashes=hashes)
    finally:
        lock.release()


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
        if str(name).endswith(_SIDECAR):  # listed by earlier manifests: never compared
            continue
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


def _holder(folder: Path) -> str:
    """Who holds ``folder``, in words, from the holder file."""
    try:
        h = json.loads((folder / HOLDER_NAME).read_text(encoding="utf-8"))
        return f"process id {int(h['pid'])} on {h['host']}, started {h['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "its process id is not recorded yet"


def _in_use(folder: Path) -> str:
    return (
        f"output folder '{folder}' is in use by another geohm run ({_holder(folder)}); wait "
        "for it to finish or give --out (or output.dir) another folder"
    )


def _legacy_outputs(report_path: Path) -> set[str]:
    """The ``outputs`` of a report.json that geohm wrote (a folder from before manifests).

    Only a report with geohm's own keys counts (``name``, ``versions.geohm``): another
    tool's report.json naming files is not a reason to remove them.
    """
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(report, dict) or not isinstance(report.get("outputs"), list):
        return set()
    versions = report.get("versions")
    if not (
        isinstance(report.get("name"), str)
        and isinstance(versions, dict)
        and isinstance(versions.get("geohm"), str)
    ):
        log.warning(
            "%s was not written by geohm (it has no 'name' and 'versions.geohm'): the files "
            "it lists are kept",
            report_path,
        )
        return set()
    return {n for n in report["outputs"] if isinstance(n, str)}


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
        lock = FileLock(str(self.path / LOCK_NAME))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise OutputError(_in_use(self.path)) from None
        except OSError as exc:
            raise OutputError(
                f"cannot lock the output folder '{self.path}': {_why(exc)}; give --out "
                "(or output.dir) a folder on a local file system"
            ) from None
        self._lock = lock
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
        left in the folder is harmless (:func:`compare` and the clearing ignore it).
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
        if name in _INTERNAL or name == MANIFEST_NAME or is_scratch(name):
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
        doomed = self._earlier_outputs(present)
        doomed |= {n + _SIDECAR for n in doomed if n + _SIDECAR in present}
        doomed &= set(present)
        doomed -= self.keep | _INTERNAL
        spared = {n for n in doomed if self._is_input(present[n])}
        spared |= {n + _SIDECAR for n in spared if n + _SIDECAR in doomed}
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
                    f"cannot remove '{present[name]}' (an earlier run's output): {_why(exc)}; "
                    "remove it by hand or give --out (or output.dir) another folder"
                ) from None
            self.removed.append(name)
        self._removing = []  # done: the next journal write drops them
        left = [
            p
            for p in self._files()
            if p.name not in _INTERNAL | self.keep and not is_scratch(p.name)
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

    def _earlier_outputs(self, present: Mapping[str, Path]) -> set[str]:
        """Names of files an earlier geohm run wrote here."""
        names: set[str] = set()
        manifest = read_manifest(self.path)
        if manifest is not None:
            names |= _listed(manifest)
        elif "report.json" in present:  # a folder written before manifests
            names |= _legacy_outputs(present["report.json"])
        if MANIFEST_NAME in present:
            names.add(MANIFEST_NAME)  # also one geohm cannot read: it is stale now
        journal = present.get(JOURNAL_NAME)
        if journal is not None:
            names |= self._unfinished(journal, present)
        return {n for n in names if _plain_name(n)}

    def _unfinished(self, journal: Path, present: Mapping[str, Path]) -> set[str]:
        """Files of a run that died: the outputs its journal claimed, and what it was removing.

        Only names in the journal: a file saved into the folder after that run (a QGIS
        project, notes) is not geohm's, whenever it was written.
        """
        try:
            data = json.loads(journal.read_text(encoding="utf-8"))
            written = {n for n in data["written"] if isinstance(n, str)}
            removing = {n for n in data.get("removing") or [] if isinstance(n, str)}
            keep = {n for n in data.get("keep") or [] if isinstance(n, str)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            log.warning(
                "ignored an unreadable %s in %s: the files of the run that wrote it stay",
                JOURNAL_NAME,
                self.path,
            )
            return set()
        names = (written | removing) - keep - _INTERNAL - {MANIFEST_NAME}
        left = sorted(names & set(present))
        if left:
            log.warning(
                "an earlier run into %s did not finish (pid %s); removing what it left: %s",
                self.path,
                data.get("pid", "?"),
                ", ".join(left),
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

    def _write_journal(self) -> None:
        self._write(
            JOURNAL_NAME,
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": self._started,
                "written": sorted(self.written),
                "removing": self._removing,
                "keep": sorted(self.keep),
            },
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
            From :func:`job_fingerprint`, taken before the inputs were read.

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
            names |= {n + _SIDECAR for n in names if (self.path / (n + _SIDECAR)).is_file()}
            records = {}
            for name in sorted(n for n in names if not n.endswith(_SIDECAR)):
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
                "versions": job.versions,
                "written": datetime.now(UTC).isoformat(timespec="seconds"),
                "command": job.command,
                "config_sha256": job.config_sha256,
                "inputs": job.inputs,
                "outputs": records,
                "sidecars": sorted(n for n in names if n.endswith(_SIDECAR)),
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
        if self.kept_inputs:
            note["kept_input_files"] = list(self.kept_inputs)
        if self.foreign:
            note["kept_files_not_written_by_geohm"] = list(self.foreign)
        return note


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

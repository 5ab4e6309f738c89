"""The job of a run and the manifest of its outputs: what a rerun may skip.

A :class:`Job` is what a run's outputs depend on: the command, a hash of the config
(:data:`NEUTRAL_SETTINGS` left out), every input file with its size and mtime, and the
versions of geohm and of the libraries that make the numbers. A finished run writes it
into ``manifest.json`` (:func:`manifest_record`), with every output's size, mtime and
sha256. :func:`compare` tells whether a folder's manifest matches a job, and if not, why.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from geohm._version import __version__
from geohm.io import rasters
from geohm.io.outlock import os_reason
from geohm.io.outnames import INTERNAL_NAMES, MANIFEST_NAME, SIDECAR, is_scratch, plain_name

__all__ = [
    "DEPENDENCIES",
    "MANIFEST_FORMAT",
    "NEUTRAL_SETTINGS",
    "Job",
    "Verdict",
    "compare",
    "dependency_versions",
    "job_fingerprint",
    "listed_names",
    "manifest_record",
    "outputs_complete",
    "read_manifest",
]

#: Version of the manifest's layout.
MANIFEST_FORMAT = 1
#: The libraries whose versions can change the numbers (distribution names), recorded in
#: the manifest with GDAL's version: an upgrade reruns the job.
DEPENDENCIES = ("numpy", "scikit-learn", "torch", "rasterio")

#: Config settings that cannot change the outputs, left out of the config hash: where
#: the folder is (the manifest lies in it), and the worker count and window size (the
#: maps are bit-identical whatever they are; tests/test_end_to_end.py checks it).
NEUTRAL_SETTINGS: dict[str, Any] = {"output": {"dir", "workers", "memory_mb", "tile"}}


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
            if p.name.endswith(SIDECAR) or is_scratch(p.name) or not p.is_file():
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
    names = {*INTERNAL_NAMES, MANIFEST_NAME}
    manifest = read_manifest(folder)
    if manifest is not None:
        names |= listed_names(manifest)
    return frozenset(names)


def listed_names(manifest: Mapping[str, Any]) -> set[str]:
    """Every name a manifest lists: outputs, logs and sidecars.

    Parameters
    ----------
    manifest : mapping
        A manifest read by :func:`read_manifest`.

    Returns
    -------
    set of str
        The names, as the manifest spells them (not yet checked to be plain names).
    """
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
    (use :func:`geohm.io.outdir.compare_locked` to decide a skip).

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
        if not path.is_dir() or not any(p.name not in INTERNAL_NAMES for p in path.iterdir()):
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
        problem = f"cannot read them: {os_reason(exc)}"
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
        if str(name).endswith(SIDECAR):  # listed by earlier manifests: never compared
            continue
        if not plain_name(str(name)) or not p.is_file():
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



def manifest_record(
    folder: Path, names: Iterable[str], job: Job, logs: Iterable[str]
) -> dict[str, Any]:
    """The manifest of a finished run: the job, and every output with its size and hash.

    Parameters
    ----------
    folder : Path
        The output folder.
    names : iterable of str
        The run's files in ``folder``: outputs, with their GDAL ``.aux.xml`` sidecars
        (listed under ``sidecars`` by name only: never compared).
    job : Job
        From :func:`job_fingerprint`, taken before the inputs were read.
    logs : iterable of str
        Files the run wrote outside the pipeline's outputs (a batch job's log).

    Returns
    -------
    dict
        The JSON object of ``manifest.json``; outputs carry ``size`` (bytes),
        ``mtime_ns`` (nanoseconds) and ``sha256``.
    """
    names = set(names)
    records = {}
    for name in sorted(n for n in names if not n.endswith(SIDECAR)):
        p = folder / name
        st = p.stat()
        records[name] = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "sha256": _sha256(p),
        }
    return {
        "format": MANIFEST_FORMAT,
        "geohm_version": job.geohm_version,
        "versions": job.versions,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": job.command,
        "config_sha256": job.config_sha256,
        "inputs": job.inputs,
        "outputs": records,
        "sidecars": sorted(n for n in names if n.endswith(SIDECAR)),
        "logs": sorted(logs),
    }

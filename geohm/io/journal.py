"""The journal of a run, and which files of an earlier run the next one removes.

While a run writes, the journal ``.geohm.run.json`` lists by name every output it is
about to write (:func:`journal_record`) and what it is removing of the earlier run: if
the run dies, the next one removes those names and nothing else. Before a run writes
its first output, :func:`earlier_outputs` names the files an earlier run wrote: those
its manifest lists (for a folder written before manifests: the ``outputs`` of a
report.json that geohm wrote, :func:`legacy_outputs`) and those an unfinished run
claimed in its journal (:func:`unfinished_outputs`). Files geohm did not write are
never among them. :class:`geohm.io.outfolder.OutputFolder` removes them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from geohm.io.manifest import listed_names, read_manifest
from geohm.io.outnames import INTERNAL_NAMES, JOURNAL_NAME, MANIFEST_NAME, plain_name

__all__ = ["earlier_outputs", "journal_record", "legacy_outputs", "unfinished_outputs"]

log = logging.getLogger("geohm.outdir")


def journal_record(
    started: str, written: Iterable[str], removing: list[str], keep: Iterable[str]
) -> dict[str, Any]:
    """The journal of a run in progress, as written to ``.geohm.run.json``.

    Parameters
    ----------
    started : str
        When the run took the folder (ISO 8601, UTC).
    written : iterable of str
        The outputs it has claimed, by name.
    removing : list of str
        The earlier run's files it is removing (empty once they are gone).
    keep : iterable of str
        Its files outside the pipeline's outputs (a batch job's log): never removed.

    Returns
    -------
    dict
        The JSON object, with this process's id and host.
    """
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": started,
        "written": sorted(written),
        "removing": removing,
        "keep": sorted(keep),
    }


def earlier_outputs(folder: Path, present: Mapping[str, Path]) -> set[str]:
    """Names of files an earlier geohm run wrote in ``folder``.

    Parameters
    ----------
    folder : Path
        The output folder.
    present : mapping of str to Path
        The files in it now, by name.

    Returns
    -------
    set of str
        Plain names (no path separators): those the manifest (or a report.json geohm
        wrote) lists, the manifest itself, and those an unfinished run claimed.
    """
    names: set[str] = set()
    manifest = read_manifest(folder)
    if manifest is not None:
        names |= listed_names(manifest)
    elif "report.json" in present:  # a folder written before manifests
        names |= legacy_outputs(present["report.json"])
    if MANIFEST_NAME in present:
        names.add(MANIFEST_NAME)  # also one geohm cannot read: it is stale now
    journal = present.get(JOURNAL_NAME)
    if journal is not None:
        names |= unfinished_outputs(folder, journal, present)
    return {n for n in names if plain_name(n)}


def unfinished_outputs(folder: Path, journal: Path, present: Mapping[str, Path]) -> set[str]:
    """Files of a run that died: the outputs its journal claimed, and what it was removing.

    Only names in the journal: a file saved into the folder after that run (a QGIS
    project, notes) is not geohm's, whenever it was written.

    Parameters
    ----------
    folder : Path
        The output folder.
    journal : Path
        Its ``.geohm.run.json``.
    present : mapping of str to Path
        The files in the folder now, by name.

    Returns
    -------
    set of str
        The names (empty for an unreadable journal, with a warning).
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
            folder,
        )
        return set()
    names = (written | removing) - keep - INTERNAL_NAMES - {MANIFEST_NAME}
    left = sorted(names & set(present))
    if left:
        log.warning(
            "an earlier run into %s did not finish (pid %s); removing what it left: %s",
            folder,
            data.get("pid", "?"),
            ", ".join(left),
        )
    return names


def legacy_outputs(report_path: Path) -> set[str]:
    """The ``outputs`` of a report.json that geohm wrote (a folder from before manifests).

    Only a report with geohm's own keys counts (``name``, ``versions.geohm``): another
    tool's report.json naming files is not a reason to remove them.

    Parameters
    ----------
    report_path : Path
        The folder's ``report.json``.

    Returns
    -------
    set of str
        The names it lists (empty for another tool's or an unreadable report).
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

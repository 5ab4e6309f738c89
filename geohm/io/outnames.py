"""The names of geohm's files in an output folder, and how geohm tells them from others'.

An output folder holds the run's outputs (listed in ``manifest.json``), geohm's own
files (the lock, its holder, the run's journal: :data:`INTERNAL_NAMES`), temporary files
of a run in progress (:func:`is_scratch`) and GDAL's ``.aux.xml`` sidecars beside the
rasters (:data:`SIDECAR`). :mod:`geohm.io.outdir` describes their life.
"""

from __future__ import annotations

import re

__all__ = [
    "HOLDER_NAME",
    "INTERNAL_NAMES",
    "JOURNAL_NAME",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "PROBE_PREFIX",
    "SIDECAR",
    "is_scratch",
    "plain_name",
]

#: The manifest of a finished run, written last.
MANIFEST_NAME = "manifest.json"
#: The lock file (filelock) held for the duration of a run.
LOCK_NAME = ".geohm.lock"
#: Who holds the lock: pid, host and start time (written by the holder).
HOLDER_NAME = ".geohm.lock.json"
#: Present while a run writes: the outputs it is writing, by name.
JOURNAL_NAME = ".geohm.run.json"
#: Start of the name of the probe file that proves a folder writable.
PROBE_PREFIX = ".geohm-probe-"
#: geohm's own files in the folder: never outputs, never removed as an earlier run's.
INTERNAL_NAMES = frozenset({LOCK_NAME, HOLDER_NAME, JOURNAL_NAME})

# geohm's temporary names (geohm.io.rasters): atomic_path writes ``.<stem>.<8 hex>.tmp<suffix>``,
# TileWriter ``.<stem>.<8 hex>.scratch.tif``; GDAL adds ``.aux.xml`` beside either and the
# COG driver builds overviews in ``<temporary name>.ovr.tmp`` (``.msk.ovr.tmp``).
_SCRATCH = re.compile(r"^\..+\.[0-9a-f]{8}\.(?:scratch|tmp)(?:\..*)?$")
#: GDAL's sidecar of a raster (statistics, category names): it goes with its raster. QGIS
#: rewrites it when it computes statistics, even on a read-only open: never compared.
SIDECAR = ".aux.xml"


def is_scratch(name: str) -> bool:
    """Whether a file name is one of geohm's temporary names (never an output).

    Parameters
    ----------
    name : str
        A file name (no folder).

    Returns
    -------
    bool
        True for a temporary name of geohm's writers or a probe file.

    Examples
    --------
    >>> is_scratch(".Cu_concentration.0a1b2c3d.scratch.tif")
    True
    >>> is_scratch(".Cu_concentration.0a1b2c3d.tmp.tif.ovr.tmp")
    True
    >>> is_scratch("Cu_concentration.tif")
    False
    """
    return bool(_SCRATCH.match(name)) or name.startswith(PROBE_PREFIX)


def plain_name(name: str) -> bool:
    """Whether ``name`` is a file name in the folder itself (a manifest cannot point elsewhere).

    Parameters
    ----------
    name : str
        A name read from a manifest or a journal.

    Returns
    -------
    bool
        False for an empty name, ``.``, ``..`` and anything with a path separator.
    """
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name

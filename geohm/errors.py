"""The geohm exception tree.

Every error a user can cause (a bad config, a missing or corrupt file, a CRS
mismatch, points outside the scene, an all-nodata tile) raises a subclass of
:class:`GeohmError` whose message names the file, band or key at fault and says
what to do. The command line turns these into exit code 2 and one line on stderr.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "GeohmError",
    "GridError",
    "InputError",
    "NoDataError",
    "OutputError",
    "SampleError",
]


class GeohmError(Exception):
    """Base class of every error geohm raises on purpose."""


class ConfigError(GeohmError):
    """A scene config is malformed: an unknown or misspelt key, a bad value."""


class InputError(GeohmError):
    """An input file is missing, unreadable, corrupt, or lacks a needed band."""


class GridError(GeohmError):
    """Rasters cannot be put on one grid (no CRS, CRS mismatch, no overlap)."""


class SampleError(GeohmError):
    """Sample points are unusable (none inside the scene, missing columns)."""


class NoDataError(GeohmError):
    """A raster, window or sample set holds no valid data where some is needed."""


class OutputError(GeohmError):
    """The output folder cannot be used, or a write failed there.

    The folder is a file, cannot be created or written, or another run is writing into
    it; or a write failed (no space left on the device, a quota, an I/O error), and
    nothing was written under that file's name.
    """

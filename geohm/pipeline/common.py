"""Shared names of the pipeline: the logger, the progress callback, nodata, chunk size."""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger("geohm")

#: Progress callback: (stage, done, total).
Progress = Callable[[str, int, int], None]

NODATA = -9999.0
CHUNK = 512

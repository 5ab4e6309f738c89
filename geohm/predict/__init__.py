"""Tile-by-tile application of fitted models: the package that owns map windows.

- :mod:`~geohm.predict.plan`: the window side a memory budget allows, and the windows.
- :mod:`~geohm.predict.block`: one window's valid pixels as a table; each target model's
  prediction and predictive distribution from one call (interval width, P(C > S)).
- :mod:`~geohm.predict.executor`: windows computed in parallel threads, handed to the
  writers (usually :class:`geohm.io.rasters.TileWriter`) by one thread in window order,
  so the maps do not depend on the worker count.
- :mod:`~geohm.predict.stats`: streaming map statistics and area tables.

The features of a window come from :class:`geohm.cube.WindowSource`, the one feature
path (the sample points are read through it too). Peak memory is set by the window size
and the number of features, never by the scene size.
"""

from geohm.predict.block import TargetModel, Thresholds, predict_block
from geohm.predict.executor import (
    Derive,
    Sink,
    _single_threaded_models,  # noqa: F401  (tests use it)
    predict_map,
)
from geohm.predict.plan import iter_windows, window_size
from geohm.predict.stats import CLASS_NODATA, FINE_EDGES, MapStats

__all__ = [
    "CLASS_NODATA",
    "FINE_EDGES",
    "Derive",
    "MapStats",
    "Sink",
    "TargetModel",
    "Thresholds",
    "iter_windows",
    "predict_block",
    "predict_map",
    "window_size",
]

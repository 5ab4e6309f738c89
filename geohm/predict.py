"""Tile-by-tile application of fitted models to a lazy feature cube.

The only module that knows about windows. Each window of the cube is computed (only
the dask chunks under it are read), its valid pixels become a table, each model
predicts its target from its own feature columns, and the result goes to a sink
(usually a :class:`geohm.io.rasters.TileWriter`). Peak memory is set by the window
size and the number of features, never by the scene size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import xarray as xr

from geohm.cube import valid_mask
from geohm.errors import NoDataError

__all__ = [
    "MapStats",
    "TargetModel",
    "iter_windows",
    "predict_block",
    "predict_map",
]


class Sink(Protocol):
    """Receives predicted windows (``TileWriter`` satisfies it)."""

    def write(self, row_off: int, col_off: int, data: np.ndarray) -> None: ...


@dataclass(frozen=True)
class TargetModel:
    """A fitted estimator and the cube features (in order) it was trained on."""

    estimator: Any
    features: Sequence[str]
    clip_min: float | None = 0.0  # concentrations are never negative


@dataclass
class MapStats:
    """Streaming statistics of a predicted map (mg/kg), updated window by window."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    histogram: dict[str, int] = field(default_factory=dict)

    def update(self, values: np.ndarray) -> None:
        """Add the finite values of one window."""
        v = values[np.isfinite(values)].astype("float64")
        if v.size == 0:
            return
        self.count += int(v.size)
        self.total += float(v.sum())
        self.total_sq += float(np.square(v).sum())
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))

    def as_dict(self) -> dict[str, float | int | None]:
        """min, max, mean, std (population) and the number of mapped pixels."""
        if self.count == 0:
            return {"min": None, "max": None, "mean": None, "std": None, "pixels": 0}
        mean = self.total / self.count
        var = max(self.total_sq / self.count - mean * mean, 0.0)
        return {
            "min": self.min,
            "max": self.max,
            "mean": mean,
            "std": float(np.sqrt(var)),
            "pixels": self.count,
        }


def iter_windows(height: int, width: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """Row-major windows ``(row_off, col_off, rows, cols)`` covering a grid.

    Examples
    --------
    >>> list(iter_windows(3, 5, 2))  # doctest: +NORMALIZE_WHITESPACE
    [(0, 0, 2, 2), (0, 2, 2, 2), (0, 4, 2, 1), (2, 0, 1, 2), (2, 2, 1, 2), (2, 4, 1, 1)]
    """
    if tile < 1:
        raise ValueError("tile must be a positive number of pixels")
    for r in range(0, height, tile):
        for c in range(0, width, tile):
            yield r, c, min(tile, height - r), min(tile, width - c)


def predict_block(
    block: np.ndarray,
    features: Sequence[str],
    models: Mapping[str, TargetModel],
) -> dict[str, np.ndarray]:
    """Predict every target on one (feature, y, x) block.

    Only pixels where every feature is finite are sent to the models; the others
    are NaN in the result. A block without a single valid pixel costs no model call.

    Returns
    -------
    dict of str to numpy.ndarray
        Target name -> (y, x) float32 prediction.
    """
    _, h, w = block.shape
    ok = valid_mask(block)
    out: dict[str, np.ndarray] = {}
    n_valid = int(ok.sum())
    index = {f: i for i, f in enumerate(features)}
    for target, tm in models.items():
        pred = np.full((h, w), np.nan, dtype="float32")
        if n_valid:
            cols = [index[f] for f in tm.features]
            table = block[cols][:, ok].T  # (n_valid, n_features)
            values = np.asarray(tm.estimator.predict(table), dtype="float64")
            if tm.clip_min is not None:
                values = np.maximum(values, tm.clip_min)
            pred[ok] = values
        out[target] = pred
    return out


def predict_map(
    cube: xr.DataArray,
    models: Mapping[str, TargetModel],
    sinks: Mapping[str, Sink],
    *,
    tile: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, MapStats]:
    """Predict every target over the whole cube, window by window.

    Parameters
    ----------
    cube : xarray.DataArray
        Lazy (feature, y, x) cube.
    models : mapping of str to TargetModel
        Target name -> fitted model and its features.
    sinks : mapping of str to Sink
        Target name -> where predicted windows go.
    tile : int
        Window size in pixels.
    progress : callable, optional
        Called as ``progress(windows_done, windows_total)`` after each window.

    Returns
    -------
    dict of str to MapStats

    Raises
    ------
    NoDataError
        Not a single pixel of the scene has every feature valid.
    """
    features = [str(f) for f in cube["feature"].values]
    height, width = cube.sizes["y"], cube.sizes["x"]
    windows = list(iter_windows(height, width, tile))
    stats = {t: MapStats() for t in models}
    for k, (r, c, h, w) in enumerate(windows, start=1):
        block = np.asarray(cube.isel(y=slice(r, r + h), x=slice(c, c + w)).values)
        preds = predict_block(block, features, models)
        for target, pred in preds.items():
            sinks[target].write(r, c, pred)
            stats[target].update(pred)
        if progress is not None:
            progress(k, len(windows))
    empty = [t for t, s in stats.items() if s.count == 0]
    if empty:
        raise NoDataError(
            "no pixel of the scene has every feature valid, so nothing could be mapped; check "
            "the QA mask ('qa_mask'), that the DEM and covariates cover the scene, and the "
            "nodata values"
        )
    return stats

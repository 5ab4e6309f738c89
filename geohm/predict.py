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
    "CLASS_NODATA",
    "MapStats",
    "TargetModel",
    "iter_windows",
    "predict_block",
    "predict_map",
]


#: Fine histogram edges for streaming area tables of concentration maps (mg/kg).
FINE_EDGES = np.concatenate([[0.0], np.logspace(-2, 5, 7001)])

#: Nodata code of class (uint8) rasters.
CLASS_NODATA = 255

#: Derives extra layers for one window from the predicted targets:
#: ``derive(predictions, block, features) -> {layer name: (y, x) array}``.
Derive = Callable[[dict[str, np.ndarray], np.ndarray, list[str]], dict[str, np.ndarray]]


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
    """Streaming statistics of a map, updated window by window.

    For class rasters (integer codes) ``histogram`` counts the pixels of each code.
    """

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    min: float = float("inf")
    max: float = float("-inf")
    histogram: dict[str, int] = field(default_factory=dict)
    fine: np.ndarray = field(default_factory=lambda: np.zeros(len(FINE_EDGES) + 1, dtype="int64"))

    def update(self, values: np.ndarray) -> None:
        """Add the valid values of one window (finite floats; class codes other than 255)."""
        if np.issubdtype(values.dtype, np.integer):
            codes = values[values != CLASS_NODATA]
            for code, n in zip(*np.unique(codes, return_counts=True), strict=True):
                self.histogram[str(int(code))] = self.histogram.get(str(int(code)), 0) + int(n)
            values = codes
        v = values[np.isfinite(values)].astype("float64")
        if v.size == 0:
            return
        self.fine += np.bincount(
            np.searchsorted(FINE_EDGES, v, side="right"), minlength=len(self.fine)
        )
        self.count += int(v.size)
        self.total += float(v.sum())
        self.total_sq += float(np.square(v).sum())
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))

    def bin_fractions(self, edges: Sequence[float]) -> list[dict[str, Any]]:
        """Share of mapped pixels in each ``[edges[i], edges[i+1])`` interval.

        Counted from a fixed fine histogram (7000 log-spaced bins from 0.01 to 1e5), so an
        edge is placed to within 0.23 % of its value: exact enough for an area table.
        """
        cum = np.concatenate([[0], np.cumsum(self.fine)])
        total = max(int(cum[-1]), 1)
        out = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            a = cum[np.searchsorted(FINE_EDGES, lo, side="right")]
            b = cum[np.searchsorted(FINE_EDGES, hi, side="right")]
            out.append({"from": float(lo), "to": float(hi), "fraction": float(b - a) / total})
        return out

    def as_dict(self) -> dict[str, Any]:
        """min, max, mean, std (population) and the number of mapped pixels."""
        if self.count == 0:
            return {"min": None, "max": None, "mean": None, "std": None, "pixels": 0}
        mean = self.total / self.count
        var = max(self.total_sq / self.count - mean * mean, 0.0)
        out: dict[str, Any] = {
            "min": self.min,
            "max": self.max,
            "mean": mean,
            "std": float(np.sqrt(var)),
            "pixels": self.count,
        }
        if self.histogram:
            out["class_pixels"] = dict(sorted(self.histogram.items(), key=lambda kv: int(kv[0])))
        return out


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

    Only pixels where every feature used by a model is finite are sent to the models;
    the others are NaN in the result (layers no model uses, such as a pH raster, do
    not mask pixels). A block without a single valid pixel costs no model call.

    Returns
    -------
    dict of str to numpy.ndarray
        Target name -> (y, x) float32 prediction.
    """
    _, h, w = block.shape
    index = {f: i for i, f in enumerate(features)}
    used = sorted({index[f] for tm in models.values() for f in tm.features})
    ok = valid_mask(block[used])
    out: dict[str, np.ndarray] = {}
    n_valid = int(ok.sum())
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
    derive: Derive | None = None,
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
    derive : callable, optional
        Extra layers per window from the predictions (risk indices and classes);
        each derived layer needs a sink of the same name.

    Returns
    -------
    dict of str to MapStats
        One per target and per derived layer.

    Raises
    ------
    NoDataError
        Not a single pixel of the scene has every feature valid.
    """
    features = [str(f) for f in cube["feature"].values]
    height, width = cube.sizes["y"], cube.sizes["x"]
    windows = list(iter_windows(height, width, tile))
    stats = {t: MapStats() for t in sinks}
    for k, (r, c, h, w) in enumerate(windows, start=1):
        block = np.asarray(cube.isel(y=slice(r, r + h), x=slice(c, c + w)).values)
        layers = predict_block(block, features, models)
        if derive is not None:
            layers = {**layers, **derive(layers, block, features)}
        for name, arr in layers.items():
            sinks[name].write(r, c, arr)
            stats[name].update(arr)
        if progress is not None:
            progress(k, len(windows))
    empty = [t for t in models if stats[t].count == 0]
    if empty:
        raise NoDataError(
            "no pixel of the scene has every feature valid, so nothing could be mapped; check "
            "the QA mask ('qa_mask'), that the DEM and covariates cover the scene, and the "
            "nodata values"
        )
    return stats

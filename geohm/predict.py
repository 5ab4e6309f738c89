"""Tile-by-tile application of fitted models to a lazy feature cube.

The only module that knows about windows. Each window of the cube is computed (only
the dask chunks under it are read), its valid pixels become a table, each model
predicts its target from its own feature columns, and the result goes to a sink
(usually a :class:`geohm.io.rasters.TileWriter`). Peak memory is set by the window
size and the number of features, never by the scene size.
"""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import xarray as xr

from geohm.cube import WindowSource, valid_mask
from geohm.errors import NoDataError
from geohm.io.rasters import read_block
from geohm.models.ensemble import predict_distribution

__all__ = [
    "CLASS_NODATA",
    "MapStats",
    "TargetModel",
    "iter_windows",
    "predict_block",
    "predict_map",
    "window_size",
]


#: Fine histogram edges for streaming area tables of concentration maps (mg/kg).
FINE_EDGES = np.concatenate([[0.0], np.logspace(-2, 5, 7001)])

#: Nodata code of class (uint8) rasters.
CLASS_NODATA = 255

#: Derives extra layers for one window from the predicted targets:
#: ``derive(predictions, block, features) -> {layer name: (y, x) array}``.
Derive = Callable[[dict[str, np.ndarray], np.ndarray, list[str]], dict[str, np.ndarray]]

#: Values whose exceedance probability the models give for one window:
#: ``thresholds(block, features) -> {target: number or (y, x) array (mg/kg)}``.
Thresholds = Callable[[np.ndarray, list[str]], Mapping[str, Any]]


class Sink(Protocol):
    """Receives predicted windows (``TileWriter`` satisfies it)."""

    def write(self, row_off: int, col_off: int, data: np.ndarray) -> None: ...


@dataclass(frozen=True)
class TargetModel:
    """A fitted estimator and the cube features (in order) it was trained on."""

    estimator: Any
    features: Sequence[str]
    clip_min: float | None = 0.0  # concentrations are never negative
    #: Features the model really uses (after factor screening); None: all of ``features``.
    #: Only these must be valid for a pixel to be predicted; NaN in the others (dropped by
    #: the model's selector anyway) is passed as 0.
    required: Sequence[str] | None = None
    #: Prediction intervals around ``estimator`` (a fitted
    #: :class:`geohm.models.uncertainty.IntervalModel`, or anything with
    #: ``predict_interval(X) -> (prediction, lower, upper)``). When set, the prediction comes
    #: from it (the same values as ``estimator.predict``, in one pass) and the layer
    #: ``<target>_uncertainty`` holds the interval width (mg/kg).
    interval: Any = None


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


def _estimators(models: Mapping[str, TargetModel]) -> list[Any]:
    """Every estimator object the models predict with, fitted inner ones included.

    ``get_params(deep=True)`` of a log-target wrapper reaches its unfitted template
    (``regressor``), not the fitted ``regressor_``; an interval model holds the estimator
    it was fitted around (which may differ from ``TargetModel.estimator``, e.g. when that
    is an accelerated copy).
    """
    out: list[Any] = []
    for tm in models.values():
        todo = [tm.estimator, getattr(tm.interval, "estimator", None)]
        while todo:
            est = todo.pop()
            if est is None or any(est is e for e in out):
                continue
            out.append(est)
            steps = getattr(est, "steps", None)
            if steps:
                todo.append(steps[-1][1])
            todo.append(getattr(est, "regressor_", None))
    return out


@contextlib.contextmanager
def _single_threaded_models(models: Mapping[str, TargetModel]) -> Iterator[None]:
    """Set ``n_jobs=1`` on every (settable) estimator inside the models for the duration."""
    changed: list[tuple[Any, str, Any]] = []
    for est in _estimators(models):
        params = est.get_params(deep=True) if hasattr(est, "get_params") else {}
        for key, value in params.items():
            # None too: for GA-BP it means torch's own thread count, not one thread.
            if key.endswith("n_jobs") and value != 1:
                try:
                    est.set_params(**{key: 1})
                except (ValueError, AttributeError):  # frozen parts cannot be changed
                    continue
                changed.append((est, key, value))
    try:
        yield
    finally:
        for est, key, value in changed:
            est.set_params(**{key: value})


def window_size(n_features: int, *, workers: int, memory_mb: float, block: int = 256) -> int:
    """Window side (pixels, a multiple of the GeoTIFF ``block``) that fits a memory budget.

    Per pixel a window holds the feature block (float32), the valid-pixel table handed to
    the models (float64 copy) and a few output layers: about ``12 * n_features + 64``
    bytes. Up to ``2 * workers + 1`` windows are in flight (read-ahead plus the one being
    written).

    Examples
    --------
    >>> window_size(21, workers=2, memory_mb=1024)
    768
    >>> window_size(21, workers=2, memory_mb=64)
    256
    """
    per_pixel = 12 * n_features + 64
    pixels = memory_mb * 2**20 / (per_pixel * (2 * max(workers, 1) + 1))
    side = int(np.sqrt(pixels)) // block * block
    return int(min(max(side, block), 4096))


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
    thresholds: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Predict every target on one (feature, y, x) block.

    Only pixels where every feature used by a model is finite are sent to the models;
    the others are NaN in the result (layers no model uses, such as a pH raster, do
    not mask pixels). A block without a single valid pixel costs no model call. Each
    model gives its prediction, interval and exceedance probabilities in one call
    (:func:`geohm.models.ensemble.predict_distribution`: one traversal of a forest).

    Parameters
    ----------
    thresholds : mapping of str to float or numpy.ndarray, optional
        Target -> the value (mg/kg; a number or a (y, x) array, NaN: none) whose
        exceedance probability the target's model gives.

    Returns
    -------
    dict of str to numpy.ndarray
        Target name -> (y, x) float32 prediction, ``<target>_uncertainty`` -> the width
        of the prediction interval (mg/kg) for models with an ``interval``, and
        ``<target>_exceedance`` -> P(prediction > threshold) for the targets in
        ``thresholds``.
    """
    _, h, w = block.shape
    index = {f: i for i, f in enumerate(features)}
    used = sorted({index[f] for tm in models.values() for f in (tm.required or tm.features)})
    ok = valid_mask(block[used])
    out: dict[str, np.ndarray] = {}
    n_valid = int(ok.sum())
    for target, tm in models.items():
        pred = np.full((h, w), np.nan, dtype="float32")
        width = np.full((h, w), np.nan, dtype="float32") if tm.interval is not None else None
        limit = None if thresholds is None else thresholds.get(target)
        prob = None if limit is None else np.full((h, w), np.nan, dtype="float32")
        if n_valid:
            cols = [index[f] for f in tm.features]
            table = block[cols][:, ok].T  # (n_valid, n_features)
            if tm.required is not None:
                table = np.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0)
            dist = predict_distribution(
                tm.estimator,
                table,
                interval=tm.interval,
                thresholds=None if limit is None else np.broadcast_to(limit, (h, w))[ok],
            )
            values = np.asarray(dist.prediction, dtype="float64")
            if width is not None and dist.lower is not None and dist.upper is not None:
                lower, upper = dist.lower, dist.upper
                if tm.clip_min is not None:  # a bound below the floor says no more than it
                    lower, upper = np.maximum(lower, tm.clip_min), np.maximum(upper, tm.clip_min)
                width[ok] = upper - lower
            if prob is not None:
                prob[ok] = dist.exceedance
            if tm.clip_min is not None:
                values = np.maximum(values, tm.clip_min)
            pred[ok] = values
        out[target] = pred
        if width is not None:
            out[f"{target}_uncertainty"] = width
        if prob is not None:
            out[f"{target}_exceedance"] = prob
    return out


def _read_window(cube: xr.DataArray, r: int, c: int, h: int, w: int) -> np.ndarray:
    return read_block(cube.isel(y=slice(r, r + h), x=slice(c, c + w)))


def predict_map(
    cube: xr.DataArray | WindowSource,
    models: Mapping[str, TargetModel],
    sinks: Mapping[str, Sink],
    *,
    tile: int = 512,
    progress: Callable[[int, int], None] | None = None,
    derive: Derive | None = None,
    workers: int = 1,
    thresholds: Thresholds | None = None,
) -> dict[str, MapStats]:
    """Predict every target over the whole cube, window by window.

    Parameters
    ----------
    cube : xarray.DataArray or WindowSource
        Lazy (feature, y, x) cube, or the same cube built window by window (each
        window computed from the raw layers under it; the same numbers, faster).
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
    workers : int
        Threads computing windows at once (reading, predicting, deriving); one writer
        stores them in window order, so the output does not depend on ``workers``.
        Models with their own thread pools (random forests) are switched to one thread
        each meanwhile: no oversubscription, and results that do not depend on thread
        timing.
    thresholds : callable, optional
        ``thresholds(block, features) -> {target: mg/kg}`` per window (the risk plan's
        screening values): the models give ``<target>_exceedance`` = P(C > threshold)
        with their prediction, from the same traversal; each needs a sink.

    Returns
    -------
    dict of str to MapStats
        One per target and per derived layer.

    Raises
    ------
    NoDataError
        Not a single pixel of the scene has every feature valid.
    """
    read: Callable[[int, int, int, int], np.ndarray]
    if isinstance(cube, WindowSource):
        features = list(cube.features)
        height, width = cube.shape
        read = cube.read
    else:
        features = [str(f) for f in cube["feature"].values]
        height, width = cube.sizes["y"], cube.sizes["x"]
        read = functools.partial(_read_window, cube)
    windows = list(iter_windows(height, width, tile))
    stats = {t: MapStats() for t in sinks}

    def compute(window: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
        r, c, h, w = window
        # Each window is read on the calling thread: the parallelism is across windows,
        # so dask must not start a pool of its own inside each one (set per call: the
        # global dask config is shared by all threads).
        block = read(r, c, h, w)
        limits = thresholds(block, features) if thresholds is not None else None
        layers = predict_block(block, features, models, limits)
        if derive is not None:
            layers = {**layers, **derive(layers, block, features)}
        return layers

    def consume(k: int, window: tuple[int, int, int, int], layers: dict[str, np.ndarray]) -> None:
        # One writer, in window order: GDAL handles are not shared between threads, and
        # the same order keeps the streaming statistics bit-identical for any worker count.
        for name, arr in layers.items():
            sinks[name].write(window[0], window[1], arr)
            stats[name].update(arr)
        if progress is not None:
            progress(k, len(windows))

    # Models run single-threaded in both modes: a forest's multi-threaded predict adds
    # tree outputs in thread order, which would make the last bits vary from run to run.
    if workers <= 1:
        with _single_threaded_models(models):
            for k, window in enumerate(windows, start=1):
                consume(k, window, compute(window))
    else:
        with _single_threaded_models(models), ThreadPoolExecutor(workers) as pool:
            pending: deque[Any] = deque()
            todo = iter(enumerate(windows, start=1))
            for k, window in todo:
                pending.append((k, window, pool.submit(compute, window)))
                if len(pending) >= 2 * workers:  # bounded read-ahead: bounded memory
                    kk, ww, fut = pending.popleft()
                    consume(kk, ww, fut.result())
            while pending:
                kk, ww, fut = pending.popleft()
                consume(kk, ww, fut.result())
    empty = [t for t in models if stats[t].count == 0]
    if empty:
        raise NoDataError(
            "no pixel of the scene has every feature valid, so nothing could be mapped; check "
            "the QA mask ('qa_mask'), that the DEM and covariates cover the scene, and the "
            "nodata values"
        )
    return stats

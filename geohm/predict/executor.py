"""The prediction pass: windows in parallel, one writer in window order, bounded memory."""

from __future__ import annotations

import contextlib
import functools
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import xarray as xr

from geohm.cube import WindowSource
from geohm.errors import NoDataError
from geohm.io.rasters import read_block
from geohm.models.parts import single_threaded
from geohm.patches import read_halo
from geohm.predict.block import TargetModel, Thresholds, predict_block
from geohm.predict.plan import iter_windows
from geohm.predict.stats import MapStats

#: Derives extra layers for one window from its position and layers.
WindowDerive = Callable[
    [tuple[int, int, int, int], dict[str, np.ndarray], np.ndarray, list[str]],
    dict[str, np.ndarray],
]
#: Derives extra layers for one window from the predicted targets:
#: ``derive(predictions, block, features) -> {layer name: (y, x) array}``.
Derive = Callable[[dict[str, np.ndarray], np.ndarray, list[str]], dict[str, np.ndarray]]


class Sink(Protocol):
    """Receives predicted windows (``TileWriter`` satisfies it)."""

    def write(self, row_off: int, col_off: int, data: np.ndarray) -> None:
        """Store a (rows, cols) window whose top-left pixel is (row_off, col_off)."""


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


def _single_threaded_models(
    models: Mapping[str, TargetModel],
) -> contextlib.AbstractContextManager[None]:
    """Set ``n_jobs=1`` on every (settable) estimator inside the models for the duration."""
    return single_threaded(_estimators(models))


class _Reader:
    """A window reader (``read`` and ``shape``) for :func:`geohm.patches.read_halo`."""

    def __init__(self, read: Callable[[int, int, int, int], np.ndarray], shape: tuple[int, int]):
        self.read = read
        self.shape = shape


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
    on_window: Callable[[tuple[int, int, int, int], dict[str, np.ndarray]], None] | None = None,
    bounds: bool = False,
    derive_window: WindowDerive | None = None,
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
    on_window : callable, optional
        Called with each window ``(row_off, col_off, height, width)`` and all its layers,
        in window order on one thread (accumulators: area above the standard per zone,
        next-sample candidates). Layers without a sink go only there.
    derive_window : callable, optional
        ``derive_window(window, layers, block, features) -> {layer name: (y, x) array}``:
        more layers per window that need its position (``(row_off, col_off, height, width)``; the
        accumulation projection); each needs a sink. Runs on the worker threads.
    bounds : bool
        Also give the interval bounds ``<target>_lower``, ``<target>_upper`` (for
        ``on_window``).

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
    # Patch models see a neighbourhood: their windows are read with that many pixels
    # around them (NaN beyond the scene), the window itself being the block's centre.
    halo = max((tm.halo for tm in models.values()), default=0)
    source = _Reader(read, (height, width))

    def compute(window: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
        r, c, h, w = window
        # Each window is read on the calling thread: the parallelism is across windows,
        # so dask must not start a pool of its own inside each one (set per call: the
        # global dask config is shared by all threads).
        halo_block = read_halo(source, r, c, h, w, halo) if halo else None
        block = read(r, c, h, w) if halo_block is None else halo_block[:, halo:-halo, halo:-halo]
        limits = thresholds(block, features) if thresholds is not None else None
        layers = predict_block(
            block, features, models, limits, bounds=bounds, halo_block=halo_block
        )
        if derive is not None:
            layers = {**layers, **derive(layers, block, features)}
        if derive_window is not None:
            layers = {**layers, **derive_window(window, layers, block, features)}
        return layers

    def consume(k: int, window: tuple[int, int, int, int], layers: dict[str, np.ndarray]) -> None:
        # One writer, in window order: GDAL handles are not shared between threads, and
        # the same order keeps the streaming statistics bit-identical for any worker count.
        for name, arr in layers.items():
            if name in sinks:
                sinks[name].write(window[0], window[1], arr)
                stats[name].update(arr)
        if on_window is not None:
            on_window(window, layers)
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

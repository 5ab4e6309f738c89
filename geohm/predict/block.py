"""One window: its valid pixels as a table, each target model's prediction and distribution."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geohm.cube import valid_mask
from geohm.models.ensemble import Distribution, interval_exceedance, predict_distribution
from geohm.models.parts import estimator_parts
from geohm.patches import patch_channels

#: ``thresholds(block, features) -> {target: number or (y, x) array (mg/kg)}``.
Thresholds = Callable[[np.ndarray, list[str]], Mapping[str, Any]]


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
    #: Area of applicability (a fitted :class:`geohm.aoa.AreaOfApplicability`) on
    #: ``aoa_features``: the layers ``<target>_di`` (dissimilarity index) and
    #: ``<target>_aoa`` (1 inside, 0 outside, 255 not mapped) come with the prediction.
    aoa: Any = None
    aoa_features: Sequence[str] | None = None
    #: Transfer models: the source year's AOA (``<target>_source_aoa``: 1 inside, 0 outside).
    source_aoa: Any = None
    source_aoa_features: Sequence[str] | None = None

    @property
    def halo(self) -> int:
        """Pixels of neighbourhood the model sees around each pixel (0: the pixel alone).

        A patch model (``halo_`` on its final estimator) maps a window given with this
        many pixels around it in one pass (``predict_grid``); its ``features`` are the
        flattened patch columns of :mod:`geohm.patches`.
        """
        return int(getattr(estimator_parts(self.estimator).final, "halo_", 0))

    def inputs(self) -> list[str]:
        """The cube features that must be valid for a pixel to be mapped."""
        if self.halo:
            return patch_channels(self.features)
        return list(self.required or self.features)


def predict_block(
    block: np.ndarray,
    features: Sequence[str],
    models: Mapping[str, TargetModel],
    thresholds: Mapping[str, Any] | None = None,
    *,
    bounds: bool = False,
    halo_block: np.ndarray | None = None,
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
    halo_block : numpy.ndarray, optional
        The same window with the largest :attr:`TargetModel.halo` of ``models`` around
        it (NaN beyond the scene): the input of patch models, mapped in one pass.

    Returns
    -------
    dict of str to numpy.ndarray
        Target name -> (y, x) float32 prediction, ``<target>_uncertainty`` -> the width
        of the prediction interval (mg/kg) for models with an ``interval``, and
        ``<target>_exceedance`` -> P(prediction > threshold) for the targets in
        ``thresholds``; with ``bounds``, ``<target>_lower`` and ``<target>_upper`` the
        interval's bounds and ``<target>_screening`` the threshold (mg/kg); for models
        with an ``aoa``, ``<target>_di`` the dissimilarity index (float32) and
        ``<target>_aoa`` its class (uint8: 1 inside the area of applicability, 0 outside,
        255 not mapped).
    """
    _, h, w = block.shape
    index = {f: i for i, f in enumerate(features)}
    used = sorted({index[f] for tm in models.values() for f in tm.inputs()})
    ok = valid_mask(block[used])
    out: dict[str, np.ndarray] = {}
    n_valid = int(ok.sum())
    for target, tm in models.items():
        pred = np.full((h, w), np.nan, dtype="float32")
        width = np.full((h, w), np.nan, dtype="float32") if tm.interval is not None else None
        limit = None if thresholds is None else thresholds.get(target)
        prob = None if limit is None else np.full((h, w), np.nan, dtype="float32")
        if n_valid:
            at = None if limit is None else np.broadcast_to(limit, (h, w))[ok]
            if tm.halo:
                if halo_block is None:
                    raise ValueError("a patch model needs the window with its halo")
                dist = _grid_distribution(tm, halo_block, index, ok, at)
            else:
                cols = [index[f] for f in tm.features]
                table = block[cols][:, ok].T  # (n_valid, n_features)
                if tm.required is not None:
                    table = np.nan_to_num(table, nan=0.0, posinf=0.0, neginf=0.0)
                dist = predict_distribution(
                    tm.estimator, table, interval=tm.interval, thresholds=at
                )
            values = np.asarray(dist.prediction, dtype="float64")
            if width is not None and dist.lower is not None and dist.upper is not None:
                lower, upper = dist.lower, dist.upper
                if tm.clip_min is not None:  # a bound below the floor says no more than it
                    lower, upper = np.maximum(lower, tm.clip_min), np.maximum(upper, tm.clip_min)
                width[ok] = upper - lower
                if bounds:
                    for name, bound in (("lower", lower), ("upper", upper)):
                        full = np.full((h, w), np.nan, dtype="float32")
                        full[ok] = bound
                        out[f"{target}_{name}"] = full
            if prob is not None and limit is not None:
                prob[ok] = _consistent(dist, tm, np.broadcast_to(limit, (h, w))[ok])
            if tm.clip_min is not None:
                values = np.maximum(values, tm.clip_min)
            pred[ok] = values
        out[target] = pred
        if tm.aoa is not None:
            out.update(_applicability(tm, target, block, index, ok))
        if width is not None:
            out[f"{target}_uncertainty"] = width
        if prob is not None:
            out[f"{target}_exceedance"] = prob
            if bounds and limit is not None:  # the S of P(C > S), for the accumulators
                out[f"{target}_screening"] = np.broadcast_to(limit, (h, w)).astype("float32")
    return out


def _grid_distribution(
    tm: TargetModel,
    halo_block: np.ndarray,
    index: dict[str, int],
    ok: np.ndarray,
    thresholds: np.ndarray | None,
) -> Distribution:
    """A patch model's prediction, interval and P(C > S) at a window's valid pixels.

    The net maps the window from the block with its halo in one pass
    (``predict_grid``: at every pixel the prediction of the patch centred there); the
    interval is the model's conformal one (its out-of-fold residual quantile, in the
    space the model was fitted in) and P(C > S) the split normal fitted to it, as for
    any model without ensemble members.
    """
    parts = estimator_parts(tm.estimator)
    pad = (halo_block.shape[1] - ok.shape[0]) // 2
    cut = pad - tm.halo
    inner = halo_block[:, cut : halo_block.shape[1] - cut, cut : halo_block.shape[2] - cut]
    chans = [index[f] for f in patch_channels(tm.features)]
    center = np.asarray(parts.final.predict_grid(inner[chans]), dtype="float64")[ok]
    pred = parts.from_model(center)
    correction = getattr(tm.interval, "correction_", None)
    if correction is None or getattr(tm.interval, "method_", None) != "residual":
        if thresholds is not None:  # as predict_distribution for a model without members
            raise TypeError("P(C > S) of a patch model needs its conformal interval")
        return Distribution(pred)
    lower = parts.from_model(center - correction)
    upper = parts.from_model(center + correction)
    lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)
    exceed = None
    if thresholds is not None:
        cov = float(getattr(tm.interval, "coverage", 0.9))
        exceed = interval_exceedance(pred, lower, upper, thresholds, cov)
    return Distribution(pred, lower, upper, exceed)


def _applicability(
    tm: TargetModel, target: str, block: np.ndarray, index: dict[str, int], ok: np.ndarray
) -> dict[str, np.ndarray]:
    """The dissimilarity index and the inside/outside class of one window's mapped pixels."""
    _, h, w = block.shape
    di = np.full((h, w), np.nan, dtype="float32")
    codes = np.full((h, w), 255, dtype="uint8")
    if ok.any():
        cols = [index[f] for f in (tm.aoa_features or tm.features)]
        d = tm.aoa.di(block[cols][:, ok].T)
        di[ok] = d
        codes[ok] = tm.aoa.inside(d)
    out = {f"{target}_di": di, f"{target}_aoa": codes}
    if tm.source_aoa is not None:  # covariate shift: the source year's samples
        src = np.full((h, w), 255, dtype="uint8")
        if ok.any():
            cols = [index[f] for f in (tm.source_aoa_features or tm.features)]
            src[ok] = tm.source_aoa.inside(tm.source_aoa.di(block[cols][:, ok].T))
        out[f"{target}_source_aoa"] = src
    return out


def _consistent(dist: Any, tm: TargetModel, limit: np.ndarray) -> np.ndarray:
    """P(C > S), kept consistent with the calibrated interval around it.

    A forest's P comes from its trees' votes, its interval from the (conformally
    calibrated) quantile forest: the two can disagree. Where the interval's lower bound is
    above S, P is at least (1 + coverage) / 2; where its upper bound is below S, at most
    (1 - coverage) / 2: so "certainly above" (lower > S) always has P at least that, and
    the areas certain <= expected <= possible hold to within (1 - coverage) / 2 of them.
    """
    p = np.asarray(dist.exceedance, dtype="float32")
    if dist.lower is None or dist.upper is None or tm.interval is None:
        return p
    half = (1.0 - float(getattr(tm.interval, "coverage", 0.9))) / 2.0
    with np.errstate(invalid="ignore"):
        p = np.where(dist.lower > limit, np.maximum(p, 1.0 - half), p)
        p = np.where(dist.upper < limit, np.minimum(p, half), p)
    return p.astype("float32")

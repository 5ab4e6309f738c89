"""One window: its valid pixels as a table, each target model's prediction and distribution."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from geohm.cube import valid_mask
from geohm.models.ensemble import predict_distribution

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

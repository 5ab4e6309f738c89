"""Split-conformal quantiles and interval widths from calibration residuals.

The conformal quantile (:func:`conformal_quantile`) is the ``ceil(coverage * (n + 1))``-th
smallest of the ``n`` scores: the finite-sample correction of split conformal
prediction.

Assumptions and limits of geohm's intervals
-------------------------------------------
* **Exchangeability.** The guarantee is marginal: on average over pixels distributed
  like the samples, about ``coverage`` of the true values fall inside. It says nothing
  about one pixel, and nothing about pixels unlike any sample (another land cover,
  extrapolation in feature space). There the intervals are likely too narrow.
* **Random k-fold residuals of clustered samples are optimistic.** A held-out sample
  usually has a training neighbour nearby. Pass spatial-block folds as ``cv`` (e.g. from
  :func:`geohm.spatialcv.spatial_block_folds`) to calibrate for prediction away from
  the samples.
* **Cheap, not formal CV+.** Intervals are centred on the model fitted on all training
  samples: one prediction per pixel. CV+ (Barber et al. 2021, *Ann. Statist.* 49:486)
  would keep the ``k`` fold models and pay ``k`` predictions per pixel for its
  ``1 - 2 alpha`` worst-case guarantee. The fold models see ``(k-1)/k`` of the data, so
  their residuals are a little larger than the full model's and the intervals err on the
  wide side.
* A per-pixel difficulty for the nets (spread of a seeded ensemble) is not used. With
  tens to hundreds of samples, estimating it adds noise to ``Q``, and it would multiply
  the cost of a map by the ensemble size. Under a log target the band already scales
  with the concentration.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


def _check_coverage(coverage: Any) -> float:
    if (
        isinstance(coverage, bool)
        or not isinstance(coverage, numbers.Real)
        or not 0.0 < float(coverage) < 1.0
    ):
        raise ValueError(f"coverage must be a number in (0, 1), got {coverage!r}")
    return float(coverage)


def _has_std(final: Any) -> bool:
    predict = getattr(final, "predict", None)
    if predict is None:
        return False
    try:
        return "return_std" in inspect.signature(predict).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _rows(X: Any, index: Any) -> Any:
    """Rows of a DataFrame (by position) or an array."""
    return X.iloc[index] if isinstance(X, pd.DataFrame) else np.asarray(X)[index]


def _n_rows(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _ordered(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) elementwise: a decreasing back-transform swaps the bounds."""
    return np.minimum(lower, upper), np.maximum(lower, upper)


def conformal_quantile(scores: Any, coverage: float) -> float:
    """The conformal quantile of scores: the ``ceil(coverage * (n + 1))``-th smallest.

    This is the split-conformal finite-sample correction. If the scores and a new score
    are exchangeable, the new score is at most this value with probability >=
    ``coverage``. When ``n < coverage / (1 - coverage)`` (fewer than 9 scores at 0.9),
    the exact answer is infinite. The largest score is then returned and a warning is
    logged.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Conformity scores (e.g. absolute out-of-fold residuals). NaNs are ignored.
    coverage : float
        Nominal coverage in (0, 1).

    Returns
    -------
    float
        The quantile, in the units of the scores.

    Raises
    ------
    ValueError
        No finite score, or a coverage outside (0, 1).

    Examples
    --------
    >>> conformal_quantile(np.arange(1.0, 20.0), 0.9)  # n = 19: the 18th smallest
    18.0
    """
    coverage = _check_coverage(coverage)
    s = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise ValueError("conformal_quantile needs at least one score")
    k = math.ceil(coverage * (s.size + 1) - 1e-9)  # tolerance: 0.9 * 20 is 18.000000000000004
    if k > s.size:
        log.warning(
            "only %d calibration samples: a %.0f %% conformal interval would be unbounded; "
            "using the largest score (coverage may fall short)",
            s.size,
            100 * coverage,
        )
        k = s.size
    return float(s[max(k, 1) - 1])


def interval_width(lower: Any, upper: Any, *, floor: float | None = None) -> np.ndarray:
    """Width of a prediction interval, ``upper - lower`` (mg/kg for concentrations).

    This is what ``<target>_uncertainty.tif`` holds. With ``floor`` (e.g. 0 mg/kg, the
    floor applied to the concentration map), both bounds are first raised to it. A
    concentration cannot be negative, so a lower bound below 0 says nothing more than 0.

    Parameters
    ----------
    lower, upper : array-like
        Interval bounds.
    floor : float, optional
        Lowest meaningful value of the target.

    Returns
    -------
    numpy.ndarray
        Widths, float64, >= 0 where the bounds are ordered; NaN where a bound is NaN.

    Examples
    --------
    >>> interval_width([-2.0, 3.0], [4.0, 5.0], floor=0.0).tolist()
    [4.0, 2.0]
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if floor is not None:
        lo = np.maximum(lo, floor)
        hi = np.maximum(hi, floor)
    return hi - lo

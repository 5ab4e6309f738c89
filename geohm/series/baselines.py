"""The baselines an LSTM forecast must beat, per site, from the site's own past.

Each takes one site's series on the regular grid (NaN: no sample), the forecast origin
``o`` (the last step known) and the horizon ``H``, and gives the forecasts of steps
``o + 1 .. o + H`` in the data units:

- **persistence**: the last observed value at or before ``o``;
- **seasonal naive**: the value one season before the target step,
  ``c(o + h - m ceil(h / m))``; if that step has no sample, the one a season earlier,
  and so on; with none in the past, persistence (counted);
- **climatology**: the site's mean of its observed values at or before ``o`` in the same
  season position as the target step; with none there, the site's mean of all of them.

The ridge regression on lags, pooled across sites as the LSTM, is in
:mod:`geohm.series.forecast`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["climatology", "persistence", "seasonal_naive"]


def _past(values: np.ndarray, origin: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if not 0 <= origin < v.size:
        raise ValueError(f"origin {origin} is outside the series of {v.size} steps")
    return v[: origin + 1]


def persistence(values: np.ndarray, origin: int, horizon: int) -> np.ndarray:
    """The last observed value at or before ``origin``, for each of ``horizon`` steps.

    Parameters
    ----------
    values : ndarray of shape (n_steps,)
        One site's series (NaN: no sample).
    origin : int
        Index of the last known step.
    horizon : int
        Steps ahead.

    Returns
    -------
    ndarray of shape (horizon,)
        NaN when nothing was observed up to ``origin``.

    Examples
    --------
    >>> persistence(np.array([1.0, np.nan, 3.0, np.nan]), 3, 2)
    array([3., 3.])
    """
    past = _past(values, origin)
    seen = np.flatnonzero(np.isfinite(past))
    last = past[seen[-1]] if seen.size else np.nan
    return np.full(horizon, last)


def seasonal_naive(
    values: np.ndarray, origin: int, horizon: int, season: int
) -> tuple[np.ndarray, int]:
    """The value one (or more) whole seasons before each target step.

    Parameters
    ----------
    values : ndarray of shape (n_steps,)
        One site's series.
    origin, horizon : int
        As :func:`persistence`.
    season : int
        Steps per seasonal cycle (``m``).

    Returns
    -------
    forecast : ndarray of shape (horizon,)
    fallbacks : int
        Steps forecast by persistence (no sample at any earlier season).

    Examples
    --------
    >>> v = np.array([1.0, 2.0, 3.0, 4.0, 1.5, np.nan])
    >>> seasonal_naive(v, 4, 3, 4)
    (array([2., 3., 4.]), 0)
    """
    past = _past(values, origin)
    out = np.empty(horizon)
    fallbacks = 0
    last = persistence(values, origin, 1)[0]
    for h in range(1, horizon + 1):
        t = origin + h - season * int(np.ceil(h / season))
        while t >= 0 and not np.isfinite(past[t]):
            t -= season
        if t >= 0:
            out[h - 1] = past[t]
        else:
            out[h - 1] = last
            fallbacks += 1
    return out, fallbacks


def climatology(
    values: np.ndarray, positions: np.ndarray, origin: int, horizon: int
) -> np.ndarray:
    """The site's mean at the target's season position, from the past only.

    Parameters
    ----------
    values : ndarray of shape (n_steps,)
        One site's series.
    positions : ndarray of int, shape (>= origin + horizon + 1,)
        Season position of every step (including the forecast steps).
    origin, horizon : int
        As :func:`persistence`.

    Returns
    -------
    ndarray of shape (horizon,)

    Examples
    --------
    >>> v = np.array([1.0, 10.0, 3.0, 12.0, np.nan])
    >>> climatology(v, np.array([0, 1, 0, 1, 0, 1]), 3, 2)
    array([ 2., 11.])
    """
    past = _past(values, origin)
    pos = np.asarray(positions)[: origin + 1]
    ok = np.isfinite(past)
    overall = past[ok].mean() if ok.any() else np.nan
    out = np.empty(horizon)
    for h in range(1, horizon + 1):
        same = ok & (pos == positions[origin + h])
        out[h - 1] = past[same].mean() if same.any() else overall
    return out

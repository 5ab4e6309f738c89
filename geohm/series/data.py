"""Irregular well samples on a regular time step: the panel, and the models' windows.

:func:`regularise` puts a long table of samples (site, time, metals, covariates) on one
time grid (day, week, month, quarter or year steps, pandas periods). A step with no
sample of a metal stays NaN and is *masked*, never filled: the models see the mask and
the time since the last observation (:func:`steps_since_last`) instead. Several samples
of a site in one step are combined (``mean``, ``median``, ``max`` or ``last``).

:func:`windows` cuts the panel into what the LSTM and the ridge baseline learn from: for
a forecast origin ``o`` (the last step whose data are known), the ``L`` steps up to ``o``
of

- ``z``: the concentration scaled by the site (``(c - mu_site) / scale``), carried
  forward over gaps (0 before the first sample),
- ``observed``: 1 where the step has a sample of the metal,
- ``since``: steps since the last sample, divided by the season length (capped at 2),
- ``sin``, ``cos`` of the position of the step in the season,
- the covariates, standardised and carried forward (0 where still unknown),

with per-site features (the coordinates, standardised, and the site level ``mu_site``
scaled) and the targets ``z`` at ``o + 1 .. o + H`` (NaN where unobserved *or after the
cutoff*: a training window never holds a value after the cutoff).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geohm.errors import InputError

__all__ = [
    "FREQ_OF_STEP",
    "Scaling",
    "SeriesPanel",
    "Windows",
    "regularise",
    "season_positions",
    "site_scaling",
    "steps_since_last",
    "windows",
]

#: pandas period frequency of each time step.
FREQ_OF_STEP = {"day": "D", "week": "W", "month": "M", "quarter": "Q", "year": "Y"}
#: Cap of the time-since-last feature, in seasons.
_SINCE_CAP = 2.0


@dataclass
class SeriesPanel:
    """Sites x time steps x metals, on one regular grid.

    Attributes
    ----------
    sites : list of str
        Site ids (rows of the arrays).
    periods : pandas.PeriodIndex
        The time steps (columns of the arrays), consecutive.
    metals, covariate_names : list of str
        Names of the last axis of ``values`` and ``covariates``.
    values : ndarray of shape (n_sites, n_steps, n_metals)
        Concentrations (data units); NaN where a step has no sample or the site was
        left out of that metal.
    counts : ndarray of shape (n_sites, n_steps, n_metals)
        Samples combined into each cell.
    covariates : ndarray of shape (n_sites, n_steps, n_covariates)
        NaN where unknown.
    coords : ndarray of shape (n_sites, 2)
        Site x, y.
    season : int
        Steps per seasonal cycle.
    left_out : list of dict
        Sites, metals and rows left out here: ``{"site", "metal", "reason", ...}``.
    notes : list of str
        What was done (samples combined in one step, duplicates).
    """

    sites: list[str]
    periods: pd.PeriodIndex
    metals: list[str]
    covariate_names: list[str]
    values: np.ndarray
    counts: np.ndarray
    covariates: np.ndarray
    coords: np.ndarray
    season: int
    left_out: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def mask(self) -> np.ndarray:
        """True where a cell holds an observed value."""
        return np.isfinite(self.values)

    def positions(self, extra: int = 0) -> np.ndarray:
        """Season position of each step (and of ``extra`` steps after the grid)."""
        return season_positions(self.periods, self.season, extra=extra)


def season_positions(periods: pd.PeriodIndex, season: int, *, extra: int = 0) -> np.ndarray:
    """Position of each period in its seasonal cycle, ``0 .. season - 1``.

    Counted from the start of the calendar year for yearly cycles of daily, weekly,
    monthly and quarterly steps (so that month 0 is January); otherwise from the first
    step.

    Parameters
    ----------
    periods : pandas.PeriodIndex
        Consecutive periods.
    season : int
        Steps per cycle.
    extra : int
        Steps after the last period to include (forecast steps).

    Returns
    -------
    ndarray of int
    """
    n = len(periods) + extra
    first = periods[0]
    per_year = {"D": 365, "W": 52, "M": 12, "Q": 4}.get(first.freqstr[0], 0)
    if season == per_year and per_year:
        if per_year == 12:
            start = first.month - 1
        elif per_year == 4:
            start = first.quarter - 1
        elif per_year == 52:
            start = min(first.week - 1, 51)
        else:
            start = min(first.dayofyear - 1, 364)
    else:
        start = 0
    return (start + np.arange(n)) % season


def steps_since_last(mask: np.ndarray, *, cap: int) -> np.ndarray:
    """Steps since the last observation along the last axis (0 where observed).

    Parameters
    ----------
    mask : ndarray of bool, shape (..., n_steps)
        True where observed.
    cap : int
        Value before the first observation, and the largest value returned.

    Returns
    -------
    ndarray of float

    Examples
    --------
    >>> steps_since_last(np.array([False, True, False, False, True, False]), cap=9)
    array([9., 0., 1., 2., 0., 1.])
    """
    m = np.asarray(mask, dtype=bool)
    idx = np.arange(m.shape[-1])
    last = np.where(m, idx, -1)
    last = np.maximum.accumulate(last, axis=-1)
    out = np.where(last >= 0, idx - last, cap).astype(float)
    return np.minimum(out, cap)


def _locf(a: np.ndarray) -> np.ndarray:
    """Carry the last finite value forward along axis 1 of ``a`` (n, t[, k])."""
    ok = np.isfinite(a)
    idx = np.where(ok, np.arange(a.shape[1]).reshape((1, -1) + (1,) * (a.ndim - 2)), 0)
    idx = np.maximum.accumulate(idx, axis=1)
    out = np.take_along_axis(a, idx, axis=1)
    return np.where(np.maximum.accumulate(ok, axis=1), out, np.nan)


def regularise(
    table: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    metals: list[str],
    covariates: list[str],
    step: str,
    aggregate: str = "mean",
    season: int,
    min_observations: int,
    source: str = "series table",
) -> SeriesPanel:
    """Put samples on a regular time step (see the module docstring).

    Parameters
    ----------
    table : pandas.DataFrame
        ``site``, ``time`` (datetime64), the metal and covariate columns (NaN: no value).
    sites : pandas.DataFrame
        Index site, columns ``x``, ``y``.
    metals, covariates : list of str
        Columns of ``table``.
    step : {"day", "week", "month", "quarter", "year"}
        The time step.
    aggregate : {"mean", "median", "max", "last"}
        How samples of one site in one step are combined.
    season : int
        Steps per seasonal cycle.
    min_observations : int
        Observed steps a site needs for a metal; fewer: the site is left out of it
        (and of the panel when left out of every metal).
    source : str
        Name of the input, for messages.

    Returns
    -------
    SeriesPanel

    Raises
    ------
    InputError
        No site keeps enough observations of any metal.
    """
    left_out: list[dict[str, Any]] = []
    notes: list[str] = []
    data = table.sort_values(["site", "time"], kind="stable").copy()
    dup = data.duplicated(subset=["site", "time", *metals, *covariates], keep="first")
    for _, row in data[dup].iterrows():
        left_out.append(
            {"site": row["site"], "time": str(row["time"].date()), "metal": "all",
             "reason": "duplicate row (same site, time and values as an earlier row)"}
        )
    data = data[~dup]
    freq = FREQ_OF_STEP[step]
    data["period"] = data["time"].dt.to_period(freq)
    periods = pd.period_range(data["period"].min(), data["period"].max(), freq=freq)
    names = [str(s) for s in sorted(data["site"].unique())]
    col = {p: i for i, p in enumerate(periods)}
    row = {s: i for i, s in enumerate(names)}
    ns, nt = len(names), len(periods)
    values = np.full((ns, nt, len(metals)), np.nan)
    counts = np.zeros((ns, nt, len(metals)), dtype=int)
    cov = np.full((ns, nt, len(covariates)), np.nan)
    data["_i"] = data["site"].map(row)
    data["_t"] = data["period"].map(col)
    how = {"mean": "mean", "median": "median", "max": "max", "last": "last"}[aggregate]
    for k, m in enumerate(metals):
        g = data.dropna(subset=[m]).groupby(["_i", "_t"])[m]
        agg, n = g.agg(how), g.size()
        i, t = np.array(agg.index.get_level_values(0)), np.array(agg.index.get_level_values(1))
        values[i, t, k] = agg.to_numpy()
        counts[i, t, k] = n.to_numpy()
        several = int((n > 1).sum())
        if several:
            notes.append(
                f"{m}: {several} site-step(s) had several samples ({int(n[n > 1].sum())} "
                f"samples), combined by their {aggregate}"
            )
    for k, c in enumerate(covariates):
        g = data.dropna(subset=[c]).groupby(["_i", "_t"])[c].mean()
        i, t = np.array(g.index.get_level_values(0)), np.array(g.index.get_level_values(1))
        cov[i, t, k] = g.to_numpy()
    for k, m in enumerate(metals):
        n_obs = np.isfinite(values[:, :, k]).sum(axis=1)
        for short in np.flatnonzero(n_obs < min_observations):
            left_out.append(
                {"site": names[short], "metal": m,
                 "reason": f"too short a series: {int(n_obs[short])} observed {step}(s), "
                 f"fewer than min_observations={min_observations}"}
            )
            values[short, :, k] = np.nan
            counts[short, :, k] = 0
    keep = np.isfinite(values).any(axis=(1, 2))
    if not keep.any():
        raise InputError(
            f"{source}: no site has {min_observations} observed {step}s of any metal; lower "
            "min_observations or choose a longer step"
        )
    kept = [s for s, k in zip(names, keep, strict=True) if k]
    return SeriesPanel(
        sites=kept,
        periods=periods,
        metals=list(metals),
        covariate_names=list(covariates),
        values=values[keep],
        counts=counts[keep],
        covariates=cov[keep],
        coords=sites.loc[kept, ["x", "y"]].to_numpy(dtype=float),
        season=season,
        left_out=left_out,
        notes=notes,
    )


@dataclass
class Scaling:
    """Per-site level and one common scale of a metal, from the data up to a cutoff.

    Attributes
    ----------
    mu : ndarray of shape (n_sites,)
        Mean of each site's observations up to the cutoff (NaN: none).
    scale : float
        Standard deviation of the observations about their site mean (training sites).
    coord_mean, coord_sd : ndarray of shape (2,)
        Standardisation of the coordinates.
    mu_mean, mu_sd : float
        Standardisation of the site level (per-site feature).
    cov_mean, cov_sd : ndarray
        Standardisation of the covariates.
    """

    mu: np.ndarray
    scale: float
    coord_mean: np.ndarray
    coord_sd: np.ndarray
    mu_mean: float
    mu_sd: float
    cov_mean: np.ndarray
    cov_sd: np.ndarray


def _sd(a: np.ndarray, axis: int | None = None) -> Any:
    sd = np.nanstd(a, axis=axis)
    return np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)


def site_scaling(panel: SeriesPanel, k: int, *, cutoff: int, train_sites: np.ndarray) -> Scaling:
    """The scaling of metal ``k`` from the data at steps ``<= cutoff``.

    Site levels are computed for every site (a test site's level from its own past);
    the scale, the coordinate and covariate standardisation from ``train_sites`` only.
    """
    past = panel.values[:, : cutoff + 1, k]
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(past).sum(axis=1)
        mu = np.where(counts > 0, np.nansum(past, axis=1) / np.maximum(counts, 1), np.nan)
    dev = past[train_sites] - mu[train_sites, None]
    scale = float(_sd(dev[np.isfinite(dev)])) if np.isfinite(dev).any() else 1.0
    coords = panel.coords[train_sites]
    mus = mu[train_sites][np.isfinite(mu[train_sites])]
    n_cov = panel.covariates.shape[2]
    cov = panel.covariates[train_sites, : cutoff + 1].reshape(-1 if n_cov else 0, n_cov)
    return Scaling(
        mu=mu,
        scale=scale,
        coord_mean=coords.mean(axis=0),
        coord_sd=np.atleast_1d(_sd(coords, axis=0)),
        mu_mean=float(mus.mean()) if mus.size else 0.0,
        mu_sd=float(_sd(mus)) if mus.size > 1 else 1.0,
        cov_mean=np.nan_to_num(np.nanmean(cov, axis=0)) if cov.size else np.zeros(0),
        cov_sd=np.atleast_1d(_sd(cov, axis=0)) if cov.size else np.zeros(0),
    )


@dataclass
class Windows:
    """Model inputs cut from a panel (see the module docstring).

    Attributes
    ----------
    X : ndarray of shape (n, L, f)
        Step features.
    static : ndarray of shape (n, s)
        Per-site features.
    y : ndarray of shape (n, H)
        Scaled targets (NaN: unobserved or after the cutoff).
    site : ndarray of int, shape (n,)
        Site row of each window.
    origin : ndarray of int, shape (n,)
        Forecast origin (last input step) of each window.
    target_step : ndarray of int, shape (n, H)
        Step index of each target (``origin + 1 .. origin + H``).
    feature_names : list of str
        Names of the last axis of ``X``.
    """

    X: np.ndarray
    static: np.ndarray
    y: np.ndarray
    site: np.ndarray
    origin: np.ndarray
    target_step: np.ndarray
    feature_names: list[str]


def windows(
    panel: SeriesPanel,
    k: int,
    scaling: Scaling,
    *,
    sites: np.ndarray,
    origins: np.ndarray | None = None,
    cutoff: int,
    lags: int,
    horizon: int,
    need_target: bool = True,
) -> Windows:
    """Windows of metal ``k`` for ``sites`` at forecast ``origins`` (see module docstring).

    Parameters
    ----------
    panel : SeriesPanel
        The series.
    k : int
        Metal index.
    scaling : Scaling
        From :func:`site_scaling` with the same ``cutoff``.
    sites : ndarray of int
        Site rows.
    origins : ndarray of int, optional
        Origins to cut; default every step ``< cutoff``.
    cutoff : int
        Last step whose values may be seen: inputs and targets after it are hidden.
    lags, horizon : int
        Window length ``L`` and steps ahead ``H``.
    need_target : bool
        Keep only windows with at least one observed target (training).

    Returns
    -------
    Windows
    """
    values = panel.values[:, :, k].copy()
    values[:, cutoff + 1 :] = np.nan  # nothing after the cutoff is ever seen
    obs = np.isfinite(values)
    z = (values - scaling.mu[:, None]) / scaling.scale
    z_locf = np.nan_to_num(_locf(z), nan=0.0)
    cap = max(1, int(round(_SINCE_CAP * panel.season)))
    since = steps_since_last(obs, cap=cap) / panel.season
    ang = 2 * np.pi * panel.positions() / panel.season
    covs = panel.covariates.copy()
    covs[:, cutoff + 1 :] = np.nan
    covs = np.nan_to_num((_locf(covs) - scaling.cov_mean) / scaling.cov_sd, nan=0.0)
    nt = values.shape[1]
    step_feats = np.concatenate(
        [
            z_locf[..., None],
            obs[..., None].astype(float),
            since[..., None],
            np.broadcast_to(np.sin(ang), values.shape)[..., None],
            np.broadcast_to(np.cos(ang), values.shape)[..., None],
            covs,
        ],
        axis=2,
    )
    names = ["z", "observed", "since", "season_sin", "season_cos", *panel.covariate_names]
    # Pad L - 1 steps before the grid: no data (observed 0, since at the cap).
    pad = np.zeros((values.shape[0], lags - 1, step_feats.shape[2]))
    pad[:, :, 2] = cap / panel.season
    padded = np.concatenate([pad, step_feats], axis=1)
    origins = np.arange(0, cutoff) if origins is None else np.asarray(origins, dtype=int)
    ii, oo = np.meshgrid(np.asarray(sites, dtype=int), origins, indexing="ij")
    ii, oo = ii.ravel(), oo.ravel()
    seen = np.maximum.accumulate(obs, axis=1)  # a sample at or before the step
    ok = seen[ii, np.minimum(oo, nt - 1)] & np.isfinite(scaling.mu[ii])
    steps = oo[:, None] + np.arange(1, horizon + 1)
    inside = steps < nt
    y = np.full(steps.shape, np.nan)
    y[inside] = z[ii[:, None].repeat(horizon, 1)[inside], steps[inside]]
    if need_target:
        ok &= np.isfinite(y).any(axis=1)
    ii, oo, y, steps = ii[ok], oo[ok], y[ok], steps[ok]
    X = padded[ii[:, None], oo[:, None] + np.arange(lags)]  # padded index o + lags - 1 = o
    coords = (panel.coords[ii] - scaling.coord_mean) / scaling.coord_sd
    level = (scaling.mu[ii] - scaling.mu_mean) / scaling.mu_sd
    static = np.column_stack([coords, level])
    return Windows(X, static, y, ii, oo, steps, names)

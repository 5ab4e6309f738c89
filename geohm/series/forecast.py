"""Every model's forecasts of one metal for one split: the LSTM, ridge and the baselines.

:func:`forecast_split` learns from the panel up to a cutoff (the training sites'
windows, :func:`geohm.series.data.windows`) and forecasts the test sites from the cutoff:

- ``lstm``: :class:`geohm.models.lstm.LSTMForecaster`, one network (ensemble) across
  sites, with its predictive spread;
- ``ridge``: ridge regression on the same flattened windows and per-site features,
  pooled across sites, one per horizon (scikit-learn's :class:`~sklearn.linear_model.Ridge`);
- ``persistence``, ``seasonal_naive``, ``climatology``: :mod:`geohm.series.baselines`,
  per site from its own past.

Scaled forecasts are put back in data units with the split's
:class:`~geohm.series.data.Scaling` (``c = mu_site + scale * z``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.linear_model import Ridge

from geohm.models.lstm import LSTMForecaster
from geohm.series.baselines import climatology, persistence, seasonal_naive
from geohm.series.data import SeriesPanel, site_scaling, windows

__all__ = ["MODELS", "Forecasts", "forecast_split"]

#: The models, the LSTM first; skill is relative to persistence.
MODELS = ("lstm", "ridge", "persistence", "seasonal_naive", "climatology")


@dataclass
class Forecasts:
    """Forecasts of one metal from one origin.

    Attributes
    ----------
    sites : ndarray of int, shape (n,)
        Site rows forecast.
    origin : int
        The forecast origin (the split's cutoff).
    steps : ndarray of int, shape (n, H)
        Target steps (may lie after the grid).
    truth : ndarray of shape (n, H)
        Observed values at the target steps (NaN: none).
    mean : dict of str to ndarray (n, H)
        Each model's forecasts (data units).
    lstm_member_mean, lstm_member_std : ndarray of shape (members, n, H)
        The ensemble members' Gaussians (data units).
    lstm_std : ndarray of shape (n, H)
        Standard deviation of the LSTM's mixture (data units).
    not_forecast : list of int
        Test sites with no observation up to the origin (no forecast).
    fallbacks : int
        Seasonal-naive forecasts that fell back to persistence.
    n_train : int
        Training windows.
    lstm : LSTMForecaster
        The fitted LSTM.
    """

    sites: np.ndarray
    origin: int
    steps: np.ndarray
    truth: np.ndarray
    mean: dict[str, np.ndarray]
    lstm_member_mean: np.ndarray
    lstm_member_std: np.ndarray
    lstm_std: np.ndarray
    not_forecast: list[int] = field(default_factory=list)
    fallbacks: int = 0
    n_train: int = 0
    lstm: Any = None


def _ridge(
    X: np.ndarray, s: np.ndarray, y: np.ndarray, Xt: np.ndarray, st: np.ndarray, alpha: float
) -> np.ndarray:
    """One ridge per horizon on the flattened windows; NaN where a horizon has no target."""
    A = np.column_stack([X.reshape(len(X), -1), s])
    B = np.column_stack([Xt.reshape(len(Xt), -1), st])
    out = np.full((len(Xt), y.shape[1]), np.nan)
    for h in range(y.shape[1]):
        ok = np.isfinite(y[:, h])
        if ok.sum() >= 2:
            out[:, h] = Ridge(alpha=alpha).fit(A[ok], y[ok, h]).predict(B)
    return out


def forecast_split(
    panel: SeriesPanel,
    k: int,
    *,
    cutoff: int,
    train_sites: np.ndarray,
    test_sites: np.ndarray,
    lags: int,
    horizon: int,
    lstm_params: dict[str, Any],
    ridge_alpha: float,
    seed: int,
) -> Forecasts:
    """Fit on data up to ``cutoff`` and forecast ``test_sites`` from it.

    Parameters
    ----------
    panel : SeriesPanel
        The series.
    k : int
        Metal index.
    cutoff : int
        Last step learnt from, and the forecast origin.
    train_sites, test_sites : ndarray of int
        Site rows.
    lags, horizon : int
        Window length and steps ahead.
    lstm_params : dict
        Keyword arguments of :class:`~geohm.models.lstm.LSTMForecaster`.
    ridge_alpha : float
        Ridge penalty.
    seed : int
        The LSTM's ``random_state``.

    Returns
    -------
    Forecasts

    Raises
    ------
    ValueError
        No training window (no site has samples before the cutoff).
    """
    sc = site_scaling(panel, k, cutoff=cutoff, train_sites=np.asarray(train_sites))
    tr = windows(panel, k, sc, sites=train_sites, cutoff=cutoff, lags=lags, horizon=horizon)
    if len(tr.y) == 0:
        raise ValueError(f"no training window up to step {cutoff}")
    te = windows(
        panel, k, sc, sites=test_sites, origins=np.array([cutoff]), cutoff=cutoff, lags=lags,
        horizon=horizon, need_target=False,
    )
    lstm = LSTMForecaster(**lstm_params, random_state=seed).fit(tr.X, tr.y, static=tr.static)
    mu_m, sd_m = lstm.predict_members(te.X, static=te.static)
    mu_site = sc.mu[te.site][:, None]
    member_mean = mu_site + sc.scale * mu_m
    member_std = sc.scale * sd_m
    z_mean = mu_m.mean(axis=0)
    z_std = np.sqrt((sd_m**2).mean(axis=0) + mu_m.var(axis=0))
    means: dict[str, np.ndarray] = {
        "lstm": mu_site + sc.scale * z_mean,
        "ridge": mu_site
        + sc.scale * _ridge(tr.X, tr.static, tr.y, te.X, te.static, ridge_alpha),
    }
    nt = panel.values.shape[1]
    positions = panel.positions(extra=horizon)
    pers, snaive, clim = [], [], []
    fallbacks = 0
    for i in te.site:
        series = panel.values[i, :, k]
        pers.append(persistence(series, cutoff, horizon))
        f, n_fb = seasonal_naive(series, cutoff, horizon, panel.season)
        snaive.append(f)
        fallbacks += n_fb
        clim.append(climatology(series, positions, cutoff, horizon))
    means["persistence"] = np.array(pers).reshape(-1, horizon)
    means["seasonal_naive"] = np.array(snaive).reshape(-1, horizon)
    means["climatology"] = np.array(clim).reshape(-1, horizon)
    truth = np.full(te.target_step.shape, np.nan)
    inside = te.target_step < nt
    rows = np.repeat(te.site[:, None], horizon, axis=1)
    truth[inside] = panel.values[rows[inside], te.target_step[inside], k]
    return Forecasts(
        sites=te.site,
        origin=cutoff,
        steps=te.target_step,
        truth=truth,
        mean={m: means[m] for m in MODELS},
        lstm_member_mean=member_mean,
        lstm_member_std=member_std,
        lstm_std=sc.scale * z_std,
        not_forecast=sorted(set(np.asarray(test_sites).tolist()) - set(te.site.tolist())),
        fallbacks=fallbacks,
        n_train=len(tr.y),
        lstm=lstm,
    )

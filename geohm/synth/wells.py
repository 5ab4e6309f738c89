"""Synthetic monitoring wells with known seasonal and trend structure, and exceedances.

:func:`synthetic_wells` simulates monthly cadmium in groundwater (ug/l) at wells around a
mine, each the sum of known parts:

``c(t) = level + trend * years + amplitude * cos(2 pi (month - peak) / 12)
+ leach * rain_anomaly(t - 1) + ar1(t)``, floored at 0.05 ug/l,

- ``level`` (1-3 ug/l) and ``trend`` (ug/l per year): most wells flat, a quarter rising
  by 0.35-0.6 ug/l a year (a plume arriving), so that they cross the 5 ug/l limit in the
  later years (the exceedances);
- a recharge season: the concentration peaks in ``peak`` (March-May) by ``amplitude``
  (0.3-1.0 ug/l, larger at rising wells);
- leaching after a wet month: ``leach`` (ug/l per standardised rain anomaly) times last
  month's rain anomaly of the region (rainfall is a covariate of the table, mm/month);
- AR(1) noise (phi 0.6, sd 0.25 ug/l).

Sampling is irregular: a well is sampled on a random day in a month, months are skipped
at random (``gap_fraction``) and some wells have a run of 4-8 unsampled months. The
truth (every part per well) comes back with the table. :func:`write_synthetic_wells`
writes the table and a SERIES.yaml for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from geohm.io.reports import write_csv, write_text

__all__ = ["CD_LIMIT", "synthetic_wells", "write_synthetic_wells"]

#: The limit of the synthetic wells (cadmium, ug/l): the EU drinking-water value.
CD_LIMIT = 5.0
#: The synthetic wells' CRS (UTM 33N, metres).
CRS = "EPSG:32633"


def synthetic_wells(
    *,
    n_sites: int = 20,
    n_months: int = 120,
    start: str = "2012-01",
    gap_fraction: float = 0.2,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate the wells (see the module docstring).

    Parameters
    ----------
    n_sites : int
        Wells.
    n_months : int
        Months simulated.
    start : str
        First month (``YYYY-MM``).
    gap_fraction : float
        Share of months a well is not sampled (0-1), besides the longer gaps.
    seed : int
        Seeds everything.

    Returns
    -------
    table : pandas.DataFrame
        Long table: ``site``, ``time`` (sampling day), ``Cd`` (ug/l), ``rainfall``
        (mm/month), ``x``, ``y`` (EPSG:32633, m); one row per sample.
    truth : dict
        ``months`` (PeriodIndex), ``clean`` (n_sites, n_months) concentration without
        noise and leaching, ``full`` (with them), and per-well ``level``, ``trend``,
        ``amplitude``, ``peak``, ``leach``, ``rising`` (bool), ``sites`` (ids).
    """
    rng = np.random.default_rng(seed)
    months = pd.period_range(start, periods=n_months, freq="M")
    years = np.arange(n_months) / 12.0
    month = months.month.to_numpy()
    rain_mean = 60 + 35 * np.cos(2 * np.pi * (month - 11) / 12)  # wet late autumn
    rain = rng.gamma(4.0, rain_mean / 4.0)
    anomaly = (rain - rain_mean) / (rain_mean / 2.0)
    ids = [f"W{i + 1:02d}" for i in range(n_sites)]
    rising = np.zeros(n_sites, dtype=bool)
    rising[rng.choice(n_sites, size=max(1, n_sites // 4), replace=False)] = True
    level = rng.uniform(1.0, 3.0, n_sites)
    trend = np.where(rising, rng.uniform(0.35, 0.6, n_sites), rng.normal(0.0, 0.04, n_sites))
    amplitude = rng.uniform(0.3, 0.7, n_sites) + 0.3 * rising
    peak = rng.uniform(3.0, 5.0, n_sites)
    leach = rng.uniform(0.1, 0.4, n_sites)
    season = amplitude[:, None] * np.cos(2 * np.pi * (month[None, :] - peak[:, None]) / 12)
    clean = level[:, None] + trend[:, None] * years[None, :] + season
    noise = np.zeros((n_sites, n_months))
    eps = rng.normal(0.0, 0.25 * np.sqrt(1 - 0.6**2), (n_sites, n_months))
    noise[:, 0] = rng.normal(0.0, 0.25, n_sites)
    for t in range(1, n_months):
        noise[:, t] = 0.6 * noise[:, t - 1] + eps[:, t]
    lagged = np.concatenate([[0.0], anomaly[:-1]])
    full = np.maximum(clean + leach[:, None] * lagged[None, :] + noise, 0.05)
    sampled = rng.random((n_sites, n_months)) >= gap_fraction
    for i in rng.choice(n_sites, size=max(1, n_sites // 3), replace=False):
        g0 = rng.integers(12, n_months - 12)
        sampled[i, g0 : g0 + rng.integers(4, 9)] = False
    x = 500_000 + rng.uniform(0, 8_000, n_sites)
    y = 5_300_000 + rng.uniform(0, 6_000, n_sites)
    rows = []
    for i, t in zip(*np.nonzero(sampled), strict=True):
        day = int(rng.integers(1, months[t].days_in_month + 1))
        rows.append(
            {
                "site": ids[i],
                "time": months[t].start_time + pd.Timedelta(days=day - 1),
                "Cd": round(float(full[i, t]), 3),
                "rainfall": round(float(rain[t] * rng.uniform(0.9, 1.1)), 1),
                "x": round(float(x[i]), 1),
                "y": round(float(y[i]), 1),
            }
        )
    table = pd.DataFrame(rows).sort_values(["site", "time"], kind="stable").reset_index(drop=True)
    truth = {
        "months": months, "clean": clean, "full": full, "sites": ids, "level": level,
        "trend": trend, "amplitude": amplitude, "peak": peak, "leach": leach, "rising": rising,
    }
    return table, truth


def write_synthetic_wells(
    folder: str | Path,
    *,
    seed: int = 0,
    n_sites: int = 20,
    n_months: int = 120,
    lstm_seed: int = 0,
    epochs: int = 30,
    members: int = 5,
) -> Path:
    """Write ``wells.csv`` and ``wells.yaml`` (a SERIES.yaml for it) into ``folder``.

    Parameters
    ----------
    folder : path-like
        Destination (created).
    seed : int
        Seed of the simulation.
    n_sites, n_months : int
        Size of the set.
    lstm_seed : int
        ``validation.seed`` of the written config (the LSTM's seed).
    epochs, members : int
        The LSTM's training passes and ensemble size in the config.

    Returns
    -------
    pathlib.Path
        The SERIES.yaml.
    """
    root = Path(folder)
    table, _ = synthetic_wells(n_sites=n_sites, n_months=n_months, seed=seed)
    table = table.assign(time=table["time"].dt.strftime("%Y-%m-%d"))
    write_csv(root / "wells.csv", table.set_index("site"))
    text = f"""# Synthetic wells (geohm.synth.wells, seed {seed}): monthly Cd with a recharge
# season, rising wells (a plume) and leaching after wet months; the limit is 5 ug/l.
name: synthetic-wells
data:
  path: wells.csv
  metals: [Cd]
  units: ug/l
  covariates: [rainfall]
  crs: {CRS}
step: month
horizon: 3
lags: 12
min_observations: 24
lstm: {{hidden: 16, members: {members}, epochs: {epochs}}}
validation: {{origins: 4, stride: 3, site_folds: 4, seed: {lstm_seed}}}
warning: {{thresholds: {{Cd: {CD_LIMIT}}}, levels: [0.1, 0.5]}}
output: {{dir: out}}
"""
    return write_text(root / "wells.yaml", text)

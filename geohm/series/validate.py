"""Validation of forecasts: rolling origins and left-out sites, never random splits.

A :class:`Split` says what a model may learn from and what it forecasts:

- **rolling origin** (:func:`rolling_origin_splits`): the models learn from every site's
  data up to the cutoff ``c`` and forecast every site from origin ``c``, steps
  ``c + 1 .. c + H``; the cutoffs are the last ``origins`` steps that leave ``H`` steps
  to score, ``stride`` apart. Nothing after ``c`` is seen in training
  (:func:`geohm.series.data.windows` hides it).
- **leave sites out** (:func:`leave_sites_out_splits`): at one cutoff, the sites are
  dealt into ``folds`` groups (seeded); the pooled models learn from the other groups'
  data up to ``c`` and forecast the held-out group's sites from their own past, as a new
  well would be forecast.

:func:`metrics_by_horizon` scores forecasts per model and horizon: RMSE, MAE (data
units), the count of observed targets, and the skill against persistence
``1 - RMSE / RMSE_persistence`` on the same targets (1: perfect, 0: no better than the
last value, negative: worse).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["Split", "leave_sites_out_splits", "metrics_by_horizon", "rolling_origin_splits"]


@dataclass(frozen=True)
class Split:
    """One validation split.

    Attributes
    ----------
    scheme : str
        ``"rolling_origin"`` or ``"leave_sites_out"``.
    cutoff : int
        Last step the models may learn from; the forecasts start after it.
    train_sites, test_sites : ndarray of int
        Site rows learnt from and forecast.
    label : str
        Names the split in reports.
    """

    scheme: str
    cutoff: int
    train_sites: np.ndarray
    test_sites: np.ndarray
    label: str


def rolling_origin_splits(
    n_steps: int, n_sites: int, *, horizon: int, origins: int, stride: int, min_train: int
) -> list[Split]:
    """The rolling-origin splits (see the module docstring).

    Parameters
    ----------
    n_steps, n_sites : int
        Size of the panel.
    horizon : int
        Steps ahead scored.
    origins : int
        Splits wanted (fewer when the series are short).
    stride : int
        Steps between cutoffs.
    min_train : int
        Steps the first cutoff must leave for training (a cutoff below is dropped).

    Returns
    -------
    list of Split
        Oldest first.

    Examples
    --------
    >>> [s.cutoff for s in rolling_origin_splits(20, 3, horizon=2, origins=3, stride=2,
    ...                                          min_train=5)]
    [13, 15, 17]
    """
    last = n_steps - 1 - horizon
    cutoffs = [last - stride * j for j in range(origins)][::-1]
    everyone = np.arange(n_sites)
    return [
        Split("rolling_origin", c, everyone, everyone, f"origin {c}")
        for c in cutoffs
        if c + 1 >= min_train
    ]


def leave_sites_out_splits(
    n_sites: int, *, cutoff: int, folds: int, seed: int
) -> list[Split]:
    """Site groups held out in turn at one cutoff (see the module docstring).

    Parameters
    ----------
    n_sites : int
        Sites in the panel.
    cutoff : int
        Last step learnt from.
    folds : int
        Groups (at most ``n_sites``; none when below 2).
    seed : int
        Seeds the dealing of sites into groups.

    Returns
    -------
    list of Split
    """
    folds = min(folds, n_sites)
    if folds < 2:
        return []
    order = np.random.default_rng(seed).permutation(n_sites)
    groups = np.array_split(order, folds)
    return [
        Split(
            "leave_sites_out",
            cutoff,
            np.sort(np.setdiff1d(order, g)),
            np.sort(g),
            f"sites fold {j + 1}/{folds}",
        )
        for j, g in enumerate(groups)
    ]


def metrics_by_horizon(
    truth: np.ndarray, forecasts: Mapping[str, np.ndarray], *, reference: str = "persistence"
) -> pd.DataFrame:
    """RMSE, MAE and skill against ``reference`` per model and horizon.

    Parameters
    ----------
    truth : ndarray of shape (n, H)
        Observed values (NaN: not observed, not scored).
    forecasts : mapping of str to ndarray of shape (n, H)
        Each model's forecasts.
    reference : str
        The model whose RMSE the skill is relative to.

    Returns
    -------
    pandas.DataFrame
        Columns ``model``, ``horizon`` (1..H), ``n``, ``rmse``, ``mae``, ``skill``; a
        target is scored only where every model has a forecast.

    Examples
    --------
    >>> t = np.array([[1.0], [3.0]])
    >>> m = metrics_by_horizon(t, {"persistence": np.array([[2.0], [2.0]]),
    ...                            "a": np.array([[1.0], [2.0]])})
    >>> m[["model", "rmse", "mae", "skill"]].round(3).values.tolist()
    [['persistence', 1.0, 1.0, 0.0], ['a', 0.707, 0.5, 0.293]]
    """
    t = np.asarray(truth, dtype=float)
    ok = np.isfinite(t)
    for f in forecasts.values():
        ok &= np.isfinite(f)
    rows = []
    ref = forecasts.get(reference)
    for name, f in forecasts.items():
        for h in range(t.shape[1]):
            sel = ok[:, h]
            err = f[sel, h] - t[sel, h]
            n = int(sel.sum())
            rmse = float(np.sqrt(np.mean(err**2))) if n else np.nan
            mae = float(np.mean(np.abs(err))) if n else np.nan
            skill = np.nan
            if ref is not None and n:
                r = float(np.sqrt(np.mean((ref[sel, h] - t[sel, h]) ** 2)))
                skill = 1.0 - rmse / r if r > 0 else np.nan
            rows.append(
                {"model": name, "horizon": h + 1, "n": n, "rmse": rmse, "mae": mae,
                 "skill": skill}
            )
    return pd.DataFrame(rows)

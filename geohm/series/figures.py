"""The figure of one well: its history, the forecast with its interval, and the limit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SitePanel", "site_figure"]


@dataclass
class SitePanel:
    """One metal of one site, for :func:`site_figure`.

    Attributes
    ----------
    metal, units : str
        Name and units of the concentration.
    sample_times, sample_values : ndarray
        The samples as read (datetime64, data units).
    forecast_times : ndarray
        Start of each forecast step (datetime64).
    mean, lower, upper : ndarray
        Forecast and interval bounds (data units).
    threshold : float
        The limit.
    interval : float
        Coverage of the interval (0-1).
    p_within : float
        Probability of exceeding the limit within the horizon.
    level : str
        Warning level.
    """

    metal: str
    units: str
    sample_times: np.ndarray
    sample_values: np.ndarray
    forecast_times: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    threshold: float
    interval: float
    p_within: float
    level: str


_LEVEL_COLOURS = {"low": "#1a9641", "medium": "#fdae61", "high": "#d7191c"}


def site_figure(site: str, panels: Sequence[SitePanel]) -> Any:
    """History, forecast, interval and limit of each metal of a site (one row each).

    Parameters
    ----------
    site : str
        Site id (title).
    panels : sequence of SitePanel
        One per metal.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 2.6 * len(panels)))
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, p in zip(axes, panels, strict=True):
        ax.plot(p.sample_times, p.sample_values, "o-", ms=3, lw=0.8, color="0.25",
                label="samples")
        if len(p.forecast_times):
            ax.fill_between(p.forecast_times, p.lower, p.upper, color="tab:blue", alpha=0.25,
                            label=f"{p.interval:.0%} interval")
            ax.plot(p.forecast_times, p.mean, "s-", ms=3, color="tab:blue", label="LSTM forecast")
        ax.axhline(p.threshold, ls="--", color="tab:red", lw=1, label=f"limit {p.threshold:g}")
        colour = _LEVEL_COLOURS.get(p.level, "k")
        ax.set_title(
            f"{site}: {p.metal}; P(exceed within horizon) = {p.p_within:.2f} ({p.level})",
            fontsize=9, color=colour,
        )
        ax.set_ylabel(f"{p.metal} ({p.units})")
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig

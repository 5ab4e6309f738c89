"""The figures of a run: quicklooks of maps and class maps, what drives a model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["class_figure", "drivers_figure", "next_samples_figure", "quicklook_figure"]

#: Sample points on the quicklooks: small black rings.
_POINTS: dict[str, Any] = {"s": 10, "facecolors": "none", "edgecolors": "k", "linewidths": 0.7}


def quicklook_figure(
    array: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    title: str,
    units: str,
    vmin: float,
    vmax: float,
    points: np.ndarray | None = None,
    cmap: str = "YlOrRd",
) -> Any:
    """A map figure with a colour bar (and sample points), for report.md.

    Parameters
    ----------
    array : numpy.ndarray
        (y, x) values, NaN for nodata.
    extent : tuple
        (left, right, bottom, top) in map units.
    title, units : str
        Figure title and colour-bar label.
    vmin, vmax : float
        Colour limits (the same as the QGIS style's).
    points : numpy.ndarray, optional
        (n, 2) sample coordinates in map units.
    """
    # The object-oriented Figure (no pyplot): no global backend or figure state is touched,
    # so this is safe in notebooks and threads.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.subplots()
    im = ax.imshow(array, extent=extent, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if points is not None and len(points):
        ax.scatter(points[:, 0], points[:, 1], label="samples", **_POINTS)
        ax.legend(loc="lower right", fontsize=7)
    ax.set_title(title)
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    fig.colorbar(im, ax=ax, shrink=0.85, label=units)
    return fig


def class_figure(
    array: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    title: str,
    classes: list[tuple[int, str, str]],
    points: np.ndarray | None = None,
) -> Any:
    """A class map with a legend of class names (255 = nodata, transparent)."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    codes = [c for c, _, _ in classes]
    cmap = ListedColormap([color for _, _, color in classes])
    norm = BoundaryNorm([c - 0.5 for c in codes] + [codes[-1] + 0.5], cmap.N)
    data = np.where(np.isin(array, codes), array, np.nan)
    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.subplots()
    ax.imshow(data, extent=extent, cmap=cmap, norm=norm, interpolation="nearest")
    if points is not None and len(points):
        ax.scatter(points[:, 0], points[:, 1], **_POINTS)
    ax.legend(
        handles=[Patch(facecolor=color, edgecolor="k", label=label) for _, label, color in classes],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=8,
        frameon=False,
    )
    ax.set_title(title)
    ax.set_xlabel("easting (m)")
    ax.set_ylabel("northing (m)")
    ax.ticklabel_format(style="plain", useOffset=False)
    ax.tick_params(labelsize=7)
    return fig


def drivers_figure(target_report: Mapping[str, Any], *, title: str) -> Any:
    """Permutation importance bars and partial-dependence curves of one target.

    Parameters
    ----------
    target_report : mapping
        ``report["targets"][target]``: its ``importance`` (top 10 bars, mean with sd
        error bars, mg/kg, most important on top) and ``partial_dependence`` (up to 4
        curves: mean prediction, mg/kg, against the factor).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure or None
        None when the report has no importance.
    """
    from matplotlib.figure import Figure

    factors = (target_report.get("importance") or {}).get("factors") or []
    if not factors:
        return None
    top = factors[:10]
    curves = [p for p in target_report.get("partial_dependence") or () if p.get("grid")][:4]
    fig = Figure(figsize=(11.0 if curves else 6.0, 5.0), layout="constrained")
    grid = fig.add_gridspec(2, 4 if curves else 2)
    ax = fig.add_subplot(grid[:, :2])
    pos = np.arange(len(top))[::-1]  # rank 1 on top
    ax.barh(pos, [f["mean"] for f in top], xerr=[f["sd"] for f in top], color="tab:blue")
    ax.set_yticks(pos, [f["factor"] for f in top], fontsize=8)
    ax.set_xlabel("RMSE increase when shuffled (mg/kg)")
    ax.set_title("permutation importance", fontsize=10)
    for k, p in enumerate(curves):
        pax = fig.add_subplot(grid[k // 2, 2 + k % 2])
        pax.plot(p["grid"], p["average"], color="tab:red")
        pax.set_xlabel(p["factor"], fontsize=8)
        pax.tick_params(labelsize=7)
        if k % 2 == 0:
            pax.set_ylabel("mean prediction (mg/kg)", fontsize=8)
    fig.suptitle(title)
    return fig


def next_samples_figure(
    array: np.ndarray,
    extent: tuple[float, float, float, float],
    *,
    title: str,
    existing: np.ndarray | None,
    suggested: np.ndarray,
) -> Any:
    """P(C > S) with the existing samples and the suggested ones, ranked.

    Parameters
    ----------
    array : numpy.ndarray
        (y, x) exceedance probability (0-1), NaN for nodata.
    extent : tuple
        (left, right, bottom, top) in map units.
    title : str
        Figure title.
    existing : numpy.ndarray or None
        (n, 2) coordinates of the samples (map units).
    suggested : numpy.ndarray
        (m, 2) coordinates of the suggested points, best first.

    Returns
    -------
    matplotlib.figure.Figure
        The map, the samples as rings, the suggestions as numbered blue dots.
    """
    fig = quicklook_figure(
        array,
        extent,
        title=title,
        units="P(C > S)",
        vmin=0.0,
        vmax=1.0,
        points=existing,
        cmap="RdYlBu_r",
    )
    ax = fig.axes[0]
    if len(suggested):
        ax.scatter(
            suggested[:, 0],
            suggested[:, 1],
            s=22,
            c="#2166ac",
            edgecolors="w",
            linewidths=0.6,
            label="suggested",
        )
        for rank, (x, y) in enumerate(suggested, start=1):
            ax.annotate(
                str(rank),
                (x, y),
                xytext=(3, 3),
                textcoords="offset points",
                fontsize=7,
                color="#08306b",
                fontweight="bold",
            )
        ax.legend(loc="lower right", fontsize=7)
    return fig

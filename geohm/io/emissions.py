"""Point sources and wind roses for the deposition of the accumulation projection (CSV).

``stacks.csv``: one row per stack with ``x``, ``y`` (m, in ``accumulation.deposition.
stacks_crs``, reprojected to the scene grid), ``height`` (m, the effective release height)
and one column per metal with its emission (kg/yr). ``wind_rose.csv``: one row per wind
sector, speed class and stability class: ``sector_deg`` (the direction the wind blows
*from*, clockwise from grid north), ``speed`` (m/s), ``class`` (Pasquill A-F) and
``frequency`` (the share of the year; all rows sum to 1).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Transformer

from geohm.errors import InputError

__all__ = ["read_stacks", "read_wind_rose"]

PathLike = str | os.PathLike[str]


def _read_csv(path: PathLike, what: str, needed: list[str]) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file '{p}' does not exist; check accumulation.deposition")
    try:
        df = pd.read_csv(p)
    except Exception as exc:  # pandas raises many kinds on a malformed file
        raise InputError(f"{what} file '{p}' cannot be read as CSV: {exc}") from None
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise InputError(
            f"{what} file '{p}' has no column(s) {missing}; it has {list(df.columns)}"
        )
    if df.empty:
        raise InputError(f"{what} file '{p}' has no rows")
    return df


def read_stacks(
    path: PathLike, *, metals: list[str], crs: str | None, grid_crs: str
) -> pd.DataFrame:
    """Read the point sources, their coordinates on the scene grid.

    Parameters
    ----------
    path : path-like
        ``stacks.csv``.
    metals : list of str
        The mapped metals; a metal without a column emits nothing (0 kg/yr).
    crs : str or None
        CRS of ``x``, ``y``; None: the grid's.
    grid_crs : str
        The scene grid's CRS (projected, metres).

    Returns
    -------
    pandas.DataFrame
        ``x``, ``y`` (grid CRS, m), ``height`` (m) and one emission column per metal
        (kg/yr).

    Raises
    ------
    InputError
        Missing file or columns, a non-numeric, negative or missing value, a height <= 0.
    """
    df = _read_csv(path, "stacks", ["x", "y", "height"])
    out = pd.DataFrame()
    for col in ["x", "y", "height", *[m for m in metals if m in df.columns]]:
        values = pd.to_numeric(df[col], errors="coerce")
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0]) + 2
            raise InputError(f"stacks file '{path}': column '{col}' row {row} is not a number")
        out[col] = values.astype("float64")
    if (out["height"] <= 0).any():
        raise InputError(f"stacks file '{path}': every height must be above 0 m")
    for m in metals:
        if m not in out:
            out[m] = 0.0
        elif (out[m] < 0).any():
            raise InputError(f"stacks file '{path}': emission of {m} below 0 kg/yr")
    if crs is not None and crs != grid_crs:
        to_grid = Transformer.from_crs(crs, grid_crs, always_xy=True)
        out["x"], out["y"] = to_grid.transform(out["x"].to_numpy(), out["y"].to_numpy())
    return out


def read_wind_rose(path: PathLike) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read a wind rose as the (sector, speed, class) frequency array of the plume model.

    Parameters
    ----------
    path : path-like
        ``wind_rose.csv`` (long format, see the module docstring).

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray, tuple of str)
        Frequencies of shape (n_sectors, n_speeds, n_classes) with sectors in increasing
        ``sector_deg`` (evenly spaced from 0), the speeds (m/s) and the classes.

    Raises
    ------
    InputError
        Missing columns, sectors not evenly spaced from 0, negative frequencies.
    """
    df = _read_csv(path, "wind rose", ["sector_deg", "speed", "class", "frequency"])
    sectors = np.sort(df["sector_deg"].astype(float).unique())
    n = sectors.size
    if not np.allclose(sectors, np.arange(n) * 360.0 / n):
        raise InputError(
            f"wind rose file '{path}': sectors {sectors.tolist()} are not {n} even sectors "
            "from 0 deg"
        )
    speeds = np.sort(df["speed"].astype(float).unique())
    classes = tuple(sorted(str(c) for c in df["class"].unique()))
    freq = np.zeros((n, speeds.size, len(classes)))
    i = np.searchsorted(sectors, df["sector_deg"].astype(float).to_numpy())
    j = np.searchsorted(speeds, df["speed"].astype(float).to_numpy())
    k = np.array([classes.index(str(c)) for c in df["class"]])
    np.add.at(freq, (i, j, k), df["frequency"].astype(float).to_numpy())
    if (freq < 0).any():
        raise InputError(f"wind rose file '{path}': a frequency is below 0")
    return freq, speeds, classes

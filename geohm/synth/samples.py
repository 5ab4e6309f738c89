"""Where the demo's soil samples lie and what the lab reports for them.

Points lie mostly on ridges, hillsides and near valleys around the mine; lab values are
the truth at the pixel times 5 % log-normal noise, in mg/kg rounded to 0.1. The target
year gets one more point 300-400 m east of the scene, which a run must drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from geohm.synth.case import LANDCOVER_CLASSES, PIT, WATER, X0, Y0

__all__ = ["add_outside_point", "lab_samples", "place_samples", "sample_sites"]

#: Sample counts of the source year and of the target year inside the scene.
SOURCE_COUNT, TARGET_COUNT = 44, 42


def place_samples(
    rng: np.random.Generator, world: dict[str, Any], count: int, exclude: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Sample pixels along ridges, hillsides and valleys, denser near the mine."""
    n = world["dem"].shape[0]
    tpi = world["tpi"]
    pr, pc = world["pit_rc"]
    rr, cc = np.indices((n, n))
    w = np.where(tpi > 0.8, 3.0, np.where(tpi < -0.8, 2.5, 1.5))
    w = w * (0.3 + np.exp(-np.hypot(rr - pr, cc - pc) / (0.3 * n)))
    # Representative of the land uses: rarer classes get relatively more points.
    lc = world["landcover_target"]
    area = np.bincount(lc.ravel(), minlength=len(LANDCOVER_CLASSES) + 1) / lc.size
    w = w / np.sqrt(np.maximum(area[lc], 1e-3))
    edge = np.minimum.reduce([rr, cc, n - 1 - rr, n - 1 - cc]) < 0.03 * n
    w[edge | exclude | (lc == WATER)] = 0.0
    w[lc == PIT] *= 0.5
    p = (w / w.sum()).ravel()
    spacing = 0.035 * n
    rows: list[int] = []
    cols: list[int] = []
    while len(rows) < count:
        for k in rng.choice(p.size, size=4 * count, p=p):
            r, c = divmod(int(k), n)
            if all(np.hypot(r - r2, c - c2) >= spacing for r2, c2 in zip(rows, cols, strict=True)):
                rows.append(r)
                cols.append(c)
                if len(rows) == count:
                    break
        spacing *= 0.9  # only if the scene is too small for the spacing
    return np.array(rows), np.array(cols)


def sample_sites(
    rng: np.random.Generator, world: dict[str, Any]
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """``(rows, cols)`` of the source-year and of the target-year samples.

    Neither lies in the no-data corner; target points keep two pixels away from
    source points.
    """
    n = world["dem"].shape[0]
    rs, cs = place_samples(rng, world, SOURCE_COUNT, world["fill"])
    taken = np.zeros((n, n), bool)
    taken[rs, cs] = True
    rt, ct = place_samples(
        rng, world, TARGET_COUNT, world["fill"] | ndimage.binary_dilation(taken, iterations=2)
    )
    return (rs, cs), (rt, ct)


def lab_samples(
    rng: np.random.Generator,
    world: dict[str, Any],
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    year: str,
    prefix: str,
    pixel: float,
) -> dict[str, Any]:
    """The samples at pixels ``(rows, cols)``: a random spot in each pixel and lab values.

    Returns
    -------
    dict
        ``x``, ``y`` (m, EPSG:32649), ``row``, ``col``, ``Cu``, ``Pb`` (mg/kg) and ``id``
        (``<prefix>-01`` ...).
    """
    n = world["dem"].shape[0]
    x = X0 + (cols + rng.uniform(0.2, 0.8, cols.size)) * pixel
    y = Y0 + (n - rows - rng.uniform(0.2, 0.8, rows.size)) * pixel
    cu = world[f"{year}_Cu"][rows, cols] * np.exp(0.05 * rng.standard_normal(rows.size))
    pb = world[f"{year}_Pb"][rows, cols] * np.exp(0.05 * rng.standard_normal(rows.size))
    return {
        "x": x,
        "y": y,
        "row": rows,
        "col": cols,
        "Cu": np.round(cu, 1),
        "Pb": np.round(pb, 1),
        "id": [f"{prefix}-{i + 1:02d}" for i in range(rows.size)],
    }


def add_outside_point(
    rng: np.random.Generator, world: dict[str, Any], samples: dict[str, Any], *, pixel: float
) -> None:
    """Append to the target-year ``samples`` one point 300-400 m east of the scene.

    Its lab values are drawn from the nearest edge pixel's truth.
    """
    n = world["dem"].shape[0]
    er = int(rng.integers(int(0.2 * n), int(0.8 * n)))
    samples["x"] = np.append(samples["x"], X0 + n * pixel + rng.uniform(300.0, 400.0))
    samples["y"] = np.append(samples["y"], Y0 + (n - er - 0.5) * pixel)
    samples["row"] = np.append(samples["row"], er)
    samples["col"] = np.append(samples["col"], n)
    edge_cu = world["target_Cu"][er, n - 1] * np.exp(0.05 * rng.standard_normal())
    edge_pb = world["target_Pb"][er, n - 1] * np.exp(0.05 * rng.standard_normal())
    samples["Cu"] = np.append(samples["Cu"], np.round(edge_cu, 1))
    samples["Pb"] = np.append(samples["Pb"], np.round(edge_pb, 1))
    samples["id"].append(f"S19-{len(samples['id']) + 1:02d}")

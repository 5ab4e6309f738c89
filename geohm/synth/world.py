"""Every demo array in memory: :func:`simulate`, what :func:`geohm.synth.make_demo` writes.

The steps, each drawing from one ``numpy.random.default_rng(seed)`` in a fixed order
(so the same seed gives byte-identical arrays): the ground (terrain, the mine's layout,
land cover), Cu and Pb, the sample sites, the two Landsat scenes (clouds avoid or
cover the sites), the lab values, and the distance-to-source covariate.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
from affine import Affine
from scipy.spatial import cKDTree

from geohm.synth.case import NODATA, X0, Y0
from geohm.synth.imagery import scene
from geohm.synth.samples import add_outside_point, lab_samples, sample_sites
from geohm.synth.truth import carve_pit, landcover, layout, metals, slope_aspect, terrain, tpi

__all__ = ["simulate"]

#: Acquisition of each year's scene: date, sun angles (degrees), green cover of shrubs
#: and crops, sensor/atmosphere gain and offset per band, thermal base (K).
_SOURCE_YEAR: dict[str, Any] = {
    "date": _dt.date(2017, 12, 8),
    "elev": 32.6,
    "azim": 161.4,
    "season": 0.85,
    "gain": np.ones(7),
    "offset": np.zeros(7),
    "t_base": 281.0,
}
_TARGET_YEAR: dict[str, Any] = {
    "date": _dt.date(2019, 11, 15),
    "elev": 37.9,
    "azim": 158.2,
    "season": 1.1,
    "gain": np.array([1.05, 1.05, 1.03, 1.02, 0.95, 0.97, 0.98]),
    "offset": np.array([0.008, 0.006, 0.004, 0.002, -0.004, 0.003, 0.002]),
    "t_base": 285.5,
}


def simulate(*, seed: int = 0, size: int = 400, pixel: float = 30.0) -> dict[str, Any]:
    """Build every demo array in memory (what :func:`make_demo` writes).

    Parameters
    ----------
    seed : int
        Random seed.
    size : int
        Scene width and height in pixels (at least 64).
    pixel : float
        Pixel size in metres.

    Returns
    -------
    dict
        ``dem``, ``slope``, ``aspect`` (degrees), ``landcover_source``,
        ``landcover_target``, ``source_Cu``... (mg/kg), ``scene_source`` and
        ``scene_target`` (``sr`` DNs by band name, ``st``, ``qa``, sun angles,
        date), ``samples_source``/``samples_target`` (``x``, ``y`` in EPSG:32649,
        ``row``, ``col``, ``id``, ``Cu``, ``Pb``), ``dist_source`` (``data`` and
        ``transform`` of the 60 m covariate), ``transform``, ``fill`` and
        ``unusable_target_ids``.
    """
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, got {size}")
    n = int(size)
    rng = np.random.default_rng(seed)
    world, lay, dem = _ground(rng, n, pixel)
    world.update(metals(rng, dem, world["tpi"], lay, world["landcover_source"], n))
    rr, cc = np.indices((n, n))
    world["fill"] = (rr + cc) > 1.88 * n  # a no-data corner, as at a scene edge

    # Samples first, so clouds can avoid (or cover) them.
    source_sites, target_sites = sample_sites(rng, world)
    world["scene_source"] = scene(
        rng, world, "source", **_SOURCE_YEAR, points=np.column_stack(source_sites), cover=None
    )
    world["scene_target"] = scene(
        rng,
        world,
        "target",
        **_TARGET_YEAR,
        points=np.column_stack(target_sites),
        cover=rng.permutation(target_sites[0].size),
    )
    cloud_i = world["scene_target"]["clouds"]["covered"]
    if cloud_i < 0:
        raise RuntimeError("synth: no target point could be put under a cloud; use a larger size")

    world["samples_source"] = lab_samples(
        rng, world, *source_sites, year="source", prefix="S17", pixel=pixel
    )
    tgt = lab_samples(rng, world, *target_sites, year="target", prefix="S19", pixel=pixel)
    add_outside_point(rng, world, tgt, pixel=pixel)
    world["samples_target"] = tgt
    world["unusable_target_ids"] = {tgt["id"][cloud_i]: "cloud", tgt["id"][-1]: "outside"}
    world["dist_source"] = _distance_covariate(lay, n, pixel)
    return world


def _ground(
    rng: np.random.Generator, n: int, pixel: float
) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
    """The world's ground: terrain with the pit dug in, slope, aspect, TPI, land cover.

    Returns the world so far, the mine's layout and the float64 DEM (m) the metals
    are computed on (the world holds it as float32).
    """
    ter = terrain(rng, n, pixel)
    lay = layout(rng, ter, n)
    dem = carve_pit(ter["dem"], lay, n)
    slope, aspect = slope_aspect(dem, pixel)
    position = tpi(dem, n)
    lc_src, lc_tgt = landcover(rng, dem, slope, position, lay, n)
    world: dict[str, Any] = {
        "transform": Affine(pixel, 0.0, X0, 0.0, -pixel, Y0 + n * pixel),
        "dem": dem.astype(np.float32),
        "slope": slope,
        "aspect": aspect,
        "tpi": position,
        "landcover_source": lc_src,
        "landcover_target": lc_tgt,
        "pit_rc": lay["pit_rc"],
    }
    return world, lay, dem


def _distance_covariate(lay: dict[str, Any], n: int, pixel: float) -> dict[str, Any]:
    """Distance (m) to the known mining sources: ``data`` (float32) and its ``transform``.

    On a 60 m grid with an offset origin and a nodata rim.
    """
    known = lay["pit"] | lay["slag"] | lay["newslag"]
    kr, kc = np.nonzero(known)
    src_xy = np.column_stack([X0 + (kc + 0.5) * pixel, Y0 + (n - kr - 0.5) * pixel])
    cell = 2.0 * pixel
    margin = 3
    left = X0 - margin * cell - 0.37 * pixel
    top = Y0 + n * pixel + margin * cell + 0.61 * pixel
    ncell = int(np.ceil(n * pixel / cell)) + 2 * margin + 1
    cx = left + (np.arange(ncell) + 0.5) * cell
    cy = top - (np.arange(ncell) + 0.5) * cell
    gx, gy = np.meshgrid(cx, cy)
    dist, _ = cKDTree(src_xy).query(np.column_stack([gx.ravel(), gy.ravel()]))
    dist = dist.reshape(gx.shape).astype(np.float32)
    outside = (
        (gx < X0 - 1.5 * cell)
        | (gx > X0 + n * pixel + 1.5 * cell)
        | (gy < Y0 - 1.5 * cell)
        | (gy > Y0 + n * pixel + 1.5 * cell)
    )
    dist[outside] = NODATA
    return {"data": dist, "transform": Affine(cell, 0.0, left, 0.0, -cell, top)}

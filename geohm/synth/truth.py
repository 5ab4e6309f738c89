"""The hidden truth of the demo: terrain, the mine's layout, land cover, Cu and Pb.

Every function draws from the generator it is given, in a fixed order, so one seed
gives one world (:func:`geohm.synth.world.simulate` calls them). Nothing here is seen
by the pipeline except through the imagery, the DEM and the samples made from it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from geohm.synth.case import BARE, CROP, FOREST, NEWSLAG, PIT, ROAD, SHRUB, SLAG, WATER
from geohm.synth.fields import disc, edt, fractal, line_mask, smooth_field

__all__ = ["carve_pit", "landcover", "layout", "metals", "slope_aspect", "terrain", "tpi"]


def terrain(rng: np.random.Generator, n: int, pixel: float) -> dict[str, Any]:
    """Elevation (m, about 950-1950) and the ridge coordinates the layout uses.

    SW-NE ridges, a regional trend, fractal relief and gullies; the ridge coordinates are
    ``u`` (across) and ``s`` (along).
    """
    centres = (np.arange(n) + 0.5) / n
    R, C = np.meshgrid(centres, centres, indexing="ij")
    theta = np.radians(rng.uniform(28.0, 42.0))
    s = C * np.cos(theta) + (1.0 - R) * np.sin(theta)  # along the ridges (SW -> NE)
    t = -C * np.sin(theta) + (1.0 - R) * np.cos(theta)  # across the ridges
    k = 2.6  # ridge periods across the scene: three main ridges
    ph = rng.uniform(0, 2 * np.pi, 3)
    u = (
        k * t
        + 0.10 * np.sin(2 * np.pi * 1.3 * s + ph[0])
        + 0.05 * np.sin(2 * np.pi * 2.9 * s + ph[1])
        + ph[2] / (2 * np.pi)
    )
    ridge = np.cos(2 * np.pi * u)
    ridge = np.sign(ridge) * np.abs(ridge) ** 0.8  # sharper crests, wider troughs
    frac = fractal(rng, n, beta=3.2)
    gullies = smooth_field(rng, n, 0.025 * n)
    trend = 0.9 * (1.0 - R) + 0.4 * C
    z = 1.0 * ridge + 0.9 * trend + 0.30 * frac - 0.25 * np.abs(gullies)
    dem = 950.0 + 1000.0 * (z - z.min()) / (z.max() - z.min())
    return {"dem": dem, "u": u, "s": s, "R": R, "C": C, "k": k}


def carve_pit(dem: np.ndarray, lay: dict[str, Any], n: int) -> np.ndarray:
    """``dem`` with the open pit dug in (up to 60 m deep at its centre), lightly smoothed."""
    pr, pc = lay["pit_rc"]
    rr, cc = np.indices((n, n))
    dpit = np.hypot(rr - pr, cc - pc) / (0.045 * n)
    dem = np.where(lay["pit"], dem - 60.0 * np.clip(1.0 - dpit**2, 0, 1), dem)
    return ndimage.gaussian_filter(dem, 0.7)


def slope_aspect(dem: np.ndarray, pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in degrees (aspect clockwise from north; row 0 = north)."""
    dzdy, dzdx = np.gradient(dem, pixel)
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    aspect = (np.degrees(np.arctan2(-dzdx, dzdy)) + 360.0) % 360.0  # downslope direction
    return slope, aspect


def tpi(dem: np.ndarray, n: int) -> np.ndarray:
    """Standardised topographic position index: > 0 ridges, < 0 valleys."""
    tpi = dem - ndimage.gaussian_filter(dem, 0.04 * n, mode="nearest")
    return tpi / tpi.std()


def layout(rng: np.random.Generator, ter: dict[str, Any], n: int) -> dict[str, Any]:
    """Pit, haul road, valley roads, slag heaps, the new slag heap and a pond."""
    u = ter["u"]
    shape = (n, n)
    centre = (n / 2.0, n / 2.0)
    rr, cc = np.indices(shape)
    dcen = np.hypot(rr - centre[0], cc - centre[1])
    # The main valley: the trough (u = m + 0.5) passing nearest the centre.
    m = int(np.floor(u[int(centre[0]), int(centre[1])]))
    frac_u = u - np.floor(u)
    du = np.abs(frac_u - 0.5) / ter["k"] * n  # pixels from the trough line
    trough_id = np.floor(u)
    road = (du < 0.8) & (trough_id == m)
    # A second valley road on the neighbouring trough, if it is inside the scene.
    road2 = (du < 0.8) & (trough_id == m + 1)
    if road2.sum() > 0.3 * n:
        road |= road2
    # Open pit on the upper slope of the ridge above the main valley, near the centre.
    cand = (np.abs(u - (m + 0.82)) < 0.02) & (dcen < 0.25 * n)
    if not cand.any():
        cand = np.abs(u - (m + 0.82)) < 0.05
    ci = np.flatnonzero(cand.ravel())
    pick = ci[np.argmin(dcen.ravel()[ci] + rng.uniform(0, 0.05 * n, ci.size))]
    pr, pc = divmod(int(pick), n)
    wob = smooth_field(rng, n, 0.02 * n)
    pit = disc(shape, pr, pc, 0.045 * n, wob, stretch=0.75)
    # Haul road down to the nearest main-road pixel.
    d_road, idx = edt(road)
    jr, jc = int(idx[0, pr, pc]), int(idx[1, pr, pc])
    haul = line_mask(shape, (pr, pc), (jr, jc), 0.7)
    # Two slag heaps beside the haul road.
    vr, vc = jr - pr, jc - pc
    norm = max(np.hypot(vr, vc), 1.0)
    side = (-vc / norm, vr / norm)
    slag = np.zeros(shape, bool)
    for f, off, rad in ((0.45, 0.03, 0.024), (0.8, -0.025, 0.02)):
        slag |= disc(
            shape, pr + f * vr + off * n * side[0], pc + f * vc + off * n * side[1], rad * n, wob
        )
    slag &= ~pit
    # New slag heap (target year): beside the main road, about 0.2 n from the junction.
    dj = np.hypot(rr - jr, cc - jc)
    along = road & (np.abs(dj - 0.2 * n) < 1.5) & (dcen < 0.45 * n)
    if not along.any():
        along = road & (dj > 0.1 * n)
    ai = np.flatnonzero(along.ravel())
    nr, nc = divmod(int(ai[rng.integers(ai.size)]), n)
    newslag = disc(shape, nr + 0.02 * n * side[0], nc + 0.02 * n * side[1], 0.022 * n, wob)
    newslag &= ~(pit | slag)
    # A small pond in a valley away from the mine.
    busy = edt(road | haul | pit | slag | newslag)[0] < max(0.04 * n, 4.0)
    troughs = (
        (du < 1.5)
        & ~busy
        & (dcen > 0.3 * n)
        & (np.minimum.reduce([rr, cc, n - 1 - rr, n - 1 - cc]) > 0.08 * n)
    )
    ti = np.flatnonzero(troughs.ravel())
    if ti.size:
        wr, wc = divmod(int(ti[rng.integers(ti.size)]), n)
    else:
        wr, wc = int(0.85 * n), int(0.15 * n)
    pond = disc(shape, wr, wc, max(0.018 * n, 2.5), wob, stretch=0.6)
    pond |= disc(shape, wr, wc, 1.5)
    roads = (road | haul) & ~pit
    return {
        "pit": pit,
        "slag": slag,
        "newslag": newslag,
        "roads": roads,
        "pond": pond,
        "pit_rc": (pr, pc),
        "junction": (jr, jc),
        "u": u,
        "ore_u": m + 1.0,
    }


def landcover(
    rng: np.random.Generator,
    dem: np.ndarray,
    slope: np.ndarray,
    tpi: np.ndarray,
    lay: dict[str, Any],
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Land-cover classes of the source and the target year.

    The new slag heap and the land cleared around it exist only in the target year.
    """
    noise1 = smooth_field(rng, n, 0.015 * n)
    noise2 = smooth_field(rng, n, 0.03 * n)
    bare_f = smooth_field(rng, n, 0.01 * n)
    lc = np.full(dem.shape, SHRUB, dtype=np.uint8)
    forest = (slope > 21 + 6 * noise1) | ((dem > 1650 + 80 * noise2) & (slope > 10))
    lc[forest] = FOREST
    crop = (tpi < -0.35 + 0.3 * noise1) & (slope < 16 + 4 * noise2) & (dem < 1650)
    lc[crop] = CROP
    pr, pc = lay["pit_rc"]
    rr, cc = np.indices(dem.shape)
    near_pit = np.hypot(rr - pr, cc - pc) < 0.09 * n
    bare = ((bare_f > 1.3) & (lc != FOREST)) | (near_pit & (bare_f > -0.3))
    lc[bare] = BARE
    lc[lay["pond"]] = WATER
    lc[lay["roads"]] = ROAD
    lc[lay["pit"]] = PIT
    lc[lay["slag"]] = SLAG
    source = lc.copy()
    target = lc.copy()
    target[lay["newslag"]] = NEWSLAG
    # Land cleared around the new slag heap.
    ring = ndimage.binary_dilation(lay["newslag"], iterations=max(1, int(0.008 * n)))
    target[ring & ~lay["newslag"] & (target != ROAD)] = BARE
    return source, target


def metals(
    rng: np.random.Generator,
    dem: np.ndarray,
    tpi: np.ndarray,
    lay: dict[str, Any],
    lc_src: np.ndarray,
    n: int,
) -> dict[str, np.ndarray]:
    """Cu and Pb truth (mg/kg) for both years."""
    g_bg = smooth_field(rng, n, 0.03 * n)  # background soil variation (unobservable)
    g_pb = smooth_field(rng, n, 0.03 * n)
    g_hot = smooth_field(rng, n, 0.015 * n)  # patchiness of the contamination
    g_hot_pb = smooth_field(rng, n, 0.015 * n)
    g_year = smooth_field(rng, n, 0.02 * n)
    micro = rng.standard_normal((4, n, n))

    def decay(mask: np.ndarray, length: float) -> np.ndarray:
        d, idx = edt(mask)
        z_src = dem[idx[0], idx[1]]
        downslope = 1.0 / (1.0 + np.exp(-(z_src - dem) / 60.0))  # 1 below the source
        return np.exp(-d / (length * n * (0.6 + 1.0 * downslope)))

    e_pit = decay(lay["pit"], 0.09)
    e_slag = decay(lay["slag"], 0.075)
    e_new = decay(lay["newslag"], 0.05)
    d_road, _ = edt(lay["roads"])
    e_road = np.exp(-d_road / (0.012 * n))
    acc = 1.0 + 0.4 * np.clip(-tpi, 0, 2.5) / 2.5  # accumulation at slope bottoms
    bg_terrain = (1.0 + 0.12 * np.clip(-tpi, 0, 2.5)) * np.exp(-0.08 * (dem - 1400) / 300)
    lc_factor = np.ones(dem.shape)
    lc_factor[lc_src == CROP] = 1.12
    lc_factor[lc_src == FOREST] = 0.95
    # The ore-bearing ridge (the one with the pit) is geogenically enriched.
    belt = 1.0 + 0.35 * np.exp(-(((lay["u"] - lay["ore_u"]) / 0.3) ** 2))
    bg_cu = 21.0 * np.exp(0.18 * g_bg) * bg_terrain * lc_factor * belt
    bg_pb = 19.5 * np.exp(0.08 * (0.6 * g_bg + 0.8 * g_pb)) * bg_terrain * belt**0.7
    hot_cu = np.exp(0.22 * g_hot)
    hot_pb = np.exp(0.15 * (0.5 * g_hot + 0.87 * g_hot_pb))
    con_cu = (70 * e_pit + 55 * e_slag + 20 * e_road) * acc * hot_cu
    con_pb = (22 * e_pit + 22 * e_slag + 8 * e_road) * acc * hot_pb
    new_cu = 55 * e_new * acc * hot_cu
    new_pb = 18 * e_new * acc * hot_pb
    yr = np.exp(0.05 * g_year)

    def sat(x: np.ndarray, top: float) -> np.ndarray:  # contamination saturates at ``top``
        return top * np.tanh(x / top)

    out = {
        "source_Cu": (bg_cu + sat(con_cu, 110.0)) * np.exp(0.04 * micro[0]),
        "source_Pb": (bg_pb + sat(con_pb, 38.0)) * np.exp(0.04 * micro[1]),
        "target_Cu": (bg_cu * yr + sat(1.1 * con_cu + new_cu, 110.0)) * np.exp(0.04 * micro[2]),
        "target_Pb": (bg_pb * yr + sat(1.1 * con_pb + new_pb, 38.0)) * np.exp(0.04 * micro[3]),
    }
    return {k: v.astype(np.float32) for k, v in out.items()}

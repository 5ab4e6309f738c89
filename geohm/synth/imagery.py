"""The demo's Landsat scenes: reflectance, thermal, clouds and QA_PIXEL, as Level-2 DNs.

Reflectance mixes vegetation, dry vegetation and soil by land cover; contaminated soil
is darker in NIR/SWIR1, vegetation near sources is stressed; terrain illumination uses
the scene's sun angles; clouds (with dilation rings and shadows) are flagged in QA_PIXEL
as USGS does.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np
from scipy import ndimage

from geohm.io.landsat import REFLECTIVE_BANDS
from geohm.synth.case import (
    BARE,
    CROP,
    FOREST,
    NEWSLAG,
    PIT,
    ROAD,
    SHRUB,
    SLAG,
    SR_ADD,
    SR_MULT,
    ST_ADD,
    ST_MULT,
    WATER,
)
from geohm.synth.fields import disc, smooth_field

__all__ = [
    "QA_CLEAR",
    "QA_CLOUD",
    "QA_DILATED",
    "QA_FILL",
    "QA_SHADOW",
    "QA_WATER",
    "scene",
]

# Endmember reflectance (0-1), bands coastal..swir2.
_EM = {
    "veg": np.array([0.022, 0.028, 0.058, 0.034, 0.330, 0.165, 0.075]),
    "dryveg": np.array([0.050, 0.060, 0.090, 0.115, 0.240, 0.300, 0.205]),
    "soil": np.array([0.062, 0.078, 0.118, 0.162, 0.232, 0.300, 0.238]),
    "pit": np.array([0.085, 0.104, 0.152, 0.228, 0.268, 0.335, 0.280]),
    "slag": np.array([0.052, 0.058, 0.072, 0.088, 0.112, 0.152, 0.135]),
    "road": np.array([0.080, 0.095, 0.120, 0.140, 0.180, 0.222, 0.202]),
    "water": np.array([0.052, 0.056, 0.062, 0.040, 0.020, 0.010, 0.008]),
    "cloud": np.array([0.460, 0.465, 0.470, 0.480, 0.520, 0.400, 0.300]),
}


#: Typical Collection 2 QA_PIXEL values (bits and 2-bit confidences; science.md 1.3).
QA_CLEAR = 21824  # clear (bit 6) + low cloud/shadow/snow/cirrus confidence
QA_WATER = 21952  # clear + water (bit 7)
QA_CLOUD = 22282  # dilated (1) + cloud (3) + high cloud confidence
QA_DILATED = 21762  # dilated cloud only, low confidence
QA_SHADOW = 23888  # shadow (4) + high shadow confidence; the clear bit is set, as USGS does
QA_FILL = 1


def _illumination(slope: np.ndarray, aspect: np.ndarray, elev: float, azim: float) -> np.ndarray:
    """cos(incidence) / cos(sun zenith), floored: 1 on flat ground."""
    sz = np.radians(90.0 - elev)
    sl, asp = np.radians(slope), np.radians(aspect)
    cos_i = np.cos(sz) * np.cos(sl) + np.sin(sz) * np.sin(sl) * np.cos(np.radians(azim) - asp)
    return np.clip(cos_i, 0.0, None) / np.cos(sz)


def _reflectance(
    rng: np.random.Generator,
    lc: np.ndarray,
    cu: np.ndarray,
    pb: np.ndarray,
    illum: np.ndarray,
    n: int,
    *,
    season: float,
) -> np.ndarray:
    """Surface reflectance (7, y, x), 0-1, before sensor effects."""
    fv_noise = smooth_field(rng, n, 0.01 * n)
    moist = smooth_field(rng, n, 0.02 * n)  # soil moisture / organic matter: a confounder
    fv_base = np.zeros(lc.shape)
    dry_base = np.zeros(lc.shape)
    for cls, fv0, dry0 in (
        (FOREST, 0.78, 0.10),
        (SHRUB, 0.40, 0.30),
        (CROP, 0.28, 0.35),
        (BARE, 0.06, 0.10),
        (ROAD, 0.04, 0.04),
        (PIT, 0.0, 0.02),
        (SLAG, 0.02, 0.03),
        (NEWSLAG, 0.0, 0.02),
    ):
        fv_base[lc == cls] = fv0 * season if cls in (SHRUB, CROP) else fv0
        dry_base[lc == cls] = dry0
    m = np.log(np.maximum(cu, 1.0) / 21.0) + 0.5 * np.log(np.maximum(pb, 1.0) / 20.0)
    stress = np.clip(m - 0.4, 0.0, 1.2) / 1.2
    fv = np.clip(fv_base * (1.0 + 0.08 * fv_noise) * (1.0 - 0.35 * stress), 0.0, 0.95)
    dry = np.clip(dry_base * (1.0 + 0.1 * fv_noise), 0.0, 1.0 - fv)
    soil_frac = 1.0 - fv - dry
    # Soil: contamination darkens NIR/SWIR1 (iron oxides, organics), shifts SWIR1/SWIR2.
    mm = np.clip(m, -0.5, 2.5)[None]
    soil = _EM["soil"][:, None, None] * (1.0 + 0.12 * moist)[None]
    soil = soil * (1.0 + np.array([0.0, 0.0, 0.01, 0.05, -0.08, -0.11, -0.04])[:, None, None] * mm)
    for cls, em in ((PIT, "pit"), (SLAG, "slag"), (NEWSLAG, "slag"), (ROAD, "road")):
        sel = lc == cls
        soil[:, sel] = _EM[em][:, None] * (1.0 + 0.08 * moist[sel])[None]
    rho = (
        fv[None] * _EM["veg"][:, None, None]
        + dry[None] * _EM["dryveg"][:, None, None]
        + soil_frac[None] * soil
    )
    water = lc == WATER
    rho[:, water] = _EM["water"][:, None]
    # Terrain illumination (diffuse floor of 0.25).
    rho = rho * (0.25 + 0.75 * np.minimum(illum, 1.8))[None]
    return rho


def _thermal(
    rng: np.random.Generator, dem: np.ndarray, lc: np.ndarray, illum: np.ndarray, *, base: float
) -> np.ndarray:
    """Surface temperature (K): a lapse rate, sunlit slopes warmer, an offset per class."""
    offs = {
        FOREST: -1.5,
        SHRUB: 0.0,
        CROP: 0.5,
        BARE: 2.5,
        WATER: -4.0,
        ROAD: 3.0,
        PIT: 3.5,
        SLAG: 5.0,
        NEWSLAG: 5.0,
    }
    t = base - 0.0065 * (dem - 1400.0) + 2.5 * (np.minimum(illum, 1.8) - 1.0)
    for cls, o in offs.items():
        t = t + o * (lc == cls)
    return t + 0.4 * rng.standard_normal(dem.shape)


def _clouds(
    rng: np.random.Generator,
    n: int,
    points: np.ndarray,
    cover: np.ndarray | None,
    *,
    azim: float,
    count: int = 3,
) -> dict[str, Any]:
    """Cloud cores, dilation rings and shadows.

    With ``cover`` (candidate point indices, in order of preference), one cloud is
    centred on the first candidate whose cloud, ring and shadow touch no other
    point; the index chosen is returned as ``covered``. The other ``count`` clouds
    keep clear of every point.
    """
    shape = (n, n)
    wob = smooth_field(rng, n, 0.01 * n)
    # Shadows fall away from the sun: direction azimuth + 180 (clockwise from north).
    ang = np.radians(azim + 180.0)
    shift = (-np.cos(ang) * 0.05 * n, np.sin(ang) * 0.05 * n)
    grow = max(1, int(round(0.006 * n)))
    at = np.zeros(shape, bool)
    at[points[:, 0], points[:, 1]] = True
    at = ndimage.binary_dilation(at, iterations=2)

    def footprint(r0: float, c0: float, rad: float) -> tuple[np.ndarray, ...]:
        core = disc(shape, r0, c0, rad, wob)
        ring = ndimage.binary_dilation(core, iterations=grow) & ~core
        shadow = ndimage.shift(core.astype(float), shift, order=0) > 0.5
        return core, ring, shadow

    cloud = np.zeros(shape, bool)
    ring = np.zeros(shape, bool)
    shadow = np.zeros(shape, bool)
    covered = -1
    for i in [] if cover is None else cover:
        r0, c0 = points[i]
        parts = footprint(r0, c0, 0.035 * n)
        others = at & ~disc(shape, r0, c0, 3)
        if not (
            ndimage.binary_dilation(parts[0] | parts[1] | parts[2], iterations=2) & others
        ).any():
            cloud, ring, shadow = parts
            covered = int(i)
            break
    placed = tries = 0
    while placed < count and tries < 200:
        tries += 1
        r0, c0 = rng.uniform(0.1 * n, 0.9 * n, 2)
        core, rg, sh = footprint(r0, c0, rng.uniform(0.025, 0.045) * n)
        if (ndimage.binary_dilation(core | rg | sh, iterations=2) & at).any():
            continue
        cloud |= core
        ring |= rg
        shadow |= sh
        placed += 1
    ring &= ~cloud
    shadow &= ~(cloud | ring)
    return {"cloud": cloud, "ring": ring, "shadow": shadow, "covered": covered}



def scene(
    rng: np.random.Generator,
    world: dict[str, Any],
    year: str,
    *,
    date: _dt.date,
    elev: float,
    azim: float,
    season: float,
    gain: np.ndarray,
    offset: np.ndarray,
    t_base: float,
    points: np.ndarray,
    cover: np.ndarray | None,
) -> dict[str, Any]:
    """One year's Landsat scene of the ``world`` as Collection 2 Level-2 DNs.

    ``gain``/``offset`` (per band) are the sensor/atmosphere shift of the year, ``season``
    scales the green cover of shrubs and crops, ``t_base`` is the thermal base (K);
    ``points`` (sample pixels) and ``cover`` are passed to the cloud placement.

    Returns
    -------
    dict
        ``sr`` (uint16 DNs by band name), ``st`` and ``qa`` (uint16), ``date``,
        ``sun_elevation``, ``sun_azimuth`` (degrees) and ``clouds`` (the masks and the
        index of the covered point, -1 for none).
    """
    n = world["dem"].shape[0]
    lc = world[f"landcover_{year}"]
    illum = _illumination(world["slope"], world["aspect"], elev, azim)
    rho = _reflectance(rng, lc, world[f"{year}_Cu"], world[f"{year}_Pb"], illum, n, season=season)
    rho = rho * gain[:, None, None] + offset[:, None, None]
    rho = rho + 0.004 * rng.standard_normal(rho.shape)
    st = _thermal(rng, world["dem"], lc, illum, base=t_base)
    cl = _clouds(rng, n, points, cover, azim=azim)
    cloudy = cl["cloud"] | cl["ring"]
    bright = _EM["cloud"][:, None] * (1.0 + 0.05 * rng.standard_normal(int(cloudy.sum())))[None]
    rho[:, cloudy] = np.where(cl["ring"][cloudy][None], 0.5 * (bright + rho[:, cloudy]), bright)
    rho[:, cl["shadow"]] *= 0.3
    st[cl["cloud"]] = 262.0 + 2.0 * rng.standard_normal(int(cl["cloud"].sum()))
    qa = np.full((n, n), QA_CLEAR, dtype=np.uint16)
    qa[lc == WATER] = QA_WATER
    qa[cl["shadow"]] = QA_SHADOW
    qa[cl["ring"]] = QA_DILATED
    qa[cl["cloud"]] = QA_CLOUD
    fill = world["fill"]
    qa[fill] = QA_FILL
    dn = np.clip(np.round((rho - SR_ADD) / SR_MULT), 1, 65535).astype(np.uint16)
    dn[:, fill] = 0
    st_dn = np.clip(np.round((st - ST_ADD) / ST_MULT), 1, 65535).astype(np.uint16)
    st_dn[fill] = 0
    return {
        "sr": {b: dn[i] for i, b in enumerate(REFLECTIVE_BANDS)},
        "st": st_dn,
        "qa": qa,
        "date": date,
        "sun_elevation": elev,
        "sun_azimuth": azim,
        "clouds": cl,
    }

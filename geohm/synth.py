"""The built-in synthetic demo: a two-year mining-area case shaped like Daxigou.

:func:`make_demo` writes, for a made-up mountain mining area in UTM zone 49N
(EPSG:32649, 30 m pixels, default 400 x 400 = 12 x 12 km):

* ``dem.tif``: float32 metres (about 900-1950 m): three main ridges (SW-NE) with valleys
  between them, fractal gullies and an open pit carved into an upper slope.
* ``source/<product_id>/`` (2017-12-08) and ``target/<product_id>/`` (2019-11-15):
  Landsat 8 Collection 2 Level-2 folders as USGS ships them (uint16 SR_B1..B7 with
  the real scale 2.75e-05/-0.2, ST_B10 with 0.00341802/149.0, QA_PIXEL, MTL).
* ``samples_source.gpkg`` (44 points, ids ``S17-01``...) and ``samples_target.gpkg``
  (43 points, ``S19-01``...), EPSG:4326, columns ``id``, ``Cu``, ``Pb`` (mg/kg:
  the truth at the pixel times 5 % log-normal lab noise). Points lie mostly on
  ridges, hillsides and near valleys around the mine, as in the paper. In the
  target year exactly one point lies under a cloud and one lies 300-400 m east of
  the scene, so a run drops and reports two of them (their ids are in
  ``truth/demo.json`` and :attr:`DemoPaths.unusable_target_ids`); the other 41
  are usable. Every source-year point is usable.
* ``covariates/dist_source.tif``: float32 distance (m) to the nearest mining
  source known at the target date (pit, old and new slag heaps), on a *different*
  grid (60 m, origin offset by a non-multiple of 30 m) with a nodata (-9999) rim
  outside the scene, so the pipeline's alignment is exercised.
* ``truth/``: ``source_Cu.tif``, ``source_Pb.tif``, ``target_Cu.tif``,
  ``target_Pb.tif`` (float32 mg/kg), ``landcover.tif`` (target year) and
  ``landcover_source.tif`` (uint8, classes in :data:`LANDCOVER_CLASSES`), and
  ``demo.json`` (seed, size, class table, unusable point ids).
* ``scene.yaml``: the target-year scene job (:func:`demo_config_text`).

How the truth is made (all hidden from the pipeline): Cu and Pb are a background
(about 21 mg/kg, varying with elevation, land cover, a geogenically enriched
ore-bearing ridge and a smooth Gaussian random field) plus contamination that
decays exponentially with distance from the pit, slag heaps and roads, further
downslope than upslope, multiplied by an accumulation factor in valley bottoms and
by a second random field. The random
fields are invisible in the imagery except through weak soil-spectrum effects,
so the covariates carry real but imperfect signal. Reflectance mixes vegetation,
dry vegetation and soil by land cover; contaminated soil is darker in NIR/SWIR1
with a changed SWIR1/SWIR2 ratio, vegetation near sources is stressed (lower
NDVI); terrain illumination uses the scene's sun angles. The target year has a
sensor/atmosphere gain and offset per band, different vegetation, more mining
(contamination x1.1) and a new slag heap. Contamination saturates softly (Cu near
110 mg/kg, Pb near 38 mg/kg above background), so maps span about 10-170 mg/kg Cu
and 10-80 mg/kg Pb.

Calibration (checked when the generator was written, seeds 0-4, sizes 128-400): a
random forest on about 33 of the 41 usable target samples, with the 7 bands,
thermal, NDVI/EVI/DVI/CMR/MNDWI, tasseled cap, elevation/slope/aspect and
``dist_source`` as features, predicts the target truth map with R2 of about
0.4-0.7; with thousands of training pixels it reaches about 0.85-0.9 (the rest is
the unobservable random fields). A linear model on raw bands and thermal trained
on the source year fails on the target year (sensor shift), which is what the
transfer models are for.

Everything derives from ``numpy.random.default_rng(seed)``: the same seed gives
byte-identical arrays. Geometry is defined relative to the scene size, so a
160-pixel scene is a smaller copy of the 400-pixel one.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from scipy import ndimage
from scipy.spatial import cKDTree

from geohm.io.landsat import REFLECTIVE_BANDS, write_landsat_c2l2
from geohm.io.points import points_from_xy, write_points
from geohm.io.rasters import write_geotiff
from geohm.io.reports import write_text

__all__ = [
    "CRS",
    "LANDCOVER_CLASSES",
    "SOURCE_PRODUCT_ID",
    "TARGET_PRODUCT_ID",
    "DemoPaths",
    "demo_config_text",
    "make_demo",
    "simulate",
]

#: CRS of every demo raster (WGS 84 / UTM zone 49N, like Daxigou).
CRS = "EPSG:32649"
#: Lower-left corner of the scene (metres, EPSG:32649).
X0, Y0 = 490000.0, 3750000.0
SOURCE_PRODUCT_ID = "LC08_L2SP_127036_20171208_20200802_02_T1"
TARGET_PRODUCT_ID = "LC08_L2SP_127036_20191115_20200825_02_T1"
#: Land-cover class codes of ``truth/landcover.tif`` (0 = nodata).
LANDCOVER_CLASSES: dict[int, str] = {
    1: "forest",
    2: "shrub_grass",
    3: "cropland",
    4: "bare_soil",
    5: "water",
    6: "road",
    7: "open_pit",
    8: "slag_heap",
    9: "new_slag_heap",
}
_LC_COLORS = {
    0: (0, 0, 0, 0),
    1: (34, 110, 50, 255),
    2: (150, 190, 90, 255),
    3: (235, 210, 120, 255),
    4: (190, 150, 110, 255),
    5: (60, 120, 220, 255),
    6: (90, 90, 90, 255),
    7: (200, 60, 40, 255),
    8: (110, 40, 110, 255),
    9: (230, 60, 200, 255),
}
FOREST, SHRUB, CROP, BARE, WATER, ROAD, PIT, SLAG, NEWSLAG = range(1, 10)
_BANDS = tuple(REFLECTIVE_BANDS)  # coastal, blue, green, red, nir, swir1, swir2
_SR_MULT, _SR_ADD = 2.75e-05, -0.2
_ST_MULT, _ST_ADD = 0.00341802, 149.0
_NODATA = -9999.0

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


# --------------------------------------------------------------------------- public


@dataclass(frozen=True)
class DemoPaths:
    """Where :func:`make_demo` wrote everything (all paths absolute)."""

    root: Path
    dem: Path
    source_landsat: Path
    target_landsat: Path
    samples_source: Path
    samples_target: Path
    dist_source: Path
    truth: dict[str, Path]
    scene: Path
    info: Path
    unusable_target_ids: dict[str, str] = field(default_factory=dict)


def demo_config_text(data_prefix: str = "", output_dir: str = "out") -> str:
    """The target-year scene job for the demo data, as YAML text.

    Parameters
    ----------
    data_prefix : str
        Prepended to every data path (``""`` when the YAML sits in the demo folder,
        ``"../demo/"`` for ``scenes/demo.yaml`` next to a ``demo/`` folder). Include
        the trailing slash.
    output_dir : str
        ``output.dir`` of the job.

    Returns
    -------
    str
        YAML following the scene-config contract of ``design.md``.

    Examples
    --------
    >>> print(demo_config_text("data/", "out/demo").splitlines()[1])
    landsat: data/target/LC08_L2SP_127036_20191115_20200825_02_T1
    """
    p = data_prefix
    return f"""\
name: demo-target
landsat: {_yq(p + "target/" + TARGET_PRODUCT_ID)}
dem: {_yq(p + "dem.tif")}
covariates:
  dist_source: {_yq(p + "covariates/dist_source.tif")}
samples: {{path: {_yq(p + "samples_target.gpkg")}, id: id, targets: [Cu, Pb], window: 1}}
source:
  landsat: {_yq(p + "source/" + SOURCE_PRODUCT_ID)}
  dem: {_yq(p + "dem.tif")}
  samples: {{path: {_yq(p + "samples_source.gpkg")}, id: id, targets: [Cu, Pb]}}
features: auto
model: {{name: rf, params: {{n_estimators: 200}}}}
validation: {{test_fraction: 0.2, cv_folds: 5, seed: 0}}
risk: {{standard: gb15618, land_use: other, ph: 6.8, indices: [single_factor, nemerow, exceedance]}}
output: {{dir: {_yq(output_dir)}, tile: 512}}
"""


def _yq(s: str) -> str:
    """A YAML scalar for a path: plain when safe, else double-quoted (JSON is YAML)."""
    return (
        s
        if re.fullmatch(r"[A-Za-z0-9_./\\-][A-Za-z0-9_./\\ :-]*", s)
        and ": " not in s
        and not s.endswith(" ")
        else json.dumps(s)
    )


def make_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    size: int = 400,
    pixel: float = 30.0,
) -> DemoPaths:
    """Write the synthetic two-year demo case (see the module docstring).

    Parameters
    ----------
    out_dir : path-like
        Destination folder (created; existing files are replaced).
    seed : int
        Random seed; the same seed gives identical data.
    size : int
        Scene width and height in pixels (at least 64).
    pixel : float
        Pixel size in metres.

    Returns
    -------
    DemoPaths
        The paths written.

    Examples
    --------
    >>> import tempfile
    >>> paths = make_demo(tempfile.mkdtemp(), size=96)
    >>> paths.samples_target.name
    'samples_target.gpkg'
    """
    world = simulate(seed=seed, size=size, pixel=pixel)
    root = Path(out_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    transform = world["transform"]

    def floats(path: Path, arr: np.ndarray, what: str, units: str, tr: Affine = transform) -> Path:
        return write_geotiff(
            path,
            arr,
            crs=CRS,
            transform=tr,
            nodata=_NODATA,
            dtype="float32",
            descriptions=[what],
            units=units,
        )

    dem = floats(root / "dem.tif", world["dem"], "elevation", "m")
    truth = {
        f"{y}_{m}": floats(
            root / "truth" / f"{y}_{m}.tif", world[f"{y}_{m}"], f"{m} ({y} year, truth)", "mg/kg"
        )
        for y in ("source", "target")
        for m in ("Cu", "Pb")
    }
    class_tags = {f"CLASS_{k}": v for k, v in LANDCOVER_CLASSES.items()}
    for key, name in (("landcover_target", "landcover"), ("landcover_source", "landcover_source")):
        truth[name] = write_geotiff(
            root / "truth" / f"{name}.tif",
            world[key],
            crs=CRS,
            transform=transform,
            nodata=0,
            dtype="uint8",
            descriptions=["land cover class"],
            tags=class_tags,
            overview_resampling="nearest",
            colormap=_LC_COLORS,
        )
    cov = world["dist_source"]
    dist = floats(
        root / "covariates" / "dist_source.tif",
        cov["data"],
        "distance to nearest known mining source",
        "m",
        cov["transform"],
    )
    scenes: dict[str, Path] = {}
    for year, pid in (("source", SOURCE_PRODUCT_ID), ("target", TARGET_PRODUCT_ID)):
        sc = world[f"scene_{year}"]
        scenes[year] = root / year / pid
        write_landsat_c2l2(
            scenes[year],
            pid,
            sr=sc["sr"],
            st_b10=sc["st"],
            qa_pixel=sc["qa"],
            crs=CRS,
            transform=transform,
            acquired=sc["date"],
            sun_elevation=sc["sun_elevation"],
            sun_azimuth=sc["sun_azimuth"],
        )
    samples: dict[str, Path] = {}
    for year in ("source", "target"):
        pts = world[f"samples_{year}"]
        columns = {"id": pts["id"], "Cu": pts["Cu"], "Pb": pts["Pb"]}
        gdf = points_from_xy(pts["x"], pts["y"], crs=CRS, data=columns)
        samples[year] = write_points(gdf, root / f"samples_{year}.gpkg", crs="EPSG:4326")
    unusable = dict(world["unusable_target_ids"])
    info = {
        "seed": seed,
        "size": size,
        "pixel": pixel,
        "crs": CRS,
        "landcover_classes": {str(k): v for k, v in LANDCOVER_CLASSES.items()},
        "unusable_target_ids": unusable,
        "source_product_id": SOURCE_PRODUCT_ID,
        "target_product_id": TARGET_PRODUCT_ID,
    }
    texts = {
        root / "truth" / "demo.json": json.dumps(info, indent=2) + "\n",
        root / "scene.yaml": demo_config_text("", "out"),
    }
    for path, text in texts.items():
        write_text(path, text)
    return DemoPaths(
        root=root,
        dem=dem,
        source_landsat=scenes["source"],
        target_landsat=scenes["target"],
        samples_source=samples["source"],
        samples_target=samples["target"],
        dist_source=dist,
        truth=truth,
        scene=root / "scene.yaml",
        info=root / "truth" / "demo.json",
        unusable_target_ids=unusable,
    )


# --------------------------------------------------------------------------- fields


def _smooth_field(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field, correlation length ``sigma`` pixels."""
    m = n + 2 * int(np.ceil(2 * sigma))  # pad against FFT wrap-around
    noise = rng.standard_normal((m, m))
    fy = np.fft.fftfreq(m)[:, None]
    fx = np.fft.rfftfreq(m)[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    f = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(m, m))
    off = (m - n) // 2
    f = f[off : off + n, off : off + n]
    return (f - f.mean()) / f.std()


def _fractal(rng: np.random.Generator, n: int, beta: float = 3.0) -> np.ndarray:
    """Zero-mean, unit-std fractal (power-law spectrum ``f**-beta``) noise."""
    noise = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f2 = fx**2 + fy**2
    f2[0, 0] = np.inf
    f = np.fft.irfft2(np.fft.rfft2(noise) * f2 ** (-beta / 4), s=(n, n))
    return (f - f.mean()) / f.std()


def _disc(
    shape: tuple[int, int],
    r0: float,
    c0: float,
    radius: float,
    wobble: np.ndarray | None = None,
    stretch: float = 1.0,
) -> np.ndarray:
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    d = np.hypot((rr - r0) / stretch, cc - c0) / radius
    if wobble is not None:
        d = d + 0.25 * wobble
    return d < 1.0


def _line_mask(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], width: float
) -> np.ndarray:
    """Pixels within ``width`` pixels of the segment p0-p1 (row, col)."""
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    (r0, c0), (r1, c1) = p0, p1
    dr, dc = r1 - r0, c1 - c0
    t = np.clip(((rr - r0) * dr + (cc - c0) * dc) / max(dr * dr + dc * dc, 1e-9), 0, 1)
    return np.hypot(rr - (r0 + t * dr), cc - (c0 + t * dc)) <= width


def _edt(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (pixels) to the nearest True pixel, and that pixel's (row, col) indices."""
    if not mask.any():
        return np.full(mask.shape, np.inf), np.zeros((2, *mask.shape), dtype=int)
    d, idx = ndimage.distance_transform_edt(~mask, return_indices=True)
    return d, idx


# --------------------------------------------------------------------------- the world


def _terrain(rng: np.random.Generator, n: int, pixel: float) -> dict[str, Any]:
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
    frac = _fractal(rng, n, beta=3.2)
    gullies = _smooth_field(rng, n, 0.025 * n)
    trend = 0.9 * (1.0 - R) + 0.4 * C
    z = 1.0 * ridge + 0.9 * trend + 0.30 * frac - 0.25 * np.abs(gullies)
    dem = 950.0 + 1000.0 * (z - z.min()) / (z.max() - z.min())
    return {"dem": dem, "u": u, "s": s, "R": R, "C": C, "k": k}


def _slope_aspect(dem: np.ndarray, pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect in degrees (aspect clockwise from north; row 0 = north)."""
    dzdy, dzdx = np.gradient(dem, pixel)
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    aspect = (np.degrees(np.arctan2(-dzdx, dzdy)) + 360.0) % 360.0  # downslope direction
    return slope, aspect


def _tpi(dem: np.ndarray, n: int) -> np.ndarray:
    """Standardised topographic position index: > 0 ridges, < 0 valleys."""
    tpi = dem - ndimage.gaussian_filter(dem, 0.04 * n, mode="nearest")
    return tpi / tpi.std()


def _layout(rng: np.random.Generator, ter: dict[str, Any], n: int) -> dict[str, Any]:
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
    wob = _smooth_field(rng, n, 0.02 * n)
    pit = _disc(shape, pr, pc, 0.045 * n, wob, stretch=0.75)
    # Haul road down to the nearest main-road pixel.
    d_road, idx = _edt(road)
    jr, jc = int(idx[0, pr, pc]), int(idx[1, pr, pc])
    haul = _line_mask(shape, (pr, pc), (jr, jc), 0.7)
    # Two slag heaps beside the haul road.
    vr, vc = jr - pr, jc - pc
    norm = max(np.hypot(vr, vc), 1.0)
    side = (-vc / norm, vr / norm)
    slag = np.zeros(shape, bool)
    for f, off, rad in ((0.45, 0.03, 0.024), (0.8, -0.025, 0.02)):
        slag |= _disc(
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
    newslag = _disc(shape, nr + 0.02 * n * side[0], nc + 0.02 * n * side[1], 0.022 * n, wob)
    newslag &= ~(pit | slag)
    # A small pond in a valley away from the mine.
    busy = _edt(road | haul | pit | slag | newslag)[0] < max(0.04 * n, 4.0)
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
    pond = _disc(shape, wr, wc, max(0.018 * n, 2.5), wob, stretch=0.6)
    pond |= _disc(shape, wr, wc, 1.5)
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


def _landcover(
    rng: np.random.Generator,
    dem: np.ndarray,
    slope: np.ndarray,
    tpi: np.ndarray,
    lay: dict[str, Any],
    n: int,
) -> tuple[np.ndarray, np.ndarray]:
    noise1 = _smooth_field(rng, n, 0.015 * n)
    noise2 = _smooth_field(rng, n, 0.03 * n)
    bare_f = _smooth_field(rng, n, 0.01 * n)
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


def _metals(
    rng: np.random.Generator,
    dem: np.ndarray,
    tpi: np.ndarray,
    lay: dict[str, Any],
    lc_src: np.ndarray,
    n: int,
) -> dict[str, np.ndarray]:
    """Cu and Pb truth (mg/kg) for both years."""
    g_bg = _smooth_field(rng, n, 0.03 * n)  # background soil variation (unobservable)
    g_pb = _smooth_field(rng, n, 0.03 * n)
    g_hot = _smooth_field(rng, n, 0.015 * n)  # patchiness of the contamination
    g_hot_pb = _smooth_field(rng, n, 0.015 * n)
    g_year = _smooth_field(rng, n, 0.02 * n)
    micro = rng.standard_normal((4, n, n))

    def decay(mask: np.ndarray, length: float) -> np.ndarray:
        d, idx = _edt(mask)
        z_src = dem[idx[0], idx[1]]
        downslope = 1.0 / (1.0 + np.exp(-(z_src - dem) / 60.0))  # 1 below the source
        return np.exp(-d / (length * n * (0.6 + 1.0 * downslope)))

    e_pit = decay(lay["pit"], 0.09)
    e_slag = decay(lay["slag"], 0.075)
    e_new = decay(lay["newslag"], 0.05)
    d_road, _ = _edt(lay["roads"])
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
    fv_noise = _smooth_field(rng, n, 0.01 * n)
    moist = _smooth_field(rng, n, 0.02 * n)  # soil moisture / organic matter: a confounder
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
    wob = _smooth_field(rng, n, 0.01 * n)
    # Shadows fall away from the sun: direction azimuth + 180 (clockwise from north).
    ang = np.radians(azim + 180.0)
    shift = (-np.cos(ang) * 0.05 * n, np.sin(ang) * 0.05 * n)
    grow = max(1, int(round(0.006 * n)))
    at = np.zeros(shape, bool)
    at[points[:, 0], points[:, 1]] = True
    at = ndimage.binary_dilation(at, iterations=2)

    def footprint(r0: float, c0: float, rad: float) -> tuple[np.ndarray, ...]:
        core = _disc(shape, r0, c0, rad, wob)
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
        others = at & ~_disc(shape, r0, c0, 3)
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


#: Typical Collection 2 QA_PIXEL values (bits and 2-bit confidences; science.md 1.3).
QA_CLEAR = 21824  # clear (bit 6) + low cloud/shadow/snow/cirrus confidence
QA_WATER = 21952  # clear + water (bit 7)
QA_CLOUD = 22282  # dilated (1) + cloud (3) + high cloud confidence
QA_DILATED = 21762  # dilated cloud only, low confidence
QA_SHADOW = 23888  # shadow (4) + high shadow confidence; the clear bit is set, as USGS does
QA_FILL = 1


def _scene(
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
    dn = np.clip(np.round((rho - _SR_ADD) / _SR_MULT), 1, 65535).astype(np.uint16)
    dn[:, fill] = 0
    st_dn = np.clip(np.round((st - _ST_ADD) / _ST_MULT), 1, 65535).astype(np.uint16)
    st_dn[fill] = 0
    return {
        "sr": {b: dn[i] for i, b in enumerate(_BANDS)},
        "st": st_dn,
        "qa": qa,
        "date": date,
        "sun_elevation": elev,
        "sun_azimuth": azim,
        "clouds": cl,
    }


def _place_samples(
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
    transform = Affine(pixel, 0.0, X0, 0.0, -pixel, Y0 + n * pixel)
    ter = _terrain(rng, n, pixel)
    lay = _layout(rng, ter, n)
    dem = ter["dem"]
    pr, pc = lay["pit_rc"]
    rr, cc = np.indices((n, n))
    dpit = np.hypot(rr - pr, cc - pc) / (0.045 * n)
    dem = np.where(lay["pit"], dem - 60.0 * np.clip(1.0 - dpit**2, 0, 1), dem)
    dem = ndimage.gaussian_filter(dem, 0.7)
    slope, aspect = _slope_aspect(dem, pixel)
    tpi = _tpi(dem, n)
    lc_src, lc_tgt = _landcover(rng, dem, slope, tpi, lay, n)
    world: dict[str, Any] = {
        "transform": transform,
        "dem": dem.astype(np.float32),
        "slope": slope,
        "aspect": aspect,
        "tpi": tpi,
        "landcover_source": lc_src,
        "landcover_target": lc_tgt,
        "pit_rc": lay["pit_rc"],
    }
    world.update(_metals(rng, dem, tpi, lay, lc_src, n))
    world["fill"] = (rr + cc) > 1.88 * n  # a no-data corner, as at a scene edge

    # Samples first, so clouds can avoid (or cover) them.
    rs, cs = _place_samples(rng, world, 44, world["fill"])
    taken = np.zeros((n, n), bool)
    taken[rs, cs] = True
    rt, ct = _place_samples(
        rng, world, 42, world["fill"] | ndimage.binary_dilation(taken, iterations=2)
    )
    world["scene_source"] = _scene(
        rng,
        world,
        "source",
        date=_dt.date(2017, 12, 8),
        elev=32.6,
        azim=161.4,
        season=0.85,
        gain=np.ones(7),
        offset=np.zeros(7),
        t_base=281.0,
        points=np.column_stack([rs, cs]),
        cover=None,
    )
    world["scene_target"] = _scene(
        rng,
        world,
        "target",
        date=_dt.date(2019, 11, 15),
        elev=37.9,
        azim=158.2,
        season=1.1,
        gain=np.array([1.05, 1.05, 1.03, 1.02, 0.95, 0.97, 0.98]),
        offset=np.array([0.008, 0.006, 0.004, 0.002, -0.004, 0.003, 0.002]),
        t_base=285.5,
        points=np.column_stack([rt, ct]),
        cover=rng.permutation(rt.size),
    )
    cloud_i = world["scene_target"]["clouds"]["covered"]
    if cloud_i < 0:
        raise RuntimeError("synth: no target point could be put under a cloud; use a larger size")

    def points(rows: np.ndarray, cols: np.ndarray, year: str, prefix: str) -> dict[str, Any]:
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

    world["samples_source"] = points(rs, cs, "source", "S17")
    tgt = points(rt, ct, "target", "S19")
    # One more target point 300-400 m east of the scene (values from the nearest edge pixel).
    er = int(rng.integers(int(0.2 * n), int(0.8 * n)))
    tgt["x"] = np.append(tgt["x"], X0 + n * pixel + rng.uniform(300.0, 400.0))
    tgt["y"] = np.append(tgt["y"], Y0 + (n - er - 0.5) * pixel)
    tgt["row"] = np.append(tgt["row"], er)
    tgt["col"] = np.append(tgt["col"], n)
    edge_cu = world["target_Cu"][er, n - 1] * np.exp(0.05 * rng.standard_normal())
    edge_pb = world["target_Pb"][er, n - 1] * np.exp(0.05 * rng.standard_normal())
    tgt["Cu"] = np.append(tgt["Cu"], np.round(edge_cu, 1))
    tgt["Pb"] = np.append(tgt["Pb"], np.round(edge_pb, 1))
    tgt["id"].append(f"S19-{rt.size + 1:02d}")
    world["samples_target"] = tgt
    world["unusable_target_ids"] = {tgt["id"][cloud_i]: "cloud", tgt["id"][-1]: "outside"}

    # Distance to known sources on a 60 m grid with an offset origin and a nodata rim.
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
    dist[outside] = _NODATA
    world["dist_source"] = {"data": dist, "transform": Affine(cell, 0.0, left, 0.0, -cell, top)}
    return world

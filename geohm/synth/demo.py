"""Write the synthetic two-year demo case: :func:`make_demo` (what ``geohm synth`` runs).

Every array comes from :func:`geohm.synth.world.simulate`; this module only lays
them out as files, through :mod:`geohm.io` (the layout is in :mod:`geohm.synth`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine

from geohm.io.landsat import write_landsat_c2l2
from geohm.io.points import points_from_xy, write_points
from geohm.io.rasters import write_geotiff
from geohm.io.reports import write_csv, write_text
from geohm.io.zones import write_zone_boxes
from geohm.synth.case import (
    CRS,
    LANDCOVER_CLASSES,
    LANDCOVER_COLORS,
    NODATA,
    SOURCE_PRODUCT_ID,
    TARGET_PRODUCT_ID,
)
from geohm.synth.config_text import demo_config_text
from geohm.synth.world import simulate

__all__ = ["DemoPaths", "make_demo"]

#: The two years of the case and their Landsat product ids.
_YEARS = (("source", SOURCE_PRODUCT_ID), ("target", TARGET_PRODUCT_ID))


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
    parcels: Path | None = None


def make_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    size: int = 400,
    pixel: float = 30.0,
    accumulation: bool = False,
) -> DemoPaths:
    """Write the synthetic two-year demo case (the files are listed in :mod:`geohm.synth`).

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
    accumulation : bool
        Also write an illustrative smelter stack at the pit and a wind rose
        (``stacks.csv``, ``wind_rose.csv``) and an ``accumulation:`` block in the scene.

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
    dem = _write_floats(root / "dem.tif", world["dem"], "elevation", "m", transform)
    truth = _write_truth(root, world)
    cov = world["dist_source"]
    dist = _write_floats(
        root / "covariates" / "dist_source.tif",
        cov["data"],
        "distance to nearest known mining source",
        "m",
        cov["transform"],
    )
    scenes = {year: _write_scene(root, world, year, pid) for year, pid in _YEARS}
    samples = {year: _write_samples(root, world, year) for year, _ in _YEARS}
    unusable = dict(world["unusable_target_ids"])
    write_text(root / "truth" / "demo.json", _info_json(seed, size, pixel, unusable))
    parcels = _write_parcels(root, world)
    if accumulation:
        _write_emissions(root, world)
    write_text(root / "scene.yaml", demo_config_text("", "out", accumulation=accumulation))
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
        parcels=parcels,
    )


def _write_floats(path: Path, arr: np.ndarray, what: str, units: str, transform: Affine) -> Path:
    """A float32 GeoTIFF in the demo CRS, nodata -9999, with its description and units."""
    return write_geotiff(
        path,
        arr,
        crs=CRS,
        transform=transform,
        nodata=NODATA,
        dtype="float32",
        descriptions=[what],
        units=units,
    )


def _write_truth(root: Path, world: dict[str, Any]) -> dict[str, Path]:
    """``truth/``: Cu and Pb of both years (mg/kg) and the land cover of both years."""
    truth = {
        f"{y}_{m}": _write_floats(
            root / "truth" / f"{y}_{m}.tif",
            world[f"{y}_{m}"],
            f"{m} ({y} year, truth)",
            "mg/kg",
            world["transform"],
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
            transform=world["transform"],
            nodata=0,
            dtype="uint8",
            descriptions=["land cover class"],
            tags=class_tags,
            overview_resampling="nearest",
            colormap=LANDCOVER_COLORS,
        )
    return truth


def _write_parcels(root: Path, world: dict[str, Any]) -> Path:
    """A 3 x 3 block of square parcels over the middle of the scene (``parcels.gpkg``).

    Each parcel is a sixth of the scene wide; the ids run ``P1`` .. ``P9`` row by row.
    """
    t = world["transform"]
    n = world["dem"].shape[0]
    side = n * t.a / 6.0
    x0, y0 = t.c + n * t.a / 4.0, t.f - n * t.a / 4.0  # top-left of the block
    boxes = {
        f"P{3 * i + j + 1}": (
            x0 + j * side,
            y0 - (i + 1) * side,
            x0 + (j + 1) * side,
            y0 - i * side,
        )
        for i in range(3)
        for j in range(3)
    }
    uses = ["farmland", "farmland", "orchard", "farmland", "village", "orchard", "farmland"]
    return write_zone_boxes(
        boxes,
        root / "parcels.gpkg",
        crs=CRS,
        id_column="parcel_id",
        attributes={"land_use": [uses[k % len(uses)] for k in range(len(boxes))]},
    )


def _write_emissions(root: Path, world: dict[str, Any]) -> None:
    """An illustrative smelter stack at the pit and a 16-sector wind rose (made up).

    The emissions (Cu 20 t/yr, Pb 8 t/yr from a 40 m stack) and the rose (prevailing
    north-westerly, neutral and slightly unstable classes) are invented for the demo.
    """
    t = world["transform"]
    pr, pc = world["pit_rc"]
    x, y = t * (pc + 0.5, pr + 0.5)
    stacks = pd.DataFrame({"x": [x], "y": [y], "height": [40.0], "Cu": [20000.0], "Pb": [8000.0]})
    rows = []
    for k in range(16):
        deg = k * 22.5
        weight = 1.0 + 2.0 * np.cos(np.radians(deg - 315.0)) ** 2 * (abs(deg - 315.0) < 90)
        for speed, cls, share in ((2.0, "C", 0.3), (5.0, "D", 0.7)):
            rows.append(
                {"sector_deg": deg, "speed": speed, "class": cls, "frequency": weight * share}
            )
    rose = pd.DataFrame(rows)
    rose["frequency"] /= rose["frequency"].sum()
    write_csv(root / "stacks.csv", stacks.set_index("x"))
    write_csv(root / "wind_rose.csv", rose.set_index("sector_deg"))


def _write_scene(root: Path, world: dict[str, Any], year: str, product_id: str) -> Path:
    """``<year>/<product_id>/``: the year's Landsat Collection 2 Level-2 folder."""
    sc = world[f"scene_{year}"]
    folder = root / year / product_id
    write_landsat_c2l2(
        folder,
        product_id,
        sr=sc["sr"],
        st_b10=sc["st"],
        qa_pixel=sc["qa"],
        crs=CRS,
        transform=world["transform"],
        acquired=sc["date"],
        sun_elevation=sc["sun_elevation"],
        sun_azimuth=sc["sun_azimuth"],
    )
    return folder


def _write_samples(root: Path, world: dict[str, Any], year: str) -> Path:
    """``samples_<year>.gpkg``: the year's points in EPSG:4326 with ``id``, ``Cu``, ``Pb``."""
    pts = world[f"samples_{year}"]
    columns = {"id": pts["id"], "Cu": pts["Cu"], "Pb": pts["Pb"]}
    gdf = points_from_xy(pts["x"], pts["y"], crs=CRS, data=columns)
    return write_points(gdf, root / f"samples_{year}.gpkg", crs="EPSG:4326")


def _info_json(seed: int, size: int, pixel: float, unusable: dict[str, str]) -> str:
    """``truth/demo.json``: seed, size, class table, unusable target point ids."""
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
    return json.dumps(info, indent=2) + "\n"

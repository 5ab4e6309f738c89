"""Provenance files of an output folder: ``run.json`` and the STAC Item; file facts and hashes.

:mod:`geohm.pipeline.provenance` assembles the two records as plain dicts; this module
does what needs the files: the sha256 of the job's input files (read in chunks, so a
large band or covariate never sits in memory), the facts of each output read back from
the written files (a GeoTIFF's grid, CRS, data type, nodata and band units; a PNG's
size), the footprint of the grid in WGS 84, and the atomic writing of the two JSON files
(:func:`geohm.io.reports.write_json`).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path, PurePath
from typing import Any

from pydantic import BaseModel

from geohm.io.manifest import NEUTRAL_SETTINGS
from geohm.io.outnames import MANIFEST_NAME
from geohm.io.reports import write_json

__all__ = [
    "ARTIFACT_TYPE",
    "ITEM_NAME",
    "MEDIA_TYPES",
    "RUN_NAME",
    "asset_key",
    "asset_roles",
    "canonical_config",
    "config_sha256",
    "describe_outputs",
    "file_asset",
    "file_sha256",
    "footprint_wgs84",
    "hash_files",
    "packaged_sha256",
    "relative_href",
    "write_provenance_files",
]

#: The provenance record of a run (config, input hashes, model card, outputs).
RUN_NAME = "run.json"
#: The STAC Item describing the folder's outputs and the model.
ITEM_NAME = "stac_item.json"

#: Bytes read at a time when hashing a file.
_CHUNK = 1 << 20

_cache_lock = threading.Lock()
#: sha256 by (real path, size, mtime_ns): a batch's scenes often share a DEM.
_hash_cache: dict[tuple[str, int, int], str] = {}


def canonical_config(config: BaseModel) -> dict[str, Any]:
    """The config as hashed: JSON-mode dump, :data:`~geohm.io.manifest.NEUTRAL_SETTINGS` left out.

    Parameters
    ----------
    config : pydantic model
        A validated scene config (paths already absolute).

    Returns
    -------
    dict
        What :func:`config_sha256` hashes (the folder, worker count and window size,
        which cannot change the maps, are not in it).
    """
    data: dict[str, Any] = config.model_dump(mode="json", exclude=NEUTRAL_SETTINGS)
    return data


def config_sha256(config: BaseModel | Mapping[str, Any]) -> str:
    """The sha256 (hex) of the canonical config JSON: keys sorted, no spaces, ASCII.

    The same hash as ``config_sha256`` in ``manifest.json``
    (:func:`geohm.io.manifest.job_fingerprint`) and in every GeoTIFF's tags.

    Parameters
    ----------
    config : pydantic model or mapping
        A scene config, or an already canonical dict (:func:`canonical_config`; the
        ``config`` of ``run.json``).

    Returns
    -------
    str
        64 hex digits.
    """
    data = canonical_config(config) if isinstance(config, BaseModel) else dict(config)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 (hex) of a file, read 1 MiB at a time.

    A file already hashed in this process with the same size and mtime is not read again.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
        64 hex digits.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    p = Path(path)
    st = p.stat()
    key = (os.path.realpath(p), st.st_size, st.st_mtime_ns)
    with _cache_lock:
        known = _hash_cache.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    out = digest.hexdigest()
    with _cache_lock:
        _hash_cache[key] = out
    return out


def hash_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, dict[str, Any]]:
    """Size and sha256 of each file; a missing or unreadable one is recorded as such.

    Parameters
    ----------
    paths : iterable of path-like
        The files (a job's inputs: :attr:`geohm.io.manifest.Job.inputs`).

    Returns
    -------
    dict
        ``str(path)`` -> ``{"size": bytes, "sha256": hex}``, or ``{"size": -1,
        "sha256": None, "error": why}`` for a file that cannot be read.
    """
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        p = Path(path)
        try:
            out[str(path)] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
        except OSError as exc:
            out[str(path)] = {"size": -1, "sha256": None, "error": exc.strerror or str(exc)}
    return out


def packaged_sha256(package: str, filename: str) -> str:
    """The sha256 (hex) of a data file shipped inside a geohm package (a standards table)."""
    data = resources.files(package).joinpath(filename).read_bytes()
    return hashlib.sha256(data).hexdigest()


def describe_outputs(folder: str | os.PathLike[str], names: Iterable[str]) -> dict[str, Any]:
    """What each output file is, read back from the file (headers only, no pixels).

    Parameters
    ----------
    folder : path-like
        The output folder.
    names : iterable of str
        File names in ``folder``.

    Returns
    -------
    dict
        name -> facts. A GeoTIFF: ``kind="raster"``, ``dtype``, ``nodata``, ``shape``
        ``[rows, cols]``, ``transform`` (6 numbers, rasterio order), ``bounds``
        ``[left, bottom, right, top]`` (CRS units), ``crs_code`` (``"EPSG:32649"`` or
        None), ``crs_wkt2``, ``resolution`` (x pixel size, CRS units), ``bands``
        (``description`` and ``unit`` of each) and ``tags`` (dataset metadata). A PNG:
        ``kind="image"``, ``shape``. Anything else: ``kind="file"``. Every entry has
        ``size`` (bytes; -1 when the file does not exist yet, e.g. ``manifest.json``).
    """
    base = Path(folder)
    out: dict[str, Any] = {}
    for name in names:
        p = base / name
        try:
            size = p.stat().st_size
        except OSError:
            out[name] = {"kind": "file", "size": -1}
            continue
        suffix = p.suffix.lower()
        if suffix in (".tif", ".tiff"):
            out[name] = {**_raster_facts(p), "size": size}
        elif suffix == ".png":
            out[name] = {"kind": "image", "shape": _png_shape(p), "size": size}
        else:
            out[name] = {"kind": "file", "size": size}
    return out


def _raster_facts(path: Path) -> dict[str, Any]:
    import rasterio

    with rasterio.open(path) as ds:
        crs = ds.crs
        epsg = crs.to_epsg() if crs is not None else None
        nodata = ds.nodata
        return {
            "kind": "raster",
            "dtype": ds.dtypes[0],
            "nodata": None if nodata is None else float(nodata),
            "shape": [ds.height, ds.width],
            "transform": [float(v) for v in list(ds.transform)[:6]],
            "bounds": [float(v) for v in ds.bounds],
            "crs_code": f"EPSG:{epsg}" if epsg is not None else None,
            "crs_wkt2": crs.to_wkt(version="WKT2_2019") if crs is not None else None,
            "resolution": float(abs(ds.transform.a)),
            "bands": [
                {"description": ds.descriptions[i] or "", "unit": ds.units[i] or ""}
                for i in range(ds.count)
            ],
            "tags": dict(ds.tags()),
        }


def _png_shape(path: Path) -> list[int] | None:
    """[height, width] of a PNG from its IHDR chunk (None: not a PNG)."""
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return [int(height), int(width)]


def footprint_wgs84(
    crs: str, bounds: tuple[float, float, float, float] | list[float], *, densify: int = 5
) -> tuple[dict[str, Any], list[float]]:
    """The footprint of a box in WGS 84 longitude/latitude (GeoJSON) and its bbox.

    Each edge is densified with ``densify`` points before it is reprojected, so that the
    curved edges of a UTM box are followed within a fraction of a pixel.

    Parameters
    ----------
    crs : str
        The box's CRS (WKT or an authority string).
    bounds : sequence of 4 floats
        ``(left, bottom, right, top)`` in ``crs`` units.
    densify : int
        Points per edge.

    Returns
    -------
    (dict, list of float)
        A GeoJSON Polygon (counter-clockwise exterior ring, closed) and ``[west, south,
        east, north]`` in degrees.
    """
    import numpy as np
    from rasterio.warp import transform as warp

    left, bottom, right, top = (float(b) for b in bounds)
    t = np.linspace(0.0, 1.0, densify)[:-1]
    xs = np.concatenate(
        [
            left + (right - left) * t,
            np.full_like(t, right),
            right - (right - left) * t,
            np.full_like(t, left),
        ]
    )
    ys = np.concatenate(
        [
            np.full_like(t, bottom),
            bottom + (top - bottom) * t,
            np.full_like(t, top),
            top - (top - bottom) * t,
        ]
    )
    lon, lat = warp(crs, "EPSG:4326", xs.tolist(), ys.tolist())
    ring = [[round(float(x), 7), round(float(y), 7)] for x, y in zip(lon, lat, strict=True)]
    ring.append(ring[0])
    bbox = [min(lon), min(lat), max(lon), max(lat)]
    return {"type": "Polygon", "coordinates": [ring]}, [round(float(v), 7) for v in bbox]


def write_provenance_files(
    folder: str | os.PathLike[str], run: Mapping[str, Any], item: Mapping[str, Any]
) -> list[Path]:
    """Write ``run.json`` and ``stac_item.json`` into ``folder``, each atomically.

    Parameters
    ----------
    folder : path-like
        The output folder.
    run, item : mapping
        The provenance record and the STAC Item (:mod:`geohm.pipeline.provenance`).

    Returns
    -------
    list of Path
        The two files written.

    Raises
    ------
    OutputError
        A write failed (the message names the device and the file); nothing is left
        under the final name.
    """
    base = Path(folder)
    return [write_json(base / RUN_NAME, dict(run)), write_json(base / ITEM_NAME, dict(item))]


# --------------------------------------------------------------------------- STAC assets

#: How ``model.geohm`` is written (``mlm:artifact_type``): a zip of skops objects.
ARTIFACT_TYPE = "geohm.io.models.save_model"
#: Media type of each output suffix.
MEDIA_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".png": "image/png",
    ".gpkg": "application/geopackage+sqlite3",
    ".csv": "text/csv",
    ".json": "application/json",
    ".md": "text/markdown",
    ".qml": "application/xml",
    ".geohm": "application/zip",
}


def asset_roles(name: str) -> list[str]:
    """The STAC roles of an output file, by its name.

    GeoTIFFs, GeoPackages and CSV tables are ``data``; PNG map quicklooks ``overview``
    (the drivers figures ``metadata``); styles, reports and manifests ``metadata``;
    ``model.geohm`` ``mlm:model`` and ``model``.

    Examples
    --------
    >>> asset_roles("Cu_concentration.tif"), asset_roles("Cu_concentration.png")
    (['data'], ['overview'])
    >>> asset_roles("model.geohm")
    ['mlm:model', 'model']
    """
    suffix = PurePath(name).suffix.lower()
    if suffix in (".tif", ".tiff", ".gpkg", ".csv"):
        return ["data"]
    if suffix == ".geohm":
        return ["mlm:model", "model"]
    if suffix == ".png":
        return ["metadata"] if name.endswith("_drivers.png") else ["overview"]
    return ["metadata"]


def file_asset(name: str, fact: Mapping[str, Any]) -> dict[str, Any]:
    """The STAC asset of one output file (its href relative: ``./NAME``).

    Parameters
    ----------
    name : str
        The file name.
    fact : mapping
        What :func:`describe_outputs` found: a GeoTIFF gets ``proj:`` fields and
        ``raster:bands`` (data type, nodata, unit, resolution); a PNG quicklook
        ``proj:code: null`` and its ``proj:shape`` (not georeferenced).

    Returns
    -------
    dict
    """
    suffix = PurePath(name).suffix.lower()
    asset: dict[str, Any] = {"href": f"./{name}"}
    if suffix in MEDIA_TYPES:
        asset["type"] = MEDIA_TYPES[suffix]
    roles = asset_roles(name)
    if fact.get("kind") == "raster":
        bands = fact.get("bands") or []
        if bands and bands[0].get("description"):
            asset["title"] = bands[0]["description"]
        asset.update(
            {
                "proj:code": fact["crs_code"],
                "proj:wkt2": fact["crs_wkt2"],
                "proj:shape": fact["shape"],
                "proj:transform": fact["transform"],
                "proj:bbox": fact["bounds"],
                "raster:bands": [
                    {
                        "name": PurePath(name).stem
                        if len(bands) == 1
                        else f"{PurePath(name).stem}_{i}",
                        "data_type": fact["dtype"],
                        **_nodata(fact.get("nodata")),
                        "unit": b.get("unit") or "1",
                        "spatial_resolution": fact["resolution"],
                        "sampling": "area",
                    }
                    for i, b in enumerate(bands, start=1)
                ],
            }
        )
    elif fact.get("kind") == "image":  # a quicklook figure: not georeferenced
        stem = PurePath(name).stem
        title = f"what drives {stem[: -len('_drivers')]}" if "metadata" in roles else stem
        asset.update({"title": f"quicklook: {title}", "proj:code": None, "proj:wkt2": None})
        if fact.get("shape"):
            asset["proj:shape"] = fact["shape"]
    elif suffix == ".geohm":
        asset["title"] = "the fitted models (geohm predict --model)"
        asset["mlm:artifact_type"] = ARTIFACT_TYPE
    elif suffix == ".qml":
        asset["title"] = f"QGIS style of {PurePath(name).stem}"
    elif name == MANIFEST_NAME:
        asset["title"] = "what the job read and wrote (written last; sha256 of every output)"
    asset["roles"] = roles
    return asset


def _nodata(value: float | None) -> dict[str, Any]:
    if value is None:
        return {}
    if value != value:
        return {"nodata": "nan"}
    if value in (float("inf"), float("-inf")):
        return {"nodata": "inf" if value > 0 else "-inf"}
    return {"nodata": int(value) if float(value).is_integer() else value}


def asset_key(name: str, taken: Mapping[str, Any]) -> str:
    """The asset key of a file (unique in ``taken``).

    GeoTIFFs and GeoPackages by their stem, ``model.geohm`` as ``model``, anything else
    by stem and suffix (``Cu_concentration_png``).
    """
    p = PurePath(name)
    suffix = p.suffix.lower().lstrip(".")
    if suffix == "geohm":
        key = "model"
    else:
        key = p.stem if suffix in ("tif", "tiff", "gpkg") else f"{p.stem}_{suffix}"
    if key in taken:
        key = name
    return key


def relative_href(target: Path, folder: Path) -> str:
    """``target`` relative to ``folder`` as an href (``./`` or ``../``, POSIX separators).

    Its file URI when there is no relative path (another drive).
    """
    try:
        rel = os.path.relpath(target, folder)
    except ValueError:  # another drive (Windows)
        return target.as_uri()
    rel = PurePath(rel).as_posix()
    return rel if rel.startswith("../") else f"./{rel}"

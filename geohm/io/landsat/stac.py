"""Landsat Collection 2 Level-2 scenes found through STAC, read as COGs over HTTP.

:func:`find_stac_item` reads a static STAC document (an Item, or the least cloudy
matching item of a Catalog, Collection or ItemCollection); :func:`search_stac_api` asks
a STAC API (``pystac-client``). :func:`open_stac_landsat` and :func:`open_stac_qa` give
what ``open_landsat`` and ``open_qa`` give for the scene's folder, bit for bit. Assets
are found by key (``blue``, ``nir08``, ``lwir11``, ``qa_pixel``) or ``eo:bands`` common
name; scale and offset come from ``raster:bands``, else the MTL asset (``mtl.txt``).
GDAL reads them (``/vsicurl/`` for HTTP) one dask chunk at a time, by range requests,
under a :class:`rasterio.Env` with ``GDAL_HTTP_MAX_RETRY`` / ``GDAL_HTTP_RETRY_DELAY``
(unless the environment sets them); a failure is an InputError naming the asset URL.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from dask.base import tokenize
from rasterio.errors import RasterioError
from rasterio.windows import Window
from rioxarray.rioxarray import affine_to_coords

from geohm.errors import GridError, InputError
from geohm.io.landsat.mtl import (
    L1_LEVELS,
    REFLECTIVE_BANDS,
    SR_GROUP,
    ST_GROUP,
    get_number,
    read_mtl,
)
from geohm.io.landsat.qa import DEFAULT_MASK, bitmask, check_mask_names
from geohm.io.landsat.reader import _dn_to_float, _stack, _wanted_bands
from geohm.io.reading import window_index

if TYPE_CHECKING:
    import pystac

__all__ = [
    "STAC_ASSETS",
    "ItemFilter",
    "find_stac_item",
    "least_cloudy",
    "open_stac_landsat",
    "open_stac_qa",
    "search_stac_api",
]

#: Per geohm band: the asset keys, then the ``eo:bands`` common names, it is found by.
STAC_ASSETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "coastal": (("coastal", "SR_B1"), ("coastal",)),
    "blue": (("blue", "SR_B2"), ("blue",)),
    "green": (("green", "SR_B3"), ("green",)),
    "red": (("red", "SR_B4"), ("red",)),
    "nir": (("nir08", "nir", "SR_B5"), ("nir08", "nir")),
    "swir1": (("swir16", "swir1", "SR_B6"), ("swir16",)),
    "swir2": (("swir22", "swir2", "SR_B7"), ("swir22",)),
    "thermal": (("lwir11", "lwir", "ST_B10"), ("lwir11", "lwir")),
}
_QA_KEYS = ("qa_pixel", "QA_PIXEL")
_MTL_KEYS = ("mtl.txt", "MTL.txt", "MTL_TXT", "mtl_txt")
#: GDAL's HTTP retries (count, seconds between) unless the environment sets them.
_RETRY_DEFAULTS = {"GDAL_HTTP_MAX_RETRY": "3", "GDAL_HTTP_RETRY_DELAY": "1"}
_FILL = 0.0  # DN of fill in every C2 band, as open_landsat reads it


def _http_env() -> rasterio.Env:
    """The GDAL settings every asset is opened under: retries, no directory listing."""
    options = {k: os.environ.get(k, v) for k, v in _RETRY_DEFAULTS.items()}
    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", **options)


def _gdal_path(href: str) -> str:
    """The GDAL path of an asset: ``/vsicurl/`` for HTTP(S), ``/vsis3/``, ``/vsigs/``."""
    scheme, sep, rest = href.partition("://")
    vsi = {"s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/", "file": ""}.get(scheme)
    if not sep or scheme in ("http", "https"):
        return f"/vsicurl/{href}" if sep else href
    if vsi is not None:
        return vsi + rest
    raise InputError(f"STAC asset '{href}': geohm reads http(s)://, s3://, gs://, az:// or files")


# --------------------------------------------------------------------------- finding items


def _read_document(href: str) -> Any:
    """The STAC object (Item, Catalog, Collection or ItemCollection) at ``href``."""
    import pystac

    try:
        data = pystac.StacIO.default().read_json(href)
        if isinstance(data, dict) and data.get("type") == "FeatureCollection":
            return pystac.ItemCollection.from_dict(data, preserve_dict=False)
        return pystac.read_dict(data, href=href)
    except Exception as exc:  # urllib/urllib3, OSError, JSON and STAC errors alike
        cause = exc.__cause__ or exc
        raise InputError(
            f"STAC document '{href}' cannot be read ({type(cause).__name__}: {cause}); check "
            "that the file or URL exists and is a STAC Item, Catalog or Collection JSON"
        ) from exc


def _item_interval(item: pystac.Item) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """The acquisition instant of an item, or its ``start_datetime``/``end_datetime``."""
    from pystac.utils import str_to_datetime

    if item.datetime is not None:
        return item.datetime, item.datetime
    ends = (item.properties.get(k) for k in ("start_datetime", "end_datetime"))
    first, last = (str_to_datetime(t) if t else None for t in ends)
    return first, last


def _utc(t: _dt.datetime) -> _dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=_dt.UTC)  # naive: UTC


@dataclass(frozen=True)
class ItemFilter:
    """Which STAC items may be read: acquisition range, area, cloud cover, collection.

    Parameters
    ----------
    start, end : datetime, optional
        Inclusive acquisition range (UTC when naive); an item's range must overlap it.
    bbox : sequence of 4 float, optional
        ``[west, south, east, north]`` in degrees (WGS 84) the item's ``bbox`` intersects.
    max_cloud : float, optional
        Largest ``eo:cloud_cover`` accepted, in percent; items without one are left out.
    collection : str, optional
        The collection id the item must have.
    """

    start: _dt.datetime | None = None
    end: _dt.datetime | None = None
    bbox: Sequence[float] | None = None
    max_cloud: float | None = None
    collection: str | None = None

    def why_not(self, item: pystac.Item) -> str | None:
        """The filter that leaves ``item`` out (``None``: it passes them all)."""
        if self.collection is not None and item.collection_id != self.collection:
            return "collection"
        if self.start is not None or self.end is not None:
            first, last = _item_interval(item)
            if first is None or last is None:
                return "datetime"
            if (self.start and _utc(last) < self.start) or (self.end and _utc(first) > self.end):
                return "datetime"
        if (w := self.bbox) is not None:
            b = item.bbox
            if b is not None and len(b) == 6:  # [west, south, low, east, north, high]
                b = [b[0], b[1], b[3], b[4]]
            if b is None or not (b[0] <= w[2] and w[0] <= b[2] and b[1] <= w[3] and w[1] <= b[3]):
                return "bbox"
        if self.max_cloud is not None:
            cloud = item.properties.get("eo:cloud_cover")
            if cloud is None or float(cloud) > self.max_cloud:
                return "max_cloud"
        return None


def least_cloudy(
    items: Iterable[pystac.Item], where: ItemFilter | None = None, *, source: str = "the items"
) -> pystac.Item:
    """The least cloudy item that passes every filter of ``where``.

    Parameters
    ----------
    items : iterable of pystac.Item
        The candidates.
    where : ItemFilter, optional
        The filters (none: every item).
    source : str
        How messages name the origin of ``items``.

    Returns
    -------
    pystac.Item
        The lowest ``eo:cloud_cover`` (items without one last); ties go to the earlier
        acquisition, then the smaller id.

    Raises
    ------
    InputError
        No item passes; the message counts the items each filter left out.
    """
    where = where or ItemFilter()
    kept: list[pystac.Item] = []
    left_out: dict[str, int] = {}
    for item in items:
        if (why := where.why_not(item)) is None:
            kept.append(item)
        else:
            left_out[why] = left_out.get(why, 0) + 1

    def order(item: pystac.Item) -> tuple[float, _dt.datetime, str]:
        cloud, first = item.properties.get("eo:cloud_cover"), _item_interval(item)[0]
        when = _utc(first) if first is not None else _dt.datetime.max.replace(tzinfo=_dt.UTC)
        return (math.inf if cloud is None else float(cloud), when, item.id)

    if not kept:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(left_out.items()))
        raise InputError(
            f"no Landsat item in {source} matches the 'landsat' STAC block "
            f"({sum(left_out.values())} item(s) read; left out by {why}); widen 'datetime', "
            "'bbox' or 'max_cloud', or check 'collection'"
            if left_out
            else f"{source} holds no STAC item; give a STAC API as 'stac_api', not 'stac'"
        )
    return min(kept, key=order)


def find_stac_item(href: str, where: ItemFilter | None = None) -> pystac.Item:
    """The Landsat item of a static STAC document (file or URL).

    Parameters
    ----------
    href : str
        A STAC Item JSON, or a Catalog / Collection (searched recursively) or an
        ItemCollection (a GeoJSON FeatureCollection of items).
    where : ItemFilter, optional
        Which item to take (:func:`least_cloudy`); an Item given directly must pass too.

    Returns
    -------
    pystac.Item

    Raises
    ------
    InputError
        The document cannot be read, or no item matches (the message says why).
    """
    import pystac

    obj = _read_document(href)
    if isinstance(obj, pystac.Item):
        items: Iterable[pystac.Item] = [obj]
    elif isinstance(obj, pystac.ItemCollection):
        items = list(obj)
    elif isinstance(obj, pystac.Catalog):  # a Collection is a Catalog
        try:
            items = list(obj.get_items(recursive=True))
        except Exception as exc:  # a child or item link that cannot be read
            raise InputError(
                f"STAC catalogue '{href}': a child or item cannot be read ({exc}); check its links"
            ) from exc
    else:
        raise InputError(f"STAC document '{href}' is a {type(obj).__name__}, not items")
    return least_cloudy(items, where, source=f"'{href}'")


def search_stac_api(url: str, where: ItemFilter, *, max_items: int = 1000) -> pystac.Item:
    """The least cloudy Landsat item a STAC API search returns (``pystac-client``).

    Parameters
    ----------
    url : str
        Root URL of the STAC API (e.g. ``https://earth-search.aws.element84.com/v1``).
    where : ItemFilter
        The search: its ``collection`` and ``bbox`` are required.
    max_items : int
        Most items the search pages through.

    Returns
    -------
    pystac.Item

    Raises
    ------
    InputError
        ``pystac-client`` is not installed, the API cannot be searched, or nothing matches.
    """
    try:
        from pystac_client import Client
    except ImportError:
        raise InputError("'stac_api' needs pystac-client: pip install 'geohm[stac]'") from None
    try:
        search = Client.open(url).search(
            collections=[where.collection] if where.collection else None,
            bbox=list(where.bbox) if where.bbox else None,
            datetime=[where.start, where.end],
            max_items=max_items,
        )
        items = list(search.items())
    except Exception as exc:  # HTTP, JSON and API errors alike
        raise InputError(
            f"STAC API '{url}' cannot be searched ({type(exc).__name__}: {exc}); check the URL "
            "and the collection id"
        ) from exc
    return least_cloudy(items, where, source=f"the search of '{url}'")


# --------------------------------------------------------------------------- reading bands


@dataclass(frozen=True)
class _Asset:
    """A single-band COG asset, read window by window (every read opens it afresh).

    An array-like for :func:`dask.array.from_array`: only the bounding window of an
    index is requested.
    """

    key: str
    url: str
    what: str
    crs: Any
    transform: Affine
    shape: tuple[int, int]
    dtype: np.dtype[Any]
    ndim: int = 2

    def read(self, row: int, col: int, rows: int, cols: int) -> np.ndarray:
        """Pixels ``[row:row+rows, col:col+cols]`` of band 1, as stored."""
        try:
            with _http_env(), rasterio.open(_gdal_path(self.url)) as src:
                return src.read(1, window=Window(col, row, cols, rows))
        except RasterioError as exc:
            raise _read_error(self.url, self.what, exc) from exc

    def __getitem__(self, key: Any) -> np.ndarray:
        return np.asarray(window_index(self.read, self.shape, key), dtype=self.dtype)


def _read_error(url: str, what: str, exc: Exception) -> InputError:
    return InputError(
        f"{what} '{url}' cannot be read ({exc}); check that the URL is reachable (network, proxy, "
        "credentials or token) and serves a GeoTIFF with HTTP range requests, then run again"
    )


def _open_asset(key: str, url: str, what: str) -> _Asset:
    """Open ``url`` once (its header) for its grid; InputError naming it on failure."""
    try:
        with _http_env(), rasterio.open(_gdal_path(url)) as src:
            if src.count != 1:
                raise InputError(f"{what} '{url}' has {src.count} bands, expected 1")
            shape, dtype = (src.height, src.width), np.dtype(src.dtypes[0])
            return _Asset(key, url, what, src.crs, src.transform, shape, dtype)
    except RasterioError as exc:
        raise _read_error(url, what, exc) from exc


def _lazy(asset: _Asset, chunks: int | None) -> xr.DataArray:
    """The raw values of ``asset`` as a lazy ``(y, x)`` DataArray on its grid."""
    rows, cols = asset.shape
    size = (rows, cols) if chunks is None else (chunks, chunks)
    data = dask.array.from_array(
        asset,
        chunks=size,
        name=f"stac-{asset.key}-{tokenize(asset.url, asset.shape, str(asset.dtype), size)}",
        meta=np.empty((0, 0), dtype=asset.dtype),
    )
    coords = affine_to_coords(asset.transform, cols, rows)
    da = xr.DataArray(data, dims=("y", "x"), coords=coords)
    return da.rio.write_crs(asset.crs).rio.write_transform(asset.transform)


def _fields(asset: pystac.Asset) -> Mapping[str, Any]:
    """An asset's fields and its first ``raster:bands``, ``eo:bands`` (1.0) or ``bands`` (1.1)."""
    out: dict[str, Any] = dict(asset.extra_fields)
    for key in ("raster:bands", "eo:bands", "bands"):
        entries = asset.extra_fields.get(key)
        if isinstance(entries, list) and entries and isinstance(entries[0], dict):
            out.update(entries[0])
    return out


def _find_asset(
    item: pystac.Item, keys: Sequence[str], common: Sequence[str]
) -> tuple[str, pystac.Asset] | None:
    """The asset of a band: by key first, then by ``eo:bands`` common name."""
    for key in keys:
        if key in item.assets:
            return key, item.assets[key]
    for key, asset in item.assets.items():
        fields = _fields(asset)
        if {fields.get("common_name"), fields.get("eo:common_name")} & set(common):
            return key, asset
    return None


def _scale(fields: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(scale, offset)`` of ``raster:bands`` (or STAC 1.1 ``raster:scale``), if given."""
    for prefix in ("", "raster:"):
        if fields.get(prefix + "scale") is not None:
            return float(fields[prefix + "scale"]), float(fields.get(prefix + "offset") or 0.0)
    return None


class _ItemMtl:
    """The MTL asset of an item (``url``), fetched and parsed once when first needed."""

    def __init__(self, item: pystac.Item) -> None:
        self.item = item
        self._mtl: dict[str, dict[str, str]] | None = None
        assets = item.assets
        self.url = next((assets[k].get_absolute_href() for k in _MTL_KEYS if k in assets), None)
        self.name = Path((self.url or "scene_MTL.txt").split("?")[0]).name

    def get(self) -> dict[str, dict[str, str]]:
        import pystac

        if self.url is None:
            raise InputError(
                f"STAC item '{self.item.id}' gives no 'raster:bands' scale and offset for its "
                "bands and has no MTL asset (mtl.txt) to read them from; use an item with either"
            )
        if self._mtl is None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / self.name
                try:
                    path.write_text(pystac.StacIO.default().read_text(self.url), encoding="utf-8")
                    self._mtl = read_mtl(path)
                except Exception as exc:  # HTTP errors, or not an MTL
                    msg = str(exc).replace(str(path), self.name)
                    raise InputError(f"MTL asset '{self.url}' cannot be read ({msg})") from exc
        return self._mtl


def _level(item: pystac.Item, mtl: _ItemMtl) -> str:
    """The processing level: ``landsat:correction``, or the MTL's; Level-1 is refused."""
    level = item.properties.get("landsat:correction")
    if level is None and mtl.url is not None:
        level = mtl.get().get("PRODUCT_CONTENTS", {}).get("PROCESSING_LEVEL")
    if level in L1_LEVELS:
        raise InputError(
            f"STAC item '{item.id}' is a Level-1 product ({level}); through STAC geohm reads "
            "Collection 2 Level-2 items (surface reflectance, e.g. collection landsat-c2-l2)"
        )
    return str(level or "L2SP")


def _scale_offset(name: str, key: str, asset: pystac.Asset, mtl: _ItemMtl) -> tuple[float, float]:
    """Scale and offset of band ``name``: from ``raster:bands``, else from the MTL."""
    found = _scale(_fields(asset))
    if found is not None:
        return found
    groups, path = mtl.get(), Path(mtl.name)
    if name == "thermal":
        group, keys = ST_GROUP, ("TEMPERATURE_MULT_BAND_ST_B10", "TEMPERATURE_ADD_BAND_ST_B10")
    else:
        n = REFLECTIVE_BANDS[name]
        group, keys = SR_GROUP, (f"REFLECTANCE_MULT_BAND_{n}", f"REFLECTANCE_ADD_BAND_{n}")
    try:
        return get_number(groups, group, keys[0], path), get_number(groups, group, keys[1], path)
    except InputError as exc:
        raise InputError(
            f"STAC asset '{key}' has no 'raster:bands' scale, and the MTL asset '{mtl.url}': {exc}"
        ) from None


def _check_grids(assets: Sequence[_Asset]) -> None:
    first = assets[0]
    for other in assets[1:]:
        if (other.shape, other.crs) != (first.shape, first.crs) or not (
            other.transform.almost_equals(first.transform, precision=1e-6)
        ):
            raise GridError(
                f"STAC assets '{first.url}' ({first.key}) and '{other.url}' ({other.key}) are "
                "on different grids; geohm reads the 30 m bands and QA_PIXEL of one scene"
            )


def _qa_asset(item: pystac.Item, mask: Sequence[str]) -> _Asset:
    found = _find_asset(item, _QA_KEYS, ())
    if found is None:
        raise InputError(
            f"STAC item '{item.id}' has no 'qa_pixel' asset, needed to mask "
            f"{', '.join(mask) or 'clouds'}; use a Collection 2 Level-2 item, or 'qa_mask: []'"
        )
    key, asset = found
    return _open_asset(key, asset.get_absolute_href() or "", f"QA_PIXEL asset '{key}'")


def open_stac_landsat(
    item: pystac.Item,
    *,
    mask: Sequence[str] = DEFAULT_MASK,
    chunks: int | None = 512,
    bands: Sequence[str] | None = None,
) -> xr.DataArray:
    """Open a Landsat C2 L2 STAC item as the lazy stack :func:`open_landsat` gives.

    Parameters
    ----------
    item : pystac.Item
        The item (:func:`find_stac_item`, :func:`search_stac_api`).
    mask : sequence of str
        QA_PIXEL conditions set to NaN (keys of :data:`~geohm.io.landsat.QA_BITS`);
        ``()`` reads without the ``qa_pixel`` asset. DN 0 (fill) is NaN in any case.
    chunks : int, optional
        Dask chunk size in pixels (one request window); ``None``: one chunk per band.
    bands : sequence of str, optional
        A subset of :data:`~geohm.io.landsat.BAND_NAMES`; default every band the item
        has (``thermal`` when it has ``lwir11``).

    Returns
    -------
    xarray.DataArray
        float32 ``(band, y, x)``, as ``open_landsat``: reflectance (0-1), ``thermal`` in
        kelvin, ``float32(DN) * float32(scale) + float32(offset)``; attrs as there
        (``product_id`` is the item id, ``source`` its href, ``sun_elevation`` NaN
        without ``view:sun_elevation``).

    Raises
    ------
    InputError
        A band or QA asset missing or unreachable (named), no scale, a Level-1 item.
    GridError
        The assets are not on one grid.
    ConfigError
        Unknown name in ``mask`` or ``bands``.
    """
    mask = check_mask_names(mask)
    wanted = _wanted_bands(bands)
    mtl = _ItemMtl(item)
    level = _level(item, mtl)
    opened: list[tuple[str, _Asset, tuple[float, float]]] = []
    for name in wanted:
        keys, common = STAC_ASSETS[name]
        found = _find_asset(item, keys, common)
        if found is None:
            if name == "thermal" and bands is None:
                continue  # an L2SR item, or an SR-only catalogue (USGS): no thermal band
            raise InputError(
                f"STAC item '{item.id}' has no asset for band '{name}' (asset keys "
                f"{', '.join(keys)} or eo:bands common name {', '.join(common)}); it has "
                f"{', '.join(item.assets) or 'no assets'}"
            )
        key, asset = found
        url = asset.get_absolute_href() or ""
        scale = _scale_offset(name, key, asset, mtl)
        opened.append((name, _open_asset(key, url, f"STAC asset '{key}' (band '{name}')"), scale))
    assets = [a for _n, a, _s in opened]
    qa = _qa_asset(item, mask) if mask else None
    _check_grids(assets + ([qa] if qa is not None else []))
    layers = [
        (name, _dn_to_float(_lazy(a, chunks), mult, add, fill=_FILL))
        for name, a, (mult, add) in opened
    ]
    out = _stack(layers, assets[0].crs, assets[0].transform)
    if qa is not None:
        flagged = (_lazy(qa, chunks) & np.uint16(bitmask(mask))) != 0
        out = out.where(~flagged).astype("float32")
    out = out.rename("reflectance")
    props = item.properties
    when = _item_interval(item)[0]
    out.attrs = {
        "product_id": item.id,
        "processing_level": level,
        "spacecraft": str(props.get("platform", "")).upper().replace("-", "_"),
        "date_acquired": when.date().isoformat() if when is not None else "",
        "sun_elevation": float(props.get("view:sun_elevation", math.nan)),
        "qa_mask": ",".join(mask),
        "units": "reflectance bands: 1 (0-1); thermal: K",
        "source": item.get_self_href() or item.id,
    }
    return out


def open_stac_qa(item: pystac.Item, *, chunks: int | None = 512) -> xr.DataArray:
    """The raw QA_PIXEL band (uint16, ``(y, x)``) of a STAC item, as :func:`open_qa` gives it.

    Parameters
    ----------
    item : pystac.Item
        The item.
    chunks : int, optional
        Dask chunk size in pixels.

    Returns
    -------
    xarray.DataArray

    Raises
    ------
    InputError
        No ``qa_pixel`` asset, or it cannot be read (the message names its URL).
    """
    qa = _qa_asset(item, ())
    da = _lazy(qa, chunks)
    da.attrs = {"long_name": "QA_PIXEL", "source": qa.url}
    return da.rename("qa_pixel")

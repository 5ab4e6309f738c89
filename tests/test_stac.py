"""``landsat: {stac: ...}``: the demo scene as COGs behind a static STAC catalogue on HTTP.

A small range-capable HTTP server on 127.0.0.1 (Python's own SimpleHTTPRequestHandler
answers every Range request with the whole file) serves COG copies of the demo's two
Landsat scenes and a catalogue of four items; the maps of a scene job read through it
equal, bit for bit, the maps of the same job read from the local folder.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import rasterio.shutil
import yaml
from affine import Affine
from rasterio.warp import transform_bounds

from geohm import pipeline
from geohm.config import load_config, parse_config
from geohm.config.stac import StacSpec
from geohm.errors import ConfigError, InputError
from geohm.io.landsat import (
    ItemFilter,
    find_mtl,
    find_stac_item,
    least_cloudy,
    open_landsat,
    open_qa,
    open_stac_landsat,
    open_stac_qa,
    read_mtl,
)
from geohm.io.rasters import write_geotiff
from geohm.pipeline.inputs import stac_item
from geohm.synth import make_demo
from geohm.synth.case import SOURCE_PRODUCT_ID, TARGET_PRODUCT_ID

pytestmark = pytest.mark.timeout(300)

# Planetary Computer's landsat-c2-l2 items: asset key, file suffix, eo:bands name and
# common name; the scale and offset USGS gives every C2 L2 band.
ASSETS = [
    ("coastal", "SR_B1", "OLI_B1", "coastal"),
    ("blue", "SR_B2", "OLI_B2", "blue"),
    ("green", "SR_B3", "OLI_B3", "green"),
    ("red", "SR_B4", "OLI_B4", "red"),
    ("nir08", "SR_B5", "OLI_B5", "nir08"),
    ("swir16", "SR_B6", "OLI_B6", "swir16"),
    ("swir22", "SR_B7", "OLI_B7", "swir22"),
    ("lwir11", "ST_B10", "TIRS_B10", "lwir11"),
]
SR_SCALE, SR_OFFSET, ST_SCALE, ST_OFFSET = 2.75e-05, -0.2, 0.00341802, 149.0
COLLECTION = "landsat-c2-l2"


# --------------------------------------------------------------------------- HTTP server


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with single-range ``Range: bytes=...`` requests (206), as S3 does.

    ``log`` records ``(path, status, bytes sent)`` of every GET; a path in ``flaky``
    answers 503 once before it is served (a transient error GDAL should retry).
    """

    log: list[tuple[str, int, int]]
    flaky: set[str]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def send_head(self) -> io.BytesIO | None:
        path = self.translate_path(self.path)
        if self.path in self.flaky:
            self.flaky.discard(self.path)
            self.log.append((self.path, 503, 0))
            self.send_error(503, "try again")
            return None
        if not os.path.isfile(path):
            self.send_error(404, "File not found")
            return None
        size = os.path.getsize(path)
        start, end, status = 0, size - 1, 200
        header = self.headers.get("Range")
        if header is not None:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
            if m is None or m[1] == m[2] == "":
                self.send_error(416, "one range only")
                return None
            if m[1] == "":  # the last N bytes
                start = max(0, size - int(m[2]))
            else:
                start, end = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
            if start >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.end_headers()
                return None
            status = 206
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if self.command == "GET":
            self.log.append((self.path, status, len(body)))
        return io.BytesIO(body)


class Server:
    """A :class:`RangeHandler` server for ``root`` on 127.0.0.1, in a thread."""

    def __init__(self, root: Path) -> None:
        handler = type("Handler", (RangeHandler,), {"log": [], "flaky": set()})
        self.handler = handler
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(handler, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class ApiHandler(http.server.BaseHTTPRequestHandler):
    """A minimal STAC API: its landing page and ``POST /search`` (answers ``items``)."""

    items: list[dict[str, Any]]
    searches: list[dict[str, Any]]

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, obj: Any) -> None:
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        root = f"http://{self.headers['Host']}/"
        search = {"href": root + "search", "type": "application/geo+json"}
        self._json(
            {
                "type": "Catalog",
                "id": "api",
                "stac_version": "1.0.0",
                "description": "a STAC API",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                ],
                "links": [
                    {"rel": "self", "href": root},
                    {"rel": "root", "href": root},
                    {"rel": "search", "method": "GET", **search},
                    {"rel": "search", "method": "POST", **search},
                ],
            }
        )

    def do_POST(self) -> None:
        self.searches.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self._json({"type": "FeatureCollection", "features": self.items, "links": []})


# --------------------------------------------------------------------------- the catalogue


def item_dict(
    item_id: str,
    when: str,
    bbox: list[float],
    cloud: float,
    base: str | None,
    files: str,
    *,
    raster_bands: bool = True,
) -> dict[str, Any]:
    """A Landsat C2 L2 item as the Planetary Computer publishes it (fewer assets).

    Assets point at ``{base}/{files}_<suffix>.TIF`` (``files`` relative when ``base``
    is None); without ``raster_bands`` the scale comes from the ``mtl.txt`` asset.
    """
    href = f"{base}/{files}" if base else files
    w, s, e, n = bbox
    assets: dict[str, Any] = {}
    for key, suffix, name, common in ASSETS:
        asset: dict[str, Any] = {
            "href": f"{href}_{suffix}.TIF",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "roles": ["data"],
            "eo:bands": [{"name": name, "common_name": common}],
        }
        if raster_bands:
            scale, offset = (ST_SCALE, ST_OFFSET) if key == "lwir11" else (SR_SCALE, SR_OFFSET)
            asset["raster:bands"] = [
                {"scale": scale, "offset": offset, "nodata": 0, "data_type": "uint16"}
            ]
        assets[key] = asset
    assets["qa_pixel"] = {
        "href": f"{href}_QA_PIXEL.TIF",
        "type": "image/tiff; application=geotiff; profile=cloud-optimized",
        "roles": ["cloud", "cloud-shadow", "snow-ice", "water-mask"],
        "raster:bands": [{"unit": "bit index", "nodata": 1, "data_type": "uint16"}],
    }
    assets["mtl.txt"] = {"href": f"{href}_MTL.txt", "type": "text/plain", "roles": ["metadata"]}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ],
        "id": item_id,
        "bbox": bbox,
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
        },
        "properties": {
            "datetime": when,
            "platform": "landsat-8",
            "eo:cloud_cover": cloud,
            "landsat:correction": "L2SP",
            "view:sun_elevation": 37.5,
        },
        "links": [],
        "assets": assets,
    }


def write_catalog(root: Path, items: list[dict[str, Any]]) -> Path:
    """A self-contained static catalogue: catalog.json -> landsat-c2-l2 -> items."""
    cat = pystac.Catalog(id="demo", description="the geohm demo scenes")
    always: list[list[Any]] = [[None, None]]
    extent = pystac.Extent(
        pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]), pystac.TemporalExtent(always)
    )
    col = pystac.Collection(id=COLLECTION, description="Landsat C2 L2", extent=extent)
    cat.add_child(col)
    for d in items:
        col.add_item(pystac.Item.from_dict(d))
    cat.normalize_hrefs(str(root))
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def cog_copy(folder: Path, dest: Path) -> None:
    """The scene's band, QA and MTL files, the rasters copied by GDAL's COG driver."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted(folder.iterdir()):
        if f.suffix.upper() == ".TIF":
            rasterio.shutil.copy(f, dest / f.name, driver="COG", COMPRESS="DEFLATE")
        else:
            (dest / f.name).write_bytes(f.read_bytes())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The demo (96 x 96), its scenes' COG copies on the server, and the catalogue."""
    root = tmp_path_factory.mktemp("stac")
    paths = make_demo(root / "data", seed=0, size=96)
    mtl = read_mtl(find_mtl(paths.target_landsat))
    sr = mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]
    st = mtl["LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"]
    assert (float(sr["REFLECTANCE_MULT_BAND_4"]), float(sr["REFLECTANCE_ADD_BAND_4"])) == (
        SR_SCALE,
        SR_OFFSET,
    )
    assert float(st["TEMPERATURE_MULT_BAND_ST_B10"]) == ST_SCALE
    www = root / "www"
    cog_copy(paths.target_landsat, www / "landsat" / TARGET_PRODUCT_ID)
    cog_copy(paths.source_landsat, www / "landsat" / SOURCE_PRODUCT_ID)
    with rasterio.open(paths.dem) as src:
        bbox = [round(v, 6) for v in transform_bounds(src.crs, "EPSG:4326", *src.bounds)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1")
        mp.setenv("no_proxy", "127.0.0.1")
        server = Server(www)
        base = f"{server.url}/landsat"
        target = f"{TARGET_PRODUCT_ID}/{TARGET_PRODUCT_ID}"
        source = f"{SOURCE_PRODUCT_ID}/{SOURCE_PRODUCT_ID}"
        europe = [5.0, 50.0, 6.0, 51.0]
        items = [
            item_dict("target-2019", "2019-11-15T03:35:12Z", bbox, 1.3, base, target),
            item_dict("source-2017", "2017-12-08T03:35:12Z", bbox, 35.0, base, source),
            item_dict("clear-elsewhere", "2019-11-20T10:00:00Z", europe, 0.0, base, source),
            item_dict("clear-too-late", "2020-03-01T03:35:12Z", bbox, 0.0, base, source),
        ]
        write_catalog(www, items)
        try:
            yield {"paths": paths, "server": server, "base": base, "bbox": bbox, "root": root}
        finally:
            server.close()


def stac_block(site: dict[str, Any]) -> dict[str, Any]:
    return {
        "stac": f"{site['server'].url}/catalog.json",
        "collection": COLLECTION,
        "datetime": "2017-01-01/2019-12-31",
        "bbox": site["bbox"],
        "max_cloud": 50,
    }


# --------------------------------------------------------------------------- tests


def _maps(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*.tif"))}


def test_maps_from_the_stac_catalogue_equal_those_from_the_folder_bit_for_bit(
    site: dict[str, Any],
) -> None:
    data = site["paths"].root
    cfg = yaml.safe_load(site["paths"].scene.read_text())
    del cfg["source"]  # one year: the job reads the target scene only
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 20}}
    cfg["validation"]["cv_folds"] = 0
    cfg["output"].update({"tile": 40, "quicklooks": False})
    (data / "local.yaml").write_text(yaml.safe_dump(cfg))
    cfg["landsat"] = stac_block(site)
    (data / "stac.yaml").write_text(yaml.safe_dump(cfg))
    log = site["server"].handler.log
    log.clear()
    for name in ("local", "stac"):
        pipeline.run_scene(load_config(data / f"{name}.yaml", output_dir=data / f"out_{name}"))
    local, remote = _maps(data / "out_local"), _maps(data / "out_stac")
    assert len(local) >= 10 and sorted(local) == sorted(remote)
    for name, path in local.items():
        with rasterio.open(path) as a, rasterio.open(remote[name]) as b:
            assert (a.crs, a.transform, a.count) == (b.crs, b.transform, b.count), name
            assert np.array_equal(a.read(), b.read(), equal_nan=True), name
    # The target scene was read over HTTP with range requests; the decoys never were.
    assert {s for _p, s, _n in log} <= {200, 206}
    tifs = {p for p, s, _n in log if p.endswith(".TIF")}
    assert any(s == 206 for p, s, _n in log if p.endswith(".TIF"))
    assert tifs and all(TARGET_PRODUCT_ID in p for p in tifs)
    report = json.loads((data / "out_stac" / "report.json").read_text())
    assert "target-2019" in json.dumps(report)


def test_an_item_json_file_reads_like_the_folder_with_scale_from_the_mtl_asset(
    site: dict[str, Any], tmp_path: Path
) -> None:
    d = item_dict(
        "target-2019",
        "2019-11-15T03:35:12Z",
        site["bbox"],
        1.3,
        site["base"],
        f"{TARGET_PRODUCT_ID}/{TARGET_PRODUCT_ID}",
        raster_bands=False,
    )
    (tmp_path / "item.json").write_text(json.dumps(d))
    item = find_stac_item(str(tmp_path / "item.json"))
    folder = site["paths"].target_landsat
    got, want = open_stac_landsat(item, chunks=64), open_landsat(folder, chunks=64)
    assert list(got["band"].values) == list(want["band"].values)  # thermal included
    assert np.array_equal(got.values, want.values, equal_nan=True)
    for c in ("x", "y"):
        assert np.array_equal(got[c].values, want[c].values)
    assert got.rio.transform() == want.rio.transform() and got.rio.crs == want.rio.crs
    assert got.dtype == np.float32 and int(np.isnan(got.values).sum()) > 0  # cloud masked
    qa_got, qa_want = open_stac_qa(item, chunks=64), open_qa(folder, chunks=64)
    assert qa_got.dtype == qa_want.dtype == np.uint16
    assert np.array_equal(qa_got.values, qa_want.values)
    assert got.attrs["product_id"] == "target-2019" and got.attrs["date_acquired"] == "2019-11-15"


def test_a_relative_stac_file_resolves_against_the_config_folder_and_a_url_stays(
    site: dict[str, Any], tmp_path: Path
) -> None:
    cfg = yaml.safe_load(site["paths"].scene.read_text())
    cfg["landsat"] = {"stac": "stac/item.json"}
    cfg["source"]["landsat"] = {"stac": "https://example.org/stac/item.json"}
    parsed = parse_config(cfg, base_dir=tmp_path)
    assert parsed.landsat.stac == str((tmp_path / "stac" / "item.json").resolve())  # type: ignore[union-attr]
    assert parsed.source.landsat.stac == "https://example.org/stac/item.json"  # type: ignore[union-attr]


def test_the_least_cloudy_matching_item_is_chosen(tmp_path: Path) -> None:
    bbox = [111.0, 34.0, 111.1, 34.1]
    a = item_dict("a", "2019-11-15T03:35:12Z", bbox, 20.0, None, "a")
    b = item_dict("b", "2019-11-30T03:35:12Z", bbox, 5.0, None, "b")
    path = write_catalog(tmp_path / "one", [a, b])
    assert find_stac_item(str(path)).id == "b"
    a["properties"]["eo:cloud_cover"] = 4.0
    path = write_catalog(tmp_path / "two", [a, b])
    assert find_stac_item(str(path)).id == "a"
    items = [pystac.Item.from_dict(x) for x in (a, b)]
    # The filters: b alone is after 2019-11-20, a alone is under 4.5 % cloud.
    assert least_cloudy(items, ItemFilter(start=_utc("2019-11-20T00:00:00"))).id == "b"
    assert least_cloudy(items, ItemFilter(max_cloud=4.5)).id == "a"
    with pytest.raises(InputError, match=r"2 item\(s\) read; left out by max_cloud: 2"):
        least_cloudy(items, ItemFilter(max_cloud=1.0))
    with pytest.raises(InputError, match=r"left out by bbox: 2"):
        least_cloudy(items, ItemFilter(bbox=[5.0, 50.0, 6.0, 51.0]))


def test_a_stac_api_search_takes_the_least_cloudy_item() -> None:
    bbox = [111.0, 34.0, 111.1, 34.1]
    a = item_dict("a", "2019-11-15T03:35:12Z", bbox, 20.0, "https://x", "a")
    b = item_dict("b", "2019-11-30T03:35:12Z", bbox, 5.0, "https://x", "b")
    for d in (a, b):
        d["collection"] = COLLECTION
    handler: Any = type("Api", (ApiHandler,), {"items": [a, b], "searches": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    spec = StacSpec(
        stac_api=f"http://127.0.0.1:{httpd.server_address[1]}/",
        collection=COLLECTION,
        datetime="2019-11-01/2019-11-30",
        bbox=bbox,
    )
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NO_PROXY", "127.0.0.1")
            assert stac_item(spec).id == "b"
            spec.max_cloud = 10.0
            assert stac_item(spec).id == "b"
            spec.max_cloud = 1.0
            with pytest.raises(InputError, match="left out by max_cloud: 2"):
                stac_item(spec)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert handler.searches[0] == {
        "bbox": bbox,
        "datetime": "2019-11-01T00:00:00Z/2019-11-30T23:59:59.999999Z",
        "collections": [COLLECTION],
    }


def _utc(text: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_a_missing_asset_or_an_unreachable_url_is_an_input_error_naming_it(
    site: dict[str, Any], tmp_path: Path
) -> None:
    files = f"{TARGET_PRODUCT_ID}/{TARGET_PRODUCT_ID}"
    d = item_dict("t", "2019-11-15T03:35:12Z", site["bbox"], 1.3, site["base"], files)
    del d["assets"]["red"]
    with pytest.raises(InputError, match=r"item 't' has no asset for band 'red' \(asset keys"):
        open_stac_landsat(pystac.Item.from_dict(d))
    d = item_dict("t", "2019-11-15T03:35:12Z", site["bbox"], 1.3, site["base"], files)
    missing = f"{site['base']}/{TARGET_PRODUCT_ID}/nothing_SR_B4.TIF"
    d["assets"]["red"]["href"] = missing
    with pytest.raises(InputError, match=re.escape(f"'red' (band 'red') '{missing}' cannot be")):
        open_stac_landsat(pystac.Item.from_dict(d))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    nowhere = f"{closed}/{TARGET_PRODUCT_ID}_QA_PIXEL.TIF"
    d["assets"]["qa_pixel"]["href"] = nowhere
    with pytest.raises(InputError, match=re.escape(f"QA_PIXEL asset 'qa_pixel' '{nowhere}'")):
        open_stac_landsat(pystac.Item.from_dict(d), bands=["blue"])
    with pytest.raises(InputError, match=re.escape(f"STAC document '{closed}/catalog.json'")):
        find_stac_item(f"{closed}/catalog.json")
    with pytest.raises(InputError, match=re.escape(f"STAC document '{tmp_path}/no.json'")):
        find_stac_item(str(tmp_path / "no.json"))


def test_a_transient_http_error_is_retried(
    site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GDAL_HTTP_RETRY_DELAY", "0.1")
    server = site["server"]
    rng = np.random.default_rng(3)
    dn = rng.integers(7000, 20000, size=(40, 30), dtype=np.uint16)
    www = site["root"] / "www" / "flaky"
    write_geotiff(
        www / "B4.TIF", dn, crs="EPSG:32649", transform=Affine(30, 0, 5e5, 0, -30, 4e6), nodata=0
    )
    d = item_dict("f", "2019-11-15T03:35:12Z", site["bbox"], 1.0, f"{server.url}/flaky", "x")
    d["assets"] = {"red": {**d["assets"]["red"], "href": f"{server.url}/flaky/B4.TIF"}}
    server.handler.flaky.add("/flaky/B4.TIF")
    got = open_stac_landsat(pystac.Item.from_dict(d), mask=(), bands=["red"]).values[0]
    want = dn.astype(np.float32) * np.float32(SR_SCALE) + np.float32(SR_OFFSET)
    assert np.array_equal(got, want)
    assert ("/flaky/B4.TIF", 503, 0) in server.handler.log


def test_only_the_windows_asked_for_are_fetched(site: dict[str, Any]) -> None:
    server = site["server"]
    dn = np.random.default_rng(5).integers(7000, 20000, size=(768, 768), dtype=np.uint16)
    path = site["root"] / "www" / "big" / "B4.TIF"
    write_geotiff(path, dn, crs="EPSG:32649", transform=Affine(30, 0, 5e5, 0, -30, 4e6), nodata=0)
    with rasterio.open(path) as src:
        assert src.block_shapes[0] == (256, 256)
    d = item_dict("big", "2019-11-15T03:35:12Z", site["bbox"], 1.0, None, "x")
    d["assets"] = {"red": {**d["assets"]["red"], "href": f"{server.url}/big/B4.TIF"}}
    refl = open_stac_landsat(pystac.Item.from_dict(d), mask=(), bands=["red"], chunks=256)
    server.handler.log.clear()
    window = refl.isel(band=0, y=slice(300, 310), x=slice(520, 530)).values
    want = dn[300:310, 520:530].astype(np.float32) * np.float32(SR_SCALE) + np.float32(SR_OFFSET)
    assert np.array_equal(window, want)
    fetched = sum(n for p, _s, n in server.handler.log if p == "/big/B4.TIF")
    assert 0 < fetched < path.stat().st_size / 4  # one 256 x 256 block of nine, and headers
    assert all(s == 206 for p, s, _n in server.handler.log if p == "/big/B4.TIF")


def test_a_misspelt_key_in_the_stac_block_is_a_config_error(site: dict[str, Any]) -> None:
    cfg = yaml.safe_load(site["paths"].scene.read_text())
    cfg["landsat"] = {"stac": "catalog.json", "datetme": "2019-11-15"}
    with pytest.raises(
        ConfigError, match=r"unknown key 'landsat\.datetme'; did you mean 'datetime'"
    ):
        parse_config(cfg)
    cfg["landsat"] = {"stac": "catalog.json", "bbox": [111.0, 34.0, 110.0]}
    with pytest.raises(ConfigError, match=r"key 'landsat\.bbox': must be 4 numbers"):
        parse_config(cfg)
    cfg["landsat"] = {"stac": "catalog.json", "datetime": "2019-11-31"}
    with pytest.raises(ConfigError, match=r"key 'landsat\.datetime': '2019-11-31' is not a date"):
        parse_config(cfg)
    cfg["landsat"] = {"stac_api": "https://example.org/stac", "collection": COLLECTION}
    with pytest.raises(ConfigError, match=r"a 'stac_api' search needs 'datetime', 'bbox'"):
        parse_config(cfg)

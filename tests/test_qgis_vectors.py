"""The styles of zones.gpkg, next_samples.gpkg and the AOA/DI rasters, in real QGIS.

``tests/qgis_check.py`` runs in Debian's system Python (where ``python3-qgis`` installs)
and reports JSON; the QGIS tests are skipped only when QGIS is not installed
(``apt-get install -y --no-install-recommends python3-qgis``). The last tests read the
written ``.qml`` XML and need no QGIS.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgb
from PIL import Image
from rasterio.transform import from_origin
from shapely.geometry import box

from geohm.io.point_styles import write_qml_points
from geohm.io.styles import (
    AOA_CLASSES,
    write_qml_paletted,
    write_qml_ramp,
    write_qml_zones,
)
from geohm.io.zones import write_next_samples

from .qgis_check import qgis_unavailable, run_qgis_check

CRS = "EPSG:32650"
X0, Y0 = 500_000.0, 3_000_000.0
#: Cu_expected_share of zones Z1..Z5: on the lowest bound, on the first boundary (QGIS
#: takes the first range with lower <= v <= upper), inside the middle class, on the top
#: bound, and NULL (a zone with no mapped pixel)
SHARES = [0.0, 0.2, 0.5, 1.0, np.nan]
#: the range each zone falls in (None: not drawn)
EXPECTED_CLASS = [0, 0, 2, 4, None]
YLORRD_5 = [to_hex(colormaps["YlOrRd"]((k + 0.5) / 5)) for k in range(5)]
FILL_ALPHA = 178  # fill_opacity 0.7 x 255 = 178.5, rounded half to even


@pytest.fixture(scope="module")
def qgis_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("qgis_vectors")
    why = qgis_unavailable(tmp)
    if why:
        pytest.skip(
            f"QGIS is not installed for /usr/bin/python3 ({why}); install it with "
            "`apt-get install -y --no-install-recommends python3-qgis`"
        )
    return tmp


def _zone_box(i: int) -> tuple[float, float, float, float]:
    """Zone i (0-based): 200 m squares in a row, 20 m apart."""
    x = X0 + 220.0 * i
    return (x, Y0, x + 200.0, Y0 + 200.0)


def _write_zones(path: Path) -> None:
    """Five zones with the columns zone_columns gives (Cu only) and an id column."""
    mapped = np.array([4.0, 4.0, 4.0, 4.0, 0.0])
    share = np.array(SHARES)
    frame = gpd.GeoDataFrame(
        {
            "zone_id": [f"Z{i + 1}" for i in range(5)],
            "Cu_area_ha": np.full(5, 4.0),
            "Cu_mapped_ha": mapped,
            "Cu_expected_ha": share * mapped,
            "Cu_certain_ha": np.floor(share) * mapped,
            "Cu_possible_ha": np.ceil(share) * mapped,
            "Cu_expected_share": share,
        },
        geometry=[box(*_zone_box(i)) for i in range(5)],
        crs=CRS,
    )
    frame.to_file(path, driver="GPKG", layer=path.stem, engine="pyogrio")


def _by_file(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["file"] == name)


def _mode_colour(rgb: np.ndarray) -> tuple[int, int, int]:
    colours, counts = np.unique(rgb.reshape(-1, 3), axis=0, return_counts=True)
    r, g, b = (int(v) for v in colours[np.argmax(counts)])
    return r, g, b


def _over_white(colour: str, alpha: int) -> np.ndarray:
    """A colour drawn with ``alpha`` (0-255) over a white background, 0-255 per channel."""
    a = alpha / 255
    return np.array(to_rgb(colour)) * 255 * a + 255 * (1 - a)


@pytest.mark.qgis
@pytest.mark.timeout(120)
def test_zones_and_next_samples_open_styled_in_qgis(qgis_tmp: Path) -> None:
    out = qgis_tmp / "vectors"
    out.mkdir()
    _write_zones(out / "zones.gpkg")
    # three suggestions, inside zones Z1-Z3 and off their centres
    points = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "x": [X0 + 40.0, X0 + 220.0 + 160.0, X0 + 440.0 + 40.0],
            "y": [Y0 + 40.0, Y0 + 160.0, Y0 + 160.0],
            "score": [1.0, 0.6, 0.3],
        }
    )
    write_next_samples(points, crs=CRS, folder=out)
    write_qml_zones(out / "zones.qml", field="Cu_expected_share", label_field="zone_id")
    write_qml_points(out / "next_samples.qml")

    png = qgis_tmp / "zones_points.png"
    summary = run_qgis_check(out, qgis_tmp / "rasters.png", qgis_tmp, vector_png=png)
    assert summary["layers"] == [] and "render" not in summary  # no GeoTIFF here
    assert sorted(v["file"] for v in summary["vectors"]) == ["next_samples.gpkg", "zones.gpkg"]

    zones = _by_file(summary["vectors"], "zones.gpkg")
    assert zones["valid"] and zones["style_loaded"]
    assert zones["feature_count"] == 5 and zones["geometry_type"] == "Polygon"
    assert zones["crs"] == CRS
    assert zones["extent"] == [X0, Y0, X0 + 4 * 220.0 + 200.0, Y0 + 200.0]
    # zones.qml beside zones.gpkg is QGIS's default style ("Add Vector Layer" shows it)
    assert zones["default_style_renderer"] == zones["renderer"] == "graduatedSymbol"
    assert zones["attr"] == "Cu_expected_share"
    bounds = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert zones["ranges"] == [
        {
            "lower": pytest.approx(bounds[k], abs=1e-12),
            "upper": pytest.approx(bounds[k + 1], abs=1e-12),
            "label": f"{20 * k} - {20 * (k + 1)} %",
            "color": YLORRD_5[k],
            "alpha": FILL_ALPHA,
        }
        for k in range(5)
    ]
    assert zones["labels_enabled"] and zones["label_field"] == "zone_id"
    # the range QGIS's renderer picks for each zone
    for feat, share, k in zip(zones["features"], SHARES, EXPECTED_CLASS, strict=True):
        if k is None:
            assert feat["Cu_expected_share"] is None and feat["color"] is None, feat
        else:
            assert feat["Cu_expected_share"] == pytest.approx(share)
            assert (feat["color"], feat["alpha"]) == (YLORRD_5[k], FILL_ALPHA), feat

    nxt = _by_file(summary["vectors"], "next_samples.gpkg")
    assert nxt["valid"] and nxt["style_loaded"]
    assert nxt["feature_count"] == 3 and nxt["geometry_type"] == "Point"
    assert nxt["crs"] == CRS
    assert nxt["default_style_renderer"] == nxt["renderer"] == "singleSymbol"
    assert nxt["symbol"] == {"type": 0, "color": "#2166ac", "alpha": 255}  # 0: marker
    assert nxt["labels_enabled"] and nxt["label_field"] == "rank"
    assert [f["rank"] for f in nxt["features"]] == [1, 2, 3]
    assert {"rank", "lon", "lat", "x", "y", "score"} <= set(nxt["fields"])

    # the map: points over zones; every drawn zone and every point labelled
    render = summary["vector_render"]
    assert render["png"] == str(png)
    assert render["layers"] == ["next_samples", "zones"]
    assert render["labels"] == {"next_samples": ["1", "2", "3"], "zones": ["Z1", "Z2", "Z3", "Z4"]}
    rgb = np.asarray(Image.open(render["png"]).convert("RGB"))
    assert [rgb.shape[1], rgb.shape[0]] == render["size"]
    xmin, ymin, xmax, ymax = render["extent"]
    sx, sy = rgb.shape[1] / (xmax - xmin), rgb.shape[0] / (ymax - ymin)
    for i, k in enumerate(EXPECTED_CLASS):
        # the middle half of the zone: its fill (or the white background when not drawn)
        x0, y0, x1, y1 = _zone_box(i)
        c0, c1 = round((x0 + 50 - xmin) * sx), round((x1 - 50 - xmin) * sx)
        r0, r1 = round((ymax - y1 + 50) * sy), round((ymax - y0 - 50) * sy)
        got = np.array(_mode_colour(rgb[r0:r1, c0:c1]))
        want = np.full(3, 255.0) if k is None else _over_white(YLORRD_5[k], FILL_ALPHA)
        assert np.abs(got - want).max() <= 2, (f"Z{i + 1}", got, want)
    marker = np.array(to_rgb("#2166ac")) * 255
    assert (np.abs(rgb - marker).max(axis=2) <= 2).sum() >= 3 * 20  # three markers drawn


@pytest.mark.qgis
@pytest.mark.timeout(120)
def test_aoa_and_di_rasters_open_styled_in_qgis(qgis_tmp: Path) -> None:
    """``<t>_aoa.tif`` paletted with AOA_CLASSES, ``<t>_di.tif`` on a ramp; nodata not drawn."""
    out = qgis_tmp / "aoa"
    out.mkdir()
    h, w, px = 24, 32, 30.0
    profile = {
        "driver": "GTiff",
        "height": h,
        "width": w,
        "count": 1,
        "crs": CRS,
        "transform": from_origin(X0, Y0 + h * px, px, px),
    }
    threshold = 0.4
    di = np.tile(np.linspace(0.0, 1.0, w, dtype="float32"), (h, 1))
    di[:8, :8] = np.nan  # no prediction in the upper-left corner
    aoa = np.where(np.isnan(di), 255, (di <= threshold).astype("uint8")).astype("uint8")
    with rasterio.open(out / "Cu_di.tif", "w", dtype="float32", nodata=np.nan, **profile) as dst:
        dst.write(di, 1)
    with rasterio.open(out / "Cu_aoa.tif", "w", dtype="uint8", nodata=255, **profile) as dst:
        dst.write(aoa, 1)
    write_qml_ramp(out / "Cu_di.qml", vmin=0.0, vmax=2 * threshold, cmap="PuRd", stops=5)
    write_qml_paletted(out / "Cu_aoa.qml", AOA_CLASSES)

    png = qgis_tmp / "aoa.png"
    summary = run_qgis_check(out, png, qgis_tmp)
    assert summary["vectors"] == [] and "vector_render" not in summary
    aoa_info = _by_file(summary["layers"], "Cu_aoa.tif")
    assert aoa_info["kind"] == "class" and aoa_info["renderer"] == "paletted"
    assert aoa_info["default_style_renderer"] == "paletted"
    assert aoa_info["classes"] == [
        {"value": v, "label": label, "color": c} for v, label, c in AOA_CLASSES
    ]
    di_info = _by_file(summary["layers"], "Cu_di.tif")
    assert di_info["renderer"] == di_info["default_style_renderer"] == "singlebandpseudocolor"
    ramp = di_info["ramp"]
    assert (ramp["min"], ramp["max"]) == (0.0, pytest.approx(0.8))
    # the middle of the five stops is the AOA threshold
    assert [i["value"] for i in ramp["items"]] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])

    # the AOA (opacity 0.6) over the DI; the nodata corner of both is the white background
    render = summary["render"]
    assert render["layers"] == ["Cu_aoa", "Cu_di"] and render["top_layer_opacity"] == 0.6
    rgb = np.asarray(Image.open(render["png"]).convert("RGB"))
    ph, pw = rgb.shape[0] / h, rgb.shape[1] / w  # image pixels per raster pixel
    corner = rgb[round(1 * ph) : round(7 * ph), round(1 * pw) : round(7 * pw)]
    assert (corner == 255).all()
    inside = rgb[round(12 * ph) : round(20 * ph), round(1 * pw) : round(2 * pw)]
    assert (inside != 255).any(axis=2).all()  # DI 0.03, inside the AOA: drawn


def _ranges(qml: Path) -> list[dict[str, str]]:
    root = ET.parse(qml).getroot()
    return [dict(r.attrib) for r in root.iterfind("renderer-v2/ranges/range")]


def test_zone_style_in_hectares(tmp_path: Path) -> None:
    """Bounds and legend labels of a hectare column: 0-37 ha in 5 classes of 7.4 ha."""
    qml = write_qml_zones(
        tmp_path / "zones.qml", field="Cu_expected_ha", vmax=37.0, percent=False, units="ha"
    )
    ranges = _ranges(qml)
    assert [float(r["lower"]) for r in ranges] == [0.0, 7.4, 14.8, 22.2, 29.6]
    assert [float(r["upper"]) for r in ranges] == [7.4, 14.8, 22.2, 29.6, 37.0]
    assert [r["label"] for r in ranges] == [
        "0.0 - 7.4 ha",
        "7.4 - 14.8 ha",
        "14.8 - 22.2 ha",
        "22.2 - 29.6 ha",
        "29.6 - 37.0 ha",
    ]
    root = ET.parse(qml).getroot()
    assert root.get("labelsEnabled") == "0" and root.find("labeling") is None
    assert root.findtext("layerGeometryType") == "2"  # polygons


def test_zone_style_degenerate_range_and_bad_arguments(tmp_path: Path) -> None:
    # no zone mapped: vmax NaN (or 0) becomes vmin + 1
    qml = write_qml_zones(tmp_path / "a.qml", field="Cu_expected_share", vmax=float("nan"))
    assert [float(r["upper"]) for r in _ranges(qml)] == [0.2, 0.4, 0.6, 0.8, 1.0]
    qml = write_qml_zones(tmp_path / "b.qml", field="f", classes=2, vmax=0.0, percent=False)
    assert [r["label"] for r in _ranges(qml)] == ["0.0 - 0.5", "0.5 - 1.0"]
    with pytest.raises(ValueError, match="at least one class"):
        write_qml_zones(tmp_path / "c.qml", field="f", classes=0)
    with pytest.raises(ValueError, match="fill_opacity"):
        write_qml_zones(tmp_path / "c.qml", field="f", fill_opacity=1.5)
    with pytest.raises(ValueError, match="size_mm"):
        write_qml_points(tmp_path / "c.qml", size_mm=0)
    assert not (tmp_path / "c.qml").exists()

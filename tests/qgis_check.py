"""Open geohm's outputs in real QGIS, check them and their ``.qml`` styles, render PNGs.

Run by Debian's system Python, where ``python3-qgis`` installs (the project's Python cannot
import ``qgis``)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py OUTDIR PNG_PATH [VECTOR_PNG]

Rasters: every ``OUTDIR/*.tif`` is loaded as a QGIS raster layer (GDAL provider) and the
``.qml`` beside it is applied with ``loadNamedStyle``. Checked per layer: the layer is
valid, the ``.qml`` is picked up as the default style and loads without error, the CRS is
the GeoTIFF's EPSG code and the extent its bounds (both read with GDAL, tolerance 1e-6
pixel), the renderer is ``paletted`` for class rasters (``*_risk.tif``, ``*_class.tif``,
``*_aoa.tif``) and ``singlebandpseudocolor`` otherwise, and the renderer's classes
(palette entries or colour-ramp items, with the ramp's min/max) are exactly those written
in the ``.qml``. Then the first risk/class layer (if any) is rendered over its
concentration layer (else the Cu concentration layer alone; else the first paletted layer
over the first continuous one) into PNG_PATH, which must not be blank.

Vectors: every ``OUTDIR/*.gpkg`` is loaded as a QGIS vector layer (OGR provider, the
GeoPackage's first layer, as "Add Vector Layer" does) with its ``.qml``. Checked per
layer: valid, the feature count, CRS and extent are OGR's, the ``.qml`` is the default
style and loads, its geometry type matches the layer's, the renderer (type, classified
column, ranges with their bounds, labels and fill colours, or the single symbol's colour)
is exactly the ``.qml``'s, the classified and labelled columns exist, and labels are on
as written. Each feature's symbol colour as QGIS's renderer picks it is reported. All
vector layers (points on top) are rendered into VECTOR_PNG (default: PNG_PATH with
``_vectors`` before the suffix), which must not be blank, and the label texts QGIS placed
are reported per layer (a labelled layer with no placed label fails).

Prints one JSON summary line to stdout (``layers``: rasters, ``render``; ``vectors``,
``vector_render``); exits 1 (after the summary, with the failures on stderr) if any check
fails, 2 on bad usage.

The tests import this module (it imports nothing from QGIS at the top) for
:func:`qgis_unavailable` (why to skip), :func:`run_qgis_check` (run the script, return the
summary) and :func:`qgis_env`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, where python3-qgis installs
CLASS_SUFFIXES = ("_risk", "_class")  # class layers rendered over their concentration
# rasters styled with a paletted renderer
PALETTED_SUFFIXES = (*CLASS_SUFFIXES, "_aoa", "_years_to_exceed")
RENDER_SIZE = 800
REL_TOL = 1e-6  # ramp values / min-max are written with 6 significant digits


def is_class_layer(tif: Path) -> bool:
    """A raster whose style must be paletted (risk, class, area of applicability)."""
    return tif.stem.endswith(PALETTED_SUFFIXES)


def gdal_facts(tif: Path) -> dict[str, Any]:
    """What the GeoTIFF itself says (EPSG, bounds, size), read with GDAL."""
    from osgeo import gdal, osr

    gdal.UseExceptions()
    ds = gdal.Open(str(tif))
    srs = osr.SpatialReference(wkt=ds.GetProjection())
    srs.AutoIdentifyEPSG()
    code = srs.GetAuthorityCode(None)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    w, h = ds.RasterXSize, ds.RasterYSize
    xs, ys = sorted((x0, x0 + w * dx)), sorted((y0, y0 + h * dy))
    return {
        "crs": f"EPSG:{code}" if code else None,
        "bounds": [xs[0], ys[0], xs[1], ys[1]],
        "pixel": [abs(dx), abs(dy)],
        "size": [w, h],
        "nodata": ds.GetRasterBand(1).GetNoDataValue(),
    }


def read_qml(qml: Path) -> dict[str, Any]:
    """The renderer as written in the .qml file."""
    root = ET.parse(qml).getroot()
    r = root.find("pipe/rasterrenderer")
    if r is None:
        raise ValueError(f"{qml.name}: no <pipe><rasterrenderer> element")
    out: dict[str, Any] = {"version": root.get("version"), "type": r.get("type")}
    if r.get("type") == "paletted":
        out["classes"] = [
            {"value": int(e.get("value", "")), "label": e.get("label"), "color": e.get("color")}
            for e in r.iterfind("colorPalette/paletteEntry")
        ]
    else:
        shader = r.find("rastershader/colorrampshader")
        if shader is None:
            raise ValueError(f"{qml.name}: no <rastershader><colorrampshader> element")
        out["classification_min"] = float(r.get("classificationMin", "nan"))
        out["classification_max"] = float(r.get("classificationMax", "nan"))
        out["shader_min"] = float(shader.get("minimumValue", "nan"))
        out["shader_max"] = float(shader.get("maximumValue", "nan"))
        out["ramp_type"] = shader.get("colorRampType")
        legend = shader.find("rampLegendSettings")
        out["legend_suffix"] = None if legend is None else legend.get("suffix", "")
        out["items"] = [
            {
                "value": float(i.get("value", "nan")),
                "label": i.get("label"),
                "color": (i.get("color") or "").lower(),
                "alpha": int(i.get("alpha", "255")),
            }
            for i in shader.iterfind("item")
        ]
    return out


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9)


def legend_labels(fn: Any) -> dict[str, Any]:
    """The labels of QGIS's legend for a colour-ramp shader, as the layer tree shows them.

    Since QGIS 3.18 an interpolated ramp is drawn as one continuous bar labelled with its
    min and max, formatted by the shader's ``rampLegendSettings`` (not the item labels).
    """
    from qgis.core import QgsNumericFormatContext

    settings = fn.legendSettings()
    ctx = QgsNumericFormatContext()

    def label(custom: str, value: float) -> str:
        if custom:
            return custom
        text = settings.numericFormat().formatDouble(value, ctx)
        return f"{settings.prefix()}{text}{settings.suffix()}"

    return {
        "continuous": bool(settings.useContinuousLegend()),
        "suffix": settings.suffix(),
        "min_label": label(settings.minimumLabel(), fn.minimumValue()),
        "max_label": label(settings.maximumLabel(), fn.maximumValue()),
    }


def check_layer(tif: Path, fail: list[str]) -> tuple[Any, dict[str, Any]]:
    from qgis.core import QgsColorRampShader, QgsRasterLayer

    name = tif.name
    qml = tif.with_suffix(".qml")
    facts = gdal_facts(tif)
    info: dict[str, Any] = {
        "file": name,
        "kind": "class" if is_class_layer(tif) else "continuous",
        "expected_crs": facts["crs"],
        "expected_extent": facts["bounds"],
        "size": facts["size"],
    }
    # default options: QGIS applies a same-named .qml as the layer's default style
    layer = QgsRasterLayer(str(tif), tif.stem, "gdal")
    info["valid"] = layer.isValid()
    if not layer.isValid():
        fail.append(f"{name}: QGIS cannot open it as a raster layer (invalid layer)")
        return layer, info
    info["default_style_renderer"] = layer.renderer().type() if layer.renderer() else None

    if not qml.exists():
        fail.append(f"{name}: no style {qml.name} beside it")
        return layer, info
    msg, ok = layer.loadNamedStyle(str(qml))
    info["style_loaded"] = bool(ok)
    if not ok:
        fail.append(f"{name}: QGIS rejected {qml.name}: {msg}")
    try:
        written = read_qml(qml)
    except (ET.ParseError, ValueError) as exc:
        fail.append(f"{name}: cannot read {qml.name}: {exc}")
        written = {"version": None, "type": None}
    info["qml_version"] = written["version"]

    crs = layer.crs().authid()
    info["crs"] = crs
    if crs != facts["crs"]:
        fail.append(f"{name}: QGIS CRS {crs!r} != GeoTIFF CRS {facts['crs']!r}")

    e = layer.extent()
    ext = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
    info["extent"] = ext
    tol = [1e-6 * facts["pixel"][0], 1e-6 * facts["pixel"][1]] * 2
    if any(abs(a - b) > t for a, b, t in zip(ext, facts["bounds"], tol, strict=True)):
        fail.append(f"{name}: QGIS extent {ext} != GeoTIFF bounds {facts['bounds']}")
    if [layer.width(), layer.height()] != facts["size"]:
        fail.append(f"{name}: QGIS size {[layer.width(), layer.height()]} != {facts['size']}")

    renderer = layer.renderer()
    rtype = renderer.type() if renderer else None
    info["renderer"] = rtype
    expected = "paletted" if info["kind"] == "class" else "singlebandpseudocolor"
    if rtype != expected:
        fail.append(f"{name}: renderer {rtype!r}, expected {expected!r}")
    if written["type"] != expected:
        fail.append(f"{name}: {qml.name} has renderer type {written['type']!r}, not {expected!r}")
    if written["type"] and info["default_style_renderer"] != written["type"]:
        fail.append(
            f"{name}: opened with default options QGIS did not apply {qml.name} "
            f"(default renderer {info['default_style_renderer']!r})"
        )

    if rtype == "paletted" and written["type"] == "paletted":
        got = [
            {"value": int(c.value), "label": c.label, "color": c.color.name()}
            for c in renderer.classes()
        ]
        info["classes"] = got
        want = [dict(c, color=c["color"].lower()) for c in written["classes"]]
        if got != want:
            fail.append(f"{name}: QGIS classes {got} != {qml.name} classes {want}")
    elif rtype == "singlebandpseudocolor" and written["type"] == "singlebandpseudocolor":
        fn = renderer.shader().rasterShaderFunction()
        got_items = [
            {
                "value": it.value,
                "label": it.label,
                "color": it.color.name(),
                "alpha": it.color.alpha(),
            }
            for it in fn.colorRampItemList()
        ]
        info["ramp"] = {
            "min": renderer.classificationMin(),
            "max": renderer.classificationMax(),
            "shader_min": fn.minimumValue(),
            "shader_max": fn.maximumValue(),
            "interpolated": fn.colorRampType() == QgsColorRampShader.Interpolated,
            "items": got_items,
        }
        for key, a, b in (
            ("classificationMin", renderer.classificationMin(), written["classification_min"]),
            ("classificationMax", renderer.classificationMax(), written["classification_max"]),
            ("minimumValue", fn.minimumValue(), written["shader_min"]),
            ("maximumValue", fn.maximumValue(), written["shader_max"]),
        ):
            if not close(a, b):
                fail.append(f"{name}: QGIS {key} {a} != {qml.name} {b}")
        if (written["ramp_type"] == "INTERPOLATED") != info["ramp"]["interpolated"]:
            fail.append(f"{name}: ramp type in QGIS differs from {written['ramp_type']}")
        want_items = written["items"]
        same = len(got_items) == len(want_items) and all(
            close(g["value"], w["value"])
            and g["label"] == w["label"]
            and g["color"] == w["color"]
            and g["alpha"] == w["alpha"]
            for g, w in zip(got_items, want_items, strict=True)
        )
        if not same:
            fail.append(f"{name}: QGIS ramp items {got_items} != {qml.name} items {want_items}")
        legend = legend_labels(fn)
        info["ramp"]["legend"] = legend
        want_suffix = written.get("legend_suffix")
        if want_suffix is not None and legend["suffix"] != want_suffix:
            fail.append(
                f"{name}: QGIS legend suffix {legend['suffix']!r} != {qml.name} "
                f"rampLegendSettings suffix {want_suffix!r}"
            )
    return layer, info


def render(layers: list[Any], png: Path, fail: list[str]) -> dict[str, Any]:
    """Render ``layers`` (first on top) to ``png`` and measure that it is not blank."""
    import numpy as np
    from qgis.core import QgsMapRendererParallelJob, QgsMapSettings, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor, QImage

    extent = QgsRectangle(layers[0].extent())
    for lyr in layers[1:]:
        extent.combineExtentWith(lyr.extent())
    aspect = extent.height() / extent.width()
    width = RENDER_SIZE if aspect <= 1 else max(1, round(RENDER_SIZE / aspect))
    height = RENDER_SIZE if aspect >= 1 else max(1, round(RENDER_SIZE * aspect))

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[-1].crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    errors = [f"{e.layerID}: {e.message}" for e in job.errors()]
    if errors:
        fail.append(f"render errors: {errors}")
    image = job.renderedImage().convertToFormat(QImage.Format_RGB32)
    png.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(png), "PNG"):
        fail.append(f"could not write {png}")

    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    bpl = image.bytesPerLine()
    raw = np.frombuffer(ptr, dtype=np.uint8).reshape(image.height(), bpl)
    bgr = raw[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3]
    gray = bgr.astype(np.float64).mean(axis=2)
    non_white = float((bgr < 250).any(axis=2).mean())
    colours = len(np.unique(bgr.reshape(-1, 3), axis=0))
    info = {
        "png": str(png),
        "size": [image.width(), image.height()],
        "layers": [lyr.name() for lyr in layers],
        "gray_std": float(gray.std()),
        "non_background_fraction": non_white,
        "distinct_colours": colours,
    }
    if gray.std() < 5 or non_white < 0.25 or colours < 8:
        fail.append(f"rendered PNG looks blank: {info}")
    return info


def check_all(tifs: list[Path], png: Path, summary: dict[str, Any], fail: list[str]) -> None:
    """All layer work; every QGIS layer object is gone when this returns."""
    from osgeo import gdal

    summary["gdal_version"] = gdal.__version__
    layers: dict[str, Any] = {}
    for tif in tifs:
        layer, info = check_layer(tif, fail)
        summary["layers"].append(info)
        if info.get("valid"):
            layers[tif.stem] = layer

    classes = sorted(
        (s for s in layers if s.endswith(CLASS_SUFFIXES)),
        key=lambda s: (not s.endswith("_risk"), s),  # a risk layer first
    )
    base: str | None = None
    if classes:
        metal = classes[0].rsplit("_", 1)[0]
        base = f"{metal}_concentration" if f"{metal}_concentration" in layers else None
    if base is None:
        conc = [s for s in layers if s.endswith("_concentration")]
        base = "Cu_concentration" if "Cu_concentration" in conc else (conc[0] if conc else None)
    stack = []  # top first
    if classes:
        stack.append(layers[classes[0]])
        if base is not None:  # let the concentration ramp show through
            stack[0].renderer().setOpacity(0.6)
    if base is not None:
        stack.append(layers[base])
    if not stack:  # no risk/class or concentration layer: a paletted over a continuous one
        paletted = [s for s in layers if s.endswith(PALETTED_SUFFIXES)]
        continuous = [s for s in layers if not s.endswith(PALETTED_SUFFIXES)]
        stack = [layers[s] for s in (paletted[:1] + continuous[:1])]
        if len(stack) == 2:
            stack[0].renderer().setOpacity(0.6)
    if not stack:
        fail.append("nothing to render: no valid raster layer")
        return
    summary["render"] = render(stack, png, fail)
    if len(stack) == 2:
        summary["render"]["top_layer_opacity"] = 0.6


# --- vector layers (GeoPackages) -----------------------------------------------------------


def ogr_facts(gpkg: Path) -> dict[str, Any]:
    """What the GeoPackage itself says about its first layer, read with OGR."""
    from osgeo import ogr, osr

    ogr.UseExceptions()
    ds = ogr.Open(str(gpkg))
    lyr = ds.GetLayer(0)
    srs = lyr.GetSpatialRef()
    code = None
    if srs is not None:
        srs = osr.SpatialReference(wkt=srs.ExportToWkt())
        srs.AutoIdentifyEPSG()
        code = srs.GetAuthorityCode(None)
    x0, x1, y0, y1 = lyr.GetExtent()
    return {
        "layer": lyr.GetName(),
        "layers": ds.GetLayerCount(),
        "crs": f"EPSG:{code}" if code else None,
        "bounds": [x0, y0, x1, y1],
        "feature_count": lyr.GetFeatureCount(),
        "fields": [d.GetName() for d in lyr.schema],
    }


def _rgba(text: str | None) -> tuple[str, int] | None:
    """``"r,g,b,a"`` (a QGIS symbol colour) as (``#rrggbb``, alpha)."""
    if not text:
        return None
    parts = [int(float(v)) for v in text.split(",")[:4]]
    r, g, b = parts[:3]
    a = parts[3] if len(parts) > 3 else 255
    return f"#{r:02x}{g:02x}{b:02x}", a


def _symbol_color(symbol: ET.Element | None) -> tuple[str, int] | None:
    """The colour property of a ``<symbol>``'s first symbol layer (Option map or prop)."""
    if symbol is None:
        return None
    layer = symbol.find("layer")
    if layer is None:
        return None
    for opt in layer.iterfind("Option/Option"):
        if opt.get("name") == "color":
            return _rgba(opt.get("value"))
    for prop in layer.iterfind("prop"):
        if prop.get("k") == "color":
            return _rgba(prop.get("v"))
    return None


def read_vector_qml(qml: Path) -> dict[str, Any]:
    """The renderer and labelling as written in a vector layer's .qml file."""
    root = ET.parse(qml).getroot()
    r = root.find("renderer-v2")
    if r is None:
        raise ValueError(f"{qml.name}: no <renderer-v2> element")
    gtype = root.findtext("layerGeometryType")
    out: dict[str, Any] = {
        "version": root.get("version"),
        "type": r.get("type"),
        "geometry_type": None if gtype is None else int(gtype),
        "labels_enabled": root.get("labelsEnabled") == "1",
    }
    symbols = {s.get("name"): s for s in r.iterfind("symbols/symbol")}
    if r.get("type") == "graduatedSymbol":
        out["attr"] = r.get("attr")
        ranges = []
        for rng in r.iterfind("ranges/range"):
            color = _symbol_color(symbols.get(rng.get("symbol")))
            ranges.append(
                {
                    "lower": float(rng.get("lower", "nan")),
                    "upper": float(rng.get("upper", "nan")),
                    "label": rng.get("label"),
                    "color": None if color is None else color[0],
                    "alpha": None if color is None else color[1],
                }
            )
        out["ranges"] = ranges
    elif r.get("type") == "singleSymbol":
        color = _symbol_color(symbols.get("0"))
        out["symbol"] = {
            "color": None if color is None else color[0],
            "alpha": None if color is None else color[1],
        }
    style = root.find("labeling/settings/text-style")
    out["label_field"] = None if style is None else style.get("fieldName")
    return out


def _plain(value: Any) -> Any:
    """A QGIS attribute value as plain JSON (NULL -> None)."""
    from qgis.PyQt.QtCore import QVariant

    if isinstance(value, QVariant):
        return None if value.isNull() else _plain(value.value())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def feature_symbols(layer: Any, attrs: list[str]) -> list[dict[str, Any]]:
    """Each feature's symbol colour as the layer's renderer picks it (None: not drawn)."""
    from qgis.core import QgsFeatureRequest, QgsRenderContext

    renderer = layer.renderer()
    ctx = QgsRenderContext()
    renderer.startRender(ctx, layer.fields())
    rows = []
    try:
        request = QgsFeatureRequest().setLimit(1000)
        for feat in layer.getFeatures(request):
            sym = renderer.symbolForFeature(feat, ctx)
            color = None if sym is None else sym.color()
            row: dict[str, Any] = {"fid": int(feat.id())}
            for a in attrs:
                row[a] = _plain(feat[a])
            row["color"] = None if color is None else color.name()
            row["alpha"] = None if color is None else color.alpha()
            rows.append(row)
    finally:
        renderer.stopRender(ctx)
    return rows


def check_vector(gpkg: Path, fail: list[str]) -> tuple[Any, dict[str, Any]]:
    """Load a GeoPackage's first layer with its .qml and compare QGIS's view with the file's."""
    from qgis.core import QgsVectorLayer, QgsWkbTypes

    name = gpkg.name
    qml = gpkg.with_suffix(".qml")
    facts = ogr_facts(gpkg)
    info: dict[str, Any] = {
        "file": name,
        "expected_crs": facts["crs"],
        "expected_extent": facts["bounds"],
        "expected_feature_count": facts["feature_count"],
    }
    # default options: QGIS applies a same-named .qml as the layer's default style
    layer = QgsVectorLayer(str(gpkg), gpkg.stem, "ogr")
    info["valid"] = layer.isValid()
    if not layer.isValid():
        fail.append(f"{name}: QGIS cannot open it as a vector layer (invalid layer)")
        return layer, info
    info["default_style_renderer"] = layer.renderer().type() if layer.renderer() else None
    info["feature_count"] = int(layer.featureCount())
    info["geometry_type"] = QgsWkbTypes.geometryDisplayString(layer.geometryType())
    fields = [f.name() for f in layer.fields()]
    info["fields"] = fields
    if facts["layers"] > 1:
        info["ogr_layers"] = facts["layers"]
    if info["feature_count"] != facts["feature_count"]:
        fail.append(
            f"{name}: QGIS counts {info['feature_count']} features, OGR {facts['feature_count']}"
        )

    crs = layer.crs().authid()
    info["crs"] = crs
    if crs != (facts["crs"] or ""):  # a layer without a CRS: '' in QGIS, None in OGR
        fail.append(f"{name}: QGIS CRS {crs!r} != GeoPackage CRS {facts['crs']!r}")
    e = layer.extent()
    ext = [e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum()]
    info["extent"] = ext
    span = max(
        1.0, facts["bounds"][2] - facts["bounds"][0], facts["bounds"][3] - facts["bounds"][1]
    )
    if any(abs(a - b) > 1e-9 * span for a, b in zip(ext, facts["bounds"], strict=True)):
        fail.append(f"{name}: QGIS extent {ext} != GeoPackage extent {facts['bounds']}")

    if not qml.exists():
        fail.append(f"{name}: no style {qml.name} beside it")
        return layer, info
    try:
        written = read_vector_qml(qml)
    except (ET.ParseError, ValueError) as exc:
        fail.append(f"{name}: cannot read {qml.name}: {exc}")
        return layer, info
    msg, ok = layer.loadNamedStyle(str(qml))
    info["style_loaded"] = bool(ok)
    if not ok:
        fail.append(f"{name}: QGIS rejected {qml.name}: {msg}")
    info["qml_version"] = written["version"]
    if written["geometry_type"] is not None and written["geometry_type"] != int(
        layer.geometryType()
    ):
        fail.append(
            f"{name}: {qml.name} is for geometry type {written['geometry_type']}, "
            f"the layer is {info['geometry_type']}"
        )
    if info["default_style_renderer"] != written["type"]:
        fail.append(
            f"{name}: opened with default options QGIS did not apply {qml.name} "
            f"(default renderer {info['default_style_renderer']!r})"
        )

    renderer = layer.renderer()
    rtype = renderer.type() if renderer else None
    info["renderer"] = rtype
    if rtype != written["type"]:
        fail.append(f"{name}: renderer {rtype!r}, {qml.name} has {written['type']!r}")
    shown: list[str] = []
    if rtype == "graduatedSymbol" and written["type"] == "graduatedSymbol":
        attr = renderer.classAttribute()
        info["attr"] = attr
        if attr != written["attr"]:
            fail.append(f"{name}: QGIS classifies {attr!r}, {qml.name} {written['attr']!r}")
        if attr not in fields:
            fail.append(f"{name}: the classified column {attr!r} is not in the layer {fields}")
        got = []
        for rng in renderer.ranges():
            sym = rng.symbol()
            color = sym.color()
            got.append(
                {
                    "lower": rng.lowerValue(),
                    "upper": rng.upperValue(),
                    "label": rng.label(),
                    "color": color.name(),
                    "alpha": color.alpha(),
                }
            )
        info["ranges"] = got
        want = written["ranges"]
        same = len(got) == len(want) and all(
            close(g["lower"], w["lower"])
            and close(g["upper"], w["upper"])
            and (g["label"], g["color"], g["alpha"]) == (w["label"], w["color"], w["alpha"])
            for g, w in zip(got, want, strict=True)
        )
        if not same:
            fail.append(f"{name}: QGIS ranges {got} != {qml.name} ranges {want}")
        shown.append(attr)
    elif rtype == "singleSymbol" and written["type"] == "singleSymbol":
        sym = renderer.symbol()
        color = sym.color()
        info["symbol"] = {"type": sym.type(), "color": color.name(), "alpha": color.alpha()}
        got_sym = {"color": color.name(), "alpha": color.alpha()}
        if got_sym != written["symbol"]:
            fail.append(f"{name}: QGIS symbol {got_sym} != {qml.name} symbol {written['symbol']}")

    labeling = layer.labeling()
    info["labels_enabled"] = bool(layer.labelsEnabled())
    info["labeling"] = labeling.type() if labeling is not None else None
    label_field: str | None = None
    if labeling is not None and labeling.type() == "simple":
        settings = labeling.settings()
        label_field = settings.fieldName
        info["label_field"] = label_field
        info["label_is_expression"] = bool(settings.isExpression)
    if info["labels_enabled"] != written["labels_enabled"]:
        fail.append(
            f"{name}: labels enabled {info['labels_enabled']} in QGIS, not as in {qml.name}"
        )
    if written["labels_enabled"]:
        if label_field != written["label_field"]:
            fail.append(
                f"{name}: QGIS labels {label_field!r}, {qml.name} {written['label_field']!r}"
            )
        if label_field not in fields:
            fail.append(f"{name}: the labelled column {label_field!r} is not in the layer {fields}")
        elif label_field is not None and label_field not in shown:
            shown.append(label_field)
    info["features"] = feature_symbols(layer, shown)
    return layer, info


def render_vectors(layers: list[Any], png: Path, fail: list[str]) -> dict[str, Any]:
    """Render vector ``layers`` (first on top) to ``png``; report the labels QGIS placed."""
    import numpy as np
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings, QgsRectangle
    from qgis.PyQt.QtCore import QSize
    from qgis.PyQt.QtGui import QColor, QImage

    extent = QgsRectangle(layers[0].extent())
    for lyr in layers[1:]:
        extent.combineExtentWith(lyr.extent())
    pad = max(0.1 * max(extent.width(), extent.height()), 50.0)  # room for markers, labels
    extent.grow(pad)
    aspect = extent.height() / extent.width()
    width = RENDER_SIZE if aspect <= 1 else max(1, round(RENDER_SIZE / aspect))
    height = RENDER_SIZE if aspect >= 1 else max(1, round(RENDER_SIZE * aspect))

    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[-1].crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(width, height))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    errors = [f"{e.layerID}: {e.message}" for e in job.errors()]
    if errors:
        fail.append(f"vector render errors: {errors}")
    shown = settings.visibleExtent()  # the extent of the image's pixels (aspect kept)
    results = job.takeLabelingResults()
    ids = {lyr.id(): lyr.name() for lyr in layers}
    labels: dict[str, list[str]] = {lyr.name(): [] for lyr in layers}
    if results is not None:
        for pos in results.labelsWithinRect(shown):
            if pos.layerID in ids and not pos.isUnplaced:
                labels[ids[pos.layerID]].append(pos.labelText)
    image = job.renderedImage().convertToFormat(QImage.Format_RGB32)
    png.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(png), "PNG"):
        fail.append(f"could not write {png}")

    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    raw = np.frombuffer(ptr, dtype=np.uint8).reshape(image.height(), image.bytesPerLine())
    bgr = raw[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[..., :3]
    non_white = float((bgr < 250).any(axis=2).mean())
    colours = len(np.unique(bgr.reshape(-1, 3), axis=0))
    info = {
        "png": str(png),
        "size": [image.width(), image.height()],
        "extent": [shown.xMinimum(), shown.yMinimum(), shown.xMaximum(), shown.yMaximum()],
        "layers": [lyr.name() for lyr in layers],
        "labels": {k: sorted(v) for k, v in labels.items()},
        "non_background_fraction": non_white,
        "distinct_colours": colours,
    }
    if non_white == 0.0 or colours < 2:
        fail.append(f"rendered vector PNG looks blank: {info}")
    for lyr in layers:
        if lyr.labelsEnabled() and lyr.featureCount() > 0 and not labels[lyr.name()]:
            fail.append(f"{lyr.name()}: labels are on but QGIS placed none")
    return info


def check_vectors(gpkgs: list[Path], png: Path, summary: dict[str, Any], fail: list[str]) -> None:
    """All vector work; every QGIS layer object is gone when this returns."""
    from qgis.core import QgsWkbTypes

    layers = []
    for gpkg in gpkgs:
        layer, info = check_vector(gpkg, fail)
        summary["vectors"].append(info)
        if info.get("valid"):
            layers.append(layer)
    if not layers:
        fail.append("nothing to render: no valid vector layer")
        return
    order = {QgsWkbTypes.PointGeometry: 0, QgsWkbTypes.LineGeometry: 1}
    layers.sort(key=lambda lyr: order.get(lyr.geometryType(), 2))  # points on top
    summary["vector_render"] = render_vectors(layers, png, fail)


# --- for the project's Python (pytest): start this script in SYSTEM_PYTHON ------------------


def qgis_env(tmp: Path) -> dict[str, str]:
    """Headless Qt, and a throwaway HOME so QGIS writes no profile into the user's."""
    home, run = tmp / "home", tmp / "xdg-runtime"
    home.mkdir(parents=True, exist_ok=True)
    run.mkdir(mode=0o700, parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        QT_QPA_PLATFORM="offscreen",
        HOME=str(home),
        XDG_RUNTIME_DIR=str(run),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
    )
    return env


def qgis_unavailable(tmp: Path) -> str:
    """Why QGIS cannot be used here (``""`` when ``qgis.core`` imports in SYSTEM_PYTHON)."""
    import subprocess

    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} does not exist"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import qgis.core"],
        env=qgis_env(tmp),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        return (probe.stderr.strip().splitlines() or ["import failed"])[-1]
    return ""


def run_qgis_check(
    outdir: Path, png: Path, tmp: Path, *, vector_png: Path | None = None, timeout: float = 120
) -> dict[str, Any]:
    """Run this script on ``outdir`` in SYSTEM_PYTHON; its JSON summary, all checks passed.

    Raises
    ------
    AssertionError
        The script failed (exit status, its failures, stderr and stdout in the message) or
        printed no summary.
    """
    import subprocess

    cmd = [SYSTEM_PYTHON, str(Path(__file__).resolve()), str(outdir), str(png)]
    if vector_png is not None:
        cmd.append(str(vector_png))
    res = subprocess.run(cmd, env=qgis_env(tmp), capture_output=True, text=True, timeout=timeout)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        raise AssertionError(
            f"qgis_check.py exited {res.returncode}\n--- stderr\n{res.stderr[-4000:]}"
            f"\n--- stdout\n{res.stdout[-4000:]}"
        )
    summary: dict[str, Any] = json.loads(lines[-1])
    if not summary["ok"] or summary["failures"]:
        raise AssertionError(f"qgis_check.py failures: {summary['failures']}")
    return summary


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(f"usage: {Path(argv[0]).name} OUTDIR PNG_PATH [VECTOR_PNG]", file=sys.stderr)
        return 2
    outdir, png = Path(argv[1]), Path(argv[2])
    vector_png = Path(argv[3]) if len(argv) == 4 else png.with_name(f"{png.stem}_vectors.png")
    tifs = sorted(outdir.glob("*.tif"))
    gpkgs = sorted(outdir.glob("*.gpkg"))
    if not tifs and not gpkgs:
        print(f"qgis_check: no *.tif or *.gpkg in {outdir}", file=sys.stderr)
        return 2

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import Qgis, QgsApplication

    global _APP  # must outlive every layer, or Python tears it down first and QGIS crashes
    _APP = QgsApplication([], False)
    _APP.setPrefixPath("/usr", True)
    _APP.initQgis()
    fail: list[str] = []
    summary: dict[str, Any] = {"qgis_version": Qgis.version(), "layers": [], "vectors": []}
    for work, files, out in ((check_all, tifs, png), (check_vectors, gpkgs, vector_png)):
        if not files:
            continue
        try:
            work(files, out, summary, fail)
        except Exception as exc:  # report unexpected errors as failures, with the JSON
            fail.append(f"{type(exc).__name__}: {exc}")
    summary["failures"] = fail
    summary["ok"] = not fail
    print(json.dumps(summary), flush=True)
    for f in fail:
        print(f"qgis_check FAILED: {f}", file=sys.stderr)
    _APP.exitQgis()
    return 1 if fail else 0


_APP: Any = None

if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""Open geohm's output GeoTIFFs in real QGIS, check them and their ``.qml`` styles, render a PNG.

Run by Debian's system Python, where ``python3-qgis`` installs (the project's Python cannot
import ``qgis``)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_check.py OUTDIR PNG_PATH

Every ``OUTDIR/*.tif`` is loaded as a QGIS raster layer (GDAL provider) and the ``.qml``
beside it is applied with ``loadNamedStyle``. Checked per layer: the layer is valid, the
``.qml`` is picked up as the default style and loads without error, the CRS is the
GeoTIFF's EPSG code and the extent its bounds (both read with GDAL, tolerance 1e-6
pixel), the renderer is ``paletted`` for class rasters (``*_risk.tif``, ``*_class.tif``)
and ``singlebandpseudocolor`` otherwise, and the renderer's classes (palette entries or
colour-ramp items, with the ramp's min/max) are exactly those written in the ``.qml``.
Then the first class layer (if any) is rendered over its concentration layer (else the
Cu concentration layer alone) into PNG_PATH, which must not be blank.

Prints one JSON summary line to stdout; exits 1 (after the summary, with the failures on
stderr) if any check fails, 2 on bad usage.
"""

from __future__ import annotations

import json
import math
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

CLASS_SUFFIXES = ("_risk", "_class")
RENDER_SIZE = 800
REL_TOL = 1e-6  # ramp values / min-max are written with 6 significant digits


def is_class_layer(tif: Path) -> bool:
    return tif.stem.endswith(CLASS_SUFFIXES)


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
    base = None
    if classes:
        metal = classes[0].rsplit("_", 1)[0]
        base = f"{metal}_concentration" if f"{metal}_concentration" in layers else None
    if base is None:
        conc = [s for s in layers if s.endswith("_concentration")]
        base = "Cu_concentration" if "Cu_concentration" in conc else (conc or [None])[0]
    stack = []  # top first
    if classes:
        stack.append(layers[classes[0]])
        if base is not None:  # let the concentration ramp show through
            stack[0].renderer().setOpacity(0.6)
    if base is not None:
        stack.append(layers[base])
    if not stack:
        fail.append("nothing to render: no valid class or concentration layer")
        return
    summary["render"] = render(stack, png, fail)
    if classes and base is not None:
        summary["render"]["top_layer_opacity"] = 0.6


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(f"usage: {Path(argv[0]).name} OUTDIR PNG_PATH", file=sys.stderr)
        return 2
    outdir, png = Path(argv[1]), Path(argv[2])
    tifs = sorted(outdir.glob("*.tif"))
    if not tifs:
        print(f"qgis_check: no *.tif in {outdir}", file=sys.stderr)
        return 2

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import Qgis, QgsApplication

    global _APP  # must outlive every layer, or Python tears it down first and QGIS crashes
    _APP = QgsApplication([], False)
    _APP.setPrefixPath("/usr", True)
    _APP.initQgis()
    fail: list[str] = []
    summary: dict[str, Any] = {"qgis_version": Qgis.version(), "layers": []}
    try:
        check_all(tifs, png, summary, fail)
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

"""QGIS layer styles (``.qml``) written beside GeoTIFFs and GeoPackages so they open styled.

QGIS reads a ``<name>.qml`` next to ``<name>.tif`` (or ``<name>.gpkg``, when the
GeoPackage holds no style of its own in a ``layer_styles`` table) as the layer's default
style. No maintained Python library writes QGIS styles without QGIS itself, so the small
XML documents are built here with ElementTree.

Rasters: :func:`write_qml_ramp` (continuous values: concentrations, the dissimilarity
index ``<t>_di.tif``), :func:`write_qml_paletted` (classes: risk, exceedance, the area of
applicability ``<t>_aoa.tif`` with :data:`AOA_CLASSES`). Vectors:
:func:`write_qml_zones` (``zones.gpkg``: polygons graduated on one statistic); point
layers in :mod:`geohm.io.point_styles`.
Symbol layers carry their properties both as ``<Option>`` maps (QGIS >= 3.18 reads these)
and as ``<prop>`` elements (what older QGIS reads), as QGIS 3.22 itself writes them.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from matplotlib import colormaps
from matplotlib.colors import to_hex, to_rgba

from geohm.io.rasters import atomic_path

__all__ = [
    "AOA_CLASSES",
    "write_qml_paletted",
    "write_qml_ramp",
    "write_qml_zones",
]

_QGIS_VERSION = "3.28.0"

#: Classes of an area-of-applicability raster (``<t>_aoa.tif``: 1 inside, 0 outside, 255
#: nodata, which QGIS leaves transparent), for :func:`write_qml_paletted`.
AOA_CLASSES: tuple[tuple[int, str, str], ...] = (
    (0, "outside the area of applicability", "#bdbdbd"),
    (1, "inside the area of applicability", "#1a9850"),
)

#: QGIS geometry types (``QgsWkbTypes::GeometryType``) written as ``layerGeometryType``.
_POINT, _POLYGON = 0, 2


def _document(renderer: ET.Element) -> ET.ElementTree:
    root = ET.Element("qgis", version=_QGIS_VERSION, styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    pipe.append(renderer)
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    return ET.ElementTree(root)


def _write(tree: ET.ElementTree, path: str | os.PathLike[str]) -> Path:
    """Write the style atomically; a failed write raises OutputError (see atomic_path)."""
    final = Path(path)
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
            tree.write(fh, encoding="utf-8", xml_declaration=False)
    return final


def write_qml_ramp(
    path: str | os.PathLike[str],
    *,
    vmin: float,
    vmax: float,
    cmap: str = "YlOrRd",
    stops: int = 7,
    label_precision: int = 1,
    units: str = "",
) -> Path:
    """A single-band pseudocolour style with an interpolated colour ramp.

    Parameters
    ----------
    path : path-like
        The ``.qml`` file (usually the GeoTIFF's name with ``.qml``).
    vmin, vmax : float
        Values at the two ends of the ramp (data units, e.g. mg/kg).
    cmap : str
        A matplotlib colour map name.
    stops : int
        Number of colour stops (legend entries).
    label_precision : int
        Decimals shown in the legend.
    units : str
        Appended to the legend labels.
    """
    if not vmax > vmin:
        vmax = vmin + 1.0
    ramp = colormaps[cmap]
    r = ET.Element(
        "rasterrenderer",
        type="singlebandpseudocolor",
        band="1",
        opacity="1",
        alphaBand="-1",
        classificationMin=f"{vmin:g}",
        classificationMax=f"{vmax:g}",
        nodataColor="",
    )
    ET.SubElement(r, "rasterTransparency")
    mmo = ET.SubElement(r, "minMaxOrigin")
    for tag, text in (
        ("limits", "None"),
        ("extent", "WholeRaster"),
        ("statAccuracy", "Estimated"),
        ("cumulativeCutLower", "0.02"),
        ("cumulativeCutUpper", "0.98"),
        ("stdDevFactor", "2"),
    ):
        ET.SubElement(mmo, tag).text = text
    shader = ET.SubElement(r, "rastershader")
    crs = ET.SubElement(
        shader,
        "colorrampshader",
        colorRampType="INTERPOLATED",
        classificationMode="1",
        minimumValue=f"{vmin:g}",
        maximumValue=f"{vmax:g}",
        clip="0",
        labelPrecision=str(label_precision),
    )
    suffix = f" {units}" if units else ""
    for k in range(stops):
        frac = k / (stops - 1)
        value = vmin + frac * (vmax - vmin)
        ET.SubElement(
            crs,
            "item",
            alpha="255",
            value=f"{value:.6g}",
            label=f"{value:.{label_precision}f}{suffix}",
            color=to_hex(ramp(frac)),
        )
    # QGIS >= 3.18 shows an interpolated ramp as one continuous bar in the legend, labelled with
    # the bare min/max (all decimals, no unit) unless told otherwise here
    legend = ET.SubElement(
        crs,
        "rampLegendSettings",
        useContinuousLegend="1",
        minimumLabel="",
        maximumLabel="",
        prefix="",
        suffix=suffix,
        direction="0",
        orientation="2",
    )
    fmt = ET.SubElement(ET.SubElement(legend, "numericFormat", id="basic"), "Option", type="Map")
    for name, typ, val in (
        ("decimal_separator", "QChar", ""),
        ("decimals", "int", str(label_precision)),
        ("rounding_type", "int", "0"),
        ("show_plus", "bool", "false"),
        ("show_thousand_separator", "bool", "true"),
        ("show_trailing_zeros", "bool", "true"),
        ("thousand_separator", "QChar", ""),
    ):
        ET.SubElement(fmt, "Option", name=name, type=typ, value=val)
    return _write(_document(r), path)


def write_qml_paletted(
    path: str | os.PathLike[str],
    classes: Sequence[tuple[int, str, str]],
) -> Path:
    """A paletted (unique values) style for a class raster.

    Parameters
    ----------
    path : path-like
        The ``.qml`` file.
    classes : sequence of (value, label, colour)
        Class value, legend label and ``#rrggbb`` colour.
    """
    r = ET.Element(
        "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1", nodataColor=""
    )
    ET.SubElement(r, "rasterTransparency")
    pal = ET.SubElement(r, "colorPalette")
    for value, label, color in classes:
        ET.SubElement(pal, "paletteEntry", value=str(value), label=label, color=color, alpha="255")
    return _write(_document(r), path)


# --- vector styles ----------------------------------------------------------------------


def _qgis_color(color: str, opacity: float = 1.0) -> str:
    """``"r,g,b,a"`` (0-255 each), as QGIS writes colours in symbol properties."""
    r, g, b, a = to_rgba(color, alpha=None)
    return ",".join(str(round(255 * v)) for v in (r, g, b, a * opacity))


def _options(parent: ET.Element, props: dict[str, str]) -> None:
    """Properties as an ``<Option type="Map">`` and as ``<prop>`` elements (older QGIS)."""
    opt = ET.SubElement(parent, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(opt, "Option", name=k, type="QString", value=v)
    for k, v in props.items():
        ET.SubElement(parent, "prop", k=k, v=v)


def _symbol(name: str, kind: str, layer_class: str, props: dict[str, str]) -> ET.Element:
    sym = ET.Element("symbol", name=name, type=kind, alpha="1", clip_to_extent="1", force_rhr="0")
    attrs = {"class": layer_class, "enabled": "1", "locked": "0", "pass": "0"}
    layer = ET.SubElement(sym, "layer", attrs)
    _options(layer, props)
    return sym


def _fill_props(fill: str, outline: str, outline_width_mm: float) -> dict[str, str]:
    return {
        "color": fill,
        "style": "solid",
        "outline_color": outline,
        "outline_style": "solid",
        "outline_width": f"{outline_width_mm:g}",
        "outline_width_unit": "MM",
        "joinstyle": "bevel",
        "offset": "0,0",
        "offset_unit": "MM",
    }


def _labeling(
    field: str, *, polygon: bool, size_pt: float, bold: bool, dist_mm: float
) -> ET.Element:
    """Simple labelling on a field: dark text with a white halo, every label drawn."""
    lab = ET.Element("labeling", type="simple")
    settings = ET.SubElement(lab, "settings", calloutType="simple")
    style = ET.SubElement(
        settings,
        "text-style",
        fieldName=field,
        isExpression="0",
        fontFamily="Sans Serif",
        namedStyle="Bold" if bold else "Regular",
        fontWeight="75" if bold else "50",
        fontItalic="0",
        fontSize=f"{size_pt:g}",
        fontSizeUnit="Point",
        textColor="20,20,20,255",
        textOpacity="1",
        multilineHeight="1",
        capitalization="0",
        blendMode="0",
        allowHtml="0",
    )
    ET.SubElement(
        style,
        "text-buffer",
        bufferDraw="1",
        bufferSize="0.8",
        bufferSizeUnits="MM",
        bufferColor="255,255,255,255",
        bufferOpacity="0.85",
        bufferNoFill="1",
        bufferJoinStyle="128",
        bufferBlendMode="0",
    )
    ET.SubElement(
        settings,
        "text-format",
        wrapChar="",
        multilineAlign="3",
        formatNumbers="0",
        decimals="3",
        plussign="0",
    )
    # placement: 4 = horizontal, inside the polygon, off other layers' markers and labels;
    # 6 = cartographic positions around a point, ``dist`` mm from the marker
    ET.SubElement(
        settings,
        "placement",
        placement="4" if polygon else "6",
        quadOffset="4",
        centroidInside="1",
        centroidWhole="0",
        fitInPolygonOnly="0",
        dist=f"{dist_mm:g}",
        distUnits="MM",
        xOffset="0",
        yOffset="0",
        offsetUnits="MM",
        offsetType="0",
        rotationAngle="0",
        placementFlags="10",
        polygonPlacementFlags="2",
        priority="5",
        predefinedPositionOrder="TR,TL,BR,BL,R,L,TSR,BSR",
    )
    ET.SubElement(
        settings,
        "rendering",
        drawLabels="1",
        displayAll="1",  # a label for every feature, even where labels collide
        obstacle="1",
        obstacleFactor="1",
        obstacleType="1",
        zIndex="0",
        upsidedownLabels="0",
        labelPerPart="0",
        mergeLines="0",
        minFeatureSize="0",
        limitNumLabels="0",
        maxNumLabels="2000",
        scaleVisibility="0",
        scaleMin="0",
        scaleMax="0",
        fontLimitPixelSize="0",
        fontMinPixelSize="0",
        fontMaxPixelSize="10000",
    )
    return lab


def _vector_document(
    renderer: ET.Element, geometry_type: int, labeling: ET.Element | None
) -> ET.ElementTree:
    root = ET.Element(
        "qgis",
        version=_QGIS_VERSION,
        styleCategories="Symbology|Labeling",
        labelsEnabled="1" if labeling is not None else "0",
    )
    root.append(renderer)
    if labeling is not None:
        root.append(labeling)
    ET.SubElement(root, "blendMode").text = "0"
    ET.SubElement(root, "featureBlendMode").text = "0"
    ET.SubElement(root, "layerOpacity").text = "1"
    ET.SubElement(root, "layerGeometryType").text = str(geometry_type)
    ET.indent(root)
    return ET.ElementTree(root)


def _decimals(values: Sequence[float]) -> int:
    """The fewest decimals (0-6) that print every value exactly (to 1e-9)."""
    for d in range(7):
        if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, abs(v)) for v in values):
            return d
    return 6


def write_qml_zones(
    path: str | os.PathLike[str],
    *,
    field: str,
    vmin: float = 0.0,
    vmax: float = 1.0,
    classes: int = 5,
    cmap: str = "YlOrRd",
    percent: bool = True,
    decimals: int | None = None,
    units: str = "",
    label_field: str | None = None,
    fill_opacity: float = 0.7,
) -> Path:
    """A graduated polygon style on one numeric column, for ``zones.gpkg``.

    ``classes`` equal-interval ranges from ``vmin`` to ``vmax`` (QGIS renderer
    ``graduatedSymbol`` on ``field``), coloured along ``cmap`` (yellow to red by default),
    each a semi-transparent fill with a dark outline. QGIS puts a value in the first range
    with ``lower <= value <= upper``: values outside ``[vmin, vmax]`` and NULL (a zone with
    no mapped pixel has a NULL share) are not drawn.

    Parameters
    ----------
    path : path-like
        The ``.qml`` file: ``zones.qml`` beside ``zones.gpkg`` is QGIS's default style.
    field : str
        The column to classify, e.g. ``"Cu_expected_share"`` (share 0-1) or
        ``"Cu_expected_ha"`` (hectares; then ``percent=False`` and ``vmax`` the largest).
    vmin, vmax : float
        The ends of the classified range, in the column's units. A ``vmax`` that is not
        finite or not above ``vmin`` becomes ``vmin + 1``.
    classes : int
        Number of ranges (legend entries), at least 1.
    cmap : str
        A matplotlib colour map name, sampled at the ranges' centres.
    percent : bool
        Legend labels as percentages (``"20 - 40 %"``) of values that are shares (0-1).
    decimals : int, optional
        Decimals of the legend labels; by default the fewest that show the range
        boundaries exactly (at most 6).
    units : str
        Appended to the legend labels when ``percent`` is false (e.g. ``"ha"``).
    label_field : str, optional
        Label each zone with this column (the zone id); no labels when None.
    fill_opacity : float
        Opacity of the fill, 0-1 (the outline is opaque).

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        ``classes`` < 1, ``field`` empty or ``fill_opacity`` outside 0-1.
    OutputError
        The write failed (nothing is left under ``path``).
    """
    if classes < 1:
        raise ValueError(f"a graduated style needs at least one class, got {classes}")
    if not field:
        raise ValueError("a graduated style needs the name of the column to classify")
    if not 0.0 <= fill_opacity <= 1.0:
        raise ValueError(f"fill_opacity must be within 0-1, got {fill_opacity}")
    if not (math.isfinite(vmax) and vmax > vmin):
        vmax = vmin + 1.0
    bounds = [vmin + k * (vmax - vmin) / classes for k in range(classes + 1)]
    bounds = [float(f"{b:.12g}") for b in bounds]  # 0.6, not 0.6000000000000001
    scale, suffix = (100.0, " %") if percent else (1.0, f" {units}" if units else "")
    shown = [b * scale for b in bounds]
    d = _decimals(shown) if decimals is None else decimals
    ramp = colormaps[cmap]
    outline = "35,35,35,255"

    r = ET.Element(
        "renderer-v2",
        type="graduatedSymbol",
        attr=field,
        graduatedMethod="GraduatedColor",
        symbollevels="0",
        enableorderby="0",
        forceraster="0",
    )
    ranges = ET.SubElement(r, "ranges")
    symbols = ET.SubElement(r, "symbols")
    for k in range(classes):
        label = f"{shown[k]:.{d}f} - {shown[k + 1]:.{d}f}{suffix}"
        ET.SubElement(
            ranges,
            "range",
            symbol=str(k),
            lower=f"{bounds[k]:.15g}",
            upper=f"{bounds[k + 1]:.15g}",
            label=label,
            render="true",
        )
        fill = _qgis_color(to_hex(ramp((k + 0.5) / classes)), fill_opacity)
        symbols.append(_symbol(str(k), "fill", "SimpleFill", _fill_props(fill, outline, 0.4)))
    # the symbol and ramp QGIS starts from when the user reclassifies in the dialog
    source = ET.SubElement(r, "source-symbol")
    fill0 = _qgis_color(to_hex(ramp(0.5)), fill_opacity)
    source.append(_symbol("0", "fill", "SimpleFill", _fill_props(fill0, outline, 0.4)))
    cramp = ET.SubElement(r, "colorramp", type="gradient", name="[source]")
    stops = ":".join(f"{q:g};{_qgis_color(to_hex(ramp(q)))}" for q in (0.25, 0.5, 0.75))
    _options(
        cramp,
        {
            "color1": _qgis_color(to_hex(ramp(0.0))),
            "color2": _qgis_color(to_hex(ramp(1.0))),
            "discrete": "0",
            "rampType": "gradient",
            "stops": stops,
        },
    )
    method = ET.SubElement(r, "classificationMethod", id="EqualInterval")
    ET.SubElement(method, "symmetricMode", enabled="0", symmetrypoint="0", astride="0")
    ET.SubElement(
        method, "labelFormat", format="%1 - %2", labelprecision=str(d), trimtrailingzeroes="0"
    )
    ET.SubElement(ET.SubElement(method, "parameters"), "Option")
    ET.SubElement(method, "extraInformation")
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    labeling = (
        None
        if label_field is None
        else _labeling(label_field, polygon=True, size_pt=9, bold=False, dist_mm=0)
    )
    return _write(_vector_document(r, _POLYGON, labeling), path)

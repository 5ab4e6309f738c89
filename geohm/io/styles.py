"""QGIS layer styles (``.qml``) written beside GeoTIFFs so they open styled.

QGIS reads a ``<name>.qml`` next to ``<name>.tif`` as the layer's default style. No
maintained Python library writes QGIS raster styles without QGIS itself, so the small
XML document is built here with ElementTree.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from matplotlib import colormaps
from matplotlib.colors import to_hex

from geohm.io.rasters import atomic_path

__all__ = ["write_qml_paletted", "write_qml_ramp"]

_QGIS_VERSION = "3.28.0"


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

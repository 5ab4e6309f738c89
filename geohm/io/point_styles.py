"""QGIS styles of point layers: suggested samples labelled by rank, sites by category.

Kept beside :mod:`geohm.io.styles` (rasters, zones), whose document helpers they share.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from geohm.io.styles import _POINT, _labeling, _qgis_color, _symbol, _vector_document, _write

__all__ = ["write_qml_categories", "write_qml_points"]


def write_qml_points(
    path: str | os.PathLike[str],
    *,
    rank_field: str = "rank",
    color: str = "#2166ac",
    size_mm: float = 3.0,
) -> Path:
    """A point style for suggested sample points (``next_samples.gpkg``), labelled by rank.

    One symbol for every point (renderer ``singleSymbol``): a filled circle with a white
    outline, and the point's rank as a bold label beside it (every label drawn, even where
    labels collide).

    Parameters
    ----------
    path : path-like
        The ``.qml`` file: ``next_samples.qml`` beside ``next_samples.gpkg`` is QGIS's
        default style.
    rank_field : str
        The column labelled on each point (1 = the best suggestion).
    color : str
        Marker fill colour (any matplotlib colour, e.g. ``#rrggbb``).
    size_mm : float
        Marker diameter, mm on the map.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        ``rank_field`` empty or ``size_mm`` not positive.
    OutputError
        The write failed (nothing is left under ``path``).
    """
    if not rank_field:
        raise ValueError("the point style needs the name of the rank column")
    if not size_mm > 0:
        raise ValueError(f"size_mm must be positive, got {size_mm}")
    props = _marker_props(color, size_mm)
    r = ET.Element(
        "renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0", forceraster="0"
    )
    ET.SubElement(r, "symbols").append(_symbol("0", "marker", "SimpleMarker", props))
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    labeling = _labeling(rank_field, polygon=False, size_pt=10, bold=True, dist_mm=0.8)
    return _write(_vector_document(r, _POINT, labeling), path)


def _marker_props(color: str, size_mm: float) -> dict[str, str]:
    """A filled circle with a white outline, ``size_mm`` across."""
    return {
        "name": "circle",
        "color": _qgis_color(color),
        "outline_color": "255,255,255,255",
        "outline_style": "solid",
        "outline_width": "0.4",
        "outline_width_unit": "MM",
        "size": f"{size_mm:g}",
        "size_unit": "MM",
        "scale_method": "diameter",
        "angle": "0",
        "joinstyle": "bevel",
        "offset": "0,0",
        "offset_unit": "MM",
        "horizontal_anchor_point": "1",
        "vertical_anchor_point": "1",
    }


def write_qml_categories(
    path: str | os.PathLike[str],
    field: str,
    categories: Sequence[tuple[str, str, str]],
    *,
    label_field: str | None = None,
    size_mm: float = 3.5,
) -> Path:
    """A point style coloured by the value of ``field`` (renderer ``categorizedSymbol``).

    Parameters
    ----------
    path : path-like
        The ``.qml`` file, named as the ``.gpkg`` it styles.
    field : str
        The column whose values pick the symbol (e.g. a warning level).
    categories : sequence of (value, label, colour)
        One circle per value, in legend order (colours as ``#rrggbb``).
    label_field : str, optional
        A column labelled beside each point (e.g. the site id).
    size_mm : float
        Marker diameter, mm on the map.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    ValueError
        No categories, or ``size_mm`` not positive.
    OutputError
        The write failed (nothing is left under ``path``).
    """
    if not categories:
        raise ValueError("a categorized style needs at least one category")
    if not size_mm > 0:
        raise ValueError(f"size_mm must be positive, got {size_mm}")
    r = ET.Element(
        "renderer-v2",
        type="categorizedSymbol",
        attr=field,
        symbollevels="0",
        enableorderby="0",
        forceraster="0",
    )
    cats, syms = ET.SubElement(r, "categories"), ET.SubElement(r, "symbols")
    for i, (value, label, color) in enumerate(categories):
        ET.SubElement(cats, "category", value=str(value), label=label, symbol=str(i), render="true")
        syms.append(_symbol(str(i), "marker", "SimpleMarker", _marker_props(color, size_mm)))
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    labeling = None
    if label_field:
        labeling = _labeling(label_field, polygon=False, size_pt=8, bold=False, dist_mm=0.8)
    return _write(_vector_document(r, _POINT, labeling), path)

"""geohm's maps as QGIS layers, each with the ``.qml`` style geohm wrote beside it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingContext, QgsRasterLayer, QgsVectorLayer

#: The suffixes of the outputs opened as layers: GeoTIFF maps, GeoPackage zones and points.
LAYER_SUFFIXES = (".tif", ".gpkg")


def output_layers(folder: Path) -> list[Path]:
    """The maps a geohm run wrote into ``folder``, in name order.

    The outputs its ``manifest.json`` lists (written last, so only a finished run's),
    else every GeoTIFF and GeoPackage directly in the folder.

    Parameters
    ----------
    folder : Path
        The run's output folder.

    Returns
    -------
    list of Path
        The ``.tif`` and ``.gpkg`` files that exist.
    """
    try:
        with open(folder / "manifest.json", encoding="utf-8") as fh:
            names = list(json.load(fh)["outputs"])
    except (OSError, ValueError, KeyError, TypeError):
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    files = {folder / n for n in names if n.lower().endswith(LAYER_SUFFIXES)}
    return sorted(p for p in files if p.is_file())


def styled_layer(path: Path) -> tuple[Any, str]:
    """A raster or vector layer of ``path`` with the ``.qml`` beside it applied.

    Parameters
    ----------
    path : Path
        A GeoTIFF (GDAL provider) or GeoPackage (OGR provider, its first layer).

    Returns
    -------
    layer : QgsRasterLayer or QgsVectorLayer
        The layer, named after the file (check ``isValid()``).
    problem : str
        Why it is not usable or not styled ("" when it is both).
    """
    name = path.stem
    if path.suffix.lower() == ".gpkg":
        layer: Any = QgsVectorLayer(os.fspath(path), name, "ogr")
    else:
        layer = QgsRasterLayer(os.fspath(path), name, "gdal")
    if not layer.isValid():
        return layer, f"QGIS cannot open {path} as a layer"
    qml = path.with_suffix(".qml")
    if not qml.is_file():
        return layer, f"{path.name} has no style {qml.name} beside it"
    message, ok = layer.loadNamedStyle(os.fspath(qml))
    if not ok:
        return layer, f"QGIS rejected the style {qml}: {message}"
    return layer, ""


def load_on_completion(
    paths: list[Path], context: Any, feedback: Any, output_name: str
) -> list[str]:
    """Open ``paths`` styled and have Processing add them to the project when done.

    Each valid layer goes to the context's temporary layer store and its list of layers
    to load on completion (the toolbox and the modeler add them to the project, with
    the style already applied). A layer QGIS cannot open is reported and left out.

    Parameters
    ----------
    paths : list of Path
        The files to open (:func:`output_layers`).
    context : QgsProcessingContext
        The algorithm's context.
    feedback : QgsProcessingFeedback
        Where problems are reported.
    output_name : str
        The algorithm output the layers belong to.

    Returns
    -------
    list of str
        The paths of the layers that will be loaded.
    """
    loaded = []
    project = context.project()
    for path in paths:
        layer, problem = styled_layer(path)
        if problem:
            feedback.pushWarning(problem)
        if not layer.isValid():
            continue
        loaded.append(os.fspath(path))
        if project is None:  # no project to load into (a bare qgis_process run)
            continue
        context.temporaryLayerStore().addMapLayer(layer)
        details = QgsProcessingContext.LayerDetails(layer.name(), project, output_name)
        context.addLayerToLoadOnCompletion(layer.id(), details)
    return loaded

"""geohm's QGIS plugin: a Processing provider that runs the ``geohm`` command.

These files are the plugin as QGIS loads it: ``geohm qgis-plugin install``
(:func:`geohm.io.qgis_plugin.install_plugin`) copies this folder into a QGIS profile as
``python/plugins/geohm``, where QGIS imports it as the top-level package ``geohm`` and
calls :func:`classFactory`. They run in QGIS's own Python, which has ``qgis`` but not
geohm: they import nothing from geohm (only each other, relatively) and start the
``geohm`` program as a child process (:mod:`.process`: its command line, progress and
cancel; plain Python). ``metadata.txt`` says ``hasProcessingProvider=yes``, so QGIS
calls ``initProcessing`` also where no GUI runs (``qgis_process``).

Modules: :mod:`.plugin` (the plugin object), :mod:`.provider` (the Processing provider
and its setting), :mod:`.algorithms` (run a scene, predict with a saved model, make the
demo data), :mod:`.layers` (the outputs loaded with their ``.qml`` styles) and
:mod:`.process`. Only this module is imported by geohm's own Python (never the ones
that import ``qgis``).
"""

from __future__ import annotations

from typing import Any


def classFactory(iface: Any) -> Any:
    """The plugin object QGIS keeps while the plugin is loaded.

    Parameters
    ----------
    iface : qgis.gui.QgisInterface or None
        QGIS's interface (None in ``qgis_process`` and headless scripts).

    Returns
    -------
    GeohmPlugin
        The plugin: ``initProcessing`` registers the provider.
    """
    from .plugin import GeohmPlugin

    return GeohmPlugin(iface)

"""The plugin object: registers geohm's Processing provider with QGIS."""

from __future__ import annotations

from typing import Any

from qgis.core import QgsApplication

from .provider import GeohmProvider


class GeohmPlugin:
    """geohm's QGIS plugin: its only part is the Processing provider.

    Parameters
    ----------
    iface : qgis.gui.QgisInterface or None
        QGIS's interface (None where no GUI runs).
    """

    def __init__(self, iface: Any) -> None:
        self.iface = iface
        self.provider: GeohmProvider | None = None

    def initProcessing(self) -> None:
        """Register the provider (QGIS calls this also in ``qgis_process``)."""
        if self.provider is None:
            self.provider = GeohmProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:
        """Register the provider when QGIS starts the plugin with its GUI."""
        self.initProcessing()

    def unload(self) -> None:
        """Remove the provider (the plugin is disabled or reloaded)."""
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

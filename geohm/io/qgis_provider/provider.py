"""The Processing provider ``geohm``: its algorithms and its setting (the geohm program)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithms import (
    EXECUTABLE_SETTING,
    DemoDataAlgorithm,
    PredictAlgorithm,
    RunSceneAlgorithm,
)

_HERE = Path(__file__).resolve().parent


class GeohmProvider(QgsProcessingProvider):
    """The ``geohm`` provider: Run scene job, Predict with a saved model, Make the demo data."""

    def load(self) -> bool:
        """Add the 'geohm executable' setting to Processing's options, then the algorithms.

        Returns
        -------
        bool
            True (the provider is usable; a missing geohm is reported when an algorithm runs).
        """
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # Processing's Python plugin absent: the setting is only read
            pass
        else:
            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(
                Setting(
                    self.name(),
                    EXECUTABLE_SETTING,
                    "geohm executable (default: $GEOHM_EXECUTABLE, the geohm that installed "
                    "the plugin, or geohm on PATH)",
                    "",
                    valuetype=Setting.FILE,
                )
            )
            ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        """Remove the setting from Processing's options."""
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        if EXECUTABLE_SETTING in ProcessingConfig.settings:
            ProcessingConfig.removeSetting(EXECUTABLE_SETTING)

    def loadAlgorithms(self) -> None:
        """Add the three algorithms."""
        for alg in (RunSceneAlgorithm(), PredictAlgorithm(), DemoDataAlgorithm()):
            self.addAlgorithm(alg)

    def id(self) -> str:
        """The provider's id, the prefix of its algorithms' ids (``geohm:runscene``)."""
        return "geohm"

    def name(self) -> str:
        """The provider's name in the toolbox."""
        return "geohm"

    def longName(self) -> str:
        """The provider's name with what it does."""
        return "geohm: heavy-metal contamination of soil from Landsat"

    def icon(self) -> Any:
        """The provider's icon."""
        return QIcon(os.fspath(_HERE / "icon.svg"))

    def svgIconPath(self) -> str:
        """The path of the provider's icon."""
        return os.fspath(_HERE / "icon.svg")

"""The provider's algorithms: each runs one ``geohm`` command and opens its maps styled.

``geohm:runscene`` (``geohm run``), ``geohm:predict`` (``geohm predict``) and
``geohm:demodata`` (``geohm synth``, or ``geohm demo`` to map it too). The command's
output goes to the log, its progress bar to the progress bar; cancel stops it (Ctrl-C,
then terminate); when it succeeds the GeoTIFFs and GeoPackages it wrote are opened with
the ``.qml`` beside each. Outputs chain in the graphical modeler: ``SCENE`` of
``demodata`` into ``runscene``, ``MODEL`` of ``runscene`` into ``predict``.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputMultipleLayers,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsSettings,
)

from .layers import load_on_completion, output_layers
from .process import GeohmNotFound, Line, Progress, geohm_command, run_geohm

#: The Processing setting naming the geohm program (saved under ``Processing/Configuration``).
EXECUTABLE_SETTING = "GEOHM_EXECUTABLE"
_PLUGIN_DIR = Path(__file__).resolve().parent
_YAML = "Scene job (*.yaml *.yml)"
_MODEL = "geohm model (*.geohm)"


def executable_setting() -> str:
    """The provider's 'geohm executable' setting ("" when unset).

    Returns
    -------
    str
        The path set in Settings > Options > Processing > Providers > geohm.
    """
    value = QgsSettings().value(f"Processing/Configuration/{EXECUTABLE_SETTING}", "")
    return str(value or "")


class GeohmAlgorithm(QgsProcessingAlgorithm):
    """What the algorithms share: run geohm with feedback, open the maps it wrote."""

    _name = ""
    _display = ""
    _help = ""

    def name(self) -> str:
        """The algorithm's id within the provider."""
        return self._name

    def displayName(self) -> str:
        """The algorithm's name in the toolbox."""
        return self._display

    def shortHelpString(self) -> str:
        """What the algorithm does, shown beside its dialog."""
        return self._help

    def createInstance(self) -> GeohmAlgorithm:
        """A new instance of the same algorithm."""
        return type(self)()

    def _add_load(self) -> None:
        self.addParameter(
            QgsProcessingParameterBoolean("LOAD", "Open the maps when done", defaultValue=True)
        )
        self.addOutput(QgsProcessingOutputMultipleLayers("LAYERS", "Maps"))

    def _add_force(self) -> None:
        self.addParameter(
            QgsProcessingParameterBoolean(
                "FORCE",
                "Run even when the output folder is up to date (--force)",
                defaultValue=False,
            )
        )

    def _geohm(self, args: list[str], feedback: Any) -> None:
        """Run geohm with ``args``; its output to ``feedback``; raise if it did not succeed."""
        try:
            command = geohm_command(executable_setting(), plugin_dir=_PLUGIN_DIR)
        except GeohmNotFound as exc:
            raise QgsProcessingException(str(exc)) from None
        feedback.pushCommandInfo(" ".join(shlex.quote(w) for w in [*command, *args]))
        stage = [""]

        def on_event(event: Progress | Line) -> None:
            if isinstance(event, Progress):
                if event.stage != stage[0]:
                    stage[0] = event.stage
                    feedback.setProgressText(f"geohm {args[0]}: {event.stage} (map windows)")
                if event.total > 0:
                    feedback.setProgress(100.0 * event.done / event.total)
            elif event.level == "error":
                feedback.reportError(event.text, False)
            elif event.level == "warning":
                feedback.pushWarning(event.text)
            else:
                feedback.pushConsoleInfo(event.text)

        feedback.setProgressText(f"geohm {args[0]}: starting")
        try:
            outcome = run_geohm(
                args,
                command=command,
                on_event=on_event,
                is_canceled=feedback.isCanceled,
                on_start=lambda pid: feedback.pushInfo(f"geohm started (process {pid})"),
            )
        except OSError as exc:
            raise QgsProcessingException(
                f"cannot start geohm ({command[0]}): {exc}; set the geohm provider's setting "
                "'geohm executable' (Settings > Options > Processing > Providers > geohm)"
            ) from None
        if outcome.canceled:
            raise QgsProcessingException(
                f"geohm {args[0]} was cancelled: process {outcome.pid} stopped (exit status "
                f"{outcome.returncode}); no half-written output is left under its final "
                "name; run it again to finish"
            )
        if outcome.returncode != 0:
            said = outcome.errors[-1] if outcome.errors else " | ".join(outcome.tail[-5:])
            raise QgsProcessingException(
                f"geohm {args[0]} failed (exit status {outcome.returncode}): {said}"
            )
        feedback.setProgress(100.0)

    def _maps(self, folder: str, parameters: Any, context: Any, feedback: Any) -> list[str]:
        """Open the maps geohm wrote into ``folder`` (with LOAD); their paths."""
        if not self.parameterAsBoolean(parameters, "LOAD", context):
            return []
        feedback.setProgressText("opening the maps with their styles")
        return load_on_completion(output_layers(Path(folder)), context, feedback, "LAYERS")

    @staticmethod
    def _feedback(feedback: Any) -> Any:
        return QgsProcessingFeedback() if feedback is None else feedback


def _existing(path: Path) -> str | None:
    return os.fspath(path) if path.is_file() else None


class RunSceneAlgorithm(GeohmAlgorithm):
    """``geohm run``: a scene job's maps, report and saved model."""

    _name = "runscene"
    _display = "Run scene job"
    _help = (
        "Runs a geohm scene job (geohm run SCENE --out OUTPUT): reads the Landsat scene, "
        "DEM and soil samples the YAML names, trains and validates the model, maps every "
        "metal, and writes the maps (GeoTIFF, with QGIS styles), report.md and model.geohm "
        "into the output folder, whose maps are then opened styled. A folder whose outputs "
        "are up to date (same config, inputs and geohm version) is not run again unless "
        "'Run even when ...' is ticked. The geohm program is the one set in Settings > "
        "Options > Processing > Providers > geohm, else $GEOHM_EXECUTABLE, else the geohm "
        "that installed the plugin, else geohm on PATH."
    )

    def initAlgorithm(self, config: Any = None) -> None:
        """Declare the parameters and outputs."""
        self.addParameter(
            QgsProcessingParameterFile(
                "SCENE", "Scene job (YAML)", extension="", fileFilter=_YAML
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self._add_force()
        self._add_load()
        self.addOutput(QgsProcessingOutputFile("MODEL", "Saved model (model.geohm)"))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (report.md)"))

    def processAlgorithm(self, parameters: Any, context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``geohm run`` and open its maps."""
        feedback = self._feedback(feedback)
        scene = self.parameterAsFile(parameters, "SCENE", context)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        args = ["run", scene, "--out", out]
        if self.parameterAsBoolean(parameters, "FORCE", context):
            args.append("--force")
        self._geohm(args, feedback)
        folder = Path(out)
        return {
            "OUTPUT": out,
            "MODEL": _existing(folder / "model.geohm"),
            "REPORT": _existing(folder / "report.md"),
            "LAYERS": self._maps(out, parameters, context, feedback),
        }


class PredictAlgorithm(GeohmAlgorithm):
    """``geohm predict``: a scene mapped with a saved model."""

    _name = "predict"
    _display = "Predict with a saved model"
    _help = (
        "Maps a scene (or another year) with a model saved by 'Run scene job' (geohm "
        "predict --model MODEL SCENE --out OUTPUT): no training; the maps are scored on "
        "the scene's samples if it has any. The maps are opened styled when done."
    )

    def initAlgorithm(self, config: Any = None) -> None:
        """Declare the parameters and outputs."""
        self.addParameter(
            QgsProcessingParameterFile(
                "SCENE", "Scene job (YAML)", extension="", fileFilter=_YAML
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                "MODEL", "Saved model (model.geohm)", extension="", fileFilter=_MODEL
            )
        )
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self._add_force()
        self._add_load()
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (report.md)"))

    def processAlgorithm(self, parameters: Any, context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``geohm predict`` and open its maps."""
        feedback = self._feedback(feedback)
        scene = self.parameterAsFile(parameters, "SCENE", context)
        model = self.parameterAsFile(parameters, "MODEL", context)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        args = ["predict", "--model", model, scene, "--out", out]
        if self.parameterAsBoolean(parameters, "FORCE", context):
            args.append("--force")
        self._geohm(args, feedback)
        return {
            "OUTPUT": out,
            "REPORT": _existing(Path(out) / "report.md"),
            "LAYERS": self._maps(out, parameters, context, feedback),
        }



class DemoDataAlgorithm(GeohmAlgorithm):
    """``geohm synth`` (or ``geohm demo``): the synthetic mining-area case."""

    _name = "demodata"
    _display = "Make the demo data"
    _help = (
        "Writes geohm's synthetic two-year mining-area case (two Landsat 8 Collection 2 "
        "Level-2 scenes, a DEM, soil samples with Cu and Pb, the hidden truth) and its scene "
        "job scene.yaml into the output folder (geohm synth). 'Map it too' runs the demo "
        "instead (geohm demo: the data in OUTPUT/data, the maps in OUTPUT, opened styled). "
        "The scene job is an output: in the modeler it feeds 'Run scene job'."
    )

    def initAlgorithm(self, config: Any = None) -> None:
        """Declare the parameters and outputs."""
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Output folder"))
        self.addParameter(
            QgsProcessingParameterNumber(
                "SIZE",
                "Scene size (pixels of 30 m, square)",
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=400,
                minValue=64,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                "SEED",
                "Random seed (same seed, same data)",
                type=QgsProcessingParameterNumber.Integer,
                defaultValue=0,
                minValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterBoolean(
                "MAP", "Map it too (geohm demo: about a minute at 400 pixels)", defaultValue=False
            )
        )
        self._add_load()
        self.addOutput(QgsProcessingOutputFile("SCENE", "Scene job (scene.yaml)"))

    def processAlgorithm(self, parameters: Any, context: Any, feedback: Any) -> dict[str, Any]:
        """Run ``geohm synth`` (or ``geohm demo``)."""
        feedback = self._feedback(feedback)
        out = self.parameterAsFileOutput(parameters, "OUTPUT", context)
        size = self.parameterAsInt(parameters, "SIZE", context)
        seed = self.parameterAsInt(parameters, "SEED", context)
        mapped = self.parameterAsBoolean(parameters, "MAP", context)
        verb = "demo" if mapped else "synth"
        self._geohm([verb, "--out", out, "--seed", str(seed), "--size", str(size)], feedback)
        scene = Path(out) / "data" / "scene.yaml" if mapped else Path(out) / "scene.yaml"
        return {
            "OUTPUT": out,
            "SCENE": _existing(scene),
            "LAYERS": self._maps(out, parameters, context, feedback) if mapped else [],
        }

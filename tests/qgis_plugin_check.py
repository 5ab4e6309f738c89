"""Drive geohm's QGIS plugin in real QGIS: register it, run its algorithms, check the layers.

Run by Debian's system Python, where ``python3-qgis`` installs (the project's Python cannot
import ``qgis``)::

    QT_QPA_PLATFORM=offscreen /usr/bin/python3 tests/qgis_plugin_check.py SPEC.json

SPEC.json: ``plugins`` (a profile's ``python/plugins`` folder holding the installed plugin
``geohm``), ``geohm`` (the geohm program, set as the provider's setting) and ``work`` (a
folder for the data and outputs). Steps, as QGIS does them:

1. ``qgis.utils`` finds the plugin in ``plugins``, reads its metadata, imports it and
   starts it as a Processing plugin (``startProcessingPlugin``: ``initProcessing``);
   the provider and its algorithms are listed.
2. ``geohm:demodata`` writes the synthetic case (64 x 64 pixels, seed 3) into
   ``work/data``; a quick job ``small.yaml`` (random forest of 20 trees, no CV, no
   quicklooks, windows of 32 pixels) is written beside its ``scene.yaml``.
3. ``geohm:runscene`` into ``work/out`` is cancelled as soon as the run holds the output
   folder's lock (``.geohm.lock``): the exception, the child's pid and whether any
   process still runs the job are reported.
4. ``geohm:runscene`` into the same folder runs to the end; its progress values and
   texts, results and output files are reported; Processing's own post-processing
   (``handleAlgorithmResults``, what the toolbox does) adds the layers to the project, and
   every layer's validity, renderer and classes are reported beside its ``.qml``'s.
5. A model made as in the graphical modeler (``runscene`` then ``predict``, whose
   ``MODEL`` is ``runscene``'s output) maps the job again with the saved model into
   ``work/predicted``.

Prints one JSON summary line to stdout; exits 0 when it could run every step (the
checks are the test's), 1 on an unexpected error (after the summary), 2 on bad usage.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qgis_check import read_qml  # noqa: E402 - this folder first (run as a script)

PROCESSING_PLUGINS = "/usr/share/qgis/python/plugins"  # Debian's Processing plugin
SMALL_JOB = {
    "name": "small",
    "model": {"name": "rf", "params": {"n_estimators": 20}},
    "validation": {"test_fraction": 0.2, "cv_folds": 0, "seed": 0},
    "sampling_design": {"n": 5, "min_spacing_m": 300},
    "output": {"dir": "out", "tile": 32, "quicklooks": False},
}


def recorder() -> Any:
    """A Processing feedback that keeps everything it is told."""
    from qgis.core import QgsProcessingFeedback

    class Recorder(QgsProcessingFeedback):
        def __init__(self) -> None:
            super().__init__()
            self.log: list[list[str]] = []
            self.progress: list[float] = []
            self.progressChanged.connect(self.progress.append)

        def _keep(self, kind: str, text: str) -> None:
            self.log.append([kind, text])

        def setProgressText(self, text: str) -> None:
            self._keep("progress_text", text)
            super().setProgressText(text)

        def pushInfo(self, text: str) -> None:
            self._keep("info", text)
            super().pushInfo(text)

        def pushCommandInfo(self, text: str) -> None:
            self._keep("command", text)
            super().pushCommandInfo(text)

        def pushConsoleInfo(self, text: str) -> None:
            self._keep("console", text)
            super().pushConsoleInfo(text)

        def pushWarning(self, text: str) -> None:
            self._keep("warning", text)
            super().pushWarning(text)

        def reportError(self, text: str, fatalError: bool = False) -> None:
            self._keep("error", text)
            super().reportError(text, fatalError)

    return Recorder()


def start_plugin(plugins: str, summary: dict[str, Any]) -> None:
    """Load and start the plugin as QGIS does for a plugin with a Processing provider."""
    import qgis.utils
    from qgis.core import QgsApplication

    sys.path.insert(0, plugins)
    qgis.utils.plugin_paths = [plugins]
    qgis.utils.updateAvailablePlugins()
    summary["available_plugins"] = list(qgis.utils.available_plugins)
    summary["metadata"] = {
        key: qgis.utils.pluginMetadata("geohm", key)
        for key in ("name", "version", "qgisMinimumVersion", "hasProcessingProvider")
    }
    summary["loaded"] = qgis.utils.loadPlugin("geohm")
    summary["started"] = qgis.utils.startProcessingPlugin("geohm")
    summary["plugin_file"] = sys.modules["geohm"].__file__
    provider = QgsApplication.processingRegistry().providerById("geohm")
    summary["provider"] = None
    if provider is not None:
        summary["provider"] = {
            "name": provider.name(),
            "algorithms": sorted(a.id() for a in provider.algorithms()),
            "display_names": sorted(a.displayName() for a in provider.algorithms()),
        }


def run_alg(alg: Any, params: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """``processing.run`` with a recording feedback: results or the exception, and the log."""
    import processing
    from qgis.core import QgsProcessingException

    fb = recorder()
    out: dict[str, Any] = {}
    try:
        res = processing.run(alg, params, feedback=fb, context=context)
        out["results"] = {
            k: v if isinstance(v, (str, list, type(None))) else str(v) for k, v in res.items()
        }
    except QgsProcessingException as exc:
        out["exception"] = str(exc)
    out["log"], out["progress"] = list(fb.log), list(fb.progress)  # before post-processing
    out["feedback"] = fb
    return out


def processes_running(needle: str) -> list[str]:
    """Command lines of the processes that mention ``needle`` (the job's path)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmd:
            found.append(cmd)
    return found


def cancel_when_locked(folder: Path, feedback: Any, timeout: float = 120) -> None:
    """Cancel ``feedback`` once a geohm run holds ``folder``'s lock (a watcher thread)."""

    def watch() -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not (folder / ".geohm.lock").exists():
            time.sleep(0.05)
        feedback.cancel()

    threading.Thread(target=watch, daemon=True).start()


def started_pid(log: list[list[str]]) -> int | None:
    for kind, text in log:
        if kind == "info" and text.startswith("geohm started (process "):
            return int(text.rsplit(" ", 1)[1].rstrip(")"))
    return None


def vector_qml_type(qml: Path) -> str | None:
    r = ET.parse(qml).getroot().find("renderer-v2")
    return None if r is None else r.get("type")


def describe_layer(layer: Any) -> dict[str, Any]:
    """What QGIS made of a loaded layer, and what its ``.qml`` says it should be."""
    from qgis.core import QgsMapLayerType, QgsRasterLayer

    path = Path(layer.source().split("|")[0])
    qml = path.with_suffix(".qml")
    info: dict[str, Any] = {"file": path.name, "name": layer.name(), "valid": layer.isValid()}
    renderer = layer.renderer()
    info["renderer"] = renderer.type() if renderer else None
    if layer.type() == QgsMapLayerType.VectorLayer:
        info["kind"] = "vector"
        info["qml_renderer"] = vector_qml_type(qml)
        info["feature_count"] = layer.featureCount()
        return info
    info["kind"] = "raster"
    written = read_qml(qml)
    info["qml_renderer"] = written["type"]
    # the same file without its style: what QGIS shows when no .qml is applied
    bare_options = QgsRasterLayer.LayerOptions()
    bare_options.loadDefaultStyle = False
    bare = QgsRasterLayer(str(path), "bare", "gdal", bare_options)
    info["bare_renderer"] = bare.renderer().type() if bare.renderer() else None
    if info["renderer"] == "paletted":
        info["classes"] = [
            {"value": int(c.value), "label": c.label, "color": c.color.name()}
            for c in renderer.classes()
        ]
        info["qml_classes"] = written["classes"]
        bare_classes = bare.renderer().classes() if info["bare_renderer"] == "paletted" else []
        info["bare_labels"] = [c.label for c in bare_classes]
    elif info["renderer"] == "singlebandpseudocolor":
        fn = renderer.shader().rasterShaderFunction()
        info["ramp"] = {
            "min": fn.minimumValue(),
            "max": fn.maximumValue(),
            "labels": [i.label for i in fn.colorRampItemList()],
        }
        info["qml_ramp"] = {
            "min": written["shader_min"],
            "max": written["shader_max"],
            "labels": [i["label"] for i in written["items"]],
        }
    return info


def write_small_job(scene: Path) -> Path:
    import yaml

    cfg = yaml.safe_load(scene.read_text(encoding="utf-8"))
    cfg.pop("source", None)
    cfg.update(SMALL_JOB)
    small = scene.with_name("small.yaml")
    small.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return small


def chain_model(small: Path, out: Path, predicted: Path) -> Any:
    """runscene -> predict, as drawn in the graphical modeler (``MODEL`` feeds ``MODEL``)."""
    from qgis.core import (
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelChildParameterSource,
        QgsProcessingModelParameter,
        QgsProcessingParameterFile,
    )

    model = QgsProcessingModelAlgorithm("geohm chain", "tests")
    model.addModelParameter(
        QgsProcessingParameterFile("scene", "Scene job"), QgsProcessingModelParameter("scene")
    )
    static = QgsProcessingModelChildParameterSource.fromStaticValue
    run = QgsProcessingModelChildAlgorithm("geohm:runscene")
    run.setChildId("run")
    run.addParameterSources(
        "SCENE", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")]
    )
    run.addParameterSources("OUTPUT", [static(str(out))])
    run.addParameterSources("LOAD", [static(False)])
    predict = QgsProcessingModelChildAlgorithm("geohm:predict")
    predict.setChildId("predict")
    predict.addParameterSources(
        "SCENE", [QgsProcessingModelChildParameterSource.fromModelParameter("scene")]
    )
    predict.addParameterSources(
        "MODEL", [QgsProcessingModelChildParameterSource.fromChildOutput("run", "MODEL")]
    )
    predict.addParameterSources("OUTPUT", [static(str(predicted))])
    model.addChildAlgorithm(run)
    model.addChildAlgorithm(predict)
    return model


def steps(spec: dict[str, Any], summary: dict[str, Any]) -> None:
    from processing.core.ProcessingConfig import ProcessingConfig
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects
    from qgis.core import QgsApplication, QgsProject

    start_plugin(spec["plugins"], summary)
    if summary["provider"] is None:
        return
    ProcessingConfig.setSettingValue("GEOHM_EXECUTABLE", spec["geohm"])
    work = Path(spec["work"])

    demo = run_alg("geohm:demodata", {"OUTPUT": str(work / "data"), "SIZE": 64, "SEED": 3})
    demo.pop("feedback")
    summary["demodata"] = demo
    scene = Path((demo.get("results") or {}).get("SCENE") or work / "data" / "scene.yaml")
    small = write_small_job(scene)
    out = work / "out"

    # cancel once the run holds the output folder
    ctx = dataobjects.createContext()
    fb = recorder()
    cancel_when_locked(out, fb)
    import processing
    from qgis.core import QgsProcessingException

    t0 = time.monotonic()
    cancelled: dict[str, Any] = {}
    try:
        processing.run("geohm:runscene", {"SCENE": str(small), "OUTPUT": str(out)},
                       feedback=fb, context=ctx)
    except QgsProcessingException as exc:
        cancelled["exception"] = str(exc)
    cancelled["seconds"] = round(time.monotonic() - t0, 1)
    cancelled["log"] = fb.log
    pid = started_pid(fb.log)
    cancelled["pid"] = pid
    cancelled["pid_exists"] = pid is not None and Path(f"/proc/{pid}").exists()
    cancelled["still_running"] = processes_running(str(small))
    cancelled["files"] = sorted(p.name for p in out.iterdir()) if out.exists() else []
    summary["cancelled"] = cancelled

    # the whole run, then Processing's post-processing loads the layers
    ctx = dataobjects.createContext()
    t0 = time.monotonic()
    full = run_alg("geohm:runscene", {"SCENE": str(small), "OUTPUT": str(out)}, ctx)
    full["seconds"] = round(time.monotonic() - t0, 1)
    feedback = full.pop("feedback")
    full["files"] = sorted(p.name for p in out.iterdir())
    full["to_load"] = sorted(d.name for d in ctx.layersToLoadOnCompletion().values())
    alg = QgsApplication.processingRegistry().createAlgorithmById("geohm:runscene")
    full["post_processed"] = bool(handleAlgorithmResults(alg, ctx, feedback))
    full["project_layers"] = sorted(
        (describe_layer(lyr) for lyr in QgsProject.instance().mapLayers().values()),
        key=lambda d: d["file"],
    )
    summary["runscene"] = full

    # the modeler's chain: runscene (up to date: skipped) -> predict with its model
    predicted = work / "predicted"
    t0 = time.monotonic()
    chain = run_alg(chain_model(small, out, predicted), {"scene": str(small)},
                    dataobjects.createContext())
    chain.pop("feedback")
    chain["seconds"] = round(time.monotonic() - t0, 1)
    chain["files"] = sorted(p.name for p in predicted.iterdir()) if predicted.exists() else []
    summary["model"] = chain


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {Path(argv[0]).name} SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[1]).read_text(encoding="utf-8"))
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from qgis.core import Qgis, QgsApplication

    global _APP  # must outlive every layer, or Python tears it down first and QGIS crashes
    _APP = QgsApplication([], False)
    _APP.setPrefixPath("/usr", True)
    _APP.initQgis()
    sys.path.insert(0, PROCESSING_PLUGINS)
    from processing.core.Processing import Processing

    Processing.initialize()
    summary: dict[str, Any] = {"qgis_version": Qgis.version()}
    status = 0
    try:
        steps(spec, summary)
    except Exception:
        summary["error"] = traceback.format_exc()
        status = 1
    print(json.dumps(summary, default=str), flush=True)
    return status


_APP: Any = None

if __name__ == "__main__":
    sys.exit(main(sys.argv))

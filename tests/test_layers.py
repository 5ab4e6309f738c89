"""Data flows one way: the import rules of design.md / style.md, enforced on the source."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "geohm"

FILE_LIBS = {
    "rasterio", "rioxarray", "geopandas", "pyogrio", "fiona", "joblib", "skops", "filelock",
    "pystac", "pystac_client",
}
CLI_LIBS = {"typer", "click", "rich"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules() -> dict[str, set[str]]:
    return {str(p.relative_to(PKG)): _imports(p) for p in PKG.rglob("*.py")}


def test_only_io_touches_files() -> None:
    for mod, imports in _modules().items():
        if mod.startswith("io/"):
            continue
        bad = {i for i in imports if i.split(".")[0] in FILE_LIBS}
        assert not bad, f"geohm/{mod} imports {bad}; file access belongs in geohm/io"


def test_only_the_cli_knows_the_terminal() -> None:
    for mod, imports in _modules().items():
        if mod == "cli.py":
            continue
        bad = {i for i in imports if i.split(".")[0] in CLI_LIBS}
        assert not bad, f"geohm/{mod} imports {bad}; the library never prints"


def test_models_see_only_arrays() -> None:
    for mod, imports in _modules().items():
        if not mod.startswith("models/"):
            continue
        bad = {
            i
            for i in imports
            if i.split(".")[0] in {"xarray", "geohm"}
            and not i.startswith(("geohm.models", "geohm.errors", "geohm._system"))
        }
        assert not bad, f"geohm/{mod} imports {bad}; models see X, y arrays only"


def test_torch_only_in_models() -> None:
    for mod, imports in _modules().items():
        if any(i.split(".")[0] == "torch" for i in imports):
            assert mod.startswith("models/"), f"geohm/{mod} imports torch"


def test_lower_layers_do_not_import_higher_ones() -> None:
    order = [
        "_version",
        "_system",
        "errors",
        "grid",
        "standards",
        "io",
        "indices",
        "terrain",
        "cube",
        "patches",
        "labvalues",
        "sampling",
        "selection",
        "preprocess",
        "spectra",
        "models",
        "spatialcv",
        "aoa",
        "accumulation",
        "config",
        "evaluate",
        "importance",
        "applicability",
        "autoselect",
        "fitting",
        "training",
        "predict",
        "risk",
        "riskmaps",
        "sampledesign",
        "series",
        "report",
        "pipeline",
        "synth",
        "batch",
        "cli",
    ]
    modules = _modules()
    layers = {m.split("/")[0].removesuffix(".py") for m in modules} - {"__init__"}
    assert layers <= set(order), f"modules without a layer: {sorted(layers - set(order))}"
    rank = {name: i for i, name in enumerate(order)}
    for mod, imports in modules.items():
        own = mod.split("/")[0].removesuffix(".py")
        if own not in rank:
            continue
        for i in imports:
            if not i.startswith("geohm."):
                continue
            other = i.split(".")[1]
            if other in rank and other != own:
                assert rank[other] < rank[own] or own == "cli", (
                    f"geohm/{mod} (layer {own}) imports {i} (a higher layer)"
                )


#: Calls that touch files or run programs. Only geohm/io may make them.
FILE_CALLS = {
    "open",
    "read_text",
    "write_text",
    "read_bytes",
    "write_bytes",
    "unlink",
    "rmtree",
    "replace",
    "rename",
}
def test_only_io_touches_files_or_runs_programs() -> None:
    """Nothing outside io opens files or runs programs; nothing is compiled at run time
    (the forest kernel is a build product: an extension module imported as any other)."""
    offenders = []
    for path in PKG.rglob("*.py"):
        mod = str(path.relative_to(PKG))
        if mod.startswith("io/"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if any(n.split(".")[0] in {"subprocess", "ctypes", "shutil"} for n in names):
                    offenders.append(f"{mod}:{node.lineno} imports {names}")
            if isinstance(node, ast.Call):
                f = node.func
                if isinstance(f, ast.Name) and f.id == "open":
                    offenders.append(f"{mod}:{node.lineno} calls open()")
                elif isinstance(f, ast.Attribute) and f.attr in FILE_CALLS - {"open"}:
                    # Path(...).read_text(), os.unlink(...), shutil.rmtree(...); but not
                    # str.replace / DataFrame.replace (only os.replace moves files)
                    on_os = isinstance(f.value, ast.Name) and f.value.id == "os"
                    if f.attr != "replace" or on_os:
                        offenders.append(f"{mod}:{node.lineno} calls .{f.attr}()")
    assert not offenders, "\n".join(offenders)


def test_risk_sees_arrays_and_standards_only() -> None:
    """The risk layers get the models' exceedance probabilities as arrays: neither the
    risk package nor riskmaps imports a model."""
    for mod, imports in _modules().items():
        if mod.split("/")[0].removesuffix(".py") in {"risk", "riskmaps"}:
            bad = {i for i in imports if i.startswith("geohm.models")}
            assert not bad, f"geohm/{mod} imports {bad}; risk sees arrays, never an estimator"


#: The modules that may know the whole scene config; every layer below them gets a small
#: typed spec (``FitSpec``, ``RiskSpec``, ...) or arrays.
SCENE_CONFIG_OWNERS = ("config/", "pipeline/", "batch/", "cli.py", "__init__.py")


def test_only_the_orchestration_knows_the_scene_config() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        mod = str(path.relative_to(PKG))
        if mod.startswith(SCENE_CONFIG_OWNERS):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            named = (isinstance(node, ast.Name) and node.id == "SceneConfig") or (
                isinstance(node, ast.alias) and node.name == "SceneConfig"
            )
            if named:
                offenders.append(f"geohm/{mod}:{getattr(node, 'lineno', '?')}")
    assert not offenders, (
        "SceneConfig below the orchestration (give these a FitSpec, RiskSpec or arrays): "
        + ", ".join(offenders)
    )

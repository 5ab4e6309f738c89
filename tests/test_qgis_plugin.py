"""geohm's QGIS plugin: installed into a profile, and driven in real QGIS (python3-qgis).

The plugin's files (``geohm/io/qgis_provider``) run in QGIS's own Python; its plain-Python
part (``process.py``: the command line, the output parser, cancel) is tested here too.
The QGIS test runs ``tests/qgis_plugin_check.py`` in Debian's ``/usr/bin/python3`` (as
``tests/test_qgis.py`` does) and is skipped only when QGIS is not installed.
"""

from __future__ import annotations

import configparser
import json
import os
import signal
import stat
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from geohm import OutputError, __version__
from geohm.errors import InputError
from geohm.io.qgis_plugin import default_profile, install_plugin, plugin_source
from geohm.io.qgis_provider.process import (
    EXECUTABLE_ENV,
    GeohmNotFound,
    Line,
    OutputParser,
    Progress,
    child_environment,
    geohm_command,
    run_geohm,
)

from .qgis_check import SYSTEM_PYTHON, qgis_env, qgis_unavailable

ROOT = Path(__file__).resolve().parents[1]
CHECK = Path(__file__).resolve().parent / "qgis_plugin_check.py"

# --------------------------------------------------------------------------- install


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_install_plugin_copies_the_plugin_into_a_profile(tmp_path: Path) -> None:
    profile = tmp_path / "profiles" / "work"
    profile.mkdir(parents=True)
    dest = install_plugin(profile)
    assert dest == profile / "python" / "plugins" / "geohm"

    source = _files(plugin_source())
    installed = _files(dest)
    assert set(installed) == set(source) | {"geohm_command.json"}
    assert {"__init__.py", "metadata.txt", "provider.py", "algorithms.py"} <= set(installed)
    for name in source:
        if name != "metadata.txt":
            assert installed[name] == source[name], name
    meta = configparser.ConfigParser()
    meta.read_string(installed["metadata.txt"].decode())
    assert meta["general"]["name"] == "geohm"
    assert meta["general"]["hasProcessingProvider"] == "yes"
    assert meta["general"]["version"] == __version__
    recorded = json.loads(installed["geohm_command.json"])
    assert recorded["command"] == [sys.executable, "-m", "geohm.cli"]
    assert recorded["geohm_version"] == __version__

    # the same files again: nothing changes (the folder is not even replaced)
    inode = dest.stat().st_ino
    assert install_plugin(profile) == dest
    assert dest.stat().st_ino == inode

    # edited files are replaced only with force
    (dest / "provider.py").write_text("# edited\n", encoding="utf-8")
    with pytest.raises(OutputError, match=r"already there .* --force replaces it") as err:
        install_plugin(profile)
    assert str(dest) in str(err.value)
    assert (dest / "provider.py").read_text(encoding="utf-8") == "# edited\n"
    assert install_plugin(profile, force=True) == dest
    assert _files(dest) == installed
    assert sorted(p.name for p in dest.parent.iterdir()) == ["geohm"]  # no staging left


def test_install_plugin_replaces_a_link_never_its_target(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "keep.txt").write_text("mine\n", encoding="utf-8")
    plugins = tmp_path / "profile" / "python" / "plugins"
    plugins.mkdir(parents=True)
    (plugins / "geohm").symlink_to(checkout, target_is_directory=True)
    with pytest.raises(OutputError, match="--force"):
        install_plugin(tmp_path / "profile")
    dest = install_plugin(tmp_path / "profile", force=True, command=["/opt/geohm/bin/geohm"])
    assert not dest.is_symlink() and (dest / "metadata.txt").is_file()
    assert (checkout / "keep.txt").read_text(encoding="utf-8") == "mine\n"
    assert json.loads((dest / "geohm_command.json").read_text())["command"] == [
        "/opt/geohm/bin/geohm"
    ]


def test_cli_installs_the_plugin(tmp_path: Path) -> None:
    """`geohm qgis-plugin install [--profile DIR] [--force]` (geohm/cli.py)."""
    from typer.testing import CliRunner

    from geohm.cli import app

    profile = tmp_path / "profile"
    profile.mkdir()
    res = CliRunner().invoke(app, ["qgis-plugin", "install", "--profile", str(profile)])
    assert res.exit_code == 0, res.output
    dest = profile / "python" / "plugins" / "geohm"
    assert "".join(str(dest).split()) in "".join(res.output.split())
    (dest / "plugin.py").write_text("# edited\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["qgis-plugin", "install", "--profile", str(profile)])
    assert res.exit_code == 2 and "--forcereplacesit" in "".join(res.output.split())
    res = CliRunner().invoke(
        app, ["qgis-plugin", "install", "--profile", str(profile), "--force"]
    )
    assert res.exit_code == 0, res.output
    assert (dest / "plugin.py").read_bytes() == (plugin_source() / "plugin.py").read_bytes()


def test_install_plugin_default_profile_and_a_missing_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if sys.platform not in ("win32", "darwin"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        expected = tmp_path / "data" / "QGIS" / "QGIS3" / "profiles" / "default"
        assert default_profile() == expected
        assert install_plugin() == expected / "python" / "plugins" / "geohm"
    with pytest.raises(InputError, match="does not exist"):
        install_plugin(tmp_path / "no such profile")


# --------------------------------------------------------------------------- the child process

#: Two redraws of geohm's progress bar as rich writes them to a pipe forced to be a
#: terminal (TTY_COMPATIBLE=1), with a log line between, as captured from `geohm run`.
RICH_OUTPUT = (
    "\x1b[?25l\n\x1b[2K\n\x1b[2KWARNING geohm.fitting.model: Cu: cross-validation off\n\n"
    "\x1b[2K\x1b[1mpredict\x1b[0m                                          0/4 tiles 0:00:00\n"
    "\x1b[2K\x1b[1mpredict\x1b[0m ━━━━━━━━━━                               1/4 tiles 0:00:00\n"
    "\x1b[2K\x1b[1mpredict\x1b[0m ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4/4 tiles 0:00:00\n"
    "\x1b[2K\x1b[1mpredict\x1b[0m ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 4/4 tiles 0:00:01\r"
    "error: samples file 'x.gpkg' does not exist\r\n"
    "done in 10.9 s"
)


def test_output_parser_reads_the_progress_bar_and_the_lines() -> None:
    parser = OutputParser()
    # fed in pieces cut inside lines and escapes, as a pipe delivers them
    events = []
    for i in range(0, len(RICH_OUTPUT), 7):
        events += parser.feed(RICH_OUTPUT[i : i + 7])
    events += parser.close()
    assert events == [
        Line("WARNING geohm.fitting.model: Cu: cross-validation off", "warning"),
        Progress("predict", 0, 4),
        Progress("predict", 1, 4),
        Progress("predict", 4, 4),
        Line("error: samples file 'x.gpkg' does not exist", "error"),
        Line("done in 10.9 s", "info"),
    ]


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.mark.skipif(os.name != "posix", reason="POSIX executables")
def test_geohm_command_order(tmp_path: Path) -> None:
    setting = _program(tmp_path / "setting" / "geohm")
    env_prog = _program(tmp_path / "env" / "geohm")
    on_path = _program(tmp_path / "bin" / "geohm")
    recorded = _program(tmp_path / "recorded" / "python")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "geohm_command.json").write_text(
        json.dumps({"command": [str(recorded), "-m", "geohm.cli"]}), encoding="utf-8"
    )
    env = {"PATH": str(on_path.parent), EXECUTABLE_ENV: str(env_prog)}
    assert geohm_command(str(setting), environ=env, plugin_dir=plugin) == [str(setting)]
    assert geohm_command("", environ=env, plugin_dir=plugin) == [str(env_prog)]
    # a command line in the variable: its first word must exist
    env[EXECUTABLE_ENV] = f"{recorded} -m geohm.cli"
    assert geohm_command("", environ=env) == [str(recorded), "-m", "geohm.cli"]
    del env[EXECUTABLE_ENV]
    assert geohm_command("", environ=env, plugin_dir=plugin) == [
        str(recorded),
        "-m",
        "geohm.cli",
    ]
    assert geohm_command("", environ=env, plugin_dir=tmp_path) == [str(on_path)]
    recorded.unlink()  # the environment that installed the plugin is gone: PATH
    assert geohm_command("", environ=env, plugin_dir=plugin) == [str(on_path)]
    with pytest.raises(GeohmNotFound, match=r"\$GEOHM_EXECUTABLE names '/nowhere/geohm'"):
        geohm_command("", environ={"PATH": "", EXECUTABLE_ENV: "/nowhere/geohm"})
    with pytest.raises(GeohmNotFound, match="Providers > geohm"):
        geohm_command("", environ={"PATH": str(tmp_path / "empty")}, plugin_dir=tmp_path)


def test_child_environment_leaves_out_qgis_paths() -> None:
    qgis = {
        "PATH": "/usr/bin",
        "PYTHONPATH": "/usr/share/qgis/python",
        "PYTHONHOME": "C:/OSGeo4W/apps/Python39",
        "PROJ_LIB": "C:/OSGeo4W/share/proj",
        "GDAL_DATA": "C:/OSGeo4W/apps/gdal/share/gdal",
        "OMP_NUM_THREADS": "1",
    }
    env = child_environment(qgis)
    assert env["PATH"] == "/usr/bin" and env["OMP_NUM_THREADS"] == "1"
    assert not {"PYTHONPATH", "PYTHONHOME", "PROJ_LIB", "GDAL_DATA"} & set(env)
    assert env["TTY_COMPATIBLE"] == "1" and env["PYTHONUNBUFFERED"] == "1"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(os.name != "posix", reason="process groups and signals")
def test_cancel_escalates_when_ctrl_c_is_ignored() -> None:
    """sh and its sleep ignore SIGINT: cancel sends it, then SIGTERM to the whole group."""
    events: list[Any] = []
    outcome = run_geohm(
        ["-c", "trap '' INT; echo started; sleep 30; echo never"],
        command=["sh"],
        on_event=events.append,
        is_canceled=lambda: Line("started", "info") in events,
        environ={"PATH": os.environ["PATH"]},
        poll_s=0.02,
        grace_s=0.5,
    )
    assert outcome.canceled
    assert outcome.returncode == -signal.SIGTERM
    assert events == [Line("started", "info")]
    deadline = time.monotonic() + 5
    while _group_alive(outcome.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(outcome.pid)  # sleep too


def test_a_failed_run_keeps_its_error_line() -> None:
    code = "import sys; print('working'); print('error: scene.yaml: no such file', file=sys.stderr)"
    outcome = run_geohm(
        ["-c", code + "; sys.exit(2)"],
        command=[sys.executable],
        on_event=lambda e: None,
        is_canceled=lambda: False,
    )
    assert (outcome.returncode, outcome.canceled) == (2, False)
    assert outcome.errors == ["error: scene.yaml: no such file"]
    assert outcome.tail == ["working", "error: scene.yaml: no such file"]


# --------------------------------------------------------------------------- in QGIS


@pytest.fixture(scope="module")
def qgis_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """The plugin installed in a throwaway profile and driven by qgis_plugin_check.py."""
    tmp = tmp_path_factory.mktemp("qgis_plugin")
    why = qgis_unavailable(tmp)
    if why:
        pytest.skip(
            f"QGIS is not installed for {SYSTEM_PYTHON} ({why}); install it with "
            "`apt-get install -y --no-install-recommends python3-qgis`"
        )
    profile = tmp / "profile"
    profile.mkdir()
    plugin = install_plugin(profile)
    # the geohm program the provider's setting names: this checkout, in this Python
    geohm = tmp / "bin" / "geohm"
    geohm.parent.mkdir()
    geohm.write_text(
        f"#!/bin/sh\nexport PYTHONPATH='{ROOT}'\nexec '{sys.executable}' -m geohm.cli \"$@\"\n",
        encoding="utf-8",
    )
    geohm.chmod(0o755)
    work = tmp / "work"
    work.mkdir()
    spec = tmp / "spec.json"
    spec.write_text(
        json.dumps({"plugins": str(plugin.parent), "geohm": str(geohm), "work": str(work)}),
        encoding="utf-8",
    )
    env = qgis_env(tmp)
    env["OMP_NUM_THREADS"] = "1"
    import subprocess

    res = subprocess.run(
        [SYSTEM_PYTHON, str(CHECK), str(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    lines = res.stdout.strip().splitlines()
    if not lines:
        raise AssertionError(f"qgis_plugin_check.py printed nothing\n{res.stderr[-4000:]}")
    summary: dict[str, Any] = json.loads(lines[-1])
    assert res.returncode == 0 and "error" not in summary, (
        summary.get("error"),
        res.stderr[-4000:],
    )
    return summary, work


@pytest.mark.qgis
@pytest.mark.timeout(600)
def test_qgis_registers_the_provider(qgis_run: tuple[dict[str, Any], Path]) -> None:
    summary, work = qgis_run
    assert summary["available_plugins"] == ["geohm"]
    assert summary["metadata"]["hasProcessingProvider"] == "yes"
    assert summary["metadata"]["version"] == __version__
    assert summary["loaded"] and summary["started"]
    assert summary["plugin_file"].endswith("python/plugins/geohm/__init__.py")
    provider = summary["provider"]
    assert provider["algorithms"] == ["geohm:demodata", "geohm:predict", "geohm:runscene"]
    assert provider["display_names"] == [
        "Make the demo data",
        "Predict with a saved model",
        "Run scene job",
    ]
    demo = summary["demodata"]
    assert "exception" not in demo, demo
    assert demo["results"]["SCENE"] == str(work / "data" / "scene.yaml")
    assert (work / "data" / "dem.tif").is_file()


@pytest.mark.qgis
@pytest.mark.timeout(600)
def test_qgis_cancel_ends_the_geohm_process(qgis_run: tuple[dict[str, Any], Path]) -> None:
    cancelled = qgis_run[0]["cancelled"]
    assert "was cancelled" in cancelled.get("exception", ""), cancelled
    # geohm's own Ctrl-C path: exit status 130 and its one line
    assert "(exit status 130)" in cancelled["exception"]
    warnings = [text for kind, text in cancelled["log"] if kind == "warning"]
    assert any(w.startswith("interrupted; no half-written output") for w in warnings)
    assert cancelled["pid"] is not None and not cancelled["pid_exists"]
    assert cancelled["still_running"] == []
    assert "manifest.json" not in cancelled["files"]
    assert not [f for f in cancelled["files"] if f.endswith((".tmp.tif", ".scratch.tif"))]


@pytest.mark.qgis
@pytest.mark.timeout(600)
def test_qgis_runscene_makes_the_maps_and_loads_them_styled(
    qgis_run: tuple[dict[str, Any], Path],
) -> None:
    summary, work = qgis_run
    run = summary["runscene"]
    assert "exception" not in run, run.get("exception")
    out = work / "out"
    results = run["results"]
    assert results["OUTPUT"] == str(out)
    assert results["MODEL"] == str(out / "model.geohm")
    assert results["REPORT"] == str(out / "report.md")
    outputs = json.loads((out / "manifest.json").read_text())["outputs"]
    maps = sorted(n for n in outputs if n.endswith((".tif", ".gpkg")))
    assert {"Cu_concentration.tif", "Pb_risk.tif", "zones.gpkg", "next_samples.gpkg"} <= set(
        maps
    )
    assert results["LAYERS"] == [str(out / n) for n in maps]

    # 64 x 64 pixels in windows of 32: 4 windows, the bar's fraction after each
    assert run["progress"] and run["progress"][-1] == 100.0
    assert set(run["progress"]) <= {0.0, 25.0, 50.0, 75.0, 100.0}
    texts = [t for kind, t in run["log"] if kind == "progress_text"]
    assert "geohm run: predict (map windows)" in texts
    commands = [t for kind, t in run["log"] if kind == "command"]
    assert commands and commands[0].endswith(f"run {work / 'data' / 'small.yaml'} --out {out}")

    # Processing's post-processing put every map into the project, valid and styled
    assert run["post_processed"]
    assert run["to_load"] == [Path(n).stem for n in maps]
    layers = run["project_layers"]
    assert [lyr["file"] for lyr in layers] == maps
    for lyr in layers:
        assert lyr["valid"], lyr["file"]
        assert lyr["renderer"] == lyr["qml_renderer"], lyr
        if lyr["kind"] == "vector":
            assert lyr["feature_count"] > 0
        elif lyr["renderer"] == "paletted":
            assert lyr["classes"] == lyr["qml_classes"], lyr["file"]
            # without the .qml: every entry of the colour table (256), not the classes
            assert lyr["bare_labels"] != [c["label"] for c in lyr["classes"]], lyr["file"]
        else:
            assert lyr["renderer"] == "singlebandpseudocolor" != lyr["bare_renderer"]
            assert lyr["ramp"]["labels"] == lyr["qml_ramp"]["labels"]
            assert lyr["ramp"]["min"] == pytest.approx(lyr["qml_ramp"]["min"], rel=1e-6)
            assert lyr["ramp"]["max"] == pytest.approx(lyr["qml_ramp"]["max"], rel=1e-6)
    risk = next(lyr for lyr in layers if lyr["file"] == "Cu_risk.tif")
    assert [c["label"] for c in risk["classes"]][:2] == ["unpolluted", "slightly polluted"]
    kinds = {lyr["file"]: lyr["renderer"] for lyr in layers}
    assert kinds["zones.gpkg"] == "graduatedSymbol"


@pytest.mark.qgis
@pytest.mark.timeout(600)
def test_qgis_model_chains_runscene_into_predict(
    qgis_run: tuple[dict[str, Any], Path],
) -> None:
    summary, work = qgis_run
    chain = summary["model"]
    assert "exception" not in chain, chain.get("exception")
    console = [t for kind, t in chain["log"] if kind == "console"]
    assert any(t.startswith("skipped: outputs in") for t in console)  # runscene up to date
    commands = [t for kind, t in chain["log"] if kind == "command"]
    model = work / "out" / "model.geohm"
    assert commands[-1].endswith(
        f"predict --model {model} {work / 'data' / 'small.yaml'} --out {work / 'predicted'}"
    )
    assert "Cu_concentration.tif" in chain["files"]
    # the saved model maps the scene it was fitted on as the run did
    with rasterio.open(work / "out" / "Cu_concentration.tif") as a:
        fitted = a.read(1, masked=True)
    with rasterio.open(work / "predicted" / "Cu_concentration.tif") as b:
        predicted = b.read(1, masked=True)
    assert np.array_equal(fitted.mask, predicted.mask)
    np.testing.assert_allclose(predicted.compressed(), fitted.compressed(), rtol=1e-5)


def test_pyproject_ships_the_plugin_files_in_the_wheel() -> None:
    """Every non-Python file of the plugin matches a package-data pattern of pyproject.toml
    (its .py files ship as the package geohm.io.qgis_provider)."""
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["geohm"]
    source = plugin_source()
    for path in source.iterdir():
        if path.suffix == ".py" or path.name == "__pycache__":
            continue
        name = str(path.relative_to(ROOT / "geohm"))
        assert any(fnmatch.fnmatch(name, pat) for pat in patterns), (
            f"geohm/{name} is not package data: a wheel would lack it"
        )

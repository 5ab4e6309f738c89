"""Batch jobs on dask.distributed: a real scheduler and workers, real scenes, no mocks.

A ``dask scheduler`` and two ``dask worker`` processes are started on loopback for
the module and always stopped (and checked gone) at teardown; the CLI test runs on the
default LocalCluster. Scenes are the built-in synthetic case at 96 x 96 pixels with a
20-tree forest, so every job takes a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from geohm.batch import LOG_NAME, SUMMARY_NAME, BatchResult, run_batch, scene_complete
from geohm.cli import app
from geohm.config import load_config
from geohm.errors import GeohmError
from geohm.io.outdir import LOCK_NAME, MANIFEST_NAME, compare, job_fingerprint
from geohm.synth import make_demo

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


def _fast_scene(folder: Path, seed: int, name: str) -> Path:
    """The synthetic case in ``folder``, renamed and made quick to fit."""
    scene = make_demo(folder, seed=seed, size=96).scene
    text = scene.read_text(encoding="utf-8")
    for old, new in {
        "name: demo-target": f"name: {name}",
        "model: {name: auto, params: {candidates: [rf, rfsp, ok, ga-bp, tr-ga-bp]}}": (
            "model: {name: rf, params: {n_estimators: 20}}"
        ),
        "cv_folds: 5": "cv_folds: 0",
        "tile: 512}": "tile: 512, quicklooks: false}",
    }.items():
        assert old in text, old
        text = text.replace(old, new)
    scene.write_text(text, encoding="utf-8")
    return scene


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two good scenes, one with a misspelt key, one whose DEM file does not exist."""
    root = tmp_path_factory.mktemp("scenes")
    good1 = _fast_scene(root / "a", 1, "scene-1")
    good2 = _fast_scene(root / "b", 2, "scene-2")
    text1 = good1.read_text(encoding="utf-8")
    typo = good1.with_name("typo.yaml")
    typo.write_text(
        text1.replace("name: scene-1", "name: typo").replace("features:", "featurs:"),
        encoding="utf-8",
    )
    no_dem = good2.with_name("no_dem.yaml")
    text2 = good2.read_text(encoding="utf-8")
    no_dem.write_text(
        text2.replace("name: scene-2", "name: no-dem").replace(
            "dem: dem.tif", "dem: missing_dem.tif", 1
        ),
        encoding="utf-8",
    )
    return {"scene-1": good1, "scene-2": good2, "typo": typo, "no-dem": no_dem}


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate our processes (workers first) and their children; fail if any survive."""
    family: list[psutil.Process] = []
    for p in procs:
        try:
            family += psutil.Process(p.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            pass
    for p in reversed(procs):  # workers, then the scheduler
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(STOP_TIMEOUT)
    _, alive = psutil.wait_procs(family, timeout=STOP_TIMEOUT)
    for child in alive:
        child.kill()
    assert not alive, f"stray processes after stopping the cluster: {alive}"
    assert all(p.poll() is not None for p in procs)


@pytest.fixture(scope="module")
def dask_scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; the address."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("dask")
    sched_file = folder / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs: list[subprocess.Popen[bytes]] = []
    logs = []

    def start(args: list[str], log_name: str) -> None:
        log = open(folder / log_name, "wb")  # closed at teardown
        logs.append(log)
        procs.append(
            subprocess.Popen(dask + args, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
        )

    try:
        start(
            ["scheduler", "--host", "127.0.0.1", "--port", "0"]
            + ["--scheduler-file", str(sched_file), "--no-dashboard"],
            "scheduler.log",
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not sched_file.is_file():
            assert procs[0].poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the dask scheduler did not start"
            time.sleep(0.2)
        for i in range(2):
            start(
                ["worker", "--scheduler-file", str(sched_file), "--host", "127.0.0.1"]
                + ["--nworkers", "1", "--nthreads", "1", "--no-dashboard"]
                + ["--death-timeout", "60", "--local-directory", str(folder / f"w{i}")],
                f"worker{i}.log",
            )
        with Client(scheduler_file=str(sched_file), timeout=START_TIMEOUT) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT)
        yield json.loads(sched_file.read_text(encoding="utf-8"))["address"]
    finally:
        try:
            _stop(procs)
        finally:
            for log in logs:
                log.close()


def _by_name(result: BatchResult) -> dict[str, dict[str, object]]:
    return {s.name: s.as_dict() for s in result.scenes}


def test_scene_complete(tmp_path: Path) -> None:
    """Complete: a manifest, and every output it lists with its recorded size."""
    assert not scene_complete(tmp_path)
    (tmp_path / "a.tif").write_bytes(b"x")
    report = {"outputs": ["a.tif", "report.json"]}
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    assert not scene_complete(tmp_path)  # a report is not a manifest
    manifest = {
        "format": 1,
        "geohm_version": "0.1.0",
        "command": "run",
        "config_sha256": "0" * 64,
        "inputs": {},
        "outputs": {"a.tif": {"size": 1}, "report.md": {"size": 4}},
    }
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    assert not scene_complete(tmp_path)  # report.md is missing
    (tmp_path / "report.md").write_text("# r\n", encoding="utf-8")
    assert scene_complete(tmp_path)
    (tmp_path / "a.tif").write_bytes(b"")  # truncated
    assert not scene_complete(tmp_path)
    (tmp_path / "a.tif").write_bytes(b"x")
    (tmp_path / MANIFEST_NAME).write_text("{not json", encoding="utf-8")
    assert not scene_complete(tmp_path)


def test_unreachable_scheduler_is_a_clear_error(scenes: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(GeohmError, match="cannot reach the dask scheduler"):
        run_batch(
            [scenes["scene-1"]], scheduler="tcp://127.0.0.1:9", output_root=tmp_path, timeout=2
        )


def test_batch_on_a_dask_cluster(
    dask_scheduler: str, scenes: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    order = ["scene-1", "scene-2", "typo", "no-dem"]
    events: list[tuple[str, str]] = []
    lock = threading.Lock()

    def progress(name: str, status: str) -> None:
        with lock:
            events.append((name, status))

    result = run_batch(
        [scenes[k] for k in order], scheduler=dask_scheduler, output_root=out, progress=progress
    )
    got = _by_name(result)
    assert [s.name for s in result.scenes] == order
    assert {k: v["status"] for k, v in got.items()} == {
        "scene-1": "done",
        "scene-2": "done",
        "typo": "failed",
        "no-dem": "failed",
    }, got
    assert not result.ok and result.counts == {"done": 2, "skipped": 0, "failed": 2}
    assert result.scheduler == dask_scheduler
    assert "'featurs'" in str(got["typo"]["error"])
    assert "missing_dem.tif" in str(got["no-dem"]["error"])
    assert "DEM" in str(got["no-dem"]["error"])

    # outputs in OUT/<name>, complete, each with its own log naming the scene
    for name in ("scene-1", "scene-2"):
        folder = out / name
        assert scene_complete(folder)
        assert (folder / "Cu_concentration.tif").is_file()
        text = (folder / LOG_NAME).read_text(encoding="utf-8")
        assert f"scene '{name}'" in text and "done in" in text
        assert "sample points usable" in text  # the pipeline's own records are captured
    dem_log = (out / "no-dem" / LOG_NAME).read_text(encoding="utf-8")
    assert "no-dem" in dem_log and "missing_dem.tif" in dem_log and "ERROR" in dem_log
    assert not (out / "no-dem" / "report.json").exists()

    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    assert result.summary_path == out / SUMMARY_NAME
    assert [s["status"] for s in summary["scenes"]] == ["done", "done", "failed", "failed"]
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 2}
    assert {"name", "config", "status", "wall_time_s", "output_dir", "error"} <= set(
        summary["scenes"][0]
    )
    assert summary["scenes"][0]["wall_time_s"] > 0

    final = {name: status for name, status in events if status != "running"}
    assert final == {k: str(v["status"]) for k, v in got.items()}
    assert ("scene-1", "queued") in events and ("typo", "queued") not in events

    assert [s.get("reason") for s in summary["scenes"]] == [
        "no earlier outputs",
        "no earlier outputs",
        None,  # the config could not be read
        "no earlier outputs",
    ]

    # re-run: scene-1 unchanged (skipped, untouched); scene-2 with one target instead of
    # two (config changed: redone, and no file of its first run is left); a scene whose
    # folder another process holds (failed at once, naming that process)
    report1 = out / "scene-1" / "report.json"
    mtime1 = report1.stat().st_mtime_ns
    first2 = json.loads((out / "scene-2" / MANIFEST_NAME).read_text(encoding="utf-8"))["outputs"]
    assert "Pb_concentration.tif" in first2
    cu_only = scenes["scene-2"].with_name("scene-2-cu.yaml")
    text2 = scenes["scene-2"].read_text(encoding="utf-8")
    assert "targets: [Cu, Pb]" in text2
    cu_only.write_text(text2.replace("targets: [Cu, Pb]", "targets: [Cu]", 1), encoding="utf-8")
    held = scenes["scene-1"].with_name("held.yaml")
    held.write_text(
        scenes["scene-1"].read_text(encoding="utf-8").replace("name: scene-1", "name: held"),
        encoding="utf-8",
    )
    code = (
        "import time\nfrom geohm.io.outdir import output_folder\n"
        f"with output_folder({str(out / 'held')!r}):\n"
        "    print('held', flush=True)\n    time.sleep(600)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        again = run_batch(
            [scenes["scene-1"], cu_only, held], scheduler=dask_scheduler, output_root=out
        )
    finally:
        holder.kill()
        holder.wait(STOP_TIMEOUT)
    got = _by_name(again)
    assert got["scene-1"]["status"] == "skipped" and got["scene-1"]["wall_time_s"] == 0
    assert got["scene-1"]["reason"] == "outputs match manifest"
    assert got["scene-2"]["status"] == "done" and got["scene-2"]["reason"] == "config changed"
    assert got["held"]["status"] == "failed"
    assert f"in use by another geohm run (process id {holder.pid}" in str(got["held"]["error"])
    assert again.counts == {"done": 1, "skipped": 1, "failed": 1}
    assert report1.stat().st_mtime_ns == mtime1
    second2 = json.loads((out / "scene-2" / MANIFEST_NAME).read_text(encoding="utf-8"))
    files2 = {p.name for p in (out / "scene-2").iterdir() if p.is_file()}
    assert not [n for n in files2 if n.startswith("Pb_")], files2
    # nothing else: the outputs, their GDAL sidecars (by name only), the log, and the
    # (empty) lock file, which is never removed
    assert files2 == set(second2["outputs"]) | set(second2["sidecars"]) | {
        MANIFEST_NAME,
        LOG_NAME,
        LOCK_NAME,
    }
    assert second2["logs"] == [LOG_NAME]
    log2 = (out / "scene-2" / LOG_NAME).read_text(encoding="utf-8")
    assert "file(s) of an earlier run" in log2 and "Pb_concentration.tif" in log2

    # --force redoes a scene whose manifest matches
    forced = run_batch([scenes["scene-1"]], scheduler=dask_scheduler, output_root=out, force=True)
    assert [(s.status, s.reason) for s in forced.scenes] == [("done", "forced (--force)")]
    assert report1.stat().st_mtime_ns != mtime1

    # nothing left to do: no cluster is contacted at all (port 9 has none)
    idle = run_batch([scenes["scene-1"], cu_only], scheduler="tcp://127.0.0.1:9", output_root=out)
    assert [s.status for s in idle.scenes] == ["skipped", "skipped"]

    # an output gone: no longer complete, and a rerun would redo it
    (out / "scene-2" / "report.json").unlink()
    assert not scene_complete(out / "scene-2")
    verdict = compare(
        out / "scene-2", job_fingerprint(load_config(cu_only, output_dir=out / "scene-2"))
    )
    assert verdict.reason == "outputs changed (report.json is missing)"


def test_cli_batch_on_a_local_cluster(
    scenes: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "cli"
    runner = CliRunner()
    args = ["batch", str(scenes["scene-1"]), str(scenes["typo"]), str(scenes["no-dem"])]
    res = runner.invoke(app, [*args, "--out", str(out), "--workers", "2"])
    assert res.exit_code == 2, res.output
    assert "scene(s) failed" in res.output
    assert "scene-1: done" in res.output and "no-dem: failed" in res.output
    for word in ("scene", "status", "done", "failed", "typo"):
        assert word in res.stdout
    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    assert [s["status"] for s in summary["scenes"]] == ["done", "failed", "failed"]
    assert summary["scheduler"].startswith("LocalCluster(2 workers)")
    assert "featurs" in summary["scenes"][1]["error"]
    assert "missing_dem.tif" in summary["scenes"][2]["error"]
    assert scene_complete(out / "scene-1")

    # the completed scene alone: skipped, exit 0, no cluster needed
    res = runner.invoke(app, ["batch", str(scenes["scene-1"]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.stdout
    assert not (tmp_path / SUMMARY_NAME).exists()  # --out holds the summary
    summary = json.loads((out / SUMMARY_NAME).read_text(encoding="utf-8"))
    assert summary["scenes"][0]["reason"] == "outputs match manifest"

"""The output folder's life (issue 12, items 8-11): manifest, lock, clearing, scratch, checks.

Real runs of the synthetic case at 96 x 96 pixels (a 20-tree forest, no CV, no risk
maps, no quicklooks), real lock holders in other processes (killed for real), real
read-only mounts where this machine allows them; no mocks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from geohm.batch import run_batch, scene_complete
from geohm.cli import app
from geohm.config import load_config
from geohm.errors import OutputError
from geohm.io.outdir import (
    HOLDER_NAME,
    JOURNAL_NAME,
    LOCK_NAME,
    MANIFEST_NAME,
    Job,
    compare,
    compare_locked,
    dependency_versions,
    is_scratch,
    job_fingerprint,
    output_folder,
    read_manifest,
)
from geohm.io.reports import write_text
from geohm.synth import make_demo

pytestmark = pytest.mark.timeout(300)

STARTUP = 60  # seconds a helper process may take to import geohm and take the lock


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic case's inputs (96 x 96 pixels), shared by the module."""
    root = tmp_path_factory.mktemp("outdir_data")
    make_demo(root, seed=3, size=96)
    return root


def _scene(data: Path, stem: str, **changes: object) -> Path:
    """A quick scene config beside the data (relative paths resolve there)."""
    cfg = yaml.safe_load((data / "scene.yaml").read_text(encoding="utf-8"))
    cfg.pop("source")
    cfg.pop("risk"), cfg.pop("zones"), cfg.pop("sampling_design")
    cfg.update(
        name=stem,
        model={"name": "rf", "params": {"n_estimators": 20}},
        validation={"test_fraction": 0.2, "cv_folds": 0, "seed": 0},
        output={"dir": "out", "tile": 512, "quicklooks": False},
    )
    cfg.update(changes)
    path = data / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def _missing_inputs(folder: Path) -> Path:
    """A valid config whose every input is missing: reading any input would fail."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nothing.yaml"
    path.write_text(
        "name: nothing-here\nlandsat: missing_scene\ndem: missing_dem.tif\n"
        "samples: {path: missing.gpkg, targets: [Cu]}\n",
        encoding="utf-8",
    )
    return path


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.is_file()}


def _says(output: str, *phrases: str) -> bool:
    """Whether the output holds every phrase, whatever rich's line wrapping did to it."""
    flat = "".join(output.split())
    return all("".join(p.split()) in flat for p in phrases)


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in output, output
    return output


@contextmanager
def _holding(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds ``folder`` (geohm's own lock) and sleeps meanwhile."""
    code = textwrap.dedent(
        f"""
        import time
        from geohm.io.outdir import output_folder
        with output_folder({str(folder)!r}):
            print("held", flush=True)
            time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(STARTUP)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """Another process that holds an output folder (geohm's own lock) and sleeps."""
    folder = tmp_path / "held"
    with _holding(folder) as proc:
        yield folder, proc


def _die_in(folder: Path, body: str) -> None:
    """Run ``body`` in another process holding ``folder``, then SIGKILL it there."""
    code = textwrap.dedent(
        """
        import os, signal
        from pathlib import Path
        from geohm.io.outdir import output_folder
        folder = Path({folder!r})
        with output_folder(folder) as held:
        {body}
            os.kill(os.getpid(), signal.SIGKILL)
        """
    ).format(folder=str(folder), body=textwrap.indent(textwrap.dedent(body), "    "))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr


# --------------------------------------------------------------------------- item 8 + 9


def test_manifest_skip_rerun_and_clearing(data: Path, tmp_path: Path) -> None:
    """Skip only on a matching manifest; a rerun replaces every file of the earlier run."""
    scene = _scene(
        data,
        "two-metals",
        samples={"path": "samples_target.gpkg", "id": "id", "targets": ["Cu", "Pb"]},
    )
    out = tmp_path / "runs" / "two-metals"
    code, text = _run("run", scene, "--out", out)
    assert code == 0, text
    manifest = read_manifest(out)
    assert manifest is not None
    first = _files(out)
    assert {"Cu_concentration.tif", "Pb_concentration.tif", MANIFEST_NAME} <= first
    assert set(manifest["outputs"]) | set(manifest["sidecars"]) == first - {
        MANIFEST_NAME,
        LOCK_NAME,
    }  # all listed
    # no holder file, journal or scratch left; the lock file stays, empty (item 7)
    assert [n for n in first if n.startswith(".")] == [LOCK_NAME]
    assert (out / LOCK_NAME).stat().st_size == 0
    assert JOURNAL_NAME not in first  # the run finished
    assert manifest["versions"] == dependency_versions()
    assert set(manifest["versions"]) == {"numpy", "scikit-learn", "torch", "rasterio", "GDAL"}
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "output_folder" not in report  # nothing was removed from a new folder
    assert manifest["command"] == "run" and manifest["geohm_version"]
    dem = str(data / "dem.tif")
    assert manifest["inputs"][dem]["size"] == (data / "dem.tif").stat().st_size
    assert any(p.endswith("_SR_B4.TIF") for p in manifest["inputs"])  # the Landsat folder
    for name, rec in manifest["outputs"].items():
        assert rec["size"] == (out / name).stat().st_size and len(rec["sha256"]) == 64
    assert scene_complete(out)

    # unchanged: skipped, nothing touched
    stamp = (out / "report.json").stat().st_mtime_ns
    code, text = _run("run", scene, "--out", out)
    assert code == 0 and _says(text, "skipped: outputs in", "match manifest"), text
    assert (out / "report.json").stat().st_mtime_ns == stamp

    # batch: skipped too, with the reason, without starting any cluster
    result = run_batch([scene], scheduler="tcp://127.0.0.1:9", output_root=out.parent)
    assert [(s.status, s.reason) for s in result.scenes] == [("skipped", "outputs match manifest")]
    summary = json.loads(result.summary_path.read_text(encoding="utf-8"))
    assert summary["scenes"][0]["reason"] == "outputs match manifest"

    # what makes a rerun
    cfg = load_config(scene, output_dir=out)
    assert compare(out, job_fingerprint(cfg)).match
    workers = cfg.model_copy(deep=True)
    workers.output.workers, workers.output.tile = 3, 64  # cannot change the maps
    assert compare(out, job_fingerprint(workers)).match
    model = cfg.model_copy(deep=True)
    model.model.name = "ga-bp"
    assert compare(out, job_fingerprint(model)).reason == "config changed"
    targets = cfg.model_copy(deep=True)
    assert targets.samples is not None
    targets.samples.targets = ["Cu"]
    assert compare(out, job_fingerprint(targets)).reason == "config changed"
    assert compare(out, job_fingerprint(cfg, command="predict")).reason.startswith(
        "the earlier outputs are from geohm run"
    )
    st = (data / "dem.tif").stat()
    os.utime(data / "dem.tif", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        verdict = compare(out, job_fingerprint(cfg))
        assert not verdict.match and verdict.reason == f"inputs changed ({dem} was modified)"
    finally:
        os.utime(data / "dem.tif", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert compare(out, job_fingerprint(cfg)).match
    # an output changed in size (truncated) or, with hashes, in content
    qml = out / "Cu_concentration.qml"
    original = qml.read_bytes()
    qml.write_bytes(original.replace(b"<", b"[", 1))  # same size
    assert compare(out, job_fingerprint(cfg)).match  # sizes only: the cheap check
    assert compare(out, job_fingerprint(cfg), hashes=True).reason == (
        "outputs changed (Cu_concentration.qml differs in content)"
    )
    qml.write_bytes(original[:-1])
    assert compare(out, job_fingerprint(cfg)).reason == (
        "outputs changed (Cu_concentration.qml differs in size)"
    )
    qml.write_bytes(original)

    # a user's file, and scratch files of a killed run, are in the folder
    (out / "notes.txt").write_text("mine\n", encoding="utf-8")
    scratch = [
        ".Cu_concentration.0a1b2c3d.scratch.tif",
        ".Cu_concentration.0a1b2c3d.scratch.tif.aux.xml",
        ".Pb_concentration.4e5f6a7b.tmp.tif",
        ".Pb_concentration.4e5f6a7b.tmp.tif.ovr.tmp",
        ".report.89abcdef.tmp.json",
    ]
    for name in scratch:
        (out / name).write_bytes(b"half-written")

    # config changed (Cu only): rerun; no Pb file of the first run is left
    cu_only = _scene(
        data,
        "two-metals-cu",
        name="two-metals",
        samples={"path": "samples_target.gpkg", "id": "id", "targets": ["Cu"]},
    )
    assert not compare(out, job_fingerprint(load_config(cu_only, output_dir=out))).match
    code, text = _run("run", cu_only, "--out", out)
    assert code == 0, text
    assert _says(
        text,
        "ran: config changed",
        "file(s) of the earlier run (listed in report.json)",
        f"removed {len(scratch)} temporary file(s) left by a killed run",
        "kept files geohm did not write: notes.txt",
    ), text
    second = read_manifest(out)
    assert second is not None
    now = _files(out)
    assert not [n for n in now if n.startswith("Pb_")], now
    assert now == set(second["outputs"]) | set(second["sidecars"]) | {
        MANIFEST_NAME,
        LOCK_NAME,
        "notes.txt",
    }
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    note = report["output_folder"]
    assert "Pb_concentration.tif" in note["removed_earlier_outputs"]
    assert "Pb_concentration.tif" not in report["outputs"]  # existing keys unchanged
    assert sorted(note["removed_temporary_files"]) == sorted(scratch)
    assert note["kept_files_not_written_by_geohm"] == ["notes.txt"]

    # the first config against this folder (another config's manifest): rerun
    verdict = compare(out, job_fingerprint(load_config(scene, output_dir=out)))
    assert verdict.reason == "config changed"
    # --force reruns a matching folder
    stamp = (out / "report.json").stat().st_mtime_ns
    code, text = _run("run", cu_only, "--out", out, "--force")
    assert code == 0 and _says(text, "ran: forced (--force)"), text
    assert (out / "report.json").stat().st_mtime_ns != stamp
    assert compare(out, job_fingerprint(load_config(cu_only, output_dir=out))).match

    # geohm predict: the model file is an input of its job
    model = out / next(n for n in read_manifest(out)["outputs"] if n.startswith("model."))
    pred = tmp_path / "pred"
    code, text = _run("predict", cu_only, "--model", model, "--out", pred)
    assert code == 0 and read_manifest(pred)["command"] == "predict", text
    assert str(model) in read_manifest(pred)["inputs"]
    code, text = _run("predict", cu_only, "--model", model, "--out", pred)
    assert code == 0 and _says(text, "skipped: outputs in"), text
    os.utime(model, ns=(model.stat().st_atime_ns, model.stat().st_mtime_ns + 10**9))
    code, text = _run("predict", cu_only, "--model", model, "--out", pred)
    assert code == 0 and _says(text, f"ran: inputs changed ({model} was modified)"), text


def test_files_without_a_manifest_are_not_a_result(data: Path, tmp_path: Path) -> None:
    """Outputs without a manifest (another tool's, a killed run's) never count as done."""
    scene = _scene(data, "no-manifest")
    out = tmp_path / "out"
    out.mkdir()
    (out / "Cu_concentration.tif").write_bytes(b"not a map")
    report = {  # a pre-manifest geohm's: its own keys
        "name": "no-manifest",
        "versions": {"geohm": "0.1.0", "numpy": "1.26.4"},
        "outputs": ["Cu_concentration.tif", "report.json"],
    }
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")
    cfg = load_config(scene, output_dir=out)
    assert compare(out, job_fingerprint(cfg)).reason == "no manifest"
    assert not scene_complete(out)
    assert compare(tmp_path / "new", job_fingerprint(cfg)).reason == "no earlier outputs"
    (out / MANIFEST_NAME).write_text("{broken", encoding="utf-8")
    assert compare(out, job_fingerprint(cfg)).reason == "manifest unreadable"
    with output_folder(out) as folder:
        removed = folder.clear_previous()  # the report's outputs and the broken manifest
        assert sorted(removed) == ["Cu_concentration.tif", MANIFEST_NAME, "report.json"]
        assert folder.foreign == []


def test_a_manifest_cannot_name_files_outside_its_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep", encoding="utf-8")
    manifest = {
        "format": 1,
        "geohm_version": "0",
        "command": "run",
        "config_sha256": "x",
        "inputs": {},
        "outputs": {"../victim.txt": {"size": 4}, "a.tif": {"size": 1}},
        "logs": [],
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    (out / "a.tif").write_bytes(b"x")
    with output_folder(out) as folder:
        assert sorted(folder.clear_previous()) == ["a.tif", MANIFEST_NAME]
    assert victim.read_text(encoding="utf-8") == "keep"


def test_second_run_fails_at_once_naming_the_holder(
    holder: tuple[Path, subprocess.Popen[str]], tmp_path: Path
) -> None:
    folder, proc = holder
    scene = _missing_inputs(tmp_path / "cfg")
    code, text = _run("run", scene, "--out", folder)
    flat = _one_error_line(text)
    assert code == 2, text
    assert _says(flat, f"output folder '{folder}' is in use by another geohm run"), flat
    assert _says(flat, f"process id {proc.pid}", "wait for it to finish"), flat
    assert "missing" not in flat  # nothing was read
    with pytest.raises(OutputError, match=f"process id {proc.pid}"):
        with output_folder(folder):
            pass
    # the holder dies (SIGKILL): its lock goes with it, the next run proceeds to its inputs
    proc.send_signal(signal.SIGKILL)
    proc.wait(STARTUP)
    code, text = _run("run", scene, "--out", folder)
    assert code == 2 and not _says(text, "in use") and _says(text, "missing_scene"), text


def test_killed_run_leaves_nothing_for_the_next(tmp_path: Path) -> None:
    """Scratch files and the outputs a SIGKILLed run claimed go on the next run; files
    saved into the folder after the kill (a QGIS project) stay: only names in the
    journal are removed (review of issue 12, item 2)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.csv").write_text("a,b\n", encoding="utf-8")  # the user's, before
    _die_in(
        out,
        """
        import numpy as np
        from affine import Affine
        from geohm.grid import Grid
        from geohm.io.rasters import TileWriter, atomic_path
        from geohm.io.reports import write_text
        held.clear_previous()  # the run starts writing
        write_text(folder / "Pb_concentration.qml", "<qgis/>")  # a finished output
        (folder / "stray.txt").write_text("x")  # not through geohm's writers: not claimed
        grid = Grid("EPSG:32649", Affine(30, 0, 0, 0, -30, 0), 64, 64)
        w = TileWriter(folder / "Cu_concentration.tif", grid, dtype="float32", nodata=-9999)
        w.write(0, 0, np.ones((64, 64), "float32"))
        ctx = atomic_path(folder / "Cu_uncertainty.tif")
        tmp = ctx.__enter__()
        tmp.write_bytes(b"half")
        Path(str(tmp) + ".ovr.tmp").write_bytes(b"overviews")  # as GDAL's COG driver
        """,
    )
    left = _files(out)
    assert {LOCK_NAME, HOLDER_NAME, JOURNAL_NAME} <= left  # a killed holder leaves them
    scratch = {n for n in left if n.startswith(".")} - {LOCK_NAME, HOLDER_NAME, JOURNAL_NAME}
    assert len(scratch) == 3 and all(is_scratch(n) for n in scratch), left
    assert {n.split(".")[1] for n in scratch} == {"Cu_concentration", "Cu_uncertainty"}
    # every output name is in the journal before its file exists (the TileWriter's map
    # only once it is being published)
    journal = json.loads((out / JOURNAL_NAME).read_text(encoding="utf-8"))
    assert journal["written"] == ["Cu_uncertainty.tif", "Pb_concentration.qml"]
    assert "Pb_concentration.qml" in left and "Cu_uncertainty.tif" not in left
    # after the kill, the user opens the folder in QGIS and saves a project there
    (out / "inspect.qgz").write_bytes(b"PK a QGIS project")
    with output_folder(out) as folder:  # the lock of the dead process does not block
        assert sorted(folder.scratch_removed) == sorted(scratch)
        assert folder.clear_previous() == ["Pb_concentration.qml"]
        assert folder.foreign == ["inspect.qgz", "mine.csv", "stray.txt"]
        assert _files(out) == {
            "inspect.qgz",
            "mine.csv",
            "stray.txt",
            LOCK_NAME,
            HOLDER_NAME,
            JOURNAL_NAME,
        }
    assert (out / "inspect.qgz").read_bytes() == b"PK a QGIS project"
    # released: the holder file goes, the (empty) lock file stays; the journal stays
    # until a manifest is written
    assert _files(out) == {"inspect.qgz", "mine.csv", "stray.txt", LOCK_NAME, JOURNAL_NAME}


# --------------------------------------------------------------------------- item 11


def _ro_mount(where: Path) -> Iterator[Path]:
    """A read-only tmpfs with an existing folder in it; skips where mounting is not allowed."""
    where.mkdir()
    ok = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True
    )
    if ok.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({ok.stderr.decode().strip()})")
    try:
        (where / "existing").mkdir()
        ro = subprocess.run(["mount", "-o", "remount,ro", str(where)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only ({ro.stderr.decode().strip()})")
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    yield from _ro_mount(tmp_path / "ro")


@pytest.mark.parametrize("command", ["run", "predict"])
@pytest.mark.parametrize(
    "case, words",
    [
        ("existing file", ["is an existing file, not a folder"]),
        ("under a file", ["cannot create the output folder", "is a file"]),
        ("read-only, new", ["cannot create the output folder", "read-only"]),
        ("read-only, existing", ["cannot write into the output folder", "read-only"]),
        ("no write permission", ["cannot write into the output folder", "permission denied"]),
    ],
)
def test_unusable_output_folder_exits_2_before_reading_inputs(
    case: str, words: list[str], command: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    scene = _missing_inputs(tmp_path / "cfg")
    if case == "existing file":
        out = tmp_path / "report.pdf"
        out.write_text("a file", encoding="utf-8")
    elif case == "under a file":
        (tmp_path / "a_file").write_text("x", encoding="utf-8")
        out = tmp_path / "a_file" / "sub" / "out"
    elif case.startswith("read-only"):
        ro = request.getfixturevalue("read_only")
        out = ro / ("new" if case.endswith("new") else "existing")
    else:
        if os.geteuid() == 0:
            pytest.skip("root ignores permission bits (the read-only mount cases cover it)")
        out = tmp_path / "locked"
        out.mkdir(mode=0o555)
    args = ["--model", str(tmp_path / "missing.geohm")] if command == "predict" else []
    code, text = _run(command, scene, "--out", out, *args)
    flat = _one_error_line(text)
    assert code == 2, text
    assert _says(flat, f"'{out}'", *words, "--out"), flat  # the folder, why, what to do
    for name in ("missing_scene", "missing_dem", "missing.gpkg", "missing.geohm"):
        assert not _says(flat, name)  # no input was read first


def test_job_inputs_are_every_file_the_config_names(tmp_path: Path) -> None:
    from geohm.config import parse_config

    scene = tmp_path / "L1"
    (scene / "out").mkdir(parents=True)
    for name in ("L1_SR_B4.TIF", "L1_MTL.txt", "out/Cu_concentration.tif", "out/dem.tif"):
        (scene / name).write_bytes(b"x" * 3)
    for name in ("pts.shp", "pts.dbf", "pts.prj", "other.csv", "limits.csv"):
        (tmp_path / name).write_text("a", encoding="utf-8")
    cfg = parse_config(
        {
            "name": "t",
            "landsat": "L1",
            "dem": "L1/out/dem.tif",  # an input that lies in the output folder
            "covariates": {"gone": "gone.tif"},
            "samples": {"path": "pts.shp", "targets": ["Cu"]},
            "risk": {"standard": "limits.csv"},
            "output": {"dir": "L1/out"},
        },
        base_dir=tmp_path,
    )
    job = job_fingerprint(cfg, inputs=[tmp_path / "other.csv"])
    names = {str(Path(p).relative_to(tmp_path)): rec for p, rec in job.inputs.items()}
    assert set(names) == {
        "L1/L1_SR_B4.TIF",
        "L1/L1_MTL.txt",
        "L1/out/dem.tif",  # named: an input, although in the output folder
        "gone.tif",
        "pts.shp",
        "pts.dbf",  # a shapefile's other parts
        "pts.prj",
        "limits.csv",  # a user standard, named by a string
        "other.csv",
    }  # and not L1/out/Cu_concentration.tif: found under the scene folder, but an output
    assert names["gone.tif"] == {"size": -1, "mtime_ns": -1}
    assert names["L1/L1_MTL.txt"]["size"] == 3


def test_batch_summary_folder_is_checked_first(tmp_path: Path) -> None:
    """`geohm batch --out FILE`: exit 2 naming the folder, before any scene is looked at."""
    not_a_folder = tmp_path / "summary.txt"
    not_a_folder.write_text("a file", encoding="utf-8")
    code, text = _run("batch", _missing_inputs(tmp_path / "cfg"), "--out", not_a_folder)
    assert code == 2 and _says(_one_error_line(text), f"'{not_a_folder}'", "not a folder"), text


# --------------------------------------------------------------------------- review items


def test_predict_into_the_folder_of_its_model_keeps_the_model(data: Path, tmp_path: Path) -> None:
    """`geohm predict --model OUT/model.geohm --out OUT`: the earlier run's manifest lists
    the model, but it is an input of this job: kept, and recorded as an input (item 1)."""
    scene = _scene(data, "model-here")
    out = tmp_path / "out"
    code, text = _run("run", scene, "--out", out)
    assert code == 0, text
    name = next(n for n in read_manifest(out)["outputs"] if n.startswith("model."))
    model = out / name
    original = model.read_bytes()
    code, text = _run("predict", scene, "--model", model, "--out", out)
    assert code == 0, text
    assert model.read_bytes() == original
    assert _says(text, "ran: the earlier outputs are from geohm run"), text
    assert _says(text, f"kept input file(s) of this run: {name}"), text
    manifest = read_manifest(out)
    assert manifest is not None and manifest["command"] == "predict"
    assert manifest["inputs"][str(model)]["size"] == len(original)
    assert name not in manifest["outputs"]  # not written by this job
    note = json.loads((out / "report.json").read_text(encoding="utf-8"))["output_folder"]
    assert note["kept_input_files"] == [name]
    assert "samples.csv" in note["removed_earlier_outputs"]  # the run's other files went
    assert name not in note.get("kept_files_not_written_by_geohm", [])
    # the same again: up to date; forced: reruns, and the model still stays
    code, text = _run("predict", scene, "--model", model, "--out", out)
    assert code == 0 and _says(text, "skipped: outputs in"), text
    code, text = _run("predict", scene, "--model", model, "--out", out, "--force")
    assert code == 0 and _says(text, f"kept input file(s) of this run: {name}"), text
    assert model.read_bytes() == original


def test_an_input_in_the_output_folder_is_never_overwritten(tmp_path: Path) -> None:
    """An output whose name is an input of the run (by path or by hard link) is refused."""
    out = tmp_path / "out"
    out.mkdir()
    table = out / "samples.csv"
    table.write_text("id,Cu\n1,5\n", encoding="utf-8")
    (out / "old.csv").write_text("x", encoding="utf-8")
    os.link(table, tmp_path / "elsewhere.csv")
    for given in (table, tmp_path / "elsewhere.csv"):
        with output_folder(out) as folder:
            folder.protect([given])
            with pytest.raises(OutputError, match="is an input of this run") as err:
                write_text(table, "overwritten")
            assert _says(str(err.value), f"'{table}'", "give --out")
            assert folder.kept_inputs == ["samples.csv"]
            assert folder.foreign == ["old.csv"]
        assert table.read_text(encoding="utf-8") == "id,Cu\n1,5\n"
        assert not [n for n in _files(out) if is_scratch(n)]


def test_inputs_under_the_output_folder_and_beside_an_mtl(tmp_path: Path) -> None:
    """The demo layout (data in OUT/data, maps in OUT): the data are inputs (item 3); a
    `landsat:` naming the _MTL.txt tracks the files beside it (item 4); GDAL sidecars and
    geohm's own files are never inputs (item 5)."""
    from geohm.config import parse_config

    out = tmp_path / "demo"
    scene = out / "data" / "L1"
    scene.mkdir(parents=True)
    for name in ("L1_SR_B4.TIF", "L1_QA_PIXEL.TIF", "L1_MTL.txt", "L1_SR_B4.TIF.aux.xml"):
        (scene / name).write_bytes(b"band")
    for name in ("dem.tif", "dem.tif.aux.xml", "pts.gpkg"):
        (out / "data" / name).write_bytes(b"data")
    for name in ("Cu_concentration.tif", "Cu_concentration.tif.aux.xml", "report.json"):
        (out / name).write_bytes(b"output")
    (out / "inspect.qgz").write_bytes(b"a user's project, directly in the output folder")
    (out / LOCK_NAME).write_bytes(b"")
    common = {
        "name": "t",
        "dem": "demo/data/dem.tif",
        "samples": {"path": "demo/data/pts.gpkg", "targets": ["Cu"]},
        "output": {"dir": "demo"},
    }
    want = {
        "demo/data/L1/L1_SR_B4.TIF",
        "demo/data/L1/L1_QA_PIXEL.TIF",
        "demo/data/L1/L1_MTL.txt",
        "demo/data/dem.tif",
        "demo/data/pts.gpkg",
    }
    for landsat in ("demo/data/L1", "demo/data/L1/L1_MTL.txt"):
        cfg = parse_config({**common, "landsat": landsat}, base_dir=tmp_path)
        job = job_fingerprint(cfg)
        assert {str(Path(p).relative_to(tmp_path)) for p in job.inputs} == want, landsat
        # a band changed: the job changes (a rerun would say which file)
        band = scene / "L1_SR_B4.TIF"
        band.write_bytes(b"band, reprocessed")
        try:
            assert job_fingerprint(cfg).inputs[str(band)]["size"] == len(b"band, reprocessed")
        finally:
            band.write_bytes(b"band")

    # the output folder named as the scene folder itself: only geohm's files there are
    # left out (its manifest's outputs, its own files)
    same = tmp_path / "same"
    same.mkdir()
    for name in ("S_SR_B4.TIF", "S_MTL.txt", "Cu_concentration.tif", "notes.txt"):
        (same / name).write_bytes(b"x")
    (same / LOCK_NAME).write_bytes(b"")
    with output_folder(same) as folder:
        folder.clear_previous()
        folder.seal([same / "Cu_concentration.tif"], Job("run", "x", {}))
    cfg = parse_config(
        {"name": "s", "landsat": "same", "output": {"dir": "same"}}, base_dir=tmp_path
    )
    names = {Path(p).name for p in job_fingerprint(cfg).inputs}
    assert names == {"S_SR_B4.TIF", "S_MTL.txt", "notes.txt"}


def test_sidecars_go_with_their_raster_but_are_never_compared(tmp_path: Path) -> None:
    """QGIS rewrites a map's .aux.xml (statistics) on a read-only open: no rerun (item 5)."""
    out = tmp_path / "out"
    job = Job("run", "cfg", {})
    with output_folder(out) as folder:
        write_text(out / "a_class.tif", "a class raster")  # the first output clears
        write_text(out / "a_class.tif.aux.xml", "<PAMDataset>class names</PAMDataset>")
        folder.seal([out / "a_class.tif"], job)
    manifest = read_manifest(out)
    assert manifest is not None
    assert set(manifest["outputs"]) == {"a_class.tif"}
    assert manifest["sidecars"] == ["a_class.tif.aux.xml"]
    assert compare(out, job, hashes=True).match
    # QGIS computes statistics: 258 -> 531 bytes, as seen
    (out / "a_class.tif.aux.xml").write_bytes(b"s" * 531)
    assert compare(out, job, hashes=True).match
    (out / "a_class.tif.aux.xml").unlink()
    assert compare(out, job).match
    # a manifest of an earlier geohm listed the sidecar with its size: not compared either
    manifest["outputs"]["a_class.tif.aux.xml"] = {"size": 258, "mtime_ns": 0, "sha256": "0"}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    (out / "a_class.tif.aux.xml").write_bytes(b"s" * 531)
    assert compare(out, job, hashes=True).match
    (out / "b.tif").write_bytes(b"a user's raster")
    (out / "b.tif.aux.xml").write_bytes(b"its statistics")
    with output_folder(out) as folder:  # the next run removes the raster and its sidecar
        removed = folder.clear_previous()
    assert sorted(removed) == ["a_class.tif", "a_class.tif.aux.xml", MANIFEST_NAME]
    assert {"b.tif", "b.tif.aux.xml"} <= _files(out)


@pytest.mark.parametrize(
    "report",
    [
        {"outputs": ["field_notes.docx", "report.json"]},
        {"name": "survey", "outputs": ["field_notes.docx", "report.json"]},
        {"name": "survey", "versions": {"numpy": "2.0"}, "outputs": ["field_notes.docx"]},
        {"versions": {"geohm": "0.1.0"}, "outputs": ["field_notes.docx", "report.json"]},
    ],
)
def test_a_report_json_geohm_did_not_write_removes_nothing(
    report: dict[str, object], tmp_path: Path
) -> None:
    """Only a report.json with geohm's keys (name, versions.geohm) names files to remove
    from a folder written before manifests (item 6)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "field_notes.docx").write_bytes(b"mine")
    (out / "report.json").write_text(json.dumps(report), encoding="utf-8")
    with output_folder(out) as folder:
        assert folder.clear_previous() == []
        assert folder.foreign == ["field_notes.docx", "report.json"]
    assert (out / "field_notes.docx").read_bytes() == b"mine"


def test_the_lock_file_stays_and_a_held_folder_is_never_skipped(data: Path, tmp_path: Path) -> None:
    """The lock file is never unlinked; a folder whose manifest matches but that another
    run holds makes `geohm run` and `geohm batch` fail naming it, not skip (item 7)."""
    scene = _scene(data, "held-skip")
    out = tmp_path / "runs" / "held-skip"
    code, text = _run("run", scene, "--out", out)
    assert code == 0, text
    assert (out / LOCK_NAME).is_file() and (out / LOCK_NAME).stat().st_size == 0
    assert not (out / HOLDER_NAME).exists()
    cfg = load_config(scene, output_dir=out)
    job = job_fingerprint(cfg)
    assert compare_locked(out, job).match  # free: the answer under the lock
    with _holding(out) as proc:  # a --force run in progress, say
        assert compare(out, job).match  # the bare look says up to date ...
        with pytest.raises(OutputError, match=f"in use by another geohm run.*{proc.pid}"):
            compare_locked(out, job)  # ... but the folder is being written
        code, text = _run("run", scene, "--out", out)
        assert code == 2 and not _says(text, "skipped"), text
        assert _says(_one_error_line(text), "is in use by another geohm run", str(proc.pid))
        result = run_batch([scene], scheduler="tcp://127.0.0.1:9", output_root=out.parent)
        [status] = result.scenes
        assert status.status == "failed" and status.error is not None
        assert _says(status.error, "is in use by another geohm run", str(proc.pid))
    code, text = _run("run", scene, "--out", out)  # the holder is gone: up to date
    assert code == 0 and _says(text, "skipped: outputs in"), text
    # a folder holding only geohm's lock file has no earlier outputs
    empty = tmp_path / "empty"
    with output_folder(empty):
        pass
    assert _files(empty) == {LOCK_NAME}
    assert compare(empty, job).reason == "no earlier outputs"


def test_library_versions_are_part_of_the_job(tmp_path: Path) -> None:
    """numpy, scikit-learn, torch, rasterio and GDAL versions: an upgrade reruns."""
    out = tmp_path / "out"
    job = Job("run", "cfg", {})
    assert job.versions == dependency_versions()
    with output_folder(out) as folder:
        write_text(out / "a.txt", "a")
        folder.seal([out / "a.txt"], job)
    assert compare(out, job).match
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    now = dependency_versions()
    manifest["versions"] = {**now, "numpy": "1.0.0", "GDAL": "2.0.0"}
    (out / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    assert compare(out, job).reason == (
        f"library versions changed (GDAL 2.0.0 -> {now['GDAL']}, numpy 1.0.0 -> {now['numpy']})"
    )
    del manifest["versions"]
    (out / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    assert compare(out, job).reason == "library versions changed (not recorded in the manifest)"

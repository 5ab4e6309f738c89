"""A full disk (or any failed write) never leaves a corrupt or half-written file under an
output's final name: geohm stops with one line ("no space left on device ... while writing
...") and exit code 2, and removes its temporary files.

Two ways to make writes fail for real: a 2 MB tmpfs mounted for the test (needs root and
a system that allows mounts; skipped otherwise), and, always, the kernel's file-size limit
(``RLIMIT_FSIZE``) in a child process: a write past it fails with EFBIG, the same way
GDAL's and Python's writes fail on a full disk (a short or refused ``write(2)``).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from affine import Affine

from geohm.errors import OutputError
from geohm.grid import Grid
from geohm.io.rasters import TileWriter, atomic_path, verify_geotiff, write_geotiff
from geohm.io.reports import write_json
from geohm.synth import make_demo

CRS = "EPSG:32649"
TRANSFORM = (30.0, 0.0, 490000.0, 0.0, -30.0, 3750000.0)
ROOT = Path(__file__).resolve().parents[1]
# geohm's temporary names: atomic_path's .NAME.xxxxxxxx.tmp.EXT (and GDAL's .aux.xml /
# .ovr.tmp beside it), TileWriter's .NAME.xxxxxxxx.scratch.tif, probe files.
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.(scratch|tmp)|^\.geohm-probe-")


def _grid(n: int) -> Grid:
    return Grid(CRS, Affine(*TRANSFORM), n, n)


def _noise(n: int) -> np.ndarray:
    """Random floats: DEFLATE cannot shrink them much; a nodata corner."""
    data = np.random.default_rng(7).random((n, n), dtype=np.float32)
    data[: n // 8, : n // 8] = np.nan
    return data


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if TEMPORARY.match(p.name))


def _assert_outputs_readable(folder: Path) -> list[str]:
    """Every file under a final name opens and reads fully; returns their names."""
    names: list[str] = []
    if not folder.exists():
        return names
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        names.append(p.name)
        if p.suffix == ".tif":
            with rasterio.open(p) as src:
                src.read()
                for level in range(len(src.overviews(1))):
                    with rasterio.open(p, overview_level=level) as ovr:
                        ovr.read()
        elif p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix in (".qml", ".xml"):
            ET.parse(p)
        elif p.suffix == ".png":
            from PIL import Image

            with Image.open(p) as im:
                im.load()
        elif p.suffix == ".csv":
            pd.read_csv(p)
    return names


# --------------------------------------------------------------------------- a real small disk


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted at tmp_path/fs (unmounted after the test)."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a 2 MB tmpfs needs root and the mount command")
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        pytest.skip(f"this system does not allow mounting a tmpfs: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)


def _fill(fs: Path, leave: int) -> None:
    """Leave about ``leave`` bytes free on the filesystem of ``fs``."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    with open(fs / "filler.bin", "wb") as f:
        f.write(os.urandom(max(free - leave, 0)))


@pytest.mark.parametrize("n", [500, 1024])
def test_tile_writer_on_a_full_tmpfs_raises_and_keeps_nothing(small_fs: Path, n: int) -> None:
    # n=500: the scratch file fits, its COG copy does not (GDAL only logged that, and the
    # truncated copy used to be renamed to its final name); n=1024: 4 MB on a 2 MB disk.
    out = small_fs / "out"
    final = out / "Cu_concentration.tif"
    data = _noise(n)
    with pytest.raises(OutputError) as info:
        with TileWriter(final, _grid(n), dtype="float32", nodata=-9999.0) as w:
            for r in range(0, n, 128):
                w.write(r, 0, data[r : r + 128])
    msg = str(info.value)
    assert msg.startswith(f"no space left on device tmpfs at {small_fs} while writing {final}")
    assert "--out" in msg and "\n" not in msg
    assert _temporaries(small_fs) == []
    assert _assert_outputs_readable(out) == []  # nothing under a final name


def test_reports_on_a_full_tmpfs_raise_and_keep_the_old_file(small_fs: Path) -> None:
    final = small_fs / "report.json"
    write_json(final, {"run": 1})
    _fill(small_fs, 64 * 1024)
    with pytest.raises(OutputError, match=f"no space left on device .* while writing {final}"):
        write_json(final, {"values": np.random.default_rng(0).random(100_000).tolist()})
    assert json.loads(final.read_text()) == {"run": 1}
    assert _temporaries(small_fs) == []


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".csv"])
def test_points_on_a_full_tmpfs_raise_output_error(small_fs: Path, suffix: str) -> None:
    # OGR (through pyogrio) raises its own errors, not OSError: the filesystem says why.
    import geopandas as gpd

    from geohm.io.points import write_points

    rng = np.random.default_rng(0)
    gdf = gpd.GeoDataFrame(
        {"id": [f"S{i}" for i in range(20_000)], "Cu": rng.random(20_000)},
        geometry=gpd.points_from_xy(rng.random(20_000), rng.random(20_000)),
        crs=CRS,
    )
    _fill(small_fs, 32 * 1024)
    final = small_fs / f"samples{suffix}"
    with pytest.raises(OutputError, match=f"no space left on device .* while writing {final};"):
        write_points(gdf, final)
    assert not final.exists()
    assert _temporaries(small_fs) == []


def _demo_case(root: Path) -> Path:
    """The small demo case (96 x 96) with a quick forest and two prediction threads."""
    scene = make_demo(root / "data", seed=0, size=96).scene
    cfg = yaml.safe_load(scene.read_text())
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 20}}  # the demo's is auto
    cfg["output"]["workers"] = 2  # the threaded prediction path hands the error up
    cfg["output"]["tile"] = 32  # several windows
    scene.write_text(yaml.safe_dump(cfg))
    return scene


def _geohm(*args: str, fsize: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:  # the child's own file size limit (Python ignores SIGXFSZ)
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, resource.RLIM_INFINITY))

    return subprocess.run(
        [sys.executable, "-m", "geohm.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=limit,
        timeout=600,
    )


@pytest.mark.slow
def test_geohm_run_onto_a_full_tmpfs_exits_2_and_leaves_no_corrupt_output(
    small_fs: Path, tmp_path: Path
) -> None:
    scene = _demo_case(tmp_path)
    _fill(small_fs, 300 * 1024)  # the first maps fit, a later one does not
    out = small_fs / "out"
    res = _geohm("run", str(scene), "--out", str(out))
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    where, target = re.escape(str(small_fs)), re.escape(str(out))
    assert re.match(
        rf"error: no space left on device tmpfs at {where} while writing {target}/\S+; ", last
    ), res.stderr
    assert "Traceback" not in res.stderr
    assert _temporaries(small_fs) == []
    names = _assert_outputs_readable(out)
    assert any(n.endswith(".tif") for n in names)  # maps published before the disk filled


# --------------------------------------------------------------------------- fault injection

_CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import numpy as np
    from affine import Affine
    from geohm.errors import OutputError
    from geohm.grid import Grid
    from geohm.io.reports import write_json
    from geohm.io.rasters import TileWriter

    folder, n, limits = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    data = np.random.default_rng(7).random((n, n), dtype=np.float32)
    data[: n // 8, : n // 8] = np.nan
    grid = Grid("EPSG:32649", Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750000.0), n, n)
    results = []
    for k, limit in enumerate(limits):
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        out = {"limit": limit}
        try:
            with TileWriter(f"{folder}/map{k}.tif", grid, nodata=-9999.0) as w:
                for r in range(0, n, 100):
                    w.write(r, 0, data[r : r + 100])
            out["map"] = "ok"
        except OutputError as exc:
            out["map"] = str(exc)
        try:
            write_json(f"{folder}/report{k}.json", {"v": list(range(10_000))})
            out["report"] = "ok"
        except OutputError as exc:
            out["report"] = str(exc)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        results.append(out)
    print(json.dumps(results))
    """
)


def test_failed_writes_under_a_file_size_limit_raise_and_keep_nothing(tmp_path: Path) -> None:
    # A file-size limit makes the kernel refuse writes past it (EFBIG) at every stage: the
    # scratch file, GDAL's overview file, the COG copy, its header, a JSON report.
    n = 600
    limits = [20_000, 200_000, 700_000, 1_000_000, 1_300_000, 8_000_000]
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path), str(n), json.dumps(limits)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout.strip().splitlines()[-1])
    assert [r["limit"] for r in results] == limits
    for k, r in enumerate(results[:-1]):
        assert r["map"].startswith("file too large for device "), r
        assert f"while writing {tmp_path}/map{k}.tif" in r["map"]
        assert not (tmp_path / f"map{k}.tif").exists()
    assert results[0]["report"].startswith("file too large for device ")
    assert all(r["report"] == "ok" for r in results[1:])
    assert results[-1] == {"limit": limits[-1], "map": "ok", "report": "ok"}
    assert _temporaries(tmp_path) == []
    names = _assert_outputs_readable(tmp_path)
    assert f"map{len(limits) - 1}.tif" in names
    assert "report0.json" not in names and "report1.json" in names
    # What was published holds exactly what was written (a block lost in the scratch
    # file used to be read back as nodata without a word).
    with rasterio.open(tmp_path / f"map{len(limits) - 1}.tif") as src:
        got = src.read(1, masked=True).filled(np.nan)
    np.testing.assert_array_equal(got, _noise(n))


@pytest.mark.slow
def test_geohm_run_under_a_file_size_limit_exits_2(tmp_path: Path) -> None:
    scene = _demo_case(tmp_path)
    out = tmp_path / "out"
    res = _geohm("run", str(scene), "--out", str(out), fsize=24_000)
    assert res.returncode == 2, res.stderr
    last = res.stderr.strip().splitlines()[-1]
    target = re.escape(str(out))
    assert re.match(rf"error: file too large for device .* while writing {target}/\S+; ", last)
    assert "Traceback" not in res.stderr
    assert _temporaries(out) == []
    _assert_outputs_readable(out)


# --------------------------------------------------------------------------- verification


@pytest.fixture
def good_cog(tmp_path: Path) -> bytes:
    p = write_geotiff(
        tmp_path / "src" / "good.tif",
        _noise(600),
        crs=CRS,
        transform=Affine(*TRANSFORM),
        nodata=-9999.0,
    )
    return p.read_bytes()


@pytest.mark.parametrize("keep", [200, 0.5, 0.9, -1])
def test_a_truncated_temporary_geotiff_is_not_renamed(
    tmp_path: Path, good_cog: bytes, keep: float
) -> None:
    final = tmp_path / "Cu_concentration.tif"
    final.write_bytes(b"the earlier run's map")
    cut = int(keep) if keep >= 1 else len(good_cog) - 1 if keep < 0 else int(len(good_cog) * keep)

    def check(tmp: Path) -> None:
        verify_geotiff(tmp, shape=(1, 600, 600), dtype="float32")

    with pytest.raises(OutputError, match=f"writing {final} failed") as info:
        with atomic_path(final, check=check) as tmp:
            tmp.write_bytes(good_cog[:cut])
    assert "it was not written" in str(info.value)
    assert final.read_bytes() == b"the earlier run's map"
    assert _temporaries(tmp_path) == []
    # The complete file passes the same check and is renamed.
    with atomic_path(final, check=check) as tmp:
        tmp.write_bytes(good_cog)
    assert final.read_bytes() == good_cog


def test_verify_geotiff_checks_the_header(good_cog: bytes, tmp_path: Path) -> None:
    p = tmp_path / "ok.tif"
    p.write_bytes(good_cog)
    verify_geotiff(p, shape=(1, 600, 600), dtype="float32")  # complete: no error
    with pytest.raises(OSError, match="header says"):
        verify_geotiff(p, shape=(2, 600, 600))

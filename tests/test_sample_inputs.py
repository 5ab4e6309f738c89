"""Issue 12, items 1-6, 15, 16: no sample lost or changed without a word.

Lab values with units, detection limits, gaps and text; per-target leaving out; negative
and zero concentrations; replicates at one location kept in one split and fold; CV folds
capped and said; datum ballparks warned about; empty scenes, empty files and swapped
columns named plainly; no RuntimeWarning reaching the terminal.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from shapely.geometry import Point
from sklearn.model_selection import KFold, train_test_split
from typer.testing import CliRunner

from geohm.cli import app
from geohm.cube import stack_features
from geohm.errors import SampleError
from geohm.evaluate import group_kfold, holdout_split
from geohm.labvalues import parse_target
from geohm.sampling import datum_warnings, sample_cube

from .conftest import CRS

IDS = [f"s{i}" for i in range(20)]


# --- lab values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "value", "left_out"),
    [
        (12.5, 12.5, None),
        ("12.5", 12.5, None),
        ("51.8 mg/kg", 51.8, None),
        ("51,8 mg kg-1", 51.8, None),
        ("7 ppm", 7.0, None),
        ("7ug/g", 7.0, None),
        ("2,000.5", 2000.5, None),
        ("2.000,5 mg/kg", 2000.5, None),
        ("1,250,000 ppm", 1250000.0, None),
        ("1.250", 1.25, None),
        ("0,125", 0.125, None),
        ("12.3.4", None, "non-numeric text '12.3.4'"),
        ("<5", 2.5, None),
        ("< 5 mg/kg", 2.5, None),
        ("ND", 1.0, None),  # detection limit 2 -> 2/2
        ("n.d.", 1.0, None),
        ("BDL", 1.0, None),
        (0, 0.0, None),
        (None, None, "missing value"),
        (float("nan"), None, "missing value"),
        ("", None, "missing value"),
        ("n/a", None, "missing value"),
        ("see note", None, "non-numeric text 'see note'"),
    ],
)
def test_lab_cells(cell, value, left_out) -> None:
    p = parse_target([cell], name="Cu", ids=["a"], detection_limit=2.0)
    if value is None:
        assert math.isnan(p.values[0]) and p.left_out == {0: left_out}
    else:
        assert p.values[0] == pytest.approx(value) and not p.left_out


def test_censored_rules_and_counts() -> None:
    cells = ["<4", "ND", 10, 0, "<4 mg/kg"]
    kw = {"name": "Pb", "ids": ["a", "b", "c", "d", "e"], "detection_limit": 3.0}
    half = parse_target(cells, **kw)
    np.testing.assert_allclose(half.values, [2.0, 1.5, 10.0, 0.0, 2.0])
    assert half.censored == [0, 1, 4] and half.zeros == [3]
    sq = parse_target(cells, censored="x/sqrt2", **kw)
    assert sq.values[0] == pytest.approx(4 / math.sqrt(2))
    assert parse_target(cells, censored="x", **kw).values[1] == 3.0
    drop = parse_target(cells, censored="drop", **kw)
    assert np.isnan(drop.values[[0, 1, 4]]).all() and drop.censored == []
    assert "below the detection limit" in drop.left_out[0]


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ([1.0, -3.2, -1], ["column 'Cu'", "negative", "b (-3.2)", "c (-1)"]),
        ([1.0, "5 %", 2], ["column 'Cu'", "unit other than mg/kg", "b ('5 %')"]),
        ([1.0, "12 g/kg"], ["column 'Cu'", "b ('12 g/kg')"]),
        (["ND", 1.0], ["column 'Cu'", "a", "samples.detection_limits"]),
        ([1.0, "1,250"], ["column 'Cu'", "b ('1,250')", "1.25 or 1250"]),
    ],
)
def test_lab_errors_name_column_and_rows(cells, words) -> None:
    with pytest.raises(SampleError) as err:
        parse_target(cells, name="Cu", ids=["a", "b", "c"][: len(cells)])
    for w in words:
        assert w in str(err.value)


# --- sampling: per-target leaving out, groups --------------------------------------------


def _points(xy, crs=CRS, **cols):
    return gpd.GeoDataFrame(cols, geometry=[Point(x, y) for x, y in xy], crs=crs)


def _px(row: int, col: int) -> tuple[float, float]:
    return 490000 + (col + 0.5) * 30, 3750000 - (row + 0.5) * 30


def test_nan_in_one_target_keeps_the_other(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance, ["red", "nir"])
    pts = _points(
        [_px(2, 2), _px(3, 3), _px(4, 4), _px(5, 5)],
        id=["a", "b", "c", "d"],
        Cu=[np.nan, 20.0, "<4", None],
        Pb=[30.0, "n.d.", 15.0, None],
    )
    t = sample_cube(cube, pts, targets=["Cu", "Pb"], id_column="id", detection_limits={"Pb": 2.0})
    assert list(t.X.index) == ["a", "b", "c"]  # d has no value at all
    assert np.isnan(t.y.loc["a", "Cu"]) and t.y.loc["a", "Pb"] == 30.0
    assert t.y.loc["b", "Pb"] == 1.0 and t.y.loc["c", "Cu"] == 2.0
    recs = t.dropped_records()
    assert {"id": "a", "target": "Cu", "reason": "missing value"} in recs
    assert {"id": "d", "target": "Cu", "reason": "missing value"} in recs
    assert {"id": "d", "target": "Pb", "reason": "missing value"} in recs
    summary = t.summary()
    assert summary["per_target"]["Cu"]["used"] == 2 and summary["per_target"]["Pb"]["used"] == 3
    assert summary["per_target"]["Cu"]["censored_ids"] == ["c"]
    assert summary["per_target"]["Pb"]["censored_ids"] == ["b"]


def test_replicates_share_a_group(tiny_reflectance) -> None:
    cube = stack_features(tiny_reflectance, ["red", "nir"])
    x, y = _px(6, 6)
    pts = _points(
        [(x, y), (x + 5, y - 5), _px(2, 2), (x - 3, y)],
        id=["a", "b", "c", "d"],
        Cu=[1.0, 2.0, 3.0, 4.0],
    )
    t = sample_cube(cube, pts, targets=["Cu"], id_column="id")
    g = np.asarray(t.groups)
    assert g[0] == g[1] == g[3] != g[2]
    assert t.summary()["location_groups"] == 2
    assert t.summary()["replicate_groups"] == [["a", "b", "d"]]


def test_group_splits_never_split_a_location() -> None:
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 12, 40)
    train, test = holdout_split(40, test_fraction=0.25, seed=3, groups=groups)
    assert not set(groups[train]) & set(groups[test])
    assert len(set(groups[test])) == 3  # 25 % of the 12 locations
    folds = group_kfold(40, folds=5, seed=1, groups=groups)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen) == list(range(40))
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])


def test_singleton_groups_split_as_before() -> None:
    """One sample per location: the same split and folds as without groups (maps unchanged)."""
    n = 37
    old_tr, old_te = train_test_split(np.arange(n), test_size=0.2, random_state=4, shuffle=True)
    tr, te = holdout_split(n, test_fraction=0.2, seed=4, groups=np.arange(n)[::-1] * 3)
    np.testing.assert_array_equal(tr, np.sort(old_tr))
    np.testing.assert_array_equal(te, np.sort(old_te))
    kf = KFold(5, shuffle=True, random_state=2).split(np.zeros((n, 1)))
    for (a, b), (c, d) in zip(kf, group_kfold(n, folds=5, seed=2, groups=None), strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


# --- datum ---------------------------------------------------------------------------------


def test_ballpark_datum_is_warned_with_metres() -> None:
    lonlat = np.array([[116.9, 39.9], [117.1, 40.1]])  # Beijing 1954 near Beijing
    (msg,) = datum_warnings("EPSG:4214", "EPSG:32650", lonlat)
    assert "ballpark" in msg and "Beijing 1954" in msg
    metres = float(msg.split("about ")[1].split(" m")[0])
    assert 40 < metres < 120  # the (2)/(3) Helmert shifts PROJ knows move ~70 m here
    assert datum_warnings("EPSG:4326", "EPSG:32650", lonlat) == []


def test_missing_transformation_grid_is_named() -> None:
    """NAD27 over Florida: PROJ's best transformation needs a grid file; name it."""
    from pyproj.aoi import AreaOfInterest
    from pyproj.transformer import TransformerGroup

    lonlat = np.array([[-81.5, 28.5], [-81.4, 28.6]])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pyproj warns of the missing grid: the point here
        group = TransformerGroup(
            "EPSG:4267",
            "EPSG:32617",
            always_xy=True,
            area_of_interest=AreaOfInterest(-81.5, 28.5, -81.4, 28.6),
        )
    missing = {
        g.short_name for op in group.unavailable_operations for g in op.grids if not g.available
    }
    warned = datum_warnings("EPSG:4267", "EPSG:32617", lonlat)
    if group.best_available:  # the grids are installed here: nothing to say
        assert warned == []
        return
    (msg,) = warned
    assert "needs the grid file(s)" in msg and "NAD27" in msg
    assert all(name in msg for name in missing)


# --- whole runs through the CLI ------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, pd.DataFrame]:
    root = tmp_path_factory.mktemp("samples")
    res = CliRunner().invoke(app, ["synth", "--out", str(root), "--size", "96"])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((root / "scene.yaml").read_text())
    cfg.pop("source")
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 20}}
    cfg["risk"] = None
    cfg.pop("zones"), cfg.pop("sampling_design")  # they need the risk block
    cfg["output"] = {"uncertainty": False}
    pts = gpd.read_file(root / "samples_target.gpkg")
    table = pd.DataFrame(
        {
            "id": pts["id"],
            "lon": pts.geometry.x,
            "lat": pts.geometry.y,
            "Cu": pts["Cu"],
            "Pb": pts["Pb"],
        }
    ).astype({"Cu": object, "Pb": object})
    return root, cfg, table


def _run(small, name: str, table: pd.DataFrame | None = None, **changes):
    root, cfg, _ = small
    cfg = json.loads(json.dumps(cfg))
    if table is not None:
        table.to_csv(root / f"{name}.csv", index=False)
        cfg["samples"] = {
            "path": f"{name}.csv",
            "x": "lon",
            "y": "lat",
            "crs": "EPSG:4326",
            "id": "id",
            "targets": ["Cu", "Pb"],
        }
    for k, v in changes.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    cfg["output"]["dir"] = f"out_{name}"
    f = root / f"{name}.yaml"
    f.write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(app, ["run", str(f)])
    out = root / f"out_{name}"
    report = json.loads((out / "report.json").read_text()) if res.exit_code == 0 else None
    return res, report, out


def test_lab_values_through_a_run(small) -> None:
    _, _, table = small
    t = table.copy()
    t.loc[0, "Cu"] = np.nan  # Cu missing, Pb valid: kept for Pb
    t.loc[1, "Cu"] = "51.8 mg/kg"
    t.loc[2, "Pb"] = "<5"
    t.loc[9, "Cu"] = "ND"  # (row 3 is on a cloud pixel)
    t.loc[5, "Pb"] = "see note"
    t.loc[6, "Cu"] = 0
    res, rep, out = _run(
        small,
        "lab",
        t,
        samples={"detection_limits": {"Cu": 4.0}, "censored": "x/sqrt2"},
        preprocess={"log_target": True},  # log1p: a zero concentration is fine
    )
    assert res.exit_code == 0, res.output
    s = rep["samples"]
    ids = list(t["id"])
    recs = {(d["id"], d["target"]): d["reason"] for d in s["dropped"]}
    assert recs[(ids[0], "Cu")] == "missing value"
    assert recs[(ids[5], "Pb")] == "non-numeric text 'see note'"
    assert (ids[0], "Pb") not in recs
    per = s["per_target"]
    assert per["Cu"]["censored_ids"] == [ids[9]] and per["Pb"]["censored_ids"] == [ids[2]]
    assert per["Cu"]["zero_ids"] == [ids[6]] and per["Cu"]["censored_rule"] == "x/sqrt2"
    assert per["Pb"]["used"] == per["Cu"]["used"] == s["used"] - 1  # minus the one left out
    samples = pd.read_csv(out / "samples.csv", index_col=0)
    assert math.isnan(samples.loc[ids[0], "Cu_observed"])
    assert samples.loc[ids[0], "Pb_observed"] == pytest.approx(float(table.loc[0, "Pb"]))
    assert samples.loc[ids[1], "Cu_observed"] == pytest.approx(51.8)
    assert samples.loc[ids[9], "Cu_observed"] == pytest.approx(4 / math.sqrt(2))
    assert samples.loc[ids[2], "Pb_observed"] == pytest.approx(5 / math.sqrt(2))
    md = (out / "report.md").read_text()
    assert f"| {ids[5]} | Pb | non-numeric text 'see note' |" in md
    assert "| Cu |" in md and "(x/sqrt2)" in md
    text = " ".join(res.output.split())
    assert f"{ids[0]} (Cu: missing value)" in text and "left out" in text
    assert "below the detection limit set to x/sqrt2" in text


@pytest.mark.parametrize(
    ("row", "col", "cell", "words"),
    [
        (4, "Cu", -3.0, ["column 'Cu'", "negative", "(-3)"]),
        (7, "Pb", "12 %", ["column 'Pb'", "unit other than mg/kg", "'12 %'"]),
        (2, "Cu", "ND", ["samples.detection_limits", "Cu"]),
    ],
)
def test_bad_lab_values_exit_2(small, row, col, cell, words) -> None:
    _, _, table = small
    t = table.copy()
    t.loc[row, col] = cell
    res, _, _ = _run(small, f"bad_{row}", t)
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert str(t.loc[row, "id"]) in text
    for w in words:
        assert w in text


def test_replicates_stay_on_one_side(small) -> None:
    _, _, table = small
    copies = pd.concat([table.iloc[[8]]] * 9, ignore_index=True)
    copies["id"] = [f"rep{i}" for i in range(9)]
    t = pd.concat([table, copies], ignore_index=True)
    # with the uncertainty maps: their conformal folds are grouped by location too
    res, rep, out = _run(small, "reps", t, output={"uncertainty": True})
    assert res.exit_code == 0, res.output
    assert rep["targets"]["Cu"]["uncertainty"]["method"] == "quantile-forest"
    s = rep["samples"]
    assert s["location_groups"] == s["used"] - 9
    (group,) = [g for g in s["replicate_groups"] if "rep0" in g]
    assert len(group) == 10
    samples = pd.read_csv(out / "samples.csv", index_col=0)
    for target in ("Cu", "Pb"):
        assert samples.loc[group, f"{target}_split"].nunique() == 1
        assert rep["targets"][target]["samples"]["locations"] == s["location_groups"]


def test_cv_folds_above_the_samples_are_capped_and_said(small) -> None:
    res, rep, _ = _run(small, "folds", validation={"cv_folds": 60})
    assert res.exit_code == 0, res.output
    cu = rep["targets"]["Cu"]
    n_loc = cu["samples"]["train_locations"]
    assert cu["cv"]["folds"] == n_loc == cu["n_train"]
    assert any("cv_folds is 60" in s and f"{n_loc}-fold" in s for s in cu["skipped"])


def test_swapped_xy_and_empty_file_are_named(small) -> None:
    _, _, table = small
    res, _, _ = _run(small, "swapped", table.rename(columns={"lon": "lat", "lat": "lon"}))
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "x and y look swapped" in text and "latitude 110.8" in text and "impossible" in text
    # projected coordinates swapped: nothing is inside the scene, but would be if exchanged
    root, cfg, _ = small
    pts = gpd.GeoDataFrame(
        table[["id", "Cu", "Pb"]],
        geometry=gpd.points_from_xy(table["lon"], table["lat"]),
        crs="EPSG:4326",
    ).to_crs("EPSG:32649")
    utm = pd.DataFrame(
        {
            "id": pts["id"],
            "e": pts.geometry.x,
            "n": pts.geometry.y,
            "Cu": pts["Cu"],
            "Pb": pts["Pb"],
        }
    )
    utm.to_csv(root / "utm.csv", index=False)
    samples = {"path": "utm.csv", "x": "n", "y": "e", "crs": "EPSG:32649"}
    res, _, _ = _run(small, "swapped_utm", samples=samples)
    assert res.exit_code == 2
    assert "x and y look swapped" in " ".join(res.output.split())
    res, _, _ = _run(small, "empty", table.iloc[:0])
    assert res.exit_code == 2
    assert "holds no points" in " ".join(res.output.split())


def _rewrite(path: Path, fill) -> None:
    with rasterio.open(path) as src:
        profile, arr = src.profile, src.read()
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(fill(arr, profile))


def test_fully_masked_scene_and_empty_dem_blamed_before_the_points(small, tmp_path) -> None:
    import shutil

    root, cfg, _ = small
    scene = tmp_path / "scene"
    shutil.copytree(root / cfg["landsat"], scene)
    qa = next(scene.glob("*_QA_PIXEL.TIF"))
    _rewrite(qa, lambda a, p: np.full_like(a, 1 << 3))  # the cloud bit everywhere
    res, _, _ = _run(small, "cloudy", landsat=str(scene))
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "100 % of the Landsat scene" in text and "QA_PIXEL" in text and "cloud" in text
    assert "check that the points cover" not in text
    dem = tmp_path / "dem.tif"
    shutil.copy(root / cfg["dem"], dem)
    _rewrite(dem, lambda a, p: np.full_like(a, p["nodata"] if p["nodata"] is not None else 0))
    with rasterio.open(dem, "r+") as d:
        if d.nodata is None:
            d.nodata = 0
    res, _, _ = _run(small, "nodem", dem=str(dem))
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "the DEM" in text and "no valid data" in text and str(dem.name) in text


def test_datum_ballpark_in_the_report_and_no_runtime_warning(small) -> None:
    root, _, table = small
    res, rep, _ = _run(small, "bj54", table)
    assert res.exit_code == 0
    cfg = yaml.safe_load((root / "bj54.yaml").read_text())
    cfg["samples"]["crs"] = "EPSG:4214"  # Beijing 1954 over China: PROJ has only a ballpark
    cfg["output"]["dir"] = "out_bj54b"
    (root / "bj54b.yaml").write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONWARNINGS": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "geohm.cli", "run", str(root / "bj54b.yaml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    rep = json.loads((root / "out_bj54b" / "report.json").read_text())
    (w,) = rep["samples"]["warnings"]
    assert "ballpark" in w and " m " in w
    assert "ballpark" in " ".join(proc.stdout.split() + proc.stderr.split())
    assert "RuntimeWarning" not in proc.stderr and "Warning:" not in proc.stderr


def test_library_warnings_stay_off_the_terminal(small, tmp_path) -> None:
    """A numpy RuntimeWarning raised during a run is logged (shown with -v), not printed."""
    script = tmp_path / "warn.py"
    script.write_text(
        "import numpy as np, sys\n"
        "import geohm.pipeline as p\n"
        "orig = p.run_scene\n"
        "def noisy(*a, **k):\n"
        "    np.log(np.array([-1.0]))\n"  # the RuntimeWarning users used to see
        "    return orig(*a, **k)\n"
        "p.run_scene = noisy\n"
        "from geohm.cli import main\n"
        "sys.argv = ['geohm'] + sys.argv[1:]\n"
        "main()\n"
    )
    root = small[0]
    cfg = yaml.safe_load((root / "scene.yaml").read_text())
    cfg.pop("source")
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 10}}
    cfg["risk"] = None
    cfg.pop("zones"), cfg.pop("sampling_design")  # they need the risk block
    for verbose, shown in (([], False), (["-v"], True)):
        cfg["output"] = {"uncertainty": False, "dir": f"out_warn{len(verbose)}"}
        (root / "warn.yaml").write_text(yaml.safe_dump(cfg))
        proc = subprocess.run(
            [sys.executable, str(script), *verbose, "run", str(root / "warn.yaml")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert ("invalid value encountered in log" in proc.stderr) is shown


def test_predict_scores_each_target_on_its_own_samples(small) -> None:
    root, _, table = small
    res, _, out = _run(small, "for_predict", table)
    assert res.exit_code == 0, res.output
    t = table.copy()
    t.loc[0, "Cu"] = None  # left out of Cu only
    t.to_csv(root / "predict_pts.csv", index=False)
    cfg = yaml.safe_load((root / "for_predict.yaml").read_text())
    cfg["samples"]["path"] = "predict_pts.csv"
    (root / "predict.yaml").write_text(yaml.safe_dump(cfg))
    (model,) = [p for p in out.iterdir() if p.stem == "model"]
    res = CliRunner().invoke(
        app, ["predict", str(root / "predict.yaml"), "-m", str(model), "-o", str(root / "pr")]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads((root / "pr" / "report.json").read_text())
    used = rep["samples"]["used"]
    assert rep["targets"]["Cu"]["validation"]["n"] == used - 1
    assert rep["targets"]["Pb"]["validation"]["n"] == used
    assert math.isfinite(rep["targets"]["Cu"]["validation"]["rmse"])
    # the flat map of a validation is the saved model's training mean
    train = json.loads((out / "report.json").read_text())["targets"]
    for target in ("Cu", "Pb"):
        v = rep["targets"][target]["validation"]
        assert v["skill"] == pytest.approx(1 - v["rmse"] / v["rmse_null"])
        assert train[target]["train_mean"] > 0
    # a model file naming a model this geohm does not know: one line naming the file
    import zipfile

    odd = root / "odd.geohm"
    with zipfile.ZipFile(model) as src, zipfile.ZipFile(odd, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["model"] = "xgb"
                data = json.dumps(manifest).encode()
            dst.writestr(item, data)
    res = CliRunner().invoke(
        app, ["predict", str(root / "predict.yaml"), "-m", str(odd), "-o", str(root / "pr2")]
    )
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "odd.geohm" in text and "model 'xgb'" in text and "does not know" in text


def test_worker_warnings_go_to_the_scene_log(small, monkeypatch, capfd) -> None:
    """On a batch worker a library warning lands in the scene's geohm.log, not the terminal."""
    import warnings

    import geohm.pipeline
    from geohm.batch import _scene_task
    from geohm.pipeline import load_job

    root, cfg, _ = small
    cfg = json.loads(json.dumps(cfg))
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 10}}
    cfg["output"] = {"uncertainty": False, "dir": "out_worker"}
    (root / "worker.yaml").write_text(yaml.safe_dump(cfg))
    original = geohm.pipeline.run_scene

    def noisy(*args, **kwargs):
        with np.errstate(invalid="warn"):
            np.log(np.array([-1.0]))  # numpy's RuntimeWarning, as a library would raise it
        return original(*args, **kwargs)

    monkeypatch.setattr(geohm.pipeline, "run_scene", noisy)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        status = _scene_task(load_job(root / "worker.yaml"), "worker.yaml", None, 0)
    assert status.status == "done", status.error
    err = capfd.readouterr().err
    assert "invalid value encountered in log" not in err
    log_text = (root / "out_worker" / "geohm.log").read_text()
    assert "invalid value encountered in log" in log_text


def test_iqr_outliers_are_listed_as_left_out(small) -> None:
    _, _, table = small
    t = table.copy()
    t.loc[10, "Cu"] = 5000.0  # far above the upper fence
    res, rep, out = _run(small, "outlier", t, preprocess={"outliers": "iqr"})
    assert res.exit_code == 0, res.output
    s = rep["samples"]
    oid = str(t.loc[10, "id"])
    assert {"id": oid, "target": "Cu", "reason": "outlier (preprocess.outliers: iqr)"} in s[
        "dropped"
    ]
    assert oid in rep["targets"]["Cu"]["outliers_removed"]
    cu = s["per_target"]["Cu"]
    assert cu["outliers"] == len(rep["targets"]["Cu"]["outliers_removed"])
    assert cu["used"] == rep["targets"]["Cu"]["samples"]["n"]
    assert f"| {oid} | Cu | outlier (preprocess.outliers: iqr) |" in (out / "report.md").read_text()
    assert f"{oid} (Cu: outlier" in " ".join(res.output.split())

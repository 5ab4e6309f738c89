"""The patch CNN through a real scene run (issue 17): samples read as patches through the
map's window reader, windows mapped in one pass with a halo, the saved model reloaded by
``geohm predict``; the map at each sample's pixel equals the patch prediction there."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import yaml

from geohm import load_job, make_demo, predict_scene, run_scene
from geohm.io.models import load_model
from geohm.pipeline import build_cube
from geohm.pipeline.inputs import sample_points

pytestmark = pytest.mark.slow
PARAMS = {"patch": 2, "channels": 8, "depth": 1, "ensemble": 2, "max_epochs": 30, "patience": 5}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("patch")
    paths = make_demo(root / "data", seed=0, size=64)
    cfg = yaml.safe_load(paths.scene.read_text())
    cfg["model"] = {"name": "patch-cnn", "params": PARAMS}
    for key in ("source", "zones", "sampling_design", "accumulation"):
        cfg.pop(key, None)
    # windows of 20 px: many samples sit near a window's edge, where the halo matters
    cfg["output"] = {"dir": "out", "quicklooks": False, "tile": 20}
    scene = paths.root / "patch.yaml"
    scene.write_text(yaml.safe_dump(cfg))
    run_scene(load_job(scene, output_dir=root / "out"))
    return root / "out", scene


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, masked=True).filled(np.nan)


def test_the_map_at_each_sample_is_its_patch_prediction(run) -> None:
    out, scene = run
    cfg = load_job(scene, output_dir=out)
    bundle = load_model(out / "model.geohm")
    inputs, cube, _ = build_cube(cfg, list(bundle["cube_features"]))
    table, _ = sample_points(cfg, inputs, cube, patch=PARAMS["patch"])
    assert table.patches is not None and table.patches.shape[1] == len(table.X.columns) * 25
    # the patch centre is the sample's own feature row, bit for bit
    centre = table.patches[[f"{f}@+0,+0" for f in table.X.columns]].to_numpy()
    np.testing.assert_array_equal(centre, table.X.to_numpy(dtype="float32"))
    with rasterio.open(out / "Cu_concentration.tif") as src:
        rows, cols = rasterio.transform.rowcol(src.transform, table.xy[:, 0], table.xy[:, 1])
    for metal in ("Cu", "Pb"):
        est = bundle["targets"][metal]["estimator"]
        expected = np.maximum(est.predict(table.patches), 0.0)  # concentrations clip at 0
        got = _read(out / f"{metal}_concentration.tif")[rows, cols]
        np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-4)


def test_the_report_and_a_saved_model_reused(run, tmp_path: Path) -> None:
    out, scene = run
    report = json.loads((out / "report.json").read_text())
    for metal in ("Cu", "Pb"):
        rep = report["targets"][metal]
        assert rep["features"][:3] == ["blue", "green", "red"]  # channels, not patch pixels
        assert any("neighbourhood patches" in s for s in rep["skipped"])
        gaps = rep["patch_gaps"]  # filled patch cells are named by sample, none silent
        assert gaps["cells"] == rep["n_train"] * 19 * 25
        assert gaps["cells_filled"] == sum(gaps["samples"].values())
        assert rep["cv"]["rmse"] > 0 and "skill" in rep["cv"]
        assert (out / f"{metal}_uncertainty.tif").exists()
    again = tmp_path / "again"
    predict_scene(load_job(scene, output_dir=again), out / "model.geohm")
    for metal in ("Cu", "Pb"):
        a, b = (
            _read(out / f"{metal}_concentration.tif"),
            _read(again / f"{metal}_concentration.tif"),
        )
        np.testing.assert_array_equal(a, b)


def test_auto_scores_the_patch_cnn_but_never_stacks_it(tmp_path: Path) -> None:
    paths = make_demo(tmp_path / "data", seed=1, size=64)
    cfg = yaml.safe_load(paths.scene.read_text())
    cands = ["rf", "ok", {"patch-cnn": PARAMS}]  # ok: fast, a second stack member
    cfg["model"] = {"name": "auto", "params": {"candidates": cands, "stack": True}}
    cfg["samples"]["targets"] = ["Cu"]
    for key in ("source", "zones", "sampling_design", "accumulation", "risk"):
        cfg.pop(key, None)
    cfg["output"] = {"dir": "out", "quicklooks": False}
    scene = paths.root / "auto.yaml"
    scene.write_text(yaml.safe_dump(cfg))
    run_scene(load_job(scene, output_dir=tmp_path / "out"))
    auto = json.loads((tmp_path / "out" / "report.json").read_text())["targets"]["Cu"]["auto"]
    rows = {r["candidate"]: r for r in auto["ranking"]}
    n_train = json.loads((tmp_path / "out" / "report.json").read_text())["targets"]["Cu"]["n_train"]
    assert n_train >= 30  # this demo (seed 1, 64 px) trains on 32 samples
    assert rows["patch-cnn"]["status"] == "scored"
    assert rows["patch-cnn"]["inputs"][0] == "blue@-2,-2"
    assert rows["rf"]["status"] == rows["ok"]["status"] == "scored"
    # the stack is made of row models only: rf and ok
    if auto["chosen"] == "stack":
        assert set(auto["weights"]) <= {"rf", "ok"}


def test_a_stack_needs_two_stackable_candidates() -> None:
    """One row model and one patch model: no stack is scored (the patch model may not be
    a member, and a stack of one is none)."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from geohm.autoselect import Proposal, select_model

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    y = X["a"].to_numpy() + 0.5 * X["b"].to_numpy()
    splits = [
        (np.flatnonzero(np.arange(60) % 4 != k), np.flatnonzero(np.arange(60) % 4 == k))
        for k in range(4)
    ]
    row = Proposal("row", "on a", "residuals", lambda: (LinearRegression(), ["a"]))
    patch = Proposal(
        "patch", "on a, b", "residuals", lambda: (LinearRegression(), ["a", "b"]), stackable=False
    )
    found = select_model([row, patch], X, y, splits, max_minutes=5.0, stack=True)
    names = [r["candidate"] for r in found.ranking]
    assert names == ["patch", "row"] and found.chosen == "patch" and not found.stacked
    # the same two as row models: the stack is scored
    both = Proposal("patch", "on a, b", "residuals", lambda: (LinearRegression(), ["a", "b"]))
    found = select_model([row, both], X, y, splits, max_minutes=5.0, stack=True)
    assert "stack" in [r["candidate"] for r in found.ranking]


def test_too_few_samples_leave_the_patch_cnn_out_of_auto() -> None:
    import pandas as pd

    from geohm.config import FitSpec
    from geohm.models.registry import CANDIDATES
    from geohm.sampling import SampleTable
    from geohm.training import _proposal

    X = pd.DataFrame({"a": np.arange(20.0)})
    table = SampleTable(X=X, y=pd.DataFrame({"Cu": np.arange(20.0)}), xy=np.zeros((20, 2)))
    spec = FitSpec.model_validate({"model": {"name": "auto"}})
    p = _proposal(spec, CANDIDATES["patch-cnn"], {}, table, None, "Cu", 20)
    assert p.build is None and p.reason == "needs at least 30 training samples, 20 here"
    assert not p.stackable
    p = _proposal(spec, CANDIDATES["patch-cnn"], {}, table, None, "Cu", 40)
    assert p.reason == "the samples were read without their neighbourhood patches"


def test_filled_patch_cells_are_named_by_sample() -> None:
    import pandas as pd

    from geohm.fitting.model import _patch_gaps

    X = pd.DataFrame([[1.0, np.nan, np.nan], [1.0, 2.0, 3.0], [np.nan, 2.0, 3.0]])
    got = _patch_gaps(X, ["s1", "s2", "s3"])
    assert got["cells_filled"] == 3 and got["cells"] == 9
    assert got["samples"] == {"s1": 2, "s3": 1}

"""The compiled forest (geohm.models.compiled): same predictions as scikit-learn, faster.

Every check compares against scikit-learn's own single-threaded ``predict`` on really
fitted forests: geohm's pipelines (scaling, imputation, factor screening, log target)
and bare forests, shallow trees (bit-vector kernel) and deep ones (tree walk). The
kernel is a build product (the C extension ``geohm.models._forest_kernel``): nothing is
compiled at run time, ``geohm run``/``geohm predict`` need no compiler, and without the
extension the maps are the same.
"""

from __future__ import annotations

import doctest
import logging
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import yaml
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression

from geohm.cube import stack_features
from geohm.io.models import load_model, save_model
from geohm.models import compiled, ensemble, forest_tables, kernel
from geohm.models.compiled import CompiledForest, accelerate
from geohm.predict import TargetModel, _single_threaded_models, predict_map
from geohm.preprocess import build_pipeline
from geohm.selection import CorrelationVIFSelector

pytestmark = pytest.mark.skipif(
    not compiled.kernel_available(),
    reason="the forest kernel was not built (geohm installed without a C compiler)",
)

FEATURES = [f"f{i:02d}" for i in range(20)]


def _samples(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A soil-sample-like table: 20 factors (different units), a skewed metal."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, len(FEATURES))) * np.linspace(0.05, 300, len(FEATURES))
    X[:, 0] = X[:, 1] * 0.8 + rng.standard_normal(n) * 5  # correlated pair for VIF
    y = np.exp(3.5 + 0.01 * X[:, 5] + 0.004 * X[:, 12] - 0.002 * X[:, 19] ** 2 / 300)
    y *= np.exp(0.2 * rng.standard_normal(n))
    return pd.DataFrame(X, columns=FEATURES), y


def _pixels(n: int, seed: int = 1) -> np.ndarray:
    """A float32 pixel table in the factors' ranges, as the tile predictor passes it."""
    X, _ = _samples(n, seed)
    return X.to_numpy(np.float32, copy=True)


def _pipeline(n_train: int, *, log: bool, select: bool, forest=None):
    X, y = _samples(n_train)
    rf = forest or RandomForestRegressor(n_estimators=100, n_jobs=2, random_state=0)
    selector = CorrelationVIFSelector(max_p=0.2, max_vif=10, force=("f19",)) if select else None
    return build_pipeline(rf, selector=selector, log=log).fit(X, y)


def _reference(est, X: np.ndarray) -> np.ndarray:
    """scikit-learn's single-threaded prediction (its threads add trees in any order)."""
    final = est.steps[-1][1]
    forest = getattr(final, "regressor_", final)  # inside the log-target wrapper
    jobs = forest.n_jobs
    try:
        forest.set_params(n_jobs=1)
        return est.predict(X)
    finally:
        forest.set_params(n_jobs=jobs)


@pytest.mark.parametrize(
    ("n_train", "log", "select"),
    [(43, False, False), (43, True, True), (100, False, True), (80, True, False)],
)
def test_pipelines_predict_as_sklearn(n_train: int, log: bool, select: bool) -> None:
    plain = _pipeline(n_train, log=log, select=select)
    fast = accelerate(plain)
    assert fast is not plain
    final = fast.steps[-1][1]
    assert isinstance(final.regressor_ if log else final, CompiledForest)
    X = _pixels(20_000)
    ref = _reference(plain, X)
    got = fast.predict(X)
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # Stronger than float32 rounding: same float32 decisions, trees summed in order.
    np.testing.assert_array_equal(got, ref)
    # The original is untouched and still predicts with scikit-learn.
    assert isinstance(plain.steps[-1][1], RandomForestRegressor) or log
    # A DataFrame (as predict_scene scores samples) goes through the same steps.
    frame = pd.DataFrame(X[:50], columns=FEATURES)
    np.testing.assert_array_equal(fast.predict(frame), ref[:50])


def test_kernels_bit_vector_and_tree_walk_and_missing_values() -> None:
    X, y = _samples(300)
    Xp = _pixels(5_000)
    Xp[::7, 3] = np.nan  # NaN follows each split's missing_go_to_left, as in scikit-learn
    for forest, words in [
        (RandomForestRegressor(50, max_leaf_nodes=40, random_state=0), 1),
        (RandomForestRegressor(50, max_leaf_nodes=120, random_state=0), 2),
        (RandomForestRegressor(50, random_state=0), 0),  # ~190 leaves: tree walk
        (ExtraTreesRegressor(50, min_samples_leaf=5, random_state=0), 1),
    ]:
        forest.fit(X.to_numpy(), y)
        fast = CompiledForest(forest)._load(forest)
        assert fast.bit_vector == (words > 0)
        if words:
            assert fast._qs["n_words"] == words
            assert isinstance(accelerate(forest), CompiledForest)
        else:  # a compiled walk is no faster than scikit-learn's: left as it is
            assert accelerate(forest) is forest
        np.testing.assert_array_equal(fast.predict(Xp), forest.predict(Xp))
        assert len(fast.estimators_) == 50  # the trees stay reachable (exceedance)


def test_forest_fitted_with_missing_values() -> None:
    X, y = _samples(120)
    Xn = X.to_numpy().copy()
    Xn[::4, 5] = np.nan
    forest = RandomForestRegressor(30, random_state=0).fit(Xn, y)
    Xp = _pixels(3_000)
    Xp[::3, 5] = np.nan
    np.testing.assert_array_equal(accelerate(forest).predict(Xp), forest.predict(Xp))


def test_other_estimators_are_returned_unchanged() -> None:
    X, y = _samples(40)
    lin = build_pipeline(LinearRegression()).fit(X, y)
    assert accelerate(lin) is lin
    unfitted = RandomForestRegressor()
    assert accelerate(unfitted) is unfitted
    multi = RandomForestRegressor(5, random_state=0).fit(X, np.column_stack([y, y]))
    assert accelerate(multi) is multi
    fast = accelerate(_pipeline(43, log=False, select=False))
    assert accelerate(fast).steps[-1][1] is fast.steps[-1][1]
    # Fitted as an estimator of its own: fits a clone of the forest, then compiles it.
    own = CompiledForest(RandomForestRegressor(20, random_state=0)).fit(X.to_numpy(), y)
    ref = RandomForestRegressor(20, random_state=0).fit(X.to_numpy(), y)
    Xp = _pixels(500)
    np.testing.assert_array_equal(own.predict(Xp), ref.predict(Xp))


@pytest.fixture
def no_kernel(monkeypatch):
    """This process as if geohm had been installed without a C compiler (no extension)."""
    monkeypatch.setattr(kernel, "_EXT", None)
    monkeypatch.setattr(kernel, "_MISSING", "ImportError: no module named _forest_kernel")
    monkeypatch.setattr(kernel, "_WARNED", threading.Event())


def test_fallback_without_the_kernel(no_kernel, caplog) -> None:
    plain = _pipeline(43, log=True, select=False)
    forest = plain.steps[-1][1].regressor_
    built = CompiledForest(forest, n_jobs=1)._load(forest)  # tables without a kernel
    X = _pixels(3_000)
    X[::9, 4] = np.nan
    with caplog.at_level(logging.WARNING, logger="geohm"):
        assert accelerate(plain) is plain  # scikit-learn's predict, unchanged
        Xt = np.asarray(plain[:-1].transform(X), dtype=np.float32)
        ref = forest.set_params(n_jobs=1).predict(Xt)
        np.testing.assert_array_equal(built.predict(Xt), ref)
        ids, mean = built.apply_mean(Xt, global_ids=True)
        np.testing.assert_array_equal(mean, ref)
        trees = np.column_stack([t.apply(Xt) for t in forest.estimators_])
        np.testing.assert_array_equal(ids, trees + _offsets(forest))
        assert kernel.tree_votes(ids, np.zeros(ids.max() + 1), np.zeros(len(ids))).max() == 0
    warned = [r for r in caplog.records if "forest kernel is not built" in r.getMessage()]
    assert len(warned) == 1  # once per process
    assert "ImportError" in warned[0].getMessage()
    with pytest.raises(RuntimeError, match="not built"):
        kernel.qrf_quantiles([[0]], [0, 1], [0], [1.0], [1.0], [0.5])


def test_pickle_round_trip_and_model_files_hold_plain_estimators(tmp_path) -> None:
    plain = _pipeline(43, log=True, select=True)
    fast = accelerate(plain)
    X = _pixels(2_000)
    expected = fast.predict(X)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fast)).predict(X), expected)
    # A compiled forest never enters a model file: it is refused when writing ...
    bundle = {"cube_features": FEATURES, "targets": {"Cu": {"estimator": fast, "features": []}}}
    with pytest.raises(ValueError, match="CompiledForest"):
        save_model(tmp_path / "fast.geohm", bundle)
    assert not (tmp_path / "fast.geohm").exists()
    # ... the plain estimator is saved, and accelerated again after loading.
    bundle["targets"]["Cu"]["estimator"] = plain
    loaded = load_model(save_model(tmp_path / "model.geohm", bundle))["targets"]["Cu"]
    assert isinstance(loaded["estimator"].steps[-1][1].regressor_, RandomForestRegressor)
    np.testing.assert_array_equal(accelerate(loaded["estimator"]).predict(X), expected)


def test_unpickling_checks_every_tree() -> None:
    X, y = _samples(60)
    forest = RandomForestRegressor(10, random_state=0).fit(X.to_numpy(), y)
    fast = CompiledForest(forest)._load(forest)
    tree = forest.estimators_[2].tree_
    state = tree.__getstate__()
    bad = state["nodes"].copy()
    bad["left_child"][0] = 10**9  # the kernel would read far outside its tables
    tree.__setstate__({**state, "nodes": bad})
    try:
        data = pickle.dumps(fast)
    finally:
        tree.__setstate__(state)
    with pytest.raises(ValueError, match="child id"):
        pickle.loads(data)


def test_docstring_examples() -> None:
    for module in (compiled, kernel, forest_tables, ensemble):
        res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0 and res.attempted > 0, module.__name__


def test_threads_bounded_and_results_independent_of_them() -> None:
    fast = accelerate(_pipeline(43, log=True, select=False))
    X = _pixels(100_000)
    params = fast.get_params(deep=True)
    keys = [k for k in params if k.endswith("n_jobs")]
    assert "model__regressor__n_jobs" in keys and params["model__regressor__n_jobs"] == 2
    one = fast.set_params(model__regressor__n_jobs=1).predict(X)
    two = fast.set_params(model__regressor__n_jobs=2).predict(X)
    np.testing.assert_array_equal(one, two)
    # predict_map's switch reaches the compiled forest and restores it afterwards.
    with _single_threaded_models({"Cu": TargetModel(fast, FEATURES)}):
        assert fast.steps[-1][1].regressor_.n_jobs == 1
    assert fast.steps[-1][1].regressor_.n_jobs == 2
    assert (
        accelerate(_pipeline(43, log=False, select=False), n_jobs=1).get_params()["model__n_jobs"]
        == 1
    )


def test_two_threads_predicting_at_once() -> None:
    fast = accelerate(_pipeline(60, log=False, select=True), n_jobs=1)
    tables = [_pixels(20_000, seed=s) for s in (1, 2)]
    expected = [fast.predict(t) for t in tables]
    results: dict[int, list[np.ndarray]] = {0: [], 1: []}
    start = threading.Barrier(2)

    def work(i: int) -> None:
        start.wait()
        for _ in range(3):
            results[i].append(fast.predict(tables[i]))

    threads = [threading.Thread(target=work, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in (0, 1):
        assert len(results[i]) == 3
        for got in results[i]:
            np.testing.assert_array_equal(got, expected[i])


def test_predict_map_gives_the_same_map(tiny_reflectance, tiny_dem) -> None:
    feats = ["blue", "green", "red", "nir", "swir1", "NDVI", "elevation", "slope", "aspect"]
    cube = stack_features(tiny_reflectance.chunk({"x": 16, "y": 16}), feats, dem=tiny_dem)
    values = cube.values.reshape(len(feats), -1).T
    ok = np.isfinite(values).all(axis=1)
    rng = np.random.default_rng(3)
    rows = rng.choice(np.flatnonzero(ok), 45, replace=False)
    X = pd.DataFrame(values[rows], columns=feats)
    y = 40 + 300 * X["red"] + 0.5 * X["slope"] + 5 * rng.standard_normal(45)
    pipe = build_pipeline(
        RandomForestRegressor(100, n_jobs=2, random_state=0),
        selector=CorrelationVIFSelector(max_p=0.5, force=("elevation",)),
        log=True,
    ).fit(X, y)

    class Sink:
        def __init__(self) -> None:
            self.arr = np.full(cube.shape[1:], -1.0)

        def write(self, r: int, c: int, data: np.ndarray) -> None:
            self.arr[r : r + data.shape[0], c : c + data.shape[1]] = data

    maps = []
    for est in (pipe, accelerate(pipe)):
        sinks = {"Cu": Sink()}
        stats = predict_map(cube, {"Cu": TargetModel(est, feats)}, sinks, tile=8, workers=2)
        maps.append((sinks["Cu"].arr, stats["Cu"].as_dict()))
    (plain, s_plain), (fast, s_fast) = maps
    assert np.isnan(plain).sum() == 2 and np.isnan(fast).sum() == 2
    np.testing.assert_allclose(fast, plain, rtol=1e-5, equal_nan=True)
    assert s_fast["pixels"] == s_plain["pixels"]
    assert s_fast["mean"] == pytest.approx(s_plain["mean"], rel=1e-6)


# ------------------------------------------------------------ leaves and quantiles


def _at_thresholds(forest, n: int, seed: int) -> np.ndarray:
    """float32 rows whose values often sit exactly on a split threshold (or next to it)."""
    rng = np.random.default_rng(seed)
    X = _pixels(n, seed)
    thresholds: dict[int, list[float]] = {}
    for tree in forest.estimators_:
        s = tree.tree_
        for f, t in zip(s.feature[s.feature >= 0], s.threshold[s.feature >= 0], strict=True):
            thresholds.setdefault(int(f), []).append(float(t))
    for f, ts in thresholds.items():
        t32 = np.asarray(ts).astype(np.float32)
        rows = rng.random(n) < 0.5
        picked = rng.choice(t32, rows.sum())
        # the threshold rounded to float32, and its float32 neighbours on both sides
        shift = rng.integers(-1, 2, rows.sum())
        picked = np.where(shift < 0, np.nextafter(picked, np.float32(-np.inf)), picked)
        picked = np.where(shift > 0, np.nextafter(picked, np.float32(np.inf)), picked)
        X[rows, f] = picked
    return X


def _offsets(forest) -> np.ndarray:
    counts = [t.tree_.node_count for t in forest.estimators_]
    return np.concatenate([[0], np.cumsum(counts)[:-1]])


@pytest.mark.parametrize(
    ("forest", "words"),
    [
        (RandomForestRegressor(40, max_leaf_nodes=40, random_state=0), 1),
        (RandomForestRegressor(40, max_leaf_nodes=120, random_state=0), 2),
        (ExtraTreesRegressor(40, min_samples_leaf=3, random_state=0), 2),
        (RandomForestRegressor(40, random_state=0), 0),  # too large: tree walk
    ],
)
def test_apply_mean_is_tree_apply_and_predict(forest, words: int) -> None:
    X, y = _samples(300)
    forest.fit(X.to_numpy(), y)
    fast = CompiledForest(forest, n_jobs=1)._load(forest)
    assert fast.bit_vector == (words > 0)
    Xp = _at_thresholds(forest, 4_000, seed=5)
    Xp[::11, 7] = np.nan  # missing values: those rows are walked
    ids, mean = fast.apply_mean(Xp)
    assert ids.dtype == np.int32 and ids.shape == (4_000, 40)
    ref = np.column_stack([tree.apply(Xp) for tree in forest.estimators_])
    np.testing.assert_array_equal(ids, ref)
    np.testing.assert_array_equal(mean, forest.set_params(n_jobs=1).predict(Xp))
    np.testing.assert_array_equal(mean, fast.predict(Xp))
    glob, mean2 = fast.apply_mean(Xp, global_ids=True)
    np.testing.assert_array_equal(glob, ref + _offsets(forest))
    np.testing.assert_array_equal(mean2, mean)
    empty_ids, empty_mean = fast.apply_mean(Xp[:0])
    assert empty_ids.shape == (0, 40) and empty_mean.shape == (0,)
    with pytest.raises(ValueError, match="features"):
        fast.apply_mean(Xp[:, :5])


def test_apply_mean_threads_and_pickled_tables() -> None:
    forest = RandomForestRegressor(60, n_jobs=2, random_state=0)
    X, y = _samples(43)
    forest.fit(X.to_numpy(), y)
    fast = accelerate(forest)
    assert isinstance(fast, CompiledForest) and fast.n_jobs == 2
    Xp = _at_thresholds(forest, 2 * kernel.MIN_ROWS_PER_THREAD + 10, seed=2)
    two = fast.apply_mean(Xp, global_ids=True)
    one = fast.set_params(n_jobs=1).apply_mean(Xp, global_ids=True)
    np.testing.assert_array_equal(two[0], one[0])
    np.testing.assert_array_equal(two[1], one[1])
    np.testing.assert_array_equal(one[1], forest.set_params(n_jobs=1).predict(Xp))
    # The tables are not pickled: an unpickled forest rebuilds them from its trees.
    again = pickle.loads(pickle.dumps(fast))
    np.testing.assert_array_equal(again.apply_mean(Xp[:500], global_ids=True)[0], one[0][:500])


def test_qrf_quantiles_by_hand_and_checks() -> None:
    # Node 0: ranks 0..4 (y = 0..4) at 1/5 each. Node 1: ranks 3, 4 at 1/2 each.
    indptr, indices, weights = [0, 5, 7], [0, 1, 2, 3, 4, 3, 4], [0.2] * 5 + [0.5] * 2
    y_sorted = np.arange(5.0)
    got = kernel.qrf_quantiles([[0], [1]], indptr, indices, weights, y_sorted, [0.0, 0.4, 1.0])
    np.testing.assert_array_equal(got, [[0.0, 3.0], [1.0, 3.0], [4.0, 4.0]])
    # two trees: weights of a rank add up (0.1 + 0.25 for ranks 3 and 4)
    half = [0.1] * 5 + [0.25] * 2
    got = kernel.qrf_quantiles([[0, 1]], indptr, indices, half, y_sorted, [0.3, 0.5, 0.66])
    np.testing.assert_array_equal(got[:, 0], [2.0, 3.0, 4.0])
    many = np.zeros((10, 2), dtype=np.int32)
    assert kernel.qrf_quantiles(many, indptr, indices, half, y_sorted, []).shape == (0, 10)
    # threads split the rows: the same bounds
    rows = np.random.default_rng(0).integers(0, 2, (2 * kernel.MIN_ROWS_PER_THREAD + 1, 2))
    one = kernel.qrf_quantiles(rows, indptr, indices, half, y_sorted, [0.1, 0.9])
    two = kernel.qrf_quantiles(rows, indptr, indices, half, y_sorted, [0.1, 0.9], n_jobs=2)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one[0], np.where((rows == 1).all(axis=1), 3.0, 0.0))
    np.testing.assert_array_equal(one[1], 4.0)
    with pytest.raises(ValueError, match="leaf id"):
        kernel.qrf_quantiles([[2]], indptr, indices, weights, y_sorted, [0.5])
    with pytest.raises(ValueError, match="column index"):
        kernel.qrf_quantiles([[0]], [0, 1], [5], [1.0], y_sorted, [0.5])
    with pytest.raises(ValueError, match="> 0"):
        kernel.qrf_quantiles([[0]], [0, 1], [0], [0.0], y_sorted, [0.5])
    with pytest.raises(ValueError, match="CSR"):
        kernel.qrf_quantiles([[0]], [0, 2], [0], [1.0], y_sorted, [0.5])


@pytest.mark.parametrize(
    ("n_train", "n_trees", "leaf"), [(12, 3, 4), (12, 5, 9), (2_000, 3, 3), (2_000, 40, 3)]
)
def test_qrf_quantiles_equal_a_row_by_row_reference(n_train: int, n_trees: int, leaf: int) -> None:
    # Small n_train: the buffer is scanned (weights added through the leaf slots; leaves
    # of up to 9 ranks overflow the 4 slots); large: the touched ranks are sorted (a few:
    # insertion sort, many: qsort). Random leaves of 1..leaf ranks, random weights.
    rng = np.random.default_rng(n_train + n_trees)
    n_nodes = 50
    sizes = rng.integers(1, leaf + 1, n_nodes)
    indptr = np.concatenate([[0], np.cumsum(sizes)])
    indices = np.concatenate([np.sort(rng.choice(n_train, k, replace=False)) for k in sizes])
    weights = rng.uniform(0.01, 1.0, indices.size)
    y_sorted = np.sort(rng.normal(size=n_train).round(1))  # ties, as measured targets have
    ids = rng.integers(0, n_nodes, (3_000, n_trees)).astype(np.int32)
    levels = [0.0, 0.05, 0.5, 0.95, 1.0]
    got = kernel.qrf_quantiles(ids, indptr, indices, weights, y_sorted, levels, n_jobs=2)
    dense = np.zeros((ids.shape[0], n_train))
    for t in range(n_trees):  # weights of a rank added in tree order
        for r, node in enumerate(ids[:, t]):
            a, b = indptr[node], indptr[node + 1]
            dense[r, indices[a:b]] += weights[a:b]
    cum = np.cumsum(dense, axis=1)
    for k, q in enumerate(levels):
        reach = (cum >= q * cum[:, -1:] - 1e-9) & (dense > 0)
        np.testing.assert_array_equal(got[k], y_sorted[reach.argmax(axis=1)])


# ---------------------------------------------------- no compiler, no extension

#: ``geohm`` with the extension unimportable, as in an installation built without a C
#: compiler (a ``None`` entry in ``sys.modules`` makes its import fail).
_WITHOUT_KERNEL = (
    "import sys; sys.modules['geohm.models._forest_kernel'] = None; "
    "from geohm.cli import main; main()"
)


def _geohm(args: list[str], *, path: Path, without_kernel: bool = False):
    """``geohm ARGS`` in a fresh process whose PATH is ``path`` (and no ``$CC``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "CFLAGS")}
    env["PATH"] = str(path)
    head = ["-c", _WITHOUT_KERNEL] if without_kernel else ["-m", "geohm.cli"]
    return subprocess.run(
        [sys.executable, *head, *args], env=env, capture_output=True, text=True, timeout=600
    )


def _maps(folder: Path) -> dict[str, np.ndarray]:
    out = {}
    for tif in sorted(folder.glob("*.tif")):
        with rasterio.open(tif) as src:
            out[tif.stem] = src.read()
    return out


@pytest.mark.slow
def test_run_and_predict_need_no_compiler_and_give_the_same_maps(tmp_path: Path) -> None:
    from geohm import load_job, make_demo, run_scene

    data = tmp_path / "data"
    make_demo(data, seed=0, size=64)
    cfg = yaml.safe_load((data / "scene.yaml").read_text())
    cfg["model"] = {"name": "rf", "params": {"n_estimators": 40}}  # the demo's is auto
    cfg["validation"]["cv_folds"] = 3
    cfg["output"] = {"dir": "out", "quicklooks": False}
    scene = data / "small.yaml"
    scene.write_text(yaml.safe_dump(cfg))
    run_scene(load_job(scene, output_dir=tmp_path / "ref"))  # this process, with the kernel
    ref = _maps(tmp_path / "ref")
    assert {"Cu_concentration", "Cu_uncertainty", "Cu_exceedance", "nemerow"} <= set(ref)

    empty = tmp_path / "bin"  # a PATH without any program, so without cc/gcc
    empty.mkdir()
    assert all(shutil.which(cc, path=str(empty)) is None for cc in ("cc", "gcc", "clang"))
    res = _geohm(["run", str(scene), "--out", str(tmp_path / "run")], path=empty)
    assert res.returncode == 0, res.stderr
    got = _maps(tmp_path / "run")
    assert set(got) == set(ref)
    for name, arr in ref.items():
        assert got[name].tobytes() == arr.tobytes(), name

    # The saved model, with neither a compiler nor the extension: scikit-learn's
    # trees and scipy's quantiles give the same maps, and one warning says why.
    pred = tmp_path / "pred"
    args = ["predict", str(scene), "--model", str(tmp_path / "ref" / "model.geohm")]
    res = _geohm([*args, "--out", str(pred)], path=empty, without_kernel=True)
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert res.stderr.count("compiled forest kernel is not built") == 1, res.stderr
    got = _maps(pred)
    assert {"Cu_concentration", "Pb_uncertainty", "Pb_exceedance", "nemerow"} <= set(got)
    for name, arr in got.items():
        assert arr.tobytes() == ref[name].tobytes(), name

"""model.geohm (geohm.io.models): every model family round-trips; nothing in a file runs code.

Real fits on small synthetic tables, real files in tmp_path, the real CLI for the exit code.
The hostile files are real: a pickle whose ``__reduce__`` writes a marker file (shown to
work when unpickled), skops members rewritten to call ``os.system`` / ``builtins.eval``
(shown to work when skops is told to trust them), and trusted structures with indices that
compiled code would follow out of bounds.
"""

from __future__ import annotations

import io
import json
import logging
import pickle
import threading
import zipfile
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from typer.testing import CliRunner

from geohm.cli import app
from geohm.config import parse_config
from geohm.errors import InputError
from geohm.io.models import FORMAT, FORMAT_VERSION, MODEL_FILE, load_model, save_model
from geohm.models import kernel
from geohm.models.compiled import CompiledForest, accelerate
from geohm.sampling import SampleTable
from geohm.training import fit_target

FAST_GABP = {"population": 10, "generations": 5, "lm_iterations": 15}


def _table(n: int, seed: int, shift: float = 0.0) -> SampleTable:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (n, 2))
    X = pd.DataFrame(
        {
            "NDVI": rng.uniform(0, 0.8, n),
            "CMR": rng.uniform(1, 2, n),
            "aspect": rng.uniform(0, 360, n),
            "elevation": rng.uniform(900, 2000, n),
            "x": xy[:, 0],
            "y": xy[:, 1],
        },
        index=pd.Index([f"S{i:02d}" for i in range(n)], name="id"),
    )
    cu = (
        20
        + 60 * (0.8 - X["NDVI"]) ** 2
        + 25 * (X["CMR"] - 1)
        + 0.02 * X["x"]
        + shift
        + rng.normal(0, 2, n)
    )
    return SampleTable(X=X, y=pd.DataFrame({"Cu": cu}), xy=xy)


def _cfg(name: str, params: dict[str, Any], **extra: Any) -> Any:
    return parse_config(
        {
            "name": "t",
            "landsat": "x",
            "samples": {"path": "s.gpkg", "targets": ["Cu"]},
            "source": {"landsat": "y", "samples": {"path": "s0.gpkg", "targets": ["Cu"]}},
            "selection": {"method": "correlation_vif", "force": ["aspect", "elevation"]},
            "model": {"name": name, "params": params},
            "validation": {"test_fraction": 0.25, "cv_folds": 4, "seed": 0},
            **extra,
        }
    ).fit_spec()


def _bundle(estimator: Any, features: list[str], interval: Any = None) -> dict[str, Any]:
    return {
        "geohm_version": "test",
        "scene": "t",
        "model": "m",
        "cube_features": features,
        "targets": {"Cu": {"estimator": estimator, "features": features, "interval": interval}},
    }


# (model name, params, extra config) of every regression family geohm saves
FAMILIES: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "rf": ("rf", {"n_estimators": 20, "n_jobs": 1}, {}),
    "rf-log": ("rf", {"n_estimators": 20, "n_jobs": 1}, {"preprocess": {"log_target": True}}),
    "ga-bp": ("ga-bp", FAST_GABP, {}),
    "tr-ga-bp": ("tr-ga-bp", {"source_params": FAST_GABP, "retrain_epochs": 20}, {}),
    "ok": ("ok", {}, {}),
    "rk": ("rk", {"base_params": {"n_estimators": 10, "n_jobs": 1}}, {}),
    "gbm": ("gbm", {"max_iter": 40}, {}),
    "gbm-log": ("gbm", {"max_iter": 40}, {"preprocess": {"log_target": True}}),
    "rk-gbm": ("rk", {"base": "gbm", "base_params": {"max_iter": 30}}, {}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_every_model_family_round_trips_with_identical_predictions(tmp_path, family) -> None:
    name, params, extra = FAMILIES[family]
    table = _table(44, 0)
    source = _table(44, 2, shift=10.0) if name == "tr-ga-bp" else None
    fit = fit_target(_cfg(name, params, **extra), table, "Cu", source=source)
    assert fit.interval is not None  # every map has an uncertainty layer
    estimator = accelerate(fit.estimator)  # the compiled forest too, where there is one
    if name == "rf":
        final = getattr(estimator[-1], "regressor_", estimator[-1])  # log target: inside
        assert isinstance(final, CompiledForest)
    # The file holds the fitted estimator; the compiled forest is built after loading.
    path = save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features, fit.interval))
    loaded = load_model(path)["targets"]["Cu"]
    X = table.X[fit.features]
    assert type(loaded["estimator"][-1]) is type(fit.estimator[-1])
    np.testing.assert_array_equal(accelerate(loaded["estimator"]).predict(X), estimator.predict(X))
    lo, hi = fit.interval.interval(X)
    lo2, hi2 = loaded["interval"].interval(X)
    np.testing.assert_array_equal(lo2, lo)
    np.testing.assert_array_equal(hi2, hi)
    assert loaded["features"] == fit.features


def _gbm_models(root: Any) -> list[Any]:
    """Every fitted HistGradientBoostingRegressor under ``root`` (pipelines, log target,
    rk base)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    found, stack, seen = [], [root], set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | np.ndarray | type):
            continue
        seen.add(id(obj))
        if isinstance(obj, HistGradientBoostingRegressor) and hasattr(obj, "_predictors"):
            found.append(obj)
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(getattr(obj, "__dict__", None), dict):
            stack.extend(vars(obj).values())
    return found


@pytest.mark.parametrize("family", ["gbm", "gbm-log", "rk-gbm"])
def test_gbm_is_saved_without_its_fit_only_random_generator(tmp_path, family) -> None:
    """The gradient boosting's feature-draw Generator (fit-only state) is not in the file,
    so numpy's Generator and bit generators need no trust; the fitted model keeps it and
    the loaded one predicts the same (the round trip above)."""
    name, params, extra = FAMILIES[family]
    fit = fit_target(_cfg(name, params, **extra), _table(44, 0), "Cu")
    models = _gbm_models(fit.estimator) + _gbm_models(fit.interval)
    assert models and all(hasattr(m, "_feature_subsample_rng") for m in models)
    path = save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features, fit.interval))
    assert all(hasattr(m, "_feature_subsample_rng") for m in models)  # put back after saving
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(zf.open("model.skops")) as inner:
        schema = inner.read("schema.json").decode()
    assert "HistGradientBoostingRegressor" in schema
    assert "Generator" not in schema and "_feature_subsample_rng" not in schema
    loaded = load_model(path)["targets"]["Cu"]
    again = _gbm_models(loaded["estimator"]) + _gbm_models(loaded["interval"])
    assert len(again) == len(models)
    assert not any(hasattr(m, "_feature_subsample_rng") for m in again)


def test_gbm_early_stopping_on_a_score_saves_and_is_refused_in_one_line(tmp_path) -> None:
    """Early stopping on a ``scoring`` leaves a bound ``_raw_predict`` in the estimator's
    ``__dict__`` (skops recursed on it: a traceback at the end of geohm run); it is left
    out of the file and put back, and the scorer's function, which geohm does not load,
    is refused when the file is read."""
    from geohm.models.gbm import gbm_regressor

    table = _table(60, 3)
    gbm = gbm_regressor({"max_iter": 20, "early_stopping": True, "scoring": "r2"})
    gbm.fit(table.X, table.y["Cu"])
    assert "_raw_predict" in vars(gbm)
    path = save_model(tmp_path / MODEL_FILE, _bundle(gbm, list(table.X.columns)))
    assert "_raw_predict" in vars(gbm)
    with pytest.raises(InputError) as err:
        load_model(path)
    msg = str(err.value)
    assert "does not load (sklearn.metrics._regression.r2_score)" in msg
    assert str(path) in msg and "\n" not in msg


def _classifier(name: str) -> tuple[Any, SampleTable]:
    """What geohm run saves for a classification scene: the tuned classifier's P(class 1)."""
    from geohm.models.classify import make_classifier
    from geohm.pipeline import _Probability

    table = _table(60, 1)
    y = (table.y["Cu"] > table.y["Cu"].median()).astype(int).to_numpy()
    return _Probability(make_classifier(name, random_state=0, cv=3).fit(table.X, y)), table


@pytest.mark.parametrize("name", ["rf", "svm", "knn-classifier"])
def test_classifier_round_trips(tmp_path, name) -> None:
    clf, table = _classifier(name)
    path = save_model(tmp_path / MODEL_FILE, _bundle(clf, list(table.X.columns)))
    loaded = load_model(path)["targets"]["Cu"]["estimator"]
    p = loaded.predict(table.X.to_numpy())
    np.testing.assert_array_equal(p, clf.predict(table.X.to_numpy()))
    assert 0.0 <= p.min() and p.max() <= 1.0


def test_categorical_buffer_and_spectral_pipelines_round_trip(tmp_path) -> None:
    """The optional steps: one-hot codes, raw coordinates, buffer distances, log target,
    spectral preprocessing (every type they hold is in the allowlist)."""
    from geohm.models.forest import forest_regressor
    from geohm.models.spatial import BufferDistances
    from geohm.models.spectral import SpectralResNetRegressor
    from geohm.preprocess import build_pipeline
    from geohm.spectra import spectral_preprocessors

    table = _table(44, 0)
    X = table.X.assign(rock=np.arange(44) % 3)
    pipe = build_pipeline(
        forest_regressor({"n_estimators": 5, "n_jobs": 1}),
        raw=("x", "y"),
        categorical=("rock",),
        log=True,
    )
    pipe.steps.insert(len(pipe.steps) - 1, ("buffers", BufferDistances(coords=("x", "y"))))
    pipe.fit(X, table.y["Cu"])
    rng = np.random.default_rng(0)
    S = pd.DataFrame(
        rng.uniform(0.1, 0.9, (40, 60)).cumsum(axis=1) / 60,
        columns=[f"wl_{400 + 10 * i}" for i in range(60)],
    )
    net = SpectralResNetRegressor(max_epochs=2, pooled_width=30, random_state=0)
    spec = build_pipeline(net, impute="none", scale="none", log=True)
    spec.steps[1:1] = spectral_preprocessors(["absorbance", {"savgol": {"deriv": 1}}, "snv"])
    spec.set_output(transform="pandas").fit(S, 3 * S["wl_500"])
    for est, data in ((pipe, X), (spec, S)):
        path = save_model(tmp_path / MODEL_FILE, _bundle(est, list(data.columns)))
        loaded = load_model(path)["targets"]["Cu"]["estimator"]
        np.testing.assert_array_equal(loaded.predict(data), est.predict(data))


def test_spectral_resnet_round_trips_as_arrays(tmp_path) -> None:
    from geohm.models.spectral import SpectralResNetRegressor

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 60)).cumsum(axis=1)
    y = np.abs(X[:, 10] - X[:, 30])
    net = SpectralResNetRegressor(max_epochs=2, pooled_width=30, random_state=0)
    net.fit_source(X, y).fit(X, 2 * y)  # a transferred net: net_ and source_net_
    path = save_model(tmp_path / MODEL_FILE, _bundle(net, [f"b{i}" for i in range(60)]))
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(zf.open("model.skops")) as inner:
        schema = inner.read("schema.json").decode()
    assert "torch" not in schema  # the weights are plain arrays, no torch object
    loaded = load_model(path)["targets"]["Cu"]["estimator"]
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))
    assert not loaded.net_.training
    # the loaded source net still transfers
    assert loaded.fit(X, y).predict(X[:3]).shape == (3,)


def test_manifest_and_members(tmp_path) -> None:
    fit = fit_target(_cfg(*FAMILIES["ga-bp"][:2]), _table(30, 3), "Cu")
    path = save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features, fit.interval))
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["manifest.json", "model.skops"]
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == FORMAT and manifest["format_version"] == FORMAT_VERSION
    assert manifest["targets"]["Cu"] == {
        "features": fit.features,
        "required": None,
        "interval": True,
        "train_mean": None,  # the bundle gives none here; geohm run writes the training mean
    }
    assert manifest["members"] == ["manifest.json", "model.skops"]
    bundle = load_model(path)
    assert bundle["scene"] == "t" and bundle["cube_features"] == fit.features


# ------------------------------------------------------------------ hostile files


class _WritesMarker:
    """Unpickling this writes a file: what a crafted model.joblib can do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_the_crafted_pickle_is_live(tmp_path) -> None:
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(_WritesMarker(marker)))
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("name", ["model.geohm", "model.joblib"])
@pytest.mark.parametrize("writer", ["pickle", "joblib"])
def test_crafted_pickle_is_refused_and_never_run(tmp_path, name, writer) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / name
    if writer == "pickle":
        path.write_bytes(pickle.dumps({"kind": "geohm-model", "x": _WritesMarker(marker)}))
    else:
        joblib.dump({"kind": "geohm-model", "x": _WritesMarker(marker)}, path, compress=3)
    with pytest.raises(InputError) as err:
        load_model(path)
    msg = str(err.value)
    assert str(path) in msg and "re-run geohm run to write model.geohm" in msg
    assert "pickle/joblib" in msg and "\n" not in msg
    assert not marker.exists()


def _rewrite_objects(path: Path, edit: Any) -> None:
    """Rewrite the skops member of a model file: ``edit(schema) -> schema``."""
    with zipfile.ZipFile(path) as zf:
        manifest, data = zf.read("manifest.json"), zf.read("model.skops")
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            content = src.read(info)
            if info.filename == "schema.json":
                content = json.dumps(edit(json.loads(content))).encode()
            dst.writestr(info.filename, content)
    _zip(path, {"manifest.json": manifest, "model.skops": buf.getvalue()})


def _call_node(module: str, name: str, arg: str) -> dict[str, Any]:
    """A skops node that, once constructed, calls ``module.name(arg)``."""
    text = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode"}
    return {
        "__class__": name,
        "__module__": module,
        "__loader__": "ConstructorFromReduceNode",
        "content": {
            "__class__": "tuple",
            "__module__": "builtins",
            "__loader__": "TupleNode",
            "content": [{**text, "content": json.dumps(arg), "is_json": True}],
        },
    }


@pytest.mark.parametrize(
    ("module", "name", "payload"),
    [
        ("os", "system", "echo pwned > {marker}"),
        ("builtins", "eval", "open({marker!r}, 'w').write('pwned')"),
    ],
)
def test_tampered_skops_member_is_refused_without_running(tmp_path, module, name, payload) -> None:
    fit = fit_target(_cfg(*FAMILIES["ga-bp"][:2]), _table(30, 4), "Cu")
    path = save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features))
    marker = tmp_path / "marker"
    node = _call_node(module, name, payload.format(marker=str(marker)))

    def inject(schema: dict[str, Any]) -> dict[str, Any]:
        # one more key in the root dict, built before the model is handed back
        schema["content"]["extra"] = node
        schema["key_types"]["content"].append(schema["key_types"]["content"][0])
        return schema

    _rewrite_objects(path, inject)
    # the payload is live: skops runs it when told to trust the type
    with zipfile.ZipFile(path) as zf:
        data = zf.read("model.skops")
    sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    assert marker.exists()
    marker.unlink()
    with pytest.raises(InputError) as err:
        load_model(path)
    msg = str(err.value)
    assert f"{module}.{name}" in msg and str(path) in msg and "refused" in msg
    assert not marker.exists()


def test_tree_with_out_of_range_child_is_refused(tmp_path) -> None:
    fit = fit_target(_cfg(*FAMILIES["rf"][:2]), _table(30, 5), "Cu")
    for estimator in (fit.estimator,):  # model files never hold the compiled forest
        forest = estimator[-1]
        tree = forest.estimators_[3].tree_
        state = tree.__getstate__()
        good = state["nodes"].copy()
        bad = good.copy()
        bad["left_child"][0] = 10**9  # the Cython walk would read far outside the nodes
        tree.__setstate__({**state, "nodes": bad})
        try:
            path = save_model(tmp_path / MODEL_FILE, _bundle(estimator, fit.features))
            with pytest.raises(InputError, match="cannot be loaded .*tree"):
                load_model(path)
        finally:
            tree.__setstate__({**state, "nodes": good})


def _crafted_gbm(nodes: np.ndarray, n_features: int, how: str) -> None:
    """Edit a gradient boosting tree's nodes in place the way a crafted file would."""
    split = int(np.flatnonzero(nodes["is_leaf"] == 0)[-1])  # the deepest-numbered split
    if how == "left":
        nodes["left"][split] = 10**6  # the Cython walk would read far outside the nodes
    elif how == "cycle":
        nodes["right"][split] = 0  # back to the root: predict would loop for ever
    elif how == "feature":
        nodes["feature_idx"][split] = n_features  # X[row, n_features]: past the row
    elif how == "categorical":
        nodes["is_categorical"][split] = 1  # no categorical features, no bitset rows
        nodes["bitset_idx"][split] = 7


@pytest.mark.parametrize("how", ["left", "cycle", "feature", "categorical"])
def test_gbm_with_out_of_range_indices_is_refused_and_never_predicted(tmp_path, how) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    from geohm.io.models import TRUSTED_TYPES

    fit = fit_target(_cfg(*FAMILIES["gbm"][:2]), _table(30, 5), "Cu")
    gbm = fit.estimator[-1]
    assert isinstance(gbm, HistGradientBoostingRegressor)
    tree = gbm._predictors[5][0]
    good = tree.nodes
    tree.nodes = good.copy()
    _crafted_gbm(tree.nodes, gbm.n_features_in_, how)
    try:
        path = save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features))
    finally:
        tree.nodes = good
    with zipfile.ZipFile(path) as zf:
        data = zf.read("model.skops")
    # skops and scikit-learn build it as it is (nothing of theirs checks the indices) ...
    built = sio.loads(data, trusted=sorted(TRUSTED_TYPES))["targets"]["Cu"]["estimator"]
    crafted = built[-1]._predictors[5][0].nodes
    assert not np.array_equal(crafted, good) and crafted.dtype == good.dtype
    # ... and geohm refuses it before anything could predict with it
    with pytest.raises(InputError) as err:
        load_model(path)
    msg = str(err.value)
    assert "cannot be loaded (gradient boosting tree whose child, feature or bitset" in msg
    assert str(path) in msg and "re-run geohm run" in msg and "\n" not in msg


def _saved_with(tmp_path: Any, fit: Any, obj: Any, name: str, value: Any) -> Any:
    """Save ``fit`` with ``obj.name`` set to ``value`` (as a crafted file would hold it)."""
    good = getattr(obj, name)
    setattr(obj, name, value)
    try:
        return save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features))
    finally:
        setattr(obj, name, good)


def test_gbm_of_an_unexpected_shape_is_refused(tmp_path) -> None:
    fit = fit_target(_cfg(*FAMILIES["gbm"][:2]), _table(30, 5), "Cu")
    # two outputs where one is predicted
    path = _saved_with(tmp_path, fit, fit.estimator[-1], "_baseline_prediction", np.zeros((1, 2)))
    with pytest.raises(InputError, match="cannot be loaded .gradient boosting model of an"):
        load_model(path)


def test_kriging_and_leaf_weights_with_inconsistent_arrays_are_refused(tmp_path) -> None:
    fit = fit_target(_cfg("ok", {}), _table(30, 6), "Cu")
    ok = fit.estimator[-1].ok_
    z = ok.Z
    ok.Z = z[:3]  # pykrige's compiled loop would index Z with neighbours up to n
    try:
        save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features))
        with pytest.raises(InputError, match="kriging object"):
            load_model(tmp_path / MODEL_FILE)
    finally:
        ok.Z = z
    fit = fit_target(_cfg(*FAMILIES["rf"][:2]), _table(30, 6), "Cu")
    assert fit.interval is not None and fit.interval.forest_ is not None
    weights = fit.interval.forest_
    weights.offsets = weights.offsets.copy()
    weights.offsets[-1] += 5
    save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features, fit.interval))
    with pytest.raises(InputError, match="leaf weights"):
        load_model(tmp_path / MODEL_FILE)


def _crafted_svc_files(tmp_path: Path) -> dict[str, Path]:
    """Model files whose SVC holds libsvm arrays that libsvm would read out of bounds."""
    clf, table = _classifier("svm")
    svc = clf.classifier.best_estimator_["model"].calibrated_classifiers_[0].estimator
    n = svc.support_vectors_.shape[0]
    good = {k: getattr(svc, k) for k in ("_n_support", "support_", "_dual_coef_", "_intercept_")}
    crafted = {
        # the reviewer's file: the counts still sum to the number of support vectors
        "counts": {"_n_support": np.array([100_000, n - 100_000], dtype=np.int32)},
        "support": {"support_": np.concatenate([svc.support_, svc.support_])},
        "dual": {"_dual_coef_": svc._dual_coef_[:, :3]},
        "intercept": {"_intercept_": np.zeros(3)},
    }
    files = {}
    for name, change in crafted.items():
        for k, v in change.items():
            setattr(svc, k, v)
        try:
            files[name] = save_model(
                tmp_path / f"{name}.geohm", _bundle(clf, list(table.X.columns))
            )
        finally:
            for k, v in good.items():
                setattr(svc, k, v)
    # scikit-learn's own check (CVE-2020-28975) lets the crafted counts through
    svc._n_support = crafted["counts"]["_n_support"]
    try:
        X = svc.support_vectors_[:2]
        assert svc._validate_for_predict(X) is not None
    finally:
        svc._n_support = good["_n_support"]
    return files


def test_svc_with_inconsistent_libsvm_arrays_is_refused(tmp_path) -> None:
    for name, path in _crafted_svc_files(tmp_path).items():
        with pytest.raises(InputError) as err:
            load_model(path)
        msg = str(err.value)
        assert "cannot be loaded (support vector machine whose libsvm arrays" in msg, name
        assert str(path) in msg and "\n" not in msg


def _kmeans(X: pd.DataFrame) -> Any:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)


def _svr_pipeline(X: pd.DataFrame) -> Any:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import MinMaxScaler
    from sklearn.svm import SVR

    return Pipeline([("scale", MinMaxScaler()), ("model", SVR())]).fit(X, X["NDVI"])


@pytest.mark.parametrize(
    ("build", "refused"),
    [(_kmeans, "sklearn.cluster._kmeans.KMeans"), (_svr_pipeline, "sklearn.svm._classes.SVR")],
)
def test_default_trusted_sklearn_types_geohm_never_writes_are_refused(
    tmp_path, build, refused
) -> None:
    from geohm.io.models import _check_graph

    X = _table(30, 9).X
    est = build(X)
    path = save_model(tmp_path / MODEL_FILE, _bundle(est, list(X.columns)))
    with zipfile.ZipFile(path) as zf:
        data = zf.read("model.skops")
    assert sio.get_untrusted_types(data=data) == []  # skops alone would build it
    with pytest.raises(InputError) as err:
        load_model(path)
    msg = str(err.value)
    assert f"refused: it holds types geohm does not load ({refused})" in msg
    assert str(path) in msg and "\n" not in msg
    # and the check after loading refuses it too
    with pytest.raises(ValueError, match=f"a {refused}, which geohm does not load"):
        _check_graph({"targets": {"Cu": {"estimator": est}}})


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, content in members.items():
            zf.writestr(name, content)
    return path


def test_bad_files_are_one_line_input_errors(tmp_path) -> None:
    fit = fit_target(_cfg(*FAMILIES["ga-bp"][:2]), _table(30, 7), "Cu")
    good = save_model(tmp_path / MODEL_FILE, _bundle(fit.estimator, fit.features))
    with zipfile.ZipFile(good) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        objects = zf.read("model.skops")
    newer = {**manifest, "format_version": FORMAT_VERSION + 1}
    truncated = tmp_path / "truncated.geohm"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    flipped = bytearray(good.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF  # inside model.skops: its CRC no longer matches
    cases = {
        tmp_path / "missing.geohm": "does not exist",
        tmp_path: "is a folder",
        _write(tmp_path / "garbage.geohm", b"GEOHM? no\x00\x01" * 50): "not a geohm model file",
        _zip(tmp_path / "nomanifest.geohm", {"model.skops": objects}): "no manifest.json",
        _zip(
            tmp_path / "newer.geohm",
            {"manifest.json": json.dumps(newer).encode(), "model.skops": objects},
        ): "upgrade geohm",
        _zip(
            tmp_path / "other.geohm",
            {"manifest.json": b'{"format": "something-else"}', "model.skops": objects},
        ): "not a geohm model file",
        _zip(
            tmp_path / "noobjects.geohm", {"manifest.json": json.dumps(manifest).encode()}
        ): "no model.skops",
        _zip(
            tmp_path / "badobjects.geohm",
            {"manifest.json": json.dumps(manifest).encode(), "model.skops": b"PK\x03\x04junk"},
        ): "corrupt",
        truncated: "not a geohm model file",
        _write(tmp_path / "flipped.geohm", bytes(flipped)): "is corrupt",
    }
    for path, words in cases.items():
        with pytest.raises(InputError) as err:
            load_model(path)
        msg = str(err.value)
        assert words in msg and str(path) in msg and "\n" not in msg, msg


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("content", [b"\x00corrupt model\xff" * 20, b"PK\x03\x04" + b"\x00" * 40])
def test_corrupt_model_exits_2_through_the_cli(tmp_path, content) -> None:
    scene = tmp_path / "scene.yaml"
    scene.write_text("name: t\ncovariates: {a: a.tif}\noutput: {dir: out}\n")
    model = _write(tmp_path / MODEL_FILE, content)
    res = CliRunner().invoke(app, ["predict", str(scene), "--model", str(model)])
    assert res.exit_code == 2, res.output
    assert MODEL_FILE in res.output and "Traceback" not in res.output


def test_loading_needs_no_forest_kernel(tmp_path, monkeypatch, caplog) -> None:
    fit = fit_target(_cfg(*FAMILIES["rf"][:2]), _table(40, 8), "Cu")
    table = _table(40, 8).X[fit.features]
    expected = fit.estimator.predict(table)
    plain = save_model(tmp_path / "plain.geohm", _bundle(fit.estimator, fit.features))
    # a compiled forest is never written (model files hold the fitted estimators)
    with pytest.raises(ValueError, match="CompiledForest"):
        save_model(tmp_path / "fast.geohm", _bundle(accelerate(fit.estimator), fit.features))
    # geohm installed without a C compiler: no extension module
    monkeypatch.setattr(kernel, "_EXT", None)
    monkeypatch.setattr(kernel, "_WARNED", threading.Event())
    with caplog.at_level(logging.WARNING, logger="geohm"):
        est = load_model(plain)["targets"]["Cu"]["estimator"]
        assert accelerate(est) is est  # scikit-learn's predict
        np.testing.assert_array_equal(est.predict(table), expected)
    assert "compiled forest kernel is not built" in caplog.text


def test_gbm_nodes_as_a_masked_array_are_refused(tmp_path) -> None:
    """numpy reductions skip masked entries, compiled predict reads them: only plain
    arrays pass (a masked feature_idx of 10**8 crashed predict before this check)."""
    fit = fit_target(_cfg(*FAMILIES["gbm"][:2]), _table(30, 5), "Cu")
    gbm = fit.estimator[-1]
    tree = gbm._predictors[5][0]
    good = tree.nodes
    crafted = np.ma.MaskedArray(good.copy())
    split = int(np.flatnonzero(good["is_leaf"] == 0)[0])
    crafted.data["feature_idx"][split] = 10**8
    crafted["feature_idx"][split] = np.ma.masked  # hidden from np.any(feat >= n)
    path = _saved_with(tmp_path, fit, tree, "nodes", crafted)
    with pytest.raises(InputError, match="cannot be loaded .gradient boosting tree whose node"):
        load_model(path)


@pytest.mark.parametrize(("saved", "loaded"), [(12.5, 12.5), (None, None), ("x", None)])
def test_training_mean_travels_in_the_manifest(tmp_path, saved, loaded) -> None:
    """geohm predict measures skill against the training mean saved with the model."""
    fit = fit_target(_cfg(*FAMILIES["rf"][:2]), _table(30, 3), "Cu")
    bundle = _bundle(fit.estimator, fit.features)
    bundle["targets"]["Cu"]["train_mean"] = saved
    path = save_model(tmp_path / MODEL_FILE, bundle)
    assert load_model(path)["targets"]["Cu"]["train_mean"] == loaded


def test_area_of_applicability_round_trips_as_plain_values(tmp_path: Path) -> None:
    """The AOA travels in model.geohm as numbers and arrays (no geohm type) and gives the
    same dissimilarity index after loading."""
    from geohm.aoa import AreaOfApplicability

    fit = fit_target(_cfg(*FAMILIES["rf"][:2]), _table(40, 8), "Cu")
    assert fit.aoa is not None and fit.aoa_features
    bundle = _bundle(fit.estimator, fit.features, fit.interval)
    bundle["targets"]["Cu"].update(aoa=fit.aoa.to_state(), aoa_features=fit.aoa_features)
    path = save_model(tmp_path / MODEL_FILE, bundle)
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["targets"]["Cu"]["aoa_features"] == fit.aoa_features
    loaded = load_model(path)["targets"]["Cu"]
    aoa = AreaOfApplicability.from_state(loaded["aoa"])
    X = _table(40, 9).X[fit.aoa_features].to_numpy(dtype="float64")
    np.testing.assert_array_equal(aoa.di(X), fit.aoa.di(X))
    assert aoa.threshold == fit.aoa.threshold and loaded["aoa_features"] == fit.aoa_features

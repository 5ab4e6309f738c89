"""Predictive distributions per table of pixels (geohm.models.ensemble): the prediction,
its interval and the exceedance probabilities of a tree ensemble, from one traversal."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression

from geohm.models import kernel
from geohm.models.compiled import accelerate, kernel_available
from geohm.models.ensemble import (
    exceedance_probability,
    has_members,
    predict_distribution,
)
from geohm.models.kernel import tree_votes
from geohm.models.uncertainty import interval_model
from geohm.preprocess import build_pipeline


def _reference(estimator, X: np.ndarray, threshold, *, log: bool) -> np.ndarray:
    """Share of trees above the threshold, tree by tree with scikit-learn (by hand)."""
    prep, final = estimator[:-1], estimator.steps[-1][1]
    forest = final.regressor_ if log else final
    Xt = np.asarray(prep.transform(X), dtype="float32")
    t = np.broadcast_to(np.asarray(threshold, dtype="float64"), (len(X),))
    votes = []
    for tree in forest.estimators_:
        pred = tree.predict(Xt)
        votes.append((np.expm1(pred) if log else pred) > t)
    return np.mean(votes, axis=0)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.random((60, 4))
    y = 20 + 80 * X[:, 0] + rng.normal(0, 8, 60)
    return X, y, rng.random((3000, 4)).astype("float32")


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("forest_cls", [RandomForestRegressor, ExtraTreesRegressor])
def test_compiled_exceedance_equals_tree_by_tree(data, log: bool, forest_cls) -> None:
    X, y, Xp = data
    pipe = build_pipeline(forest_cls(n_estimators=30, random_state=0), log=log).fit(X, y)
    fast = accelerate(pipe)
    if kernel_available():
        assert fast is not pipe  # the compiled path is exercised
    threshold = np.linspace(30.0, 90.0, len(Xp))  # one screening value per pixel
    ref = _reference(pipe, Xp, threshold, log=log)
    for est in (pipe, fast):
        prob = exceedance_probability(est, Xp, threshold)
        assert prob.dtype == np.float32
        np.testing.assert_array_equal(prob, ref.astype("float32"))
    # 0 < p < 1 somewhere: the forest disagrees with itself near the threshold
    assert ((ref > 0) & (ref < 1)).any()


def test_compiled_exceedance_chunks_and_special_values(data, monkeypatch) -> None:
    X, y, Xp = data
    pipe = build_pipeline(RandomForestRegressor(n_estimators=20, random_state=1)).fit(X, y)
    fast = accelerate(pipe)
    whole = exceedance_probability(fast, Xp, 55.0)
    import geohm.models.ensemble as ens

    monkeypatch.setattr(ens, "_CHUNK_ROWS", 7)  # many chunks, a ragged last one
    np.testing.assert_array_equal(exceedance_probability(fast, Xp, 55.0), whole)
    # A pixel without a screening value (NaN threshold) has no probability.
    t = np.full(len(Xp), 55.0)
    t[:5] = np.nan
    prob = exceedance_probability(fast, Xp, t)
    assert np.isnan(prob[:5]).all() and np.array_equal(prob[5:], whole[5:])
    # Thresholds below every leaf and above every leaf: certain answers.
    assert (exceedance_probability(fast, Xp, -1.0) == 1.0).all()
    assert (exceedance_probability(fast, Xp, 1e9) == 0.0).all()


def test_members_required() -> None:
    lr = build_pipeline(LinearRegression()).fit(np.arange(10.0)[:, None], np.arange(10.0))
    assert not has_members(lr)
    with pytest.raises(TypeError, match="no ensemble members"):
        exceedance_probability(lr, np.zeros((2, 1)), 1.0)


def test_tree_votes_by_hand() -> None:
    leaf = [5.0, 10.0, 20.0, 40.0]
    ids = [[0, 1, 3], [2, 2, 3], [0, 0, 0]]
    assert tree_votes(ids, leaf, [7.0, 20.0, 1.0]).tolist() == [2, 1, 3]
    assert tree_votes(ids, leaf, [np.nan, 100.0, 5.0]).tolist() == [0, 0, 0]  # not > 5
    big = np.random.default_rng(0).integers(0, 4, (50_000, 3))
    thr = np.full(50_000, 15.0)
    ref = (np.asarray(leaf)[big] > 15.0).sum(axis=1)
    for jobs in (1, 2):
        assert np.array_equal(tree_votes(big, leaf, thr, n_jobs=jobs), ref)
    with pytest.raises(ValueError, match="outside"):
        tree_votes([[4]], leaf, [1.0])
    with pytest.raises(ValueError, match="thresholds"):
        tree_votes([[0]], leaf, [1.0, 2.0])


# ------------------------------------------------------- one traversal, all layers


@pytest.fixture(scope="module")
def fitted(data):
    """A log-target forest of small trees (bit-vector kernel), its quantile-forest
    interval model and pixels with a few missing values."""
    X, y, Xp = data
    pipe = build_pipeline(RandomForestRegressor(n_estimators=40, random_state=0), log=True)
    pipe.fit(X, y)
    im = interval_model(pipe, X, y, random_state=0)
    Xn = Xp.copy()
    Xn[::13, 2] = np.nan  # imputed by the pipeline: every row still gets a prediction
    return pipe, im, Xn, X, y


@pytest.mark.parametrize("chunk", [16_384, 7])
def test_one_call_gives_prediction_interval_and_exceedance(fitted, monkeypatch, chunk) -> None:
    import geohm.models.ensemble as ens

    pipe, im, Xp, _, _ = fitted
    monkeypatch.setattr(im, "chunk_size", chunk)  # many chunks, a ragged last one
    monkeypatch.setattr(ens, "_CHUNK_ROWS", chunk)
    t = np.linspace(30.0, 90.0, len(Xp))  # one screening value per pixel
    t[:4] = np.nan  # no screening value: no probability
    ref = _reference(pipe, Xp, t, log=True).astype("float32")
    ref[:4] = np.nan
    pred, lower, upper = im.predict_interval(Xp)
    # with the interval model: one traversal for all three layers
    d = predict_distribution(accelerate(pipe), Xp, interval=im, thresholds=t)
    np.testing.assert_array_equal(d.prediction, pred)
    np.testing.assert_array_equal(d.lower, lower)
    np.testing.assert_array_equal(d.upper, upper)
    assert d.exceedance is not None and d.exceedance.dtype == np.float32
    np.testing.assert_array_equal(d.exceedance, ref)
    # without one (uncertainty off): the prediction and the votes of one traversal
    for est in (pipe, accelerate(pipe)):
        d = predict_distribution(est, Xp, thresholds=t)
        np.testing.assert_array_equal(d.prediction, accelerate(pipe).predict(Xp))
        np.testing.assert_array_equal(d.exceedance, ref)
        assert d.lower is None and d.upper is None
    np.testing.assert_array_equal(exceedance_probability(pipe, Xp, t), ref)


def test_several_thresholds_and_plain_prediction(fitted) -> None:
    pipe, im, Xp, _, _ = fitted
    fast = accelerate(pipe)
    stack = np.stack([np.full(len(Xp), 40.0), np.full(len(Xp), 60.0), np.full(len(Xp), 1e9)])
    d = predict_distribution(fast, Xp, interval=im, thresholds=stack)
    assert d.exceedance is not None and d.exceedance.shape == (3, len(Xp))
    for k, value in enumerate((40.0, 60.0)):
        np.testing.assert_array_equal(d.exceedance[k], exceedance_probability(pipe, Xp, value))
    assert (d.exceedance[2] == 0).all()
    assert (d.exceedance[0] >= d.exceedance[1]).all()  # P(C > 40) >= P(C > 60)
    plain = predict_distribution(fast, Xp)
    np.testing.assert_array_equal(plain.prediction, fast.predict(Xp))
    assert plain.exceedance is None and plain.lower is None
    with pytest.raises(ValueError, match="thresholds of shape"):
        predict_distribution(fast, Xp, thresholds=np.zeros(5))
    lr = build_pipeline(LinearRegression()).fit(np.arange(10.0)[:, None], np.arange(10.0))
    with pytest.raises(TypeError, match="no ensemble members"):
        predict_distribution(lr, np.zeros((2, 1)), thresholds=1.0)


def test_one_traversal_without_the_kernel_gives_the_same_layers(fitted, monkeypatch) -> None:
    pipe, im, Xp, X, y = fitted
    t = np.full(len(Xp), 55.0)
    expected = predict_distribution(accelerate(pipe), Xp, interval=im, thresholds=t)
    monkeypatch.setattr(kernel, "_EXT", None)
    monkeypatch.setattr(kernel, "_WARNED", threading.Event())
    im2 = interval_model(pipe, X, y, random_state=0)  # no cached kernel tables
    got = predict_distribution(accelerate(pipe), Xp, interval=im2, thresholds=t)
    for field in ("prediction", "lower", "upper", "exceedance"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field))

"""Exceedance probabilities from tree ensembles (geohm.models.ensemble)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression

from geohm.models.compiled import accelerate, kernel_available
from geohm.models.ensemble import exceedance_probability, has_members
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
    from geohm.models.compiled import tree_votes

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

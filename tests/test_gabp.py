"""GA-BP regressor: GA, Levenberg-Marquardt, batched prediction, sklearn contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from geohm.models import gabp
from geohm.models.gabp import GABPRegressor, forward_nets, levenberg_marquardt, n_net_params

FAST = {"population": 10, "generations": 5, "lm_iterations": 10}


def toy(n: int = 80, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """y = sin(x1) + x2**2 on [-2, 2]**2."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    return X, np.sin(X[:, 0]) + X[:, 1] ** 2


def mse_scaled(model: GABPRegressor, X: np.ndarray, y: np.ndarray) -> float:
    """Training MSE in the model's scaled target units (the GA/LM loss)."""
    return float(np.mean((model._scale_y(model.predict(X)) - model._scale_y(y)) ** 2))


def test_paper_net_has_40_weights_and_5_thresholds() -> None:
    # Table 4: 9 inputs, 4 hidden, 1 output -> 36 + 4 weights, 4 + 1 thresholds
    assert n_net_params(9, 4) == 45
    X = np.random.default_rng(0).uniform(size=(20, 9))
    model = GABPRegressor(**FAST, random_state=0).fit(X, X.sum(axis=1))
    assert model.weights_.shape == (45,)
    assert [c.shape for c in model.coefs_] == [(9, 4), (4, 1)]
    assert [b.shape for b in model.intercepts_] == [(4,), (1,)]
    assert model.n_features_in_ == 9


def test_ga_improves_on_random_initialisation() -> None:
    X, y = toy()
    model = GABPRegressor(lm_iterations=0, random_state=1).fit(X, y)
    history = model.ga_history_
    assert len(history) == 51  # initial population + 50 generations
    assert np.all(np.diff(history) <= 0)  # elitism: best fitness never gets worse
    assert history[-1] < 0.8 * history[0]  # better than the best initial individual
    assert model.ga_best_fitness_ == history[-1]
    # ... and better than the best of 30 fresh random individuals, drawn independently
    Xt = model._scale_X(torch.tensor(X))
    yt = torch.tensor(model._scale_y(y))
    pop = torch.tensor(np.random.default_rng(99).uniform(-1, 1, size=(30, n_net_params(2, 4))))
    random_best = ((forward_nets(pop, Xt, hidden=4, activation="sigmoid") - yt) ** 2).mean(1).min()
    assert history[-1] < float(random_best)
    # without LM, the fitted net is the GA's best individual
    assert mse_scaled(model, X, y) == pytest.approx(history[-1], rel=1e-9)


def test_lm_reaches_known_solution_of_a_2_2_1_net() -> None:
    rng = np.random.default_rng(3)
    true = np.array([1.5, -0.7, 0.4, 1.2, 0.3, -0.2, 1.1, -0.9, 0.25])  # W1, b1, w2, b2
    assert true.size == n_net_params(2, 2)
    X = torch.tensor(rng.uniform(-1, 1, size=(40, 2)))
    y = forward_nets(torch.tensor(true)[None], X, hidden=2, activation="tanh")[0]
    start = true + rng.normal(0, 0.1, size=true.size)
    params, history = levenberg_marquardt(start, X, y, hidden=2, activation="tanh", max_iter=50)
    assert history[0] > 1e-4
    assert history[-1] < 1e-8
    assert np.all(np.diff(history) < 0)  # LM only accepts steps that lower the loss
    fitted = forward_nets(torch.tensor(params)[None], X, hidden=2, activation="tanh")[0]
    np.testing.assert_allclose(fitted.numpy(), y.numpy(), atol=1e-4)


def test_lm_lowers_the_ga_loss() -> None:
    X, y = toy(seed=2)
    ga_only = GABPRegressor(lm_iterations=0, random_state=5).fit(X, y)
    ga_lm = GABPRegressor(random_state=5).fit(X, y)
    np.testing.assert_array_equal(ga_only.ga_history_, ga_lm.ga_history_)  # same GA
    assert ga_lm.lm_history_[0] == pytest.approx(ga_lm.ga_best_fitness_, rel=1e-9)
    assert 1 <= ga_lm.n_iter_ <= 50
    assert len(ga_lm.lm_history_) == ga_lm.n_iter_ + 1
    assert np.all(np.diff(ga_lm.lm_history_) < 0)
    assert mse_scaled(ga_lm, X, y) < 0.1 * mse_scaled(ga_only, X, y)
    assert mse_scaled(ga_lm, X, y) == pytest.approx(ga_lm.lm_history_[-1], rel=1e-6)


def test_same_seed_same_predictions_other_seed_differs() -> None:
    X, y = toy(n=40)
    a = GABPRegressor(**FAST, random_state=7).fit(X, y).predict(X)
    b = GABPRegressor(**FAST, random_state=7).fit(X, y).predict(X)
    c = GABPRegressor(**FAST, random_state=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_predict_300k_rows_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = toy(n=40)
    model = GABPRegressor(**FAST, random_state=0).fit(X, y)
    big = np.random.default_rng(1).uniform(-2, 2, size=(300_000, 2))
    calls = []
    real_forward = gabp.forward_nets

    def counting_forward(params: torch.Tensor, Xb: torch.Tensor, **kw: object) -> torch.Tensor:
        calls.append(Xb.shape[0])
        return real_forward(params, Xb, **kw)

    monkeypatch.setattr(gabp, "forward_nets", counting_forward)
    pred = model.predict(big)
    assert calls == [2**18, 300_000 - 2**18]  # one batched pass per chunk, no row loop
    small = model.set_params(batch_size=1000).predict(big)
    np.testing.assert_allclose(pred, small, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pred[:50], model.predict(big[:50]), rtol=1e-12)


def test_coefs_give_the_prediction() -> None:
    X, y = toy(n=40)
    model = GABPRegressor(**FAST, activation="tanh", random_state=0).fit(X, y)
    Xs = (X - (model.x_min_ + model.x_max_) / 2) / ((model.x_max_ - model.x_min_) / 2)
    hidden = np.tanh(Xs @ model.coefs_[0] + model.intercepts_[0])
    out = (hidden @ model.coefs_[1])[:, 0] + model.intercepts_[1][0]
    y_half, y_mid = (model.y_max_ - model.y_min_) / 2, (model.y_max_ + model.y_min_) / 2
    np.testing.assert_allclose(out * y_half + y_mid, model.predict(X), rtol=1e-10)
    np.testing.assert_allclose(model.x_min_, X.min(axis=0))
    assert model.y_max_ == y.max()


def test_without_normalisation_the_net_sees_raw_values() -> None:
    X, y = toy(n=40)
    model = GABPRegressor(**FAST, normalize=False, random_state=0).fit(X, y)
    hidden = 1 / (1 + np.exp(-(X @ model.coefs_[0] + model.intercepts_[0])))
    out = (hidden @ model.coefs_[1])[:, 0] + model.intercepts_[1][0]
    np.testing.assert_allclose(out, model.predict(X), rtol=1e-10)


def test_goal_stops_early() -> None:
    X, y = toy(n=40)
    model = GABPRegressor(goal=0.5, random_state=0).fit(X, y)
    assert len(model.ga_history_) == 1 and model.n_iter_ == 0


@pytest.mark.parametrize(
    "params",
    [
        {"activation": "relu"},
        {"hidden": 0},
        {"population": 1},
        {"crossover_prob": 1.5},
        {"lm_iterations": -1},
        {"goal": -1.0},
        {"device": "no-such-device"},
    ],
)
def test_bad_parameters_raise_in_fit(params: dict) -> None:
    model = GABPRegressor(**params)  # __init__ only stores
    X, y = toy(n=10)
    with pytest.raises(ValueError):
        model.fit(X, y)


@parametrize_with_checks([GABPRegressor(**FAST, random_state=0)])
def test_sklearn_estimator_checks(estimator, check) -> None:
    check(estimator)


def test_one_thread_prediction_is_the_same_and_restores_torch() -> None:
    # predict_map sets n_jobs=1 while its windows run in parallel: torch then runs on one
    # thread for the call (no idle OpenMP threads spinning against the window threads).
    from geohm.predict import TargetModel, _single_threaded_models
    from geohm.preprocess import build_pipeline

    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    y = X @ [3.0, -2.0, 1.0]
    pipe = build_pipeline(
        GABPRegressor(population=6, generations=2, lm_iterations=5, random_state=0)
    ).fit(X, y)
    rows = rng.random((5000, 3)).astype("float32")
    before = torch.get_num_threads()
    ref = pipe.predict(rows)
    net = pipe.steps[-1][1]
    with _single_threaded_models({"y": TargetModel(pipe, ["a", "b", "c"])}):
        assert net.n_jobs == 1
        np.testing.assert_array_equal(pipe.predict(rows), ref)
    assert net.n_jobs is None and torch.get_num_threads() == before
    # float32 rows give the float64 rows' predictions (one conversion, same values)
    table = pipe[:-1].transform(rows)
    np.testing.assert_array_equal(net.predict(table), net.predict(table.astype("float64")))

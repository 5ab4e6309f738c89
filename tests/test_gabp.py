"""GA-BP regressor: GA, Levenberg-Marquardt, batched prediction, sklearn contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from geohm.models import gabp
from geohm.models.gabp import GABPRegressor, forward_nets, levenberg_marquardt, n_net_params

FAST = {"population": 10, "generations": 5, "lm_iterations": 10, "n_nets": 2}
#: The paper's path: one net, plain trainlm, no stopping rule, unbounded steps.
PAPER = {"n_nets": 1, "stopping": "none", "regularization": "none", "max_step": None}


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
    assert model.weights_.shape == (2, 45)  # one row per member
    assert [c.shape for c in model.coefs_] == [(2, 9, 4), (2, 4, 1)]
    assert [b.shape for b in model.intercepts_] == [(2, 4), (2, 1)]
    assert model.n_features_in_ == 9


def test_ga_improves_on_random_initialisation() -> None:
    X, y = toy()
    model = GABPRegressor(**PAPER, lm_iterations=0, random_state=1).fit(X, y)
    history = model.ga_history_[0]
    assert len(history) == 51  # initial population + 50 generations
    assert np.all(np.diff(history) <= 0)  # elitism: best fitness never gets worse
    assert history[-1] < 0.8 * history[0]  # better than the best initial individual
    assert model.ga_best_fitness_[0] == history[-1]
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
    # a bounded step (a trust region) reaches the same solution
    bounded, _ = levenberg_marquardt(
        start, X, y, hidden=2, activation="tanh", max_iter=50, max_step=0.05
    )
    np.testing.assert_allclose(bounded, params, atol=1e-3)


def test_lm_lowers_the_ga_loss() -> None:
    X, y = toy(seed=2)
    ga_only = GABPRegressor(**PAPER, lm_iterations=0, random_state=5).fit(X, y)
    ga_lm = GABPRegressor(**PAPER, random_state=5).fit(X, y)
    np.testing.assert_array_equal(ga_only.ga_history_[0], ga_lm.ga_history_[0])  # same GA
    history = ga_lm.lm_history_[0]
    assert history[0] == pytest.approx(ga_lm.ga_best_fitness_[0], rel=1e-9)
    assert 1 <= ga_lm.n_iter_[0] <= 50
    assert len(history) == ga_lm.n_iter_[0] + 1
    assert np.all(np.diff(history) < 0)
    assert mse_scaled(ga_lm, X, y) < 0.1 * mse_scaled(ga_only, X, y)
    assert mse_scaled(ga_lm, X, y) == pytest.approx(history[-1], rel=1e-6)


def test_same_seed_same_predictions_other_seed_differs() -> None:
    X, y = toy(n=40)
    a = GABPRegressor(**FAST, random_state=7).fit(X, y).predict(X)
    b = GABPRegressor(**FAST, random_state=7).fit(X, y).predict(X)
    c = GABPRegressor(**FAST, random_state=8).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_predict_300k_rows_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = toy(n=40)
    model = GABPRegressor(**{**FAST, "n_nets": 1}, random_state=0).fit(X, y)
    big = np.random.default_rng(1).uniform(-2, 2, size=(300_000, 2))
    calls = []
    real_forward = gabp.forward_nets

    def counting_forward(params: torch.Tensor, Xb: torch.Tensor, **kw: object) -> torch.Tensor:
        calls.append((params.shape[0], Xb.shape[0]))
        return real_forward(params, Xb, **kw)

    monkeypatch.setattr(gabp, "forward_nets", counting_forward)
    pred = model.predict(big)
    assert calls == [(1, 2**18), (1, 300_000 - 2**18)]  # one batched pass per chunk
    small = model.set_params(batch_size=1000).predict(big)
    np.testing.assert_allclose(pred, small, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(pred[:50], model.predict(big[:50]), rtol=1e-12)
    # an ensemble passes all its members at once, on batch_size // n_nets rows
    calls.clear()
    ensemble = GABPRegressor(**{**FAST, "n_nets": 4}, random_state=0).fit(X, y)
    ensemble.predict(big[:100_000])
    assert calls == [(4, 2**16), (4, 100_000 - 2**16)]


def test_coefs_give_the_prediction() -> None:
    X, y = toy(n=40)
    model = GABPRegressor(**FAST, activation="tanh", random_state=0).fit(X, y)
    Xs = (X - (model.x_min_ + model.x_max_) / 2) / ((model.x_max_ - model.x_min_) / 2)
    members = []
    for m in range(2):
        hidden = np.tanh(Xs @ model.coefs_[0][m] + model.intercepts_[0][m])
        members.append((hidden @ model.coefs_[1][m])[:, 0] + model.intercepts_[1][m, 0])
    y_half, y_mid = (model.y_max_ - model.y_min_) / 2, (model.y_max_ + model.y_min_) / 2
    expected = np.array(members) * y_half + y_mid
    np.testing.assert_allclose(model.predict_members(X), expected, rtol=1e-10)
    np.testing.assert_allclose(model.predict(X), expected.mean(axis=0), rtol=1e-10)
    assert not np.allclose(expected[0], expected[1])  # members differ (their GA seeds)
    np.testing.assert_allclose(model.x_min_, X.min(axis=0))
    assert model.y_max_ == y.max()


def test_without_normalisation_the_net_sees_raw_values() -> None:
    X, y = toy(n=40)
    model = GABPRegressor(**FAST, normalize=False, random_state=0).fit(X, y)
    hidden = 1 / (1 + np.exp(-(X @ model.coefs_[0][0] + model.intercepts_[0][0])))
    out = (hidden @ model.coefs_[1][0])[:, 0] + model.intercepts_[1][0, 0]
    np.testing.assert_allclose(out, model.predict_members(X)[0], rtol=1e-10)


def test_goal_stops_early() -> None:
    X, y = toy(n=40)
    model = GABPRegressor(goal=0.5, n_nets=3, random_state=0).fit(X, y)
    assert [len(h) for h in model.ga_history_] == [1, 1, 1]
    assert model.n_iter_.tolist() == [0, 0, 0]


def test_a_net_saved_before_the_ensemble_still_predicts() -> None:
    # model files written before the ensemble hold a 1-D weights_ (one net)
    X, y = toy(n=40)
    model = GABPRegressor(**{**FAST, "n_nets": 1}, random_state=0).fit(X, y)
    expected = model.predict(X)
    model.weights_ = model.weights_[0].copy()
    np.testing.assert_array_equal(model.predict(X), expected)


def _noisy_toy(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Four inputs in [0, 1] (two unused), a signal of sd ~6 and noise of sd 4 (mg/kg)."""
    X = rng.uniform(0, 1, size=(n, 4))
    return X, 30 + 20 * X[:, 0] + 10 * np.sin(3 * X[:, 1]) + rng.normal(0, 4, n)


def test_on_16_noisy_samples_gabp_beats_the_flat_map() -> None:
    ratio, paper = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        X, y = _noisy_toy(16, rng)
        X_test, y_test = _noisy_toy(400, rng)
        null = np.sqrt(np.mean((y_test - y.mean()) ** 2))  # the training mean everywhere
        for out, params in ((ratio, {}), (paper, PAPER)):
            model = GABPRegressor(**params, random_state=seed).fit(X, y)
            out.append(np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2)) / null)
    # the defaults beat the flat map on every seed (measured 0.72, 0.68, 0.67) ...
    assert max(ratio) < 0.8
    # ... where the paper's path (one net, LM to near-zero training error) does not
    # (1.31, 0.94, 1.62)
    assert np.mean(paper) > 1.0


def test_validation_stopping_keeps_each_members_best_validation_weights() -> None:
    X, y = _noisy_toy(40, np.random.default_rng(5))
    model = GABPRegressor(n_nets=3, random_state=0).fit(X, y)
    assert model.stopping_ == "validation"
    assert model.cv_curve_ is None
    for m in range(3):
        held = model.validation_rows_[m]
        assert len(held) == 6  # 15 % of 40
        curve = model.val_history_[m]
        assert len(curve) == len(model.lm_history_[m])
        best = int(model.n_iter_[m])
        assert best == int(np.argmin(curve))
        steps = len(curve) - 1
        assert steps == 50 or steps == best + 6  # lm_iterations, or six non-improving
        # the member's weights are those of its best validation iteration
        pred = model._scale_y(model.predict_members(X[held])[m])
        val_mse = np.mean((pred - model._scale_y(y[held])) ** 2)
        assert val_mse == pytest.approx(curve[best], rel=1e-9)
    assert len({tuple(r) for r in model.validation_rows_}) == 3  # each its own share


def test_inner_cv_chooses_the_iterations_and_refits_on_all_samples() -> None:
    X, y = _noisy_toy(24, np.random.default_rng(6))
    model = GABPRegressor(stopping="cv", n_nets=2, lm_iterations=20, random_state=0).fit(X, y)
    assert model.stopping_ == "cv"
    assert model.cv_curve_.shape == (21,)  # after 0, 1, ..., 20 LM iterations
    chosen = int(np.argmin(model.cv_curve_))
    assert np.all(model.n_iter_ <= chosen)  # LM may stop earlier by itself
    assert model.val_history_ is None and model.validation_rows_ is None
    # refitted on all samples: the same as a plain fit of that many iterations
    plain = GABPRegressor(stopping="none", n_nets=2, lm_iterations=chosen, random_state=0)
    # (the member seeds are drawn first, so the refit's GA draws are the same)
    np.testing.assert_allclose(plain.fit(X, y).weights_, model.weights_, rtol=1e-9)


def test_too_few_samples_to_split_train_without_a_stopping_rule() -> None:
    X, y = toy(n=2)
    assert GABPRegressor(**FAST, random_state=0).fit(X, y).stopping_ == "none"
    assert GABPRegressor(**FAST, stopping="cv", random_state=0).fit(X[:1], y[:1]).stopping_ == (
        "none"
    )
    assert GABPRegressor(**FAST, random_state=0).fit(*toy(n=3)).stopping_ == "validation"


def test_trainbr_reports_its_effective_number_of_parameters() -> None:
    X, y = _noisy_toy(30, np.random.default_rng(7))
    model = GABPRegressor(regularization="bayesian", n_nets=3, random_state=0).fit(X, y)
    n_params = n_net_params(4, 4)
    assert np.all((model.gamma_ > 0) & (model.gamma_ <= min(n_params, 30)))
    assert np.all(model.alpha_ > 0) and np.all(model.beta_ > 0)
    plain = GABPRegressor(n_nets=3, random_state=0).fit(X, y)
    assert np.all(np.isnan(plain.gamma_)) and np.all(plain.alpha_ == 0)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"stopping": "cv", "regularization": "bayesian"},
        {**PAPER, "n_nets": 1},
    ],
)
def test_a_saved_ensemble_reloads_and_predicts_identically(tmp_path, params: dict) -> None:
    from geohm.io.models import MODEL_FILE, load_model, save_model

    X, y = _noisy_toy(30, np.random.default_rng(8))
    model = GABPRegressor(**{**FAST, "n_nets": 3, **params}, random_state=0).fit(X, y)
    bundle = {
        "geohm_version": "test",
        "scene": "t",
        "model": "ga-bp",
        "cube_features": ["a", "b", "c", "d"],
        "targets": {"Cu": {"estimator": model, "features": ["a", "b", "c", "d"]}},
    }
    loaded = load_model(save_model(tmp_path / MODEL_FILE, bundle))["targets"]["Cu"]["estimator"]
    X_new = np.random.default_rng(9).uniform(0, 1, size=(200, 4))
    np.testing.assert_array_equal(loaded.predict(X_new), model.predict(X_new))
    np.testing.assert_array_equal(loaded.predict_members(X_new), model.predict_members(X_new))
    assert loaded.stopping_ == model.stopping_
    np.testing.assert_array_equal(loaded.n_iter_, model.n_iter_)


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
        {"regularization": "l2"},
        {"stopping": "early"},
        {"validation_fraction": 1.0},
        {"max_fail": 0},
        {"inner_cv": 1},
        {"n_nets": 0},
        {"n_nets": True},
        {"max_step": 0.0},
    ],
)
def test_bad_parameters_raise_in_fit(params: dict) -> None:
    model = GABPRegressor(**params)  # __init__ only stores
    X, y = toy(n=10)
    with pytest.raises(ValueError):
        model.fit(X, y)


@parametrize_with_checks(
    [
        GABPRegressor(**FAST, random_state=0),
        GABPRegressor(**FAST, stopping="cv", regularization="bayesian", random_state=0),
    ]
)
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
        GABPRegressor(population=6, generations=2, lm_iterations=5, n_nets=2, random_state=0)
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

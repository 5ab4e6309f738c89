"""Levenberg-Marquardt core of the nets: Jacobian, trainbr, validation stopping, bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geohm.models.lm import (
    effective_parameters,
    forward_nets,
    n_net_params,
    net_jacobian,
    train_nets,
)


def _noisy(n: int, seed: int, noise: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = np.sin(2 * X[:, 0]) * 0.6 + 0.3 * X[:, 1] + rng.normal(0, noise, n)
    return torch.tensor(X), torch.tensor(y)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_jacobian_matches_autograd(activation: str) -> None:
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.uniform(-1, 1, size=(7, 3)))
    params = torch.tensor(rng.normal(0, 1, size=(2, n_net_params(3, 4))))
    out, jac = net_jacobian(params, X, hidden=4, activation=activation)
    assert jac.shape == (2, 7, n_net_params(3, 4))
    torch.testing.assert_close(out, forward_nets(params, X, hidden=4, activation=activation))
    for p in range(2):
        expected = torch.autograd.functional.jacobian(
            lambda q: forward_nets(q[None], X, hidden=4, activation=activation)[0], params[p]
        )
        torch.testing.assert_close(jac[p], expected)


def test_effective_parameters_of_a_linear_net_by_hand() -> None:
    # A linear model y = X w: J = X. Orthogonal columns with squared norms 1 and 4 give
    # J^T J = diag(1, 4), so gamma = sum beta s / (beta s + alpha).
    J = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    jtj = torch.tensor(J.T @ J)[None]
    one = torch.ones(1, dtype=torch.float64)

    def gamma(alpha: float, beta: float) -> float:
        return float(effective_parameters(jtj, alpha * one, beta * one)[0])

    assert gamma(0.0, 1.0) == pytest.approx(2.0)  # no decay: every parameter counts
    assert gamma(1.0, 1.0) == pytest.approx(1 / 2 + 4 / 5)
    assert gamma(4.0, 1.0) == pytest.approx(1 / 5 + 4 / 8)
    assert gamma(2.0, 2.0) == pytest.approx(1 / 2 + 4 / 5)  # only alpha / beta matters
    # the regularisation grows: fewer effective parameters, towards 0
    alphas = [0.0, 0.01, 0.1, 1.0, 10.0, 100.0, 1e4]
    gammas = [gamma(a, 1.0) for a in alphas]
    assert np.all(np.diff(gammas) < 0)
    assert gammas[-1] < 1e-3


def test_effective_parameters_is_mackays_formula() -> None:
    # gamma = N - 2 alpha tr(H^-1), H = 2 beta J^T J + 2 alpha I, checked with numpy on a
    # rank-deficient J (fewer rows than parameters, as 16 samples and 45 weights)
    rng = np.random.default_rng(1)
    J = rng.normal(size=(3, 5, 9))
    alpha, beta = np.array([0.3, 2.0, 0.01]), np.array([5.0, 0.5, 40.0])
    jtj = np.einsum("pni,pnj->pij", J, J)
    H = 2 * beta[:, None, None] * jtj + 2 * alpha[:, None, None] * np.eye(9)
    expected = 9 - 2 * alpha * np.trace(np.linalg.inv(H), axis1=1, axis2=2)
    got = effective_parameters(torch.tensor(jtj), torch.tensor(alpha), torch.tensor(beta))
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9)
    assert np.all(got.numpy() <= 5 + 1e-9)  # never above rank(J^T J) = 5


def test_trainbr_keeps_fewer_effective_parameters_on_noisier_data() -> None:
    X, clean = _noisy(40, 2, noise=0.0)
    noise = torch.tensor(np.random.default_rng(3).normal(0, 1, 40))
    start = np.random.default_rng(4).uniform(-1, 1, size=(1, n_net_params(2, 6)))
    gammas = []
    for level in (0.02, 0.3, 1.0):
        res = train_nets(
            start,
            X,
            clean + level * noise,
            hidden=6,
            activation="tanh",
            max_iter=200,
            regularization="bayesian",
        )
        assert 0 < res.gamma[0] <= n_net_params(2, 6)
        assert res.alpha[0] > 0 and res.beta[0] > 0
        gammas.append(float(res.gamma[0]))
    assert gammas[0] > gammas[1] > gammas[2]


def test_trainbr_shrinks_weights_that_plain_lm_lets_grow() -> None:
    X, y = _noisy(16, 5, noise=0.4)
    start = np.random.default_rng(6).uniform(-1, 1, size=(1, n_net_params(2, 8)))
    kw = {"hidden": 8, "activation": "sigmoid", "max_iter": 100}
    plain = train_nets(start, X, y, **kw)
    br = train_nets(start, X, y, regularization="bayesian", **kw)
    assert np.isnan(plain.gamma[0]) and plain.alpha[0] == 0 and plain.beta[0] == 1
    assert np.linalg.norm(br.params) < 0.5 * np.linalg.norm(plain.params)
    assert br.history[0][-1] > plain.history[0][-1]  # it fits the 16 noisy points less


def test_validation_stopping_restores_the_best_validation_weights() -> None:
    X, y = _noisy(30, 7, noise=0.4)
    train = np.zeros((1, 30), dtype=bool)
    train[0, :18] = True
    start = np.random.default_rng(8).uniform(-1, 1, size=(1, n_net_params(2, 8)))
    kw = {"hidden": 8, "activation": "sigmoid", "max_iter": 100}
    res = train_nets(start, X, y, train, ~train, max_fail=6, **kw)
    curve = res.val_curve[0]
    steps = len(res.history[0]) - 1
    best = int(res.n_iter[0])
    assert 0 < best < steps < 100  # it stopped early, after the best iteration
    assert steps == best + 6  # six iterations without a better validation error
    assert best == int(np.argmin(curve[: steps + 1]))
    assert np.all(curve[best + 1 : steps + 1] > curve[best])
    # the returned weights are those after `best` steps, not the last ones
    again = train_nets(start, X, y, train, **{**kw, "max_iter": best})
    np.testing.assert_allclose(res.params, again.params, rtol=1e-10, atol=1e-12)
    out = forward_nets(torch.tensor(res.params), X, hidden=8, activation="sigmoid")[0]
    val_mse = float(((out - y)[~torch.tensor(train[0])] ** 2).mean())
    assert val_mse == pytest.approx(curve[best], rel=1e-9)
    # without max_fail the same run goes on to max_iter and keeps its last weights
    full = train_nets(start, X, y, train, ~train, **kw)
    assert full.n_iter[0] > steps
    np.testing.assert_allclose(full.val_curve[0][: steps + 1], curve[: steps + 1])


def test_nets_in_one_batch_train_as_they_would_alone() -> None:
    X, y = _noisy(24, 9)
    starts = np.random.default_rng(10).uniform(-1, 1, size=(3, n_net_params(2, 4)))
    masks = np.ones((3, 24), dtype=bool)
    masks[1, :6] = False
    masks[2, 12:] = False
    kw = {"hidden": 4, "activation": "tanh", "max_iter": 30, "regularization": "bayesian"}
    batch = train_nets(starts, X, y, masks, **kw)
    for p in range(3):
        alone = train_nets(starts[p : p + 1], X, y, masks[p : p + 1], **kw)
        np.testing.assert_allclose(batch.params[p], alone.params[0], rtol=1e-8, atol=1e-10)
        assert batch.n_iter[p] == alone.n_iter[0]


def test_bounded_steps_never_exceed_max_step() -> None:
    X, y = _noisy(20, 11, noise=0.0)
    y = y * 50  # far from the start: plain LM takes long steps
    start = np.zeros((1, n_net_params(2, 4)))
    start[0, :8] = 0.1
    params = start.copy()
    for _ in range(10):  # one accepted step at a time
        res = train_nets(params, X, y, hidden=4, activation="tanh", max_iter=1, max_step=0.5)
        assert np.linalg.norm(res.params - params) <= 0.5 + 1e-12
        params = res.params
    assert res.history[0][-1] < float((y**2).mean())

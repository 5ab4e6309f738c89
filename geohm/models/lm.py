"""Small three-layer nets and their Levenberg-Marquardt training, many nets at once.

The maths under :class:`~geohm.models.gabp.GABPRegressor` and
:class:`~geohm.models.transfer.TransferGABPRegressor`: the net
``n_in -> hidden -> 1`` (sigmoid or tanh hidden layer, linear output), its Jacobian,
and Levenberg-Marquardt training as MATLAB's ``trainlm`` and ``trainbr`` do it, with
validation stopping. Every function takes a batch of ``P`` nets (ensemble members,
inner cross-validation folds, GA individuals) that share the rows ``X`` and differ in
their weights and in which rows they train on (``train_mask``) or are scored on
(``val_mask``): one batched tensor operation serves them all.

Flat parameter layout
---------------------
Every vector of net parameters holds, in this order, for ``n_in`` inputs and ``H``
hidden units:

=========================  ====================  ===========================
slice                      shape when reshaped    meaning
=========================  ====================  ===========================
``[0, n_in*H)``            ``(n_in, H)``          input -> hidden weights
                                                  (row-major: ``[i, h]``)
``[n_in*H, n_in*H+H)``     ``(H,)``               hidden thresholds (biases)
``[n_in*H+H, n_in*H+2H)``  ``(H,)``               hidden -> output weights
``[-1]``                   ``()``                 output threshold
=========================  ====================  ===========================

so the net is ``out = act(x @ W1 + b1) @ w2 + b2`` on scaled inputs ``x``.

Levenberg-Marquardt (``trainlm``, ``trainbr``)
----------------------------------------------
Net ``p`` minimises ``F = beta * E_D + alpha * E_W`` over its training rows, with
``E_D`` the sum of squared errors and ``E_W`` the sum of squared weights and
thresholds. Each iteration solves, with the residuals ``r`` and their Jacobian ``J``,

    (beta J^T J + (mu + alpha) I) delta = -(beta J^T r + alpha w)

(``trainbr``'s step; with ``alpha = 0, beta = 1`` it is ``trainlm``'s). A step that
lowers ``F`` is accepted and ``mu`` divided by 10; otherwise ``mu`` is multiplied by
10 and the step retried, until ``mu`` passes 1e10 (the net then stops). Two guards
keep a net on 15-60 samples from running away: ``mu`` never falls below 1e-20 (as in
MATLAB), and a step longer than ``max_step`` (Euclidean norm, in the units of the
weights on [-1, 1]-scaled data) counts as a failed step: ``mu`` grows until the step is
short enough (a trust region; shortening the step instead would keep the Gauss-Newton
direction and, measured, slows LM several-fold).

**Bayesian regularisation** (``regularization="bayesian"``; MacKay 1992, Foresee &
Hagan 1997, MATLAB ``trainbr``): after each accepted step the evidence framework
re-estimates ``alpha`` and ``beta`` from the Gauss-Newton Hessian
``H = 2 beta J^T J + 2 alpha I`` of ``F``:

    gamma = N - 2 alpha tr(H^-1)       (effective number of parameters)
    alpha = gamma / (2 E_W),   beta = (n - gamma) / (2 E_D)

with ``N`` the number of weights and thresholds and ``n`` the training rows.
MATLAB starts from ``gamma = N``, which makes ``beta`` negative when a net has more
weights than samples (9-4-1: 45 weights, 16 samples); here the start is
``gamma = min(N, n / 2)``, and ``n - gamma`` and ``E_D`` are kept above tiny positive
floors. From the first update on ``gamma <= rank(J^T J) <= n`` holds by itself.

**Validation stopping** (``trainlm``'s default): after each accepted step the MSE on
the net's validation rows is recorded; it stops once that MSE has not improved on its
best for ``max_fail`` (6) iterations in a row (MATLAB's ``max_fail`` rule) and returns
the weights of the best validation iteration.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "LMResult",
    "effective_parameters",
    "forward_nets",
    "levenberg_marquardt",
    "n_net_params",
    "net_jacobian",
    "single_threaded",
    "train_nets",
]

_DTYPE = torch.float64

# Levenberg-Marquardt constants (MATLAB ``trainlm`` defaults).
MU0 = 1e-3
_MU_DEC = 0.1
_MU_INC = 10.0
_MU_MAX = 1e10
_MU_MIN = 1e-20
_MIN_GRAD = 1e-10  # on the gradient of the MSE; trainlm uses 1e-7 on its own scale
# Floors of the evidence updates (scaled units; see the module docstring).
_MIN_SSE = 1e-12
_MIN_DOF = 0.5


# --------------------------------------------------------------------------- threads

_THREADS_LOCK = threading.Lock()
_threads_depth = 0
_threads_saved = 1


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the setting.

    Training tensors are tiny (tens of samples, a few dozen parameters): splitting
    each operation across threads costs more than it saves, and under CPU load
    OpenMP barriers slow a fit ten-fold. Nested and concurrent uses are counted, so
    the setting found by the first entry is restored by the last exit.
    """
    global _threads_depth, _threads_saved
    with _THREADS_LOCK:
        if _threads_depth == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_depth += 1
    try:
        yield
    finally:
        with _THREADS_LOCK:
            _threads_depth -= 1
            if _threads_depth == 0:
                torch.set_num_threads(_threads_saved)


# --------------------------------------------------------------------------- net maths


def n_net_params(n_in: int, hidden: int) -> int:
    """Number of weights and thresholds of an ``n_in -> hidden -> 1`` net."""
    return n_in * hidden + 2 * hidden + 1


def _unpack(
    params: torch.Tensor, n_in: int, hidden: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n_w1 = n_in * hidden
    w1 = params[:, :n_w1].reshape(-1, n_in, hidden)
    b1 = params[:, n_w1 : n_w1 + hidden]
    w2 = params[:, n_w1 + hidden : n_w1 + 2 * hidden]
    return w1, b1, w2, params[:, -1]


def forward_nets(
    params: torch.Tensor, X: torch.Tensor, *, hidden: int, activation: str
) -> torch.Tensor:
    """Outputs of ``P`` nets on ``n`` rows, in one batched tensor operation.

    Parameters
    ----------
    params : Tensor of shape (P, n_params)
        One flat parameter vector per net (layout in the module docstring).
    X : Tensor of shape (n, n_in)
        Scaled inputs.
    hidden : int
        Hidden units ``H``.
    activation : {"sigmoid", "tanh"}
        Hidden-layer transfer function.

    Returns
    -------
    Tensor of shape (P, n)
        Scaled outputs of each net for each row.
    """
    w1, b1, w2, b2 = _unpack(params, X.shape[1], hidden)
    z = torch.einsum("nf,pfh->pnh", X, w1) + b1[:, None, :]
    a = torch.sigmoid(z) if activation == "sigmoid" else torch.tanh(z)
    return torch.einsum("pnh,ph->pn", a, w2) + b2[:, None]


def net_jacobian(
    params: torch.Tensor, X: torch.Tensor, *, hidden: int, activation: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of ``P`` nets and their Jacobians with respect to each net's parameters.

    Written out by hand (the chain rule of a one-hidden-layer net) rather than by
    autograd: ``P`` independent nets would make autograd build a ``(P, n, P, n_params)``
    block-diagonal Jacobian, ``P`` times too large; ``tests/test_gabp.py`` checks this
    one against ``torch.autograd``.

    Parameters
    ----------
    params : Tensor of shape (P, n_params)
        Flat parameters (layout in the module docstring).
    X : Tensor of shape (n, n_in)
        Scaled inputs.
    hidden, activation
        As in :func:`forward_nets`.

    Returns
    -------
    out : Tensor of shape (P, n)
        Outputs, as :func:`forward_nets`.
    jac : Tensor of shape (P, n, n_params)
        ``d out[p, i] / d params[p, k]``.
    """
    n, n_in = X.shape
    w1, b1, w2, b2 = _unpack(params, n_in, hidden)
    z = torch.einsum("nf,pfh->pnh", X, w1) + b1[:, None, :]
    if activation == "sigmoid":
        a = torch.sigmoid(z)
        slope = a * (1.0 - a)
    else:
        a = torch.tanh(z)
        slope = 1.0 - a * a
    out = torch.einsum("pnh,ph->pn", a, w2) + b2[:, None]
    d_b1 = slope * w2[:, None, :]  # (P, n, H)
    d_w1 = (X[None, :, :, None] * d_b1[:, :, None, :]).reshape(-1, n, n_in * hidden)
    ones = torch.ones(params.shape[0], n, 1, dtype=params.dtype, device=params.device)
    return out, torch.cat([d_w1, d_b1, a, ones], dim=2)


def effective_parameters(
    jtj: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor
) -> torch.Tensor:
    """MacKay's effective number of parameters ``gamma = N - 2 alpha tr(H^-1)``.

    ``H = 2 beta J^T J + 2 alpha I`` is the Gauss-Newton Hessian of
    ``F = beta E_D + alpha E_W``; equivalently ``gamma = sum_i l_i / (l_i + alpha)`` over
    the eigenvalues ``l_i`` of ``beta J^T J``. It falls from ``rank(J^T J)`` towards 0 as
    ``alpha`` grows.

    Parameters
    ----------
    jtj : Tensor of shape (P, N, N)
        ``J^T J`` of each net.
    alpha, beta : Tensor of shape (P,)
        Weight-decay and data-fit coefficients (``alpha >= 0``, ``beta > 0``).

    Returns
    -------
    Tensor of shape (P,)
        ``gamma`` of each net.
    """
    # The eigenvalue form: no inverse to take, and exact where J^T J is singular
    # (fewer samples than weights) and alpha is small.
    lam = torch.linalg.eigvalsh(beta[:, None, None] * jtj)
    # eigenvalues at rounding level are zeros (numpy.linalg.matrix_rank's tolerance)
    tol = lam.amax(-1, keepdim=True) * lam.shape[-1] * torch.finfo(lam.dtype).eps
    share = torch.where(lam > tol, lam / (lam + alpha[:, None]), torch.zeros_like(lam))
    return share.sum(-1)


# --------------------------------------------------------------------------- training


@dataclass
class LMResult:
    """What :func:`train_nets` returns, one row (or list item) per net.

    Attributes
    ----------
    params : ndarray of shape (P, n_params)
        Final weights; with validation stopping, those of the best validation iteration.
    history : list of ndarray
        Training MSE (scaled units) before training, then after each accepted step.
    val_curve : ndarray of shape (P, max_iter + 1)
        Validation MSE after 0, 1, ... accepted steps (NaN without validation rows);
        after a net stops, its last value is carried to the end.
    n_iter : ndarray of int, shape (P,)
        Accepted steps of the returned weights.
    alpha, beta, gamma : ndarray of shape (P,)
        Final regularisation coefficients and effective number of parameters
        (``alpha = 0``, ``beta = 1``, ``gamma`` NaN without regularisation).
    """

    params: np.ndarray
    history: list[np.ndarray]
    val_curve: np.ndarray
    n_iter: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray


def train_nets(
    params: np.ndarray,
    X: torch.Tensor,
    y: torch.Tensor,
    train_mask: np.ndarray | None = None,
    val_mask: np.ndarray | None = None,
    *,
    hidden: int,
    activation: str,
    max_iter: int,
    regularization: str = "none",
    max_fail: int | None = None,
    goal: float = 0.0,
    max_step: float | None = None,
    mu: float = MU0,
) -> LMResult:
    """Levenberg-Marquardt training of ``P`` nets at once (``trainlm`` / ``trainbr``).

    See the module docstring for the step, the regularisation and the stopping rules.
    Each net stops on its own: after ``max_iter`` accepted steps, when its training MSE
    reaches ``goal``, when the gradient of its MSE falls below 1e-10, when ``mu``
    passes 1e10, or (``max_fail``) after ``max_fail`` iterations without a better
    validation MSE.

    Parameters
    ----------
    params : ndarray of shape (P, n_params)
        Starting points.
    X : Tensor of shape (n, n_in)
        Scaled inputs, float64.
    y : Tensor of shape (n,)
        Scaled targets, float64.
    train_mask : ndarray of bool, shape (P, n), optional
        Rows each net trains on (default: all).
    val_mask : ndarray of bool, shape (P, n), optional
        Rows each net is validated on (default: none).
    hidden, activation
        Net shape, as in :func:`forward_nets`.
    max_iter : int
        Most accepted steps per net.
    regularization : {"none", "bayesian"}
        ``"bayesian"``: MacKay's evidence framework (``trainbr``).
    max_fail : int or None
        Validation stopping: stop after this many iterations in a row without a better
        validation MSE and return the best validation weights. None: train on and
        return the last weights (the validation curve is still recorded).
    goal : float
        Training MSE at which a net stops.
    max_step : float or None
        Longest step (Euclidean norm); None: unbounded.
    mu : float
        Initial damping.

    Returns
    -------
    LMResult
    """
    with single_threaded():  # tiny tensors: threads cost more than they save
        return _train_nets(
            params,
            X,
            y,
            train_mask,
            val_mask,
            hidden=hidden,
            activation=activation,
            max_iter=max_iter,
            regularization=regularization,
            max_fail=max_fail,
            goal=goal,
            max_step=max_step,
            mu=mu,
        )


def _train_nets(
    params: np.ndarray,
    X: torch.Tensor,
    y: torch.Tensor,
    train_mask: np.ndarray | None,
    val_mask: np.ndarray | None,
    *,
    hidden: int,
    activation: str,
    max_iter: int,
    regularization: str,
    max_fail: int | None,
    goal: float,
    max_step: float | None,
    mu: float,
) -> LMResult:
    device = X.device
    w = torch.as_tensor(np.atleast_2d(params), dtype=_DTYPE, device=device).clone()
    n_nets, n_params = w.shape
    n = X.shape[0]
    tm = torch.ones(n_nets, n, dtype=_DTYPE, device=device)
    if train_mask is not None:
        tm = torch.as_tensor(train_mask, dtype=_DTYPE, device=device)
    vm = torch.zeros(n_nets, n, dtype=_DTYPE, device=device)
    if val_mask is not None:
        vm = torch.as_tensor(val_mask, dtype=_DTYPE, device=device)
    n_train = tm.sum(1).clamp(min=1.0)
    n_val = vm.sum(1)
    has_val = n_val > 0
    bayes = regularization == "bayesian"
    eye = torch.eye(n_params, dtype=_DTYPE, device=device)

    def scores(q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = forward_nets(q, X, hidden=hidden, activation=activation)
        err2 = (out - y) ** 2
        return (tm * err2).sum(1), (q * q).sum(1), (vm * err2).sum(1) / n_val.clamp(min=1.0)

    with torch.no_grad():
        sse, ssw, val = scores(w)
    alpha = torch.zeros(n_nets, dtype=_DTYPE, device=device)
    beta = torch.ones(n_nets, dtype=_DTYPE, device=device)
    gamma = torch.full((n_nets,), float("nan"), dtype=_DTYPE, device=device)
    if bayes:
        gamma = torch.minimum(torch.full_like(n_train, float(n_params)), n_train / 2)
        alpha, beta = _evidence(gamma, sse, ssw, n_train)
    mus = torch.full((n_nets,), float(mu), dtype=_DTYPE, device=device)
    active = torch.ones(n_nets, dtype=torch.bool, device=device)
    best_w, best_val = w.clone(), torch.where(has_val, val, torch.inf)
    best_k = torch.zeros(n_nets, dtype=torch.long, device=device)
    fails = torch.zeros(n_nets, dtype=torch.long, device=device)
    k_now = torch.zeros(n_nets, dtype=torch.long, device=device)
    mse0 = (sse / n_train).cpu().numpy()
    history: list[list[float]] = [[float(v)] for v in mse0]
    curve = np.full((n_nets, max_iter + 1), np.nan)
    curve[:, 0] = torch.where(has_val, val, torch.nan).cpu().numpy()

    for k in range(1, max_iter + 1):
        active &= torch.isfinite(sse) & (sse / n_train > goal)
        if not bool(active.any()):
            curve[:, k:] = curve[:, k - 1 : k]
            break
        with torch.no_grad():
            out, jac = net_jacobian(w, X, hidden=hidden, activation=activation)
            jac = jac * tm[:, :, None]
            res = (out - y) * tm
            jtj = jac.transpose(1, 2) @ jac
            jtr = (jac.transpose(1, 2) @ res[:, :, None])[:, :, 0]
            grad = 2.0 * (beta[:, None] * jtr + alpha[:, None] * w)
            active &= torch.linalg.vector_norm(grad / n_train[:, None], dim=1) >= _MIN_GRAD
            rhs = beta[:, None] * jtr + alpha[:, None] * w
            obj = beta * sse + alpha * ssw
            pending, accepted = active.clone(), torch.zeros_like(active)
            while bool(pending.any()):
                lhs = beta[:, None, None] * jtj + (mus + alpha)[:, None, None] * eye
                chol, info = torch.linalg.cholesky_ex(lhs)
                solved = info == 0
                delta = -torch.cholesky_solve(rhs[:, :, None], chol)[:, :, 0]
                delta = torch.where(solved[:, None], delta, torch.zeros_like(delta))
                if max_step is not None:  # a longer step fails: more damping, shorter step
                    solved &= torch.linalg.vector_norm(delta, dim=1) <= max_step
                w_new = w + delta
                sse_new, ssw_new, val_new = scores(w_new)
                obj_new = beta * sse_new + alpha * ssw_new
                good = pending & solved & torch.isfinite(obj_new) & (obj_new < obj)
                w = torch.where(good[:, None], w_new, w)
                sse = torch.where(good, sse_new, sse)
                ssw = torch.where(good, ssw_new, ssw)
                val = torch.where(good, val_new, val)
                accepted |= good
                mus = torch.where(good, (mus * _MU_DEC).clamp(min=_MU_MIN), mus)
                failed = pending & ~good
                mus = torch.where(failed, mus * _MU_INC, mus)
                pending = failed & (mus <= _MU_MAX)
            active &= accepted
            if bayes and bool(accepted.any()):
                # the Hessian at the start of the step, as trainbr does
                g_new = effective_parameters(jtj, alpha, beta)
                gamma = torch.where(accepted, g_new, gamma)
                a_new, b_new = _evidence(gamma, sse, ssw, n_train)
                alpha = torch.where(accepted, a_new, alpha)
                beta = torch.where(accepted, b_new, beta)
            k_now = torch.where(accepted, k_now + 1, k_now)
            better = accepted & has_val & (val < best_val)
            best_w = torch.where(better[:, None], w, best_w)
            best_val = torch.where(better, val, best_val)
            best_k = torch.where(better, k_now, best_k)
            fails = torch.where(better, 0, torch.where(accepted & has_val, fails + 1, fails))
            if max_fail is not None:
                active &= ~(has_val & (fails >= max_fail))
        mse = (sse / n_train).cpu().numpy()
        for p in np.flatnonzero(accepted.cpu().numpy()):
            history[p].append(float(mse[p]))
        curve[:, k] = torch.where(has_val, val, torch.nan).cpu().numpy()

    restore = has_val if max_fail is not None else torch.zeros_like(has_val)
    final = torch.where(restore[:, None], best_w, w)
    return LMResult(
        params=final.cpu().numpy(),
        history=[np.asarray(h) for h in history],
        val_curve=curve,
        n_iter=torch.where(restore, best_k, k_now).cpu().numpy().astype(int),
        alpha=alpha.cpu().numpy(),
        beta=beta.cpu().numpy(),
        gamma=gamma.cpu().numpy(),
    )


def _evidence(
    gamma: torch.Tensor, sse: torch.Tensor, ssw: torch.Tensor, n_train: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``alpha = gamma / (2 E_W)``, ``beta = (n - gamma) / (2 E_D)``, with floors."""
    alpha = gamma / (2.0 * ssw.clamp(min=_MIN_SSE))
    beta = (n_train - gamma).clamp(min=_MIN_DOF) / (2.0 * sse.clamp(min=_MIN_SSE))
    return alpha, beta


def levenberg_marquardt(
    params: np.ndarray,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    hidden: int,
    activation: str,
    max_iter: int,
    goal: float = 0.0,
    regularization: str = "none",
    max_step: float | None = None,
) -> tuple[np.ndarray, list[float]]:
    """Levenberg-Marquardt (MATLAB ``trainlm``) of one net on all rows, in float64.

    One net of :func:`geohm.models.lm.train_nets` (see there for the step and the
    stopping rules).

    Returns
    -------
    params : ndarray of shape (n_params,)
        Refined parameters.
    history : list of float
        MSE at the start, then after each accepted step.
    """
    res = train_nets(
        np.asarray(params, dtype=float)[None],
        X,
        y,
        hidden=hidden,
        activation=activation,
        max_iter=max_iter,
        goal=goal,
        regularization=regularization,
        max_step=max_step,
    )
    return res.params[0], res.history[0].tolist()

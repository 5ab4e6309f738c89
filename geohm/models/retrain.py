"""Retraining of transferred nets: W_T = beta * W_S* + D by gradient descent, in one batch.

The inner loop of :class:`geohm.models.transfer.TransferGABPRegressor` (see its module
docstring for how equation 1 of seed 002 is read): every member, beta0 and inner-CV fold
is one net of a batch, retrained together with snapshots for choosing the length.
"""

from __future__ import annotations

import numpy as np
import torch

from geohm.models.lm import forward_nets

_DTYPE = torch.float64

_MAX_GRAD_NORM = 1.0


def retrain_transfer(
    source_weights: np.ndarray,
    beta0: np.ndarray,
    X: torch.Tensor,
    y: torch.Tensor,
    masks: np.ndarray,
    *,
    hidden: int,
    activation: str,
    epochs: int,
    learning_rate: float,
    momentum: float,
    snapshot_every: int = 0,
    max_grad_norm: float | None = _MAX_GRAD_NORM,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Retrain ``M`` transferred nets at once by full-batch gradient descent.

    Net ``m`` has weights ``W_T[m] = beta[m] * W_S* + D[m]`` with ``beta[m]`` starting
    at ``beta0[m]`` and ``D[m]`` at 0, and minimises the MSE over the rows where
    ``masks[m]`` is true. The update is gradient descent with heavy-ball momentum,
    ``v <- momentum * v - learning_rate * g``, ``theta <- theta + v``, on
    ``theta = (beta, D)``; ``momentum = 0`` is plain gradient descent. The nets are
    independent: one batched forward/backward pass trains them all.

    A change ``d beta`` moves ``W_T`` by ``d beta * W_S*``, so a source net with large
    weights (members of a source ensemble reach 10-20) makes the step along ``W_S*``
    ``|W_S*|^2`` times that of the same gradient on ``D`` and the descent diverges. Each
    net's step is therefore clipped (Pascanu et al. 2013) to a gradient of norm
    ``max_grad_norm`` measured in weight space, ``sqrt(|W_S*|^2 g_beta^2 + |g_D|^2)``.

    Parameters
    ----------
    source_weights : ndarray of shape (n_params,) or (M, n_params)
        ``W_S*``: one for all nets, or one per net (an ensemble's members).
    beta0 : ndarray of shape (M,)
        Start of ``beta`` for each net.
    X : Tensor of shape (n, n_in)
        Scaled inputs.
    y : Tensor of shape (n,)
        Scaled targets.
    masks : ndarray of bool, shape (M, n)
        Training rows of each net.
    hidden, activation
        Net shape, as in :func:`geohm.models.gabp.forward_nets`.
    epochs : int
        Gradient steps.
    learning_rate, momentum : float
        Step size and momentum.
    snapshot_every : int
        Keep the weights of every net every this many steps (0: only at the end).
    max_grad_norm : float or None
        Longest gradient (weight-space norm, scaled units) of a step; None: unclipped.

    Returns
    -------
    beta : ndarray of shape (M,)
        Final ``beta`` of each net.
    weights : ndarray of shape (M, n_params)
        Final ``W_T`` of each net.
    history : ndarray of shape (epochs + 1, M)
        Training MSE (scaled units) of each net before each step and at the end.
    snapshots : ndarray of shape (n_snapshots, M, n_params)
        ``W_T`` after 0, ``snapshot_every``, 2 ``snapshot_every``, ... steps (the last
        one is always after ``epochs`` steps).
    beta_snapshots : ndarray of shape (n_snapshots, M)
        ``beta`` at the same steps.
    """
    device = X.device
    ws = torch.as_tensor(np.atleast_2d(source_weights), dtype=_DTYPE, device=device)
    ws_norm2 = (ws**2).sum(dim=1).clamp(min=1e-12)
    beta = torch.tensor(beta0, dtype=_DTYPE, device=device, requires_grad=True)
    delta = torch.zeros(len(beta0), ws.shape[1], dtype=_DTYPE, device=device, requires_grad=True)
    m = torch.as_tensor(masks, dtype=_DTYPE, device=device)
    counts = m.sum(dim=1).clamp(min=1.0)
    v_beta, v_delta = torch.zeros_like(beta), torch.zeros_like(delta)
    history = []
    snapshots = []
    beta_snapshots = []

    def losses() -> torch.Tensor:
        w = beta[:, None] * ws + delta
        out = forward_nets(w, X, hidden=hidden, activation=activation)
        return (m * (out - y) ** 2).sum(dim=1) / counts

    for epoch in range(epochs):
        if snapshot_every and epoch % snapshot_every == 0:
            with torch.no_grad():
                snapshots.append((beta[:, None] * ws + delta).cpu().numpy())
                beta_snapshots.append(beta.detach().cpu().numpy().copy())
        loss = losses()
        history.append(loss.detach().cpu().numpy())
        g_beta, g_delta = torch.autograd.grad(loss.sum(), (beta, delta))
        with torch.no_grad():
            if max_grad_norm is not None:
                norm = torch.sqrt(g_beta**2 * ws_norm2 + (g_delta**2).sum(dim=1))
                clip = (max_grad_norm / norm.clamp(min=max_grad_norm)).nan_to_num(0.0)
                g_beta, g_delta = g_beta * clip, g_delta * clip[:, None]
            v_beta.mul_(momentum).sub_(learning_rate * g_beta)
            v_delta.mul_(momentum).sub_(learning_rate * g_delta)
            beta.add_(v_beta)
            delta.add_(v_delta)
    with torch.no_grad():
        history.append(losses().cpu().numpy())
        weights = beta[:, None] * ws + delta
    snapshots.append(weights.cpu().numpy())
    beta_snapshots.append(beta.detach().cpu().numpy().copy())
    return (
        beta.detach().cpu().numpy(),
        weights.cpu().numpy(),
        np.asarray(history),
        np.asarray(snapshots),
        np.asarray(beta_snapshots),
    )

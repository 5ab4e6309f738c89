"""The genetic algorithm of GA-BP: initial weights and thresholds for small nets.

Yang et al. (2023, *Sustainability* 15:11765, Table 4) start Levenberg-Marquardt from
the best individual of a genetic algorithm (population 30, at most 50 generations,
crossover probability 0.3, mutation probability 0.1) instead of random weights.
:func:`genetic_search` runs many such GAs at once (ensemble members, inner folds).
"""

from __future__ import annotations

import numpy as np
import torch

from geohm.models.lm import forward_nets, n_net_params

__all__ = ["genetic_search"]

_DTYPE = torch.float64
_TOURNAMENT_SIZE = 2  # binary tournament
_MUTATION_SIGMA0 = 0.5  # std of the Gaussian mutation at generation 0 ...
_MUTATION_SIGMA_MIN = 0.05  # ... decaying linearly to this at the last generation


def genetic_search(
    X: torch.Tensor,
    y: torch.Tensor,
    masks: np.ndarray,
    rngs: list[np.random.RandomState],
    *,
    hidden: int,
    activation: str,
    population: int,
    generations: int,
    crossover_prob: float,
    mutation_prob: float,
    goal: float,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Search net parameters with ``G`` independent real-coded genetic algorithms.

    GA ``g`` scores its individuals on the rows where ``masks[g]`` is true and draws
    every random number from ``rngs[g]`` (numpy), in the same order whatever the other
    GAs do; torch only evaluates fitness, for all GAs' populations in one batched
    forward pass (:func:`~geohm.models.lm.forward_nets`).

    - Initial population: uniform in [-1, 1].
    - Fitness: training MSE of each individual (lower is better).
    - Selection: binary tournament (two random individuals, the fitter one wins).
    - Crossover: parents are paired; with probability ``crossover_prob`` a pair is
      replaced by two arithmetic blends ``a*p1 + (1-a)*p2`` and ``(1-a)*p1 + a*p2``,
      ``a ~ U(0, 1)`` per pair.
    - Mutation: each gene, with probability ``mutation_prob``, gets Gaussian noise
      whose std decays linearly from 0.5 to 0.05 over the generations.
    - Elitism: the best individual so far replaces the worst child, so the best
      fitness never increases.
    - A GA stops once its best fitness is at or below ``goal``.

    Parameters
    ----------
    X : Tensor of shape (n, n_in)
        Scaled inputs.
    y : Tensor of shape (n,)
        Scaled targets.
    masks : ndarray of bool, shape (G, n)
        Training rows of each GA.
    rngs : list of numpy.random.RandomState
        One generator per GA.
    hidden, activation
        Net shape, as in :func:`~geohm.models.lm.forward_nets`.
    population, generations, crossover_prob, mutation_prob, goal
        As in :class:`GABPRegressor`.

    Returns
    -------
    best : ndarray of shape (G, n_params)
        Best individual of each GA.
    history : list of ndarray
        Per GA: best fitness of the initial population, then after each generation.
    """
    n_groups = len(rngs)
    n_params = n_net_params(X.shape[1], hidden)
    m = torch.as_tensor(masks, dtype=_DTYPE, device=X.device)
    counts = m.sum(dim=1).clamp(min=1.0)[:, None]

    def fitness(pop: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            p = torch.as_tensor(pop.reshape(-1, n_params), dtype=_DTYPE, device=X.device)
            out = forward_nets(p, X, hidden=hidden, activation=activation)
            err = (out.reshape(n_groups, population, -1) - y) ** 2
            mse = (m[:, None, :] * err).sum(dim=2) / counts
        return np.nan_to_num(mse.cpu().numpy(), nan=np.inf)

    pop = np.stack([r.uniform(-1.0, 1.0, size=(population, n_params)) for r in rngs])
    fit = fitness(pop)
    best = np.argmin(fit, axis=1)
    elite = pop[np.arange(n_groups), best].copy()
    elite_fit = fit[np.arange(n_groups), best].copy()
    history = [[float(f)] for f in elite_fit]
    n_pairs = population // 2
    for gen in range(generations):
        running = np.flatnonzero(elite_fit > goal)
        if running.size == 0:
            break
        children = pop.copy()
        frac = gen / max(generations - 1, 1)
        sigma = _MUTATION_SIGMA0 + (_MUTATION_SIGMA_MIN - _MUTATION_SIGMA0) * frac
        for g in running:
            rng, kids = rngs[g], children[g]
            # binary tournament selection
            contenders = rng.randint(population, size=(population, _TOURNAMENT_SIZE))
            winners = contenders[np.arange(population), np.argmin(fit[g][contenders], axis=1)]
            kids[:] = pop[g][winners]
            # arithmetic crossover on consecutive pairs
            a = rng.uniform(size=(n_pairs, 1))
            do_cross = rng.uniform(size=n_pairs) < crossover_prob
            p1, p2 = kids[0 : 2 * n_pairs : 2].copy(), kids[1 : 2 * n_pairs : 2].copy()
            kids[0 : 2 * n_pairs : 2] = np.where(do_cross[:, None], a * p1 + (1 - a) * p2, p1)
            kids[1 : 2 * n_pairs : 2] = np.where(do_cross[:, None], (1 - a) * p1 + a * p2, p2)
            # Gaussian mutation with a decaying step
            mutate = rng.uniform(size=kids.shape) < mutation_prob
            kids += mutate * rng.normal(0.0, sigma, size=kids.shape)
        new_fit = fitness(children)
        for g in running:
            # elitism: the best so far replaces the worst child
            worst = int(np.argmax(new_fit[g]))
            children[g][worst], new_fit[g][worst] = elite[g], elite_fit[g]
            pop[g], fit[g] = children[g], new_fit[g]
            b = int(np.argmin(fit[g]))
            elite[g], elite_fit[g] = pop[g][b].copy(), fit[g][b]
            history[g].append(float(elite_fit[g]))
    return elite, [np.asarray(h) for h in history]

"""Early warning: the probability that a well exceeds a limit within the horizon.

The LSTM ensemble gives, at each step ``h`` ahead, a Gaussian per member ``m``
(mean ``mu_mh``, standard deviation ``sigma_mh``, data units). The probability that the
concentration exceeds the limit ``S`` at step ``h`` is the mixture's,
``p_h = mean_m [1 - Phi((S - mu_mh) / sigma_mh)]``. The probability of exceeding it *at
least once* within the ``H`` steps needs the joint law of the steps, which the direct
forecast does not give: within a member the errors are taken as fully correlated from
step to step (a groundwater series moves slowly), so a member exceeds within the
horizon with its largest per-step probability, and ``p_within = mean_m max_h p_mh``.
That lies between ``max_h p_h`` and ``min(1, sum_h p_h)``, the bounds for any
correlation.

The warning level of a site follows from ``p_within`` and the two cut-offs of
``warning.levels`` (default 0.1 and 0.5): ``low`` below the first, ``medium`` up to the
second, ``high`` from it on (seed 000, section 4.2, reads the same three classes off a
risk index; here they are read off a probability).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

__all__ = ["LEVELS", "exceedance_probability", "warning_levels"]

#: Warning levels, lowest first.
LEVELS = ("low", "medium", "high")


def exceedance_probability(
    member_mean: np.ndarray, member_std: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step and within-horizon probabilities of exceeding ``threshold``.

    Parameters
    ----------
    member_mean, member_std : ndarray of shape (members, n, H)
        Each member's Gaussian (data units); a standard deviation of 0 gives 0 or 1.
    threshold : float
        The limit (data units).

    Returns
    -------
    p_step : ndarray of shape (n, H)
        Probability of exceeding at each step.
    p_within : ndarray of shape (n,)
        Probability of exceeding at least once within the ``H`` steps.

    Examples
    --------
    >>> mu = np.array([[[8.0, 10.0]]]); sd = np.array([[[1.0, 1.0]]])
    >>> p_step, p_within = exceedance_probability(mu, sd, 10.0)
    >>> p_step.round(3).tolist(), p_within.round(3).tolist()
    ([[0.023, 0.5]], [0.5])
    """
    mu = np.asarray(member_mean, dtype=float)
    sd = np.asarray(member_std, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (threshold - mu) / sd
    p_member = np.where(sd > 0, norm.sf(z), (mu > threshold).astype(float))
    return p_member.mean(axis=0), p_member.max(axis=2).mean(axis=0)


def warning_levels(p_within: np.ndarray, cuts: tuple[float, float]) -> np.ndarray:
    """The warning level (``low``, ``medium``, ``high``) of each probability.

    Parameters
    ----------
    p_within : ndarray
        Probabilities of exceeding within the horizon.
    cuts : tuple of float
        The two cut-offs: ``p < cuts[0]`` low, ``p < cuts[1]`` medium, else high.

    Returns
    -------
    ndarray of str

    Examples
    --------
    >>> warning_levels(np.array([0.05, 0.1, 0.7]), (0.1, 0.5)).tolist()
    ['low', 'medium', 'high']
    """
    idx = np.searchsorted(np.asarray(cuts), np.asarray(p_within), side="right")
    return np.asarray(LEVELS, dtype=object)[idx].astype(str)

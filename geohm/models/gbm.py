"""Gradient boosting (scikit-learn's histogram gradient boosting).

Boosted shallow trees fit the residual of the trees before them, which suits smooth
covariate gradients (distance to a source, elevation) better than a forest's averages.
scikit-learn's ``HistGradientBoostingRegressor`` is used as it is; geohm only sets
defaults for the 15-200 samples of a soil survey (its own defaults are tuned for
thousands of rows: leaves of at least 20 samples would leave stumps here). Intervals
come from conformal out-of-fold residuals (:mod:`geohm.models.uncertainty`).
"""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import HistGradientBoostingRegressor

__all__ = ["GBM_DEFAULTS", "gbm_regressor"]

#: geohm's defaults: small learning rate, small trees, leaves of >= 5 samples, an L2
#: penalty on leaf values, no early stopping (it would hold out samples we lack), and no
#: column treated as categorical.
GBM_DEFAULTS: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.05,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 5,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "categorical_features": None,  # categorical covariates arrive one-hot encoded
}


def gbm_regressor(
    params: dict[str, Any], *, random_state: int = 0
) -> HistGradientBoostingRegressor:
    """A seeded :class:`~sklearn.ensemble.HistGradientBoostingRegressor` with geohm's defaults.

    Parameters
    ----------
    params : dict
        Its keyword arguments (``max_iter``, ``learning_rate``, ...), over
        :data:`GBM_DEFAULTS`; checked against the estimator's own constraints by the
        registry before this is called.
    random_state : int
        Seed of the binning subsample and of any early-stopping split.

    Returns
    -------
    sklearn.ensemble.HistGradientBoostingRegressor
        Unfitted.
    """
    return HistGradientBoostingRegressor(**{**GBM_DEFAULTS, **params, "random_state": random_state})

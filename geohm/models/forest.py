"""Random forest regression (scikit-learn)."""

from __future__ import annotations

from typing import Any

from sklearn.ensemble import RandomForestRegressor

from geohm.errors import ConfigError

__all__ = ["forest_regressor"]

_DEFAULTS: dict[str, Any] = {"n_estimators": 200, "min_samples_leaf": 1, "n_jobs": -1}


def forest_regressor(params: dict[str, Any], *, random_state: int = 0) -> RandomForestRegressor:
    """A seeded :class:`~sklearn.ensemble.RandomForestRegressor` with geohm's defaults.

    Raises
    ------
    ConfigError
        A parameter that RandomForestRegressor does not take.
    """
    allowed = set(RandomForestRegressor().get_params())
    bad = sorted(set(params) - allowed)
    if bad:
        raise ConfigError(
            f"key 'model.params': random forest has no parameter {', '.join(map(repr, bad))}"
        )
    return RandomForestRegressor(**{**_DEFAULTS, **params, "random_state": random_state})

"""Regressors. Models see only ``X, y`` arrays: never xarray, paths or config."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

from geohm.errors import ConfigError

__all__ = ["make_regressor"]


def _checked(cls: type[BaseEstimator], name: str, params: dict[str, Any]) -> dict[str, Any]:
    allowed = set(cls().get_params())
    bad = sorted(set(params) - allowed)
    if bad:
        raise ConfigError(
            f"key 'model.params': model '{name}' has no parameter {', '.join(map(repr, bad))} "
            f"(it takes: {', '.join(sorted(allowed - {'random_state'}))})"
        )
    return params


def make_regressor(
    name: str, params: dict[str, Any] | None = None, *, random_state: int = 0
) -> Any:
    """Build an unfitted regressor by its config name.

    Parameters
    ----------
    name : {"rf", "ga-bp", "tr-ga-bp"}
        ``rf``: random forest (scikit-learn); ``ga-bp``: :class:`GABPRegressor`;
        ``tr-ga-bp``: :class:`TransferGABPRegressor` (its source net is given at fit).
    params : dict, optional
        Keyword arguments of the estimator (``n_estimators``, ``hidden``...).
    random_state : int
        Seed for every random step of the estimator.

    Raises
    ------
    ConfigError
        Unknown model name or parameter.
    """
    params = dict(params or {})
    if name == "rf":
        from geohm.models.forest import forest_regressor

        return forest_regressor(params, random_state=random_state)
    if name == "ga-bp":
        from geohm.models.gabp import GABPRegressor

        return GABPRegressor(**_checked(GABPRegressor, name, params), random_state=random_state)
    if name == "tr-ga-bp":
        from geohm.models.transfer import TransferGABPRegressor

        params.pop("source", None)
        return TransferGABPRegressor(
            **_checked(TransferGABPRegressor, name, params), random_state=random_state
        )
    raise ConfigError(f"key 'model.name': unknown model '{name}'")

"""Regressors. Models see only ``X, y`` arrays: never xarray, paths or config."""

from __future__ import annotations

from typing import Any

from sklearn.base import RegressorMixin

from geohm.errors import ConfigError

__all__ = ["make_regressor"]


def make_regressor(name: str, params: dict[str, Any] | None = None, *, random_state: int = 0
                   ) -> RegressorMixin:
    """Build an unfitted regressor by its config name.

    Parameters
    ----------
    name : {"rf"}
        ``rf``: random forest (scikit-learn).
    params : dict, optional
        Keyword arguments of the estimator (``n_estimators``...).
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
    raise ConfigError(f"key 'model.name': unknown model '{name}'")

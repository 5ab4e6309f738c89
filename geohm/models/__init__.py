"""Regressors. Models see only ``X, y`` arrays: never xarray, paths or config."""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

from geohm.errors import ConfigError

__all__ = ["COORDS", "make_regressor"]

#: Coordinate columns (map units) of the kriging models: the cube's ``x`` and ``y``.
COORDS: tuple[str, str] = ("x", "y")

#: A map pixel is an area, not the sample's point: at a sample's pixel the kriged value
#: keeps the nugget (measurement error and micro-scale variation) instead of copying the
#: sample, and its kriging variance is not zero. With a zero nugget both are the same.
_KRIGING_DEFAULTS: dict[str, Any] = {"exact_values": False}


def _checked(
    cls: type[BaseEstimator], name: str, params: dict[str, Any], *, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    allowed = set(cls._get_param_names()) | set(extra)
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
    name : {"rf", "ga-bp", "tr-ga-bp", "ok", "rk", "spectral-resnet"}
        ``rf``: random forest (scikit-learn); ``ga-bp``: :class:`GABPRegressor`;
        ``tr-ga-bp``: :class:`TransferGABPRegressor` (its source net is given at fit);
        ``ok``: :class:`OrdinaryKrigingRegressor` on the columns ``x`` and ``y``;
        ``rk``: :class:`RegressionKriging`, a base model (``params.base``, default
        ``rf``, with ``params.base_params``) plus ordinary kriging (``params.kriging``)
        of its out-of-fold residuals on ``x`` and ``y``; ``spectral-resnet``:
        :class:`SpectralResNetRegressor` (its ``params.preprocess`` steps are built by
        :func:`geohm.spectra.spectral_preprocessors`, not here).
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
    if name == "ok":
        from geohm.models.kriging import OrdinaryKrigingRegressor

        params = {**_KRIGING_DEFAULTS, **_checked(OrdinaryKrigingRegressor, name, params)}
        params.pop("coords", None)
        return OrdinaryKrigingRegressor(**params, coords=COORDS, random_state=random_state)
    if name == "rk":
        from geohm.models.kriging import OrdinaryKrigingRegressor, RegressionKriging

        _checked(RegressionKriging, name, params, extra=("base_params", "kriging"))
        base_name = str(params.pop("base", "rf"))
        if base_name in ("ok", "rk", "tr-ga-bp"):
            raise ConfigError(
                f"key 'model.params.base': '{base_name}' cannot be the base of regression "
                "kriging; use rf or ga-bp"
            )
        base = make_regressor(base_name, params.pop("base_params", None), random_state=random_state)
        kriging = {
            **_KRIGING_DEFAULTS,
            **_checked(OrdinaryKrigingRegressor, "ok", dict(params.pop("kriging", None) or {})),
        }
        kriging.pop("coords", None)
        rk = _checked(RegressionKriging, name, params, extra=("base_params", "kriging"))
        for key in ("coords", "base", "kriging_params", "random_state"):
            rk.pop(key, None)
        return RegressionKriging(
            base, **rk, kriging_params=kriging, coords=COORDS, random_state=random_state
        )
    if name == "spectral-resnet":
        from geohm.models.spectral import SpectralResNetRegressor

        params.pop("preprocess", None)  # steps before the net: geohm.spectra.spectral_preprocessors
        _checked(SpectralResNetRegressor, name, params)
        params.pop("random_state", None)
        if "freeze" in params and isinstance(params["freeze"], list):
            params["freeze"] = tuple(params["freeze"])
        return SpectralResNetRegressor(**params, random_state=random_state)
    raise ConfigError(f"key 'model.name': unknown model '{name}'")

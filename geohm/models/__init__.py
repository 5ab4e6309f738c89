"""Regressors. Models see only ``X, y`` arrays: never xarray, paths or config."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import (
    InvalidParameterError,
    validate_parameter_constraints,
)

from geohm.errors import ConfigError

__all__ = ["COORDS", "check_model_params", "make_regressor"]

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


# --------------------------------------------------------------------------- config checks

#: Keys of ``model.params`` that no model takes from the config, and why.
_RESERVED: dict[str, str] = {
    "random_state": "the seed of every model is 'validation.seed'; set that instead",
}


def _must(exc: Exception) -> str:
    """``must be ...`` from scikit-learn's InvalidParameterError message."""
    found = re.search(r"\bmust be (.*?)\. Got .* instead\.?$", str(exc), flags=re.S)
    return f"must be {found.group(1)}" if found else str(exc)


def _check(
    cls: type[BaseEstimator],
    model: str,
    params: dict[str, Any],
    where: str,
    *,
    extra: tuple[str, ...] = (),
    reserved: dict[str, str] | None = None,
    cross: Callable[[Any], Any] | None = None,
) -> None:
    """Check ``params`` (the config's ``where`` mapping) against ``cls``.

    Keys must be parameters of ``cls`` (or ``extra``, checked by the caller) and not
    ``reserved``; values must meet ``cls._parameter_constraints`` (scikit-learn's
    parameter validation, one key at a time so that the message names it); then
    ``cross(estimator)`` runs the estimator's own checks of parameters that depend on
    each other (a ``ValueError`` names the first key its message mentions).
    """
    reserved = {**_RESERVED, **(reserved or {})}
    allowed = (set(cls._get_param_names()) - set(reserved)) | set(extra)
    for key in params:
        if key in reserved:
            raise ConfigError(f"{where}.{key}: {reserved[key]}")
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"{where}.{key}: model '{model}' has no parameter '{key}'{tip} "
                f"(it takes: {', '.join(sorted(allowed))})"
            )
    own = {k: v for k, v in params.items() if k not in extra}
    constraints: dict[str, Any] = getattr(cls, "_parameter_constraints", {})
    for key, value in own.items():
        if key not in constraints:
            continue
        try:
            validate_parameter_constraints(
                {key: constraints[key]}, {key: value}, caller_name=cls.__name__
            )
        except InvalidParameterError as exc:
            raise ConfigError(
                f"{where}.{key}: {value!r} is invalid for model '{model}' ({_must(exc)}); "
                "fix the scene config"
            ) from None
    if cross is None:
        return
    try:
        cross(cls(**own))
    except (ValueError, TypeError) as exc:  # a list of strings where numbers go, ...
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        named = [k for k in own if re.search(rf"\b{re.escape(k)}\b", msg)]
        key = f"{where}.{named[0]}" if named else where
        raise ConfigError(f"{key}: {msg} (model '{model}'); fix the scene config") from None


def _mapping(value: Any, where: str, model: str, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{where}: {value!r} is invalid for model '{model}' (must be a mapping of "
            f"{what}); fix the scene config"
        )
    return value


def check_model_params(
    name: str, params: dict[str, Any] | None, *, where: str = "model.params"
) -> None:
    """Check the ``model.params`` of model ``name`` without building or fitting anything.

    Every key must be a parameter of the model's estimator, and every value must meet
    the estimator's own parameter constraints (``_parameter_constraints``, checked by
    scikit-learn's parameter validation) and the checks its ``fit`` makes of parameters
    that depend on each other. Nested parameters are checked the same way: ``rk``'s
    ``base_params`` (against its ``base``) and ``kriging`` (against ``ok``),
    ``tr-ga-bp``'s ``source_params`` (against ``ga-bp``). ``spectral-resnet``'s
    ``preprocess`` steps are not a model's: :func:`geohm.training.check_model_config`
    checks them, and runs this, before any input is read.

    Parameters
    ----------
    name : str
        A model name of the config (``rf``, ``ga-bp``, ..., ``knn-classifier``).
    params : dict or None
        Its ``model.params``.
    where : str
        The key path of ``params`` in messages.

    Raises
    ------
    ConfigError
        One line naming the key (``model.params.<key>``, or
        ``model.params.base_params.<key>`` ...), the value and what it must be.

    Examples
    --------
    >>> check_model_params("rf", {"n_estimators": 100})
    >>> check_model_params("rf", {"n_estimators": -5})
    Traceback (most recent call last):
    ...
    geohm.errors.ConfigError: model.params.n_estimators: -5 is invalid for model 'rf' (must be an int in the range [1, inf)); fix the scene config
    """  # noqa: E501
    params = _mapping(params, where, name, "parameters")
    if name.endswith("-classifier"):
        if params:
            raise ConfigError(
                f"{where}.{next(iter(params))}: model '{name}' takes no parameters (it tunes "
                f"its own by grid search); remove '{where}'"
            )
        return
    if name == "rf":
        from sklearn.ensemble import RandomForestRegressor

        _check(RandomForestRegressor, name, params, where)
    elif name == "ga-bp":
        from geohm.models.gabp import GABPRegressor

        _check(GABPRegressor, name, params, where, cross=lambda m: m._check_params())
    elif name == "tr-ga-bp":
        from geohm.models.gabp import GABPRegressor
        from geohm.models.transfer import TransferGABPRegressor

        _check(
            TransferGABPRegressor,
            name,
            params,
            where,
            reserved={
                "source": "the source year is the scene's 'source:' block (its imagery and "
                "samples); the source net's parameters are 'source_params'"
            },
            cross=lambda m: m._check_params(),
        )
        _check(
            GABPRegressor,
            "ga-bp",
            _mapping(
                params.get("source_params"), f"{where}.source_params", name, "ga-bp parameters"
            ),
            f"{where}.source_params",
            cross=lambda m: m._check_params(),
        )
    elif name == "ok":
        _check_kriging(name, params, where)
    elif name == "rk":
        from geohm.models.kriging import RegressionKriging

        base = params.get("base", "rf")
        if base not in ("rf", "ga-bp"):
            raise ConfigError(
                f"{where}.base: {base!r} cannot be the base of regression kriging; use rf or ga-bp"
            )
        _check(
            RegressionKriging,
            name,
            params,
            where,
            extra=("base", "base_params", "kriging"),
            reserved={
                "coords": "regression kriging uses the pixel-centre coordinates x and y; "
                f"remove {where}.coords",
                "kriging_params": f"the kriging parameters are '{where}.kriging'",
            },
        )
        check_model_params(
            base,
            _mapping(params.get("base_params"), f"{where}.base_params", name, f"{base} parameters"),
            where=f"{where}.base_params",
        )
        _check_kriging(
            "ok",
            _mapping(params.get("kriging"), f"{where}.kriging", name, "ok parameters"),
            f"{where}.kriging",
        )
    elif name == "spectral-resnet":
        from geohm.models.spectral import SpectralResNetRegressor

        # 'preprocess' builds steps before the net (geohm.spectra, arrays of spectra, not
        # a model): geohm.training.check_model_config checks it.
        _check(
            SpectralResNetRegressor,
            name,
            {k: v for k, v in params.items() if k != "preprocess"},
            where,
            cross=lambda m: m._check_params(tuple(m.freeze)),
        )
    else:
        raise ConfigError(f"key 'model.name': unknown model '{name}'")


def _check_kriging(model: str, params: dict[str, Any], where: str) -> None:
    from geohm.models.kriging import OrdinaryKrigingRegressor

    _check(
        OrdinaryKrigingRegressor,
        model,
        {**params},
        where,
        reserved={
            "coords": f"kriging uses the pixel-centre coordinates x and y; remove {where}.coords"
        },
        cross=lambda m: m._check_params(),
    )

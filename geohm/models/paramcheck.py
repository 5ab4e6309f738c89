"""Parameter checks of the models, before anything is built or fitted (config time)."""

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

# --------------------------------------------------------------------------- checks

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


def _check_rf(params: dict[str, Any], where: str) -> None:
    from sklearn.ensemble import RandomForestRegressor

    _check(RandomForestRegressor, "rf", params, where)


def _check_gbm(params: dict[str, Any], where: str) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    _check(
        HistGradientBoostingRegressor,
        "gbm",
        params,
        where,
        reserved={
            # They name columns by position, and the columns are known only after factor
            # screening; categorical covariates are one-hot encoded before any model.
            key: f"gbm's columns are chosen by factor screening; remove {where}.{key}"
            for key in ("categorical_features", "monotonic_cst", "interaction_cst")
        },
    )
    # model.geohm loads only what geohm's allowlist knows: the squared-error loss, and
    # early stopping scored on that loss (scoring None would mean R2 through a scorer
    # object that cannot be saved).
    for key, allowed in (("loss", "squared_error"), ("scoring", "loss")):
        if key in params and params[key] != allowed:
            raise ConfigError(
                f"{where}.{key}: {params[key]!r} is not supported for model 'gbm' (geohm "
                f"saves and reloads gbm with {key} {allowed!r}); remove {where}.{key}"
            )


def _check_gabp(params: dict[str, Any], where: str) -> None:
    from geohm.models.gabp import GABPRegressor

    _check(GABPRegressor, "ga-bp", params, where, cross=lambda m: m._check_params())


def _check_ok(params: dict[str, Any], where: str) -> None:
    _check_kriging("ok", params, where)


def _check_spectral(params: dict[str, Any], where: str) -> None:
    from geohm.models.spectral import SpectralResNetRegressor

    # 'preprocess' builds steps before the net (geohm.spectra, arrays of spectra, not
    # a model): geohm.training.check_model_config checks it.
    _check(
        SpectralResNetRegressor,
        "spectral-resnet",
        {k: v for k, v in params.items() if k != "preprocess"},
        where,
        cross=lambda m: m._check_params(tuple(m.freeze)),
    )


def _classifier_check(name: str) -> Callable[[dict[str, Any], str], None]:
    def check(params: dict[str, Any], where: str) -> None:
        if params:
            raise ConfigError(
                f"{where}.{next(iter(params))}: model '{name}' takes no parameters (it tunes "
                f"its own by grid search); remove '{where}'"
            )

    return check

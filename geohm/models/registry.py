"""The model registry: one entry per ``model.name``, and nothing else knows the names.

An entry says how to build the estimator from ``model.params`` (with the estimator's own
parameter validation) and what the rest of geohm needs to know about it: which inputs it
takes, whether it needs a ``source:`` year, keeps coordinates unscaled, is a classifier,
takes factor screening, which predictive distribution its uncertainty map comes from.
Training, prediction, reporting and the config ask the entry (:func:`model_entry`),
never compare names. Adding a model is one entry here plus its estimator file.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.base import BaseEstimator

from geohm.errors import ConfigError
from geohm.models.entry import ModelEntry
from geohm.models.paramcheck import (
    _check,
    _check_gabp,
    _check_gbm,
    _check_kriging,
    _check_ok,
    _check_rf,
    _check_spectral,
    _classifier_check,
    _mapping,
)

__all__ = [
    "CANDIDATES",
    "COORDS",
    "MODELS",
    "STACKED",
    "AutoSettings",
    "Candidate",
    "ModelEntry",
    "auto_settings",
    "check_model_params",
    "make_regressor",
    "model_entry",
    "model_names",
]

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


# --------------------------------------------------------------------------- builders


def _build_rf(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.forest import forest_regressor

    return forest_regressor(params, random_state=random_state)


def _build_gbm(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.gbm import gbm_regressor

    return gbm_regressor(params, random_state=random_state)


def _build_gabp(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.gabp import GABPRegressor

    return GABPRegressor(**_checked(GABPRegressor, "ga-bp", params), random_state=random_state)


def _build_trgabp(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.transfer import TransferGABPRegressor

    params = dict(params)
    params.pop("source", None)
    return TransferGABPRegressor(
        **_checked(TransferGABPRegressor, "tr-ga-bp", params), random_state=random_state
    )


def _build_ok(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.kriging import OrdinaryKrigingRegressor

    params = {**_KRIGING_DEFAULTS, **_checked(OrdinaryKrigingRegressor, "ok", dict(params))}
    params.pop("coords", None)
    return OrdinaryKrigingRegressor(**params, coords=COORDS, random_state=random_state)


def _build_rk(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.kriging import OrdinaryKrigingRegressor, RegressionKriging

    params = dict(params)
    _checked(RegressionKriging, "rk", params, extra=("base_params", "kriging"))
    base_name = str(params.pop("base", "rf"))
    if not model_entry(base_name).rk_base:
        raise ConfigError(
            f"key 'model.params.base': '{base_name}' cannot be the base of regression "
            f"kriging; use {' or '.join(n for n, e in MODELS.items() if e.rk_base)}"
        )
    base = make_regressor(base_name, params.pop("base_params", None), random_state=random_state)
    kriging = {
        **_KRIGING_DEFAULTS,
        **_checked(OrdinaryKrigingRegressor, "ok", dict(params.pop("kriging", None) or {})),
    }
    kriging.pop("coords", None)
    rk = _checked(RegressionKriging, "rk", params, extra=("base_params", "kriging"))
    for key in ("coords", "base", "kriging_params", "random_state"):
        rk.pop(key, None)
    return RegressionKriging(
        base, **rk, kriging_params=kriging, coords=COORDS, random_state=random_state
    )


def _build_patch_cnn(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.patchcnn import build

    return build(params, random_state)


def _check_patch_cnn(params: dict[str, Any], where: str) -> None:
    from geohm.models.patchcnn import check_params

    check_params(params, where)


def _build_spectral(params: dict[str, Any], random_state: int) -> Any:
    from geohm.models.spectral import SpectralResNetRegressor

    params = dict(params)
    params.pop("preprocess", None)  # steps before the net: geohm.spectra.spectral_preprocessors
    _checked(SpectralResNetRegressor, "spectral-resnet", params)
    params.pop("random_state", None)
    if "freeze" in params and isinstance(params["freeze"], list):
        params["freeze"] = tuple(params["freeze"])
    return SpectralResNetRegressor(**params, random_state=random_state)


def _classifier_builder(name: str) -> Callable[[dict[str, Any], int], Any]:
    def build(params: dict[str, Any], random_state: int) -> Any:
        from geohm.models.classify import make_classifier

        return make_classifier(name, random_state=random_state)

    return build


def _build_auto(params: dict[str, Any], random_state: int) -> Any:
    raise ConfigError(
        "model 'auto' is not one estimator: geohm.training scores its candidates and fits "
        "the chosen one (see geohm.models.registry.auto_settings)"
    )


def _check_trgabp(params: dict[str, Any], where: str) -> None:
    from geohm.models.transfer import TransferGABPRegressor

    _check(
        TransferGABPRegressor,
        "tr-ga-bp",
        params,
        where,
        reserved={
            "source": "the source year is the scene's 'source:' block (its imagery and "
            "samples); the source net's parameters are 'source_params'"
        },
        cross=lambda m: m._check_params(),
    )
    source = MODELS["tr-ga-bp"].source_model
    assert source is not None
    check_model_params(
        source,
        _mapping(
            params.get("source_params"),
            f"{where}.source_params",
            "tr-ga-bp",
            f"{source} parameters",
        ),
        where=f"{where}.source_params",
    )


def _check_rk(params: dict[str, Any], where: str) -> None:
    from geohm.models.kriging import RegressionKriging

    base = params.get("base", "rf")
    if not isinstance(base, str) or base not in MODELS or not MODELS[base].rk_base:
        raise ConfigError(
            f"{where}.base: {base!r} cannot be the base of regression kriging; use "
            f"{' or '.join(n for n, e in MODELS.items() if e.rk_base)}"
        )
    _check(
        RegressionKriging,
        "rk",
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
        _mapping(params.get("base_params"), f"{where}.base_params", "rk", f"{base} parameters"),
        where=f"{where}.base_params",
    )
    _check_kriging(
        "ok",
        _mapping(params.get("kriging"), f"{where}.kriging", "rk", "ok parameters"),
        f"{where}.kriging",
    )


def _check_auto(params: dict[str, Any], where: str) -> None:
    """``auto``'s ``candidates`` (names or ``{name: params}``), ``max_minutes``, ``stack``."""
    for key in params:
        if key not in _AUTO_DEFAULTS:
            hint = difflib.get_close_matches(str(key), sorted(_AUTO_DEFAULTS), n=1)
            tip = f"; did you mean '{hint[0]}'?" if hint else ""
            raise ConfigError(
                f"{where}.{key}: model 'auto' has no parameter '{key}'{tip} (it takes: "
                f"{', '.join(_AUTO_DEFAULTS)})"
            )
    minutes = params.get("max_minutes", _AUTO_DEFAULTS["max_minutes"])
    if (
        isinstance(minutes, bool)
        or not isinstance(minutes, int | float)
        or not 0 < minutes < float("inf")
    ):
        raise ConfigError(
            f"{where}.max_minutes: {minutes!r} is invalid for model 'auto' (must be a "
            "positive number of minutes); fix the scene config"
        )
    if not isinstance(params.get("stack", True), bool):
        raise ConfigError(
            f"{where}.stack: {params['stack']!r} is invalid for model 'auto' (must be true "
            "or false); fix the scene config"
        )
    _auto_candidates(params.get("candidates", list(CANDIDATES)), f"{where}.candidates")


def _auto_candidates(value: Any, where: str) -> tuple[tuple[Candidate, dict[str, Any]], ...]:
    """The checked candidate list of ``auto``: each a name or a one-key ``{name: params}``."""
    valid = ", ".join(CANDIDATES)
    if not isinstance(value, list) or not value:
        raise ConfigError(
            f"{where}: {value!r} is invalid for model 'auto' (must be a non-empty list of "
            f"candidates from: {valid}); fix the scene config"
        )
    out: list[tuple[Candidate, dict[str, Any]]] = []
    for item in value:
        name, params = item, None
        if isinstance(item, dict) and len(item) == 1:
            name, params = next(iter(item.items()))
        if not isinstance(name, str) or name not in CANDIDATES:
            raise ConfigError(
                f"{where}: unknown candidate {name!r}; choose from {valid} (a name, or "
                "{name: {its params}})"
            )
        if any(c.name == name for c, _ in out):
            raise ConfigError(f"{where}: candidate '{name}' is listed twice")
        cand = CANDIDATES[name]
        params = _mapping(params, f"{where}.{name}", cand.model, f"{cand.model} parameters")
        check_model_params(cand.model, params, where=f"{where}.{name}")
        out.append((cand, dict(params)))
    return tuple(out)


# --------------------------------------------------------------------------- the table

_ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry(
        "rf",
        "random forest (scikit-learn)",
        _build_rf,
        _check_rf,
        distribution="quantiles",
        rk_base=True,
    ),
    ModelEntry(
        "gbm",
        "gradient boosting (scikit-learn HistGradientBoostingRegressor)",
        _build_gbm,
        _check_gbm,
        rk_base=True,
    ),
    ModelEntry(
        "ga-bp",
        "back-propagation net with GA initial weights, trained by Levenberg-Marquardt",
        _build_gabp,
        _check_gabp,
        rk_base=True,
    ),
    ModelEntry(
        "tr-ga-bp",
        "GA-BP net transferred from the source year (W_T = beta * W_S)",
        _build_trgabp,
        _check_trgabp,
        needs_source=True,
        source_model="ga-bp",
    ),
    ModelEntry(
        "ok",
        "ordinary kriging on the pixel-centre coordinates",
        _build_ok,
        _check_ok,
        inputs="coordinates",
        raw_coordinates=True,
        screening=False,
        distribution="std",
    ),
    ModelEntry(
        "rk",
        "regression kriging: a base model plus kriging of its out-of-fold residuals",
        _build_rk,
        _check_rk,
        raw_coordinates=True,
        distribution="std",
        calibrate_interval=True,
    ),
    ModelEntry(
        "spectral-resnet",
        "1D ResNet on hyperspectral bands (seed 004)",
        _build_spectral,
        _check_spectral,
        inputs="spectra",
        screening=False,
    ),
    ModelEntry(
        "patch-cnn",
        "fully convolutional CNN on the (2h+1)^2 feature patch around each sample, "
        "ensemble over seeds (seed 000)",
        _build_patch_cnn,
        _check_patch_cnn,
        inputs="patches",
        screening=False,
    ),
    ModelEntry(
        "auto",
        "chooses among candidate models by spatial-block CV, or stacks them",
        _build_auto,
        _check_auto,
        selects=True,
    ),
    *(
        ModelEntry(
            f"{kind}-classifier",
            f"{label} contamination classifier (grid-searched, seed 001)",
            _classifier_builder(f"{kind}-classifier"),
            _classifier_check(f"{kind}-classifier"),
            classifier=True,
            distribution="classes",
        )
        for kind, label in (("rf", "random forest"), ("svm", "RBF SVM"), ("knn", "k-NN"))
    ),
)

#: Every model geohm knows, by ``model.name``.
MODELS: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


@dataclass(frozen=True)
class Candidate:
    """One candidate of ``model: {name: auto}``: a registry model and its spatial features.

    Attributes
    ----------
    name : str
        The name in ``model.params.candidates`` and in the report's ranking.
    model : str
        The registry entry it is fitted as (``rf``, ``ok``, ...), with the candidate's
        own ``params`` (default: none) and seeds, exactly as if the user had named it.
    summary : str
        One line for the report.
    coordinates, buffer_distances : bool
        Its ``spatial_features`` (RFsp: the pixel coordinates and the distance to every
        training sample as features; needs a projected grid).
    min_samples : int
        Fewest training samples for it to be scored (fewer: listed as not applicable).
    """

    name: str
    model: str
    summary: str
    coordinates: bool = False
    buffer_distances: bool = False
    min_samples: int = 0


#: The candidates of ``auto``, in the order they are scored (and, by default, all of them:
#: a candidate whose inputs the scene lacks is listed as not applicable).
CANDIDATES: dict[str, Candidate] = {
    c.name: c
    for c in (
        Candidate("rf", "rf", "random forest on the covariates"),
        Candidate(
            "rfsp",
            "rf",
            "random forest with the coordinates and buffer distances (RFsp)",
            coordinates=True,
            buffer_distances=True,
        ),
        Candidate("gbm", "gbm", "gradient boosting on the covariates"),
        Candidate("ga-bp", "ga-bp", "GA-BP net on the covariates"),
        Candidate("tr-ga-bp", "tr-ga-bp", "GA-BP net transferred from the source year"),
        Candidate("ok", "ok", "ordinary kriging of the samples"),
        Candidate("rk", "rk", "regression kriging (random forest + kriged residuals)"),
        Candidate(
            "patch-cnn",
            "patch-cnn",
            "CNN on the neighbourhood of each sample (never stacked)",
            min_samples=30,
        ),
    )
}

#: ``auto``'s parameters and their defaults (``candidates``: every one of :data:`CANDIDATES`;
#: ``max_minutes``: the time for scoring candidates, per target; ``stack``: allow a
#: stacked ensemble when it scores better).
_AUTO_DEFAULTS: dict[str, Any] = {
    "candidates": None,
    "max_minutes": 10.0,
    "stack": True,
}

#: The stacked ensemble ``auto`` may choose (not a ``model.name``): the candidates' own
#: pipelines under scikit-learn's ``StackingRegressor`` with a non-negative linear
#: meta-learner, fitted by :mod:`geohm.autoselect`; its intervals are conformal, from
#: its out-of-fold residuals.
STACKED = ModelEntry(
    "stack",
    "stacked ensemble of auto's candidates (non-negative linear meta-learner)",
    _build_auto,
    _check_auto,
    screening=False,
    distribution="residuals",
)


@dataclass(frozen=True)
class AutoSettings:
    """``auto``'s checked parameters (see :func:`auto_settings`)."""

    candidates: tuple[tuple[Candidate, dict[str, Any]], ...]
    max_minutes: float
    stack: bool


def auto_settings(params: Mapping[str, Any] | None) -> AutoSettings:
    """The candidates (with their params), time budget and stacking switch of ``auto``.

    Raises
    ------
    ConfigError
        As :func:`check_model_params` for ``auto``: an unknown candidate names
        ``model.params.candidates`` and lists the valid names.
    """
    params = dict(params or {})
    _check_auto(params, "model.params")
    return AutoSettings(
        candidates=_auto_candidates(
            params.get("candidates", list(CANDIDATES)), "model.params.candidates"
        ),
        max_minutes=float(params.get("max_minutes", _AUTO_DEFAULTS["max_minutes"])),
        stack=bool(params.get("stack", _AUTO_DEFAULTS["stack"])),
    )


def model_names() -> tuple[str, ...]:
    """The ``model.name`` values geohm knows, in table order."""
    return tuple(MODELS)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``model.name``.

    Raises
    ------
    ConfigError
        An unknown name (the message lists the known ones).
    """
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"key 'model.name': unknown model '{name}'; choose one of {', '.join(MODELS)}"
        ) from None


def make_regressor(
    name: str, params: Mapping[str, Any] | None = None, *, random_state: int = 0
) -> Any:
    """Build the unfitted estimator of ``model.name`` from its ``model.params``.

    Parameters
    ----------
    name : str
        A name of :data:`MODELS` (``rf``, ``ga-bp``, ...).
    params : mapping, optional
        Keyword arguments of the estimator (``n_estimators``, ``hidden`` ...).
    random_state : int
        Seed for every random step of the estimator.

    Returns
    -------
    estimator
        Unfitted, following scikit-learn's contract (``fit`` returns self).

    Raises
    ------
    ConfigError
        Unknown model name or parameter.
    """
    return model_entry(name).build(dict(params or {}), random_state)


def check_model_params(
    name: str, params: Mapping[str, Any] | None, *, where: str = "model.params"
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
    params : mapping or None
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
    entry = model_entry(name)
    entry.check(_mapping(params, where, name, "parameters"), where)

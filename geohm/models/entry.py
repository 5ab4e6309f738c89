"""What the registry knows of a model: :class:`ModelEntry`, its build and capabilities."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Inputs = Literal["features", "coordinates", "spectra", "patches"]

Distribution = Literal["quantiles", "std", "residuals", "classes"]


@dataclass(frozen=True)
class ModelEntry:
    """What geohm knows about one ``model.name``.

    Attributes
    ----------
    name : str
        The config name (``model.name``).
    summary : str
        One line for messages and docs.
    build : callable
        ``build(params, random_state)`` -> unfitted estimator; ``params`` is the
        config's ``model.params`` (checked by ``check`` first).
    check : callable
        ``check(params, where)`` raises :class:`~geohm.errors.ConfigError` naming
        ``<where>.<key>`` for a parameter the estimator does not take or accept.
    inputs : {"features", "coordinates", "spectra", "patches"}
        The sample-table columns it takes: all features, only ``x``/``y`` (kriging),
        only the hyperspectral bands (``wl_*``, spectral preprocessing, no scaling), or
        the ``(2h + 1)``-pixel patch of every feature around each sample (flattened
        ``<feature>@<dy>,<dx>`` columns, :mod:`geohm.patches`; no scaling, imputation or
        screening: the model standardises itself and maps a window with an ``h``-pixel
        halo in one pass, ``predict_grid``).
    raw_coordinates : bool
        Keeps ``x``/``y`` unscaled (metres) among its inputs, and needs them in the cube.
    needs_source : bool
        Transfers from the ``source:`` year: screening, preprocessing and a source net
        are fitted on that year's samples (``source_model`` names that net's entry).
    source_model : str or None
        With ``needs_source``: the entry of the net fitted on the source year.
    classifier : bool
        Labels samples contaminated (probability maps) instead of regressing mg/kg.
    screening : bool
        Factor screening (correlation + VIF) applies to its inputs.
    distribution : {"quantiles", "std", "residuals", "classes"}
        Where its uncertainty map comes from: a quantile forest, the kriging standard
        deviation, conformal out-of-fold residuals, or class probabilities.
    calibrate_interval : bool or None
        Passed to :func:`geohm.models.uncertainty.interval_model` (``True``: rescale
        its own interval on out-of-fold residuals; ``None``: the method's default).
    rk_base : bool
        May be the trend model of regression kriging (``rk``'s ``params.base``).
    selects : bool
        Selects among candidate models (``auto``): no estimator of its own; training
        scores the candidates of :func:`auto_settings` on the same spatial-block folds
        and fits the best one, or their stacked ensemble (:data:`STACKED`).
    """

    name: str
    summary: str
    build: Callable[[dict[str, Any], int], Any]
    check: Callable[[dict[str, Any], str], None]
    inputs: Inputs = "features"
    raw_coordinates: bool = False
    needs_source: bool = False
    source_model: str | None = None
    classifier: bool = False
    screening: bool = True
    distribution: Distribution = "residuals"
    calibrate_interval: bool | None = None
    rk_base: bool = False
    selects: bool = False

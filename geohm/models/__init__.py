"""Regressors. Models see only ``X, y`` arrays: never xarray, paths or config.

Which models exist, how each is built from ``model.params`` and what it can do is the
registry's (:mod:`geohm.models.registry`); this package re-exports its entry points.
"""

from __future__ import annotations

from geohm.models.registry import (
    COORDS,
    MODELS,
    ModelEntry,
    check_model_params,
    make_regressor,
    model_entry,
    model_names,
)

__all__ = [
    "COORDS",
    "MODELS",
    "ModelEntry",
    "check_model_params",
    "make_regressor",
    "model_entry",
    "model_names",
]

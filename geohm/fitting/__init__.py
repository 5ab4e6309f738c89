"""Fit and validate one model for one target: the normal path every model takes.

Builds the scikit-learn pipeline a fit spec asks for (:mod:`~geohm.fitting.pipelines`),
takes the target's rows and the hold-out split (:mod:`~geohm.fitting.rows`), fits, tests,
cross-validates and builds the intervals (:mod:`~geohm.fitting.checks`,
:mod:`~geohm.fitting.model`). :mod:`geohm.training` calls it for the model a config names,
and for the one ``auto`` chose.
"""

from geohm.fitting.checks import spatial_folds
from geohm.fitting.model import FittedTarget, fit_model
from geohm.fitting.pipelines import model_columns, model_pipeline, source_model
from geohm.fitting.rows import MIN_TRAIN, split_rows

__all__ = [
    "MIN_TRAIN",
    "FittedTarget",
    "fit_model",
    "model_columns",
    "model_pipeline",
    "source_model",
    "spatial_folds",
    "split_rows",
]

"""geohm: map heavy-metal contamination of soil from Landsat 8/9 imagery and a DEM.

The public API is :data:`__all__`; heavy modules (rasterio, torch, scikit-learn) load on
first use of a name, not on ``import geohm``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from geohm._version import __version__
from geohm.errors import (
    ConfigError,
    GeohmError,
    GridError,
    InputError,
    NoDataError,
    OutputError,
    SampleError,
)

if TYPE_CHECKING:  # what the lazy names below are, for type checkers
    from geohm.batch import run_batch
    from geohm.config import SceneConfig, load_config
    from geohm.io.qgis_plugin import install_plugin
    from geohm.models.gabp import GABPRegressor
    from geohm.models.gbm import gbm_regressor
    from geohm.models.kriging import OrdinaryKrigingRegressor, RegressionKriging
    from geohm.models.registry import MODELS, make_regressor
    from geohm.models.spatial import BufferDistances
    from geohm.models.spectral import SpectralResNetRegressor
    from geohm.models.transfer import TransferGABPRegressor
    from geohm.models.uncertainty import IntervalModel
    from geohm.pipeline import build_cube, job_status, load_job, predict_scene, run_scene
    from geohm.series import load_series_config, run_series
    from geohm.synth import make_demo

#: Public name -> the module that defines it (imported on first use).
_LAZY: dict[str, str] = {
    "load_config": "geohm.config",
    "SceneConfig": "geohm.config",
    "run_scene": "geohm.pipeline",
    "predict_scene": "geohm.pipeline",
    "build_cube": "geohm.pipeline",
    "load_job": "geohm.pipeline",
    "job_status": "geohm.pipeline",
    "run_batch": "geohm.batch",
    "make_demo": "geohm.synth",
    "MODELS": "geohm.models.registry",
    "make_regressor": "geohm.models.registry",
    "GABPRegressor": "geohm.models.gabp",
    "TransferGABPRegressor": "geohm.models.transfer",
    "OrdinaryKrigingRegressor": "geohm.models.kriging",
    "RegressionKriging": "geohm.models.kriging",
    "SpectralResNetRegressor": "geohm.models.spectral",
    "IntervalModel": "geohm.models.uncertainty",
    "BufferDistances": "geohm.models.spatial",
    "gbm_regressor": "geohm.models.gbm",
    "install_plugin": "geohm.io.qgis_plugin",
    "run_series": "geohm.series",
    "load_series_config": "geohm.series",
}

__all__ = [
    "ConfigError",
    "GeohmError",
    "GridError",
    "InputError",
    "NoDataError",
    "OutputError",
    "SampleError",
    "__version__",
    "BufferDistances",
    "GABPRegressor",
    "IntervalModel",
    "MODELS",
    "OrdinaryKrigingRegressor",
    "RegressionKriging",
    "SceneConfig",
    "SpectralResNetRegressor",
    "TransferGABPRegressor",
    "build_cube",
    "gbm_regressor",
    "install_plugin",
    "job_status",
    "load_config",
    "load_job",
    "load_series_config",
    "make_demo",
    "make_regressor",
    "predict_scene",
    "run_batch",
    "run_scene",
    "run_series",
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'geohm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

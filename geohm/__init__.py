"""geohm: map heavy-metal contamination of soil from Landsat 8/9 imagery and a DEM.

The public API is :data:`__all__`; heavy modules (rasterio, torch, scikit-learn) load on
first use of a name, not on ``import geohm``.
"""

from __future__ import annotations

from importlib import import_module

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

#: Public name -> the module that defines it (imported on first use).
_LAZY: dict[str, str] = {
    "load_config": "geohm.config",
    "SceneConfig": "geohm.config",
    "run_scene": "geohm.pipeline",
    "predict_scene": "geohm.pipeline",
    "build_cube": "geohm.pipeline",
    "load_job": "geohm.pipeline",
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
    *_LAZY,
]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'geohm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

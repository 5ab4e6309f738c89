"""geohm: map heavy-metal contamination of soil from Landsat 8/9 imagery and a DEM."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("geohm")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

from geohm.errors import (  # noqa: E402
    ConfigError,
    GeohmError,
    GridError,
    InputError,
    NoDataError,
    SampleError,
)

__all__ = [
    "ConfigError",
    "GeohmError",
    "GridError",
    "InputError",
    "NoDataError",
    "SampleError",
    "__version__",
    "load_config",
    "make_demo",
    "run_scene",
]


def __getattr__(name: str) -> object:
    # Heavy modules (rasterio, torch, sklearn) load on first use, not on `import geohm`.
    if name == "load_config":
        from geohm.config import load_config

        return load_config
    if name == "run_scene":
        from geohm.pipeline import run_scene

        return run_scene
    if name == "make_demo":
        from geohm.synth import make_demo

        return make_demo
    raise AttributeError(f"module 'geohm' has no attribute {name!r}")

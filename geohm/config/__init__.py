"""The scene-job config: one pydantic model for everything a ``geohm run`` needs.

The schema is :mod:`~geohm.config.schema`; reading and validating YAML is
:mod:`~geohm.config.load`.
"""

from geohm.config.accumulation import AgricultureSpec, KdRegression, LandUsePractice
from geohm.config.load import load_config, parse_config
from geohm.config.schema import (
    DEFAULT_QA_MASK,
    MODEL_NAMES,
    QA_NAMES,
    RISK_INDICES,
    AccumulationSpec,
    ClassificationSpec,
    CovariateSpec,
    DepositionSpec,
    FitSpec,
    HyperspectralSpec,
    LandUseRaster,
    ModelSpec,
    OutputSpec,
    PreprocessSpec,
    RiskSpec,
    SamplesSpec,
    SamplingDesignSpec,
    SceneConfig,
    SelectionSpec,
    SourceSpec,
    SpatialFeaturesSpec,
    ValidationSpec,
    ZonesSpec,
)

__all__ = [
    "AgricultureSpec",
    "KdRegression",
    "LandUsePractice",
    "DEFAULT_QA_MASK",
    "MODEL_NAMES",
    "QA_NAMES",
    "RISK_INDICES",
    "AccumulationSpec",
    "ClassificationSpec",
    "DepositionSpec",
    "CovariateSpec",
    "FitSpec",
    "HyperspectralSpec",
    "LandUseRaster",
    "ModelSpec",
    "OutputSpec",
    "PreprocessSpec",
    "RiskSpec",
    "SamplesSpec",
    "SamplingDesignSpec",
    "SceneConfig",
    "SelectionSpec",
    "SourceSpec",
    "SpatialFeaturesSpec",
    "ValidationSpec",
    "ZonesSpec",
    "load_config",
    "parse_config",
]

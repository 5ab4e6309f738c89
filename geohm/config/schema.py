"""The scene-job schema: one pydantic model for everything a ``geohm run`` needs.

Key names are the contract of ``design.md``; unknown keys are an error
(:mod:`geohm.config.load` turns every problem into a one-line
:class:`~geohm.errors.ConfigError` naming the key).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from geohm.config.accumulation import AccumulationSpec, DepositionSpec
from geohm.config.base import LandUseRaster, _Strict
from geohm.config.output import OutputSpec, SamplingDesignSpec, ZonesSpec
from geohm.config.risk import RISK_INDICES, ClassificationSpec, RiskSpec
from geohm.config.stac import LandsatSource, StacSpec
from geohm.models.registry import model_entry, model_names

__all__ = [
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
    "StacSpec",
    "ValidationSpec",
    "ZonesSpec",
]

#: QA_PIXEL conditions that may be masked (see geohm.io.landsat).
QA_NAMES = ("fill", "dilated_cloud", "cirrus", "cloud", "shadow", "snow", "water")
DEFAULT_QA_MASK = list(QA_NAMES)
#: Model names the pipeline knows (the model registry's).
MODEL_NAMES = model_names()


class CovariateSpec(_Strict):
    """An extra raster on any grid, aligned onto the scene grid."""

    path: Path = Field(
        description="raster on any grid and CRS (values in its own unit, kept as the feature's), "
        "aligned onto the scene grid: bilinear, or nearest neighbour when categorical",
    )
    categorical: bool = Field(
        default=False,
        description="the values are class codes (rock type, soil unit): nearest-neighbour "
        "resampling and one-hot encoding, never averaged or scaled",
    )


class HyperspectralSpec(_Strict):
    """A multi-band raster whose bands are wavelengths (imaging spectroscopy).

    Airborne or satellite; aligned onto the scene grid like a covariate (bilinear).
    """

    path: Path = Field(
        description="raster with one band per wavelength (reflectance 0-1 or absorbance, -); "
        "any grid and CRS, aligned onto the scene grid (bilinear)",
    )
    wavelengths: list[float] | None = Field(
        default=None,
        description="one wavelength per band, in band order (nm, um or cm-1, as unit says); "
        "default: read from the band descriptions",
    )
    unit: Literal["nm", "um", "cm-1"] = Field(
        default="nm", description="unit of the wavelengths (features are named wl_<value>)"
    )

    @field_validator("wavelengths")
    @classmethod
    def _distinct(cls, v: list[float] | None) -> list[float] | None:
        if v is not None:
            if not v:
                raise ValueError("an empty list; give one wavelength per band or leave it out")
            if len(set(v)) != len(v):
                raise ValueError("a wavelength is listed twice")
            if any(not w > 0 for w in v):
                raise ValueError("wavelengths must be positive numbers")
        return v


class SamplesSpec(_Strict):
    """Soil sample points with measured concentrations (mg/kg)."""

    path: Path = Field(
        description="sample points: .gpkg, .shp, .geojson (with a CRS) or .csv (with x, y, crs)"
    )
    targets: list[str] = Field(
        default_factory=lambda: ["Cu", "Pb"],
        min_length=1,
        description="columns of measured concentrations to map, one map each (mg/kg)",
    )
    id: str | None = Field(default=None, description="column with sample ids (default: row number)")
    x: str | None = Field(
        default=None, description="CSV only (required there): column of the x coordinates"
    )
    y: str | None = Field(
        default=None, description="CSV only (required there): column of the y coordinates"
    )
    crs: str | None = Field(
        default=None,
        description="CSV only (required there): CRS of the x, y columns (e.g. EPSG:4326)",
    )
    layer: str | None = Field(
        default=None, description="layer of a file with several (GeoPackage); required there"
    )
    window: int = Field(
        default=1,
        ge=1,
        description="side of the square of pixels averaged around each sample; odd (pixels)",
    )
    censored: Literal["x/2", "x/sqrt2", "x", "drop"] = Field(
        default="x/2",
        description="value put for a result below the detection limit '<x' (or 'ND'): x/2, "
        "x/sqrt2, x, or drop (leave the sample out of that target)",
    )
    detection_limits: dict[str, float] = Field(
        default_factory=dict,
        description="detection limit per target, for results reading 'ND' alone (mg/kg)",
    )

    @field_validator("detection_limits")
    @classmethod
    def _positive_limits(cls, v: dict[str, float]) -> dict[str, float]:
        bad = [k for k, x in v.items() if not x > 0]
        if bad:
            raise ValueError(f"detection limits must be > 0 mg/kg (check {', '.join(bad)})")
        return v

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"a target is listed twice: {v}")
        return v

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError("must be an odd number of pixels (1, 3, 5, ...)")
        return v


class _ImagerySpec(_Strict):
    landsat: LandsatSource | None = Field(
        default=None,
        description="a Landsat 8/9 Collection 2 scene folder (or its _MTL.txt), or a STAC "
        "block; read as reflectance (0-1) and brightness temperature (K)",
    )
    bands: dict[str, Path] | None = Field(
        default=None,
        description="instead of landsat: band name (coastal, blue, green, red, nir, swir1, "
        "swir2, thermal) -> single-band file; thermal read as stored (K)",
    )
    band_scale: float | None = Field(
        default=None,
        description="reflectance = value x band_scale + band_offset for the reflective band "
        "files, e.g. 2.75e-05 for Level-2 DNs (reflectance per DN); default 1",
    )
    band_offset: float | None = Field(
        default=None,
        description="added after band_scale, e.g. -0.2 for Level-2 DNs (reflectance, 0-1 "
        "scale); default 0",
    )
    qa_mask: list[Literal[QA_NAMES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(DEFAULT_QA_MASK),
        description="QA_PIXEL conditions of a Landsat scene set to nodata",
    )
    dem: Path | None = Field(
        default=None,
        description="elevation raster (m), any grid and CRS, aligned onto the scene grid "
        "(bilinear): elevation, slope and aspect factors; in source: default the scene's",
    )
    covariates: dict[str, CovariateSpec] = Field(
        default_factory=dict,
        description="feature name -> extra raster (a path, or {path, categorical}); in "
        "source: default the scene's",
    )
    assume_crs: str | None = Field(
        default=None,
        description="CRS of rasters that carry none (e.g. EPSG:28992); an embedded CRS wins",
    )

    @field_validator("covariates", mode="before")
    @classmethod
    def _short_form(cls, v: Any) -> Any:
        # ``name: path`` is shorthand for ``name: {path: path}``.
        if isinstance(v, dict):
            return {k: {"path": x} if isinstance(x, str | Path) else x for k, x in v.items()}
        return v

    @model_validator(mode="after")
    def _one_imagery_source(self) -> _ImagerySpec:
        if self.landsat is not None and self.bands is not None:
            raise ValueError(
                "give either 'landsat' (a scene folder) or 'bands' (band files), not both"
            )
        if (self.band_scale is not None or self.band_offset is not None) and self.bands is None:
            raise ValueError(
                "'band_scale'/'band_offset' apply to 'bands' only; a Landsat folder's "
                "scale is read from its MTL"
            )
        return self


class SourceSpec(_ImagerySpec):
    """An earlier acquisition of the same area (transfer learning)."""

    samples: SamplesSpec = Field(description="the earlier year's samples (mg/kg), as samples")


class SelectionSpec(_Strict):
    """Factor screening."""

    method: Literal["none", "correlation_vif"] = Field(
        default="none",
        description="none: keep every factor; correlation_vif: keep the factors correlated "
        "with the metal (p < max_p), then drop the highest VIF until all are below max_vif",
    )
    max_vif: float = Field(
        default=10.0,
        gt=1.0,
        description="factors are dropped, highest first, until every VIF is below it (-)",
    )
    max_p: float = Field(
        default=0.05,
        gt=0.0,
        le=1.0,
        description="a factor is kept when the p-value of its Pearson correlation with the "
        "metal is below it (0-1)",
    )
    force: list[str] = Field(
        default_factory=list, description="factors kept whatever their p and VIF"
    )


class PreprocessSpec(_Strict):
    """Sample and factor preprocessing (seed 000): outliers, imputation, scaling, log target."""

    outliers: Literal["none", "iqr"] = Field(
        default="none",
        description="iqr: leave out training samples whose target lies outside Tukey's "
        "fences Q1 - k IQR, Q3 + k IQR (listed in the report)",
    )
    iqr_k: float = Field(
        default=1.5, gt=0.0, description="fence width k of the iqr rule (interquartile ranges)"
    )
    impute: Literal["none", "knn"] = Field(
        default="knn",
        description="knn: fill a missing factor value from the nearest training samples in "
        "factor space; none: leave it missing",
    )
    n_neighbors: int = Field(default=5, ge=1, description="neighbours of the KNN imputer (samples)")
    scale: Literal["none", "minmax"] = Field(
        default="minmax",
        description="minmax: rescale each factor to 0-1 on the training samples (not the "
        "coordinates or categorical covariates)",
    )
    log_target: bool = Field(
        default=False,
        description="model log1p of the concentration; maps are back-transformed (mg/kg)",
    )


class ModelSpec(_Strict):
    """The regressor and its parameters."""

    name: str = Field(default="rf", description=f"one of {', '.join(MODEL_NAMES)}")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="the model's parameters (see Models); checked against the estimator "
        "when the config is loaded",
    )

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in MODEL_NAMES:
            raise ValueError(f"unknown model '{v}'; choose one of {', '.join(MODEL_NAMES)}")
        return v


class SpatialFeaturesSpec(_Strict):
    """Spatial covariates (the "RFsp" idea of Hengl et al. 2018), off by default."""

    coordinates: bool = Field(
        default=False, description="add the pixel-centre coordinates x, y as features (m)"
    )
    buffer_distances: bool = Field(
        default=False,
        description="add the distance to every training sample as features (m)",
    )


class ValidationSpec(_Strict):
    """Hold-out test split and k-fold cross-validation."""

    test_fraction: float = Field(
        default=0.2,
        ge=0.0,
        lt=1.0,
        description="share of the sample locations held out as the test set (0-1)",
    )
    cv_folds: int = Field(
        default=5,
        ge=0,
        description="folds of random k-fold CV on the training samples; 0: none (folds)",
    )
    seed: int = Field(default=0, description="seed of the split, the folds and every model (-)")
    spatial_cv: bool = Field(
        default=True, description="also report spatial block k-fold CV beside random k-fold"
    )
    interval_coverage: float = Field(
        default=0.9,
        gt=0.0,
        lt=1.0,
        description="nominal coverage of the prediction intervals: uncertainty and "
        "exceedance maps (0-1)",
    )
    block_size: float | None = Field(
        default=None,
        gt=0.0,
        description="side of the spatial CV blocks (m); default: variogram range",
    )

    @field_validator("cv_folds")
    @classmethod
    def _folds(cls, v: int) -> int:
        if v == 1:
            raise ValueError("must be 0 (no cross-validation) or at least 2")
        return v


class FitSpec(_Strict):
    """What fitting and validating a target needs of a scene config, and nothing more.

    The layers below the pipeline (:mod:`geohm.fitting`, :mod:`geohm.training`) see this
    small spec, never the whole :class:`SceneConfig` (its inputs, outputs and risk block
    are not theirs). Made by :meth:`SceneConfig.fit_spec`.

    Attributes
    ----------
    name : str
        The scene's name (starts messages).
    model, selection, preprocess, spatial_features, validation, classification
        The scene config's blocks of the same names.
    features : "auto" or list of str
        The factors asked for (``x``, ``y`` among them ask for the coordinates).
    categorical : list of str
        Covariates that are class codes (one-hot, never scaled).
    uncertainty : bool
        Whether prediction intervals are built (``output.uncertainty``).
    applicability : bool
        Whether permutation importance and the area of applicability are computed
        (``output.applicability``).
    has_source : bool
        Whether a ``source:`` year (imagery and samples) is given.
    """

    name: str = "scene"
    model: ModelSpec = Field(default_factory=ModelSpec)
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    spatial_features: SpatialFeaturesSpec = Field(default_factory=SpatialFeaturesSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    classification: ClassificationSpec = Field(default_factory=ClassificationSpec)
    features: Literal["auto"] | list[str] = "auto"
    categorical: list[str] = Field(default_factory=list)
    uncertainty: bool = True
    applicability: bool = True
    has_source: bool = False


class SceneConfig(_ImagerySpec):
    """One scene job (see ``design.md`` for the contract)."""

    name: str = Field(
        min_length=1, description="scene name: starts messages, reports and batch subfolders"
    )
    grid: Path | None = Field(
        default=None,
        description="for scenes without imagery: the raster whose grid the maps use "
        "(default: the first covariate)",
    )
    samples: SamplesSpec | None = Field(
        default=None,
        description="soil samples with measured concentrations (mg/kg); needed to fit a model",
    )
    hyperspectral: HyperspectralSpec | None = Field(
        default=None,
        description="a hyperspectral raster (bands = wavelengths); features wl_<wavelength>",
    )
    source: SourceSpec | None = Field(
        default=None,
        description="an earlier year of the same area (imagery and samples): transfer models "
        "and accumulation.calibrate",
    )
    features: Literal["auto"] | list[str] = Field(
        default="auto",
        description="factors the models use: auto (every band, index, terrain factor and "
        "covariate) or a list of names (x, y add the coordinates)",
    )
    selection: SelectionSpec = Field(
        default_factory=SelectionSpec, description="factor screening (correlation and VIF)"
    )
    preprocess: PreprocessSpec = Field(
        default_factory=PreprocessSpec, description="sample and factor preprocessing"
    )
    model: ModelSpec = Field(default_factory=ModelSpec, description="the model and its params")
    spatial_features: SpatialFeaturesSpec = Field(
        default_factory=SpatialFeaturesSpec,
        description="coordinates and buffer distances as features",
    )
    validation: ValidationSpec = Field(
        default_factory=ValidationSpec,
        description="hold-out test, k-fold and spatial CV, prediction intervals",
    )
    risk: RiskSpec | None = Field(
        default=None, description="risk maps from the concentration maps (none without it)"
    )
    classification: ClassificationSpec = Field(
        default_factory=ClassificationSpec,
        description="contamination classifiers: limits and cross-validation",
    )
    output: OutputSpec = Field(
        default_factory=OutputSpec, description="where and how outputs are written"
    )
    zones: ZonesSpec | None = Field(
        default=None, description="polygons to total the area above the standard in"
    )
    sampling_design: SamplingDesignSpec | None = Field(
        default=None, description="suggest where to sample next (next_samples.gpkg)"
    )
    accumulation: AccumulationSpec | None = Field(
        default=None, description="project the concentration maps forward (mass balance)"
    )

    def fit_spec(self) -> FitSpec:
        """The part of this config that fitting and validating a target needs.

        Returns
        -------
        FitSpec
            Model, selection, preprocessing, spatial features, validation and
            classification settings, the categorical covariates, whether intervals are
            built and whether a source year is given.
        """
        return FitSpec(
            name=self.name,
            model=self.model,
            selection=self.selection,
            preprocess=self.preprocess,
            spatial_features=self.spatial_features,
            validation=self.validation,
            classification=self.classification,
            features=self.features,
            categorical=[n for n, c in self.covariates.items() if c.categorical],
            uncertainty=self.output.uncertainty,
            applicability=self.output.applicability,
            has_source=self.source is not None,
        )

    @model_validator(mode="after")
    def _has_grid(self) -> SceneConfig:
        if (
            self.landsat is None
            and self.bands is None
            and not self.covariates
            and self.hyperspectral is None
        ):
            raise ValueError(
                "needs inputs: give 'landsat' (a scene folder), 'bands', 'covariates' or "
                "'hyperspectral' (the grid is then 'grid:', the first covariate or the "
                "hyperspectral raster)"
            )
        if self.hyperspectral is not None:
            clash = [n for n in self.covariates if n.startswith("wl_")]
            if clash:
                raise ValueError(
                    f"covariate name(s) {clash} start with 'wl_', the prefix of the "
                    "hyperspectral bands; rename them"
                )
        entry = model_entry(self.model.name)
        if entry.inputs == "spectra" and self.hyperspectral is None:
            raise ValueError(
                f"model '{self.model.name}' maps from spectra: add a 'hyperspectral:' raster "
                "(bands = wavelengths)"
            )
        if self.grid is not None and (self.landsat is not None or self.bands is not None):
            raise ValueError(
                "'grid:' is for scenes without imagery; with 'landsat' or 'bands' the "
                "imagery sets the grid (remove 'grid:')"
            )
        if (
            entry.classifier
            and self.classification.limits is None
            and (self.risk is None or not isinstance(self.risk.ph, float))
        ):
            raise ValueError(
                f"model '{self.model.name}' labels samples contaminated above a limit: give "
                "'classification.limits' (e.g. {Cu: 100, Pb: 120}) or a 'risk:' block with a "
                "single pH value"
            )
        if entry.needs_source and self.source is None:
            raise ValueError(
                f"model '{self.model.name}' transfers from an earlier year: add a 'source:' "
                "block with its imagery and samples"
            )
        acc = self.accumulation
        if acc is not None and acc.calibrate and (self.source is None or not acc.calibration_years):
            raise ValueError(
                "accumulation.calibrate compares two surveys: give a 'source:' block (the "
                "earlier year's imagery and samples) and accumulation.calibration_years (the "
                "years between them)"
            )
        if self.accumulation is not None and self.risk is None:
            raise ValueError(
                "accumulation projects the maps towards the screening values: add a 'risk:' "
                "block (e.g. risk: {standard: gb15618, land_use: other, ph: 6.8})"
            )
        asked = [k for k in ("zones", "sampling_design") if getattr(self, k) is not None]
        if entry.classifier and (asked or self.accumulation is not None):
            keys = asked + (["accumulation"] if self.accumulation is not None else [])
            raise ValueError(
                f"{' and '.join(keys)} work on concentration maps; model '{self.model.name}' "
                "maps contamination classes: remove them or choose a regression model"
            )
        if asked and (self.risk is None or "exceedance" not in self.risk.indices):
            raise ValueError(
                f"{' and '.join(asked)} need the probability that each pixel exceeds the "
                "screening value: add a 'risk:' block with 'exceedance' in its indices "
                "(e.g. risk: {standard: gb15618, indices: [single_factor, exceedance]}), or "
                f"remove {' and '.join(repr(k) for k in asked)}"
            )
        return self

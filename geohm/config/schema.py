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
from geohm.config.stac import StacSpec
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

    path: Path
    categorical: bool = False


class HyperspectralSpec(_Strict):
    """A multi-band raster whose bands are wavelengths (imaging spectroscopy).

    Airborne or satellite; aligned onto the scene grid like a covariate (bilinear).
    """

    path: Path
    wavelengths: list[float] | None = Field(
        default=None,
        description="one per band, in band order; default: read from the band descriptions",
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

    path: Path
    targets: list[str] = Field(default_factory=lambda: ["Cu", "Pb"], min_length=1)
    id: str | None = Field(default=None, description="column with sample ids (default: row number)")
    x: str | None = None
    y: str | None = None
    crs: str | None = None
    layer: str | None = None
    window: int = Field(default=1, ge=1, description="odd number of pixels averaged per side")
    censored: Literal["x/2", "x/sqrt2", "x", "drop"] = Field(
        default="x/2",
        description="value put for a result below the detection limit '<x' (or 'ND'): x/2, "
        "x/sqrt2, x, or drop (leave the sample out of that target)",
    )
    detection_limits: dict[str, float] = Field(
        default_factory=dict,
        description="detection limit (mg/kg) per target, for results reading 'ND' alone",
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
    landsat: Path | StacSpec | None = None
    bands: dict[str, Path] | None = None
    band_scale: float | None = None
    band_offset: float | None = None
    qa_mask: list[Literal[QA_NAMES]] = Field(default_factory=lambda: list(DEFAULT_QA_MASK))  # type: ignore[valid-type]
    dem: Path | None = None
    covariates: dict[str, CovariateSpec] = Field(default_factory=dict)
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

    samples: SamplesSpec


class SelectionSpec(_Strict):
    """Factor screening."""

    method: Literal["none", "correlation_vif"] = "none"
    max_vif: float = Field(default=10.0, gt=1.0)
    max_p: float = Field(default=0.05, gt=0.0, le=1.0)
    force: list[str] = Field(default_factory=list)


class PreprocessSpec(_Strict):
    """Sample and factor preprocessing (seed 000): outliers, imputation, scaling, log target."""

    outliers: Literal["none", "iqr"] = "none"
    iqr_k: float = Field(default=1.5, gt=0.0)
    impute: Literal["none", "knn"] = "knn"
    n_neighbors: int = Field(default=5, ge=1)
    scale: Literal["none", "minmax"] = "minmax"
    log_target: bool = False


class ModelSpec(_Strict):
    """The regressor and its parameters."""

    name: str = "rf"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in MODEL_NAMES:
            raise ValueError(f"unknown model '{v}'; choose one of {', '.join(MODEL_NAMES)}")
        return v


class SpatialFeaturesSpec(_Strict):
    """Spatial covariates (the "RFsp" idea of Hengl et al. 2018), off by default."""

    coordinates: bool = Field(
        default=False, description="add the pixel-centre coordinates x, y as features"
    )
    buffer_distances: bool = Field(
        default=False,
        description="add the distance (map units) to every training sample as features",
    )


class ValidationSpec(_Strict):
    """Hold-out test split and k-fold cross-validation."""

    test_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    cv_folds: int = Field(default=5, ge=0)
    seed: int = 0
    spatial_cv: bool = Field(
        default=True, description="also report spatial block k-fold CV beside random k-fold"
    )
    interval_coverage: float = Field(
        default=0.9, gt=0.0, lt=1.0, description="nominal coverage of the uncertainty maps"
    )
    block_size: float | None = Field(
        default=None, gt=0.0, description="spatial CV block side (m); default: variogram range"
    )

    @field_validator("cv_folds")
    @classmethod
    def _folds(cls, v: int) -> int:
        if v == 1:
            raise ValueError("must be 0 (no cross-validation) or at least 2")
        return v


RISK_INDICES = ("single_factor", "nemerow", "igeo", "hakanson", "exceedance")


class RiskSpec(_Strict):
    """Risk maps from the predicted concentrations (standards, land use, pH)."""

    standard: str = Field(default="gb15618", description="gb15618 | gb36600 | seed001 | a CSV")
    user_standard: dict[str, Any] | None = None
    land_use: str | LandUseRaster = "other"
    ph: float | Path = 6.8
    background: str = "national"
    indices: list[Literal[RISK_INDICES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["single_factor", "nemerow"]
    )
    grading: dict[str, str | dict[str, Any]] = Field(default_factory=dict)
    toxic_response: dict[str, float] = Field(default_factory=dict)
    likely_probability: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="P(C > screening value) from which a pixel is 'likely exceeds'",
    )
    outside_aoa: Literal["class", "mask", "ignore"] = Field(
        default="class",
        description="pixels outside the area of applicability in the risk and exceedance "
        "class rasters: their own class 'outside the area of applicability', nodata, or "
        "classed as any other pixel",
    )

    @field_validator("ph")
    @classmethod
    def _ph_range(cls, v: float | Path) -> float | Path:
        if isinstance(v, float) and not 0.0 <= v <= 14.0:
            raise ValueError(f"pH must be within 0-14, got {v}")
        return v


class ClassificationSpec(_Strict):
    """Contamination classifiers (seed 001): labels and cross-validation."""

    limits: dict[str, float] | None = Field(
        default=None,
        description="metal -> limit (mg/kg); default: the risk standard's screening values",
    )
    folds: int = Field(default=10, ge=2)
    repeats: int = Field(default=3, ge=1)
    probability: float = Field(default=0.5, gt=0.0, lt=1.0)


class OutputSpec(_Strict):
    """Where and how outputs are written."""

    dir: Path = Path("out")
    tile: int | None = Field(
        default=None,
        ge=16,
        description="prediction window size in pixels (default: derived from memory_mb)",
    )
    workers: int = Field(default=0, ge=0, description="windows computed at once (0: all cores)")
    memory_mb: int = Field(default=1024, ge=64, description="budget for windows in flight")
    quicklooks: bool = True
    uncertainty: bool = Field(
        default=True,
        description="write <target>_uncertainty.tif: the width (mg/kg) of the central "
        "prediction interval of coverage validation.interval_coverage",
    )
    bins: dict[str, list[float]] = Field(
        default_factory=dict,
        description="per target, edges (mg/kg) of the area-by-concentration table",
    )
    applicability: bool = Field(
        default=True,
        description="the area of applicability: <target>_di.tif (dissimilarity index) and "
        "<target>_aoa.tif (1 inside, 0 outside), weighted by permutation importance on the "
        "spatial CV folds (Meyer & Pebesma 2021)",
    )


class ZonesSpec(_Strict):
    """Polygons (parcels, land-use units) to total the area above the standard in."""

    path: Path
    id: str = Field(description="column with each zone's id")
    layer: str | None = None


class SamplingDesignSpec(_Strict):
    """Where to sample next: points that most reduce uncertainty about exceedance."""

    n: int = Field(default=20, ge=1, description="points to suggest")
    min_spacing_m: float = Field(
        default=300.0, ge=0.0, description="from each other and from the existing samples"
    )
    pool_size: int = Field(
        default=250_000, ge=1000, description="best-scoring pixels kept as candidates"
    )


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

    name: str = Field(min_length=1)
    grid: Path | None = Field(
        default=None,
        description="for scenes without imagery: the raster whose grid the maps use "
        "(default: the first covariate)",
    )
    samples: SamplesSpec | None = None
    hyperspectral: HyperspectralSpec | None = Field(
        default=None,
        description="a hyperspectral raster (bands = wavelengths); features wl_<wavelength>",
    )
    source: SourceSpec | None = None
    features: Literal["auto"] | list[str] = "auto"
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    preprocess: PreprocessSpec = Field(default_factory=PreprocessSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    spatial_features: SpatialFeaturesSpec = Field(default_factory=SpatialFeaturesSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    risk: RiskSpec | None = None
    classification: ClassificationSpec = Field(default_factory=ClassificationSpec)
    output: OutputSpec = Field(default_factory=OutputSpec)
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

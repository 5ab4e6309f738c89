"""The ``accumulation:`` block of a scene: the mass-balance projection (seed 003)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geohm.config.base import LandUseRaster, _Strict

__all__ = [
    "AccumulationSpec",
    "AgricultureSpec",
    "DepositionSpec",
    "KdRegression",
    "LandUsePractice",
]


class DepositionSpec(_Strict):
    """Atmospheric deposition: point sources through a Gaussian plume, or given rasters."""

    stacks: Path | None = Field(
        default=None,
        description="CSV: x, y (m, in the stacks' crs), height (m, effective release "
        "height), one emission column per metal (kg/yr)",
    )
    stacks_crs: str | None = Field(
        default=None, description="CRS of the stacks' x, y; default: the scene's"
    )
    wind_rose: Path | None = Field(
        default=None,
        description="CSV: sector_deg (wind from, clockwise from north), speed (m/s), "
        "class (A-F), frequency (summing to 1)",
    )
    v_d: float = Field(default=0.005, gt=0.0, description="dry deposition velocity (m/s)")
    scavenging: float = Field(default=0.0, ge=0.0, description="washout coefficient (1/s)")
    rain_fraction: float = Field(
        default=0.0, ge=0.0, le=1.0, description="share of the time it rains, for washout (0-1)"
    )
    terrain: Literal["rural", "urban"] = Field(
        default="rural", description="Briggs dispersion coefficients of the plume"
    )
    rasters: dict[str, Path] = Field(
        default_factory=dict,
        description="metal -> deposition raster (mg/m2/yr), any grid; added to the plume's",
    )
    illustrative: bool = Field(
        default=False, description="the emissions are made up (the demo): say so in outputs"
    )

    @model_validator(mode="after")
    def _pairs(self) -> DepositionSpec:
        if (self.stacks is None) != (self.wind_rose is None):
            raise ValueError("stacks and wind_rose go together: the plume needs both")
        if (self.scavenging > 0) != (self.rain_fraction > 0):
            raise ValueError(
                "scavenging (1/s) and rain_fraction (0-1) go together: washout needs both "
                "(or neither, for dry deposition only)"
            )
        return self


class LandUsePractice(_Strict):
    """What one land-use class receives and removes each year (agricultural practice)."""

    fertiliser: float = Field(default=0.0, ge=0.0, description="fertiliser applied (kg/ha/yr)")
    manure: float = Field(default=0.0, ge=0.0, description="manure applied (kg/ha/yr, dry)")
    irrigation: float = Field(default=0.0, ge=0.0, description="irrigation water (mm/yr)")
    crop_yield: float = Field(
        default=0.0, ge=0.0, description="harvest removed (t/ha/yr dry matter)"
    )


class AgricultureSpec(_Strict):
    """Agricultural inputs per land-use class: rates per class times metal contents."""

    land_use: str | LandUseRaster | None = Field(
        default=None,
        description="one land-use class for the scene, or a land-use raster and its codes; "
        "default: risk.land_use",
    )
    practice: dict[str, LandUsePractice] = Field(
        min_length=1,
        description="land-use class name -> its rates; every class of the land use needs "
        "a row ({} for none)",
    )
    fertiliser_content: dict[str, float] = Field(
        default_factory=dict, description="metal -> content of the fertiliser (mg/kg)"
    )
    manure_content: dict[str, float] = Field(
        default_factory=dict, description="metal -> content of the manure (mg/kg dry matter)"
    )
    irrigation_content: dict[str, float] = Field(
        default_factory=dict, description="metal -> concentration in irrigation water (mg/L)"
    )

    @model_validator(mode="after")
    def _contents(self) -> AgricultureSpec:
        for key in ("fertiliser_content", "manure_content", "irrigation_content"):
            bad = {m: v for m, v in getattr(self, key).items() if v < 0}
            if bad:
                raise ValueError(f"{key}: contents must be >= 0, got {bad}")
        return self


class KdRegression(_Strict):
    """A pH / organic-matter transfer function, log10 Kd = intercept + ph pH + log_som log10(SOM).

    The form of Sauvé, Hendershot & Allen (2000); geohm ships no coefficients (see
    :mod:`geohm.accumulation.soil`): give those of a regression you have checked, and
    where they come from.
    """

    intercept: float = Field(description="intercept a (log10 L/kg)")
    ph: float = Field(description="pH coefficient b (log10 L/kg per pH unit)")
    log_som: float = Field(
        default=0.0, description="organic-matter coefficient c (log10 L/kg per log10 %)"
    )
    source: str = Field(min_length=1, description="where the coefficients come from (cited)")


class AccumulationSpec(_Strict):
    """Mass-balance projection of topsoil metal concentrations (seed 003)."""

    years: int = Field(default=50, ge=1, le=1000, description="projection horizon (yr)")
    output_years: list[int] = Field(
        default_factory=lambda: [10, 20, 50],
        description="years written as <M>_conc_y<k>.tif (yr)",
    )
    depth: float = Field(default=0.2, gt=0.0, description="plough-layer depth (m)")
    bulk_density: float = Field(default=1300.0, gt=0.0, description="dry bulk density (kg/m3)")
    theta: float = Field(default=0.3, ge=0.0, le=1.0, description="water content (m3/m3)")
    deposition: DepositionSpec | None = Field(
        default=None,
        description="atmospheric deposition: point sources through a plume, or rasters",
    )
    fertiliser: dict[str, float] = Field(
        default_factory=dict,
        description="metal -> input with fertiliser, whole scene (mg/m2/yr)",
    )
    manure: dict[str, float] = Field(
        default_factory=dict, description="metal -> input with manure, whole scene (mg/m2/yr)"
    )
    irrigation_mm: float = Field(default=0.0, ge=0.0, description="irrigation water (mm/yr)")
    irrigation_mg_l: dict[str, float] = Field(
        default_factory=dict, description="metal -> concentration in irrigation water (mg/L)"
    )
    percolation_mm: float = Field(
        default=0.0, ge=0.0, description="water percolating below the plough layer (mm/yr)"
    )
    runoff_mm: float = Field(default=0.0, ge=0.0, description="surface runoff (mm/yr)")
    kd: dict[str, float | KdRegression] = Field(
        default_factory=dict,
        description="metal -> Kd (L/kg), or the coefficients of a pH/organic-matter "
        "transfer function",
    )
    ph: float | Path | None = Field(
        default=None, description="soil pH (-) or a pH raster, for Kd regressions; default risk.ph"
    )
    som: float | Path | None = Field(
        default=None, description="soil organic matter (% by mass) or a raster, for log_som"
    )
    agriculture: AgricultureSpec | None = Field(
        default=None,
        description="inputs per land-use class, instead of the scene-wide fertiliser, "
        "manure, irrigation_mm, irrigation_mg_l and crop_yield",
    )
    erosion: dict[str, float] | None = Field(
        default=None,
        description="RUSLE factors R (MJ mm/(ha h yr)), K (t ha h/(ha MJ mm)), C, P, sdr "
        "(sediment delivery ratio) and enrichment (-); LS from the DEM",
    )
    crop_yield: float = Field(
        default=0.0, ge=0.0, description="harvest removed, whole scene (t/ha/yr dry matter)"
    )
    bcf: dict[str, float] = Field(
        default_factory=dict,
        description="metal -> bioconcentration factor of the harvest, crop over soil (-)",
    )
    calibrate: bool = Field(
        default=False,
        description="correct the net input by the change between the source and target "
        "surveys (a forest on the covariates), kept only if spatial CV shows it predicts the "
        "change better",
    )
    calibration_years: float | None = Field(
        default=None, gt=0.0, description="years between the source and the target survey (yr)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> AccumulationSpec:
        late = [y for y in self.output_years if not 1 <= y <= self.years]
        if late:
            raise ValueError(f"output_years {late} are outside 1..years ({self.years})")
        flat = [
            k
            for k in ("fertiliser", "manure", "irrigation_mg_l", "irrigation_mm", "crop_yield")
            if getattr(self, k)
        ]
        if self.agriculture is not None and flat:
            raise ValueError(
                f"agricultural inputs are given both per land-use class (agriculture) and "
                f"for the whole scene ({', '.join(flat)}); keep one"
            )
        if isinstance(self.ph, float) and not 0.0 <= self.ph <= 14.0:
            raise ValueError(f"ph must be within 0-14, got {self.ph}")
        if isinstance(self.som, float) and self.som <= 0:
            raise ValueError(f"som is organic matter in % by mass and must be > 0, got {self.som}")
        uses_som = [m for m, v in self.kd.items() if isinstance(v, KdRegression) and v.log_som]
        if uses_som and self.som is None:
            raise ValueError(
                f"the Kd regression of {uses_som} has an organic-matter term (log_som): give "
                "som (% by mass, a number or a raster)"
            )
        if self.erosion is not None:
            unknown = sorted(set(self.erosion) - {"R", "K", "C", "P", "sdr", "enrichment"})
            if unknown:
                raise ValueError(
                    f"unknown erosion factor(s) {unknown}; give R, K, C, P, sdr, enrichment"
                )
        return self

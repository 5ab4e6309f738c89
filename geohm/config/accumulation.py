"""The ``accumulation:`` block of a scene: the mass-balance projection (seed 003)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from geohm.config.base import _Strict

__all__ = ["AccumulationSpec", "DepositionSpec"]


class DepositionSpec(_Strict):
    """Atmospheric deposition: point sources through a Gaussian plume, or given rasters."""

    stacks: Path | None = Field(
        default=None,
        description="CSV: x, y (m, in the stacks' crs), height (m, effective release "
        "height), one emission column per metal (kg/yr)",
    )
    stacks_crs: str | None = Field(default=None, description="CRS of the stacks' x, y")
    wind_rose: Path | None = Field(
        default=None,
        description="CSV: sector_deg (wind from, clockwise from north), speed (m/s), "
        "class (A-F), frequency (summing to 1)",
    )
    v_d: float = Field(default=0.005, gt=0.0, description="dry deposition velocity (m/s)")
    scavenging: float = Field(default=0.0, ge=0.0, description="washout coefficient (1/s)")
    rain_fraction: float = Field(default=0.0, ge=0.0, le=1.0, description="share of time raining")
    terrain: Literal["rural", "urban"] = "rural"
    rasters: dict[str, Path] = Field(
        default_factory=dict, description="metal -> deposition raster (mg/m2/yr)"
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


class AccumulationSpec(_Strict):
    """Mass-balance projection of topsoil metal concentrations (seed 003)."""

    years: int = Field(default=50, ge=1, le=1000, description="projection horizon (yr)")
    output_years: list[int] = Field(
        default_factory=lambda: [10, 20, 50], description="years written as <M>_conc_y<k>.tif"
    )
    depth: float = Field(default=0.2, gt=0.0, description="plough-layer depth (m)")
    bulk_density: float = Field(default=1300.0, gt=0.0, description="dry bulk density (kg/m3)")
    theta: float = Field(default=0.3, ge=0.0, le=1.0, description="water content (m3/m3)")
    deposition: DepositionSpec | None = None
    fertiliser: dict[str, float] = Field(default_factory=dict, description="metal -> mg/m2/yr")
    manure: dict[str, float] = Field(default_factory=dict, description="metal -> mg/m2/yr")
    irrigation_mm: float = Field(default=0.0, ge=0.0, description="irrigation water (mm/yr)")
    irrigation_mg_l: dict[str, float] = Field(
        default_factory=dict, description="metal -> concentration in irrigation water (mg/L)"
    )
    percolation_mm: float = Field(default=0.0, ge=0.0, description="percolation (mm/yr)")
    runoff_mm: float = Field(default=0.0, ge=0.0, description="surface runoff (mm/yr)")
    kd: dict[str, float] = Field(default_factory=dict, description="metal -> Kd (L/kg)")
    erosion: dict[str, float] | None = Field(
        default=None,
        description="RUSLE factors R, K, C, P and sdr, enrichment; LS from the DEM",
    )
    crop_yield: float = Field(default=0.0, ge=0.0, description="harvest (t/ha/yr dry matter)")
    bcf: dict[str, float] = Field(default_factory=dict, description="metal -> BCF (-)")
    calibrate: bool = Field(
        default=False,
        description="correct the net input by the change between the source and target "
        "surveys (a forest on the covariates), kept only if spatial CV shows it predicts the "
        "change better",
    )
    calibration_years: float | None = Field(
        default=None, gt=0.0, description="years between the source and the target survey"
    )

    @model_validator(mode="after")
    def _consistent(self) -> AccumulationSpec:
        late = [y for y in self.output_years if not 1 <= y <= self.years]
        if late:
            raise ValueError(f"output_years {late} are outside 1..years ({self.years})")
        if self.erosion is not None:
            unknown = sorted(set(self.erosion) - {"R", "K", "C", "P", "sdr", "enrichment"})
            if unknown:
                raise ValueError(
                    f"unknown erosion factor(s) {unknown}; give R, K, C, P, sdr, enrichment"
                )
        return self

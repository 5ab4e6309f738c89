"""The ``risk:`` and ``classification:`` blocks of a scene: risk maps and contamination labels."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from geohm.config.base import LandUseRaster, _Strict

__all__ = ["RISK_INDICES", "ClassificationSpec", "RiskSpec"]

RISK_INDICES = ("single_factor", "nemerow", "igeo", "hakanson", "exceedance")


class RiskSpec(_Strict):
    """Risk maps from the predicted concentrations (standards, land use, pH)."""

    standard: str = Field(
        default="gb15618",
        description="screening values (mg/kg): gb15618 (agricultural land), gb36600 "
        "(construction land), seed001, or the path of a standards CSV",
    )
    user_standard: dict[str, Any] | None = Field(
        default=None,
        description="screening values given inline, replacing standard (mg/kg): per metal "
        "a number, the 4 GB 15618 pH bands, {ph_breaks, values}, or such per land use",
    )
    land_use: str | LandUseRaster = Field(
        default="other",
        description="land-use class of the standard (gb15618: paddy, orchard, other; "
        "gb36600: class1, class2), or a land-use raster and its codes",
    )
    ph: float | Path = Field(
        default=6.8,
        description="soil pH for pH-banded screening values (-): one value within 0-14, or "
        "a pH raster aligned onto the scene grid",
    )
    background: str = Field(
        default="national",
        description="region of the soil background values (mg/kg) of igeo and hakanson: "
        "national (China, A horizon) or shaanxi",
    )
    indices: list[Literal[RISK_INDICES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["single_factor", "nemerow"],
        description="index maps: single_factor (Pi = C/S), nemerow (P_N), igeo, hakanson "
        "(RI) and exceedance (P(C > S))",
    )
    grading: dict[str, str | dict[str, Any]] = Field(
        default_factory=dict,
        description="classes replaced per index (single_factor, nemerow, igeo, hakanson_ri): "
        "a built-in grading name or {breaks, labels}",
    )
    toxic_response: dict[str, float] = Field(
        default_factory=dict,
        description="metal -> Hakanson toxic-response factor T_r, overriding the table (-)",
    )
    likely_probability: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="P(C > screening value) from which a pixel is 'likely exceeds' (0-1)",
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
        description="metal -> limit above which a sample is labelled contaminated (mg/kg); "
        "default: the risk standard's screening values",
    )
    folds: int = Field(default=10, ge=2, description="folds of the stratified k-fold CV (folds)")
    repeats: int = Field(
        default=3, ge=1, description="repeats of that CV, each with its own seed (repeats)"
    )
    probability: float = Field(
        default=0.5,
        gt=0.0,
        lt=1.0,
        description="P(contaminated) from which a pixel is classed contaminated (0-1)",
    )

"""The ``output:``, ``zones:`` and ``sampling_design:`` blocks of a scene: what is written."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from geohm.config.base import _Strict

__all__ = ["OutputSpec", "SamplingDesignSpec", "ZonesSpec"]


class OutputSpec(_Strict):
    """Where and how outputs are written."""

    dir: Path = Field(
        default=Path("out"),
        description="output folder, relative to the scene YAML; --out overrides it",
    )
    tile: int | None = Field(
        default=None,
        ge=16,
        description="side of the square prediction windows (pixels); default: derived from "
        "memory_mb",
    )
    workers: int = Field(
        default=0, ge=0, description="windows computed at once; 0: all cores (windows)"
    )
    memory_mb: int = Field(
        default=1024,
        ge=64,
        description="memory budget of the windows in flight, from which the window size is "
        "derived (MiB)",
    )
    quicklooks: bool = Field(
        default=True, description="write a PNG quicklook of every map, with the samples"
    )
    uncertainty: bool = Field(
        default=True,
        description="write <target>_uncertainty.tif: the width (mg/kg) of the central "
        "prediction interval of coverage validation.interval_coverage",
    )
    bins: dict[str, list[float]] = Field(
        default_factory=dict,
        description="per target, the edges of the area-by-concentration table (mg/kg)",
    )
    applicability: bool = Field(
        default=True,
        description="the area of applicability: <target>_di.tif (dissimilarity index) and "
        "<target>_aoa.tif (1 inside, 0 outside), weighted by permutation importance on the "
        "spatial CV folds (Meyer & Pebesma 2021)",
    )


class ZonesSpec(_Strict):
    """Polygons (parcels, land-use units) to total the area above the standard in."""

    path: Path = Field(description="polygon file (GeoPackage, shapefile, GeoJSON), any CRS")
    id: str = Field(description="column with each zone's id")
    layer: str | None = Field(default=None, description="layer of a file with several")


class SamplingDesignSpec(_Strict):
    """Where to sample next: points that most reduce uncertainty about exceedance."""

    n: int = Field(default=20, ge=1, description="points to suggest per metal (points)")
    min_spacing_m: float = Field(
        default=300.0,
        ge=0.0,
        description="least distance from each other and from the existing samples (m)",
    )
    pool_size: int = Field(
        default=250_000, ge=1000, description="best-scoring pixels kept as candidates (pixels)"
    )

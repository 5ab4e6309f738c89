"""What every block of the scene schema shares: strict keys, and the land-use raster."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LandUseRaster"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class LandUseRaster(_Strict):
    """A land-use raster and what its codes mean (``{1: paddy, 2: orchard, 3: other}``)."""

    path: Path = Field(description="raster of integer land-use codes, any grid (nearest neighbour)")
    classes: dict[int, str] = Field(min_length=1, description="raster code -> land-use class name")

"""The ``landsat: {stac: ...}`` form: Landsat Collection 2 Level-2 from a STAC item or catalogue."""

from __future__ import annotations

from pydantic import Field

from geohm.config.base import _Strict

__all__ = ["StacSpec"]


class StacSpec(_Strict):
    """A Landsat C2 L2 scene found through STAC instead of a local folder."""

    stac: str = Field(
        description="a STAC Item JSON (file or URL), or a static catalogue / collection JSON "
        "searched with 'datetime' and 'bbox' for the least cloudy item"
    )

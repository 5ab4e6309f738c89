"""The ``landsat: {stac: ...}`` form: Landsat Collection 2 Level-2 from a STAC item or catalogue.

A scene is found either in a static STAC document (``stac:``: an Item, a Catalog, a
Collection or an ItemCollection JSON, as a file or a URL) or by a search of a STAC API
(``stac_api:``, through ``pystac-client``). With a catalogue, ``datetime``, ``bbox``,
``max_cloud`` and ``collection`` choose among its items: the least cloudy one that
matches them all is read. Reading is done by :mod:`geohm.io.landsat.stac`.

:data:`LandsatSource` is the type of the ``landsat:`` key: a folder (a path) or this
block, told apart by their form (a mapping is this block), so that a misspelt key in
the block is reported as such, not as "not a valid path".
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from geohm.config.base import _Strict

__all__ = ["LandsatSource", "StacSpec", "is_url", "parse_datetime_range"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(text: str) -> bool:
    """Whether ``text`` is a URL (``scheme://...``), not a file path.

    Examples
    --------
    >>> is_url("https://example.org/catalog.json"), is_url("items/a.json"), is_url("C:/a.json")
    (True, False, False)
    """
    return bool(_URL.match(text))


def _instant(text: str, *, end: bool) -> _dt.datetime:
    """One RFC 3339 date-time (UTC when no offset), or a date: its first or last instant."""
    s = text.strip()
    try:
        if len(s) == 10:  # a date: the whole day
            day = _dt.date.fromisoformat(s)
            t = _dt.time.max if end else _dt.time.min
            return _dt.datetime.combine(day, t, tzinfo=_dt.UTC)
        value = _dt.datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2019-11-15) or an RFC 3339 date-time (2019-11-15T03:35:00Z)"
        ) from None
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.UTC)


def parse_datetime_range(text: str) -> tuple[_dt.datetime | None, _dt.datetime | None]:
    """The ``(start, end)`` instants (UTC-aware, inclusive) of a STAC ``datetime`` string.

    Parameters
    ----------
    text : str
        ``"2019-11-01/2019-11-30"`` (dates cover whole days), one date or date-time, or
        an open range such as ``"../2019-12-31"`` or ``"2019-01-01/.."``.

    Returns
    -------
    tuple of (datetime or None, datetime or None)
        ``None`` for an open end.

    Raises
    ------
    ValueError
        Not a date or date-time, more than one ``/``, both ends open, or start after end.

    Examples
    --------
    >>> start, end = parse_datetime_range("2019-11-15")
    >>> start.isoformat(), end.isoformat()
    ('2019-11-15T00:00:00+00:00', '2019-11-15T23:59:59.999999+00:00')
    >>> parse_datetime_range("../2019-01-01T00:00:00Z")[0] is None
    True
    """
    parts = text.split("/")
    if len(parts) == 1:
        return _instant(parts[0], end=False), _instant(parts[0], end=True)
    if len(parts) != 2:
        raise ValueError(f"{text!r} has more than one '/'; give START/END")
    start = None if parts[0].strip() in ("", "..") else _instant(parts[0], end=False)
    end = None if parts[1].strip() in ("", "..") else _instant(parts[1], end=True)
    if start is None and end is None:
        raise ValueError(f"{text!r} is open at both ends; give at least one date")
    if start is not None and end is not None and start > end:
        raise ValueError(f"{text!r} starts after it ends")
    return start, end


class StacSpec(_Strict):
    """A Landsat C2 L2 scene found through STAC instead of a local folder.

    Give ``stac`` (a static document) or ``stac_api`` (a search), not both. The DEM
    and the other layers stay local files.
    """

    stac: str | None = Field(
        default=None,
        description="a STAC Item JSON (file or URL), or a static Catalog / Collection / "
        "ItemCollection JSON searched with 'datetime', 'bbox', 'max_cloud' and 'collection' "
        "for the least cloudy matching item; a relative file path is relative to the config",
    )
    stac_api: str | None = Field(
        default=None,
        description="root URL of a STAC API searched with pystac-client (install geohm[stac]) "
        "for the least cloudy item; needs 'collection', 'datetime' and 'bbox'",
    )
    collection: str | None = Field(
        default=None,
        description="STAC collection id the item must belong to (e.g. landsat-c2-l2)",
    )
    datetime: str | None = Field(
        default=None,
        description="acquisition date range, UTC: START/END (2019-11-01/2019-11-30; dates "
        "include the whole day), one date, or an open range (../2019-12-31)",
    )
    bbox: list[float] | None = Field(
        default=None,
        description="[west, south, east, north] in degrees of longitude / latitude "
        "(WGS 84); the item's footprint must intersect it",
    )
    max_cloud: float | None = Field(
        default=None,
        ge=0.0,
        le=100.0,
        description="largest scene cloud cover accepted, in percent (the item's "
        "eo:cloud_cover); items without one are then left out",
    )

    @field_validator("datetime")
    @classmethod
    def _datetime_range(cls, v: str | None) -> str | None:
        if v is not None:
            parse_datetime_range(v)
        return v

    @field_validator("bbox")
    @classmethod
    def _lonlat(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) != 4:
            raise ValueError(
                f"must be 4 numbers [west, south, east, north] in degrees, got {len(v)}"
            )
        west, south, east, north = v
        if not (-180.0 <= west < east <= 180.0):
            raise ValueError(
                f"west {west} and east {east} must be longitudes in degrees (-180 to 180) "
                "with west < east; bbox is [west, south, east, north]"
            )
        if not (-90.0 <= south < north <= 90.0):
            raise ValueError(
                f"south {south} and north {north} must be latitudes in degrees (-90 to 90) "
                "with south < north; bbox is [west, south, east, north]"
            )
        return v

    @model_validator(mode="after")
    def _one_source(self) -> StacSpec:
        if (self.stac is None) == (self.stac_api is None):
            raise ValueError(
                "give either 'stac' (an item, catalogue or collection JSON) or 'stac_api' "
                "(the URL of a STAC API to search), exactly one of them"
            )
        if self.stac_api is not None:
            missing = [k for k in ("collection", "datetime", "bbox") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"a 'stac_api' search needs {', '.join(repr(m) for m in missing)} "
                    "(e.g. collection: landsat-c2-l2)"
                )
            if not is_url(self.stac_api):
                raise ValueError(f"'stac_api' must be a URL (https://...), got {self.stac_api!r}")
        return self

    @property
    def date_range(self) -> tuple[_dt.datetime | None, _dt.datetime | None]:
        """``datetime`` as ``(start, end)`` UTC instants (``(None, None)`` when not set)."""
        return (None, None) if self.datetime is None else parse_datetime_range(self.datetime)

    @property
    def where(self) -> str:
        """The document or API this block reads, for messages."""
        return str(self.stac if self.stac is not None else self.stac_api)

    def resolve(self, base: Path) -> None:
        """Make a relative ``stac`` file path absolute against ``base``; URLs stay as they are."""
        if self.stac is not None and not is_url(self.stac):
            path = Path(self.stac)
            if not path.is_absolute():
                self.stac = str((base / path).resolve())


def _landsat_form(value: Any) -> str:
    """Which form a ``landsat:`` value has: the STAC block (a mapping) or a folder path."""
    return "stac-block" if isinstance(value, dict | StacSpec) else "folder-path"


#: The type of ``landsat:``: a scene folder (or its ``_MTL.txt``) or a :class:`StacSpec`.
LandsatSource = Annotated[
    Annotated[Path, Tag("folder-path")] | Annotated[StacSpec, Tag("stac-block")],
    Discriminator(_landsat_form),
]

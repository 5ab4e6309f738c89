"""Monitoring-well series: reading the long table, writing the warning layer.

Read (:func:`read_series_table`): a long table, one row per sample (site id, sampling
time, one column per metal, optional covariates, and the site coordinates), as CSV or
GeoPackage (coordinates from the point geometry), or the Tullnerfeld chloride series that
ship with R's gstat package (``tull.rda``: read without R through ``rdata``,
:func:`read_tull`). Written: the warning layer ``series_warning.gpkg``
(:func:`write_warning_layer`); reports, tables and figures go through
:mod:`geohm.io.reports`.

Every problem of an input is an :class:`~geohm.errors.InputError` naming the file and the
column (and the rows) and saying what to do; a value that is not a number is not an error
but a sample left out of that metal, listed in :attr:`SeriesTable.left_out`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from geohm.errors import InputError
from geohm.io.point_styles import write_qml_categories
from geohm.io.rasters import atomic_path

__all__ = [
    "SeriesTable",
    "read_series_table",
    "read_tull",
    "write_warning_layer",
    "write_warning_style",
]

PathLike = str | os.PathLike[str]

#: R objects of gstat's tull data set: the wide chloride table and the well coordinates.
_TULL_SERIES, _TULL_WELLS, _TULL_DATE = "Chlorid92", "tull36", "Datum"
#: The time zone of the Tullnerfeld dates (stored as local midnight in POSIXct seconds).
_TULL_TZ = "Europe/Vienna"


@dataclass
class SeriesTable:
    """A long table of well samples, as read.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``site`` (str), ``time`` (datetime64), one float column per metal (NaN:
        no usable value) and per covariate; one row per sample, in file order.
    sites : pandas.DataFrame
        Index ``site``; columns ``x``, ``y`` (CRS units, or local units without a CRS).
    crs : str or None
        The CRS of the coordinates (WKT or authority string); None for local coordinates.
    source : str
        The file read (for messages and reports).
    left_out : list of dict
        Values left out while reading: ``{"row", "site", "time", "metal", "reason"}``.
    notes : list of str
        What the reader assumed (units, time zone).
    """

    table: pd.DataFrame
    sites: pd.DataFrame
    crs: str | None
    source: str
    left_out: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _need_columns(frame: pd.DataFrame, columns: list[str], source: str, what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(
            f"{source}: no column {', '.join(repr(c) for c in missing)} ({what}); the file has "
            f"{', '.join(map(str, frame.columns))}: rename the column or set the key in "
            "SERIES.yaml's data block"
        )


def _read_frame(path: Path, layer: str | None, what: str) -> tuple[pd.DataFrame, Any]:
    """A CSV or GeoPackage as a DataFrame (GeoPackage: x, y from its points) and its CRS."""
    if not path.is_file():
        raise InputError(f"{what} '{path}' does not exist; check data.path in SERIES.yaml")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False), None
        except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise InputError(f"{what} '{path}' cannot be read as CSV: {exc}") from None
    if suffix == ".gpkg":
        try:
            gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
        except Exception as exc:  # pyogrio's errors: DataSourceError, DataLayerError, ...
            raise InputError(f"{what} '{path}' cannot be read as GeoPackage: {exc}") from None
        frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        if gdf.geometry.notna().any():
            if not (gdf.geometry.geom_type.dropna() == "Point").all():
                raise InputError(f"{what} '{path}': the sites must be points")
            frame["__x"] = gdf.geometry.x
            frame["__y"] = gdf.geometry.y
        return frame, gdf.crs
    raise InputError(
        f"{what} '{path}': unknown format '{suffix}'; give a .csv, a .gpkg or gstat's tull.rda"
    )


def _numbers(
    frame: pd.DataFrame, column: str, source: str, left_out: list[dict[str, Any]] | None
) -> pd.Series:
    """A column as floats; text that is no number is NaN (listed in ``left_out``)."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").astype(float)
    text = raw.astype(str).str.strip()
    empty = raw.isna() | text.isin(["", "nan", "NaN", "NA", "<NA>", "None"])
    bad = values.isna() & ~empty
    if left_out is not None:
        for i in np.flatnonzero(empty.to_numpy() | bad.to_numpy()):
            why = "no value" if empty.iloc[i] else f"not a number: {text.iloc[i]!r}"
            left_out.append({"row": int(i) + 1, "metal": column, "reason": why})
    elif bad.any():
        rows = (np.flatnonzero(bad.to_numpy()) + 1).tolist()[:5]
        raise InputError(
            f"{source}: column '{column}' has values that are not numbers (data rows {rows}); "
            "fix them or leave the cells empty"
        )
    negative = values < 0
    if left_out is not None and negative.any():  # a concentration (a covariate may be < 0)
        rows = (np.flatnonzero(negative.to_numpy()) + 1).tolist()[:5]
        raise InputError(
            f"{source}: column '{column}' has negative concentrations (data rows {rows}); "
            "a concentration cannot be negative: fix the rows"
        )
    return values


def _times(frame: pd.DataFrame, column: str, fmt: str | None, source: str) -> pd.Series:
    raw = frame[column]
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        text = raw.astype(str).str.strip()
        parsed = pd.to_datetime(text, format=fmt or "ISO8601", errors="coerce")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert(None)
    bad = parsed.isna()
    if bad.any():
        rows = (np.flatnonzero(bad.to_numpy()) + 1).tolist()[:5]
        first = raw[bad].iloc[0]
        raise InputError(
            f"{source}: column '{column}' has time values that cannot be read (data rows {rows}, "
            f"e.g. {first!r}); write them as ISO 8601 dates (1995-03-14) or set data.time_format"
        )
    return parsed.astype("datetime64[ns]")


def read_series_table(
    path: PathLike,
    *,
    metals: list[str],
    covariates: list[str] = (),  # type: ignore[assignment]
    site: str = "site",
    time: str = "time",
    time_format: str | None = None,
    x: str = "x",
    y: str = "y",
    crs: str | None = None,
    layer: str | None = None,
    sites: PathLike | None = None,
) -> SeriesTable:
    """Read a long table of well samples (CSV, GeoPackage, or gstat's ``tull.rda``).

    Parameters
    ----------
    path : path-like
        The table. A ``.rda`` file is read as gstat's ``tull`` (:func:`read_tull`).
    metals, covariates : list of str
        Concentration columns (data units) and numeric covariate columns.
    site, time : str
        Columns of the site id and the sampling time.
    time_format : str, optional
        ``strptime`` format of the time column (default ISO 8601).
    x, y : str
        Coordinate columns (of ``path``, or of ``sites`` when given); a GeoPackage's
        point geometry is used when the columns are absent.
    crs : str, optional
        CRS of the coordinates (a GeoPackage's own CRS wins).
    layer : str, optional
        GeoPackage layer.
    sites : path-like, optional
        A separate table of site coordinates (``site``, ``x``, ``y``).

    Returns
    -------
    SeriesTable

    Raises
    ------
    InputError
        A missing file or column, a time value that cannot be read, a negative
        concentration, a site without coordinates or with two different ones.
    """
    p = Path(path)
    if p.suffix.lower() == ".rda":
        return read_tull(p, metal=metals[0] if metals else "chloride")
    source = str(p)
    frame, file_crs = _read_frame(p, layer, "series table")
    _need_columns(frame, [site, time], source, "site id and sampling time")
    _need_columns(frame, list(metals), source, "data.metals")
    _need_columns(frame, list(covariates), source, "data.covariates")
    left_out: list[dict[str, Any]] = []
    out = pd.DataFrame({"site": frame[site].astype(str).str.strip()})
    empty_site = out["site"].isin(["", "nan", "None"])
    if empty_site.any():
        rows = (np.flatnonzero(empty_site.to_numpy()) + 1).tolist()[:5]
        raise InputError(f"{source}: column '{site}' is empty in data rows {rows}; name each site")
    out["time"] = _times(frame, time, time_format, source)
    for m in metals:
        out[m] = _numbers(frame, m, source, left_out)
    for c in covariates:
        out[c] = _numbers(frame, c, source, None)
    for rec in left_out:
        rec["site"] = out["site"].iloc[rec["row"] - 1]
        rec["time"] = str(out["time"].iloc[rec["row"] - 1].date())
    if sites is not None:
        sp = Path(sites)
        site_frame, site_crs = _read_frame(sp, None, "sites table")
        coords = _coordinates(site_frame, site, x, y, str(sp))
        crs_out = site_crs if site_crs is not None else crs
    else:
        coords = _coordinates(frame.assign(**{site: out["site"]}), site, x, y, source)
        crs_out = file_crs if file_crs is not None else crs
    missing = sorted(set(out["site"]) - set(coords.index))
    if missing:
        raise InputError(
            f"{sites or source}: site(s) {', '.join(missing[:10])} have no coordinates; add "
            f"their {x}, {y} (or leave their rows out)"
        )
    crs_text = None if crs_out is None else str(getattr(crs_out, "to_string", lambda: crs_out)())
    return SeriesTable(out, coords.loc[sorted(set(out["site"]))], crs_text, source, left_out)


def _coordinates(frame: pd.DataFrame, site: str, x: str, y: str, source: str) -> pd.DataFrame:
    """One (x, y) per site; an error for a site without coordinates or with two."""
    if x not in frame.columns and "__x" in frame.columns:
        x, y = "__x", "__y"
    _need_columns(frame, [site, x, y], source, "site coordinates")
    xy = pd.DataFrame(
        {
            "site": frame[site].astype(str).str.strip(),
            "x": pd.to_numeric(frame[x], errors="coerce"),
            "y": pd.to_numeric(frame[y], errors="coerce"),
        }
    )
    names = sorted(set(xy["site"]) - set(xy.dropna()["site"]))
    if names:
        raise InputError(
            f"{source}: site(s) {', '.join(names[:10])} have no coordinates in columns "
            f"'{x}', '{y}'; add them (every site is a point of series_warning.gpkg)"
        )
    xy = xy.dropna()
    spread = xy.groupby("site")[["x", "y"]].agg(lambda v: float(v.max() - v.min()))
    moved = spread.index[(spread > 1e-6 * (1 + xy[["x", "y"]].abs().max())).any(axis=1)]
    if len(moved):
        raise InputError(
            f"{source}: site(s) {', '.join(map(str, moved[:10]))} have different coordinates "
            "in different rows; give one position per site (or distinct site ids)"
        )
    return xy.groupby("site")[["x", "y"]].first()


def read_tull(path: PathLike, *, metal: str = "chloride") -> SeriesTable:
    """The Tullnerfeld chloride series of R's gstat package, as a long table.

    ``tull.rda`` holds ``Chlorid92`` (a wide table: ``Datum``, the sampling date as
    POSIXct seconds at local midnight, and one column of chloride per well, 1992-1997)
    and ``tull36`` (the 36 wells' coordinates, row names the well ids); ``TULLNREG`` (a
    prediction grid) is not used. Müller (2007), *Collecting Spatial Data*, 3rd ed.

    Parameters
    ----------
    path : path-like
        gstat's ``data/tull.rda``.
    metal : str
        Name given to the chloride column (SERIES.yaml's ``data.metals``).

    Returns
    -------
    SeriesTable
        Local coordinates (no CRS: gstat's help says metres, but the values are
        rescaled, spanning about 1.5 units); dates as local calendar days.

    Raises
    ------
    InputError
        The file is missing, not R data, or lacks the two objects.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"'{p}' does not exist; install Debian's r-cran-gstat (its data/tull.rda) or fix "
            "data.path"
        )
    try:
        import rdata

        with warnings.catch_warnings():  # POSIXct has no converter: the seconds come as floats
            warnings.simplefilter("ignore", UserWarning)
            objects = rdata.conversion.convert(rdata.parser.parse_file(p))
    except Exception as exc:  # rdata raises ValueError, NotImplementedError, ...
        raise InputError(f"'{p}' cannot be read as R data (rdata): {exc}") from None
    if _TULL_SERIES not in objects or _TULL_WELLS not in objects:
        raise InputError(
            f"'{p}' holds {sorted(objects)}, not gstat's {_TULL_SERIES} and {_TULL_WELLS}; "
            "other R data: export it to a CSV long table"
        )
    wide = pd.DataFrame(objects[_TULL_SERIES])
    wells = pd.DataFrame(objects[_TULL_WELLS])
    stamps = pd.to_datetime(wide[_TULL_DATE].astype(float), unit="s", utc=True)
    days = stamps.dt.tz_convert(_TULL_TZ).dt.tz_localize(None).dt.normalize()
    values = wide.drop(columns=_TULL_DATE).astype("float64")
    long = values.assign(time=days.to_numpy()).melt(
        id_vars="time", var_name="site", value_name=metal
    )
    long = long.dropna(subset=[metal])[["site", "time", metal]].reset_index(drop=True)
    long["time"] = long["time"].astype("datetime64[ns]")
    sites = wells.rename_axis("site")[["x", "y"]].astype(float)
    sites.index = sites.index.astype(str)
    unknown = sorted(set(long["site"]) - set(sites.index))
    if unknown:
        raise InputError(f"'{p}': wells {unknown} of {_TULL_SERIES} are not in {_TULL_WELLS}")
    notes = [
        f"{p.name}: gstat's Tullnerfeld data (Müller 2007): {_TULL_SERIES} melted to a long "
        f"table, empty cells (no sample that day) dropped; dates are local days ({_TULL_TZ})",
        "coordinates are gstat's tull36 as shipped: local, rescaled units without a CRS",
    ]
    used = sites.loc[sorted(set(long["site"]))]
    return SeriesTable(long, used, None, str(p), [], notes)


def write_warning_layer(
    path: PathLike, table: pd.DataFrame, *, crs: str | None, layer: str = "series_warning"
) -> Path:
    """Write the sites' warning table as a GeoPackage point layer (atomically).

    Parameters
    ----------
    path : path-like
        Destination ``.gpkg``.
    table : pandas.DataFrame
        One row per site and metal, with ``x`` and ``y`` columns (the point).
    crs : str or None
        CRS of ``x``, ``y``; None writes the layer without a CRS (local coordinates).
    layer : str
        Layer name.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    final = Path(path)
    geometry = gpd.points_from_xy(table["x"].to_numpy(), table["y"].to_numpy())
    gdf = gpd.GeoDataFrame(table.drop(columns=["x", "y"]), geometry=geometry, crs=crs)
    with atomic_path(final) as tmp, warnings.catch_warnings():
        # local coordinates (gstat's tull): no CRS on purpose; the report says so
        warnings.filterwarnings("ignore", "'crs' was not provided", UserWarning)
        gdf.to_file(tmp, driver="GPKG", layer=layer, engine="pyogrio")
    return final


#: The warning levels' legend: value, label, colour (low to high).
WARNING_STYLE = (
    ("low", "low: unlikely to exceed within the horizon", "#1a9850"),
    ("medium", "medium", "#fdae61"),
    ("high", "high: likely to exceed within the horizon", "#d7191c"),
)


def write_warning_style(path: PathLike) -> Path:
    """The QGIS style of ``series_warning.gpkg``: sites coloured by warning level, labelled.

    Parameters
    ----------
    path : path-like
        The ``.qml`` beside the GeoPackage (``series_warning.qml``).

    Returns
    -------
    pathlib.Path
        The written file.
    """
    return write_qml_categories(path, "level", WARNING_STYLE, label_field="site")

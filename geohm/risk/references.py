"""Reference values of the indices: soil backgrounds and toxic-response factors.

Background values (for I_geo and E_r) and Hakanson's toxic-response factors T_r, from the
tables in ``geohm/standards`` or a user's copy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from geohm.errors import ConfigError
from geohm.io.standard_tables import number_cell, read_table

__all__ = ["background", "toxic_response"]


def background(
    metal: str,
    region: str = "national",
    *,
    statistic: str = "mean",
    path: str | os.PathLike[str] | None = None,
) -> float:
    """The soil background value of ``metal`` in mg/kg.

    Parameters
    ----------
    metal : str
        Metal symbol (case-insensitive).
    region : str, default "national"
        ``national`` (China, A horizon, CNEMC 1990) or ``shaanxi`` (seed 002 Table 6, Cu and
        Pb only), or a region of your own file.
    statistic : str, default "mean"
        ``mean``; the Shaanxi rows also have ``min``, ``max``, ``sd``.
    path : path-like, optional
        A CSV in the format of ``geohm/standards/background.csv`` instead of the built-in one.

    Raises
    ------
    ConfigError
        No value for that metal, region and statistic (the message lists what exists).

    Notes
    -----
    Only national Cd, Hg, As are partly checked; national Cu, Pb, Zn, Cr, Ni are unverified
    (see the ``checked`` column).

    Examples
    --------
    >>> background("Cd"), background("cu", "shaanxi")
    (0.097, 21.4)
    """
    rows, where = read_table(path, "background.csv", ("metal", "region", "value_mg_kg"))
    key = (metal.strip().casefold(), region.strip().casefold(), statistic.strip().casefold())
    for i, r in enumerate(rows):
        if (
            r["metal"].casefold(),
            r["region"].casefold(),
            (r.get("statistic") or "mean").casefold(),
        ) == key:
            return number_cell(r["value_mg_kg"], f"{where}, row {i + 2}", "value_mg_kg")
    have = sorted({f"{r['metal']}/{r['region']}" for r in rows})
    raise ConfigError(
        f"no {statistic} background value for metal {metal!r} in region {region!r} ({where}); "
        f"available: {', '.join(have)}"
    )


def toxic_response(
    metal: str,
    overrides: Mapping[str, float] | None = None,
    *,
    path: str | os.PathLike[str] | None = None,
) -> float:
    """Hakanson's toxic-response factor T_r of ``metal`` (dimensionless).

    Parameters
    ----------
    metal : str
        Metal symbol (case-insensitive).
    overrides : mapping, optional
        ``{metal: T_r}`` taking precedence over the table (e.g. ``{"Ni": 2}``).
    path : path-like, optional
        A CSV in the format of ``geohm/standards/hakanson.csv``.

    Raises
    ------
    ConfigError
        Unknown metal (the message lists the known ones) or an override that is not > 0.

    Examples
    --------
    >>> toxic_response("Cd"), toxic_response("Ni"), toxic_response("Ni", {"ni": 2})
    (30.0, 5.0, 2.0)
    """
    key = metal.strip().casefold()
    for m, v in (overrides or {}).items():
        if str(m).strip().casefold() == key:
            try:
                value = float(v)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"toxic-response factor of {metal} must be a number") from exc
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"toxic-response factor of {metal} must be > 0, got {v!r}")
            return value
    rows, where = read_table(path, "hakanson.csv", ("metal", "t_r"))
    for i, r in enumerate(rows):
        if r["metal"].casefold() == key:
            return number_cell(r["t_r"], f"{where}, row {i + 2}", "t_r")
    raise ConfigError(
        f"no toxic-response factor for metal {metal!r} ({where}); known: "
        f"{', '.join(r['metal'] for r in rows)}; give one in overrides"
    )

"""Landsat 8/9 Collection 2 products: their bands, processing levels and MTL metadata.

The ``_MTL.txt`` of a scene holds the scale factors every band is read with
(:mod:`geohm.io.landsat.reader`) and is written by :mod:`geohm.io.landsat.writer`;
the band names, levels and group names here are shared by both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from geohm.errors import InputError

__all__ = [
    "BAND_NAMES",
    "K_GROUP",
    "L1_GROUP",
    "L1_LEVELS",
    "L2_LEVELS",
    "REFLECTIVE_BANDS",
    "SR_GROUP",
    "ST_GROUP",
    "find_mtl",
    "read_mtl",
]

#: Reflective bands in output order, with their OLI band numbers.
REFLECTIVE_BANDS: dict[str, int] = {
    "coastal": 1,
    "blue": 2,
    "green": 3,
    "red": 4,
    "nir": 5,
    "swir1": 6,
    "swir2": 7,
}
#: Every band name geohm reads from Landsat, in output order (``thermal`` last).
BAND_NAMES: tuple[str, ...] = (*REFLECTIVE_BANDS, "thermal")

#: Processing levels read as Level-2 (surface reflectance) and Level-1 (TOA) products.
L2_LEVELS = ("L2SP", "L2SR")
L1_LEVELS = ("L1TP", "L1GT", "L1GS")
#: MTL groups holding the scale factors: Level-2 reflectance, Level-2 surface
#: temperature, Level-1 radiance/reflectance rescaling, Level-1 thermal constants.
SR_GROUP = "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"
ST_GROUP = "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"
L1_GROUP = "LEVEL1_RADIOMETRIC_RESCALING"
K_GROUP = "LEVEL1_THERMAL_CONSTANTS"

PathLike = str | os.PathLike[str]


def read_mtl(path: PathLike) -> dict[str, dict[str, str]]:
    r"""Parse a Collection 2 ``_MTL.txt`` into ``{group: {key: value}}``.

    Keys are stored under their *innermost* ``GROUP``, so the Level-2 scale
    (``LEVEL2_SURFACE_REFLECTANCE_PARAMETERS/REFLECTANCE_MULT_BAND_n``) is never
    confused with the Level-1 TOA factor of the same name in
    ``LEVEL1_RADIOMETRIC_RESCALING``. Values are strings with USGS's double quotes
    removed; convert them where they are used.

    Parameters
    ----------
    path : path-like
        The ``_MTL.txt`` file.

    Returns
    -------
    dict
        ``{group_name: {key: value}}``; a group without keys maps to ``{}``.

    Raises
    ------
    InputError
        The file is missing, not text, or not GROUP/END_GROUP structured.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "X_MTL.txt"
    >>> _ = p.write_text('GROUP = A\n  GROUP = B\n    K = "v"\n  END_GROUP = B\n'
    ...                  'END_GROUP = A\nEND\n')
    >>> read_mtl(p)
    {'A': {}, 'B': {'K': 'v'}}
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"Landsat metadata file '{p}' does not exist; give the scene folder or its _MTL.txt."
        )
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"Landsat metadata file '{p}' cannot be read as text ({exc}).") from exc
    groups: dict[str, dict[str, str]] = {}
    stack: list[str] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line == "END":
            break
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise InputError(
                f"Landsat metadata file '{p}' line {lineno} is not 'KEY = VALUE' ({line[:60]!r}); "
                "is it really an _MTL.txt?"
            )
        if key == "GROUP":
            stack.append(value)
            groups.setdefault(value, {})
        elif key == "END_GROUP":
            if not stack or stack[-1] != value:
                raise InputError(
                    f"Landsat metadata file '{p}' line {lineno}: END_GROUP = {value} does not "
                    "close the open group; the file is damaged."
                )
            stack.pop()
        else:
            if not stack:
                raise InputError(
                    f"Landsat metadata file '{p}' line {lineno}: '{key}' is outside any GROUP; "
                    "is it really an _MTL.txt?"
                )
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            groups[stack[-1]][key] = value
    if not groups:
        raise InputError(f"Landsat metadata file '{p}' holds no GROUP; is it really an _MTL.txt?")
    if stack:
        raise InputError(
            f"Landsat metadata file '{p}' ends inside GROUP = {stack[-1]}; it is truncated."
        )
    return groups


def find_mtl(path: PathLike) -> Path:
    """The ``_MTL.txt`` of a scene given as its folder or as the MTL file itself.

    Raises
    ------
    InputError
        No MTL (or several) in the folder, or the path does not exist.
    """
    p = Path(path)
    if p.is_file():
        return p
    if not p.exists():
        raise InputError(
            f"Landsat scene '{p}' does not exist; check the 'landsat' path in the scene config."
        )
    found = sorted(q for q in p.iterdir() if q.name.upper().endswith("_MTL.TXT"))
    if not found:
        raise InputError(
            f"Landsat scene folder '{p}' has no *_MTL.txt; geohm reads the scale factors from "
            "it. Copy the MTL from the USGS download, or give the band files with 'bands:' "
            "and 'band_scale'/'band_offset' instead."
        )
    if len(found) > 1:
        names = ", ".join(q.name for q in found)
        raise InputError(
            f"Landsat scene folder '{p}' holds several MTL files ({names}); point 'landsat' at "
            "one of them."
        )
    return found[0]


def get_value(mtl: Mapping[str, Mapping[str, str]], group: str, key: str, mtl_path: Path) -> str:
    """``group/key`` of a parsed MTL; :class:`InputError` naming the file when it is absent."""
    try:
        return mtl[group][key]
    except KeyError:
        raise InputError(
            f"Landsat metadata file '{mtl_path}' lacks {group}/{key}; the file is incomplete: "
            "download the scene's MTL again."
        ) from None


def get_number(mtl: Mapping[str, Mapping[str, str]], group: str, key: str, mtl_path: Path) -> float:
    """``group/key`` of a parsed MTL as a number; :class:`InputError` when absent or not one."""
    value = get_value(mtl, group, key, mtl_path)
    try:
        return float(value)
    except ValueError:
        raise InputError(
            f"Landsat metadata file '{mtl_path}': {group}/{key} = {value!r} is not a number."
        ) from None


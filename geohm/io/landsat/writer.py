"""Write a Landsat 8/9 Collection 2 Level-2 scene folder the way USGS ships it.

The synthetic demo (:mod:`geohm.synth`) and the benchmarks use this writer to lay out
scenes that :func:`geohm.io.landsat.open_landsat` reads like real downloads: uint16 COG
band files and a ``_MTL.txt`` with the real Collection 2 group and key names. The
reader (:mod:`geohm.io.landsat.reader`) does not depend on it.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from geohm.errors import ConfigError
from geohm.io.landsat.mtl import (
    K_GROUP,
    L1_GROUP,
    L2_LEVELS,
    REFLECTIVE_BANDS,
    SR_GROUP,
    ST_GROUP,
)
from geohm.io.rasters import atomic_path, write_geotiff

__all__ = ["write_landsat_c2l2"]

PathLike = str | os.PathLike[str]
#: One MTL group's ``(KEY, value)`` lines, values already formatted (strings quoted).
MtlItems = list[tuple[str, str]]

_PRODUCT_ID_RE = re.compile(
    r"^L[COTEM]0\d_(L1TP|L1GT|L1GS|L2SP|L2SR)_(\d{3})(\d{3})_(\d{8})_(\d{8})_(\d{2})_(T1|T2|RT)$"
)

#: Typical Landsat 8 OLI/TIRS Level-1 radiance rescaling (W/(m2 sr um) per DN) at 1 AU.
_L1_RADIANCE = {
    1: (1.2368e-02, -61.84),
    2: (1.2665e-02, -63.32),
    3: (1.1671e-02, -58.35),
    4: (9.8415e-03, -49.21),
    5: (6.0225e-03, -30.11),
    6: (1.4977e-03, -7.49),
    7: (5.0481e-04, -2.52),
    8: (1.1138e-02, -55.69),
    9: (2.3537e-03, -11.77),
}
_K_CONSTANTS = {10: (774.8853, 1321.0789), 11: (480.8883, 1201.1442)}
_ORIGIN = "Image courtesy of the U.S. Geological Survey"
#: The calibrated DN range of every band (0 is fill).
_QMAX, _QMIN = 65535, 1


def write_landsat_c2l2(
    folder: PathLike,
    product_id: str,
    *,
    sr: Mapping[str, np.ndarray],
    st_b10: np.ndarray,
    qa_pixel: np.ndarray,
    crs: Any,
    transform: Affine,
    acquired: _dt.date,
    sun_elevation: float,
    sun_azimuth: float,
    scene_center_time: str = "03:35:12.3456780Z",
    sr_mult: float = 2.75e-05,
    sr_add: float = -0.2,
    st_mult: float = 0.00341802,
    st_add: float = 149.0,
    spacecraft: str = "LANDSAT_8",
    overviews: bool = True,
) -> Path:
    """Write a Landsat 8/9 Collection 2 Level-2 (L2SP) scene folder as USGS ships it.

    Writes ``<product_id>_SR_B1.TIF`` ... ``_SR_B7.TIF``, ``_ST_B10.TIF``,
    ``_QA_PIXEL.TIF`` (uint16 COGs; SR/ST nodata 0, QA nodata 1) and
    ``<product_id>_MTL.txt`` with the real Collection 2 group and key names
    (PRODUCT_CONTENTS, IMAGE_ATTRIBUTES, PROJECTION_ATTRIBUTES,
    LEVEL2_SURFACE_REFLECTANCE_PARAMETERS, LEVEL2_SURFACE_TEMPERATURE_PARAMETERS,
    LEVEL1_RADIOMETRIC_RESCALING with TOA-like values, LEVEL1_THERMAL_CONSTANTS).
    Only the files listed are written; the MTL still names USGS's other files.

    Parameters
    ----------
    folder : path-like
        Destination folder (created); files go directly in it.
    product_id : str
        Collection 2 product id, e.g. ``LC08_L2SP_127036_20191115_20200825_02_T1``.
    sr : mapping of str to numpy.ndarray
        uint16 DNs ``(y, x)`` for each of coastal, blue, green, red, nir, swir1, swir2.
    st_b10 : numpy.ndarray
        uint16 surface-temperature DNs ``(y, x)``.
    qa_pixel : numpy.ndarray
        uint16 QA_PIXEL values ``(y, x)``.
    crs, transform
        Georeferencing of every band.
    acquired : datetime.date
        DATE_ACQUIRED.
    sun_elevation, sun_azimuth : float
        Scene-centre sun angles in degrees.
    scene_center_time : str
        SCENE_CENTER_TIME (UTC).
    sr_mult, sr_add, st_mult, st_add : float
        Scale factors recorded in the MTL (the USGS values by default).
    spacecraft : str
        SPACECRAFT_ID (``LANDSAT_8`` or ``LANDSAT_9``).
    overviews : bool
        Build internal overviews in the COGs.

    Returns
    -------
    pathlib.Path
        The MTL file written.

    Raises
    ------
    ConfigError
        Malformed product id, missing SR band, wrong dtype or shape.
    """
    ids = _parse_product_id(product_id)
    arrays = _band_arrays(sr, st_b10, qa_pixel)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_bands(folder, product_id, arrays, crs, transform, overviews)

    d = _earth_sun_distance(acquired)
    qa = arrays["QA_PIXEL"]
    image = _image_attributes(
        ids, qa, acquired, scene_center_time, spacecraft, sun_elevation, sun_azimuth, d
    )
    text = _mtl_text(
        [
            ("PRODUCT_CONTENTS", _product_contents(product_id, ids)),
            ("IMAGE_ATTRIBUTES", image),
            ("PROJECTION_ATTRIBUTES", _projection_attributes(crs, transform, qa.shape)),
            ("LEVEL2_PROCESSING_RECORD", _l2_record(product_id, ids)),
            (SR_GROUP, _sr_parameters(sr_mult, sr_add)),
            (ST_GROUP, _st_parameters(st_mult, st_add)),
            ("LEVEL1_PROCESSING_RECORD", _l1_record(product_id, ids)),
            (L1_GROUP, _l1_rescaling(d)),
            (K_GROUP, _thermal_constants()),
        ]
    )
    mtl_path = folder / f"{product_id}_MTL.txt"
    with atomic_path(mtl_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return mtl_path


# --------------------------------------------------------------------------- checks and bands


def _parse_product_id(product_id: str) -> dict[str, str]:
    """The parts of a Level-2 product id: level, WRS path/row, processed date, collection, tier."""
    m = _PRODUCT_ID_RE.match(product_id)
    if m is None or m.group(1) not in L2_LEVELS:
        raise ConfigError(
            f"'{product_id}' is not a Collection 2 Level-2 product id "
            "(LXSS_L2SP_PPPRRR_YYYYMMDD_yyyymmdd_02_TX)"
        )
    level, wrs_path, wrs_row, _acq, processed, coll, tier = m.groups()
    return {
        "level": level,
        "wrs_path": wrs_path,
        "wrs_row": wrs_row,
        "processed": processed,
        "collection": coll,
        "tier": tier,
    }


def _band_arrays(
    sr: Mapping[str, np.ndarray], st_b10: np.ndarray, qa_pixel: np.ndarray
) -> dict[str, np.ndarray]:
    """Every band by its file suffix (``SR_B1`` ... ``QA_PIXEL``), checked: uint16, one shape."""
    missing = [b for b in REFLECTIVE_BANDS if b not in sr]
    if missing:
        raise ConfigError(f"write_landsat_c2l2: missing SR band(s) {', '.join(missing)}")
    shape = np.asarray(qa_pixel).shape
    arrays: dict[str, np.ndarray] = {}
    for name, n in REFLECTIVE_BANDS.items():
        arrays[f"SR_B{n}"] = np.asarray(sr[name])
    arrays["ST_B10"] = np.asarray(st_b10)
    arrays["QA_PIXEL"] = np.asarray(qa_pixel)
    for key, arr in arrays.items():
        if arr.dtype != np.uint16 or arr.shape != shape:
            raise ConfigError(
                f"write_landsat_c2l2: {key} must be uint16 {shape}, got {arr.dtype} {arr.shape}"
            )
    return arrays


def _write_bands(
    folder: Path,
    product_id: str,
    arrays: Mapping[str, np.ndarray],
    crs: Any,
    transform: Affine,
    overviews: bool,
) -> None:
    """One uint16 COG per band: nodata 0 (SR, ST) or 1 (QA_PIXEL), nearest overviews."""
    for key, arr in arrays.items():
        write_geotiff(
            folder / f"{product_id}_{key}.TIF",
            arr,
            crs=crs,
            transform=transform,
            nodata=1 if key == "QA_PIXEL" else 0,
            dtype="uint16",
            overviews=overviews,
            overview_resampling="nearest",
        )


# --------------------------------------------------------------------------- MTL groups


def _earth_sun_distance(day: _dt.date) -> float:
    """Earth-Sun distance in AU (a standard cosine approximation)."""
    doy = day.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (doy - 4)))


def _mtl_text(groups: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> str:
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for name, items in groups:
        lines.append(f"  GROUP = {name}")
        lines.extend(f"    {k} = {v}" for k, v in items)
        lines.append(f"  END_GROUP = {name}")
    lines += ["END_GROUP = LANDSAT_METADATA_FILE", "END", ""]
    return "\n".join(lines)


def _q(s: str) -> str:
    return f'"{s}"'


def _product_contents(product_id: str, ids: Mapping[str, str]) -> MtlItems:
    """PRODUCT_CONTENTS: the product's identity and the file name of every band."""
    contents: MtlItems = [
        ("ORIGIN", _q(_ORIGIN)),
        ("DIGITAL_OBJECT_IDENTIFIER", _q("https://doi.org/10.5066/P9OGBGM6")),
        ("LANDSAT_PRODUCT_ID", _q(product_id)),
        ("PROCESSING_LEVEL", _q(ids["level"])),
        ("COLLECTION_NUMBER", ids["collection"]),
        ("COLLECTION_CATEGORY", _q(ids["tier"])),
        ("OUTPUT_FORMAT", _q("GEOTIFF")),
    ]
    contents += [(f"FILE_NAME_BAND_{n}", _q(f"{product_id}_SR_B{n}.TIF")) for n in range(1, 8)]
    other_files = [
        ("BAND_ST_B10", "ST_B10.TIF"),
        ("THERMAL_RADIANCE", "ST_TRAD.TIF"),
        ("UPWELL_RADIANCE", "ST_URAD.TIF"),
        ("DOWNWELL_RADIANCE", "ST_DRAD.TIF"),
        ("ATMOSPHERIC_TRANSMITTANCE", "ST_ATRAN.TIF"),
        ("EMISSIVITY", "ST_EMIS.TIF"),
        ("EMISSIVITY_STDEV", "ST_EMSD.TIF"),
        ("CLOUD_DISTANCE", "ST_CDIST.TIF"),
        ("QUALITY_L2_AEROSOL", "SR_QA_AEROSOL.TIF"),
        ("QUALITY_L2_SURFACE_TEMPERATURE", "ST_QA.TIF"),
        ("QUALITY_L1_PIXEL", "QA_PIXEL.TIF"),
        ("QUALITY_L1_RADIOMETRIC_SATURATION", "QA_RADSAT.TIF"),
        ("ANGLE_COEFFICIENT", "ANG.txt"),
        ("METADATA_ODL", "MTL.txt"),
        ("METADATA_XML", "MTL.xml"),
    ]
    contents += [(f"FILE_NAME_{key}", _q(f"{product_id}_{suffix}")) for key, suffix in other_files]
    contents += [(f"DATA_TYPE_BAND_{n}", _q("UINT16")) for n in range(1, 8)]
    contents += [
        ("DATA_TYPE_BAND_ST_B10", _q("UINT16")),
        ("DATA_TYPE_QUALITY_L1_PIXEL", _q("UINT16")),
    ]
    return contents


def _image_attributes(
    ids: Mapping[str, str],
    qa: np.ndarray,
    acquired: _dt.date,
    scene_center_time: str,
    spacecraft: str,
    sun_elevation: float,
    sun_azimuth: float,
    earth_sun_distance: float,
) -> MtlItems:
    """IMAGE_ATTRIBUTES: sensor, WRS path/row, date, cloud cover (from QA) and sun angles."""
    valid = (qa & 1) == 0
    cloudy = (qa & (1 << 3)) != 0
    cloud_cover = 100.0 * float(cloudy.sum()) / max(int(valid.sum()), 1)
    wrs_path, wrs_row = str(int(ids["wrs_path"])), str(int(ids["wrs_row"]))
    return [
        ("SPACECRAFT_ID", _q(spacecraft)),
        ("SENSOR_ID", _q("OLI_TIRS")),
        ("WRS_TYPE", "2"),
        ("WRS_PATH", wrs_path),
        ("WRS_ROW", wrs_row),
        ("NADIR_OFFNADIR", _q("NADIR")),
        ("TARGET_WRS_PATH", wrs_path),
        ("TARGET_WRS_ROW", wrs_row),
        ("DATE_ACQUIRED", acquired.isoformat()),
        ("SCENE_CENTER_TIME", _q(scene_center_time)),
        ("STATION_ID", _q("LGN")),
        ("CLOUD_COVER", f"{cloud_cover:.2f}"),
        ("CLOUD_COVER_LAND", f"{cloud_cover:.2f}"),
        ("IMAGE_QUALITY_OLI", "9"),
        ("IMAGE_QUALITY_TIRS", "9"),
        ("TIRS_SSM_MODEL", _q("FINAL")),
        ("TIRS_SSM_POSITION_STATUS", _q("ESTIMATED")),
        ("ROLL_ANGLE", "-0.001"),
        ("SUN_AZIMUTH", f"{sun_azimuth:.8f}"),
        ("SUN_ELEVATION", f"{sun_elevation:.8f}"),
        ("EARTH_SUN_DISTANCE", f"{earth_sun_distance:.7f}"),
    ]


def _utm_zone(epsg: int) -> int:
    """The UTM zone of a WGS 84 / UTM EPSG code (326zz north, 327zz south); 0 for others."""
    if 32601 <= epsg <= 32660:
        return epsg - 32600
    if 32701 <= epsg <= 32760:
        return epsg - 32700
    return 0


def _projection_attributes(crs: Any, transform: Affine, shape: tuple[int, ...]) -> MtlItems:
    """PROJECTION_ATTRIBUTES: projection, grid size and the corners in lat/lon and map units."""
    from pyproj import CRS, Transformer

    height, width = shape
    crs_obj = CRS.from_user_input(crs)
    utm_zone = _utm_zone(crs_obj.to_epsg() or 0)
    proj: MtlItems = [
        ("MAP_PROJECTION", _q("UTM" if utm_zone else "UNKNOWN")),
        ("DATUM", _q("WGS84")),
        ("ELLIPSOID", _q("WGS84")),
    ]
    if utm_zone:
        proj.append(("UTM_ZONE", str(utm_zone)))
    proj += [
        ("GRID_CELL_SIZE_REFLECTIVE", f"{abs(transform.a):.2f}"),
        ("GRID_CELL_SIZE_THERMAL", f"{abs(transform.a):.2f}"),
        ("REFLECTIVE_LINES", str(height)),
        ("REFLECTIVE_SAMPLES", str(width)),
        ("THERMAL_LINES", str(height)),
        ("THERMAL_SAMPLES", str(width)),
        ("ORIENTATION", _q("NORTH_UP")),
    ]
    left, top = transform.c, transform.f
    right, bottom = left + transform.a * width, top + transform.e * height
    corners = {"UL": (left, top), "UR": (right, top), "LL": (left, bottom), "LR": (right, bottom)}
    to_ll = Transformer.from_crs(crs_obj, "EPSG:4326", always_xy=True)
    for c, (x, y) in corners.items():
        lon, lat = to_ll.transform(x, y)
        proj += [
            (f"CORNER_{c}_LAT_PRODUCT", f"{lat:.5f}"),
            (f"CORNER_{c}_LON_PRODUCT", f"{lon:.5f}"),
        ]
    for c, (x, y) in corners.items():
        proj += [
            (f"CORNER_{c}_PROJECTION_X_PRODUCT", f"{x:.3f}"),
            (f"CORNER_{c}_PROJECTION_Y_PRODUCT", f"{y:.3f}"),
        ]
    return proj


def _l2_record(product_id: str, ids: Mapping[str, str]) -> MtlItems:
    """LEVEL2_PROCESSING_RECORD: who made the Level-2 product, when, with which algorithms."""
    generated = _dt.datetime.strptime(ids["processed"], "%Y%m%d").date()
    return [
        ("ORIGIN", _q(_ORIGIN)),
        ("DIGITAL_OBJECT_IDENTIFIER", _q("https://doi.org/10.5066/P9OGBGM6")),
        ("REQUEST_ID", _q("geohm_synthetic")),
        ("LANDSAT_PRODUCT_ID", _q(product_id)),
        ("PROCESSING_LEVEL", _q(ids["level"])),
        ("OUTPUT_FORMAT", _q("GEOTIFF")),
        ("DATE_PRODUCT_GENERATED", f"{generated.isoformat()}T12:00:00Z"),
        ("PROCESSING_SOFTWARE_VERSION", _q("LPGS_15.3.1c")),
        ("ALGORITHM_SOURCE_SURFACE_REFLECTANCE", _q("LaSRC_1.5.0")),
        ("ALGORITHM_SOURCE_SURFACE_TEMPERATURE", _q("singleChannel_1.3.0")),
    ]


def _sr_parameters(sr_mult: float, sr_add: float) -> MtlItems:
    """LEVEL2_SURFACE_REFLECTANCE_PARAMETERS: reflectance range and scale of bands 1-7."""
    bands = range(1, 8)
    sr_params: MtlItems = []
    for n in bands:
        sr_params += [
            (f"REFLECTANCE_MAXIMUM_BAND_{n}", f"{_QMAX * sr_mult + sr_add:.6f}"),
            (f"REFLECTANCE_MINIMUM_BAND_{n}", f"{_QMIN * sr_mult + sr_add:.6f}"),
        ]
    for n in bands:
        sr_params += [
            (f"QUANTIZE_CAL_MAX_BAND_{n}", str(_QMAX)),
            (f"QUANTIZE_CAL_MIN_BAND_{n}", str(_QMIN)),
        ]
    sr_params += [(f"REFLECTANCE_MULT_BAND_{n}", repr(float(sr_mult))) for n in bands]
    sr_params += [(f"REFLECTANCE_ADD_BAND_{n}", repr(float(sr_add))) for n in bands]
    return sr_params


def _st_parameters(st_mult: float, st_add: float) -> MtlItems:
    """LEVEL2_SURFACE_TEMPERATURE_PARAMETERS: temperature range and scale of ST_B10."""
    return [
        ("TEMPERATURE_MAXIMUM_BAND_ST_B10", f"{_QMAX * st_mult + st_add:.6f}"),
        ("TEMPERATURE_MINIMUM_BAND_ST_B10", f"{_QMIN * st_mult + st_add:.6f}"),
        ("QUANTIZE_CAL_MAXIMUM_BAND_ST_B10", str(_QMAX)),
        ("QUANTIZE_CAL_MINIMUM_BAND_ST_B10", str(_QMIN)),
        ("TEMPERATURE_MULT_BAND_ST_B10", repr(float(st_mult))),
        ("TEMPERATURE_ADD_BAND_ST_B10", repr(float(st_add))),
    ]


def _l1_record(product_id: str, ids: Mapping[str, str]) -> MtlItems:
    """LEVEL1_PROCESSING_RECORD: the Level-1 product the Level-2 one was made from."""
    return [
        ("ORIGIN", _q(_ORIGIN)),
        ("DIGITAL_OBJECT_IDENTIFIER", _q("https://doi.org/10.5066/P975CC9B")),
        ("LANDSAT_PRODUCT_ID", _q(product_id.replace(ids["level"], "L1TP", 1))),
        ("PROCESSING_LEVEL", _q("L1TP")),
        ("COLLECTION_NUMBER", ids["collection"]),
        ("COLLECTION_CATEGORY", _q(ids["tier"])),
    ]


def _l1_rescaling(earth_sun_distance: float) -> MtlItems:
    """LEVEL1_RADIOMETRIC_RESCALING: TOA-like radiance and reflectance factors of bands 1-11."""
    d = earth_sun_distance
    # Reflective radiance factors scale with 1/d^2 (solar irradiance); thermal ones do not.
    radiance = {n: _L1_RADIANCE.get(n, (3.3420e-04, 0.1)) for n in range(1, 12)}
    radiance = {n: (m / d**2, a / d**2) if n <= 9 else (m, a) for n, (m, a) in radiance.items()}
    rescale = [(f"RADIANCE_MULT_BAND_{n}", f"{m:.4E}") for n, (m, _a) in radiance.items()]
    rescale += [(f"RADIANCE_ADD_BAND_{n}", f"{a:.5f}") for n, (_m, a) in radiance.items()]
    rescale += [(f"REFLECTANCE_MULT_BAND_{n}", "2.0000E-05") for n in range(1, 10)]
    rescale += [(f"REFLECTANCE_ADD_BAND_{n}", "-0.100000") for n in range(1, 10)]
    return rescale


def _thermal_constants() -> MtlItems:
    """LEVEL1_THERMAL_CONSTANTS: K1 and K2 of the thermal bands 10 and 11."""
    thermal_k: MtlItems = []
    for b, (k1, k2) in _K_CONSTANTS.items():
        thermal_k += [
            (f"K1_CONSTANT_BAND_{b}", f"{k1:.4f}"),
            (f"K2_CONSTANT_BAND_{b}", f"{k2:.4f}"),
        ]
    return thermal_k

"""Landsat Collection 2 reading: MTL groups, scale factors, QA masking, L1 TOA, errors."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import dask.array
import numpy as np
import pytest
from affine import Affine

from geohm.errors import ConfigError, GridError, InputError
from geohm.io.landsat import (
    BAND_NAMES,
    QA_BITS,
    find_mtl,
    open_band_files,
    open_landsat,
    open_qa,
    qa_mask,
    qa_reasons,
    read_mtl,
    write_landsat_c2l2,
)
from geohm.io.rasters import write_geotiff

PID = "LC08_L2SP_127036_20191115_20200825_02_T1"
L1PID = "LC08_L1TP_127036_20191115_20200825_02_T1"
CRS = "EPSG:32649"
TRANSFORM = Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750240.0)
H, W = 6, 8

CLEAR, WATER, CLOUD, DILATED, SHADOW, FILL = 21824, 21952, 22282, 21762, 23888, 1
SNOW = 64 | 32 | (3 << 12) | (1 << 8) | (1 << 10) | (1 << 14)  # snow bit + high snow conf


def _scene(tmp_path: Path, *, sr_dn: int = 18639, st_dn: int = 44947, qa=None, **kw) -> Path:
    """A tiny L2SP folder: every SR band = sr_dn (band n adds n), ST = st_dn."""
    sr = {b: np.full((H, W), sr_dn + i, np.uint16) for i, b in enumerate(BAND_NAMES[:7])}
    if qa is None:
        qa = np.full((H, W), CLEAR, np.uint16)
    folder = tmp_path / PID
    write_landsat_c2l2(
        folder,
        PID,
        sr=sr,
        st_b10=np.full((H, W), st_dn, np.uint16),
        qa_pixel=np.asarray(qa, np.uint16),
        crs=CRS,
        transform=TRANSFORM,
        acquired=dt.date(2019, 11, 15),
        sun_elevation=37.9,
        sun_azimuth=158.2,
        overviews=False,
        **kw,
    )
    return folder


def _edit_mtl(folder: Path, group: str, key: str, value: str) -> None:
    """Set ``key`` inside ``group`` only (the same key elsewhere is untouched)."""
    mtl = find_mtl(folder)
    text = mtl.read_text()
    start = text.index(f"GROUP = {group}\n")
    end = text.index(f"END_GROUP = {group}\n")
    block = re.sub(rf"(\s{key} = )\S+", rf"\g<1>{value}", text[start:end], count=1)
    mtl.write_text(text[:start] + block + text[end:])


# --------------------------------------------------------------------------- MTL


def test_read_mtl_scopes_keys_by_group(tmp_path):
    folder = _scene(tmp_path)
    mtl = read_mtl(folder / f"{PID}_MTL.txt")
    assert mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]["REFLECTANCE_MULT_BAND_4"] == "2.75e-05"
    assert mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]["REFLECTANCE_ADD_BAND_4"] == "-0.2"
    assert mtl["LEVEL1_RADIOMETRIC_RESCALING"]["REFLECTANCE_MULT_BAND_4"] == "2.0000E-05"
    assert mtl["LEVEL2_SURFACE_TEMPERATURE_PARAMETERS"]["TEMPERATURE_MULT_BAND_ST_B10"] == (
        "0.00341802"
    )
    assert mtl["PRODUCT_CONTENTS"]["LANDSAT_PRODUCT_ID"] == PID  # quotes removed
    assert mtl["PRODUCT_CONTENTS"]["PROCESSING_LEVEL"] == "L2SP"
    assert mtl["PRODUCT_CONTENTS"]["FILE_NAME_BAND_5"] == f"{PID}_SR_B5.TIF"
    assert mtl["IMAGE_ATTRIBUTES"]["SPACECRAFT_ID"] == "LANDSAT_8"
    assert mtl["IMAGE_ATTRIBUTES"]["DATE_ACQUIRED"] == "2019-11-15"


def test_mtl_text_quotes_strings_not_numbers(tmp_path):
    text = find_mtl(_scene(tmp_path)).read_text()
    assert f'LANDSAT_PRODUCT_ID = "{PID}"' in text
    assert 'PROCESSING_LEVEL = "L2SP"' in text
    assert "REFLECTANCE_MULT_BAND_1 = 2.75e-05\n" in text
    assert "SUN_ELEVATION = 37.90000000\n" in text
    assert text.rstrip().endswith("END")


@pytest.mark.parametrize(
    "content, match",
    [
        (b"\x89PNG\x00\xff\xfe garbage", "cannot be read as text"),
        (b"GROUP = A\n  K = 1\n", "truncated"),
        (b"GROUP = A\nEND_GROUP = B\n", "does not close"),
        (b"just some words\n", "not 'KEY = VALUE'"),
        (b"", "no GROUP"),
    ],
)
def test_read_mtl_bad_file(tmp_path, content, match):
    p = tmp_path / "X_MTL.txt"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as err:
        read_mtl(p)
    assert str(p) in str(err.value)


def test_read_mtl_missing_file(tmp_path):
    with pytest.raises(InputError, match="nope_MTL.txt"):
        read_mtl(tmp_path / "nope_MTL.txt")


def test_find_mtl(tmp_path):
    folder = _scene(tmp_path)
    assert find_mtl(folder) == folder / f"{PID}_MTL.txt"
    assert find_mtl(folder / f"{PID}_MTL.txt") == folder / f"{PID}_MTL.txt"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="has no \\*_MTL.txt"):
        find_mtl(empty)
    with pytest.raises(InputError, match="does not exist"):
        open_landsat(tmp_path / "missing_scene")


# --------------------------------------------------------------------------- L2 values


def test_usgs_examples_and_metadata(tmp_path):
    da = open_landsat(_scene(tmp_path, sr_dn=18639, st_dn=44947))
    assert da.dims == ("band", "y", "x")
    assert list(da.band.values) == list(BAND_NAMES)
    assert da.dtype == np.float32
    assert isinstance(da.data, dask.array.Array)  # lazy
    assert da.rio.crs.to_epsg() == 32649
    assert da.rio.transform() == TRANSFORM
    v = da.values
    assert v[0] == pytest.approx(0.313, abs=1e-3)  # coastal: DN 18639
    assert v[3] == pytest.approx((18639 + 3) * 2.75e-5 - 0.2, abs=1e-6)  # red: DN 18642
    assert v[7] == pytest.approx(302.6, abs=0.1)  # ST DN 44947 -> K
    assert da.attrs["product_id"] == PID
    assert da.attrs["processing_level"] == "L2SP"
    assert da.attrs["spacecraft"] == "LANDSAT_8"
    assert da.attrs["date_acquired"] == "2019-11-15"
    assert da.attrs["sun_elevation"] == pytest.approx(37.9)


def test_scale_is_read_from_the_l2_group(tmp_path):
    folder = _scene(tmp_path, sr_dn=20000, st_dn=40000)
    _edit_mtl(folder, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", "REFLECTANCE_MULT_BAND_4", "3.0e-05")
    _edit_mtl(folder, "LEVEL2_SURFACE_REFLECTANCE_PARAMETERS", "REFLECTANCE_ADD_BAND_4", "-0.1")
    _edit_mtl(
        folder, "LEVEL2_SURFACE_TEMPERATURE_PARAMETERS", "TEMPERATURE_ADD_BAND_ST_B10", "150.0"
    )
    # Decoys: the L1 group's keys of the same names must not be used.
    _edit_mtl(folder, "LEVEL1_RADIOMETRIC_RESCALING", "REFLECTANCE_MULT_BAND_5", "9.9e-03")
    _edit_mtl(folder, "LEVEL1_RADIOMETRIC_RESCALING", "REFLECTANCE_ADD_BAND_5", "7.0")
    v = open_landsat(folder).sel(band=["red", "nir", "thermal"]).values[:, 0, 0]
    assert v[0] == pytest.approx(20003 * 3.0e-05 - 0.1, abs=1e-6)
    assert v[1] == pytest.approx(20004 * 2.75e-05 - 0.2, abs=1e-6)
    assert v[2] == pytest.approx(40000 * 0.00341802 + 150.0, abs=1e-3)


def test_writer_records_custom_scale(tmp_path):
    folder = _scene(tmp_path, sr_dn=10000, sr_mult=5e-05, sr_add=-0.25)
    mtl = read_mtl(find_mtl(folder))
    assert float(mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS"]["REFLECTANCE_MULT_BAND_2"]) == 5e-05
    assert open_landsat(folder).sel(band="blue").values[0, 0] == pytest.approx(
        10001 * 5e-05 - 0.25, abs=1e-6
    )


def test_missing_scale_key_is_an_input_error(tmp_path):
    folder = _scene(tmp_path)
    mtl = find_mtl(folder)
    mtl.write_text(mtl.read_text().replace("    REFLECTANCE_ADD_BAND_6 = -0.2\n", "", 1))
    with pytest.raises(InputError, match="REFLECTANCE_ADD_BAND_6"):
        open_landsat(folder)


# --------------------------------------------------------------------------- QA


def _qa_grid() -> np.ndarray:
    qa = np.full((H, W), CLEAR, np.uint16)
    qa[0, 0] = FILL
    qa[0, 1] = CLOUD
    qa[0, 2] = DILATED
    qa[0, 3] = SHADOW
    qa[0, 4] = WATER
    qa[0, 5] = SNOW
    qa[0, 6] = CLEAR | (1 << 2) | (3 << 14)  # cirrus, high confidence
    return qa


def test_fill_cloud_shadow_are_nan(tmp_path):
    folder = _scene(tmp_path, qa=_qa_grid())
    sr = open_landsat(folder).values
    # Default mask: every flagged pixel is NaN in every band, clear ones are not.
    assert np.isnan(sr[:, 0, :7]).all()
    assert np.isfinite(sr[:, 0, 7]).all()
    assert np.isfinite(sr[:, 1:, :]).all()


def test_snow_and_water_masking_is_configurable(tmp_path):
    folder = _scene(tmp_path, qa=_qa_grid())
    v = open_landsat(folder, mask=("fill", "cloud", "dilated_cloud", "shadow")).values
    assert np.isnan(v[:, 0, :4]).all()
    assert np.isfinite(v[:, 0, 4:]).all()  # water, snow, cirrus kept
    v = open_landsat(folder, mask=("water",)).values
    assert np.isnan(v[:, 0, 4]).all()
    assert np.isfinite(v[:, 0, 5]).all()


def test_dn_zero_is_nan_without_qa(tmp_path):
    folder = _scene(tmp_path)
    dn = np.full((H, W), 20000, np.uint16)
    dn[2, 3] = 0
    write_geotiff(
        folder / f"{PID}_SR_B4.TIF", dn, crs=CRS, transform=TRANSFORM, nodata=0, overviews=False
    )
    v = open_landsat(folder, mask=()).sel(band="red").values
    assert np.isnan(v[2, 3])
    assert np.isfinite(v).sum() == H * W - 1


def test_unknown_mask_name(tmp_path):
    with pytest.raises(ConfigError, match="valid names are fill, dilated_cloud"):
        open_landsat(_scene(tmp_path), mask=("fill", "clouds"))
    with pytest.raises(ConfigError, match="'haze'"):
        qa_reasons([CLEAR], ["haze"])


def test_qa_reasons_and_mask(tmp_path):
    qa = _qa_grid()
    reasons = qa_reasons(qa[0, :8], names=list(QA_BITS))
    assert reasons == ["fill", "cloud", "dilated_cloud", "shadow", "water", "snow", "cirrus", None]
    assert qa_reasons([SHADOW, np.nan], ["cloud"]) == [None, None]
    folder = _scene(tmp_path, qa=qa)
    m = qa_mask(folder, ["fill", "cloud", "shadow"]).values
    assert m.dtype == bool
    assert m[0, :4].tolist() == [True, True, False, True]
    assert not m[1:].any()
    raw = open_qa(folder)
    assert raw.dtype == np.uint16
    assert int(raw.values[0, 3]) == SHADOW
    assert qa_mask(raw, ["water"]).values[0, 4]


# --------------------------------------------------------------------------- errors


def test_missing_band_file_names_file_and_band(tmp_path):
    folder = _scene(tmp_path)
    (folder / f"{PID}_SR_B5.TIF").unlink()
    with pytest.raises(InputError) as err:
        open_landsat(folder)
    msg = str(err.value)
    assert f"{PID}_SR_B5.TIF" in msg
    assert "'nir'" in msg
    assert "Download" in msg


def test_missing_qa_file(tmp_path):
    folder = _scene(tmp_path)
    (folder / f"{PID}_QA_PIXEL.TIF").unlink()
    with pytest.raises(InputError, match="QA_PIXEL"):
        open_landsat(folder)
    assert open_landsat(folder, mask=()).sizes["band"] == 8


def test_corrupt_tif_names_file(tmp_path):
    folder = _scene(tmp_path)
    bad = folder / f"{PID}_SR_B3.TIF"
    bad.write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match=re.escape(str(bad))):
        open_landsat(folder)


def test_bands_on_different_grids(tmp_path):
    folder = _scene(tmp_path)
    shifted = Affine(30.0, 0.0, 490030.0, 0.0, -30.0, 3750240.0)
    write_geotiff(
        folder / f"{PID}_SR_B6.TIF",
        np.full((H, W), 20000, np.uint16),
        crs=CRS,
        transform=shifted,
        nodata=0,
        overviews=False,
    )
    with pytest.raises(GridError, match="SR_B6.TIF"):
        open_landsat(folder)


def test_collection1_is_refused(tmp_path):
    p = tmp_path / "LC08_L1TP_127036_20170101_20170101_01_T1_MTL.txt"
    p.write_text(
        'GROUP = L1_METADATA_FILE\n  GROUP = PRODUCT_METADATA\n    DATA_TYPE = "L1TP"\n'
        "  END_GROUP = PRODUCT_METADATA\nEND_GROUP = L1_METADATA_FILE\nEND\n"
    )
    with pytest.raises(InputError, match="Collection 1"):
        open_landsat(p)


def test_writer_rejects_bad_input(tmp_path):
    kw = dict(
        st_b10=np.ones((2, 2), np.uint16),
        qa_pixel=np.ones((2, 2), np.uint16),
        crs=CRS,
        transform=TRANSFORM,
        acquired=dt.date(2019, 1, 1),
        sun_elevation=30.0,
        sun_azimuth=150.0,
    )
    sr = {b: np.ones((2, 2), np.uint16) for b in BAND_NAMES[:7]}
    with pytest.raises(ConfigError, match="product id"):
        write_landsat_c2l2(tmp_path, "LC08_L1TP_127036_20191115_20200825_02_T1", sr=sr, **kw)
    with pytest.raises(ConfigError, match="uint16"):
        write_landsat_c2l2(tmp_path, PID, sr={**sr, "red": np.ones((2, 2))}, **kw)


# --------------------------------------------------------------------------- Level 1


def _l1_scene(tmp_path: Path, sun_elevation: float = 30.0) -> Path:
    folder = tmp_path / L1PID
    folder.mkdir()
    files = [(f"FILE_NAME_BAND_{n}", f'"{L1PID}_B{n}.TIF"') for n in (*range(1, 8), 10)]
    files.append(("FILE_NAME_QUALITY_L1_PIXEL", f'"{L1PID}_QA_PIXEL.TIF"'))
    rescale = [(f"REFLECTANCE_MULT_BAND_{n}", "2.0000E-05") for n in range(1, 8)]
    rescale += [(f"REFLECTANCE_ADD_BAND_{n}", "-0.100000") for n in range(1, 8)]
    rescale += [("RADIANCE_MULT_BAND_10", "3.3420E-04"), ("RADIANCE_ADD_BAND_10", "0.10000")]
    groups = {
        "PRODUCT_CONTENTS": [
            ("LANDSAT_PRODUCT_ID", f'"{L1PID}"'),
            ("PROCESSING_LEVEL", '"L1TP"'),
            *files,
        ],
        "IMAGE_ATTRIBUTES": [
            ("SPACECRAFT_ID", '"LANDSAT_8"'),
            ("DATE_ACQUIRED", "2019-11-15"),
            ("SUN_ELEVATION", f"{sun_elevation:.8f}"),
        ],
        "LEVEL1_RADIOMETRIC_RESCALING": rescale,
        "LEVEL1_THERMAL_CONSTANTS": [
            ("K1_CONSTANT_BAND_10", "774.8853"),
            ("K2_CONSTANT_BAND_10", "1321.0789"),
        ],
    }
    lines = ["GROUP = LANDSAT_METADATA_FILE"]
    for g, items in groups.items():
        lines += [f"  GROUP = {g}", *(f"    {k} = {v}" for k, v in items), f"  END_GROUP = {g}"]
    lines += ["END_GROUP = LANDSAT_METADATA_FILE", "END", ""]
    (folder / f"{L1PID}_MTL.txt").write_text("\n".join(lines))
    for n in (*range(1, 8), 10):
        write_geotiff(
            folder / f"{L1PID}_B{n}.TIF",
            np.full((H, W), 30000 if n == 10 else 20000, np.uint16),
            crs=CRS,
            transform=TRANSFORM,
            nodata=0,
            overviews=False,
        )
    qa = np.full((H, W), CLEAR, np.uint16)
    qa[1, 1] = CLOUD
    write_geotiff(
        folder / f"{L1PID}_QA_PIXEL.TIF",
        qa,
        crs=CRS,
        transform=TRANSFORM,
        nodata=1,
        overviews=False,
    )
    return folder


def test_l1_toa_reflectance_and_brightness_temperature(tmp_path):
    da = open_landsat(_l1_scene(tmp_path, sun_elevation=30.0))
    assert da.attrs["processing_level"] == "L1TP"
    v = da.values
    # (2e-5 * 20000 - 0.1) / sin(30 deg) = 0.3 / 0.5
    assert v[4, 0, 0] == pytest.approx(0.6, abs=1e-5)
    radiance = 3.342e-4 * 30000 + 0.1
    bt = 1321.0789 / math.log(774.8853 / radiance + 1.0)  # = 303.66 K
    assert v[7, 0, 0] == pytest.approx(bt, abs=1e-3)
    assert 303.0 < bt < 304.0
    assert np.isnan(v[:, 1, 1]).all()  # cloud from QA_PIXEL


# --------------------------------------------------------------------------- band files


def _band_files(tmp_path: Path, **overrides) -> dict[str, Path]:
    out = {}
    for i, name in enumerate(("blue", "red", "nir", "thermal")):
        arr = np.full((H, W), 10000 + i, np.uint16)
        arr[0, 0] = 0
        kw = {"crs": CRS, "transform": TRANSFORM, "nodata": 0}
        kw.update(overrides.get(name, {}))
        out[name] = write_geotiff(tmp_path / f"{name}.tif", arr, overviews=False, **kw)
    return out


def test_open_band_files_scale_offset_nodata(tmp_path):
    files = _band_files(tmp_path)
    da = open_band_files(
        {
            "thermal": files["thermal"],
            "nir": files["nir"],
            "blue": files["blue"],
            "red": files["red"],
        },
        scale=2.75e-05,
        offset=-0.2,
    )
    assert list(da.band.values) == ["blue", "red", "nir", "thermal"]  # canonical order
    assert da.dtype == np.float32
    assert isinstance(da.data, dask.array.Array)
    v = da.values
    assert v[0, 1, 1] == pytest.approx(10000 * 2.75e-05 - 0.2, abs=1e-6)
    assert v[3, 1, 1] == 10003.0  # thermal is not scaled
    assert np.isnan(v[:, 0, 0]).all()  # file nodata
    assert da.rio.crs.to_epsg() == 32649
    raw = open_band_files({"blue": files["blue"]}).values
    assert raw[0, 1, 1] == 10000.0


def test_open_band_files_nodata_argument(tmp_path):
    files = _band_files(tmp_path, blue={"nodata": None})
    v = open_band_files({"blue": files["blue"]}).values
    assert v[0, 0, 0] == 0.0  # no nodata tag: 0 is a value
    v = open_band_files({"blue": files["blue"]}, nodata=0).values
    assert np.isnan(v[0, 0, 0])


def test_open_band_files_errors(tmp_path):
    files = _band_files(tmp_path, nir={"transform": Affine(60.0, 0, 490000.0, 0, -60.0, 3750240.0)})
    with pytest.raises(ConfigError, match="'B4'.*valid names are coastal"):
        open_band_files({"B4": files["red"]})
    with pytest.raises(GridError) as err:
        open_band_files({"red": files["red"], "nir": files["nir"]})
    assert "red.tif" in str(err.value) and "nir.tif" in str(err.value)
    with pytest.raises(InputError, match="bands.green"):
        open_band_files({"green": tmp_path / "green.tif"})
    with pytest.raises(ConfigError):
        open_band_files({})

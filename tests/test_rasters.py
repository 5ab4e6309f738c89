"""Atomic GeoTIFF/COG writing, the tile writer, warped (aligned) reading, styles."""

from __future__ import annotations

import errno
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.enums import Resampling

from geohm.errors import GridError, InputError, OutputError
from geohm.grid import Grid
from geohm.io.rasters import (
    TileWriter,
    atomic_path,
    gdal_env,
    open_aligned,
    open_raster,
    write_error,
    write_geotiff,
)
from geohm.io.styles import write_qml_paletted, write_qml_ramp

CRS = "EPSG:32649"
T30 = Affine(30.0, 0.0, 490000.0, 0.0, -30.0, 3750000.0)


def test_atomic_path_renames_on_success_and_cleans_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "a.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert final.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".txt" and tmp.name.startswith(".")
        tmp.write_text("new")
    assert final.read_text() == "new"


def _mount_point(path: Path) -> Path:
    p = path.resolve()
    while not os.path.ismount(p):
        p = p.parent
    return p


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space left on device"),
        (errno.EDQUOT, "disk quota exceeded on device"),
        (errno.EFBIG, "file too large for device"),
        (errno.EROFS, "is read-only: cannot write"),
        (errno.EACCES, "permission denied writing"),
        (errno.EIO, "failed (Input/output error); it was not written"),
    ],
)
def test_write_error_names_the_device_and_the_file(tmp_path: Path, code: int, words: str) -> None:
    final = tmp_path / "out" / "Cu_concentration.tif"
    msg = str(write_error(final, OSError(code, os.strerror(code))))
    assert words in msg and str(final) in msg and "\n" not in msg
    if code != errno.EACCES:
        assert f" at {_mount_point(tmp_path)}" in msg or f"device {_mount_point(tmp_path)}" in msg


def test_atomic_path_turns_a_failed_write_into_output_error(tmp_path: Path) -> None:
    final = tmp_path / "report.json"
    final.write_text("old")
    with pytest.raises(OutputError, match=f"no space left on device .* while writing {final};"):
        with atomic_path(final) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert final.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    # An output folder that cannot be created (a file is in the way).
    (tmp_path / "blocked").write_text("a file")
    with pytest.raises(OutputError, match="blocked for a.txt: a file is in the way"):
        with atomic_path(tmp_path / "blocked" / "a.txt") as tmp:
            tmp.write_text("never")
    with pytest.raises(OutputError, match="blocked"):
        TileWriter(tmp_path / "blocked" / "m.tif", Grid(CRS, T30, 10, 10), nodata=-1.0)


def test_write_geotiff_is_a_tiled_compressed_cog(tmp_path: Path) -> None:
    data = np.arange(600 * 700, dtype="float32").reshape(600, 700)
    data[0, 0] = np.nan
    p = write_geotiff(
        tmp_path / "x.tif",
        data,
        crs=CRS,
        transform=T30,
        nodata=-9999.0,
        descriptions=["Cu concentration"],
        units="mg/kg",
    )
    with rasterio.open(p) as src:
        assert src.crs.to_epsg() == 32649
        assert src.transform == T30
        assert src.nodata == -9999.0
        assert src.dtypes[0] == "float32"
        assert src.profile["tiled"] and src.block_shapes[0] == (256, 256)
        assert src.compression.name == "deflate"
        assert src.overviews(1) == [2, 4]
        assert src.descriptions == ("Cu concentration",)
        assert src.units == ("mg/kg",)
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        arr = src.read(1)
    assert arr[0, 0] == -9999.0 and arr[599, 699] == data[599, 699]


def test_tile_writer_writes_windows_and_aborts_cleanly(tmp_path: Path) -> None:
    grid = Grid(CRS, T30, 70, 50)
    target = tmp_path / "m.tif"
    with TileWriter(target, grid, nodata=-1.0, units="mg/kg") as w:
        w.write(0, 0, np.full((32, 32), 5.0))
        w.write(32, 64, np.full((18, 6), np.nan))
    with rasterio.open(target) as src:
        arr = src.read(1)
    assert arr[:32, :32].tolist() == np.full((32, 32), 5.0).tolist()
    assert (arr[32:, 64:] == -1.0).all()
    assert (arr[40:, :10] == -1.0).all()  # never written -> nodata
    with pytest.raises(ValueError), TileWriter(tmp_path / "k.tif", grid, nodata=-1.0) as w:
        w.write(0, 0, np.ones((10, 10)))
        raise ValueError("killed mid-run")
    assert not (tmp_path / "k.tif").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tif"]


def test_open_aligned_bilinear_masks_nodata_before_resampling(tmp_path: Path) -> None:
    # 60 m source with one nodata pixel; target grid 30 m offset by half a source pixel.
    src = np.array([[1.0, 2.0, 3.0], [4.0, -9999.0, 6.0], [7.0, 8.0, 9.0]], dtype="float32")
    t60 = Affine(60.0, 0.0, 490000.0, 0.0, -60.0, 3750000.0)
    p = write_geotiff(
        tmp_path / "c.tif", src, crs=CRS, transform=t60, nodata=-9999.0, overviews=False
    )
    grid = Grid(CRS, T30, 6, 6)
    da = open_aligned(p, grid, resampling="nearest", chunks=None)
    assert da.shape == (6, 6)
    assert da.values[0, 0] == 1.0 and da.values[5, 5] == 9.0 and np.isnan(da.values[2, 2])
    bil = open_aligned(p, grid, resampling="bilinear", chunks=3).values
    assert np.isfinite(bil).sum() >= 30  # neighbours of the hole are interpolated
    assert np.nanmax(bil) <= 9.0 and np.nanmin(bil) >= 1.0  # -9999 never leaks in


def test_open_aligned_reprojects_from_another_crs(tmp_path: Path) -> None:
    src = np.ones((50, 50), dtype="float32")
    # A geographic raster around the target grid (UTM 49N x=490000 ~ 110.89 E, 33.88 N).
    t = Affine(0.001, 0.0, 110.85, 0.0, -0.001, 33.90)
    p = write_geotiff(tmp_path / "g.tif", src, crs="EPSG:4326", transform=t, nodata=0.0)
    da = open_aligned(p, Grid(CRS, T30, 20, 20), resampling=Resampling.bilinear.name)
    assert np.allclose(da.values, 1.0)


def test_bad_rasters_raise_input_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="missing.tif"):
        open_raster(tmp_path / "missing.tif", what="DEM")
    bad = tmp_path / "corrupt.tif"
    good = write_geotiff(
        tmp_path / "ok.tif", np.ones((300, 300), "float32"), crs=CRS, transform=T30
    )
    bad.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(InputError, match="corrupt.tif.*corrupt"):
        open_raster(bad)
    far = write_geotiff(
        tmp_path / "far.tif",
        np.ones((5, 5), "float32"),
        crs=CRS,
        transform=Affine(30, 0, 100000, 0, -30, 1000000),
    )
    with pytest.raises(GridError, match="far.tif' does not overlap"):
        open_aligned(far, Grid(CRS, T30, 10, 10), what="DEM")
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(
        nocrs, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", transform=T30
    ) as dst:
        dst.write(np.ones((1, 4, 4), "uint8"))
    with pytest.raises(GridError, match="no coordinate reference system"):
        open_aligned(nocrs, Grid(CRS, T30, 4, 4))


def _gdal_cache_max() -> set[int]:
    """GDAL's block-cache limit in bytes, of every libgdal loaded in this process.

    rasterio's own libgdal is one of them; another (QGIS's system GDAL, loaded by an
    earlier test) keeps its own setting.
    """
    import ctypes

    maps = Path("/proc/self/maps").read_text().splitlines()
    libs = sorted({line.split()[-1] for line in maps if "libgdal" in line.split("/")[-1]})
    if not libs:
        pytest.skip("libgdal not found in /proc/self/maps")
    out = set()
    for path in libs:
        lib = ctypes.CDLL(path)
        lib.GDALGetCacheMax64.restype = ctypes.c_int64
        out.add(int(lib.GDALGetCacheMax64()))
    return out


def test_gdal_env_sets_the_block_cache_in_megabytes() -> None:
    # rasterio passes an integer GDAL_CACHEMAX on as bytes: 64 once meant a 64-byte cache.
    with gdal_env():
        assert 64 * 2**20 in _gdal_cache_max()
    with gdal_env(cache_mb=8):
        caches = _gdal_cache_max()
        assert 8 * 2**20 in caches and 64 not in caches and 8 not in caches


def test_qml_styles_are_valid_qgis_xml(tmp_path: Path) -> None:
    p = write_qml_ramp(tmp_path / "a.qml", vmin=20.0, vmax=110.0, units="mg/kg", stops=5)
    root = ET.parse(p).getroot()
    assert root.tag == "qgis"
    r = root.find("pipe/rasterrenderer")
    assert r is not None and r.get("type") == "singlebandpseudocolor"
    items = root.findall(".//colorrampshader/item")
    assert [float(i.attrib["value"]) for i in items] == [20.0, 42.5, 65.0, 87.5, 110.0]
    assert items[0].get("label") == "20.0 mg/kg"
    assert p.read_text().startswith("<!DOCTYPE qgis")
    q = write_qml_paletted(tmp_path / "b.qml", [(1, "clean", "#00ff00"), (2, "heavy", "#ff0000")])
    entries = ET.parse(q).getroot().findall(".//paletteEntry")
    assert [(e.get("value"), e.get("label")) for e in entries] == [("1", "clean"), ("2", "heavy")]

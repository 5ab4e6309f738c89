"""Sample points: round trips through every format, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geohm.errors import ConfigError, InputError
from geohm.io.points import points_from_xy, read_points, write_points

X = np.array([490015.0, 490345.5, 491000.25])
Y = np.array([3750015.0, 3751200.0, 3749990.5])


def _points():
    return points_from_xy(
        X,
        Y,
        crs="EPSG:32649",
        data={
            "id": ["S19-01", "S19-02", "S19-03"],
            "Cu": [21.4, 88.0, 35.5],
            "Pb": [20.1, 41.0, 25.2],
        },
    )


def _no_leftovers(folder, final_names):
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(final_names), names


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp"])
def test_vector_round_trip(tmp_path, suffix):
    path = write_points(_points(), tmp_path / f"samples{suffix}")
    back = read_points(path)
    assert back.crs.to_epsg() == 32649
    assert list(back["id"]) == ["S19-01", "S19-02", "S19-03"]
    np.testing.assert_allclose(back["Cu"], [21.4, 88.0, 35.5])
    np.testing.assert_allclose(back.geometry.x, X)
    np.testing.assert_allclose(back.geometry.y, Y)
    if suffix != ".shp":
        _no_leftovers(tmp_path, [f"samples{suffix}"])


def test_gpkg_layer_name_is_the_file_stem(tmp_path):
    import pyogrio

    path = write_points(_points(), tmp_path / "samples_target.gpkg")
    assert [r[0] for r in pyogrio.list_layers(path)] == ["samples_target"]


def test_write_reprojects(tmp_path):
    path = write_points(_points(), tmp_path / "s.gpkg", crs="EPSG:4326")
    back = read_points(path)
    assert back.crs.to_epsg() == 4326
    assert 110.0 < back.geometry.x.iloc[0] < 112.0  # UTM 49N lies around 111 E
    again = back.to_crs("EPSG:32649")
    np.testing.assert_allclose(again.geometry.x, X, atol=1e-6)


def test_csv_round_trip(tmp_path):
    path = write_points(_points(), tmp_path / "s.csv")
    df = pd.read_csv(path)
    assert list(df.columns) == ["id", "Cu", "Pb", "x", "y"]
    back = read_points(path, x="x", y="y", crs="EPSG:32649")
    assert back.crs.to_epsg() == 32649
    assert list(back.columns) == ["id", "Cu", "Pb", "geometry"]
    np.testing.assert_allclose(back.geometry.x, X)
    np.testing.assert_allclose(back["Pb"], [20.1, 41.0, 25.2])


def test_csv_lon_lat(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("lon,lat,Cu\n110.9,33.9,30\n111.0,34.0,40\n")
    back = read_points(p, x="lon", y="lat", crs="EPSG:4326")
    assert back.crs.to_epsg() == 4326
    assert back.geometry.x.tolist() == [110.9, 111.0]


@pytest.mark.parametrize(
    "kwargs, key",
    [
        ({"y": "lat", "crs": "EPSG:4326"}, "samples.x"),
        ({"x": "lon", "crs": "EPSG:4326"}, "samples.y"),
        ({"x": "lon", "y": "lat"}, "samples.crs"),
    ],
)
def test_csv_missing_keys(tmp_path, kwargs, key):
    p = tmp_path / "s.csv"
    p.write_text("lon,lat,Cu\n110.9,33.9,30\n")
    with pytest.raises(ConfigError, match=key):
        read_points(p, **kwargs)


def test_csv_bad_crs_and_columns(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("lon,lat,Cu\n110.9,33.9,30\n111.0,,31\n")
    with pytest.raises(ConfigError, match="samples.crs"):
        read_points(p, x="lon", y="lat", crs="EPSG:nope")
    with pytest.raises(InputError) as err:
        read_points(p, x="longitude", y="lat", crs="EPSG:4326")
    assert "'longitude'" in str(err.value) and str(p) in str(err.value)
    with pytest.raises(InputError, match=r"lines \[3\]"):
        read_points(p, x="lon", y="lat", crs="EPSG:4326")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="nothere.gpkg"):
        read_points(tmp_path / "nothere.gpkg")


def test_unknown_format(tmp_path):
    p = tmp_path / "s.xlsx"
    p.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown format"):
        read_points(p)


def test_corrupt_gpkg(tmp_path):
    p = tmp_path / "s.gpkg"
    p.write_bytes(b"not a geopackage at all" * 10)
    with pytest.raises(InputError, match="s.gpkg"):
        read_points(p)


def test_shapefile_without_crs(tmp_path):
    path = write_points(_points(), tmp_path / "s.shp")
    path.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match="no coordinate reference system"):
        read_points(path)


def test_several_layers_need_a_layer_name(tmp_path):
    path = write_points(_points(), tmp_path / "s.gpkg", layer="a")
    _points().iloc[:2].to_file(path, layer="b", driver="GPKG", engine="pyogrio")
    with pytest.raises(InputError, match="samples.layer"):
        read_points(path)
    assert len(read_points(path, layer="b")) == 2


def test_non_point_geometries(tmp_path):
    poly = _points().copy()
    poly["geometry"] = poly.buffer(10.0)
    path = write_points(poly, tmp_path / "poly.gpkg")
    with pytest.raises(InputError, match="must be points"):
        read_points(path)


def test_write_without_crs(tmp_path):
    gdf = _points().set_crs(None, allow_override=True)
    with pytest.raises(InputError, match="no CRS"):
        write_points(gdf, tmp_path / "s.gpkg")

"""Area above the screening value per zone (geohm.risk.zones) and zone files (geohm.io.zones)."""

from __future__ import annotations

import doctest
import itertools

import geopandas as gpd
import numpy as np
import pytest
import shapely
from affine import Affine

from geohm.errors import ConfigError, GridError, InputError
from geohm.grid import Grid
from geohm.io import zones as io_zones
from geohm.io.zones import read_zones, write_zones
from geohm.risk import zones as risk_zones
from geohm.risk.zones import ExceedanceAreas, areas_report, zone_columns

# A 20 x 30 grid of 10 m pixels in UTM 33N.
GRID = Grid("EPSG:32633", Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 30, 20)


def test_doctests() -> None:
    for module in (risk_zones, io_zones):
        assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


# --- the accumulator -------------------------------------------------------------------


def test_hand_checked_two_by_three() -> None:
    # 2 x 3 pixels of 100 m^2; S = 50 mg/kg; zone 0 = no zone; pixel (1, 1) not mapped.
    zones = np.array([[1, 1, 2], [2, 2, 0]])
    p = np.array([[0.5, 1.0, 0.25], [0.0, np.nan, 0.75]])
    lower = np.array([[40.0, 60.0, 30.0], [10.0, 0.0, 45.0]])
    upper = np.array([[70.0, 90.0, 55.0], [40.0, 0.0, 80.0]])
    acc = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=2)
    acc.update(zones, p, lower=lower, upper=upper, screening=50.0)
    r = acc.result()
    z1, z2 = r.zones
    # zone 1: pixels (0,0) P .5 [40, 70] and (0,1) P 1 [60, 90]
    assert z1.area_ha == pytest.approx(0.02)
    assert z1.mapped_ha == pytest.approx(0.02)
    assert z1.expected_ha == pytest.approx(0.015)
    assert z1.certain_ha == pytest.approx(0.01)
    assert z1.possible_ha == pytest.approx(0.02)
    assert (z1.expected_share, z1.certain_share, z1.possible_share) == pytest.approx(
        (0.75, 0.5, 1.0)
    )
    # zone 2: (0,2) P .25 [30, 55], (1,0) P 0 [10, 40], (1,1) not mapped
    assert z2.area_ha == pytest.approx(0.03)
    assert z2.mapped_ha == pytest.approx(0.02)
    assert z2.expected_ha == pytest.approx(0.0025)
    assert z2.certain_ha == 0.0
    assert z2.possible_ha == pytest.approx(0.01)
    # in no zone: (1,2) P .75 [45, 80]
    assert r.outside.mapped_ha == pytest.approx(0.01)
    assert r.outside.expected_ha == pytest.approx(0.0075)
    assert r.outside.possible_ha == pytest.approx(0.01)
    assert r.scene.area_ha == pytest.approx(0.06)
    assert r.scene.mapped_ha == pytest.approx(0.05)
    assert r.scene.expected_ha == pytest.approx(0.025)
    assert r.scene.certain_ha == pytest.approx(0.01)
    assert r.scene.possible_ha == pytest.approx(0.04)
    assert r.scene.expected_share == pytest.approx(0.5)


def test_screening_per_pixel_and_nan_screening_is_unmapped() -> None:
    acc = ExceedanceAreas("Pb", pixel_area_m2=900.0)
    s = np.array([[50.0, 100.0, np.nan]])
    acc.update(
        None,
        np.array([[0.9, 0.1, 0.5]]),
        lower=np.array([[60.0, 60.0, 60.0]]),
        upper=np.array([[80.0, 80.0, 80.0]]),
        screening=s,
    )
    r = acc.result().scene
    assert r.mapped_ha == pytest.approx(0.18)  # two pixels of 900 m^2
    assert r.expected_ha == pytest.approx(0.09)  # (0.9 + 0.1) x 0.09 ha
    assert r.certain_ha == pytest.approx(0.09)  # 60 > 50 only
    assert r.possible_ha == pytest.approx(0.09)  # 80 > 50 only


def test_without_bounds_certain_and_possible_are_none() -> None:
    acc = ExceedanceAreas("Cu", pixel_area_m2=100.0, n_zones=1, bounds=False)
    acc.update(np.array([[1, 0]]), np.array([[0.2, 0.4]]))
    r = acc.result()
    assert r.scene.expected_ha == pytest.approx(0.006)
    assert r.scene.certain_ha is None and r.zones[0].possible_share is None
    d = r.as_dict()
    assert d["scene"]["certain_ha"] is None and d["zones"][0]["expected_ha"] == pytest.approx(0.002)


def _ensemble_scene(seed: int = 0):
    """A 20 x 30 map from a 50-member ensemble: P = share of members above S; the bounds
    are the members' min and max, so P = 1 where lower > S and P = 0 where upper <= S."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:20, 0:30]
    mean = 30 + 2.0 * xx + rng.normal(0, 3, (20, 30))
    members = mean + rng.normal(0, 8, (50, 20, 30))
    s = 60.0
    p = (members > s).mean(axis=0)
    lower, upper = members.min(axis=0), members.max(axis=0)
    zones = (xx // 8 + 1) * (yy < 16)  # four zones side by side; the bottom rows in none
    zones[3, 3] = 99  # a nodata code
    p[rng.random((20, 30)) < 0.1] = np.nan
    return zones, p, lower, upper, s


def test_zone_areas_sum_to_the_mapped_area_and_are_ordered() -> None:
    zones, p, lower, upper, s = _ensemble_scene()
    acc = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=4, zone_nodata=99)
    acc.update(zones, p, lower=lower, upper=upper, screening=s)
    r = acc.result()
    for stat in ("area_ha", "mapped_ha", "expected_ha", "certain_ha", "possible_ha"):
        total = sum(getattr(z, stat) for z in r.zones) + getattr(r.outside, stat)
        assert total == pytest.approx(getattr(r.scene, stat), rel=1e-12)
    assert r.scene.area_ha == pytest.approx(600 * 0.01)
    assert r.scene.mapped_ha == pytest.approx(np.isfinite(p).sum() * 0.01)
    for z in (*r.zones, r.outside, r.scene):
        assert z.certain_ha <= z.expected_ha <= z.possible_ha
    # the zones are not trivial: each has some of all three
    assert all(0 < z.certain_ha < z.possible_ha for z in r.zones[2:])
    # a zone covering the whole mapped area has the scene's areas
    whole = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=1)
    whole.update(np.ones_like(zones), p, lower=lower, upper=upper, screening=s)
    assert whole.result().zones[0].mapped_ha == pytest.approx(r.scene.mapped_ha)


def test_certain_can_exceed_expected_with_a_central_interval() -> None:
    # Documented: with a 90 % interval P is only >= 0.95 where the lower bound is above S.
    acc = ExceedanceAreas("Cd", pixel_area_m2=100.0)
    acc.update(
        None,
        np.full((2, 2), 0.96),
        lower=np.full((2, 2), 70.0),
        upper=np.full((2, 2), 90.0),
        screening=50.0,
    )
    r = acc.result().scene
    assert r.certain_ha == pytest.approx(0.04) and r.expected_ha == pytest.approx(0.0384)


def _windows(h: int, w: int, rows: int, cols: int):
    return [
        (r, c, min(rows, h - r), min(cols, w - c))
        for r, c in itertools.product(range(0, h, rows), range(0, w, cols))
    ]


@pytest.mark.parametrize(("rows", "cols", "reverse"), [(7, 7, False), (4, 9, True), (20, 1, True)])
def test_window_order_and_size_do_not_matter(rows: int, cols: int, reverse: bool) -> None:
    zones, p, lower, upper, s = _ensemble_scene(seed=3)
    s_map = np.full(p.shape, s)
    s_map[:, -1] = 70.0  # per-pixel S

    def run(windows):
        acc = ExceedanceAreas("Cd", pixel_area_m2=900.0, n_zones=4, zone_nodata=99)
        for r, c, h, w in windows:
            sl = np.s_[r : r + h, c : c + w]
            acc.update(zones[sl], p[sl], lower=lower[sl], upper=upper[sl], screening=s_map[sl])
        return acc.result()

    whole = run([(0, 0, 20, 30)])
    windows = _windows(20, 30, rows, cols)
    parts = run(windows[::-1] if reverse else windows)
    for a, b in zip(
        (whole.scene, whole.outside, *whole.zones),
        (parts.scene, parts.outside, *parts.zones),
        strict=True,
    ):
        assert (a.area_ha, a.mapped_ha, a.certain_ha, a.possible_ha) == (
            b.area_ha,
            b.mapped_ha,
            b.certain_ha,
            b.possible_ha,
        )
        assert a.expected_ha == pytest.approx(b.expected_ha, rel=1e-13, abs=0)


def test_bad_inputs_raise() -> None:
    acc = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=2)
    one = np.ones((2, 2))
    with pytest.raises(ValueError, match="zone code 3"):
        acc.update(np.full((2, 2), 3), one * 0.5, lower=one, upper=one, screening=1.0)
    with pytest.raises(ValueError, match="give lower, upper"):
        acc.update(None, one * 0.5)
    with pytest.raises(ValueError, match="0-1"):
        acc.update(None, one * 2, lower=one, upper=one, screening=1.0)
    with pytest.raises(ValueError, match="pixel_area_m2"):
        ExceedanceAreas("Cd", pixel_area_m2=0.0)


def test_tables_for_gpkg_and_report() -> None:
    zones, p, lower, upper, s = _ensemble_scene()
    results = []
    for metal, shift in (("Cd", 0.0), ("Pb", 0.2)):
        acc = ExceedanceAreas(metal, pixel_area_m2=100.0, n_zones=4, zone_nodata=99)
        acc.update(zones, np.clip(p + shift, 0, 1), lower=lower, upper=upper, screening=s)
        results.append(acc.result())
    table = zone_columns(results)
    assert list(table.index) == [1, 2, 3, 4]
    assert table.loc[2, "Pb_expected_ha"] == pytest.approx(results[1].zones[1].expected_ha)
    assert "Cd_certain_share" in table.columns and len(table.columns) == 16
    rep = areas_report(results, labels=["a", "b", "c", "d"])
    assert rep["Cd"]["zones"][3]["zone"] == "d"
    assert rep["Pb"]["scene"]["mapped_ha"] == pytest.approx(results[1].scene.mapped_ha)
    frame = results[0].to_frame({1: "a", 2: "b", 3: "c", 4: "d"})
    assert list(frame["zone"]) == ["a", "b", "c", "d"] and set(frame["metal"]) == {"Cd"}


# --- zone files -------------------------------------------------------------------------


def _square(col0: int, row0: int, cols: int, rows: int) -> shapely.Polygon:
    """A polygon on the pixel edges of GRID: columns col0.., rows row0.."""
    t = GRID.transform
    x0, y0 = t * (col0, row0)
    x1, y1 = t * (col0 + cols, row0 + rows)
    return shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def _two_squares(tmp_path, crs: str = "EPSG:32633", name: str = "parcels.gpkg", **cols):
    gdf = gpd.GeoDataFrame(
        {"parcel_id": ["north-A", "south-B"], "owner": ["x", "y"], **cols},
        geometry=[_square(2, 3, 6, 6), _square(15, 10, 10, 5)],
        crs="EPSG:32633",
    ).to_crs(crs)
    path = tmp_path / name
    gdf.to_file(path, engine="pyogrio")
    return path


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:4326"])
def test_rasterised_squares_have_exact_pixel_counts(tmp_path, crs: str) -> None:
    zones = read_zones(_two_squares(tmp_path, crs), "parcel_id", grid=GRID)
    assert zones.n == 2 and zones.ids == ["north-A", "south-B"]
    assert zones.code("south-B") == 2 and zones.zone_id(1) == "north-A"
    assert zones.zone_id(0) is None
    codes = zones.rasterize()
    assert codes.dtype == np.int32 and codes.shape == (20, 30)
    assert (codes == 1).sum() == 36 and (codes == 2).sum() == 50
    assert (codes[3:9, 2:8] == 1).all() and (codes[10:15, 15:25] == 2).all()
    # a window gives the same codes as the slice of the whole grid; one without zones: 0
    assert np.array_equal(zones.rasterize_window(5, 4, 10, 12), codes[5:15, 4:16])
    assert not zones.rasterize_window(15, 0, 5, 10).any()
    # and the accumulator turns them into hectares: 36 and 50 pixels of 100 m^2
    acc = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=zones.n, bounds=False)
    acc.update(codes, np.full(codes.shape, 0.5))
    r = acc.result()
    assert [z.mapped_ha for z in r.zones] == pytest.approx([0.36, 0.50])
    assert [z.expected_ha for z in r.zones] == pytest.approx([0.18, 0.25])


def test_integer_ids_and_a_zone_off_the_grid(tmp_path) -> None:
    gdf = gpd.GeoDataFrame(
        {"pid": [10, 7, 3]},
        geometry=[_square(0, 0, 2, 2), _square(100, 100, 2, 2), _square(28, 18, 5, 5)],
        crs="EPSG:32633",
    )
    path = tmp_path / "z.geojson"
    gdf.to_file(path, engine="pyogrio")
    zones = read_zones(path, "pid", grid=GRID)
    assert zones.ids == [10, 7, 3] and zones.code(3) == 3
    assert zones.outside_grid() == [7]
    codes = zones.rasterize()
    assert (codes == 1).sum() == 4 and (codes == 2).sum() == 0 and (codes == 3).sum() == 4


def test_misspelt_id_column_names_the_column_and_the_file(tmp_path) -> None:
    path = _two_squares(tmp_path)
    with pytest.raises(ConfigError) as err:
        read_zones(path, "parcelid", grid=GRID)
    msg = str(err.value)
    assert "'parcelid'" in msg and str(path) in msg and "zones.id" in msg
    assert "did you mean 'parcel_id'" in msg


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InputError, match="does not exist.*zones.path"):
        read_zones(tmp_path / "nope.gpkg", "id", grid=GRID)


def test_duplicate_ids(tmp_path) -> None:
    gdf = gpd.GeoDataFrame(
        {"id": ["a", "a", "b"]},
        geometry=[_square(0, 0, 2, 2), _square(4, 4, 2, 2), _square(8, 8, 2, 2)],
        crs="EPSG:32633",
    )
    gdf.to_file(tmp_path / "dup.gpkg", engine="pyogrio")
    with pytest.raises(InputError, match=r"repeat \('a'\)"):
        read_zones(tmp_path / "dup.gpkg", "id", grid=GRID)


def test_points_are_not_zones(tmp_path) -> None:
    gdf = gpd.GeoDataFrame(
        {"id": [1, 2]},
        geometry=[shapely.Point(500050, 4999950), _square(4, 4, 2, 2)],
        crs="EPSG:32633",
    )
    gdf.to_file(tmp_path / "pts.gpkg", engine="pyogrio")
    with pytest.raises(InputError, match="Point geometries.*must be polygons"):
        read_zones(tmp_path / "pts.gpkg", "id", grid=GRID)


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_no_crs(tmp_path) -> None:
    gdf = gpd.GeoDataFrame({"id": [1]}, geometry=[_square(0, 0, 2, 2)])
    gdf.to_file(tmp_path / "nocrs.shp", engine="pyogrio")
    with pytest.raises(InputError, match="no coordinate reference system"):
        read_zones(tmp_path / "nocrs.shp", "id", grid=GRID)


def test_zones_off_the_grid(tmp_path) -> None:
    gdf = gpd.GeoDataFrame({"id": [1]}, geometry=[_square(500, 500, 5, 5)], crs="EPSG:32633")
    gdf.to_file(tmp_path / "far.gpkg", engine="pyogrio")
    with pytest.raises(GridError, match="no zone overlaps the map"):
        read_zones(tmp_path / "far.gpkg", "id", grid=GRID)


def test_write_zones_round_trip(tmp_path) -> None:
    zones = read_zones(_two_squares(tmp_path, "EPSG:4326"), "parcel_id", grid=GRID)
    codes = zones.rasterize()
    acc = ExceedanceAreas("Cd", pixel_area_m2=100.0, n_zones=zones.n)
    p = np.where(codes == 1, 0.75, 0.25)
    acc.update(
        codes, p, lower=np.full(codes.shape, 10.0), upper=np.full(codes.shape, 80.0), screening=50.0
    )
    out = write_zones(zones, zone_columns([acc.result()]), tmp_path / "out" / "zones.gpkg")
    back = gpd.read_file(out, engine="pyogrio")
    assert back.crs.to_epsg() == 4326  # the zones' own CRS
    assert list(back["parcel_id"]) == ["north-A", "south-B"]
    assert list(back["owner"]) == ["x", "y"]
    assert back["Cd_mapped_ha"].tolist() == pytest.approx([0.36, 0.50])
    assert back["Cd_expected_ha"].tolist() == pytest.approx([0.27, 0.125])
    assert back["Cd_certain_ha"].tolist() == [0.0, 0.0]
    assert back["Cd_possible_share"].tolist() == [1.0, 1.0]
    assert back.geometry.iloc[0].equals_exact(zones.frame.geometry.iloc[0], 1e-9)
    assert not [f for f in out.parent.iterdir() if f.name.startswith(".")]  # no temporaries

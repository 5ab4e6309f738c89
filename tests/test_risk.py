"""Tests for geohm.risk: indices by hand, gradings at their edges, the standards tables."""

from __future__ import annotations

import csv
import doctest
import math
from importlib import resources

import numpy as np
import pytest

from geohm import risk
from geohm.errors import ConfigError, InputError
from geohm.risk import (
    HAKANSON_ER,
    HAKANSON_RI,
    IGEO,
    NEMEROW,
    SINGLE_FACTOR,
    Grading,
    Standard,
    background,
    hakanson_er,
    hakanson_ri,
    igeo,
    load_standard,
    nemerow,
    single_factor,
    toxic_response,
)

NAN = np.nan
STANDARD_FILES = ("gb15618_2018.csv", "gb36600_2018.csv")
ALL_FILES = (*STANDARD_FILES, "seed001_limits.csv", "background.csv", "hakanson.csv")


def read_package_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("geohm.standards").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_docstring_examples() -> None:
    attempted = 0
    for module in (risk.indices, risk.gradings, risk.standards, risk.references):
        res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0, module.__name__
        attempted += res.attempted
    assert attempted > 10


# --------------------------------------------------------------------------------------------
# indices
# --------------------------------------------------------------------------------------------


def test_single_factor_pixels() -> None:
    # Pb against S = 90 mg/kg: 45/90, 90/90, 180/90, 0/90; negative and NaN are invalid
    c = np.array([[45.0, 90.0, 180.0], [0.0, -5.0, NAN]])
    np.testing.assert_allclose(single_factor(c, 90.0), [[0.5, 1.0, 2.0], [0.0, NAN, NAN]])


def test_single_factor_per_pixel_standard() -> None:
    # S from a pH window: 70 (pH <= 5.5), 90, NaN where the pH was NaN
    p = single_factor([70.0, 45.0, 10.0], np.array([70.0, 90.0, NAN]))
    np.testing.assert_allclose(p, [1.0, 0.5, NAN])


def test_single_factor_zero_standard_is_an_error() -> None:
    with pytest.raises(ConfigError, match="Pb"):
        single_factor([1.0], 0.0, metal="Pb")


def test_nemerow_two_metals_by_hand() -> None:
    # P = [0.5, 2.0]: P_max = 2, P_avg = 1.25 -> sqrt((4 + 1.5625) / 2) = sqrt(2.78125) = 1.66771
    assert float(nemerow([0.5, 2.0])) == pytest.approx(1.667708, abs=1e-6)
    # per pixel: second pixel P = [1, 1] -> sqrt((1 + 1) / 2) = 1; third has a NaN metal
    pn = nemerow([np.array([0.5, 1.0, 0.3]), np.array([2.0, 1.0, NAN])])
    np.testing.assert_allclose(pn, [1.667708, 1.0, NAN], atol=1e-6)


def test_nemerow_one_metal_is_its_index_and_empty_fails() -> None:
    np.testing.assert_allclose(nemerow([np.array([0.4, 3.0])]), [0.4, 3.0])
    with pytest.raises(ValueError, match="at least one"):
        nemerow([])


def test_nemerow_negative_index_is_invalid() -> None:
    assert np.isnan(nemerow([-0.5, 2.0]))


def test_igeo_by_hand() -> None:
    # B = 30: C = 45 -> log2(45/45) = 0; 90 -> 1; 180 -> 2; 22.5 -> log2(0.5) = -1; 0 -> NaN
    got = igeo([45.0, 90.0, 180.0, 22.5, 0.0, -3.0, NAN], 30.0)
    np.testing.assert_allclose(got, [0.0, 1.0, 2.0, -1.0, NAN, NAN, NAN])


def test_igeo_zero_or_negative_background_names_the_metal() -> None:
    with pytest.raises(ConfigError, match="Cu"):
        igeo([10.0], 0.0, metal="Cu")
    with pytest.raises(ConfigError, match="Pb"):
        igeo([10.0], np.array([21.4, -1.0]), metal="Pb")


def test_hakanson_by_hand() -> None:
    # Cd: T_r 30, B 0.097: C = 0.194 -> 30 * 2 = 60; C = 0.097 -> 30
    er_cd = hakanson_er([0.194, 0.097], 0.097, 30.0, metal="Cd")
    np.testing.assert_allclose(er_cd, [60.0, 30.0])
    # Pb: T_r 5, B 26: C = 52 -> 10; C = 26 -> 5
    er_pb = hakanson_er([52.0, 26.0], 26.0, 5.0, metal="Pb")
    np.testing.assert_allclose(er_pb, [10.0, 5.0])
    np.testing.assert_allclose(hakanson_ri([er_cd, er_pb]), [70.0, 35.0])
    assert np.isnan(hakanson_ri([[1.0], [NAN]])[0])


def test_hakanson_bad_factors() -> None:
    with pytest.raises(ConfigError, match="Cd"):
        hakanson_er([1.0], 0.0, 30.0, metal="Cd")
    with pytest.raises(ConfigError, match="toxic-response"):
        hakanson_er([1.0], 1.0, 0.0, metal="Cd")
    with pytest.raises(ValueError):
        hakanson_ri([])


# --------------------------------------------------------------------------------------------
# gradings
# --------------------------------------------------------------------------------------------


def test_nemerow_grading_edges() -> None:
    values = [0.0, 0.7, 0.70001, 1.0, 1.5, 2.0, 3.0, 3.0001, NAN, np.inf, -0.1]
    codes = NEMEROW.classify(values)
    assert codes.dtype == np.uint8
    assert codes.tolist() == [1, 1, 2, 2, 3, 3, 4, 5, 255, 255, 255]


def test_single_factor_grading_edges() -> None:
    codes = SINGLE_FACTOR.classify([1.0, 1.01, 2.0, 3.0, 5.0, 5.01])
    assert codes.tolist() == [1, 2, 2, 3, 4, 5]


def test_igeo_grading_codes_are_mueller_class_plus_one() -> None:
    # Müller: <= 0 class 0, (0, 1] class 1, ..., > 5 class 6; negatives are valid
    codes = IGEO.classify([-2.0, 0.0, 0.5, 1.0, 2.0, 4.5, 5.0, 5.5, NAN, -np.inf])
    assert codes.tolist() == [1, 1, 2, 2, 3, 6, 6, 7, 255, 255]
    assert IGEO.classes()[0][:2] == (1, "class 0 unpolluted")
    assert IGEO.classes()[-1][:2] == (7, "class 6 extremely polluted")


def test_hakanson_gradings_put_thresholds_in_the_upper_class() -> None:
    # E_r: < 40 low, 40-80 moderate, ..., >= 320 very high
    assert HAKANSON_ER.classify([39.9, 40.0, 80.0, 160.0, 320.0]).tolist() == [1, 2, 3, 4, 5]
    assert HAKANSON_RI.classify([149.0, 150.0, 300.0, 600.0, -1.0]).tolist() == [1, 2, 3, 4, 255]


def test_classify_keeps_shape() -> None:
    grid = np.array([[0.5, 2.5], [NAN, 9.0]])
    np.testing.assert_array_equal(NEMEROW.classify(grid), [[1, 4], [255, 5]])


def test_classes_for_colour_tables() -> None:
    classes = NEMEROW.classes()
    assert [c[0] for c in classes] == [1, 2, 3, 4, 5]
    assert classes[0][1] == "I safe"
    assert all(len(col) == 7 and col.startswith("#") for _, _, col in classes)


def test_custom_grading_from_config() -> None:
    g = risk.get_grading(
        {
            "name": "ri_rescaled",
            "breaks": [60, 120, 240],
            "labels": ["low", "moderate", "considerable", "very high"],
            "right": False,
        }
    )
    assert g.name == "ri_rescaled"
    assert g.classify([59, 60, 239, 240]).tolist() == [1, 2, 3, 4]
    assert len(g.colors) == 4  # default palette
    g2 = Grading.from_mapping(
        {
            "breaks": [0],
            "labels": ["neg", "pos"],
            "valid_min": None,
            "colors": ["#000000", "#FFFFFF"],
        }
    )
    assert g2.classify([-5, 0, 1]).tolist() == [1, 1, 2]
    assert g2.colors == ("#000000", "#ffffff")
    assert risk.get_grading("nemerow") is NEMEROW


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({"breaks": [2, 1], "labels": ["a", "b", "c"]}, "increase"),
        ({"breaks": [1, 2], "labels": ["a", "b"]}, "labels"),
        ({"breaks": [1], "labels": ["a", "b"], "colors": ["red", "blue"]}, "rrggbb"),
        ({"breaks": [1], "labels": ["a", "b"], "colours": []}, "unknown keys"),
        ({"labels": ["a"]}, "breaks"),
    ],
)
def test_bad_grading_specs(spec: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Grading.from_mapping(spec)


def test_unknown_grading_name_lists_builtins() -> None:
    with pytest.raises(ConfigError, match="nemerow"):
        risk.get_grading("nemerov")


# --------------------------------------------------------------------------------------------
# standards
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gb() -> Standard:
    return load_standard("gb15618")


def test_ph_band_edges(gb: Standard) -> None:
    # Pb, other: 70 (pH <= 5.5), 90 (5.5-6.5], 120 (6.5-7.5], 170 (> 7.5)
    assert gb.screening("Pb", ph=5.5) == 70.0
    assert gb.screening("Pb", ph=5.50001) == 90.0
    assert gb.screening("Pb", ph=6.5) == 90.0
    assert gb.screening("Pb", ph=7.5) == 120.0
    assert gb.screening("Pb", ph=7.6) == 170.0
    assert gb.screening("Pb", ph=3.0) == 70.0
    assert isinstance(gb.screening("Pb", ph=6.0), float)


def test_ph_array_with_nan(gb: Standard) -> None:
    ph = np.array([[5.5, 5.50001, 7.5], [7.6, NAN, -9999.0]])
    got = gb.screening("Cd", ph=ph)  # Cd other: 0.3, 0.3, 0.3, 0.6
    assert got.shape == ph.shape
    np.testing.assert_allclose(got, [[0.3, 0.3, 0.3], [0.6, NAN, NAN]])
    np.testing.assert_allclose(
        gb.screening("Cd", ph=ph, land_use="paddy"), [[0.3, 0.4, 0.6], [0.8, NAN, NAN]]
    )
    assert math.isnan(gb.screening("Cd", ph=NAN))


def test_land_use_paddy_vs_other(gb: Standard) -> None:
    assert gb.screening("Pb", ph=6.0) == 90.0
    assert gb.screening("Pb", ph=6.0, land_use="paddy") == 100.0
    assert gb.screening("Cu", ph=6.0, land_use="orchard") == 150.0
    assert gb.screening("Cu", ph=6.0, land_use="other") == 50.0
    assert gb.screening("Cu", ph=7.0, land_use="paddy") == 100.0  # Cu has no paddy column
    assert gb.screening("Ni", ph=7.0, land_use="paddy") == 100.0  # one value for all


def test_gb15618_values_against_science_md(gb: Standard) -> None:
    # science.md section 4, one value per band and land use column
    assert gb.screening("Hg", ph=8.0, land_use="paddy") == 1.0
    assert gb.screening("Hg", ph=5.0) == 1.3
    assert gb.screening("As", ph=7.0, land_use="paddy") == 25.0
    assert gb.screening("As", ph=8.0) == 25.0
    assert gb.screening("Cr", ph=7.0, land_use="paddy") == 300.0
    assert gb.screening("Zn", ph=8.0) == 300.0
    assert gb.screening("Ni", ph=6.0) == 70.0
    assert gb.intervention("Cd", ph=5.0) == 1.5
    assert gb.intervention("As", ph=6.0) == 150.0
    assert gb.intervention("Pb", ph=7.0, land_use="paddy") == 700.0
    assert gb.intervention("Cr", ph=8.0) == 1300.0
    assert gb.intervention("Hg", ph=7.0) == 4.0
    assert gb.metals() == ["Cd", "Hg", "As", "Pb", "Cr", "Cu", "Ni", "Zn"]
    assert gb.metals(kind="intervention") == ["Cd", "Hg", "As", "Pb", "Cr"]


def test_gb15618_cr_discrepancy_is_flagged(gb: Standard) -> None:
    # science.md: transcription 200, PMC 150 -> keep 200, flag it
    assert gb.screening("Cr", ph=7.0) == 200.0
    (row,) = [r for r in gb.rows_for("Cr") if r.ph_min == 6.5]
    assert row.checked == "unverified"
    assert "150" in row.note and "200" in row.note


def test_screening_errors_name_what_exists(gb: Standard) -> None:
    with pytest.raises(ConfigError, match=r"'Sb'.*Cd, Hg, As, Pb, Cr, Cu, Ni, Zn"):
        gb.screening("Sb", ph=6.0)
    with pytest.raises(ConfigError, match=r"'forest'.*paddy, other, orchard"):
        gb.screening("Pb", ph=6.0, land_use="forest")
    with pytest.raises(ConfigError, match="intervention.*Cu"):
        gb.screening("Cu", ph=6.0, kind="intervention")
    with pytest.raises(ConfigError, match="pH"):
        gb.screening("Pb")
    with pytest.raises(ConfigError, match="0-14"):
        gb.screening("Pb", ph=65.0)


def test_metal_names_are_case_insensitive(gb: Standard) -> None:
    assert gb.screening("pb", ph=6.0) == gb.screening("PB", ph=6.0) == 90.0


def test_gb36600_land_classes() -> None:
    g = load_standard("gb36600")
    assert g.screening("Cu", land_use="class1") == 2000.0
    assert g.screening("Cu", land_use=2) == 18000.0
    assert g.intervention("Pb", land_use="class2") == 2500.0
    assert g.screening("Cd", land_use="class 2") == 65.0
    assert g.intervention("Hg", land_use="class1") == 33.0
    assert g.screening("Cr(VI)", land_use="class1") == 3.0
    # pH is irrelevant; a pH window still gives a window of values
    np.testing.assert_allclose(
        g.screening("Ni", ph=np.array([5.0, NAN]), land_use=1), [150.0, 150.0]
    )
    with pytest.raises(ConfigError, match=r"Cr\(VI\)"):
        g.screening("Cr", land_use="class1")
    with pytest.raises(ConfigError, match="class1, class2"):
        g.screening("Cu")  # the default land use "other" is not a GB 36600 class


def test_seed001_limits() -> None:
    s = load_standard("seed001")
    assert s.metals() == ["Pb", "Cu"]
    assert s.screening("Pb") == 63.0
    assert s.screening("Cu", ph=6.0) == 4.0
    rows = read_package_csv("seed001_limits.csv")
    water = {r["parameter"]: r for r in rows if r["medium"] == "water"}
    assert (water["Pb"]["unit"], float(water["Pb"]["mpl_max"])) == ("mg/L", 0.4)
    assert float(water["Cu"]["mpl_max"]) == 1.0
    soil_ph = [r for r in rows if r["medium"] == "soil" and r["parameter"] == "pH"][0]
    assert (float(soil_ph["mpl_min"]), float(soil_ph["mpl_max"])) == (6.0, 8.0)


def test_load_standard_names_and_errors(tmp_path) -> None:
    assert load_standard("GB15618-2018") is load_standard("gb15618")
    with pytest.raises(ConfigError, match="gb15618, gb36600, seed001"):
        load_standard("gb1568")
    with pytest.raises(InputError, match="missing.csv"):
        load_standard(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("metal,value\nCu,1\n", encoding="utf-8")
    with pytest.raises(InputError, match="value_mg_kg"):
        load_standard(bad)


def test_user_copy_of_a_standard_file(tmp_path) -> None:
    text = resources.files("geohm.standards").joinpath("gb15618_2018.csv").read_text("utf-8")
    mine = tmp_path / "mine.csv"
    mine.write_text(
        text.replace("Pb,screening,other,5.5,6.5,90,", "Pb,screening,other,5.5,6.5,95,"),
        encoding="utf-8",
    )
    s = load_standard(mine)
    assert s.screening("Pb", ph=6.0) == 95.0
    assert s.screening("Pb", ph=6.0, land_use="paddy") == 100.0
    # minimal file: only metal and value
    minimal = tmp_path / "minimal.csv"
    minimal.write_text("metal,value_mg_kg\nCu,35\n", encoding="utf-8")
    assert load_standard(minimal).screening("Cu", ph=6.0) == 35.0


def test_overlapping_bands_are_rejected(tmp_path) -> None:
    f = tmp_path / "overlap.csv"
    f.write_text("metal,ph_min,ph_max,value_mg_kg\nCu,-inf,7,50\nCu,6.5,inf,100\n", "utf-8")
    with pytest.raises(ConfigError, match="overlapping"):
        load_standard(f)


def test_user_defined_standard() -> None:
    s = Standard.from_mapping(
        {
            "Cu": 100,
            "Pb": 120,
            "Cd": [0.3, 0.3, 0.3, 0.6],
            "Zn": {"ph_breaks": [6.5], "values": [200, 250]},
            "As": {"paddy": [30, 30, 25, 20], "other": 40},
        }
    )
    assert s.screening("Cu") == 100.0
    assert s.screening("Pb", ph=8.0, land_use="other") == 120.0
    assert s.screening("Cd", ph=7.5) == 0.3
    assert s.screening("Cd", ph=7.6) == 0.6
    assert s.screening("Zn", ph=6.5) == 200.0
    assert s.screening("Zn", ph=6.6) == 250.0
    assert s.screening("As", ph=7.0, land_use="paddy") == 25.0
    assert s.screening("As", ph=7.0) == 40.0
    np.testing.assert_allclose(s.screening("Cu", ph=np.full((2, 2), 6.0)), np.full((2, 2), 100.0))
    assert load_standard({"Cu": 100}).screening("cu") == 100.0


@pytest.mark.parametrize(
    ("mapping", "match"),
    [
        ({"Cu": 0}, "> 0"),
        ({"Cu": "high"}, "numbers"),
        ({"Cd": [0.3, 0.6]}, "4 GB 15618 pH bands"),
        ({"Zn": {"ph_breaks": [6.5, 7.5], "values": [1, 2]}}, "need 3 values"),
        ({"Zn": {"ph_breaks": [7.5, 6.5], "values": [1, 2, 3]}}, "increase"),
        ({}, "mapping"),
    ],
)
def test_bad_user_standards(mapping: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Standard.from_mapping(mapping)


def test_user_standard_from_yaml(tmp_path) -> None:
    f = tmp_path / "limits.yaml"
    f.write_text("Cu: 60\nPb: [70, 90, 120, 170]\n", encoding="utf-8")
    s = load_standard(f)
    assert (s.screening("Cu"), s.screening("Pb", ph=7.0)) == (60.0, 120.0)


# --------------------------------------------------------------------------------------------
# background values and Hakanson factors
# --------------------------------------------------------------------------------------------


def test_background_values() -> None:
    assert background("Cd") == 0.097
    assert background("Hg") == 0.065
    assert background("As") == 11.2
    assert background("Cu") == 22.6
    assert background("Pb", "national") == 26.0
    assert background("Cu", "shaanxi") == 21.4
    assert background("Pb", "Shaanxi") == 21.4
    assert background("Cu", "shaanxi", statistic="max") == 43.6
    assert background("Pb", "shaanxi", statistic="max") == 34.5
    with pytest.raises(ConfigError, match="Cu/shaanxi"):
        background("Zn", "shaanxi")


def test_background_from_user_file(tmp_path) -> None:
    f = tmp_path / "bg.csv"
    f.write_text("metal,region,value_mg_kg\nCu,site,30\n", encoding="utf-8")
    assert background("Cu", "site", path=f) == 30.0


def test_toxic_response() -> None:
    expected = {"Hg": 40, "Cd": 30, "As": 10, "Pb": 5, "Cu": 5, "Ni": 5, "Cr": 2, "Zn": 1}
    assert {m: toxic_response(m) for m in expected} == expected
    assert toxic_response("Ni", {"Ni": 2}) == 2.0
    assert toxic_response("ni", {"NI": 2}) == 2.0
    assert toxic_response("Sb", {"Sb": 15}) == 15.0
    with pytest.raises(ConfigError, match="Hg, Cd"):
        toxic_response("Sb")
    with pytest.raises(ConfigError, match="> 0"):
        toxic_response("Ni", {"Ni": 0})


# --------------------------------------------------------------------------------------------
# the data files themselves
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_row_has_a_source_and_a_check_flag(name: str) -> None:
    rows = read_package_csv(name)
    assert rows
    for r in rows:
        assert r["source"].strip(), r
        assert r["checked"] in ("checked", "partly", "unverified"), r


@pytest.mark.parametrize("name", STANDARD_FILES)
def test_standard_file_columns(name: str) -> None:
    rows = read_package_csv(name)
    assert list(rows[0]) == [
        "metal",
        "kind",
        "land_use",
        "ph_min",
        "ph_max",
        "value_mg_kg",
        "checked",
        "note",
        "source",
    ]
    assert {r["kind"] for r in rows} == {"screening", "intervention"}


def test_gb15618_file_shape() -> None:
    rows = read_package_csv("gb15618_2018.csv")
    scr = [r for r in rows if r["kind"] == "screening"]
    assert len(scr) == 5 * 2 * 4 + 2 * 4 + 2 * 4  # Cd..Cr two columns, Cu two, Ni and Zn one
    assert len(rows) - len(scr) == 5 * 4
    assert {(r["ph_min"], r["ph_max"]) for r in rows} == {
        ("-inf", "5.5"),
        ("5.5", "6.5"),
        ("6.5", "7.5"),
        ("7.5", "inf"),
    }
    assert {r["land_use"] for r in rows if r["metal"] == "Cu"} == {"orchard", "other"}
    assert {r["land_use"] for r in rows if r["metal"] == "Ni"} == {"all"}


def test_unverified_values_are_the_ones_science_md_flags() -> None:
    bg = read_package_csv("background.csv")
    unverified = {
        r["metal"] for r in bg if r["region"] == "national" and r["checked"] == "unverified"
    }
    assert unverified == {"Cu", "Pb", "Zn", "Cr", "Ni"}
    hak = {r["metal"]: r for r in read_package_csv("hakanson.csv")}
    assert hak["Ni"]["checked"] == "unverified" and "2" in hak["Ni"]["note"]


def test_readme_ships_with_the_data() -> None:
    text = resources.files("geohm.standards").joinpath("README.md").read_text("utf-8")
    assert "user_standard" in text and "mg/kg" in text


def test_classify_float32_values_on_a_break() -> None:
    # float32(0.3) > 0.3 in float64; compared at float32 precision it is on the break
    g = Grading("g", (0.3, 1.0), ("a", "b", "c"))
    assert g.classify(np.array([0.3, 0.30001], dtype=np.float32)).tolist() == [1, 2]
    assert NEMEROW.classify(np.array([0.7, 1.0, 3.0], dtype=np.float32)).tolist() == [1, 2, 4]


def test_risk_plan_gives_screening_values_and_classes_the_models_probabilities() -> None:
    """The plan never sees a model: it hands each window's screening values to the
    prediction step and classes the exceedance probabilities it gets back as arrays."""
    from pathlib import Path

    from geohm.config import RiskSpec
    from geohm.riskmaps import PH_LAYER, plan_risk

    spec = RiskSpec(ph=Path("ph.tif"), indices=["single_factor", "exceedance"])
    plan = plan_risk(spec, ["Cu", "Pb"], exceedance=["Cu"])  # Pb's model gives none
    assert [layer.name for layer in plan.layers] == [
        "Cu_risk",
        "Cu_exceedance",
        "Cu_exceedance_class",
        "Pb_risk",
    ]
    assert plan.notes == [
        "Pb: the model gives no predictive distribution, so no exceedance map (use model rf)"
    ]
    ph = np.array([[[5.0, 8.0], [NAN, 6.8]]])  # a window of the pH raster
    limits = plan.exceedance_thresholds(ph, [PH_LAYER])
    # GB 15618 Cu, other land: 50 mg/kg up to pH 6.5, 100 above; no pH, no value
    np.testing.assert_array_equal(limits["Cu"], [[50.0, 100.0], [NAN, 100.0]])
    assert set(limits) == {"Cu"}
    preds = {
        "Cu": np.array([[40.0, 120.0], [60.0, 90.0]], dtype="float32"),
        "Pb": np.full((2, 2), 10.0, dtype="float32"),
        "Cu_exceedance": np.array([[0.2, 0.5], [NAN, 0.49]], dtype="float32"),
    }
    out = plan.derive(preds, ph, [PH_LAYER])
    assert set(out) == {"Cu_risk", "Cu_exceedance_class", "Pb_risk"}
    np.testing.assert_array_equal(out["Cu_exceedance_class"], [[1, 2], [255, 1]])  # P >= 0.5
    np.testing.assert_array_equal(out["Cu_risk"], [[1, 2], [255, 1]])  # 40/50, 120/100

"""The sector-averaged Gaussian plume against its closed forms (geohm.accumulation.plume)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import exp1

from geohm.accumulation.plume import (
    STABILITY_CLASSES,
    Stack,
    WindRose,
    briggs_sigmas,
    crosswind_integrated_concentration,
    depletion_fraction,
    deposition_map,
    plume_concentration,
)
from geohm.errors import ConfigError, InputError

# Briggs' formulas (Boubel et al., Fundamentals of Air Pollution 3e, Tables 19-6/19-7)
# evaluated by hand at x = 1000 m, e.g. A: 0.22*1000/sqrt(1.1), 0.20*1000.
BRIGGS_1KM = {
    "rural": {
        "A": (209.762, 200.0),
        "B": (152.554, 120.0),
        "C": (104.881, 73.030),
        "D": (76.277, 37.947),
        "E": (57.208, 23.077),
        "F": (38.139, 12.308),
    },
    "urban": {
        "A": (270.449, 339.411),
        "B": (270.449, 339.411),
        "C": (185.933, 200.0),
        "D": (135.225, 122.788),
        "E": (92.967, 50.596),
        "F": (92.967, 50.596),
    },
}
# Pasquill-Gifford curves at 1 km (Turner's Workbook, as fitted by Martin 1976), which
# Briggs' rural formulas approximate.
PG_1KM = {
    "A": (213.0, 450.0),
    "B": (156.0, 109.9),
    "C": (104.0, 61.0),
    "D": (68.0, 31.5),
    "E": (50.5, 21.5),
    "F": (34.0, 14.0),
}


def one_way_rose(sector: int, n: int = 16, speed: float = 5.0, cls: str = "D") -> WindRose:
    freq = np.zeros((n, 1, 1))
    freq[sector, 0, 0] = 1.0
    return WindRose(freq, np.array([speed]), (cls,))


def random_rose(seed: int, n: int = 16) -> WindRose:
    rng = np.random.default_rng(seed)
    freq = rng.random((n, 2, 6))
    return WindRose(freq / freq.sum(), np.array([2.0, 6.0]), STABILITY_CLASSES)


@pytest.mark.parametrize("terrain", ["rural", "urban"])
@pytest.mark.parametrize("cls", STABILITY_CLASSES)
def test_briggs_sigmas_at_1km_match_the_published_formulas(terrain: str, cls: str) -> None:
    sy, sz = briggs_sigmas(1000.0, cls, terrain=terrain)  # type: ignore[arg-type]
    assert (float(sy), float(sz)) == pytest.approx(BRIGGS_1KM[terrain][cls], abs=1e-3)


@pytest.mark.parametrize("cls", STABILITY_CLASSES)
def test_briggs_rural_sigmas_approximate_the_pasquill_gifford_curves(cls: str) -> None:
    sy, sz = briggs_sigmas(1000.0, cls)
    assert abs(sy / PG_1KM[cls][0] - 1) < 0.15
    if cls != "A":  # Briggs caps sigma_z of class A at 0.2 x (PG: 450 m at 1 km)
        assert abs(sz / PG_1KM[cls][1] - 1) < 0.25


@pytest.mark.parametrize("cls", ["A", "C", "D", "F"])
@pytest.mark.parametrize("x", [300.0, 1000.0, 5000.0])
def test_crosswind_integral_of_the_2d_plume_equals_its_closed_form(cls: str, x: float) -> None:
    q, u, h = 2.0, 4.0, 30.0
    sy, sz = briggs_sigmas(x, cls)
    numeric, _ = quad(
        lambda y: float(
            plume_concentration(x, y, 0.0, emission_rate=q, wind_speed=u, height=h, stability=cls)
        ),
        -12 * float(sy),
        12 * float(sy),
        epsabs=0,
        epsrel=1e-12,
    )
    closed = 2 * q * math.exp(-(h**2) / (2 * sz**2)) / (math.sqrt(2 * math.pi) * u * sz)
    assert numeric == pytest.approx(closed, rel=1e-9)
    ours = crosswind_integrated_concentration(
        x, emission_rate=q, wind_speed=u, height=h, stability=cls
    )
    assert float(ours) == pytest.approx(closed, rel=1e-12)


def test_mixing_height_caps_the_vertical_spread() -> None:
    kw: dict[str, Any] = {"emission_rate": 1.0, "wind_speed": 5.0, "height": 20.0, "stability": "A"}
    # class A, x = 5 km: sigma_z = 1000 m > 1.6 * 300 m -> uniform in the layer: Q / (u L)
    assert float(
        crosswind_integrated_concentration(5000.0, mixing_height=300.0, **kw)
    ) == pytest.approx(1.0 / (5.0 * 300.0), rel=1e-12)
    assert (
        float(crosswind_integrated_concentration(5000.0, mixing_height=10.0, **kw)) == 0.0
    )  # release above the lid


def test_sector_average_is_the_crosswind_integral_spread_over_the_arc() -> None:
    # All wind from the south (sector 8 of 16): the plume goes north to the receptor at 1 km.
    e_kg, v_d, u, h = 3.0, 0.01, 5.0, 20.0
    rose = one_way_rose(8, speed=u)
    dep = deposition_map(
        [Stack(0.0, 0.0, h, e_kg)],
        np.array([0.0, 1000.0]),
        np.array([1000.0]),
        rose,
        v_d=v_d,
        depletion=False,
    )
    # By hand: class D at 1 km, sigma_z = 60/sqrt(2.5) = 37.947 m; Q = 3 kg/yr = 3e6 mg/yr.
    sz = 60 / math.sqrt(2.5)
    cy = 2 * 3e6 * math.exp(-(20**2) / (2 * sz**2)) / (math.sqrt(2 * math.pi) * 5 * sz)
    arc = 1000 * 2 * math.pi / 16
    assert dep[0, 0] == pytest.approx(v_d * cy / arc, rel=1e-12)
    assert dep[0, 0] == pytest.approx(0.27960, rel=1e-4)  # mg/m2/yr
    assert dep[0, 1] == 0.0  # north-east, 45 deg off: sectors 9 and 10 carry no wind
    # the same receptor through the 2-D plume: integral across y, spread over the arc
    numeric, _ = quad(
        lambda y: float(
            plume_concentration(
                1000.0, y, 0.0, emission_rate=3e6, wind_speed=u, height=h, stability="D"
            )
        ),
        -2000,
        2000,
        epsabs=0,
        epsrel=1e-12,
    )
    assert dep[0, 0] == pytest.approx(v_d * numeric / arc, rel=1e-9)


def test_sector_smoothing_keeps_the_angular_integral() -> None:
    rose = random_rose(3)
    angles = (np.arange(7200) + 0.5) * 2 * np.pi / 7200
    gx, gy = (2000.0 * np.sin(angles))[None, :], (2000.0 * np.cos(angles))[None, :]
    kw: dict[str, Any] = {"v_d": 0.005, "depletion": True}
    smooth = deposition_map([Stack(0.0, 0.0, 40.0, 1.0)], gx, gy, rose, smooth=True, **kw)
    step = deposition_map([Stack(0.0, 0.0, 40.0, 1.0)], gx, gy, rose, smooth=False, **kw)
    assert smooth.mean() == pytest.approx(step.mean(), rel=1e-9)
    assert not np.allclose(smooth, step)


@pytest.mark.parametrize("cls, c", [("A", 0.20), ("B", 0.12)])
def test_depletion_matches_its_closed_form_when_sigma_z_is_linear(cls: str, c: float) -> None:
    # sigma_z = c x: integral_0^x sqrt(2/pi) exp(-H^2/(2 c^2 x'^2)) / (c x') dx'
    #              = sqrt(2/pi) / (2 c) * E1(H^2 / (2 c^2 x^2))
    h, u, v_d = 50.0, 3.0, 0.05
    x = np.array([100.0, 500.0, 2000.0, 20000.0])
    integral = math.sqrt(2 / math.pi) / (2 * c) * exp1(h**2 / (2 * c**2 * x**2))
    ours = depletion_fraction(x, height=h, wind_speed=u, stability=cls, v_d=v_d)
    np.testing.assert_allclose(ours, np.exp(-v_d / u * integral), rtol=1e-6)
    wet = depletion_fraction(x, height=h, wind_speed=u, stability=cls, v_d=v_d, scavenging=1e-4)
    np.testing.assert_allclose(wet, ours * np.exp(-1e-4 * x / u), rtol=1e-12)


def test_deposited_plus_airborne_mass_balances_the_emission() -> None:
    rose = random_rose(7)
    e_kg, h, v_d, lam, rain, rmax = 10.0, 30.0, 0.02, 5e-4, 0.1, 20_000.0
    centres = np.arange(-rmax + 25.0, rmax, 50.0)  # 800 x 800 pixels of 50 m
    kw: dict[str, Any] = {
        "v_d": v_d,
        "scavenging": lam,
        "rain_fraction": rain,
        "max_distance": rmax,
    }
    dep = deposition_map([Stack(0.0, 0.0, h, e_kg)], centres, centres, rose, **kw)
    deposited = dep.sum() * 50.0**2  # mg/yr
    emitted = e_kg * 1e6
    airborne = 0.0
    for j, cls in enumerate(rose.classes):
        for i, u in enumerate(rose.speeds):
            f = rose.frequency[:, i, j].sum()
            for share, scav in [(1 - rain, 0.0), (rain, lam)]:
                left = depletion_fraction(
                    rmax,
                    height=h,
                    wind_speed=u,
                    stability=cls,
                    v_d=v_d,
                    scavenging=scav,
                    max_distance=rmax,
                )
                airborne += share * f * emitted * float(left)
    assert deposited <= emitted
    assert 0.3 < deposited / emitted < 0.9  # a test where depletion matters
    assert (deposited + airborne) / emitted == pytest.approx(1.0, abs=1e-3)
    undepleted = deposition_map(
        [Stack(0.0, 0.0, h, e_kg)],
        centres,
        centres,
        rose,
        v_d=0.002,
        max_distance=rmax,
        depletion=False,
    )
    assert undepleted.sum() * 50.0**2 <= emitted


def test_windows_give_the_same_map_as_the_whole_grid() -> None:
    rose = random_rose(11, n=12)
    stacks = [Stack(1510.0, 1490.0, 45.0, 2.0), Stack(400.0, 2600.0, 15.0, 0.5)]
    xs, ys = 15.0 + 30.0 * np.arange(100), 2985.0 - 30.0 * np.arange(100)
    kw: dict[str, Any] = {
        "v_d": 0.005,
        "scavenging": 1e-4,
        "rain_fraction": 0.08,
        "mixing_height": 800.0,
    }
    whole = deposition_map(stacks, xs, ys, rose, **kw)
    assert whole.shape == (100, 100) and whole.max() > 0
    parts = np.block(
        [
            [
                deposition_map(stacks, xs[c], ys[r], rose, **kw)
                for c in (slice(0, 50), slice(50, 100))
            ]
            for r in (slice(0, 50), slice(50, 100))
        ]
    )
    assert np.array_equal(parts, whole)


def test_a_taller_stack_lowers_the_near_field_maximum() -> None:
    rose = random_rose(5)
    xs = np.arange(-2985.0, 3000.0, 30.0)
    maxima = [
        deposition_map([Stack(0.0, 0.0, h, 1.0)], xs, xs, rose, v_d=0.005).max()
        for h in (20.0, 50.0, 100.0)
    ]
    assert maxima[0] > maxima[1] > maxima[2] > 0


def test_bad_inputs_raise_geohm_errors() -> None:
    rose = one_way_rose(0)
    xs = np.array([0.0, 100.0])
    with pytest.raises(InputError, match="height"):
        deposition_map([Stack(0.0, 0.0, 0.0, 1.0)], xs, xs, rose, v_d=0.01)
    with pytest.raises(ConfigError, match="rain_fraction"):
        deposition_map([Stack(0.0, 0.0, 10.0, 1.0)], xs, xs, rose, v_d=0.01, scavenging=1e-4)
    with pytest.raises(ConfigError, match="sum to 1"):
        WindRose(np.full((4, 1, 1), 0.5), np.array([3.0]), ("D",))
    with pytest.raises(ConfigError, match="stability class"):
        WindRose(np.full((4, 1, 1), 0.25), np.array([3.0]), ("G",))
    with pytest.raises(InputError, match="grid_x"):
        deposition_map([Stack(0.0, 0.0, 10.0, 1.0)], np.zeros((2, 2)), xs, rose, v_d=0.01)

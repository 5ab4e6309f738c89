"""Mass balance and projection of metals in topsoil (issue 16).

Modules: geohm/accumulation/soil.py, budget.py, projection.py.

Hand-checked unit conversions, mass conservation per cell and year, the stepper against the
closed form C(t) = C* + (C0 - C*) e^(-kt), years to exceedance and headroom.
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest
from scipy.integrate import quad

from geohm.accumulation import budget as budget_mod
from geohm.accumulation import projection as projection_mod
from geohm.accumulation import soil as soil_mod
from geohm.accumulation.budget import (
    Budget,
    Fluxes,
    application_input,
    crop_output,
    erosion_output,
    irrigation_input,
    leaching_output,
    linear_coefficients,
    per_class,
    runoff_output,
)
from geohm.accumulation.projection import (
    closed_form,
    headroom,
    steady_state,
    step,
    years_to_exceed,
)
from geohm.accumulation.soil import (
    kd_regression,
    partition_coefficient,
    retention,
    soil_mass,
    solution_concentration,
)
from geohm.errors import ConfigError

#: Tolerances the issue asks for and the exact stepper meets.
CONSERVATION_RTOL = 1e-9
CLOSED_FORM_RTOL = 1e-12


@pytest.mark.parametrize("module", [soil_mod, budget_mod, projection_mod])
def test_doctests(module: object) -> None:
    res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)  # type: ignore[arg-type]
    assert res.failed == 0 and res.attempted > 0


# --- soil ---------------------------------------------------------------------------------


def test_soil_mass_by_hand() -> None:
    assert float(soil_mass(1300.0, 0.2)) == pytest.approx(260.0, rel=1e-15)
    # 2.25e6 kg/ha (the Chinese convention) = 225 kg/m2 = 1500 kg/m3 * 0.15 m
    assert float(soil_mass(1500.0, 0.15)) == pytest.approx(225.0, rel=1e-15)
    grid = soil_mass(np.array([[1300.0, 1500.0]]), np.array([[0.2], [0.3]]))
    assert grid.shape == (2, 2) and grid.dtype == np.float64
    np.testing.assert_allclose(grid, [[260.0, 300.0], [390.0, 450.0]], rtol=1e-15)


@pytest.mark.parametrize(("rho", "depth"), [(0.0, 0.2), (1300.0, -0.1)])
def test_soil_mass_rejects_nonpositive(rho: float, depth: float) -> None:
    with pytest.raises(ConfigError, match="bulk_density|depth"):
        soil_mass(rho, depth)


def test_solution_concentration_by_hand() -> None:
    # rho_b 1300 kg/m3 = 1.3 kg/L: theta / rho_b = 0.26 / 1.3 = 0.2 L/kg, R = 100.2 L/kg
    assert float(retention(100.0, 0.26, 1300.0)) == pytest.approx(100.2, rel=1e-15)
    cw = solution_concentration(50.1, kd=100.0, theta=0.26, bulk_density=1300.0)
    assert float(cw) == pytest.approx(0.5, rel=1e-14)  # mg/L
    # with Kd = 0 all metal is dissolved: C_w = C rho_b / theta
    cw0 = solution_concentration(1.0, kd=0.0, theta=0.26, bulk_density=1300.0)
    assert float(cw0) == pytest.approx(5.0, rel=1e-14)


@pytest.mark.parametrize(
    ("kd", "theta", "rho", "match"),
    [
        (-1.0, 0.2, 1300.0, "kd"),
        (10.0, 1.5, 1300.0, "theta"),
        (10.0, 0.2, 0.0, "bulk_density"),
        (0.0, 0.0, 1300.0, "kd"),
    ],
)
def test_retention_rejects_bad_values(kd: float, theta: float, rho: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        retention(kd, theta, rho)


def test_kd_without_value_or_coefficients_names_metal_and_key() -> None:
    with pytest.raises(ConfigError, match=r"Kd of Pb.*give kd") as err:
        partition_coefficient("Pb", ph=6.5, som=3.0)
    assert "Sauvé" in str(err.value)


def test_kd_given_and_from_coefficients_by_hand() -> None:
    np.testing.assert_array_equal(partition_coefficient("Cd", kd=[[10.0, 20.0]]), [[10.0, 20.0]])
    # log10 Kd = -1 + 0.5 * 6 + 1 * log10(10) = 3 -> 1000 L/kg
    kd = partition_coefficient("Cu", ph=6.0, som=10.0, coefficients=(-1.0, 0.5, 1.0))
    assert float(kd) == pytest.approx(1000.0, rel=1e-13)
    # pH-only form, broadcast over a grid of pH: 10^(-1 + 0.5 pH)
    grid = kd_regression(np.array([[4.0, 5.0], [6.0, 8.0]]), intercept=-1.0, ph_slope=0.5)
    np.testing.assert_allclose(grid, [[10.0, 10**1.5], [100.0, 1000.0]], rtol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kd": 5.0, "coefficients": (1.0, 0.1)}, "not both"),
        ({"coefficients": (1.0,), "ph": 6.0}, r"\(a, b\)"),
        ({"coefficients": (1.0, 0.1)}, "pH"),
        ({"coefficients": (1.0, 0.1, 0.5), "ph": 6.0}, "som"),
        ({"kd": -3.0}, "kd must be > 0"),
    ],
)
def test_kd_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        partition_coefficient("Zn", **kwargs)  # type: ignore[arg-type]


# --- flux terms: unit conversions by hand ---------------------------------------------------


def test_fertiliser_units_by_hand() -> None:
    # 500 kg/ha = 50 g/m2 = 0.05 kg/m2 of fertiliser; at 10 mg/kg Cd that is 0.5 mg/m2
    assert float(application_input(500.0, 10.0)) == pytest.approx(0.05 * 10.0, rel=1e-15)
    # 20 t/ha of manure (20 000 kg/ha = 2 kg/m2) with 300 mg/kg Zn: 600 mg/m2
    assert float(application_input(20_000.0, 300.0)) == pytest.approx(600.0, rel=1e-15)


def test_irrigation_units_by_hand() -> None:
    # 300 mm = 300 L/m2 at 5 ug/L = 0.005 mg/L: 1.5 mg/m2
    assert float(irrigation_input(300.0, 0.005)) == pytest.approx(1.5, rel=1e-15)


def test_leaching_and_runoff_by_hand() -> None:
    kw = {"kd": 100.0, "theta": 0.26, "bulk_density": 1300.0}
    # C_w = 50.1 / 100.2 = 0.5 mg/L; 200 L/m2 of percolation carry 100 mg/m2
    assert float(leaching_output(50.1, percolation=200.0, **kw)) == pytest.approx(100.0, 1e-14)
    assert float(runoff_output(50.1, runoff=20.0, **kw)) == pytest.approx(10.0, rel=1e-14)


def test_erosion_units_by_hand() -> None:
    # 5 t/ha = 5000 kg / 10 000 m2 = 0.5 kg/m2; * SDR 0.5 * ER 1.2 * 100 mg/kg = 30 mg/m2
    assert float(erosion_output(100.0, soil_loss=5.0, sdr=0.5, enrichment=1.2)) == pytest.approx(
        0.5 * 0.5 * 1.2 * 100.0, rel=1e-15
    )
    with pytest.raises(ConfigError, match="sdr"):
        erosion_output(100.0, soil_loss=5.0, sdr=1.5, enrichment=1.0)


def test_crop_units_by_hand() -> None:
    # 6 t/ha dry matter = 0.6 kg/m2; BCF 0.05 on 0.4 mg/kg: 0.02 mg/kg in grain, 0.012 mg/m2
    assert float(crop_output(0.4, crop_yield=6.0, bcf=0.05)) == pytest.approx(0.012, rel=1e-14)


def test_negative_rate_is_config_error() -> None:
    with pytest.raises(ConfigError, match="application rate"):
        application_input(-1.0, 10.0)


def test_per_class_table() -> None:
    land = np.array([[1.0, 2.0], [np.nan, 3.0]])
    table = {1: 500.0, 2: 0.0, 3: 120.0}
    np.testing.assert_array_equal(per_class(land, table), [[500.0, 0.0], [np.nan, 120.0]])
    with pytest.raises(ConfigError, match=r"fertiliser rate table has no row.*\[3\]"):
        per_class(land, {1: 500.0, 2: 0.0}, name="fertiliser rate")
    np.testing.assert_array_equal(
        per_class(land, {1: 500.0}, default=0.0), [[500.0, 0.0], [np.nan, 0.0]]
    )


# --- the budget -----------------------------------------------------------------------------


def _hand_budget(**over: object) -> Budget:
    kw: dict[str, object] = {
        "bulk_density": 1300.0,
        "depth": 0.2,
        "deposition": 2.0,
        "fertiliser": 0.5,
        "manure": 0.3,
        "irrigation": 0.2,
        "percolation": 200.0,
        "runoff": 20.0,
        "kd": 100.0,
        "theta": 0.26,
        "soil_loss": 5.0,
        "sdr": 0.5,
        "enrichment": 1.2,
        "crop_yield": 6.0,
        "bcf": 0.05,
    }
    kw.update(over)
    return Budget(**kw)  # type: ignore[arg-type]


def test_linear_coefficients_by_hand() -> None:
    b = _hand_budget()
    a, k = linear_coefficients(b)
    ms = 260.0
    assert float(a) == pytest.approx(3.0 / ms, rel=1e-14)  # 2 + 0.5 + 0.3 + 0.2 mg/m2/yr
    # (200 + 20) / 100.2 L/kg + 0.1 * 5 * 0.5 * 1.2 + 0.1 * 6 * 0.05 (kg/m2/yr), over M_s
    k_hand = (220.0 / 100.2 + 0.3 + 0.03) / ms
    assert float(k) == pytest.approx(k_hand, rel=1e-14)
    rates = b.output_rates()
    assert float(rates["erosion"]) == pytest.approx(0.3 / ms, rel=1e-14)
    assert float(rates["crop"]) == pytest.approx(0.03 / ms, rel=1e-14)


def test_budget_fluxes_match_linear_form() -> None:
    b = _hand_budget()
    a, k = b.linear_coefficients()
    c = np.array([[0.0, 10.0], [50.1, 400.0]])
    f = b.fluxes(c)
    assert isinstance(f, Fluxes)
    assert f.leaching.shape == (2, 2) and f.deposition.shape == (2, 2)
    np.testing.assert_allclose(f.leaching, 200.0 * c / 100.2, rtol=1e-14)
    np.testing.assert_allclose(f.net, f.inputs - f.outputs, rtol=0, atol=0)
    np.testing.assert_allclose(f.net / 260.0, a - k * c, rtol=1e-13, atol=1e-15)
    assert list(f.terms()) == [*budget_mod.INPUT_TERMS, *budget_mod.OUTPUT_TERMS]


def test_budget_needs_kd_and_theta_for_water_outputs() -> None:
    with pytest.raises(ConfigError, match=r"give kd \(L/kg\) and theta"):
        Budget(bulk_density=1300.0, depth=0.2, percolation=200.0)
    # without water outputs they are not needed
    a, k = Budget(bulk_density=1300.0, depth=0.2, deposition=2.6).linear_coefficients()
    assert float(a) == pytest.approx(0.01, rel=1e-14) and float(k) == 0.0


# --- closed form, steady state ---------------------------------------------------------------


def test_closed_form_limits() -> None:
    assert float(closed_form(60.0, 1.0, 0.0, 10.0)) == pytest.approx(70.0, rel=1e-15)
    # C* = 100; after 10 years 100 - 40 e^-0.1
    assert float(closed_form(60.0, 1.0, 0.01, 10.0)) == pytest.approx(
        100.0 - 40.0 * math.exp(-0.1), rel=1e-14
    )
    # continuous at k -> 0
    assert float(closed_form(60.0, 1.0, 1e-13, 10.0)) == pytest.approx(70.0, rel=1e-12)
    # decay without inputs
    assert float(closed_form(60.0, 0.0, 0.02, 50.0)) == pytest.approx(60 * math.exp(-1), 1e-14)
    with pytest.raises(ConfigError, match="k must be >= 0"):
        closed_form(60.0, 1.0, -0.01, 10.0)


def test_steady_state() -> None:
    out = steady_state([1.0, 1.0, 0.0], [0.01, 0.0, 0.0])
    assert out[0] == pytest.approx(100.0, rel=1e-15)
    assert out[1] == np.inf and np.isnan(out[2])


# --- the stepper ----------------------------------------------------------------------------


def _random_budget(shape: tuple[int, int], seed: int = 16) -> tuple[np.ndarray, Budget]:
    rng = np.random.default_rng(seed)
    c0 = rng.uniform(0.1, 300.0, shape)
    c0[0, 0] = np.nan  # a nodata cell
    b = Budget(
        bulk_density=rng.uniform(1000.0, 1600.0, shape),
        depth=0.2,  # scalar, broadcast
        deposition=rng.uniform(0.0, 50.0, shape),
        fertiliser=rng.uniform(0.0, 5.0, (shape[0], 1)),  # broadcast along x
        manure=2.0,
        irrigation=rng.uniform(0.0, 1.0, shape),
        percolation=rng.uniform(50.0, 500.0, shape),
        runoff=rng.uniform(0.0, 80.0, shape),
        kd=10 ** rng.uniform(0.5, 3.5, shape),
        theta=rng.uniform(0.1, 0.45, shape),
        soil_loss=rng.uniform(0.0, 40.0, shape),
        sdr=rng.uniform(0.05, 1.0, shape),
        enrichment=rng.uniform(1.0, 3.0, shape),
        crop_yield=rng.uniform(0.0, 10.0, shape),
        bcf=rng.uniform(0.0, 0.5, shape),
    )
    return c0, b


def test_exact_stepper_matches_closed_form() -> None:
    c0, b = _random_budget((6, 8))
    a, k = b.linear_coefficients()
    assert np.nanmax(k) > 0.05 and np.nanmin(k) < 0.01  # fast and slow cells
    p = step(c0, b, 50, record=range(51))
    assert p.concentration.shape == (51, 6, 8) and p.years == tuple(range(51))
    for i, year in enumerate(p.years):
        ref = closed_form(c0, a, k, year)
        np.testing.assert_allclose(p.concentration[i], ref, rtol=CLOSED_FORM_RTOL, atol=0)
    assert np.isnan(p.concentration[:, 0, 0]).all()  # nodata stays nodata, alone
    assert np.isfinite(p.concentration[:, 1:, :]).all()
    np.testing.assert_array_equal(p.at(0), np.broadcast_to(c0, (6, 8)))


def test_ak_stepper_matches_closed_form_including_k0() -> None:
    c0 = np.array([[60.0, 60.0, 10.0]])
    a = np.array([[1.0, 1.0, 0.0]])
    k = np.array([[0.01, 0.0, 0.3]])
    p = step(c0, (a, k), 30, record=[10, 30], soil_mass=260.0)
    np.testing.assert_allclose(p.at(10), closed_form(c0, a, k, 10), rtol=CLOSED_FORM_RTOL)
    np.testing.assert_allclose(p.at(30), closed_form(c0, a, k, 30), rtol=CLOSED_FORM_RTOL)
    assert p.at(30)[0, 1] == pytest.approx(90.0, rel=1e-15)  # k = 0: C0 + a t


def _relative_residual(inputs: np.ndarray, outputs: np.ndarray, stock: np.ndarray) -> np.ndarray:
    scale = np.maximum.reduce([np.abs(inputs), np.abs(outputs), np.abs(stock)])
    return np.abs(inputs - outputs - stock) / scale


@pytest.mark.parametrize("mode", ["exact", "explicit"])
def test_mass_conservation_per_cell_and_year(mode: str) -> None:
    c0, b = _random_budget((5, 7), seed=3)
    years = 20
    if mode == "exact":
        p = step(c0, b, years, record=range(years + 1))
    else:
        p = step(c0, b.fluxes, years, record=range(years + 1), soil_mass=b.soil_mass, substeps=4)
    ok = np.isfinite(c0)
    # year by year: inputs - outputs of that year = M_s * (C_n - C_(n-1))
    d_in = np.diff(p.inputs(), axis=0)
    d_out = np.diff(p.outputs(), axis=0)
    d_stock = p.soil_mass * np.diff(p.concentration, axis=0)
    rel = _relative_residual(d_in, d_out, d_stock)[:, ok]
    assert rel.max() < CONSERVATION_RTOL
    # and cumulatively (the residual the Projection reports)
    total = p.residual()[-1][ok]
    assert np.abs(total).max() < CONSERVATION_RTOL * np.abs(p.inputs()[-1][ok]).max()
    # each term is non-negative and the terms sum to the totals
    for t, v in p.cumulative.items():
        assert (v[:, ok] >= 0).all(), t


def test_exact_output_masses_equal_the_integral_of_the_flux() -> None:
    """The exact stepper's per-term masses against scipy's quadrature of k_i M_s C(t)."""
    b = _hand_budget()
    a, k = b.linear_coefficients()
    rates = b.output_rates()
    c0 = 150.0
    p = step(c0, b, 7, record=[7])
    for term, r in rates.items():
        ref, _ = quad(
            lambda t, r=r: float(260.0 * r * closed_form(c0, a, k, t)),
            0.0,
            7.0,
            epsabs=0,
            epsrel=1e-13,
        )
        assert float(p.cumulative[term][0]) == pytest.approx(ref, rel=1e-11), term
    assert float(p.cumulative["deposition"][0]) == pytest.approx(7 * 2.0, rel=1e-15)


def test_explicit_stepper_is_forward_euler_and_first_order() -> None:
    b = _hand_budget(kd=2.0, percolation=400.0)  # fast outputs: k ~ 0.7 /yr
    a, k = (float(x) for x in b.linear_coefficients())
    assert k > 0.5
    c0, n = 20.0, 10
    cstar = a / k
    gaps = []
    for m in (4, 8):
        p = step(c0, b.fluxes, n, soil_mass=260.0, substeps=m)
        euler = cstar + (c0 - cstar) * (1 - k / m) ** (m * n)  # the discrete solution
        assert float(p.at(n)) == pytest.approx(euler, rel=1e-12)
        gaps.append(abs(float(p.at(n)) - float(closed_form(c0, a, k, n))))
        bound = n * k**2 * abs(c0 - cstar) * math.exp(-k * n) / (2 * m)
        assert 0.5 * bound < gaps[-1] < 2.0 * bound
    assert gaps[0] / gaps[1] == pytest.approx(2.0, rel=0.15)  # first order in 1/m


def test_step_record_checks() -> None:
    with pytest.raises(ConfigError, match="outside 0-5"):
        step(1.0, (0.1, 0.01), 5, record=[6], soil_mass=260.0)
    with pytest.raises(ValueError, match="soil_mass"):
        step(1.0, (0.1, 0.01), 5)
    p = step(1.0, (0.1, 0.01), 5, soil_mass=260.0)
    assert p.years == (5,)
    with pytest.raises(KeyError):
        p.at(3)


# --- years to exceedance, headroom --------------------------------------------------------------


def test_years_to_exceed_formula_and_edges() -> None:
    c0 = np.array([60.0, 90.0, 60.0, 60.0, 60.0, 60.0, 60.0, np.nan])
    a = np.array([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    k = np.array([0.01, 0.01, 0.01, 0.0, 0.0, 0.01, 0.01, 0.01])
    s = np.array([80.0, 80.0, 100.0, 80.0, 80.0, 99.0, 80.0, 80.0])
    out = years_to_exceed(c0, a, k, s, horizon=100)
    assert out[0] == pytest.approx(math.log(40 / 20) / 0.01, rel=1e-13)  # 69.3 years
    assert out[1] == 0.0  # already above
    assert out[2] == np.inf  # S = C*: never
    assert out[3] == pytest.approx(20.0, rel=1e-15)  # k = 0: (S - C0) / a
    assert out[4] == np.inf  # k = 0, a = 0: never
    assert out[5] == np.inf  # t_S = ln(40) / 0.01 = 369 > horizon
    assert np.isnan(out[7])
    # reaches S exactly at t_S
    assert float(closed_form(60.0, 1.0, 0.01, out[0])) == pytest.approx(80.0, rel=1e-13)
    # with a longer horizon the far cell is reached; sentinel for integer rasters
    far = years_to_exceed(60.0, 1.0, 0.01, 99.0, horizon=500)
    assert float(far) == pytest.approx(math.log(40.0) / 0.01, rel=1e-13)
    coded = years_to_exceed(c0[:6], a[:6], k[:6], s[:6], horizon=100, never=65535)
    assert coded[2] == coded[4] == coded[5] == 65535
    # continuous at k -> 0
    assert float(years_to_exceed(60.0, 1.0, 1e-12, 80.0, horizon=100)) == pytest.approx(20.0, 1e-9)
    with pytest.raises(ConfigError, match="k must be >= 0"):
        years_to_exceed(60.0, 1.0, -0.1, 80.0, horizon=100)


def test_years_to_exceed_agrees_with_the_stepper() -> None:
    _, b = _random_budget((4, 5), seed=7)
    a, k = b.linear_coefficients()
    cstar = a / k
    c0 = 0.3 * cstar
    c0[0, :2] = 2.0 * cstar[0, :2]  # above the steady state: C falls
    # half-way to C* (reached after ln 2 / k years, within 200 years where k > 0.0035),
    # just above C0 where C falls (never), one cell already above
    s = np.where(cstar > c0, (c0 + cstar) / 2, c0 + 1.0)
    s[1, 1] = c0[1, 1] - 1.0
    horizon = 200
    t = years_to_exceed(c0, a, k, s, horizon=horizon)
    rising = (k > 0.0036) & (cstar > c0) & (s > c0)
    np.testing.assert_allclose(t[rising], (np.log(2) / k)[rising], rtol=1e-12)
    assert (t == 0).sum() == 1 and (np.isfinite(t) & (t > 0)).sum() >= 5 and np.isinf(t).sum() >= 2
    p = step(c0, b, horizon, record=range(horizon + 1))
    for idx in np.ndindex(c0.shape):
        over = p.concentration[(slice(None), *idx)] >= s[idx]
        if not over.any():
            assert t[idx] == np.inf
        else:
            assert math.ceil(t[idx] - 1e-9) == int(np.argmax(over))


def test_headroom_units_by_hand() -> None:
    # M_s 260 kg/m2, S 100, C0 60: 260 * 40 = 10 400 mg/m2 = 10.4 g/m2 = 104 kg/ha
    assert float(headroom(60.0, 100.0, 260.0)) == pytest.approx(104.0, rel=1e-14)
    assert float(headroom(120.0, 100.0, 260.0)) == 0.0
    assert float(headroom(120.0, 100.0, 260.0, clip=False)) == pytest.approx(-52.0, rel=1e-14)
    grid = headroom(np.array([[60.0, np.nan], [100.0, 0.0]]), 100.0, soil_mass(1300.0, 0.2))
    np.testing.assert_allclose(grid, [[104.0, np.nan], [0.0, 260.0]], rtol=1e-14)

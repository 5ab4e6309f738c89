"""Tests for geohm.accumulation.erosion: LS factor, RUSLE, enrichment ratio, metal flux."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import ndimage

from geohm.accumulation import erosion
from geohm.accumulation.erosion import (
    enrichment_ratio,
    ls_factor,
    metal_erosion_flux,
    rusle,
    s_factor,
    slope_length_exponent,
)
from geohm.errors import GridError, InputError, NoDataError

D = 30.0  # cell size, m


def south_plane(ny: int = 14, nx: int = 7, gradient: float = 0.1) -> np.ndarray:
    """A plane falling southward (down the rows) by ``gradient`` m/m."""
    rows = np.arange(ny, dtype=np.float64)[:, None]
    return 500.0 - gradient * D * rows * np.ones((1, nx))


def expected_plane_l(i: np.ndarray, m: float) -> np.ndarray:
    """Desmet & Govers L of row i of a plane whose flow runs straight down the rows.

    Every cell of row i drains the i cells above it in its column: A_in = i D^2 and the
    contour factor x = |sin 180| + |cos 180| = 1, so
        L_i = ((i D^2 + D^2)^(m+1) - (i D^2)^(m+1)) / (D^(m+2) 22.13^m)
            = (D / 22.13)^m ((i + 1)^(m+1) - i^(m+1)),
    the Foster & Wischmeier segment L of the slope stretch from lambda = i D to (i + 1) D.
    """
    return (D / 22.13) ** m * ((i + 1.0) ** (m + 1.0) - i ** (m + 1.0))


def test_s_factor_by_hand() -> None:
    # 5 %: sin(atan 0.05) = 0.05 / sqrt(1.0025) = 0.0499376; 10.8 * 0.0499376 + 0.03 = 0.569326
    # 20 %: sin(atan 0.20) = 0.2 / sqrt(1.04) = 0.1961161; 16.8 * 0.1961161 - 0.50 = 2.794751
    np.testing.assert_allclose(s_factor([0.05, 0.20]), [0.569326, 2.794751], atol=1e-6)
    # The breakpoint is at 9 % (sin t = 0.0896377): 10.8 sin t + 0.03 = 0.998087 below it,
    # 16.8 sin t - 0.50 = 1.005913 from it on; the branches meet to within 0.008.
    assert float(s_factor(0.0899999)) == pytest.approx(0.998086, abs=1e-6)
    assert float(s_factor(0.09)) == pytest.approx(1.005913, abs=1e-6)
    assert float(s_factor(0.0)) == 0.03


def test_slope_length_exponent_by_hand() -> None:
    # 10 %: sin t = 0.0995037, beta = (0.0995037 / 0.0896) / (3 * 0.0995037^0.8 + 0.56)
    #       = 1.110533 / 1.033579 = 1.074453, m = 1.074453 / 2.074453 = 0.517945
    assert float(slope_length_exponent(0.1)) == pytest.approx(0.517945, abs=1e-6)
    assert float(slope_length_exponent(0.0)) == 0.0


@pytest.mark.parametrize("gradient", [0.05, 0.1, 0.3])
def test_ls_on_a_plane_matches_the_closed_form(gradient: float) -> None:
    ny, nx = 14, 7
    ls = ls_factor(south_plane(ny, nx, gradient), D)
    m = float(slope_length_exponent(gradient))
    s = float(s_factor(gradient))
    rows = np.arange(ny, dtype=np.float64)
    expected = expected_plane_l(rows, m)[:, None] * s * np.ones((1, nx))
    # Rows 1..ny-2: the top and bottom rows have a one-sided (halved) gradient at the grid
    # edge (edges="nearest", as the terrain features); every column is exact.
    np.testing.assert_allclose(ls[1:-1], expected[1:-1], rtol=2e-6)
    # Summed over the rows, the segment values give the USLE L of the whole stretch:
    # sum_{i=1}^{n-1} L_i D = ((n D)^(m+1) - D^(m+1)) / 22.13^m. Far down the slope a
    # single cell's value tends to the point value (m + 1) (lambda / 22.13)^m.
    n = ny - 1
    l_rows = ls[1:n, 0].astype(np.float64) / s
    total = ((n * D) ** (m + 1.0) - D ** (m + 1.0)) / 22.13**m
    assert float(l_rows.sum() * D) == pytest.approx(total, rel=2e-6)
    lam = (n - 1) * D
    assert float(l_rows[-1]) == pytest.approx((m + 1.0) * (lam / 22.13) ** m, rel=0.05)


def test_max_slope_length_caps_the_inlet_length() -> None:
    # Capped at 90 m, every row from the 4th down sees A_in = 3 D^2 (lambda_in = 90 m):
    # L = (D / 22.13)^m (4^(m+1) - 3^(m+1)); rows above keep their own value.
    ny, g = 12, 0.1
    ls = ls_factor(south_plane(ny, 5, g), D, max_slope_length=90.0)
    m = float(slope_length_exponent(g))
    rows = np.minimum(np.arange(ny, dtype=np.float64), 3.0)
    expected = expected_plane_l(rows, m) * float(s_factor(g))
    np.testing.assert_allclose(ls[1:-1, 2], expected[1:-1], rtol=2e-6)
    with pytest.raises(InputError, match="max_slope_length"):
        ls_factor(south_plane(), D, max_slope_length=0.0)


def test_ls_on_a_diagonal_plane_uses_the_contour_factor() -> None:
    # A plane falling to the south-east: D8 flow runs diagonally, cell (i, j) drains the
    # min(i, j) cells up its diagonal, the aspect is 135 degrees and
    # x = |sin 135| + |cos 135| = sqrt 2, so L = (D / 22.13)^m rise / sqrt(2)^m.
    ny, nx, g = 10, 9, 0.12
    r, c = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    z = 400.0 - g * D * (r + c) / np.sqrt(2.0)  # gradient g along the diagonal
    ls = ls_factor(z, D)
    m = float(slope_length_exponent(g))
    a = np.minimum(r, c).astype(np.float64)
    rise = (a + 1.0) ** (m + 1.0) - a ** (m + 1.0)
    expected = rise * (D / 22.13) ** m / np.sqrt(2.0) ** m * float(s_factor(g))
    np.testing.assert_allclose(ls[1:-1, 1:-1], expected[1:-1, 1:-1], rtol=2e-6)


def test_flat_dem_gives_the_s_floor() -> None:
    # On flat ground m = 0, so L = ((A + D^2) - A) / D^2 = 1 whatever the routing across the
    # flat, and S = 10.8 sin 0 + 0.03: LS = 0.03 everywhere, the edges included.
    ls = ls_factor(np.full((6, 8), 120.0), D)
    np.testing.assert_allclose(ls, 0.03, rtol=1e-6)


def test_nodata_and_nan_cells_propagate_as_nan() -> None:
    z = south_plane(10, 8)
    z_nan = z.copy()
    z_nan[4, 3] = np.nan
    z_nd = z.copy()
    z_nd[4, 3] = -9999.0
    ls_nan = ls_factor(z_nan, D)
    ls_nd = ls_factor(z_nd, D, nodata=-9999.0)
    np.testing.assert_array_equal(ls_nan, ls_nd)
    # The hole and its 8 neighbours (whose Horn window holds it) are NaN; all else finite.
    expected_nan = np.zeros(z.shape, dtype=bool)
    expected_nan[3:6, 2:5] = True
    np.testing.assert_array_equal(np.isnan(ls_nan), expected_nan)
    # The hole is an outlet: the cell two rows below it starts a fresh slope (A_in = D^2).
    m = float(slope_length_exponent(0.1))
    assert float(ls_nan[6, 3]) == pytest.approx(
        float(expected_plane_l(np.array(1.0), m)) * float(s_factor(0.1)), rel=2e-6
    )
    # Columns away from the hole keep the closed form.
    rows = np.arange(10, dtype=np.float64)
    np.testing.assert_allclose(
        ls_nan[1:-1, 6], expected_plane_l(rows, m)[1:-1] * float(s_factor(0.1)), rtol=2e-6
    )


def test_edges_nan_leaves_the_outer_ring_nan() -> None:
    ls = ls_factor(south_plane(6, 5), D, edges="nan")
    assert np.isnan(ls[0]).all() and np.isnan(ls[:, 0]).all()
    assert np.isfinite(ls[1:-1, 1:-1]).all()


@pytest.mark.parametrize("kind", ["rough", "terraced"])
def test_routing_conserves_cells_on_a_pitted_dem(kind: str) -> None:
    # Seeded DEMs with depressions, flats and no-data holes: every valid cell drains to
    # exactly one outlet (no loops), so the counts at the outlets add up to the valid cells.
    # "rough" made a loop before the routing elevations were rounded to a power-of-2 step (a
    # filled cell one float32 ulp below the cell it drains to); "terraced" is all ties and
    # flats.
    rng = np.random.default_rng(16)
    if kind == "rough":
        z = rng.normal(0.0, 1.0, (40, 50)).cumsum(axis=0).cumsum(axis=1) * 0.1
    else:
        z = rng.integers(0, 4, (40, 50)).astype(np.float64)
    z[10:13, 20:24] = np.nan
    z[30, 5] = np.nan
    counts = erosion._upstream_cells(z)
    valid = ~np.isnan(z)
    assert (counts[valid] >= 1).all() and (counts[~valid] == 0).all()
    code = erosion._d8_directions(z)
    outlets = (code == 0) & valid
    assert int(counts[outlets].sum()) == int(valid.sum())
    # LS is NaN exactly on the holes and the cells whose 3 x 3 window touches one.
    ls = ls_factor(z, D)
    touched = ndimage.binary_dilation(~valid, structure=np.ones((3, 3), dtype=bool))
    np.testing.assert_array_equal(np.isnan(ls), touched)
    assert (ls[~touched] >= 0.03 - 1e-6).all()


def test_ls_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="2-D"):
        ls_factor(np.zeros(5), D)
    with pytest.raises(GridError, match="cell size"):
        ls_factor(np.zeros((3, 3)), 0.0)
    with pytest.raises(NoDataError, match="no valid elevation"):
        ls_factor(np.full((3, 3), np.nan), D)
    with pytest.raises(InputError, match="edges"):
        ls_factor(np.zeros((3, 3)), D, edges="wrap")  # type: ignore[arg-type]


def test_rusle_units_by_hand() -> None:
    # R 5000 MJ mm/(ha h yr) * K 0.03 t ha h/(ha MJ mm) = 150 t/(ha yr) on the unit plot;
    # * LS 2 * C 0.2 * P 0.5 = 30 t/ha/yr.
    assert float(rusle(5000.0, 0.03, 2.0, 0.2, 0.5)) == pytest.approx(30.0, rel=1e-12)
    out = rusle(np.array([5000.0, 2000.0, np.nan]), 0.03, np.array([2.0, 0.03, 1.0]), 0.2, 1.0)
    np.testing.assert_allclose(out, [60.0, 0.36, np.nan], rtol=1e-12)
    with pytest.raises(InputError, match="K"):
        rusle(5000.0, -0.01, 1.0, 1.0, 1.0)


def test_enrichment_ratio_by_hand() -> None:
    # 5 t/ha of sediment in 10 mm of runoff: 5 t / (10 * 10 m3) = 0.05 t/m3;
    # 0.78 * 0.05^-0.2468 = 0.78 * exp(0.2468 * 2.995732) = 0.78 * 2.094567 = 1.633762
    assert float(enrichment_ratio(5.0, 10.0)) == pytest.approx(1.633762, abs=1e-6)
    # ER = 1 where conc = 0.78^(1 / 0.2468) = 0.365 t/m3 (3.65 t/ha in 1 mm).
    conc_one = 0.78 ** (1.0 / 0.2468)
    assert float(enrichment_ratio(conc_one * 10.0, 1.0)) == pytest.approx(1.0, rel=1e-12)
    # Dilute runoff hits SWAT's cap of 3.5; no sediment gives the cap (the limit); sediment
    # without runoff an infinite concentration, ER 0; NaN stays NaN.
    out = enrichment_ratio(np.array([0.1, 0.0, 2.0, np.nan]), np.array([100.0, 0.0, 0.0, 5.0]))
    np.testing.assert_array_equal(out, [3.5, 3.5, 0.0, np.nan])
    assert float(enrichment_ratio(0.1, 100.0, max_ratio=10.0)) == pytest.approx(
        0.78 * 1e-4**-0.2468, rel=1e-12
    )
    with pytest.raises(InputError, match="runoff"):
        enrichment_ratio(1.0, -1.0)


def test_metal_erosion_flux_units_by_hand() -> None:
    # 10 t/ha/yr = 1 kg/m2/yr of soil; SDR 0.5 and ER 2 leave 1 kg/m2/yr of soil-equivalent
    # carrying 100 mg/kg: 100 mg/m2/yr. Over 0.2 m of soil at 1300 kg/m3 (260 kg/m2) that is
    # 100 / 260 = 0.384615 mg/kg/yr.
    flux = metal_erosion_flux(10.0, 0.5, 2.0, 100.0)
    assert float(flux) == pytest.approx(100.0, rel=1e-12)
    assert float(flux) / (0.2 * 1300.0) == pytest.approx(0.384615, abs=1e-6)
    a = rusle(5000.0, 0.03, 2.0, 0.2, 0.5)  # 30 t/ha/yr
    er = enrichment_ratio(a * 0.5, 10.0)
    np.testing.assert_allclose(
        metal_erosion_flux(a, 0.5, er, np.array([50.0, np.nan])),
        [0.1 * 30.0 * 0.5 * float(er) * 50.0, np.nan],
        rtol=1e-12,
    )
    with pytest.raises(InputError, match="0-1"):
        metal_erosion_flux(1.0, 1.5, 1.0, 1.0)


def test_doctests() -> None:
    res = doctest.testmod(erosion, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0

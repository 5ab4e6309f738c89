"""Erosion output of the topsoil budget: RUSLE soil loss and the metal it carries away.

Per cell and year (science.md section 9; issue 16)::

    A      = R K LS C P                                         [t/ha/yr]     RUSLE
    O_eros = 0.1 A SDR ER C                                     [mg/m2/yr]

with R the rainfall-runoff erosivity (MJ mm / (ha h yr)), K the soil erodibility
(t ha h / (ha MJ mm)), LS the slope length and steepness factor, C the cover-management and
P the support-practice factor (all three dimensionless), SDR the sediment delivery ratio,
ER the enrichment ratio (both dimensionless), C the metal concentration of the topsoil
(mg/kg) and 0.1 the unit change (1 t/ha = 0.1 kg/m2). Renard et al. (1997), Predicting soil
erosion by water: a guide to conservation planning with the Revised Universal Soil Loss
Equation (RUSLE), USDA Agriculture Handbook 703.

**LS factor** (:func:`ls_factor`), per cell of a DEM with square cells of side D (m),
following Desmet & Govers (1996), A GIS procedure for automatically calculating the USLE LS
factor on topographically complex landscape units, J. Soil Water Conserv. 51(5):427-433::

    L = ((A_in + D^2)^(m+1) - A_in^(m+1)) / (D^(m+2) x^m 22.13^m)
    x = |sin a| + |cos a|                   (a: aspect; the contour length is x D)
    m = beta / (1 + beta),  beta = (sin t / 0.0896) / (3 sin^0.8 t + 0.56)
    S = 10.8 sin t + 0.03   where tan t < 0.09
    S = 16.8 sin t - 0.50   where tan t >= 0.09
    LS = L S

A_in (m2) is the area draining into the cell's upslope edge (its upstream area less its own
cell), t the slope angle and a the aspect from Horn's gradients (:mod:`geohm.terrain`). The
exponent m is that of McCool et al. (1989), Revised slope length factor for the Universal
Soil Loss Equation, Trans. ASAE 32(5):1571-1576 (moderate rill/interrill ratio); S is that
of McCool et al. (1987), Revised slope steepness factor for the Universal Soil Loss
Equation, Trans. ASAE 30(5):1387-1396 (long slopes; the 9 % breakpoint). GRASS
``r.watershed`` and SAGA's LS factor use the same S. For a planar slope the cell values are
the segment L of Foster & Wischmeier (1974): their mean over the top n rows is the USLE
``(lambda / 22.13)^m`` of the slope length lambda = n D.

**Flow accumulation** is D8 on the depression-filled DEM: each cell drains to its steepest
strictly lower neighbour (distance D or D sqrt 2); cells with none (flats, including the
filled depressions) take the direction of pyflwdir's priority-flood fill (Wang & Liu 2006),
which leads across the flat to its outlet; cells on the border of the valid data (the grid
edge or next to nodata) with no lower neighbour are outlets. geohm does not take
``pyflwdir.from_dem``'s directions alone: they are the order in which the priority flood
reached each cell, not the steepest descent (Deltares/pyflwdir issue 122), so on a plane
they run diagonally and collect into one corner. The upstream cell counts come from
``pyflwdir`` (``FlwdirRaster.accuflux``). The routing uses the DEM in float32, rounded to
a power-of-2 step (1/8192 m below 1024 m, 1/512 m below 16384 m) on which the fill's
arithmetic is exact: a filled cell then never lies below the cell it drains to, which keeps
the directions free of loops. Slopes use the DEM as given. On a DEM without depressions the
directions and upstream counts equal pysheds' D8 (``Grid.flowdir``, ``Grid.accumulation``)
on the same rounded elevations, cell for cell away from the grid edge; on the unrounded
DEM 2 of 21904 directions differ (near-ties), checked once on a 150 x 150 DEM (pysheds is
not a dependency).

**Memory and windows.** Flow accumulation needs the whole DEM at once (a cell's upstream
area can reach across the grid), so :func:`ls_factor` cannot run window by window. Compute
it once on the DEM grid, before the projection, and let the projection read the LS raster
per window like any covariate. A DEM is far smaller than the feature cube: what stays is one
float32 array of the DEM size (LS, 4 bytes a cell); while routing, the D8 directions are one
uint8 array (1 byte a cell). The transient peak is larger: the float64 copy of the DEM,
pyflwdir's fill (float32 filled DEM, its queue) and its downstream indices, ranks and cell
order (8, 4 and 8 bytes a cell) come to about 55 bytes a DEM cell above the input, measured
on a 2000 x 2000 DEM (5-7 s on one core; a 7800 x 7600 Landsat-scene DEM at 30 m needs about
3.3 GB). The float64 slope arithmetic runs in blocks of 512 rows and stays small. pyflwdir
compiles its numba kernels on first use (about 10 s) and caches them beside its code.

geohm's choices: the routing described above (steepest descent, the fill's directions on
flats, outlets at the border of the valid data, the rounded float32 elevations), the
edge handling of the slope (replicate the edge cells, as :func:`geohm.terrain.slope` does),
the moderate rill/interrill ratio, no cap on the slope length unless asked
(``max_slope_length``), and the annual (not per storm) sediment concentration in
:func:`enrichment_ratio`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from geohm.errors import GridError, InputError, NoDataError
from geohm.terrain import Edges, horn_gradients

__all__ = [
    "enrichment_ratio",
    "ls_factor",
    "metal_erosion_flux",
    "rusle",
    "s_factor",
    "slope_length_exponent",
]

FloatArray = npt.NDArray[np.float64]

#: Unit slope length of the USLE plots, metres (72.6 ft).
UNIT_PLOT_LENGTH = 22.13

#: Enrichment ratio cap of SWAT's code (``enrsb.f``: ``if (enratio > 3.5) enratio = 3.5``).
SWAT_MAX_ENRICHMENT = 3.5

#: 1 t/ha in kg/m2.
_T_PER_HA_IN_KG_PER_M2 = 0.1

#: pyflwdir's D8 codes: (row step, column step, code); 0 = outlet, 247 = no data.
_D8 = (
    (0, 1, 1),
    (1, 1, 2),
    (1, 0, 4),
    (1, -1, 8),
    (0, -1, 16),
    (-1, -1, 32),
    (-1, 0, 64),
    (-1, 1, 128),
)
_D8_OUTLET = np.uint8(0)
_D8_NODATA = np.uint8(247)

#: Rows of the DEM per block of the float64 slope arithmetic.
_BLOCK_ROWS = 512


def _sin_from_tan(gradient: FloatArray) -> FloatArray:
    return gradient / np.sqrt(1.0 + gradient * gradient)


def s_factor(gradient: npt.ArrayLike) -> FloatArray:
    """RUSLE slope steepness factor S of McCool et al. (1987), for long slopes.

    Parameters
    ----------
    gradient : array_like
        Slope as rise over run (m/m, tan of the slope angle; 0.05 is a 5 % slope). NaN
        gives NaN.

    Returns
    -------
    ndarray of float64
        S, dimensionless: ``10.8 sin t + 0.03`` below a 9 % slope, ``16.8 sin t - 0.50``
        from 9 % on. A flat cell has S = 0.03.

    Examples
    --------
    >>> round(float(s_factor(0.05)), 4), round(float(s_factor(0.20)), 4)
    (0.5693, 2.7948)
    """
    g = np.abs(np.asarray(gradient, dtype=np.float64))
    sin_t = _sin_from_tan(g)
    return np.where(g < 0.09, 10.8 * sin_t + 0.03, 16.8 * sin_t - 0.50)


def slope_length_exponent(gradient: npt.ArrayLike) -> FloatArray:
    """RUSLE slope length exponent m of McCool et al. (1989), moderate rill/interrill ratio.

    Parameters
    ----------
    gradient : array_like
        Slope as rise over run (m/m). NaN gives NaN.

    Returns
    -------
    ndarray of float64
        ``m = beta / (1 + beta)`` with ``beta = (sin t / 0.0896) / (3 sin^0.8 t + 0.56)``;
        0 on flat ground, 0.52 at a 10 % slope.

    Examples
    --------
    >>> round(float(slope_length_exponent(0.0)), 4), round(float(slope_length_exponent(0.1)), 4)
    (0.0, 0.5179)
    """
    sin_t = _sin_from_tan(np.abs(np.asarray(gradient, dtype=np.float64)))
    beta = (sin_t / 0.0896) / (3.0 * sin_t**0.8 + 0.56)
    out: FloatArray = beta / (1.0 + beta)
    return out


def _check_dem(dem: npt.ArrayLike, cell_size: float, nodata: float | None) -> FloatArray:
    z = np.array(dem, dtype=np.float64)  # a copy: nodata is set to NaN below
    if z.ndim != 2:
        raise InputError(f"the DEM must be a 2-D (y, x) array, got shape {z.shape}")
    if not np.isfinite(cell_size) or cell_size <= 0:
        raise GridError(
            f"the DEM's cell size must be a positive number of metres, got {cell_size!r}; "
            "give the side of its square cells in a projected CRS"
        )
    if nodata is not None:
        z[z == nodata] = np.nan
    z[~np.isfinite(z)] = np.nan
    if np.isnan(z).all():
        raise NoDataError("the DEM holds no valid elevation: no LS factor can be computed")
    return z


def _d8_steepest(zf: npt.NDArray[np.float32], fill_d8: npt.NDArray[np.uint8]) -> Any:
    """D8 codes: steepest strictly lower neighbour, else the fill's code, else an outlet."""
    ny, nx = zf.shape
    valid = ~np.isnan(zf)
    zp = np.pad(zf, 1, mode="constant", constant_values=np.nan)
    best = np.zeros(zf.shape, dtype=np.float32)  # drop per unit distance, over 0 only
    code = np.zeros(zf.shape, dtype=np.uint8)
    for dr, dc, value in _D8:
        neighbour = zp[1 + dr : 1 + dr + ny, 1 + dc : 1 + dc + nx]
        drop = zf - neighbour  # NaN (no data) compares false and is never taken
        if dr and dc:
            drop /= np.float32(np.sqrt(2.0))
        better = drop > best
        best[better] = drop[better]
        code[better] = value
    del best, zp
    # The border of the valid data: the grid edge, or next to a no-data cell (8-connected),
    # as pyflwdir's fill seeds its queue.
    invalid_p = np.pad(~valid, 1, mode="constant", constant_values=True)
    border = ndimage.maximum_filter(invalid_p, size=3)[1:-1, 1:-1] & valid
    flat = (code == 0) & valid
    code[flat & ~border] = fill_d8[flat & ~border]
    code[flat & border] = _D8_OUTLET
    code[~valid] = _D8_NODATA
    return code


def _d8_directions(z: FloatArray) -> npt.NDArray[np.uint8]:
    """D8 codes (pyflwdir's) of a DEM with NaN as no data: 0 an outlet, 247 no data."""
    import pyflwdir  # numba compiles on first use: import only when routing

    # Elevations rounded to multiples k * step with |k| <= 2^23 (step a power of 2: 1/8192 m
    # for |z| < 1024 m, 1/512 m for |z| < 16384 m): float32 holds them, and their sums and
    # differences, exactly, so the fill's filled value of a cell (z + (z_spill - z)) equals
    # the spill elevation it was raised to and never lies below the cell it drains to. With
    # plain float32 it can lie an ulp below, and a flat cell's fill direction and its
    # neighbour's steepest descent then point at each other (a loop).
    zmax = float(np.nanmax(np.abs(z)))
    step = 2.0 ** np.ceil(np.log2(zmax / 2.0**23)) if zmax > 0 else 1.0
    z32 = (np.round(z / step) * step).astype(np.float32)
    # pyflwdir's fill with NaN as nodata; its directions are used on flats only.
    filled, fill_d8 = pyflwdir.dem.fill_depressions(z32, nodata=np.nan, outlets="edge")
    del z32
    d8: npt.NDArray[np.uint8] = _d8_steepest(filled, fill_d8)
    return d8


def _upstream_cells(z: FloatArray) -> npt.NDArray[np.uint32]:
    """Cells draining through each cell, itself included (0 on no data)."""
    import pyflwdir

    flw = pyflwdir.from_array(_d8_directions(z), ftype="d8", check_ftype=False)
    if not flw.isvalid:  # the construction excludes loops; this guards that argument
        raise GridError("the DEM's D8 flow directions hold a loop; check the DEM for artefacts")
    ones = np.where(np.isnan(z), 0, 1).astype(np.uint32)
    counts: npt.NDArray[np.uint32] = flw.accuflux(ones, nodata=0).astype(np.uint32, copy=False)
    return counts


def _block_with_halo(z: FloatArray, r0: int, r1: int, edges: Edges) -> FloatArray:
    """Rows r0..r1 of z with a one-cell halo on every side (padded at the grid edge)."""
    ny = z.shape[0]
    lo, hi = max(r0 - 1, 0), min(r1 + 1, ny)
    block = z[lo:hi]
    top, bottom = int(r0 == 0), int(r1 == ny)
    if edges == "nearest":
        return np.pad(block, ((top, bottom), (1, 1)), mode="edge")
    return np.pad(block, ((top, bottom), (1, 1)), mode="constant", constant_values=np.nan)


def _ls_block(
    z_halo: FloatArray,
    a_in_cells: FloatArray,
    cell_size: float,
    max_slope_length: float | None,
) -> npt.NDArray[np.float32]:
    gx, gy = horn_gradients(z_halo, cell_size, cell_size)
    gx, gy = gx[1:-1, 1:-1], gy[1:-1, 1:-1]
    tan_t = np.hypot(gx, gy)
    m = slope_length_exponent(tan_t)
    with np.errstate(invalid="ignore", divide="ignore"):
        # |sin a| + |cos a| from the gradients; 1 on flat cells (where m = 0 anyway).
        x = np.where(tan_t > 0, (np.abs(gx) + np.abs(gy)) / tan_t, 1.0)
        # ((a + 1)^(m+1) - a^(m+1)) with a = A_in / D^2, written without the cancellation
        # of two large powers: a^(m+1) expm1((m+1) log1p(1/a)); 1 at the top (a = 0).
        a = a_in_cells
        if max_slope_length is not None:
            # A_in / (x D) is the slope length at the cell's inlet on a plane: cap it.
            a = np.minimum(a, max_slope_length * x / cell_size)
        rise = np.where(a > 0, a ** (m + 1.0) * np.expm1((m + 1.0) * np.log1p(1.0 / a)), 1.0)
        length = rise * (cell_size / UNIT_PLOT_LENGTH) ** m / x**m
    return (length * s_factor(tan_t)).astype(np.float32)


def ls_factor(
    dem: npt.ArrayLike,
    cell_size: float,
    *,
    nodata: float | None = None,
    edges: Edges = "nearest",
    max_slope_length: float | None = None,
) -> npt.NDArray[np.float32]:
    """RUSLE LS factor of every DEM cell (Desmet & Govers 1996; McCool 1987, 1989).

    Runs on the whole DEM at once (flow accumulation is not windowable); see the module
    docstring for the formula, the routing and the memory.

    Parameters
    ----------
    dem : array_like, shape (y, x)
        Elevation in metres on a projected grid of square cells. NaN (and ``nodata``)
        mark missing cells.
    cell_size : float
        Side of a cell in metres (D).
    nodata : float, optional
        Elevation value that marks a missing cell, besides NaN.
    edges : {"nearest", "nan"}, default "nearest"
        Slope at the outer ring of the grid, as in :func:`geohm.terrain.slope`:
        ``"nearest"`` replicates the edge cells (a one-sided, halved gradient there),
        ``"nan"`` leaves the ring NaN.
    max_slope_length : float, optional
        Cap, in metres, on the slope length at a cell's inlet, ``A_in / (x D)``. None
        (default) applies Desmet & Govers unchanged, so cells on flow lines that drain
        large areas (channels, where the USLE's overland flow no longer applies) get very
        large LS. RUSLE slope lengths rarely exceed about 300 m (1000 ft; Renard et al.
        1997); GRASS ``r.watershed`` has the same cap (``max_slope_length``).

    Returns
    -------
    ndarray of float32, shape (y, x)
        LS, dimensionless. NaN on missing cells and on cells whose 3 x 3 slope window
        holds a missing cell (as the terrain features). A flat cell has LS = 0.03
        (m = 0 gives L = 1; S = 0.03).

    Raises
    ------
    InputError
        If the DEM is not 2-D, or ``max_slope_length`` is not positive.
    GridError
        If the cell size is not a positive number.
    NoDataError
        If the DEM holds no valid elevation.

    Examples
    --------
    >>> import numpy as np
    >>> z = 100.0 - 3.0 * np.arange(6)[:, None] * np.ones((1, 5))  # 10 % slope to the south
    >>> ls = ls_factor(z, 30.0)
    >>> round(float(ls[1, 2]), 4)  # one 30 m cell upslope
    2.5565
    """
    if edges not in ("nearest", "nan"):
        raise InputError(f"edges must be 'nearest' or 'nan', got {edges!r}")
    if max_slope_length is not None and not max_slope_length > 0:
        raise InputError(
            f"max_slope_length must be a positive number of metres, got {max_slope_length!r}"
        )
    z = _check_dem(dem, float(cell_size), nodata)
    counts = _upstream_cells(z)
    out = np.empty(z.shape, dtype=np.float32)
    ny = z.shape[0]
    for r0 in range(0, ny, _BLOCK_ROWS):
        r1 = min(r0 + _BLOCK_ROWS, ny)
        a_in = counts[r0:r1].astype(np.float64) - 1.0
        out[r0:r1] = _ls_block(
            _block_with_halo(z, r0, r1, edges), a_in, float(cell_size), max_slope_length
        )
    out[np.isnan(z)] = np.nan
    return out


def _nonnegative(name: str, value: npt.ArrayLike, unit: str) -> FloatArray:
    arr = np.asarray(value, dtype=np.float64)
    if np.any(arr < 0):  # NaN compares false: missing cells pass through
        raise InputError(
            f"the erosion input {name} ({unit}) holds negative values (min "
            f"{float(np.nanmin(arr))}); give values >= 0"
        )
    return arr


def rusle(
    R: npt.ArrayLike,
    K: npt.ArrayLike,
    LS: npt.ArrayLike,
    C: npt.ArrayLike,
    P: npt.ArrayLike,
) -> FloatArray:
    """Mean annual soil loss of the RUSLE, A = R K LS C P (Renard et al. 1997).

    Numbers or arrays that broadcast together; NaN propagates.

    Parameters
    ----------
    R : array_like
        Rainfall-runoff erosivity, MJ mm / (ha h yr).
    K : array_like
        Soil erodibility, t ha h / (ha MJ mm).
    LS : array_like
        Slope length and steepness factor, dimensionless (:func:`ls_factor`).
    C : array_like
        Cover-management factor, dimensionless (1 for bare fallow).
    P : array_like
        Support-practice factor, dimensionless (1 without practices).

    Returns
    -------
    ndarray of float64
        A, soil loss in t/ha/yr.

    Raises
    ------
    InputError
        If a factor is negative.

    Examples
    --------
    >>> float(rusle(5000.0, 0.03, 2.0, 0.2, 0.5))
    30.0
    """
    factors = (
        _nonnegative("R", R, "MJ mm / (ha h yr)"),
        _nonnegative("K", K, "t ha h / (ha MJ mm)"),
        _nonnegative("LS", LS, "dimensionless"),
        _nonnegative("C", C, "dimensionless"),
        _nonnegative("P", P, "dimensionless"),
    )
    out: FloatArray = factors[0] * factors[1] * factors[2] * factors[3] * factors[4]
    return out


def enrichment_ratio(
    sediment_yield: npt.ArrayLike,
    runoff: npt.ArrayLike,
    *,
    max_ratio: float = SWAT_MAX_ENRICHMENT,
) -> FloatArray:
    """Enrichment ratio of eroded sediment, Menzel (1980) as in SWAT.

    ``ER = 0.78 conc_sed^-0.2468`` with ``conc_sed = sed / (10 Q)`` the sediment
    concentration of the surface runoff in t/m3 (Neitsch et al., SWAT theoretical
    documentation, eqs. 4:2.2.3-4:2.2.4; 1 mm of runoff on 1 ha is 10 m3), capped at
    ``max_ratio`` as SWAT's code does. SWAT applies it per storm; geohm applies it to annual
    totals (the annual mean concentration), a choice of its own. For a fixed enrichment
    ratio, skip this function and pass the number to :func:`metal_erosion_flux`.

    Parameters
    ----------
    sediment_yield : array_like
        Sediment leaving the cell, t/ha/yr (``A * SDR``).
    runoff : array_like
        Surface runoff, mm/yr.
    max_ratio : float, default 3.5
        Upper bound of the ratio (SWAT's cap).

    Returns
    -------
    ndarray of float64
        ER, dimensionless: ``max_ratio`` where no sediment leaves (the limit; the flux is 0
        there anyway), 0 where sediment leaves without runoff (an infinite concentration),
        NaN where an input is NaN.

    Raises
    ------
    InputError
        If an input is negative or ``max_ratio`` is not positive.

    Examples
    --------
    >>> round(float(enrichment_ratio(5.0, 10.0)), 4)  # 0.05 t/m3
    1.6338
    """
    if not max_ratio > 0:
        raise InputError(f"the enrichment ratio cap must be positive, got {max_ratio!r}")
    sed = _nonnegative("sediment_yield", sediment_yield, "t/ha/yr")
    q = _nonnegative("runoff", runoff, "mm/yr")
    with np.errstate(divide="ignore", invalid="ignore"):
        conc = np.where(sed == 0, 0.0, sed / (10.0 * q))  # t sediment / m3 water
        ratio = 0.78 * conc**-0.2468
    out: FloatArray = np.minimum(ratio, max_ratio)  # NaN stays NaN
    return out


def metal_erosion_flux(
    A: npt.ArrayLike,
    sdr: npt.ArrayLike,
    er: npt.ArrayLike,
    conc: npt.ArrayLike,
) -> FloatArray:
    """Metal removed from the topsoil by erosion, O_eros = 0.1 A SDR ER C.

    Parameters
    ----------
    A : array_like
        Soil loss, t/ha/yr (:func:`rusle`).
    sdr : array_like
        Sediment delivery ratio, 0-1 (the share of the eroded soil that leaves the cell).
    er : array_like
        Enrichment ratio, dimensionless (:func:`enrichment_ratio`, or a fixed value).
    conc : array_like
        Metal concentration of the topsoil, mg/kg.

    Returns
    -------
    ndarray of float64
        Flux in mg/m2/yr (1 t/ha = 0.1 kg/m2; kg/m2/yr times mg/kg). Divided by the soil
        mass of the layer (kg/m2) it is the loss in mg/kg/yr.

    Raises
    ------
    InputError
        If an input is negative or ``sdr`` exceeds 1.

    Examples
    --------
    >>> float(metal_erosion_flux(10.0, 0.5, 2.0, 100.0))
    100.0
    """
    a = _nonnegative("A", A, "t/ha/yr")
    s = _nonnegative("sdr", sdr, "0-1")
    if np.any(s > 1):
        raise InputError(
            f"the sediment delivery ratio must lie in 0-1, got a maximum of {float(np.nanmax(s))}"
        )
    e = _nonnegative("er", er, "dimensionless")
    c = _nonnegative("conc", conc, "mg/kg")
    out: FloatArray = _T_PER_HA_IN_KG_PER_M2 * a * s * e * c
    return out

"""The flux terms of the plough layer's metal budget (mg/m2/yr), from their inputs' units.

================  =================================================  ============================
term              formula (inputs' units)                            conversion to mg/m2/yr
================  =================================================  ============================
fertiliser,       rate (kg/ha/yr) * content (mg/kg)                  mg/ha -> mg/m2: * 1e-4
manure            (:func:`application_input`)
irrigation        water (mm/yr) * concentration (mg/L)               1 mm = 1 L/m2: * 1
                  (:func:`irrigation_input`)
deposition        given (mg/m2/yr), from the plume module or a       --
                  raster
leaching          q (mm/yr) * C_w (mg/L), C_w = C / (K_d + theta/rho_b)   * 1
runoff            Q_surf (mm/yr) * C_w (mg/L)                        * 1
erosion           A (t/ha/yr) * SDR * ER * C (mg/kg)                 1 t/ha = 0.1 kg/m2: * 0.1
crop offtake      yield (t/ha/yr dry) * BCF * C (mg/kg)              * 0.1
================  =================================================  ============================
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from geohm.accumulation.soil import FloatArray, retention
from geohm.errors import ConfigError

__all__ = [
    "application_input",
    "crop_output",
    "erosion_output",
    "irrigation_input",
    "leaching_output",
    "per_class",
    "runoff_output",
]

#: mg/m2 per mg/ha (1 ha = 10 000 m2).
MG_HA_TO_MG_M2 = 1e-4
#: kg/m2 per t/ha (1 t/ha = 1000 kg / 10 000 m2).
T_HA_TO_KG_M2 = 0.1


def _floats(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _nonnegative(x: ArrayLike, name: str, unit: str) -> FloatArray:
    a = _floats(x)
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(a) & (a < 0)
    if np.any(bad):
        raise ConfigError(
            f"accumulation: {name} must be >= 0 {unit}, got {float(a[bad].ravel()[0]):g}; "
            f"give {name} >= 0 {unit}"
        )
    return a


# --- inputs -------------------------------------------------------------------------------


def application_input(rate: ArrayLike, content: ArrayLike) -> FloatArray:
    """Metal input of an applied material (fertiliser, manure, sludge) in mg/m2/yr.

    I = rate * content * 1e-4: kg/ha/yr times mg/kg is mg/ha/yr, and 1 ha = 10 000 m2.

    Parameters
    ----------
    rate : array_like
        Application rate (kg of material per ha per yr; fresh or dry as ``content``), e.g.
        from :func:`per_class` over a land-use raster.
    content : array_like
        Metal content of the material (mg/kg, on the same basis as ``rate``).

    Returns
    -------
    numpy.ndarray
        Input flux (mg/m2/yr), float64.

    Raises
    ------
    ConfigError
        If a finite rate or content is negative.

    Examples
    --------
    500 kg/ha/yr of a phosphate fertiliser with 10 mg/kg Cd adds 5000 mg/ha = 0.5 mg/m2:

    >>> float(application_input(500.0, 10.0))
    0.5
    """
    return (
        _nonnegative(rate, "application rate", "kg/ha/yr")
        * _nonnegative(content, "metal content", "mg/kg")
        * MG_HA_TO_MG_M2
    )


def irrigation_input(water: ArrayLike, concentration: ArrayLike) -> FloatArray:
    """Metal input of irrigation water in mg/m2/yr: water (mm/yr = L/m2/yr) * mg/L.

    Parameters
    ----------
    water : array_like
        Irrigation depth (mm/yr; 1 mm = 1 L/m2).
    concentration : array_like
        Metal concentration of the water (mg/L).

    Returns
    -------
    numpy.ndarray
        Input flux (mg/m2/yr), float64.

    Raises
    ------
    ConfigError
        If a finite water depth or concentration is negative.

    Examples
    --------
    >>> float(irrigation_input(300.0, 0.005))
    1.5
    """
    return _nonnegative(water, "irrigation water", "mm/yr") * _nonnegative(
        concentration, "irrigation metal concentration", "mg/L"
    )


def per_class(
    classes: ArrayLike,
    table: Mapping[int, float],
    *,
    default: float | None = None,
    name: str = "value",
) -> FloatArray:
    """Look a value up per land-use class: ``table[class]`` for every cell.

    Parameters
    ----------
    classes : array_like
        Land-use class codes (integers; a NaN cell of a float array stays NaN).
    table : mapping of int to float
        Value per class code (e.g. fertiliser rate in kg/ha/yr).
    default : float, optional
        Value of classes not in ``table``; without it, such a class is an error.
    name : str, default "value"
        What the table holds, named in errors (``"fertiliser rate"``).

    Returns
    -------
    numpy.ndarray
        The values, float64, the shape of ``classes``.

    Raises
    ------
    ConfigError
        If a class of ``classes`` is not in ``table`` and no ``default`` is given.

    Examples
    --------
    >>> per_class([[1, 2], [2, 3]], {1: 500.0, 2: 0.0, 3: 120.0}).tolist()
    [[500.0, 0.0], [0.0, 120.0]]
    """
    c = _floats(classes)
    out = np.full(c.shape, np.nan if default is None else float(default))
    valid = np.isfinite(c)
    if default is None:
        missing = sorted({int(v) for v in np.unique(c[valid])} - {int(k) for k in table})
        if missing:
            raise ConfigError(
                f"accumulation: the {name} table has no row for land-use class(es) {missing}; "
                f"add them to the table or give a default"
            )
    out[~valid] = np.nan
    for code, value in table.items():
        out[valid & (c == code)] = float(value)
    return out


# --- outputs ------------------------------------------------------------------------------


def leaching_output(
    conc: ArrayLike,
    *,
    percolation: ArrayLike,
    kd: ArrayLike,
    theta: ArrayLike,
    bulk_density: ArrayLike,
) -> FloatArray:
    """Metal leached below the plough layer in mg/m2/yr: q * C / (K_d + theta / rho_b).

    Parameters
    ----------
    conc : array_like
        Total concentration in the soil C (mg/kg).
    percolation : array_like
        Percolation q (mm/yr = L/m2/yr): precipitation + irrigation - evapotranspiration -
        surface runoff.
    kd : array_like
        Solid-solution partition coefficient K_d (L/kg).
    theta : array_like
        Volumetric water content (m3/m3).
    bulk_density : array_like
        Dry bulk density rho_b (kg/m3).

    Returns
    -------
    numpy.ndarray
        Output flux (mg/m2/yr), float64.

    Raises
    ------
    ConfigError
        If a finite percolation is negative, or as :func:`~geohm.accumulation.soil.retention`.

    Examples
    --------
    200 mm/yr through a soil of C = 50.1 mg/kg and R = 100.2 L/kg (C_w = 0.5 mg/L):

    >>> round(float(leaching_output(50.1, percolation=200.0, kd=100.0, theta=0.26,
    ...                             bulk_density=1300.0)), 9)
    100.0
    """
    q = _nonnegative(percolation, "percolation", "mm/yr")
    return q * _floats(conc) / retention(kd, theta, bulk_density)


def runoff_output(
    conc: ArrayLike,
    *,
    runoff: ArrayLike,
    kd: ArrayLike,
    theta: ArrayLike,
    bulk_density: ArrayLike,
) -> FloatArray:
    """Dissolved metal lost with surface runoff in mg/m2/yr: Q_surf * C / (K_d + theta / rho_b).

    Parameters
    ----------
    conc : array_like
        Total concentration in the soil C (mg/kg).
    runoff : array_like
        Surface runoff Q_surf (mm/yr = L/m2/yr).
    kd : array_like
        Solid-solution partition coefficient K_d (L/kg).
    theta : array_like
        Volumetric water content (m3/m3).
    bulk_density : array_like
        Dry bulk density rho_b (kg/m3).

    Returns
    -------
    numpy.ndarray
        Output flux (mg/m2/yr), float64.

    Raises
    ------
    ConfigError
        If a finite runoff is negative, or as :func:`~geohm.accumulation.soil.retention`.

    Examples
    --------
    >>> round(float(runoff_output(50.1, runoff=20.0, kd=100.0, theta=0.26,
    ...                           bulk_density=1300.0)), 9)
    10.0
    """
    q = _nonnegative(runoff, "surface runoff", "mm/yr")
    return q * _floats(conc) / retention(kd, theta, bulk_density)


def erosion_output(
    conc: ArrayLike, *, soil_loss: ArrayLike, sdr: ArrayLike, enrichment: ArrayLike
) -> FloatArray:
    """Metal lost on eroded sediment in mg/m2/yr: A * 0.1 * SDR * ER * C.

    Parameters
    ----------
    conc : array_like
        Total concentration in the soil C (mg/kg).
    soil_loss : array_like
        Soil loss A (t/ha/yr; 1 t/ha = 0.1 kg/m2), e.g. RUSLE A = R K LS C P.
    sdr : array_like
        Sediment delivery ratio (0-1): the share of the eroded soil leaving the cell's
        catchment.
    enrichment : array_like
        Enrichment ratio ER (-, >= 0): metal concentration of the sediment over that of
        the soil.

    Returns
    -------
    numpy.ndarray
        Output flux (mg/m2/yr), float64.

    Raises
    ------
    ConfigError
        If a finite soil loss or enrichment ratio is negative, or an SDR is outside 0-1.

    Examples
    --------
    5 t/ha/yr = 0.5 kg/m2/yr, half delivered, enriched 1.2 times, at 100 mg/kg:

    >>> float(erosion_output(100.0, soil_loss=5.0, sdr=0.5, enrichment=1.2))
    30.0
    """
    a = _nonnegative(soil_loss, "soil loss", "t/ha/yr")
    s = _nonnegative(sdr, "sediment delivery ratio", "(0-1)")
    with np.errstate(invalid="ignore"):
        over = np.isfinite(s) & (s > 1)
    if np.any(over):
        raise ConfigError(
            f"accumulation: the sediment delivery ratio is a share (0-1), got "
            f"{float(s[over].ravel()[0]):g}; give sdr between 0 and 1"
        )
    er = _nonnegative(enrichment, "enrichment ratio", "(-)")
    return a * T_HA_TO_KG_M2 * s * er * _floats(conc)


def crop_output(conc: ArrayLike, *, crop_yield: ArrayLike, bcf: ArrayLike) -> FloatArray:
    """Metal removed with the harvest in mg/m2/yr: yield * 0.1 * BCF * C.

    Parameters
    ----------
    conc : array_like
        Total concentration in the soil C (mg/kg).
    crop_yield : array_like
        Harvested dry matter (t/ha/yr; 1 t/ha = 0.1 kg/m2).
    bcf : array_like
        Bioconcentration factor (-): concentration in the harvested dry matter over that
        in the soil.

    Returns
    -------
    numpy.ndarray
        Output flux (mg/m2/yr), float64.

    Raises
    ------
    ConfigError
        If a finite yield or BCF is negative.

    Examples
    --------
    6 t/ha/yr of grain (0.6 kg/m2) with BCF 0.05 on a soil of 0.4 mg/kg Cd:

    >>> round(float(crop_output(0.4, crop_yield=6.0, bcf=0.05)), 12)
    0.012
    """
    y = _nonnegative(crop_yield, "crop yield", "t/ha/yr")
    return y * T_HA_TO_KG_M2 * _nonnegative(bcf, "bioconcentration factor", "(-)") * _floats(conc)


# --- the budget ---------------------------------------------------------------------------

"""The plough layer: soil mass, solid-solution partitioning and soil-solution concentration.

Arrays in, arrays out (numbers or ``(y, x)`` rasters, broadcast; float64). Units:

================================  ==============================================  =========
quantity                          formula                                         unit
================================  ==============================================  =========
soil mass M_s                     rho_b * d                                       kg/m2
retention R                       K_d + theta / rho_b                             L/kg
soil-solution concentration C_w   C / R                                           mg/L
K_d from a regression             10 ** (a + b * pH + c * log10(SOM))             L/kg
================================  ==============================================  =========

rho_b is the dry bulk density in kg/m3 everywhere in geohm (1300 kg/m3 = 1.3 kg/L; the
retention divides theta by rho_b in kg/L), d the plough-layer depth in m, theta the
volumetric water content (m3/m3), C the total concentration in the soil (mg/kg), K_d the
solid-solution partition coefficient (L/kg) and SOM the soil organic matter (% by mass).

K_d: the form log10 K_d = a + b pH + c log10(SOM) is the one of Sauvé, Hendershot & Allen
(2000, Environ. Sci. Technol. 34:1125-1131, doi:10.1021/es9907764), who fitted it for Cd, Cu,
Ni, Pb and Zn to over 70 studies. geohm ships no coefficients: the paper's tables could not
be checked from a source geohm can cite, and a coefficient copied from memory is no better
than a guess. Give the measured K_d of each metal (``kd``), or the coefficients of a
published regression you have checked (``coefficients``); without either,
:func:`partition_coefficient` raises :class:`~geohm.errors.ConfigError` naming the metal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geohm.errors import ConfigError

__all__ = [
    "FloatArray",
    "kd_regression",
    "partition_coefficient",
    "retention",
    "soil_mass",
    "solution_concentration",
]

#: The float64 arrays every function here returns.
FloatArray = NDArray[np.float64]

#: kg/m3 per kg/L.
_KG_M3_PER_KG_L = 1000.0


def _floats(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _check(x: FloatArray, name: str, unit: str, *, positive: bool = False) -> None:
    """Raise :class:`ConfigError` if a finite value of ``x`` is negative (or <= 0)."""
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(x) & ((x <= 0) if positive else (x < 0))
    if np.any(bad):
        need = "> 0" if positive else ">= 0"
        raise ConfigError(
            f"accumulation: {name} must be {need} {unit}, got {float(x[bad].ravel()[0]):g}; "
            f"give {name} {need} {unit}"
        )


def soil_mass(bulk_density: ArrayLike, depth: ArrayLike) -> FloatArray:
    """Dry soil mass of the plough layer per unit area, M_s = rho_b * d.

    Parameters
    ----------
    bulk_density : array_like
        Dry bulk density rho_b (kg/m3), e.g. 1300.
    depth : array_like
        Plough-layer depth d (m), e.g. 0.2.

    Returns
    -------
    numpy.ndarray
        M_s (kg/m2), float64, the broadcast shape of the inputs.

    Raises
    ------
    ConfigError
        If a finite bulk density or depth is <= 0.

    Examples
    --------
    >>> float(soil_mass(1300.0, 0.2))
    260.0
    """
    rho = _floats(bulk_density)
    d = _floats(depth)
    _check(rho, "bulk_density", "kg/m3", positive=True)
    _check(d, "depth", "m", positive=True)
    return rho * d


def retention(kd: ArrayLike, theta: ArrayLike, bulk_density: ArrayLike) -> FloatArray:
    """Total metal per unit dissolved concentration, R = K_d + theta / rho_b.

    C = R * C_w holds for the total (sorbed + dissolved) concentration C per kg of dry
    soil, so C_w = C / R.

    Parameters
    ----------
    kd : array_like
        Solid-solution partition coefficient K_d (L/kg).
    theta : array_like
        Volumetric water content (m3/m3, 0-1).
    bulk_density : array_like
        Dry bulk density rho_b (kg/m3); divided by 1000 to kg/L here.

    Returns
    -------
    numpy.ndarray
        R (L/kg), float64.

    Raises
    ------
    ConfigError
        If a finite K_d or theta is negative, theta above 1, or a bulk density <= 0.

    Examples
    --------
    >>> float(retention(100.0, 0.26, 1300.0))
    100.2
    """
    k = _floats(kd)
    th = _floats(theta)
    rho = _floats(bulk_density)
    _check(k, "kd", "L/kg")
    _check(th, "theta", "m3/m3")
    with np.errstate(invalid="ignore"):
        over = np.isfinite(th) & (th > 1)
    if np.any(over):
        raise ConfigError(
            f"accumulation: theta is a volumetric water content (m3/m3, 0-1), got "
            f"{float(th[over].ravel()[0]):g}; give theta between 0 and 1"
        )
    _check(rho, "bulk_density", "kg/m3", positive=True)
    r = k + th / (rho / _KG_M3_PER_KG_L)
    with np.errstate(invalid="ignore"):
        zero = r == 0
    if np.any(zero):
        raise ConfigError(
            "accumulation: kd and theta are both 0, so no metal is dissolved and the "
            "soil-solution concentration is undefined; give kd > 0 L/kg"
        )
    return r


def solution_concentration(
    conc: ArrayLike, *, kd: ArrayLike, theta: ArrayLike, bulk_density: ArrayLike
) -> FloatArray:
    """Soil-solution (pore-water) concentration C_w = C / (K_d + theta / rho_b).

    Parameters
    ----------
    conc : array_like
        Total concentration in the soil C (mg/kg dry soil).
    kd : array_like
        Solid-solution partition coefficient K_d (L/kg).
    theta : array_like
        Volumetric water content (m3/m3).
    bulk_density : array_like
        Dry bulk density rho_b (kg/m3).

    Returns
    -------
    numpy.ndarray
        C_w (mg/L), float64.

    Raises
    ------
    ConfigError
        As :func:`retention`.

    Examples
    --------
    With K_d 100 L/kg, theta 0.26 and rho_b 1300 kg/m3 (1.3 kg/L), R = 100.2 L/kg:

    >>> round(float(solution_concentration(50.1, kd=100.0, theta=0.26, bulk_density=1300.0)), 12)
    0.5
    """
    return _floats(conc) / retention(kd, theta, bulk_density)


def kd_regression(
    ph: ArrayLike,
    *,
    intercept: float,
    ph_slope: float,
    som: ArrayLike | None = None,
    som_slope: float = 0.0,
) -> FloatArray:
    """K_d from a pH / organic-matter regression, log10 K_d = a + b pH + c log10(SOM).

    The form of Sauvé, Hendershot & Allen (2000, doi:10.1021/es9907764); the coefficients
    are the caller's (see the module docstring for why geohm ships none).

    Parameters
    ----------
    ph : array_like
        Soil pH (-).
    intercept : float
        a (log10 L/kg).
    ph_slope : float
        b (log10 L/kg per pH unit).
    som : array_like, optional
        Soil organic matter (% by mass, > 0); needed when ``som_slope`` is not 0.
    som_slope : float, default 0
        c (log10 L/kg per log10 %).

    Returns
    -------
    numpy.ndarray
        K_d (L/kg), float64.

    Raises
    ------
    ConfigError
        If ``som_slope`` is not 0 and ``som`` is missing or has a finite value <= 0.

    Examples
    --------
    >>> float(kd_regression(6.0, intercept=-1.0, ph_slope=0.5))
    100.0
    >>> float(kd_regression(6.0, intercept=-1.0, ph_slope=0.5, som=10.0, som_slope=1.0))
    1000.0
    """
    log_kd = float(intercept) + float(ph_slope) * _floats(ph)
    if som_slope != 0.0:
        if som is None:
            raise ConfigError(
                "accumulation: the Kd regression has an organic-matter term; give som (%)"
            )
        s = _floats(som)
        _check(s, "som", "%", positive=True)
        log_kd = log_kd + float(som_slope) * np.log10(s)
    return np.asarray(10.0**log_kd, dtype=np.float64)


def partition_coefficient(
    metal: str,
    *,
    kd: ArrayLike | None = None,
    ph: ArrayLike | None = None,
    som: ArrayLike | None = None,
    coefficients: Sequence[float] | None = None,
) -> FloatArray:
    """The K_d (L/kg) of one metal: given, or from regression coefficients given.

    Parameters
    ----------
    metal : str
        The metal (``"Cd"``, ``"Pb"``, ...), named in errors.
    kd : array_like, optional
        A measured or chosen K_d (L/kg, > 0); used as it is when given.
    ph : array_like, optional
        Soil pH, for ``coefficients``.
    som : array_like, optional
        Soil organic matter (%), for a three-term ``coefficients``.
    coefficients : sequence of float, optional
        ``(a, b)`` or ``(a, b, c)`` of log10 K_d = a + b pH [+ c log10(SOM)]
        (:func:`kd_regression`), from a published regression such as Sauvé et al. (2000).

    Returns
    -------
    numpy.ndarray
        K_d (L/kg), float64.

    Raises
    ------
    ConfigError
        If neither ``kd`` nor ``coefficients`` is given (geohm ships no verified
        coefficients), both are, ``coefficients`` has the wrong length, ``ph`` is missing
        for them, or a given K_d is <= 0.

    Examples
    --------
    >>> float(partition_coefficient("Cd", kd=250.0))
    250.0
    >>> float(partition_coefficient("Cd", ph=6.0, coefficients=(-1.0, 0.5)))
    100.0
    """
    where = f"accumulation.leaching ({metal})"
    if kd is not None and coefficients is not None:
        raise ConfigError(f"{where}: give either kd or kd coefficients, not both")
    if kd is not None:
        k = _floats(kd)
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(k) & (k <= 0)
        if np.any(bad):
            raise ConfigError(
                f"{where}: kd must be > 0 L/kg, got {float(k[bad].ravel()[0]):g}; give kd > 0"
            )
        return k
    if coefficients is None:
        raise ConfigError(
            f"{where}: geohm ships no verified pH/organic-matter transfer function for the "
            f"Kd of {metal}; give kd (L/kg) for {metal}, or the coefficients (a, b[, c]) of "
            f"a published regression log10 Kd = a + b pH + c log10(SOM) "
            f"(e.g. Sauvé et al. 2000, doi:10.1021/es9907764)"
        )
    coef = [float(c) for c in coefficients]
    if len(coef) not in (2, 3):
        raise ConfigError(
            f"{where}: kd coefficients are (a, b) or (a, b, c) of "
            f"log10 Kd = a + b pH + c log10(SOM), got {len(coef)} numbers"
        )
    if ph is None:
        raise ConfigError(f"{where}: the Kd regression needs the soil pH; give ph")
    som_slope = coef[2] if len(coef) == 3 else 0.0
    return kd_regression(ph, intercept=coef[0], ph_slope=coef[1], som=som, som_slope=som_slope)

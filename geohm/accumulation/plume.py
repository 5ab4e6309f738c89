"""Atmospheric deposition of a metal from point sources: a sector-averaged Gaussian plume.

The long-term (climatological) Gaussian plume of ISC-LT (EPA 1995, ISC3 user guide vol. II,
section 2.2): a wind rose gives the frequency ``f`` of each (wind sector, wind-speed class,
Pasquill stability class); within a sector of width ``dtheta = 2 pi / N`` the plume is spread
evenly across the arc ``R dtheta``, so the ground-level concentration at distance ``R`` is

    C(R) = f * Q(R) * G(R) / (u * R * dtheta)                                   [g/m3]
    G(R) = sqrt(2/pi) * exp(-H^2 / (2 sigma_z^2)) / sigma_z                     [1/m]

(ground reflection included; with a mixing height L, G = 1/L once sigma_z > 1.6 L and G = 0
when H >= L, as in ISC-LT). ``Q(R) * G(R) / u`` is the crosswind-integrated ground-level
concentration of the ordinary Gaussian plume. Sigmas are Briggs' (1973) open-country (rural)
or urban fits, as tabulated by Gifford (1976), Nuclear Safety 17:68-86, and reproduced in
Boubel, Fox, Turner & Stern, *Fundamentals of Air Pollution* 3rd ed., Tables 19-6 and 19-7
(fitted over 100 m - 10 km; extrapolated outside that range, as ISC3 does for urban sigmas).

Deposition flux (geohm's choices, after ISC3 vol. II sections 1.3.5 and 1.4):

- dry: ``F_dry = v_d * C`` with a deposition velocity ``v_d`` (m/s);
- wet: in the fraction ``p`` of the time when it rains, washout removes the plume at the
  scavenging rate ``Lambda`` (1/s) over the whole column, so ``F_wet = Lambda * psi`` with the
  column-integrated concentration ``psi = f * Q(R) / (u * R * dtheta)`` (g/m2). The rainy
  hours share the wind rose of the dry ones.
- source depletion: what is deposited leaves the plume,
  ``dQ/dR = -(v_d * G(R) + Lambda_rain) * Q / u``, so
  ``Q(R)/Q0 = exp(-(v_d/u) * integral_0^R G dR' - Lambda_rain * R / u)`` (ISC's dry
  depletion factor, plus the wet one while raining). The integral is taken once per stack
  height and stability class on a fixed geometric distance grid (trapezoids), so the map of
  a window equals the same part of the whole map. With depletion the sector-integrated
  deposit is exactly ``f * (Q0 - Q(R_max))``: mass balances.

Emission rates are in kg/yr of the metal, deposition in mg/m2/yr; the release height is the
effective height (stack height plus plume rise, which geohm does not compute). Ground-level
releases (H = 0) are refused: their depletion integral diverges at the source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy.integrate import cumulative_trapezoid

from geohm.errors import ConfigError, InputError

__all__ = [
    "SECONDS_PER_YEAR",
    "STABILITY_CLASSES",
    "Stack",
    "WindRose",
    "briggs_sigmas",
    "crosswind_integrated_concentration",
    "deposition_map",
    "depletion_fraction",
    "plume_concentration",
]

FloatArray = npt.NDArray[np.float64]
Terrain = Literal["rural", "urban"]

#: Seconds in a Julian year (365.25 days).
SECONDS_PER_YEAR = 365.25 * 86400.0
#: Pasquill stability classes, A (very unstable) to F (moderately stable).
STABILITY_CLASSES: tuple[str, ...] = ("A", "B", "C", "D", "E", "F")

# Briggs (1973) via Gifford (1976), Boubel et al. Tables 19-6/19-7; x in metres:
# sigma_y = a x (1 + b x)^-1/2 ;  sigma_z = c x (1 + d x)^e.
_BRIGGS: dict[str, dict[str, tuple[float, float, float, float, float]]] = {
    "rural": {
        "A": (0.22, 1e-4, 0.20, 0.0, 0.0),
        "B": (0.16, 1e-4, 0.12, 0.0, 0.0),
        "C": (0.11, 1e-4, 0.08, 2e-4, -0.5),
        "D": (0.08, 1e-4, 0.06, 1.5e-3, -0.5),
        "E": (0.06, 1e-4, 0.03, 3e-4, -1.0),
        "F": (0.04, 1e-4, 0.016, 3e-4, -1.0),
    },
    "urban": {  # Briggs' urban fits (St. Louis data) group A-B and E-F
        "A": (0.32, 4e-4, 0.24, 1e-3, 0.5),
        "B": (0.32, 4e-4, 0.24, 1e-3, 0.5),
        "C": (0.22, 4e-4, 0.20, 0.0, 0.0),
        "D": (0.16, 4e-4, 0.14, 3e-4, -0.5),
        "E": (0.11, 4e-4, 0.08, 1.5e-3, -0.5),
        "F": (0.11, 4e-4, 0.08, 1.5e-3, -0.5),
    },
}
_GRID_POINTS = 4096  # distance grid of the depletion integral, 0.1 m .. max_distance


def _coefficients(stability: str, terrain: str) -> tuple[float, float, float, float, float]:
    if terrain not in _BRIGGS:
        raise ConfigError(f"terrain must be 'rural' or 'urban', got {terrain!r}")
    if stability not in STABILITY_CLASSES:
        raise ConfigError(f"stability class must be one of {STABILITY_CLASSES}, got {stability!r}")
    return _BRIGGS[terrain][stability]


def briggs_sigmas(
    x: npt.ArrayLike, stability: str, *, terrain: Terrain = "rural"
) -> tuple[FloatArray, FloatArray]:
    """Briggs (1973) plume spreads sigma_y and sigma_z at downwind distances ``x``.

    Parameters
    ----------
    x : array_like
        Downwind distance in metres (>= 0). The fits hold for 100 m - 10 km.
    stability : str
        Pasquill stability class, ``"A"`` .. ``"F"``.
    terrain : {"rural", "urban"}
        Open-country or urban coefficients.

    Returns
    -------
    sigma_y, sigma_z : ndarray of float64
        Crosswind and vertical standard deviations of the plume in metres.
    """
    a, b, c, d, e = _coefficients(stability, terrain)
    xx = np.asarray(x, dtype=np.float64)
    return a * xx / np.sqrt(1.0 + b * xx), c * xx * (1.0 + d * xx) ** e


def _mixing_heights(mixing_height: float | Sequence[float] | None, n: int) -> list[float | None]:
    if mixing_height is None:
        return [None] * n
    arr = np.broadcast_to(np.asarray(mixing_height, dtype=np.float64), (n,))
    if not np.all(arr > 0):
        raise ConfigError(f"mixing_height must be > 0 m, got {mixing_height!r}")
    return [float(v) for v in arr]


def _vertical_factor(
    x: FloatArray, height: float, stability: str, terrain: Terrain, mixing_height: float | None
) -> FloatArray:
    """G(x) in 1/m: ground-level value of the reflected vertical Gaussian, times 2."""
    _, sz = briggs_sigmas(x, stability, terrain=terrain)
    safe = np.where(sz > 0, sz, 1.0)
    g = np.where(sz > 0, np.sqrt(2 / np.pi) * np.exp(-(height**2) / (2 * safe**2)) / safe, 0.0)
    if mixing_height is not None:
        if height >= mixing_height:
            return np.zeros_like(g)
        g = np.where(sz > 1.6 * mixing_height, 1.0 / mixing_height, g)
    return np.asarray(g, dtype=np.float64)


def plume_concentration(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    z: npt.ArrayLike,
    *,
    emission_rate: float,
    wind_speed: float,
    height: float,
    stability: str,
    terrain: Terrain = "rural",
) -> FloatArray:
    """The steady Gaussian plume with ground reflection (no depletion), in g/m3.

    Parameters
    ----------
    x, y, z : array_like
        Downwind (> 0), crosswind and vertical (>= 0) receptor coordinates in metres,
        the source at (0, 0, ``height``); broadcast together.
    emission_rate : float
        Q, g/s.
    wind_speed : float
        u, m/s.
    height : float
        Effective release height H in metres.
    stability : str
        Pasquill class ``"A"`` .. ``"F"``.
    terrain : {"rural", "urban"}
        Briggs coefficients.

    Returns
    -------
    ndarray of float64
        Concentration in g/m3.
    """
    sy, sz = briggs_sigmas(x, stability, terrain=terrain)
    yy, zz = np.asarray(y, dtype=np.float64), np.asarray(z, dtype=np.float64)
    vert = np.exp(-((zz - height) ** 2) / (2 * sz**2)) + np.exp(-((zz + height) ** 2) / (2 * sz**2))
    lateral = np.exp(-(yy**2) / (2 * sy**2))
    return np.asarray(
        emission_rate / (2 * np.pi * wind_speed * sy * sz) * lateral * vert, dtype=np.float64
    )


def crosswind_integrated_concentration(
    x: npt.ArrayLike,
    *,
    emission_rate: float,
    wind_speed: float,
    height: float,
    stability: str,
    terrain: Terrain = "rural",
    mixing_height: float | None = None,
) -> FloatArray:
    """Ground-level concentration integrated across the wind, ``Q G(x) / u``, in g/m2.

    Without a mixing height this is ``2 Q exp(-H^2 / 2 sigma_z^2) / (sqrt(2 pi) u sigma_z)``,
    the integral over y of :func:`plume_concentration` at z = 0.

    Parameters
    ----------
    x : array_like
        Downwind distance in metres.
    emission_rate : float
        Q, g/s.
    wind_speed : float
        u, m/s.
    height : float
        Effective release height H in metres.
    stability : str
        Pasquill class ``"A"`` .. ``"F"``.
    terrain : {"rural", "urban"}
        Briggs coefficients.
    mixing_height : float, optional
        L in metres: uniform mixing below L once sigma_z > 1.6 L; 0 when H >= L.

    Returns
    -------
    ndarray of float64
        Crosswind-integrated concentration in g/m2.
    """
    xx = np.asarray(x, dtype=np.float64)
    g = _vertical_factor(xx, height, stability, terrain, mixing_height)
    return np.asarray(emission_rate * g / wind_speed, dtype=np.float64)


def _depletion_integral(
    height: float,
    stability: str,
    terrain: Terrain,
    mixing_height: float | None,
    max_distance: float,
) -> tuple[FloatArray, FloatArray]:
    """Distance grid (m) and integral_0^x G dx' on it (dimensionless)."""
    grid = np.concatenate([[0.0], np.geomspace(0.1, max_distance, _GRID_POINTS)])
    g = _vertical_factor(grid, height, stability, terrain, mixing_height)
    return grid, cumulative_trapezoid(g, grid, initial=0.0)


def depletion_fraction(
    x: npt.ArrayLike,
    *,
    height: float,
    wind_speed: float,
    stability: str,
    v_d: float,
    scavenging: float = 0.0,
    terrain: Terrain = "rural",
    mixing_height: float | None = None,
    max_distance: float = 50_000.0,
) -> FloatArray:
    """Share ``Q(x)/Q0`` of the emission still airborne at downwind distance ``x``.

    Parameters
    ----------
    x : array_like
        Downwind distance in metres, 0 .. ``max_distance``.
    height : float
        Effective release height H in metres (> 0).
    wind_speed : float
        u, m/s.
    stability : str
        Pasquill class ``"A"`` .. ``"F"``.
    v_d : float
        Dry deposition velocity in m/s.
    scavenging : float
        Washout rate Lambda in 1/s acting on the whole column (0: dry weather).
    terrain : {"rural", "urban"}
        Briggs coefficients.
    mixing_height : float, optional
        L in metres, as in :func:`crosswind_integrated_concentration`.
    max_distance : float
        End of the integration grid in metres; :func:`deposition_map` uses the same grid.

    Returns
    -------
    ndarray of float64
        ``exp(-(v_d/u) integral_0^x G dx' - Lambda x / u)``, between 0 and 1.
    """
    xx = np.asarray(x, dtype=np.float64)
    _check_height(height)
    _coefficients(stability, terrain)
    if np.any(xx > max_distance) or np.any(xx < 0):
        raise ConfigError(f"distances must lie in 0 .. max_distance ({max_distance} m)")
    grid, integral = _depletion_integral(height, stability, terrain, mixing_height, max_distance)
    return np.asarray(
        np.exp(-(v_d * np.interp(xx, grid, integral) + scavenging * xx) / wind_speed),
        dtype=np.float64,
    )


def _check_height(height: float) -> None:
    if not height > 0:
        raise InputError(
            f"a stack's effective release height must be > 0 m, got {height}; give ground-level "
            "sources a small height (e.g. 1 m)"
        )


@dataclass(frozen=True)
class Stack:
    """One point source of one metal.

    Parameters
    ----------
    x, y : float
        Position in metres, in the projected CRS of the receptor grid.
    height : float
        Effective release height in metres (stack height plus plume rise), > 0.
    emission : float
        Emission rate of the metal in kg/yr.
    """

    x: float
    y: float
    height: float
    emission: float


@dataclass(frozen=True)
class WindRose:
    """Joint frequency of wind sector, wind-speed class and stability class.

    Parameters
    ----------
    frequency : array_like, shape (n_sectors, n_speeds, n_classes)
        Share of the time (sums to 1; spread calms over the lowest speed class, as ISC-LT
        does). Sector ``k`` is the wind blowing FROM ``k * 360 / n_sectors`` degrees,
        clockwise from grid north, +- half a sector.
    speeds : array_like, shape (n_speeds,)
        Representative wind speed of each class in m/s (> 0).
    classes : tuple of str
        The Pasquill class of each last-axis entry, ``"A"`` .. ``"F"``.
    """

    frequency: FloatArray
    speeds: FloatArray
    classes: tuple[str, ...] = STABILITY_CLASSES

    def __post_init__(self) -> None:
        freq = np.asarray(self.frequency, dtype=np.float64)
        speeds = np.asarray(self.speeds, dtype=np.float64).reshape(-1)
        object.__setattr__(self, "frequency", freq)
        object.__setattr__(self, "speeds", speeds)
        object.__setattr__(self, "classes", tuple(self.classes))
        if freq.ndim != 3 or freq.shape[1:] != (speeds.size, len(self.classes)) or not freq.size:
            raise ConfigError(
                f"wind rose frequency must have shape (n_sectors, {speeds.size} speeds, "
                f"{len(self.classes)} classes), got {freq.shape}"
            )
        for cls in self.classes:
            _coefficients(cls, "rural")
        if not np.all(speeds > 0):
            raise ConfigError(f"wind rose speeds must be > 0 m/s, got {speeds.tolist()}")
        if not np.all(freq >= 0) or abs(freq.sum() - 1.0) > 1e-3:
            raise ConfigError(
                f"wind rose frequencies must be >= 0 and sum to 1, got sum {freq.sum():.4f}; "
                "spread calms over the lowest speed class"
            )


def _grid(grid_x: npt.ArrayLike, grid_y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    gx, gy = np.asarray(grid_x, dtype=np.float64), np.asarray(grid_y, dtype=np.float64)
    if gx.ndim == 1 and gy.ndim == 1:
        gx, gy = np.meshgrid(gx, gy)
    if gx.ndim != 2 or gx.shape != gy.shape:
        raise InputError(
            f"grid_x and grid_y must be 1-D pixel-centre columns and rows, or two 2-D arrays of "
            f"one shape; got {gx.shape} and {gy.shape}"
        )
    return gx, gy


def deposition_map(
    stacks: Sequence[Stack],
    grid_x: npt.ArrayLike,
    grid_y: npt.ArrayLike,
    wind_rose: WindRose,
    *,
    v_d: float,
    scavenging: float | None = None,
    rain_fraction: float | None = None,
    terrain: Terrain = "rural",
    mixing_height: float | Sequence[float] | None = None,
    depletion: bool = True,
    smooth: bool = True,
    max_distance: float = 50_000.0,
) -> FloatArray:
    """Long-term dry + wet deposition of one metal from point sources, in mg/m2/yr.

    Parameters
    ----------
    stacks : sequence of Stack
        The sources, with emission rates of this metal in kg/yr.
    grid_x, grid_y : array_like
        Pixel-centre easting and northing in metres (projected CRS of the stacks): 1-D
        columns (nx,) and rows (ny,), or two 2-D arrays (ny, nx). Each receptor is computed
        on its own, so a window's map equals that part of the whole map.
    wind_rose : WindRose
        Joint frequency of sector, speed and stability class.
    v_d : float
        Dry deposition velocity in m/s (metal-bearing fine particles: about 0.001-0.01).
    scavenging : float, optional
        Washout rate Lambda in 1/s while it rains (particles: about 1e-5-1e-3); needs
        ``rain_fraction``. None: no wet deposition.
    rain_fraction : float, optional
        Share of the time it rains, 0..1.
    terrain : {"rural", "urban"}
        Briggs sigma coefficients.
    mixing_height : float or sequence of float, optional
        Mixing height in metres, one value or one per class of ``wind_rose.classes``.
    depletion : bool
        Deplete the plume of what it has deposited (True). False gives ISC's undepleted
        fluxes, which overstate the deposit far out.
    smooth : bool
        Interpolate frequencies linearly between sector centre lines (ISC-LT's sector
        smoothing; keeps the angular integral) instead of a step at sector edges.
    max_distance : float
        Receptors farther than this from a stack (metres) get nothing from it.

    Returns
    -------
    ndarray of float64, shape (ny, nx)
        Deposition flux in mg/m2/yr.
    """
    gx, gy = _grid(grid_x, grid_y)
    if not v_d >= 0:
        raise ConfigError(f"deposition velocity v_d must be >= 0 m/s, got {v_d}")
    lam, rain = 0.0, 0.0
    if scavenging is not None:
        if rain_fraction is None or not 0 <= rain_fraction <= 1 or not scavenging >= 0:
            raise ConfigError(
                "wet deposition needs scavenging >= 0 (1/s) and rain_fraction in 0..1, got "
                f"{scavenging!r} and {rain_fraction!r}"
            )
        lam, rain = float(scavenging), float(rain_fraction)
    heights = _mixing_heights(mixing_height, len(wind_rose.classes))
    n = wind_rose.frequency.shape[0]
    dtheta = 2 * np.pi / n
    periods = [(1.0 - rain, 0.0), (rain, lam)] if rain > 0 else [(1.0, 0.0)]
    out = np.zeros(gx.shape, dtype=np.float64)
    for stack in stacks:
        _check_height(stack.height)
        dx, dy = gx - stack.x, gy - stack.y
        r = np.hypot(dx, dy)
        inside = (r > 0) & (r <= max_distance)
        inv_r = np.divide(1.0, r, out=np.zeros_like(r), where=inside)
        r_in = np.where(inside, r, 0.0)
        # Bearing of the wind that blows toward the receptor, in sector units.
        s = np.mod(np.arctan2(dx, dy) + np.pi, 2 * np.pi) / dtheta
        k0 = np.floor(s) if smooth else np.round(s)
        w = s - k0 if smooth else np.zeros_like(s)
        k0i = k0.astype(np.int64) % n
        k1i = (k0i + 1) % n
        scale = stack.emission * 1e6 * inv_r / dtheta  # (kg/yr -> mg/yr) / (R dtheta)
        for j, cls in enumerate(wind_rose.classes):
            g = _vertical_factor(r_in, stack.height, cls, terrain, heights[j])
            grid, integral = _depletion_integral(
                stack.height, cls, terrain, heights[j], max_distance
            )
            path = np.interp(r_in, grid, integral)
            for i, u in enumerate(wind_rose.speeds):
                f = wind_rose.frequency[:, i, j]
                fw = (1.0 - w) * f[k0i] + w * f[k1i]
                for share, lam_p in periods:
                    left = np.exp(-(v_d * path + lam_p * r_in) / u) if depletion else 1.0
                    out += share * fw * scale * left * (v_d * g + lam_p) / u
    return out

"""Projection of the topsoil concentration, years to exceedance and headroom (carrying capacity).

With outputs linear in C the budget is dC/dt = a - k C (a in mg/kg/yr, k in 1/yr;
:meth:`~geohm.accumulation.budget.Budget.linear_coefficients`), whose solution is

    C(t) = C* + (C0 - C*) e^(-k t),   C* = a / k   (k -> 0: C(t) = C0 + a t)

(science.md section 9). Here:

- :func:`closed_form` evaluates it (in the form C0 e^(-kt) + a (1 - e^(-kt)) / k, which has no
  0/0 at k = 0); :func:`steady_state` gives C*.
- :func:`step` projects year by year and keeps every term's cumulative mass, so the run can
  be checked for mass conservation. Given a :class:`~geohm.accumulation.budget.Budget` or
  ``(a, k)`` it integrates each year exactly (C_(n+1) = C_n e^(-k) + a (1 - e^(-k)) / k, the
  closed form over one year; output masses from the exact integral of C over the year), so
  after N steps it equals :func:`closed_form` at t = N to round-off (the tests hold it to
  1e-12 relative). Given a function of C returning
  :class:`~geohm.accumulation.budget.Fluxes` (a non-linear budget, a K_d that depends on C)
  it takes explicit (forward Euler) sub-steps of 1/``substeps`` yr; for a linear budget that
  is C_n = C* + (C0 - C*)(1 - k/m)^(m n) with m sub-steps a year, whose gap to the closed form
  is about n k^2 |C0 - C*| e^(-kn) / (2 m) (first order in 1/m).
- :func:`years_to_exceed`: t_S = ln((C* - C0) / (C* - S)) / k for C0 < S < C*, 0 where
  C0 >= S already, ``never`` where S >= C* or t_S > horizon.
- :func:`headroom`: M_s (S - C0), the metal (kg/ha) the layer can still take before the
  screening value S is reached (0.01 kg/ha per mg/m2).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from geohm.accumulation.budget import INPUT_TERMS, OUTPUT_TERMS, Budget, Fluxes
from geohm.accumulation.soil import FloatArray
from geohm.errors import ConfigError

__all__ = [
    "Projection",
    "closed_form",
    "headroom",
    "steady_state",
    "step",
    "years_to_exceed",
]

#: kg/ha per mg/m2 (1e-6 kg/mg * 1e4 m2/ha).
MG_M2_TO_KG_HA = 0.01

#: Below this |k t| the integral factor uses its Taylor series (no cancellation).
_SERIES_BELOW = 1e-3


def _floats(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _check_k(k: FloatArray) -> None:
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(k) & (k < 0)
    if np.any(bad):
        raise ConfigError(
            f"accumulation: the output rate constant k must be >= 0 1/yr, got "
            f"{float(k[bad].ravel()[0]):g}; check the output parameters (all >= 0)"
        )


def _phi(x: FloatArray) -> FloatArray:
    """(1 - e^-x) / x, 1 at x = 0: the mean of e^(-k s) over s in [0, 1] for x = k."""
    x = _floats(x)
    out = np.ones(x.shape)
    nz = x != 0
    out[nz] = -np.expm1(-x[nz]) / x[nz]
    return out


def _psi(x: FloatArray) -> FloatArray:
    """(x - 1 + e^-x) / x^2, 1/2 at x = 0: the integral over [0, 1] of (1 - e^(-k s)) / k."""
    x = _floats(x)
    out = np.empty(x.shape)
    with np.errstate(invalid="ignore"):
        small = np.abs(x) < _SERIES_BELOW
    xs = x[small]
    out[small] = 0.5 - xs / 6 + xs**2 / 24 - xs**3 / 120
    xl = x[~small]
    out[~small] = (xl + np.expm1(-xl)) / xl**2
    return out


def closed_form(c0: ArrayLike, a: ArrayLike, k: ArrayLike, t: ArrayLike) -> FloatArray:
    """Concentration after t years of dC/dt = a - k C: C* + (C0 - C*) e^(-k t).

    Parameters
    ----------
    c0 : array_like
        Concentration now C0 (mg/kg).
    a : array_like
        Input rate (mg/kg/yr).
    k : array_like
        Output rate constant (1/yr, >= 0); 0 gives C0 + a t.
    t : array_like
        Time (yr).

    Returns
    -------
    numpy.ndarray
        C(t) (mg/kg), float64, the broadcast shape.

    Raises
    ------
    ConfigError
        If a finite k is negative.

    Examples
    --------
    >>> float(closed_form(60.0, 1.0, 0.0, 10.0))
    70.0
    >>> round(float(closed_form(60.0, 1.0, 0.01, 1e4)), 6)  # the steady state a / k
    100.0
    """
    c = _floats(c0)
    rate = _floats(a)
    kk = _floats(k)
    tt = _floats(t)
    _check_k(kk)
    x = kk * tt
    return np.asarray(c * np.exp(-x) + rate * tt * _phi(x), dtype=np.float64)


def steady_state(a: ArrayLike, k: ArrayLike) -> FloatArray:
    """Steady-state concentration C* = a / k (mg/kg).

    Parameters
    ----------
    a : array_like
        Input rate (mg/kg/yr).
    k : array_like
        Output rate constant (1/yr, >= 0).

    Returns
    -------
    numpy.ndarray
        C* (mg/kg), float64: +inf where k = 0 and a > 0 (no steady state: C grows without
        bound), NaN where both are 0 (every C is steady).

    Raises
    ------
    ConfigError
        If a finite k is negative.

    Examples
    --------
    >>> steady_state([1.0, 1.0], [0.01, 0.0]).tolist()
    [100.0, inf]
    """
    rate = _floats(a)
    kk = _floats(k)
    _check_k(kk)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(rate / kk, dtype=np.float64)


def years_to_exceed(
    c0: ArrayLike,
    a: ArrayLike,
    k: ArrayLike,
    standard: ArrayLike,
    *,
    horizon: float,
    never: float = np.inf,
) -> FloatArray:
    """Years until C reaches the screening value S under dC/dt = a - k C.

    t_S = ln((C* - C0) / (C* - S)) / k for C0 < S < C* (computed as
    log1p(k (S - C0) / (a - k S)) / k, exact and stable as k -> 0, where it tends to
    (S - C0) / a).

    Parameters
    ----------
    c0 : array_like
        Concentration now C0 (mg/kg).
    a : array_like
        Input rate (mg/kg/yr); may be negative (a calibrated net flux).
    k : array_like
        Output rate constant (1/yr, >= 0).
    standard : array_like
        Screening value S (mg/kg), e.g. per land use and pH.
    horizon : float
        Projection horizon (yr); a t_S beyond it counts as never.
    never : float, default inf
        The value of cells that do not reach S within ``horizon`` (S >= C*, or a <= 0 at
        k = 0, or t_S > horizon). For an integer raster give e.g. ``horizon + 1`` or 65535
        (uint16).

    Returns
    -------
    numpy.ndarray
        Years (float64, fractional): 0 where C0 >= S already, t_S where C0 < S is reached
        within ``horizon``, ``never`` otherwise; NaN where an input is NaN.

    Raises
    ------
    ConfigError
        If a finite k is negative or ``horizon`` is not > 0.

    Examples
    --------
    C* = 100 mg/kg; from 60 to S = 80 takes ln(40 / 20) / 0.01 = 69.3 years:

    >>> years_to_exceed([60.0, 90.0, 60.0], 1.0, 0.01, [80.0, 80.0, 100.0],
    ...                 horizon=100).round(2).tolist()
    [69.31, 0.0, inf]
    """
    if not horizon > 0:
        raise ConfigError(f"accumulation: years must be > 0, got {horizon}")
    c, rate, kk, s = np.broadcast_arrays(_floats(c0), _floats(a), _floats(k), _floats(standard))
    _check_k(kk)
    shape = c.shape
    out = np.full(shape, float(never))
    valid = np.isfinite(c) & np.isfinite(rate) & np.isfinite(kk) & np.isfinite(s)
    out[~valid] = np.nan
    with np.errstate(invalid="ignore"):
        above = valid & (c >= s)
        below = valid & ~above
        den = rate - kk * s  # > 0 exactly when S < C* (k > 0) or a > 0 (k = 0)
        reach = below & (den > 0)
    t = np.full(shape, np.inf)
    kr, dr, gap = kk[reach], den[reach], (s - c)[reach]
    pos = kr > 0
    tr = np.empty(kr.shape)
    tr[pos] = np.log1p(kr[pos] * gap[pos] / dr[pos]) / kr[pos]
    tr[~pos] = gap[~pos] / dr[~pos]
    t[reach] = tr
    within = reach & (t <= horizon)
    out[within] = t[within]
    out[above] = 0.0
    return out


def headroom(
    c0: ArrayLike, standard: ArrayLike, soil_mass: ArrayLike, *, clip: bool = True
) -> FloatArray:
    """Metal the plough layer can still take before reaching S: M_s (S - C0), in kg/ha.

    mg/kg * kg/m2 = mg/m2, and 1 mg/m2 = 0.01 kg/ha.

    Parameters
    ----------
    c0 : array_like
        Concentration now C0 (mg/kg).
    standard : array_like
        Screening value S (mg/kg).
    soil_mass : array_like
        Plough-layer soil mass M_s (kg/m2), e.g. 260 (0.2 m at 1300 kg/m3).
    clip : bool, default True
        Clip at 0. Unclipped, a negative value is the excess already above S (kg/ha that
        would have to leave the layer to come back to S).

    Returns
    -------
    numpy.ndarray
        Headroom (kg/ha), float64.

    Examples
    --------
    M_s 260 kg/m2, S 100, C0 60 mg/kg: 260 * 40 = 10 400 mg/m2 = 104 kg/ha.

    >>> round(float(headroom(60.0, 100.0, 260.0)), 9)
    104.0
    >>> round(float(headroom(120.0, 100.0, 260.0, clip=False)), 9)
    -52.0
    """
    h = _floats(soil_mass) * (_floats(standard) - _floats(c0)) * MG_M2_TO_KG_HA
    if clip:
        h = np.where(np.isnan(h), np.nan, np.maximum(h, 0.0))
    return np.asarray(h, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Projection:
    """The result of :func:`step`: concentration and cumulative masses at recorded years.

    Parameters
    ----------
    years : tuple of int
        The recorded years (0 = now), increasing.
    concentration : numpy.ndarray
        C (mg/kg) at each recorded year, shape ``(len(years), *grid)``.
    cumulative : dict of str to numpy.ndarray
        Each term's mass since year 0 (mg/m2) at each recorded year, shape as
        ``concentration``; inputs and outputs both positive.
    input_terms : tuple of str
        The keys of ``cumulative`` that are inputs.
    output_terms : tuple of str
        The keys of ``cumulative`` that are outputs.
    initial : numpy.ndarray
        C0 (mg/kg), the grid's shape.
    soil_mass : numpy.ndarray
        M_s (kg/m2).
    """

    years: tuple[int, ...]
    concentration: FloatArray
    cumulative: dict[str, FloatArray]
    input_terms: tuple[str, ...]
    output_terms: tuple[str, ...]
    initial: FloatArray
    soil_mass: FloatArray

    def at(self, year: int) -> FloatArray:
        """C (mg/kg) at a recorded year.

        Parameters
        ----------
        year : int
            One of :attr:`years`.

        Returns
        -------
        numpy.ndarray
            The concentration grid.

        Raises
        ------
        KeyError
            If ``year`` was not recorded.
        """
        if year not in self.years:
            raise KeyError(f"year {year} was not recorded; recorded: {list(self.years)}")
        return self.concentration[self.years.index(year)]

    def inputs(self) -> FloatArray:
        """Cumulative input mass (mg/m2) at each recorded year.

        Returns
        -------
        numpy.ndarray
            Sum of the input terms of :attr:`cumulative`.
        """
        return np.asarray(sum(self.cumulative[t] for t in self.input_terms), dtype=np.float64)

    def outputs(self) -> FloatArray:
        """Cumulative output mass (mg/m2) at each recorded year.

        Returns
        -------
        numpy.ndarray
            Sum of the output terms of :attr:`cumulative`.
        """
        return np.asarray(sum(self.cumulative[t] for t in self.output_terms), dtype=np.float64)

    def residual(self) -> FloatArray:
        """Mass-balance residual, inputs - outputs - M_s (C - C0) (mg/m2), per recorded year.

        Returns
        -------
        numpy.ndarray
            0 up to round-off for a conserving run.
        """
        stock = self.soil_mass * (self.concentration - self.initial)
        return self.inputs() - self.outputs() - stock


#: What :func:`step` integrates: a budget, ``(a, k)``, or C -> fluxes.
Model = Budget | tuple[ArrayLike, ArrayLike] | Callable[[FloatArray], Fluxes]


def _record_years(record: Iterable[int] | None, years: int) -> tuple[int, ...]:
    if years < 0:
        raise ConfigError(f"accumulation: years must be >= 0, got {years}")
    rec = (years,) if record is None else tuple(sorted({int(y) for y in record}))
    bad = [y for y in rec if not 0 <= y <= years]
    if bad:
        raise ConfigError(
            f"accumulation: output years {bad} are outside 0-{years}; give years within the "
            f"projection"
        )
    return rec


def step(
    c0: ArrayLike,
    model: Model,
    years: int,
    *,
    record: Iterable[int] | None = None,
    soil_mass: ArrayLike | None = None,
    substeps: int = 1,
) -> Projection:
    """Project C year by year, keeping C at the recorded years and every term's mass.

    Parameters
    ----------
    c0 : array_like
        Concentration now C0 (mg/kg), a number or a ``(y, x)`` grid (NaN = nodata).
    model : Budget or (a, k) or callable
        A :class:`~geohm.accumulation.budget.Budget` (each year integrated exactly; masses
        per term), an ``(a, k)`` pair (mg/kg/yr, 1/yr; exact; masses ``"inputs"`` and
        ``"outputs"``), or a function of C (mg/kg) returning
        :class:`~geohm.accumulation.budget.Fluxes` (explicit sub-steps; masses per term).
    years : int
        Number of annual steps N (>= 0).
    record : iterable of int, optional
        Years (0..N) to keep; default N only.
    soil_mass : array_like, optional
        M_s (kg/m2); needed for ``(a, k)`` and a callable (a Budget knows its own).
    substeps : int, default 1
        Explicit sub-steps per year for a callable model (ignored otherwise).

    Returns
    -------
    Projection
        Concentrations and cumulative masses at the recorded years.

    Raises
    ------
    ConfigError
        If ``years`` or a recorded year is out of range, or k is negative.
    ValueError
        If ``soil_mass`` is missing where needed, or ``substeps`` < 1.

    Examples
    --------
    >>> p = step(60.0, (1.0, 0.01), 50, soil_mass=260.0, record=[0, 10, 50])
    >>> p.concentration.round(3).tolist()
    [60.0, 63.807, 75.739]
    >>> abs(float(p.residual()[-1])) < 1e-9
    True
    """
    rec = _record_years(record, years)
    c = _floats(c0)
    if isinstance(model, Budget):
        a, k = model.linear_coefficients()
        ms = model.soil_mass
        rates = model.output_rates()
        in_flux = {t: _floats(getattr(model, t)) for t in INPUT_TERMS}
        return _step_linear(c, a, k, ms, in_flux, rates, years, rec)
    if isinstance(model, tuple):
        if soil_mass is None:
            raise ValueError("step: give soil_mass (kg/m2) with an (a, k) model")
        a, k = _floats(model[0]), _floats(model[1])
        ms = _floats(soil_mass)
        _check_k(k)
        return _step_linear(c, a, k, ms, {"inputs": a * ms}, {"outputs": k}, years, rec)
    if soil_mass is None:
        raise ValueError("step: give soil_mass (kg/m2) with a flux-function model")
    if substeps < 1:
        raise ValueError(f"step: substeps must be >= 1, got {substeps}")
    return _step_explicit(c, model, _floats(soil_mass), years, rec, substeps)


def _step_linear(
    c0: FloatArray,
    a: FloatArray,
    k: FloatArray,
    ms: FloatArray,
    in_flux: dict[str, FloatArray],
    rates: dict[str, FloatArray],
    years: int,
    rec: tuple[int, ...],
) -> Projection:
    """Exact annual integration of dC/dt = a - k C; outputs from the exact integral of C."""
    _check_k(k)
    shape = np.broadcast_shapes(c0.shape, a.shape, k.shape, ms.shape)
    c = np.broadcast_to(c0, shape).astype(np.float64)
    decay = np.exp(-k)
    phi = _phi(k)  # C(1) = C e^-k + a phi
    psi = _psi(k)  # integral of C over the year = C phi + a psi
    cum = {t: np.zeros(shape) for t in (*in_flux, *rates)}
    conc_rec: list[FloatArray] = []
    cum_rec: dict[str, list[FloatArray]] = {t: [] for t in cum}

    def keep() -> None:
        conc_rec.append(c.copy())
        for t, v in cum.items():
            cum_rec[t].append(v.copy())

    if 0 in rec:
        keep()
    for n in range(1, years + 1):
        integral = c * phi + a * psi  # mg/kg * yr
        for t, flux in in_flux.items():
            cum[t] += flux
        for t, r in rates.items():
            cum[t] += ms * r * integral
        c = c * decay + a * phi
        if n in rec:
            keep()
    return Projection(
        years=rec,
        concentration=np.stack(conc_rec),
        cumulative={t: np.stack(v) for t, v in cum_rec.items()},
        input_terms=tuple(in_flux),
        output_terms=tuple(rates),
        initial=np.broadcast_to(c0, shape).astype(np.float64),
        soil_mass=np.broadcast_to(ms, shape).astype(np.float64),
    )


def _step_explicit(
    c0: FloatArray,
    fluxes_fn: Callable[[FloatArray], Fluxes],
    ms: FloatArray,
    years: int,
    rec: tuple[int, ...],
    substeps: int,
) -> Projection:
    """Forward-Euler sub-steps of 1/substeps yr of C += net dt / M_s."""
    dt = 1.0 / substeps
    shape = np.broadcast_shapes(c0.shape, ms.shape)
    c = np.broadcast_to(c0, shape).astype(np.float64)
    terms = (*INPUT_TERMS, *OUTPUT_TERMS)
    cum: dict[str, FloatArray] = {t: np.zeros(shape) for t in terms}
    conc_rec: list[FloatArray] = []
    cum_rec: dict[str, list[FloatArray]] = {t: [] for t in terms}

    def keep() -> None:
        conc_rec.append(c.copy())
        for t in terms:
            cum_rec[t].append(cum[t].copy())

    if 0 in rec:
        keep()
    for n in range(1, years + 1):
        for _ in range(substeps):
            f = fluxes_fn(c)
            values = f.terms()
            for t in terms:
                cum[t] = cum[t] + values[t] * dt
            c = c + f.net * dt / ms
        if n in rec:
            keep()
    final_shape = c.shape
    return Projection(
        years=rec,
        concentration=np.stack([np.broadcast_to(x, final_shape) for x in conc_rec]),
        cumulative={
            t: np.stack([np.broadcast_to(x, final_shape) for x in v]) for t, v in cum_rec.items()
        },
        input_terms=INPUT_TERMS,
        output_terms=OUTPUT_TERMS,
        initial=np.broadcast_to(c0, final_shape).astype(np.float64),
        soil_mass=np.broadcast_to(ms, final_shape).astype(np.float64),
    )

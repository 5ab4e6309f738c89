"""The metal budget of the plough layer per cell and year: input and output fluxes.

dC/dt = (I_dep + I_fert + I_manure + I_irr - O_leach - O_runoff - O_eros - O_crop) / M_s

with the fluxes in mg/m2/yr, the soil mass M_s = rho_b * d in kg/m2 and C in mg/kg, so dC/dt
is in mg/kg/yr (science.md section 9; MITERRA metals documentation; Moolenaar & Lexmond
1998, J. Industrial Ecology 2(4):45-60). Arrays in, arrays out (numbers or ``(y, x)``
rasters, broadcast; float64).

The flux terms and their units: :mod:`geohm.accumulation.fluxes`.

Every output is linear in C (K_d, theta, q, Q_surf, A, SDR, ER, yield and BCF do not depend on
C), so the budget is dC/dt = a - k C with a = sum(I) / M_s (mg/kg/yr) and
k = [(q + Q_surf) / (K_d + theta/rho_b) + 0.1 A SDR ER + 0.1 yield BCF] / M_s (1/yr):
:meth:`Budget.linear_coefficients`. The projection (:mod:`geohm.accumulation.projection`)
integrates it exactly. A K_d that depends on C (a regression on total metal) makes the budget
non-linear: give :func:`~geohm.accumulation.projection.step` a function of C returning
:class:`Fluxes` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike

from geohm.accumulation.fluxes import (
    _floats,
    _nonnegative,
    application_input,
    crop_output,
    erosion_output,
    irrigation_input,
    leaching_output,
    per_class,
    runoff_output,
)
from geohm.accumulation.soil import FloatArray, retention, soil_mass
from geohm.errors import ConfigError

__all__ = [
    "INPUT_TERMS",
    "OUTPUT_TERMS",
    "Budget",
    "Fluxes",
    "application_input",
    "crop_output",
    "erosion_output",
    "irrigation_input",
    "leaching_output",
    "linear_coefficients",
    "per_class",
    "runoff_output",
]

#: The input terms of :class:`Fluxes`, in order.
INPUT_TERMS = ("deposition", "fertiliser", "manure", "irrigation")
#: The output terms of :class:`Fluxes`, in order.
OUTPUT_TERMS = ("leaching", "runoff", "erosion", "crop")


@dataclass(frozen=True, eq=False)
class Fluxes:
    """The flux of every budget term (mg/m2/yr; arrays of one broadcast shape).

    Parameters
    ----------
    deposition : numpy.ndarray
        Atmospheric deposition (input).
    fertiliser : numpy.ndarray
        Mineral fertiliser (input).
    manure : numpy.ndarray
        Manure, compost, sludge (input).
    irrigation : numpy.ndarray
        Irrigation water (input).
    leaching : numpy.ndarray
        Leaching below the plough layer (output).
    runoff : numpy.ndarray
        Dissolved loss with surface runoff (output).
    erosion : numpy.ndarray
        Loss on eroded sediment (output).
    crop : numpy.ndarray
        Crop offtake (output).
    """

    deposition: FloatArray
    fertiliser: FloatArray
    manure: FloatArray
    irrigation: FloatArray
    leaching: FloatArray
    runoff: FloatArray
    erosion: FloatArray
    crop: FloatArray

    @property
    def inputs(self) -> FloatArray:
        """Sum of the input terms (mg/m2/yr)."""
        return self.deposition + self.fertiliser + self.manure + self.irrigation

    @property
    def outputs(self) -> FloatArray:
        """Sum of the output terms (mg/m2/yr)."""
        return self.leaching + self.runoff + self.erosion + self.crop

    @property
    def net(self) -> FloatArray:
        """Net flux, inputs - outputs (mg/m2/yr); positive where the soil accumulates."""
        return self.inputs - self.outputs

    def terms(self) -> dict[str, FloatArray]:
        """Every term by name (:data:`INPUT_TERMS` then :data:`OUTPUT_TERMS`), mg/m2/yr.

        Returns
        -------
        dict of str to numpy.ndarray
            One entry per term, in :class:`Fluxes` field order.
        """
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, eq=False)
class Budget:
    """The linear budget of one metal: constant inputs, outputs proportional to C.

    Every field is a number or an array broadcastable to the grid; NaN cells (nodata) give
    NaN. The water outputs need ``kd`` and ``theta`` only when ``percolation`` or ``runoff``
    is not 0.

    Parameters
    ----------
    bulk_density : array_like
        Dry bulk density rho_b (kg/m3).
    depth : array_like
        Plough-layer depth d (m).
    deposition, fertiliser, manure, irrigation : array_like, default 0
        Input fluxes (mg/m2/yr), e.g. from :func:`application_input`,
        :func:`irrigation_input` or the plume module.
    percolation : array_like, default 0
        Percolation below the plough layer q (mm/yr).
    runoff : array_like, default 0
        Surface runoff Q_surf (mm/yr).
    kd : array_like, optional
        Solid-solution partition coefficient K_d (L/kg).
    theta : array_like, optional
        Volumetric water content (m3/m3).
    soil_loss : array_like, default 0
        Soil loss A (t/ha/yr).
    sdr : array_like, default 1
        Sediment delivery ratio (0-1).
    enrichment : array_like, default 1
        Enrichment ratio ER (-).
    crop_yield : array_like, default 0
        Harvested dry matter (t/ha/yr).
    bcf : array_like, default 0
        Bioconcentration factor (-).

    Raises
    ------
    ConfigError
        If a value is out of range (negative flux, depth <= 0, theta > 1, SDR > 1), or the
        water outputs are asked for without ``kd`` and ``theta``.

    Examples
    --------
    >>> b = Budget(bulk_density=1300.0, depth=0.2, deposition=2.6, crop_yield=6.0, bcf=0.1)
    >>> a, k = b.linear_coefficients()
    >>> round(float(a), 12), round(float(k), 12)
    (0.01, 0.000230769231)
    """

    bulk_density: ArrayLike
    depth: ArrayLike
    deposition: ArrayLike = 0.0
    fertiliser: ArrayLike = 0.0
    manure: ArrayLike = 0.0
    irrigation: ArrayLike = 0.0
    percolation: ArrayLike = 0.0
    runoff: ArrayLike = 0.0
    kd: ArrayLike | None = None
    theta: ArrayLike | None = None
    soil_loss: ArrayLike = 0.0
    sdr: ArrayLike = 1.0
    enrichment: ArrayLike = 1.0
    crop_yield: ArrayLike = 0.0
    bcf: ArrayLike = 0.0

    def __post_init__(self) -> None:
        for name in INPUT_TERMS:
            object.__setattr__(self, name, _nonnegative(getattr(self, name), name, "mg/m2/yr"))
        object.__setattr__(self, "bulk_density", _floats(self.bulk_density))
        object.__setattr__(self, "depth", _floats(self.depth))
        soil_mass(self.bulk_density, self.depth)  # checks both > 0
        for name, unit in (("percolation", "mm/yr"), ("runoff", "mm/yr")):
            object.__setattr__(self, name, _nonnegative(getattr(self, name), name, unit))
        water = bool(np.any(_floats(self.percolation) != 0) or np.any(_floats(self.runoff) != 0))
        if water and (self.kd is None or self.theta is None):
            raise ConfigError(
                "accumulation.leaching: percolation or runoff is given, so the soil-solution "
                "concentration is needed; give kd (L/kg) and theta (m3/m3)"
            )
        if self.kd is not None:
            object.__setattr__(self, "kd", _floats(self.kd))
        if self.theta is not None:
            object.__setattr__(self, "theta", _floats(self.theta))
        if water:
            retention(self._kd, self._theta, self.bulk_density)  # checks kd, theta
        # erosion_output / crop_output check their parameters; run them once on C = 1
        erosion_output(1.0, soil_loss=self.soil_loss, sdr=self.sdr, enrichment=self.enrichment)
        crop_output(1.0, crop_yield=self.crop_yield, bcf=self.bcf)
        for name in ("soil_loss", "sdr", "enrichment", "crop_yield", "bcf"):
            object.__setattr__(self, name, _floats(getattr(self, name)))

    @property
    def _kd(self) -> ArrayLike:
        return 0.0 if self.kd is None else self.kd

    @property
    def _theta(self) -> ArrayLike:
        return 0.0 if self.theta is None else self.theta

    @property
    def soil_mass(self) -> FloatArray:
        """M_s = rho_b * d (kg/m2)."""
        return soil_mass(self.bulk_density, self.depth)

    def _water_per_conc(self) -> tuple[FloatArray, FloatArray]:
        """Leaching and runoff flux per unit C: (q / R, Q / R) in mg/m2/yr per mg/kg."""
        q, qs = _floats(self.percolation), _floats(self.runoff)
        if not (np.any(q != 0) or np.any(qs != 0)):
            return np.zeros_like(q), np.zeros_like(qs)
        r = retention(self._kd, self._theta, self.bulk_density)
        return q / r, qs / r

    def output_rates(self) -> dict[str, FloatArray]:
        """Each output's rate constant k_i = O_i / (M_s C) (1/yr), by term.

        Returns
        -------
        dict of str to numpy.ndarray
            ``{"leaching", "runoff", "erosion", "crop"}``; their sum is k.
        """
        ms = self.soil_mass
        leach, run = self._water_per_conc()
        return {
            "leaching": leach / ms,
            "runoff": run / ms,
            "erosion": erosion_output(
                1.0, soil_loss=self.soil_loss, sdr=self.sdr, enrichment=self.enrichment
            )
            / ms,
            "crop": crop_output(1.0, crop_yield=self.crop_yield, bcf=self.bcf) / ms,
        }

    def input_flux(self) -> FloatArray:
        """Sum of the inputs (mg/m2/yr).

        Returns
        -------
        numpy.ndarray
            I_dep + I_fert + I_manure + I_irr.
        """
        return (
            _floats(self.deposition)
            + _floats(self.fertiliser)
            + _floats(self.manure)
            + _floats(self.irrigation)
        )

    def linear_coefficients(self) -> tuple[FloatArray, FloatArray]:
        """The budget as dC/dt = a - k C.

        Returns
        -------
        a : numpy.ndarray
            sum(I) / M_s (mg/kg/yr).
        k : numpy.ndarray
            sum of :meth:`output_rates` (1/yr); the steady state is C* = a / k.
        """
        ms = self.soil_mass
        rates = self.output_rates()
        k = rates["leaching"] + rates["runoff"] + rates["erosion"] + rates["crop"]
        a = self.input_flux() / ms
        a, k = np.broadcast_arrays(a, k)
        return np.array(a, dtype=np.float64), np.array(k, dtype=np.float64)

    def fluxes(self, conc: ArrayLike) -> Fluxes:
        """Every term's flux at concentration ``conc`` (mg/m2/yr).

        Parameters
        ----------
        conc : array_like
            Total concentration in the soil C (mg/kg).

        Returns
        -------
        Fluxes
            All terms, broadcast to one shape.
        """
        c = _floats(conc)
        leach, run = self._water_per_conc()
        values = {
            "deposition": self.deposition,
            "fertiliser": self.fertiliser,
            "manure": self.manure,
            "irrigation": self.irrigation,
            "leaching": leach * c,
            "runoff": run * c,
            "erosion": erosion_output(
                c, soil_loss=self.soil_loss, sdr=self.sdr, enrichment=self.enrichment
            ),
            "crop": crop_output(c, crop_yield=self.crop_yield, bcf=self.bcf),
        }
        arrays = np.broadcast_arrays(*(_floats(v) for v in values.values()))
        return Fluxes(
            **{k: np.array(v, dtype=np.float64) for k, v in zip(values, arrays, strict=True)}
        )


def linear_coefficients(budget: Budget) -> tuple[FloatArray, FloatArray]:
    """The budget as dC/dt = a - k C: ``budget.linear_coefficients()``.

    Parameters
    ----------
    budget : Budget
        The metal's budget.

    Returns
    -------
    a : numpy.ndarray
        Input rate sum(I) / M_s (mg/kg/yr).
    k : numpy.ndarray
        Output rate constant (1/yr).

    Examples
    --------
    >>> a, k = linear_coefficients(Budget(bulk_density=1300.0, depth=0.2, fertiliser=26.0))
    >>> float(a), float(k)
    (0.1, 0.0)
    """
    return budget.linear_coefficients()

"""Where the accumulation budget's parameters vary over the scene: land use, pH, organic matter.

:class:`LocalParameters` resolves, at any cells of the grid (a window's rows and columns
or scattered points), what :class:`~geohm.accumulation.budget.Budget` needs per cell and
metal: the agricultural inputs of the cell's land-use class (``accumulation.agriculture``:
rates per class times the metal content of each material) and the partition coefficient
K_d, given or from a pH / organic-matter transfer function over pH and organic-matter
numbers or rasters. Rasters are warped onto the grid once (nearest neighbour for land-use
codes, bilinear for pH and organic matter) and read per window, so memory stays flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from geohm.accumulation.fluxes import application_input, irrigation_input, per_class
from geohm.accumulation.soil import kd_regression
from geohm.config import AccumulationSpec, KdRegression, LandUseRaster, RiskSpec
from geohm.errors import ConfigError
from geohm.grid import Grid
from geohm.io.reading import open_aligned

__all__ = ["CellInputs", "LocalParameters", "raster_at"]

#: The rates of a land-use class, as :class:`~geohm.config.LandUsePractice` names them.
_RATES = ("fertiliser", "manure", "irrigation", "crop_yield")


def raster_at(grid: Grid, da: Any, gx: Any, gy: Any, *, fill: float | None = None) -> np.ndarray:
    """A grid-aligned raster's values at pixel centres ``gx``, ``gy`` (m, grid CRS).

    Parameters
    ----------
    grid : Grid
        The scene grid ``da`` is aligned on.
    da : xarray.DataArray
        A (y, x) raster on ``grid`` (lazy: only the cells asked for are read).
    gx, gy : array_like
        A window's 1-D column and row centres, or (1, n) arrays of points.
    fill : float, optional
        The value of NaN cells (``None``: they stay NaN).

    Returns
    -------
    numpy.ndarray
        float64, (rows, cols) for a window, (1, n) for points.
    """
    inv = ~grid.transform
    gx, gy = np.asarray(gx, dtype="float64"), np.asarray(gy, dtype="float64")
    if gx.ndim == 1:  # a window: its columns and rows
        c0, r0 = (int(np.floor(v)) for v in inv * (gx[0], gy[0]))
        block = da.isel(y=slice(r0, r0 + gy.size), x=slice(c0, c0 + gx.size)).values
    else:  # points
        col, row = inv * (gx.ravel(), gy.ravel())
        rows = xr.DataArray(np.clip(np.floor(row).astype(int), 0, grid.height - 1), dims="point")
        cols = xr.DataArray(np.clip(np.floor(col).astype(int), 0, grid.width - 1), dims="point")
        block = da.isel(y=rows, x=cols).values[None, :]
    out = np.asarray(block, dtype="float64")
    return out if fill is None else np.nan_to_num(out, nan=fill)


@dataclass(frozen=True)
class CellInputs:
    """The budget's spatially varying parameters of one metal at some cells.

    Attributes
    ----------
    fertiliser, manure, irrigation : numpy.ndarray or float
        Input fluxes (mg/m2/yr).
    crop_yield : numpy.ndarray or float
        Harvest removed (t/ha/yr dry matter).
    kd : numpy.ndarray, float or None
        Partition coefficient K_d (L/kg); ``None`` where no leaching or runoff needs it.
    """

    fertiliser: Any
    manure: Any
    irrigation: Any
    crop_yield: Any
    kd: Any


class LocalParameters:
    """The accumulation parameters that vary with land use, pH and organic matter.

    Parameters
    ----------
    spec : AccumulationSpec
        The ``accumulation:`` block.
    risk : RiskSpec or None
        The risk block, whose ``land_use`` and ``ph`` are the defaults of
        ``agriculture.land_use`` and ``accumulation.ph``.
    grid : Grid
        The scene grid.
    metals : list of str
        The mapped metals (what per-metal keys may name).

    Raises
    ------
    ConfigError
        A land-use class without a practice row (or a row naming no class), a content
        naming an unmapped metal, or a Kd regression without a pH.
    """

    def __init__(
        self, spec: AccumulationSpec, risk: RiskSpec | None, grid: Grid, metals: list[str]
    ) -> None:
        self.spec = spec
        self.grid = grid
        self.notes: list[str] = []
        #: What each land-use code / the whole scene gets: rate name -> {code: value}.
        self.rates: dict[str, dict[int, float]] = {}
        self.scene_rates: dict[str, float] | None = None
        self.land_use: Any = None
        agri = spec.agriculture
        if agri is not None:
            for key in ("fertiliser_content", "manure_content", "irrigation_content"):
                unknown = sorted(set(getattr(agri, key)) - set(metals))
                if unknown:
                    raise ConfigError(
                        f"accumulation.agriculture.{key}: {unknown} are not mapped metals "
                        f"({metals}); name each content by its metal"
                    )
            land_use = agri.land_use
            if land_use is None:
                land_use = risk.land_use if risk is not None else None
            if land_use is None:
                raise ConfigError(
                    "accumulation.agriculture needs the land use: give "
                    "agriculture.land_use (a class name, or {path, classes}) or risk.land_use"
                )
            names = [land_use] if isinstance(land_use, str) else list(land_use.classes.values())
            missing = [n for n in names if n not in agri.practice]
            if missing:
                raise ConfigError(
                    f"accumulation.agriculture.practice has no row for land-use class(es) "
                    f"{missing}; add them (e.g. {missing[0]}: {{}} for no agricultural input)"
                )
            unused = sorted(set(agri.practice) - set(names))
            if unused:
                raise ConfigError(
                    f"accumulation.agriculture.practice: {unused} are not classes of the land "
                    f"use ({names}); check the spelling"
                )
            if isinstance(land_use, LandUseRaster):
                self.land_use = open_aligned(
                    land_use.path,
                    grid,
                    resampling="nearest",
                    what="land-use raster (accumulation.agriculture)",
                )
                for rate in _RATES:
                    self.rates[rate] = {
                        code: float(getattr(agri.practice[name], rate))
                        for code, name in land_use.classes.items()
                    }
            else:
                row = agri.practice[land_use]
                self.scene_rates = {rate: float(getattr(row, rate)) for rate in _RATES}
        self.regressions = {m: v for m, v in spec.kd.items() if isinstance(v, KdRegression)}
        self.ph: Any = None
        self.som: Any = None
        if self.regressions:
            ph = spec.ph if spec.ph is not None else (risk.ph if risk is not None else None)
            if ph is None:
                raise ConfigError(
                    f"accumulation.kd: the Kd regression of {sorted(self.regressions)} needs "
                    "the soil pH; give accumulation.ph (a number or a raster) or risk.ph"
                )
            self.ph = self._layer(ph, "pH raster (accumulation.ph)")
            if spec.som is not None:
                self.som = self._layer(spec.som, "organic-matter raster (accumulation.som)")
            for m, reg in sorted(self.regressions.items()):
                self.notes.append(
                    f"{m}: Kd from log10 Kd = {reg.intercept:g} + {reg.ph:g} pH"
                    + (f" + {reg.log_som:g} log10(SOM %)" if reg.log_som else "")
                    + f" ({reg.source})"
                )

    def _layer(self, value: Any, what: str) -> Any:
        """A number as it is, a raster path opened on the grid (bilinear)."""
        if isinstance(value, float | int):
            return float(value)
        return open_aligned(value, self.grid, resampling="bilinear", what=what)

    def _value(self, layer: Any, gx: Any, gy: Any) -> Any:
        if layer is None or isinstance(layer, float):
            return layer
        return raster_at(self.grid, layer, gx, gy)

    def at(self, metal: str, gx: Any, gy: Any) -> CellInputs:
        """The parameters of ``metal`` at pixel centres ``gx``, ``gy`` (see :func:`raster_at`).

        Cells of a land-use or pH raster's nodata are NaN: their budget, and so their
        projection, is nodata.
        """
        spec, agri = self.spec, self.spec.agriculture
        kd: Any = spec.kd.get(metal)
        if metal in self.regressions:
            reg = self.regressions[metal]
            ph = self._value(self.ph, gx, gy)
            som = self._value(self.som, gx, gy)
            kd = kd_regression(
                ph, intercept=reg.intercept, ph_slope=reg.ph, som=som, som_slope=reg.log_som
            )
        if agri is None:
            return CellInputs(
                fertiliser=spec.fertiliser.get(metal, 0.0),
                manure=spec.manure.get(metal, 0.0),
                irrigation=spec.irrigation_mm * spec.irrigation_mg_l.get(metal, 0.0),
                crop_yield=spec.crop_yield,
                kd=kd,
            )
        if self.scene_rates is not None:
            rate: dict[str, Any] = dict(self.scene_rates)
        else:
            codes = raster_at(self.grid, self.land_use, gx, gy)
            # a code the classes do not name is not projected (NaN), as the risk maps
            # leave it unclassed; the report counts such pixels
            rate = {
                name: per_class(codes, table, default=np.nan, name=f"{name} rate")
                for name, table in self.rates.items()
            }
        return CellInputs(
            fertiliser=application_input(
                rate["fertiliser"], agri.fertiliser_content.get(metal, 0.0)
            ),
            manure=application_input(rate["manure"], agri.manure_content.get(metal, 0.0)),
            irrigation=irrigation_input(
                rate["irrigation"], agri.irrigation_content.get(metal, 0.0)
            ),
            crop_yield=rate["crop_yield"],
            kd=kd,
        )

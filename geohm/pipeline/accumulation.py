"""The accumulation projection of a scene: today's maps carried forward N years (seed 003).

Per pixel and metal, a linear budget dC/dt = a - k C (:mod:`geohm.accumulation`): inputs
from deposition (point sources through the sector-averaged plume, or rasters),
fertiliser, manure and irrigation; outputs by leaching, runoff, erosion (RUSLE, LS from
the DEM) and crop offtake. The projection rides on the prediction pass: each window's
concentration is projected where it is predicted (``predict_map(derive_window=...)``),
so memory stays flat; only the LS factor needs the whole DEM (flow accumulation), once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from geohm.accumulation.budget import Budget
from geohm.accumulation.erosion import ls_factor, rusle
from geohm.accumulation.plume import Stack, WindRose, deposition_map
from geohm.accumulation.projection import closed_form, headroom, steady_state, years_to_exceed
from geohm.config import SceneConfig
from geohm.errors import ConfigError
from geohm.grid import Grid
from geohm.io.emissions import read_stacks, read_wind_rose
from geohm.pipeline.common import log

__all__ = ["AccumulationPlan", "FLUX_TERMS"]

#: The flux terms written as ``<M>_flux_<term>.tif`` (mg/m2/yr; outputs positive).
FLUX_TERMS = (
    "deposition",
    "fertiliser",
    "manure",
    "irrigation",
    "leaching",
    "runoff",
    "erosion",
    "crop",
)


class AccumulationPlan:
    """What the ``accumulation:`` block writes, and how each window is projected.

    Parameters
    ----------
    cfg : SceneConfig
        The job (``accumulation`` set).
    grid : Grid
        The scene grid (projected, metres).
    dem : numpy.ndarray or None
        The DEM on the grid (m), for the LS factor when ``erosion`` is given.
    screening : dict of str to float or None
        The risk plan's screening value per metal (mg/kg).
    metals : list of str
        The mapped metals.

    Raises
    ------
    ConfigError
        Erosion without a DEM, a metal without a screening value, leaching without Kd.
    """

    def __init__(
        self,
        cfg: SceneConfig,
        grid: Grid,
        dem: np.ndarray | None,
        screening: dict[str, Any],
        metals: list[str],
    ) -> None:
        spec = cfg.accumulation
        assert spec is not None
        self.spec = spec
        self.grid = grid
        self.notes: list[str] = []
        self.metals = [m for m in metals if isinstance(screening.get(m), int | float)]
        for m in metals:
            if m not in self.metals:
                self.notes.append(
                    f"{m}: not projected (its screening value is not one number: a pH or "
                    "land-use raster varies it)"
                )
        self.screening = {m: float(screening[m]) for m in self.metals}
        water = spec.percolation_mm > 0 or spec.runoff_mm > 0
        missing = [m for m in self.metals if water and m not in spec.kd]
        if missing:
            raise ConfigError(
                f"accumulation.kd: leaching and runoff need the partition coefficient Kd "
                f"(L/kg) of {missing}; give accumulation.kd: {{{missing[0]}: ...}}"
            )
        self.ls: np.ndarray | None = None
        if spec.erosion is not None:
            if dem is None:
                raise ConfigError("accumulation.erosion needs the DEM (its LS factor): give 'dem:'")
            cell = float(abs(grid.transform.a))
            # flow accumulation needs the whole DEM, once; slope lengths capped at 300 m
            # (Renard et al. 1997: rarely longer; GRASS r.watershed's default), or channel
            # cells get an LS of 1e5
            self.ls = ls_factor(dem, cell, max_slope_length=300.0)
        self.stacks: dict[str, list[Stack]] = {}
        self.rose: WindRose | None = None
        dep = spec.deposition
        if dep is not None and dep.stacks is not None:
            if dep.wind_rose is None:
                raise ConfigError(
                    "accumulation.deposition.stacks needs a wind_rose (CSV: sector_deg, "
                    "speed, class, frequency)"
                )
            table = read_stacks(
                dep.stacks, metals=self.metals, crs=dep.stacks_crs, grid_crs=grid.crs
            )
            freq, speeds, classes = read_wind_rose(dep.wind_rose)
            self.rose = WindRose(freq, speeds, classes)
            self.stacks = {
                m: [
                    Stack(float(r.x), float(r.y), float(r.height), float(getattr(r, m)))
                    for r in table.itertuples(index=False)
                ]
                for m in self.metals
            }
        if dep is not None and dep.illustrative:
            self.notes.append(
                "the point-source emissions are illustrative (made up for the demo), not data"
            )
        years = sorted(set(spec.output_years))
        self.bins = [y for y in years if y < spec.years] + [spec.years]

    # ------------------------------------------------------------------ layers

    def layers(self) -> list[tuple[str, str, str, list[tuple[int, str, str]] | None]]:
        """The rasters: ``(name, description, units, classes or None)``."""
        out: list[tuple[str, str, str, list[tuple[int, str, str]] | None]] = []
        for m in self.metals:
            for y in sorted(set(self.spec.output_years)):
                out.append(
                    (f"{m}_conc_y{y}", f"{m} projected concentration, year {y}", "mg/kg", None)
                )
            out.append(
                (f"{m}_net_flux", f"{m} net flux today (inputs - outputs)", "mg/m2/yr", None)
            )
            for term in FLUX_TERMS:
                out.append((f"{m}_flux_{term}", f"{m} {term} flux today", "mg/m2/yr", None))
            out.append(
                (
                    f"{m}_years_to_exceed",
                    f"{m} years until the screening value",
                    "1",
                    self.classes(),
                )
            )
            out.append((f"{m}_headroom", f"{m} headroom below the screening value", "kg/ha", None))
            out.append((f"{m}_steady_state", f"{m} steady-state concentration C*", "mg/kg", None))
        return out

    def classes(self) -> list[tuple[int, str, str]]:
        """The classes of ``<M>_years_to_exceed.tif``: already above, by period, never."""
        colors = ["#7f0000", "#d7301f", "#fc8d59", "#fdcc8a", "#fef0d9", "#1a9850"]
        out = [(0, "already above", colors[0])]
        start = 0
        for k, y in enumerate(self.bins, start=1):
            out.append(
                (
                    k,
                    f"within {y} years" if start == 0 else f"in {start}-{y} years",
                    colors[min(k, 4)],
                )
            )
            start = y
        out.append((len(self.bins) + 1, f"not within {self.spec.years} years", colors[5]))
        return out

    # ------------------------------------------------------------------ per window

    def derive_window(
        self, window: tuple[int, int, int, int], layers: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Project one predicted window (``predict_map``'s ``derive_window``)."""
        r, c, h, w = window
        spec = self.spec
        t = self.grid.transform
        xs = t.c + t.a * (c + np.arange(w) + 0.5)
        ys = t.f + t.e * (r + np.arange(h) + 0.5)
        soil_loss: Any = 0.0
        ero = spec.erosion or {}
        if self.ls is not None:
            soil_loss = rusle(
                ero.get("R", 0.0),
                ero.get("K", 0.0),
                self.ls[r : r + h, c : c + w],
                ero.get("C", 1.0),
                ero.get("P", 1.0),
            )
        out: dict[str, np.ndarray] = {}
        for m in self.metals:
            c0 = layers[m].astype("float64")
            mapped = np.isfinite(c0)
            dep: Any = 0.0
            if self.rose is not None and self.stacks.get(m):
                dep = deposition_map(
                    self.stacks[m],
                    xs,
                    ys,
                    self.rose,
                    v_d=spec.deposition.v_d if spec.deposition else 0.005,
                    scavenging=spec.deposition.scavenging or None if spec.deposition else None,
                    rain_fraction=spec.deposition.rain_fraction or None
                    if spec.deposition
                    else None,
                    terrain=spec.deposition.terrain if spec.deposition else "rural",
                )
            budget = Budget(
                bulk_density=spec.bulk_density,
                depth=spec.depth,
                deposition=np.where(mapped, dep, np.nan),
                fertiliser=spec.fertiliser.get(m, 0.0),
                manure=spec.manure.get(m, 0.0),
                irrigation=spec.irrigation_mm * spec.irrigation_mg_l.get(m, 0.0),
                percolation=spec.percolation_mm,
                runoff=spec.runoff_mm,
                kd=spec.kd.get(m),
                theta=spec.theta,
                soil_loss=soil_loss,
                sdr=ero.get("sdr", 1.0),
                enrichment=ero.get("enrichment", 1.0),
                crop_yield=spec.crop_yield,
                bcf=spec.bcf.get(m, 0.0),
            )
            a, k = budget.linear_coefficients()
            for y in sorted(set(spec.output_years)):
                out[f"{m}_conc_y{y}"] = _f32(closed_form(c0, a, k, y), mapped)
            fluxes = budget.fluxes(c0)
            out[f"{m}_net_flux"] = _f32(fluxes.net, mapped)
            for term in FLUX_TERMS:
                out[f"{m}_flux_{term}"] = _f32(getattr(fluxes, term), mapped)
            s = self.screening[m]
            never = float(spec.years + 1)
            t_s = years_to_exceed(c0, a, k, s, horizon=spec.years, never=never)
            codes = np.full(c0.shape, 255, dtype="uint8")
            codes[mapped] = np.searchsorted([0.0, *self.bins], t_s[mapped], side="left")
            codes[mapped & (t_s == 0)] = 0
            codes[mapped & (t_s >= never)] = len(self.bins) + 1
            out[f"{m}_years_to_exceed"] = codes
            out[f"{m}_headroom"] = _f32(headroom(c0, s, budget.soil_mass), mapped)
            out[f"{m}_steady_state"] = _f32(steady_state(a, k), mapped)
        return out

    def report(self, per_layer: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
        """report.json's ``accumulation`` block: shares above S now and later, C*."""
        spec = self.spec
        out: dict[str, Any] = {
            "method": "linear mass balance dC/dt = a - k C per pixel, closed form (seed 003; "
            "Moolenaar & Lexmond 1998; RUSLE; sector-averaged Gaussian plume)",
            "years": spec.years,
            "soil_mass_kg_m2": spec.depth * spec.bulk_density,
            "metals": {},
            "notes": self.notes,
        }
        for m in self.metals:
            frac = per_layer.get(f"{m}_years_to_exceed", {}).get("class_area_fraction", {})
            shares = list(frac.values())  # in class order: already, bins..., never
            reached = {"now": shares[0] if shares else None}
            for k, y in enumerate(self.bins, start=1):
                reached[f"year_{y}"] = float(sum(shares[: k + 1])) if shares else None
            # above S in a given year (a pixel above today may fall below later): from the
            # projected map's fine histogram, S placed to within 0.23 % of its value
            s = self.screening[m]
            above = {"now": reached["now"]}
            for y in sorted(set(spec.output_years)):
                st = stats.get(f"{m}_conc_y{y}")
                if st is not None and st.count:
                    above[f"year_{y}"] = st.bin_fractions([s, float("inf")])[0]["fraction"]
            st = per_layer.get(f"{m}_steady_state", {}).get("map_stats")
            out["metals"][m] = {
                "screening_mg_kg": self.screening[m],
                "share_above": above,
                "share_reached": reached,
                "steady_state_mg_kg": st,
            }
        return out


def _f32(values: Any, mapped: np.ndarray) -> np.ndarray:
    """float32, NaN where the concentration is not mapped."""
    out = np.broadcast_to(np.asarray(values, dtype="float64"), mapped.shape).astype("float32")
    out[~mapped] = np.nan
    return out


def dem_on_grid(dem: Any) -> np.ndarray | None:
    """The whole DEM (m) as an array on the scene grid, for the LS factor (None: no DEM)."""
    if dem is None:
        return None
    log.info("accumulation: reading the whole DEM for the LS factor")
    return np.asarray(dem.values, dtype="float64")

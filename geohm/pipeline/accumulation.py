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
from geohm.accumulation.calibration import Calibration, calibrate
from geohm.accumulation.erosion import ls_factor, rusle
from geohm.accumulation.plume import Stack, WindRose, deposition_map
from geohm.accumulation.projection import closed_form, headroom, steady_state, years_to_exceed
from geohm.config import SceneConfig
from geohm.errors import ConfigError, SampleError
from geohm.grid import Grid
from geohm.io.emissions import read_stacks, read_wind_rose
from geohm.io.reading import open_aligned
from geohm.pipeline.common import log
from geohm.pipeline.practice import LocalParameters, raster_at

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
                why = (
                    "the standard has no screening value for it"
                    if screening.get(m) is None
                    else "its screening value is not one number: a pH or land-use raster varies it"
                )
                self.notes.append(f"{m}: not projected ({why})")
        per_metal: dict[str, dict[str, Any]] = {
            "fertiliser": spec.fertiliser,
            "manure": spec.manure,
            "irrigation_mg_l": spec.irrigation_mg_l,
            "kd": spec.kd,
            "bcf": spec.bcf,
        }
        for key, values in per_metal.items():
            unknown = sorted(set(values) - set(metals))
            if unknown:
                raise ConfigError(
                    f"accumulation.{key}: {unknown} are not mapped metals ({metals}); "
                    "name each value by its metal, as in samples.targets"
                )
        ero = spec.erosion or {}
        for factor, default in (("C", 1.0), ("P", 1.0), ("sdr", 1.0), ("enrichment", 1.0)):
            if spec.erosion is not None and factor not in ero:
                self.notes.append(f"erosion factor {factor} not given: {default} used")
        if spec.erosion is not None and not {"R", "K"} <= set(ero):
            raise ConfigError(
                "accumulation.erosion needs the RUSLE factors R (MJ mm/(ha h yr)) and K "
                "(t ha h/(ha MJ mm)); give both"
            )
        self.screening = {m: float(screening[m]) for m in self.metals}
        #: Land-use practice and Kd, per cell (numbers or rasters).
        self.local = LocalParameters(spec, cfg.risk, grid, metals)
        self.notes.extend(self.local.notes)
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
        #: Metal -> a given deposition raster (mg/m2/yr), warped onto the grid, read per
        #: window (a metal with stacks too gets both).
        self.dep_rasters: dict[str, Any] = {}
        if dep is not None:
            unknown = sorted(set(dep.rasters) - set(metals))
            if unknown:
                raise ConfigError(
                    f"accumulation.deposition.rasters: {unknown} are not mapped metals "
                    f"({metals}); name the rasters by metal"
                )
            self.dep_rasters = {
                m: open_aligned(path, grid, what=f"{m} deposition raster")
                for m, path in dep.rasters.items()
                if m in self.metals
            }
        if dep is not None and dep.illustrative:
            self.notes.append(
                "the point-source emissions are illustrative (made up for the demo), not data"
            )
        years = sorted(set(spec.output_years))
        self.bins = [y for y in years if y < spec.years] + [spec.years]
        #: Metal -> the two-survey correction of the net input (set by :meth:`calibrate`).
        self.calibration: dict[str, Calibration] = {}
        self.calibration_features: list[str] = []

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
            if m in self.calibration and self.calibration[m].kept:
                text = f"{m} two-survey correction of the net input"
                out.append((f"{m}_flux_calibration", text, "mg/m2/yr", None))
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

    def _soil_loss(self, rows: Any, cols: Any) -> Any:
        """RUSLE soil loss A (t/ha/yr) at grid cells ``[rows, cols]`` (0 without erosion)."""
        ero = self.spec.erosion or {}
        if self.ls is None:
            return 0.0
        return rusle(
            ero.get("R", 0.0),
            ero.get("K", 0.0),
            self.ls[rows, cols],
            ero.get("C", 1.0),
            ero.get("P", 1.0),
        )

    def _budget(self, m: str, gx: Any, gy: Any, soil_loss: Any, mapped: np.ndarray) -> Budget:
        """The budget of ``m`` at the cells of pixel-centre coordinates ``gx``, ``gy`` (m)."""
        spec, dep_spec = self.spec, self.spec.deposition
        ero = spec.erosion or {}
        dep: Any = 0.0
        if m in self.dep_rasters:
            dep = raster_at(self.grid, self.dep_rasters[m], gx, gy, fill=0.0)
        if self.rose is not None and self.stacks.get(m) and dep_spec is not None:
            dep = dep + deposition_map(
                self.stacks[m],
                gx,
                gy,
                self.rose,
                v_d=dep_spec.v_d,
                scavenging=dep_spec.scavenging or None,
                rain_fraction=dep_spec.rain_fraction or None,
                terrain=dep_spec.terrain,
            )
        local = self.local.at(m, gx, gy)
        return Budget(
            bulk_density=spec.bulk_density,
            depth=spec.depth,
            deposition=np.where(mapped, dep, np.nan),
            fertiliser=local.fertiliser,
            manure=local.manure,
            irrigation=local.irrigation,
            percolation=spec.percolation_mm,
            runoff=spec.runoff_mm,
            kd=local.kd,
            theta=spec.theta,
            soil_loss=soil_loss,
            sdr=ero.get("sdr", 1.0),
            enrichment=ero.get("enrichment", 1.0),
            crop_yield=local.crop_yield,
            bcf=spec.bcf.get(m, 0.0),
        )

    def coefficients_at(self, m: str, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The budget's a (mg/kg/yr) and k (1/yr) of ``m`` at points ``xy`` (grid CRS, m).

        Each point takes its pixel's LS factor and the deposition at its own position.
        """
        inv = ~self.grid.transform
        col, row = inv * (xy[:, 0], xy[:, 1])
        rows = np.clip(np.floor(row).astype(int), 0, self.grid.height - 1)
        cols = np.clip(np.floor(col).astype(int), 0, self.grid.width - 1)
        mapped = np.ones((1, len(xy)), dtype=bool)
        b = self._budget(
            m,
            xy[None, :, 0],
            xy[None, :, 1],
            self._soil_loss(rows, cols)[None, :] if self.ls is not None else 0.0,
            mapped,
        )
        a, k = b.linear_coefficients()
        return np.broadcast_to(a, mapped.shape)[0], np.broadcast_to(k, mapped.shape)[0]

    def derive_window(
        self,
        window: tuple[int, int, int, int],
        layers: dict[str, np.ndarray],
        block: np.ndarray,
        features: list[str],
    ) -> dict[str, np.ndarray]:
        """Project one predicted window (``predict_map``'s ``derive_window``)."""
        r, c, h, w = window
        spec = self.spec
        t = self.grid.transform
        xs = t.c + t.a * (c + np.arange(w) + 0.5)
        ys = t.f + t.e * (r + np.arange(h) + 0.5)
        soil_loss = self._soil_loss(slice(r, r + h), slice(c, c + w))
        out: dict[str, np.ndarray] = {}
        for m in self.metals:
            c0 = layers[m].astype("float64")
            mapped = np.isfinite(c0)
            budget = self._budget(m, xs, ys, soil_loss, mapped)
            a, k = budget.linear_coefficients()
            cal = self.calibration.get(m)
            if cal is not None and cal.kept:
                index = [features.index(f) for f in self.calibration_features]
                X = block[index].reshape(len(index), -1).T
                flat = np.zeros(h * w)
                ok = mapped.ravel() & np.isfinite(X).all(axis=1)
                if ok.any():
                    flat[ok] = cal.delta(X[ok])
                delta = flat.reshape(h, w)
                a = a + delta
                out[f"{m}_flux_calibration"] = _f32(delta * budget.soil_mass, mapped)
            for y in sorted(set(spec.output_years)):
                # a negative net input (a calibration's unmodelled loss) cannot take the
                # soil below 0 mg/kg
                out[f"{m}_conc_y{y}"] = _f32(np.maximum(closed_form(c0, a, k, y), 0.0), mapped)
            fluxes = budget.fluxes(c0)
            net = fluxes.net + (
                out[f"{m}_flux_calibration"] if f"{m}_flux_calibration" in out else 0.0
            )
            out[f"{m}_net_flux"] = _f32(net, mapped)
            for term in FLUX_TERMS:
                out[f"{m}_flux_{term}"] = _f32(getattr(fluxes, term), mapped)
            s = self.screening[m]
            never = float(spec.years + 1)
            t_s = years_to_exceed(c0, a, k, s, horizon=spec.years, never=never)
            codes = np.full(c0.shape, 255, dtype="uint8")
            codes[mapped] = np.searchsorted([0.0, *self.bins], t_s[mapped], side="left")
            codes[mapped & (t_s == 0)] = 0
            codes[mapped & (t_s >= never)] = len(self.bins) + 1
            codes[mapped & np.isnan(t_s)] = 255  # not projectable (no LS next to DEM holes)
            out[f"{m}_years_to_exceed"] = codes
            out[f"{m}_headroom"] = _f32(headroom(c0, s, budget.soil_mass), mapped)
            out[f"{m}_steady_state"] = _f32(np.maximum(steady_state(a, k), 0.0), mapped)
        return out

    def calibrate(
        self,
        c0: dict[str, np.ndarray],
        c1: dict[str, np.ndarray],
        X: np.ndarray,
        xy: np.ndarray,
        features: list[str],
        *,
        seed: int,
    ) -> dict[str, Any]:
        """Correct each metal's net input by the change seen between the two surveys.

        Parameters
        ----------
        c0, c1 : dict of str to numpy.ndarray
            Metal -> the source-year concentration at the target samples (the source
            year's model, mg/kg) and the target year's observed value there (mg/kg).
        X : numpy.ndarray
            (n, len(features)) the target year's cube features at those samples.
        xy : numpy.ndarray
            (n, 2) their coordinates (grid CRS, m).
        features : list of str
            The columns of ``X`` (cube features): the correction's inputs in every window.
        seed : int
            The scene seed.

        Returns
        -------
        dict
            Metal -> :meth:`geohm.accumulation.calibration.Calibration.to_report`, or
            ``{"skipped": reason}``.
        """
        dt = self.spec.calibration_years
        assert dt is not None
        self.calibration_features = list(features)
        out: dict[str, Any] = {}
        for m in self.metals:
            if m not in c0:
                out[m] = {"skipped": f"no source-year samples of {m}"}
                continue
            a, k = self.coefficients_at(m, xy)
            try:
                cal = calibrate(c0[m], c1[m], a, k, float(dt), X, xy, seed=seed)
            except SampleError as exc:
                out[m] = {"skipped": str(exc)}
                continue
            self.calibration[m] = cal
            out[m] = {**cal.to_report(), "years_between_surveys": dt}
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
            mapped_px, classed = stats.get(m), stats.get(f"{m}_years_to_exceed")
            if mapped_px is not None and classed is not None and mapped_px.count > classed.count:
                self.notes.append(
                    f"{m}: {mapped_px.count - classed.count} mapped pixels not projected (no "
                    "LS factor next to DEM holes or at the DEM's edge, nodata in the land-use, "
                    "pH or organic-matter raster, or a land-use code that "
                    "agriculture.land_use.classes does not name): nodata in the projection"
                )
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

"""Area above the standard per zone and where to sample next, fed by the prediction pass.

Both need every map window's P(C > S), interval and dissimilarity index, so they ride on
the one prediction pass (``predict_map(on_window=...)``) instead of reading the written
maps again; memory stays flat (accumulators, a bounded candidate pool).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pyproj import Transformer

from geohm.config import SceneConfig
from geohm.errors import ConfigError
from geohm.grid import Grid
from geohm.io.point_styles import write_qml_points
from geohm.io.rasters import read_overview
from geohm.io.reports import save_figure
from geohm.io.styles import write_qml_zones
from geohm.io.zones import Zones, read_zones, write_next_samples, write_zones
from geohm.predict import TargetModel
from geohm.report import next_samples_figure
from geohm.risk.zones import ExceedanceAreas, areas_report, zone_columns
from geohm.riskmaps import RiskPlan
from geohm.sampledesign import NextSamples

__all__ = ["TrustMaps"]


class TrustMaps:
    """The ``zones:`` and ``sampling_design:`` outputs of a scene, window by window.

    Parameters
    ----------
    cfg : SceneConfig
        The job (its ``zones``, ``sampling_design`` and output folder).
    grid : Grid
        The map grid (projected: areas in m^2).
    models : mapping of str to TargetModel
        The targets' models (whether they give intervals).
    plan : RiskPlan or None
        The risk plan: which targets have an exceedance map.

    Raises
    ------
    ConfigError
        ``zones`` or ``sampling_design`` without a risk block or an exceedance map.
    """

    def __init__(
        self, cfg: SceneConfig, grid: Grid, models: dict[str, TargetModel], plan: Any
    ) -> None:
        self.cfg = cfg
        self.grid = grid
        self.notes: list[str] = []
        asked = [k for k in ("zones", "sampling_design") if getattr(cfg, k) is not None]
        targets = plan.exceedance_targets if isinstance(plan, RiskPlan) else []
        if asked and not targets:
            raise ConfigError(
                f"scene '{cfg.name}': {' and '.join(asked)} need the probability that each "
                "pixel exceeds the screening value: add a 'risk:' block, and a model that "
                "gives a predictive distribution (rf, gbm, ga-bp, auto, ...)"
            )
        left = [t for t in models if t not in targets]
        if asked and left:
            self.notes.append(
                f"no exceedance map for {', '.join(left)} (its model gives no predictive "
                "distribution or the standard has no screening value): left out of "
                + " and ".join(asked)
            )
        self.screening: dict[str, Any] = dict(plan.screening) if isinstance(plan, RiskPlan) else {}
        self.zones: Zones | None = None
        self.areas: dict[str, ExceedanceAreas] = {}
        if cfg.zones is not None:
            self.zones = read_zones(cfg.zones.path, cfg.zones.id, grid=grid, layer=cfg.zones.layer)
            area = abs(grid.transform.a * grid.transform.e - grid.transform.b * grid.transform.d)
            self.areas = {
                t: ExceedanceAreas(
                    t,
                    pixel_area_m2=area,
                    n_zones=self.zones.n,
                    bounds=models[t].interval is not None,
                )
                for t in targets
            }
        self.design: dict[str, NextSamples] = {}
        if cfg.sampling_design is not None:
            sd = cfg.sampling_design
            self.design = {
                t: NextSamples(
                    grid.transform, n=sd.n, min_spacing_m=sd.min_spacing_m, pool_size=sd.pool_size
                )
                for t in targets
                if models[t].interval is not None
            }
            for t in targets:
                if t not in self.design:
                    self.notes.append(
                        f"{t}: no next samples (its model gives no prediction interval; "
                        "output.uncertainty is off)"
                    )

    @property
    def active(self) -> bool:
        """Whether anything is accumulated (zones or a sampling design)."""
        return bool(self.areas or self.design or self.cfg.sampling_design is not None)

    def on_window(self, window: tuple[int, int, int, int], layers: dict[str, np.ndarray]) -> None:
        """Add one predicted window (``predict_map``'s ``on_window``)."""
        r, c, h, w = window
        codes = self.zones.rasterize_window(r, c, h, w) if self.zones is not None else None
        for t, acc in self.areas.items():
            acc.update(
                codes,
                layers[f"{t}_exceedance"],
                lower=layers.get(f"{t}_lower"),
                upper=layers.get(f"{t}_upper"),
                screening=layers.get(f"{t}_screening"),
            )
        for t, ns in self.design.items():
            ns.update(
                r, c, layers[f"{t}_exceedance"], layers[f"{t}_uncertainty"], layers.get(f"{t}_di")
            )

    def finish(self, points_xy: np.ndarray | None) -> tuple[dict[str, Any], list[Path]]:
        """Write zones.gpkg and next_samples.gpkg/.csv (with styles); their report blocks.

        Parameters
        ----------
        points_xy : numpy.ndarray or None
            The existing samples (grid CRS, m): suggestions keep their distance.

        Returns
        -------
        tuple of (dict, list of pathlib.Path)
            report.json blocks ``zones`` and ``next_samples``, and the files written.
        """
        out_dir = Path(self.cfg.output.dir)
        report: dict[str, Any] = {}
        files: list[Path] = []
        if self.zones is not None and self.areas:
            results = [a.result() for a in self.areas.values()]
            path = write_zones(self.zones, zone_columns(results), out_dir / "zones.gpkg")
            first = next(iter(self.areas))
            files += [
                path,
                write_qml_zones(path.with_suffix(".qml"), field=f"{first}_expected_share"),
            ]
            assert self.cfg.zones is not None
            report["zones"] = {
                "file": path.name,
                "id": self.cfg.zones.id,
                "screening_mg_kg": {
                    t: v if isinstance(v, int | float) else "per pixel"
                    for t, v in self.screening.items()
                    if t in self.areas
                },
                "metals": areas_report(results, self.zones.ids),
                "zones_outside_grid": [str(z) for z in self.zones.outside_grid()],
            }
        if self.design:
            import pandas as pd

            frames, notes, exact = [], list(self.notes), True
            for t, ns in self.design.items():
                found = ns.select(points_xy)
                frames.append(found.points.assign(target=t))
                notes += [f"{t}: {note}" for note in found.notes]
                exact &= bool(found.exact)
            points = pd.concat(frames, ignore_index=True)
            to_wgs84 = Transformer.from_crs(self.grid.crs, "EPSG:4326", always_xy=True)
            points["lon"], points["lat"] = to_wgs84.transform(
                points["x"].to_numpy(), points["y"].to_numpy()
            )
            gpkg, csv = write_next_samples(points, crs=self.grid.crs, folder=out_dir)
            files += [gpkg, csv, write_qml_points(gpkg.with_suffix(".qml"))]
            pngs = []
            for t, p in points.groupby("target", sort=False):
                if not self.cfg.output.quicklooks:
                    break
                arr, extent = read_overview(out_dir / f"{t}_exceedance.tif", max_size=800)
                fig = next_samples_figure(
                    arr,
                    extent,
                    title=f"{self.cfg.name}: where to sample next ({t})",
                    existing=points_xy,
                    suggested=p[["x", "y"]].to_numpy(),
                )
                pngs.append(save_figure(fig, out_dir / f"next_samples_{t}.png"))
            files += pngs
            assert self.cfg.sampling_design is not None
            report["next_samples"] = {
                "files": [gpkg.name, csv.name],
                "targets": list(self.design),
                "target": ", ".join(self.design),
                "n": self.cfg.sampling_design.n,
                "min_spacing_m": self.cfg.sampling_design.min_spacing_m,
                "points": _rows(points.groupby("target").head(10)),
                "notes": notes,
                "exact": exact,
                "quicklooks": [p.name for p in pngs],
            }
        if self.cfg.sampling_design is not None and not self.design:
            report["next_samples"] = {"skipped": list(self.notes), "points": []}
        if "zones" in report and self.notes:
            report["zones"]["notes"] = list(self.notes)
        return report, files


def _rows(points: Any) -> list[dict[str, Any]]:
    """JSON rows of a points table (floats rounded to what a report shows)."""
    keep = [
        c
        for c in (
            "target",
            "rank",
            "x",
            "y",
            "lon",
            "lat",
            "score",
            "closeness",
            "width_share",
            "di",
            "probability",
            "nearest_sample_m",
        )
        if c in points.columns
    ]
    return [
        {k: (round(float(v), 6) if isinstance(v, float | np.floating) else v) for k, v in r.items()}
        for r in points[keep].to_dict("records")
    ]

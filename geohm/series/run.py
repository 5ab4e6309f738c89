"""``geohm series SERIES.yaml``: validate, forecast and warn, and write it all.

:func:`run_series` reads the long table (:mod:`geohm.io.series`), puts it on the time
step (:func:`geohm.series.data.regularise`), and for each metal

1. validates every model by rolling origin and by leaving sites out
   (:mod:`geohm.series.validate`, :func:`geohm.series.forecast.forecast_split`): RMSE,
   MAE and skill against persistence per horizon, and the LSTM interval's coverage;
2. fits on everything and forecasts every site ``H`` steps past the last one;
3. gives each site the probability of exceeding the metal's limit within the horizon
   and its warning level (:mod:`geohm.series.warning`).

It writes into the output folder (held and locked as a scene job's,
:func:`geohm.io.outdir.output_folder`; ``manifest.json`` last): ``series_warning.gpkg``
(a point per site and metal), ``series_warning.csv``, ``series_forecast.csv``,
``series_metrics.csv``, ``series/<site>.png``, ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from geohm.io.outdir import job_fingerprint, output_folder
from geohm.io.reports import save_figure, write_csv, write_json, write_text
from geohm.io.series import (
    SeriesTable,
    read_series_table,
    write_warning_layer,
    write_warning_style,
)
from geohm.series.config import SeriesConfig, load_series_config
from geohm.series.data import SeriesPanel, regularise
from geohm.series.figures import SitePanel, site_figure
from geohm.series.forecast import MODELS, Forecasts, forecast_split
from geohm.series.report import series_markdown
from geohm.series.validate import (
    Split,
    leave_sites_out_splits,
    metrics_by_horizon,
    rolling_origin_splits,
)
from geohm.series.warning import exceedance_probability, warning_levels

__all__ = ["SeriesResult", "evaluate_metal", "run_series"]

Progress = Callable[[str, int, int], None]


@dataclass
class SeriesResult:
    """What :func:`run_series` computed and wrote.

    Attributes
    ----------
    config : SeriesConfig
        The job.
    panel : SeriesPanel
        The regular series.
    metrics : pandas.DataFrame
        ``metal``, ``scheme``, ``model``, ``horizon``, ``n``, ``rmse``, ``mae``, ``skill``.
    coverage : pandas.DataFrame
        ``metal``, ``scheme``, ``horizon``, ``n``, ``coverage`` of the LSTM interval.
    warnings : pandas.DataFrame
        One row per site and metal: the warning table (also series_warning.gpkg).
    forecasts : pandas.DataFrame
        One row per site, metal and step ahead: mean, interval, P(exceed).
    report : dict
        The report.json content.
    out_dir : pathlib.Path
        The output folder.
    outputs : list of pathlib.Path
        The files written.
    """

    config: SeriesConfig
    panel: SeriesPanel
    metrics: pd.DataFrame
    coverage: pd.DataFrame
    warnings: pd.DataFrame
    forecasts: pd.DataFrame
    report: dict[str, Any]
    out_dir: Path
    outputs: list[Path] = field(default_factory=list)


def _lstm_params(cfg: SeriesConfig) -> dict[str, Any]:
    s = cfg.lstm
    return {
        "hidden_size": s.hidden,
        "num_layers": s.layers,
        "dropout": s.dropout,
        "n_members": s.members,
        "max_epochs": s.epochs,
        "learning_rate": s.learning_rate,
        "weight_decay": s.weight_decay,
        "batch_size": s.batch,
        "device": s.device,
    }


def _date(panel: SeriesPanel, step: int) -> str:
    return str(panel.periods[step])


def evaluate_metal(
    panel: SeriesPanel, k: int, cfg: SeriesConfig, progress: Progress | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, Any]]]:
    """Rolling-origin and leave-sites-out validation of every model on metal ``k``.

    Parameters
    ----------
    panel : SeriesPanel
        The series.
    k : int
        Metal index.
    cfg : SeriesConfig
        The job (horizon, lags, validation, LSTM settings).
    progress : callable, optional
        Called ``(stage, done, total)`` after each split.

    Returns
    -------
    metrics : pandas.DataFrame
        ``scheme``, ``model``, ``horizon``, ``n``, ``rmse``, ``mae``, ``skill``.
    coverage : pandas.DataFrame
        ``scheme``, ``horizon``, ``n``, ``coverage`` (LSTM interval).
    splits : list of dict
        Each split: scheme, label, cutoff (a period), training windows, sites forecast,
        sites not forecast (no sample before the cutoff), seasonal-naive fallbacks.
    """
    nt = panel.values.shape[1]
    with_metal = np.flatnonzero(np.isfinite(panel.values[:, :, k]).any(axis=1))
    v = cfg.validation
    ro = rolling_origin_splits(
        nt, len(with_metal), horizon=cfg.horizon, origins=v.origins, stride=cfg.stride,
        min_train=cfg.lags + cfg.horizon,
    )
    lso = (
        leave_sites_out_splits(len(with_metal), cutoff=ro[-1].cutoff, folds=v.site_folds,
                               seed=v.seed)
        if ro
        else []
    )
    splits: list[Split] = ro + lso
    z = float(norm.ppf(0.5 + cfg.warning.interval / 2))
    metric_rows, cover_rows, info = [], [], []
    results: dict[str, list[Forecasts]] = {"rolling_origin": [], "leave_sites_out": []}
    for j, sp in enumerate(splits):
        f = forecast_split(
            panel, k, cutoff=sp.cutoff, train_sites=with_metal[sp.train_sites],
            test_sites=with_metal[sp.test_sites], lags=cfg.lags, horizon=cfg.horizon,
            lstm_params=_lstm_params(cfg), ridge_alpha=cfg.ridge_alpha, seed=v.seed,
        )
        results[sp.scheme].append(f)
        info.append(
            {
                "scheme": sp.scheme, "label": sp.label, "cutoff": _date(panel, sp.cutoff),
                "train_windows": f.n_train, "sites_forecast": len(f.sites),
                "sites_not_forecast": [panel.sites[i] for i in f.not_forecast],
                "seasonal_naive_fallbacks": f.fallbacks,
            }
        )
        if progress is not None:
            progress(f"validate {panel.metals[k]}", j + 1, len(splits))
    for scheme, fs in results.items():
        if not fs:
            continue
        truth = np.concatenate([f.truth for f in fs])
        means = {m: np.concatenate([f.mean[m] for f in fs]) for m in MODELS}
        table = metrics_by_horizon(truth, means)
        table.insert(0, "scheme", scheme)
        metric_rows.append(table)
        sd = np.concatenate([f.lstm_std for f in fs])
        inside = np.abs(truth - means["lstm"]) <= z * sd
        for h in range(cfg.horizon):
            ok = np.isfinite(truth[:, h])
            cover_rows.append(
                {"scheme": scheme, "horizon": h + 1, "n": int(ok.sum()),
                 "coverage": float(inside[ok, h].mean()) if ok.any() else np.nan}
            )
    metrics = pd.concat(metric_rows, ignore_index=True) if metric_rows else pd.DataFrame()
    return metrics, pd.DataFrame(cover_rows), info


def _final(
    panel: SeriesPanel, k: int, cfg: SeriesConfig, table: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, Forecasts]:
    """Fit on everything, forecast every site past the last step, warn."""
    nt = panel.values.shape[1]
    with_metal = np.flatnonzero(np.isfinite(panel.values[:, :, k]).any(axis=1))
    f = forecast_split(
        panel, k, cutoff=nt - 1, train_sites=with_metal, test_sites=with_metal,
        lags=cfg.lags, horizon=cfg.horizon, lstm_params=_lstm_params(cfg),
        ridge_alpha=cfg.ridge_alpha, seed=cfg.validation.seed,
    )
    metal = panel.metals[k]
    limit = cfg.warning.thresholds[metal]
    p_step, p_within = exceedance_probability(f.lstm_member_mean, f.lstm_member_std, limit)
    levels = warning_levels(p_within, cfg.warning.levels)
    z = float(norm.ppf(0.5 + cfg.warning.interval / 2))
    lower = np.maximum(f.mean["lstm"] - z * f.lstm_std, 0.0)
    upper = f.mean["lstm"] + z * f.lstm_std
    future = panel.periods[-1] + np.arange(1, cfg.horizon + 1)
    warn_rows, fc_rows = [], []
    for r, i in enumerate(f.sites):
        site = panel.sites[i]
        samples = table[(table["site"] == site) & table[metal].notna()]
        last = samples.iloc[-1] if len(samples) else None
        row: dict[str, Any] = {
            "site": site, "metal": metal, "units": cfg.data.units, "threshold": limit,
            "last_time": str(last["time"].date()) if last is not None else "",
            "last_value": float(last[metal]) if last is not None else np.nan,
            "last_above": bool(last is not None and last[metal] > limit),
            "p_exceed": float(p_within[r]), "level": str(levels[r]),
        }
        for h in range(cfg.horizon):
            row[f"forecast_h{h + 1}"] = float(f.mean["lstm"][r, h])
            row[f"p_h{h + 1}"] = float(p_step[r, h])
            fc_rows.append(
                {"site": site, "metal": metal, "step": str(future[h]), "h": h + 1,
                 "mean": float(f.mean["lstm"][r, h]), "lower": float(lower[r, h]),
                 "upper": float(upper[r, h]), "p_exceed": float(p_step[r, h]),
                 **{m: float(f.mean[m][r, h]) for m in MODELS if m != "lstm"}}
            )
        row["x"], row["y"] = panel.coords[i]
        warn_rows.append(row)
    return pd.DataFrame(warn_rows), pd.DataFrame(fc_rows), f


def _read(cfg: SeriesConfig) -> SeriesTable:
    d = cfg.data
    return read_series_table(
        d.path, metals=d.metals, covariates=d.covariates, site=d.site, time=d.time,
        time_format=d.time_format, x=d.x, y=d.y, crs=d.crs, layer=d.layer, sites=d.sites,
    )


def run_series(
    config_path: Path | str | os.PathLike[str],
    out_dir: Path | str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> SeriesResult:
    """Run a ``geohm series`` job (see the module docstring).

    Parameters
    ----------
    config_path : path-like
        The SERIES.yaml.
    out_dir : path-like, optional
        Overrides ``output.dir`` (the command line's ``--out``).
    progress : callable, optional
        Called ``(stage, done, total)`` as the job advances.

    Returns
    -------
    SeriesResult

    Raises
    ------
    ConfigError
        The YAML is invalid (the message names the key).
    InputError
        The table is missing, lacks a column, has a bad time value or a site without
        coordinates (the message names the file and column).
    OutputError
        The output folder is unusable or a write failed.
    """
    t0 = time.perf_counter()
    cfg = load_series_config(config_path, output_dir=out_dir)
    out = Path(cfg.output.dir)
    with output_folder(out) as folder:
        job = job_fingerprint(cfg, command="series")
        read = _read(cfg)
        panel = regularise(
            read.table, read.sites, metals=cfg.data.metals, covariates=cfg.data.covariates,
            step=cfg.step, aggregate=cfg.aggregate, season=cfg.season_length,
            min_observations=cfg.min_observations, source=read.source,
        )
        metrics, coverage, warns, fcs, per_metal = [], [], [], [], {}
        n_params = 0
        for k, metal in enumerate(panel.metals):
            m, c, splits = evaluate_metal(panel, k, cfg, progress)
            w, fc, final = _final(panel, k, cfg, read.table)
            n_params = final.lstm.n_parameters()
            if progress is not None:
                progress(f"forecast {metal}", k + 1, len(panel.metals))
            metrics.append(m.assign(metal=metal))
            coverage.append(c.assign(metal=metal))
            warns.append(w)
            fcs.append(fc)
            per_metal[metal] = {
                "threshold": cfg.warning.thresholds[metal],
                "splits": splits,
                "metrics": m.to_dict("records"),
                "coverage": c.to_dict("records"),
                "warnings": w.drop(columns=["x", "y"]).to_dict("records"),
                "levels": {lv: int((w["level"] == lv).sum()) for lv in ("low", "medium", "high")},
            }
        result = SeriesResult(
            cfg, panel, pd.concat(metrics, ignore_index=True),
            pd.concat(coverage, ignore_index=True), pd.concat(warns, ignore_index=True),
            pd.concat(fcs, ignore_index=True), {}, out,
        )
        folder.clear_previous()
        outputs = _write(result, read, per_metal, n_params, t0, progress)
        folder.seal(outputs, job)
        result.outputs = outputs
    return result


def _write(
    result: SeriesResult,
    read: SeriesTable,
    per_metal: dict[str, Any],
    n_params: int,
    t0: float,
    progress: Progress | None,
) -> list[Path]:
    cfg, panel, out = result.config, result.panel, result.out_dir
    outputs = [
        write_warning_layer(out / "series_warning.gpkg", result.warnings, crs=read.crs),
        write_warning_style(out / "series_warning.qml"),
        write_csv(out / "series_warning.csv", result.warnings.set_index(["site", "metal"])),
        write_csv(out / "series_forecast.csv", result.forecasts.set_index(["site", "metal"])),
        write_csv(out / "series_metrics.csv", result.metrics.set_index(["metal", "scheme"])),
    ]
    figures: list[str] = []
    if cfg.output.plots:
        for j, site in enumerate(panel.sites):
            panels = []
            for metal in panel.metals:
                wt, ft = result.warnings, result.forecasts
                w = wt[(wt.site == site) & (wt.metal == metal)]
                fc = ft[(ft.site == site) & (ft.metal == metal)]
                if w.empty:
                    continue
                s = read.table[(read.table.site == site) & read.table[metal].notna()]
                panels.append(
                    SitePanel(
                        metal, cfg.data.units, s["time"].to_numpy(), s[metal].to_numpy(),
                        pd.PeriodIndex(fc["step"], freq=panel.periods.freq).start_time.to_numpy(),
                        fc["mean"].to_numpy(), fc["lower"].to_numpy(), fc["upper"].to_numpy(),
                        float(w["threshold"].iloc[0]), cfg.warning.interval,
                        float(w["p_exceed"].iloc[0]), str(w["level"].iloc[0]),
                    )
                )
            if panels:
                name = f"series/{_safe(site)}.png"
                save_figure(site_figure(site, panels), out / name)
                figures.append(name)
            if progress is not None:
                progress("figures", j + 1, len(panel.sites))
    mask = panel.mask
    report: dict[str, Any] = {
        "name": cfg.name,
        "config": cfg.model_dump(mode="json"),
        "horizon": cfg.horizon,
        "lags": cfg.lags,
        "seed": cfg.validation.seed,
        "units": cfg.data.units,
        "interval": cfg.warning.interval,
        "levels": list(cfg.warning.levels),
        "lstm": {"members": cfg.lstm.members, "parameters": n_params,
                 "epochs": cfg.lstm.epochs, "hidden": cfg.lstm.hidden},
        "data": {
            "source": read.source, "rows": len(read.table), "sites": len(panel.sites),
            "first": str(panel.periods[0]), "last": str(panel.periods[-1]),
            "steps": len(panel.periods), "step": cfg.step, "season": panel.season,
            "observed_share": float(mask.mean()), "crs": read.crs,
            "notes": [*read.notes, *panel.notes],
        },
        "left_out": [*read.left_out, *panel.left_out],
        "metals": per_metal,
        "figures": figures,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    names = [p.name for p in outputs] + ["report.json", "report.md"]
    report["outputs"] = names + figures
    result.report = report
    outputs.append(write_json(out / "report.json", report))
    outputs.append(write_text(out / "report.md", series_markdown(report)))
    return outputs


def _safe(site: str) -> str:
    """A site id as a file name (characters other than letters, digits, ``-_.`` -> ``_``)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in site) or "_"

"""Monitoring-well series (issue 17 part 2): the LSTM against the baselines, by horizon.

Two data sets, each run through ``geohm series`` (:func:`geohm.series.run_series`) once
per seed (``validation.seed``: the LSTM's initialisation and batches and the dealing of
sites into leave-sites-out folds):

- **synthetic**: 20 wells, 120 months of Cd (ug/l) with a recharge season, a quarter of
  the wells rising through the 5 ug/l limit, leaching after wet months and AR(1) noise,
  20 % of the months unsampled plus longer gaps (:mod:`geohm.synth.wells`, data seed 0);
  monthly steps, horizon 3 months, 12 months of history, 4 rolling origins 3 months
  apart, 4 site folds at the last origin;
- **tull**: gstat's Tullnerfeld chloride (mg/l), 31 of 36 wells with at least 8 sampled
  quarters, 1992Q1-1997Q1 (``scenes/series_tull.yaml``): quarterly steps, horizon 2
  quarters, 4 quarters of history, 4 rolling origins a quarter apart, 4 site folds. About
  20 values a well: this shows the series load, validate and report, not that an LSTM
  wins.

The table gives RMSE / MAE (data units) and the skill against persistence
(``1 - RMSE / RMSE_persistence`` on the same targets) per horizon, as mean (sd) over the
seeds. Run by hand:

    OMP_NUM_THREADS=1 python benchmarks/series.py               # seeds 0, 1, 2
    OMP_NUM_THREADS=1 python benchmarks/series.py --seeds 0     # one seed
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

from geohm.series import run_series
from geohm.synth.wells import write_synthetic_wells

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "series"
TULL_YAML = ROOT / "scenes" / "series_tull.yaml"


def _tull_config(seed: int) -> Path:
    text = TULL_YAML.read_text().replace("seed: 0}", f"seed: {seed}}}")
    path = WORK / f"tull_seed{seed}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _runs(name: str, seeds: list[int]) -> pd.DataFrame:
    frames = []
    for seed in seeds:
        t0 = time.perf_counter()
        if name == "synthetic":
            cfg = write_synthetic_wells(WORK / f"synthetic_seed{seed}", seed=0, lstm_seed=seed)
        else:
            cfg = _tull_config(seed)
        r = run_series(cfg, WORK / f"out_{name}_seed{seed}")
        print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s", flush=True)
        frames.append(r.metrics.assign(seed=seed))
    return pd.concat(frames, ignore_index=True)


def _table(m: pd.DataFrame, scheme: str) -> str:
    m = m[m.scheme == scheme]
    horizons = sorted(m.horizon.unique())
    g = m.groupby(["model", "horizon"])
    mean, sd = g[["rmse", "mae", "skill"]].mean(), g[["rmse", "mae", "skill"]].std()
    n = g["n"].mean()
    several = m.seed.nunique() > 1
    head = "| model | " + " | ".join(
        f"h={h} (n={n.loc[('persistence', h)]:.0f}) RMSE / MAE / skill" for h in horizons
    )
    lines = [head + " |", "|---" * (len(horizons) + 1) + "|"]
    for model in ["lstm", "ridge", "persistence", "seasonal_naive", "climatology"]:
        cells = []
        for h in horizons:
            a, s = mean.loc[(model, h)], sd.loc[(model, h)]
            if several:
                cells.append(
                    f"{a.rmse:.3f} ({s.rmse:.3f}) / {a.mae:.3f} ({s.mae:.3f}) / "
                    f"{a.skill:+.2f} ({s.skill:.2f})"
                )
            else:
                cells.append(f"{a.rmse:.3f} / {a.mae:.3f} / {a.skill:+.2f}")
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--data", default="synthetic,tull")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = {}
    for name in args.data.split(","):
        m = _runs(name, seeds)
        out[name] = m.to_dict("records")
        for scheme in ("rolling_origin", "leave_sites_out"):
            print(f"\n{name}, {scheme.replace('_', ' ')}, seeds {seeds}: mean (sd)\n")
            print(_table(m, scheme))
    (WORK / "results.json").write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    main()

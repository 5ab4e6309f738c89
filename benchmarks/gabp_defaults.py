"""How GA-BP's small-sample defaults were chosen: nested CV of candidate settings.

Each candidate is a set of :class:`geohm.models.gabp.GABPRegressor` parameters (the
``model.params`` of ``ga-bp``), fitted through the pipeline ``geohm run`` builds
(:func:`geohm.training.model_pipeline`). Whatever a candidate chooses inside a fit (the
number of LM iterations by inner CV, trainbr's alpha and beta, a validation share) it
chooses on the training rows only; the outer splits below score it. Three settings:

- ``synth 16``: the synthetic two-year cases of ``geohm synth`` (seeds 0..N-1), factors
  screened on the source year as ``benchmarks/transfer.py`` does, 16 target-year samples
  for training and the other ~25 for testing (the same split as transfer.py);
- ``synth source``: 5-fold CV on the 44 source-year samples of the same cases (~35
  training samples), same factors;
- ``meuse``: ``scenes/meuse.yaml`` on the grids (the ``geohm run`` path), covariates
  (one-hot classes) and coordinates, 10 inputs, no buffer distances, log target,
  ``benchmarks/meuse.py``'s folds (``KFold(5, shuffle=True, random_state=r)``), ~124
  training samples.

Scores are RMSE divided by the null's (the training mean's) on the same split, averaged
over cases (metals x seeds, or metals), so the settings count alike. Run by hand:

    python benchmarks/gabp_defaults.py --seeds 10 --reps 2

and copy the table into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold

from geohm.config import SceneConfig, load_config
from geohm.pipeline import build_cube, sample_points, source_spec
from geohm.selection import CorrelationVIFSelector
from geohm.synth import make_demo
from geohm.training import model_pipeline

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"n_nets": 1, "stopping": "none", "regularization": "none", "max_step": None}

#: label -> GA-BP parameters (the rest are the estimator's defaults).
CANDIDATES: dict[str, dict[str, Any]] = {
    "paper (1 net, trainlm, no stopping)": PAPER,
    "paper + bounded steps": {**PAPER, "max_step": 1.0},
    "trainbr, 1 net": {**PAPER, "max_step": 1.0, "regularization": "bayesian"},
    "trainbr, 10 nets": {**PAPER, "max_step": 1.0, "regularization": "bayesian", "n_nets": 10},
    "trainbr, 20 nets": {**PAPER, "max_step": 1.0, "regularization": "bayesian", "n_nets": 20},
    "trainlm, 10 nets": {**PAPER, "max_step": 1.0, "n_nets": 10},
    "inner-CV stopping, 1 net": {**PAPER, "max_step": 1.0, "stopping": "cv"},
    "inner-CV stopping, 10 nets": {**PAPER, "max_step": 1.0, "stopping": "cv", "n_nets": 10},
    "validation stopping, 1 net": {**PAPER, "max_step": 1.0, "stopping": "validation"},
    "validation stopping, 20 nets": {
        **PAPER,
        "max_step": 1.0,
        "stopping": "validation",
        "n_nets": 20,
    },
    "validation stopping, 10 nets, unbounded steps": {
        **PAPER,
        "stopping": "validation",
        "n_nets": 10,
    },
    "validation stopping, 10 nets": {
        **PAPER,
        "max_step": 1.0,
        "stopping": "validation",
        "n_nets": 10,
    },
    "trainbr + inner-CV stopping, 10 nets": {
        **PAPER,
        "max_step": 1.0,
        "regularization": "bayesian",
        "stopping": "cv",
        "n_nets": 10,
    },
    "trainbr + validation stopping, 10 nets": {
        **PAPER,
        "max_step": 1.0,
        "regularization": "bayesian",
        "stopping": "validation",
        "n_nets": 10,
    },
    "defaults": {},
}


def _rmse(a: np.ndarray, b: np.ndarray | float) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - b) ** 2)))


def _with_model(base: SceneConfig, params: dict[str, Any], seed: int) -> SceneConfig:
    return base.model_copy(
        update={
            "model": base.model.model_copy(update={"name": "ga-bp", "params": params}),
            "validation": base.validation.model_copy(update={"seed": seed}),
        }
    )


def synthetic_cases(work: Path, seeds: int, size: int) -> list[dict[str, Any]]:
    """Per seed and metal: target/source tables and the factors screened on the source."""
    cases = []
    for seed in range(seeds):
        data = work / f"seed{seed}"
        if not (data / "scene.yaml").exists():
            make_demo(data, seed=seed, size=size)
        base = load_config(data / "scene.yaml")
        inputs, cube, features = build_cube(base, base.features)
        table, _ = sample_points(base, inputs, cube)
        spec = source_spec(base)
        s_inputs, s_cube, _ = build_cube(spec, features)
        source, _ = sample_points(spec, s_inputs, s_cube)
        for target in base.samples.targets:
            has = np.isfinite(source.y[target].to_numpy(dtype=float))
            s = base.selection  # transfer.py's screening: correlation + VIF, two forced
            selector = CorrelationVIFSelector(
                max_p=s.max_p, max_vif=s.max_vif, force=("aspect", "elevation")
            )
            selector.fit(source.X[has], source.y[target][has])
            cases.append(
                {
                    "seed": seed,
                    "target": target,
                    "base": base,
                    "table": table,
                    "source": source,
                    "features": list(selector.selected_),
                }
            )
    return cases


def score_synthetic(case: dict[str, Any], params: dict[str, Any], n_train: int) -> dict:
    """RMSE / null RMSE on the 16-sample split and in 5-fold CV on the source year."""
    seed, target, feats = case["seed"], case["target"], case["features"]
    pipe = model_pipeline(_with_model(case["base"], params, seed).fit_spec(), feats)
    table = case["table"]
    order = np.random.default_rng(1000 + seed).permutation(len(table.X))  # transfer.py's
    train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
    y = table.y[target].to_numpy(dtype=float)
    fit = clone(pipe).fit(table.X.iloc[train][feats], y[train])
    pred = np.maximum(fit.predict(table.X.iloc[test][feats]), 0.0)
    out = {"synth 16": _rmse(pred, y[test]) / _rmse(y[test], y[train].mean())}
    src = case["source"]
    ys, Xs = src.y[target].to_numpy(dtype=float), src.X[feats]
    oof, null = np.empty_like(ys), np.empty_like(ys)
    for tr, te in KFold(5, shuffle=True, random_state=seed).split(Xs):
        oof[te] = np.maximum(clone(pipe).fit(Xs.iloc[tr], ys[tr]).predict(Xs.iloc[te]), 0.0)
        null[te] = ys[tr].mean()
    out["synth source"] = _rmse(oof, ys) / _rmse(null, ys)
    return out


def score_meuse(params: dict[str, Any], reps: int) -> list[dict[str, Any]]:
    """RMSE / null RMSE of 5-fold CV on Meuse (grids, log target), per metal and repeat."""
    base = load_config(ROOT / "scenes" / "meuse.yaml", output_dir=ROOT / "benchmarks" / "_work")
    cfg = SceneConfig.model_validate(
        {
            **base.model_dump(),
            "model": {"name": "ga-bp", "params": params},
            "preprocess": {**base.preprocess.model_dump(), "log_target": True},
            # the covariates and x, y (10 inputs), not the scene's 155 buffer distances
            "spatial_features": {"coordinates": True, "buffer_distances": False},
        }
    )
    inputs, cube, _ = build_cube(cfg, cfg.features, coordinates=True)
    table, _ = sample_points(cfg, inputs, cube)
    columns = list(table.X.columns)
    pipe = model_pipeline(cfg.fit_spec(), columns)
    rows = []
    for metal in ("copper", "lead", "zinc", "cadmium"):
        y = table.y[metal].to_numpy(dtype=float)
        for rep in range(reps):
            oof, null = np.empty_like(y), np.empty_like(y)
            for tr, te in KFold(5, shuffle=True, random_state=rep).split(table.X):
                model = clone(pipe).fit(table.X.iloc[tr], y[tr])
                oof[te] = np.maximum(model.predict(table.X.iloc[te]), 0.0)
                null[te] = y[tr].mean()
            rows.append(
                {
                    "metal": metal,
                    "rep": rep,
                    "ratio": _rmse(oof, y) / _rmse(null, y),
                    "rmse": _rmse(oof, y),
                    "finite": bool(np.all(np.isfinite(oof))),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--train", type=int, default=16)
    ap.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "transfer")
    args = ap.parse_args()
    cases = synthetic_cases(args.work, args.seeds, args.size)
    rows = []
    for label in args.candidates:
        params = CANDIDATES[label]
        t = time.perf_counter()
        synth = pd.DataFrame([score_synthetic(c, params, args.train) for c in cases])
        meuse = pd.DataFrame(score_meuse(params, args.reps))
        rows.append(
            {
                "candidate": label,
                **synth.mean().to_dict(),
                "meuse": float(meuse.groupby("metal")["ratio"].mean().mean()),
                "meuse RMSE (Cu, Pb, Zn, Cd)": ", ".join(
                    f"{meuse[meuse.metal == m]['rmse'].mean():.3g}"
                    for m in ("copper", "lead", "zinc", "cadmium")
                ),
                "all finite": bool(meuse["finite"].all()),
                "seconds": time.perf_counter() - t,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    df["mean"] = df[["synth 16", "synth source", "meuse"]].mean(axis=1)
    out = args.work.parent / "gabp_defaults.csv"
    df.to_csv(out, index=False)
    print()
    print("| candidate | synth 16 | synth source | Meuse | mean | Meuse RMSE (ppm) |")
    print("|---|---|---|---|---|---|")
    for _, r in df.iterrows():
        print(
            f"| {r['candidate']} | {r['synth 16']:.3f} | {r['synth source']:.3f} | "
            f"{r['meuse']:.3f} | {r['mean']:.3f} | {r['meuse RMSE (Cu, Pb, Zn, Cd)']} |"
        )


if __name__ == "__main__":
    main()

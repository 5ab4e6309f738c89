"""Meuse heavy metals: geohm's models against the R gstat / scikit-learn reference figures.

The 155 Meuse topsoil samples (``scenes/data/meuse``) are sampled from the covariate
grids through the normal scene path (``scenes/meuse.yaml``: ``build_cube`` +
``sample_points``), so every model sees what ``geohm run`` gives it: ``dist``, ``elev``,
``ffreq`` and ``soil`` (one-hot) at the sample pixels, and the pixel-centre coordinates
``x``, ``y``. Each model is the pipeline ``geohm run`` builds for that config
(:func:`geohm.training.model_pipeline`). ``auto`` (``model: {name: auto}``) runs its
whole selection in every outer training fold (:func:`evaluate_auto`): the candidates
are scored by spatial-block CV on that fold's training samples only, and the chosen one
(or their stack) predicts the fold's test samples.

Protocol of the issue: 5-fold CV repeated 10 times with fixed folds (``KFold(5,
shuffle=True, random_state=r)`` for r = 0..9, the same folds for every model); per
repetition RMSE, MAE and R2 of the pooled out-of-fold predictions; the table gives the
mean (and standard deviation) over the 10 repetitions. Run by hand:

    python benchmarks/meuse.py            # full protocol, every model but auto
    python benchmarks/meuse.py --reps 2   # quicker look
    python benchmarks/meuse.py --reps 1 --models auto --covariates rasters  # 13 min a rep

and copy the printed table into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold

from geohm.config import SceneConfig, load_config
from geohm.evaluate import cross_validate_interval, metrics
from geohm.models import model_entry
from geohm.pipeline import build_cube, sample_points
from geohm.sampling import SampleTable
from geohm.training import FittedTarget, fit_target, model_columns, model_pipeline

ROOT = Path(__file__).resolve().parents[1]
METALS = ["copper", "lead", "zinc", "cadmium"]

#: RMSE (ppm) measured with R gstat and scikit-learn under the same protocol (issue 5).
REFERENCE = {
    "OK of log values (gstat)": {"copper": 16.0, "lead": 77.6, "zinc": 227, "cadmium": 2.74},
    "UK on sqrt(dist) (gstat)": {"copper": 13.7, "lead": 75.7, "zinc": 217, "cadmium": 2.54},
    "RF dist/elev/ffreq/soil/x/y (sklearn)": {
        "copper": 12.2,
        "lead": 68.9,
        "zinc": 196,
        "cadmium": 1.86,
    },
    "RF + buffer distances (sklearn)": {
        "copper": 11.8,
        "lead": 67.3,
        "zinc": 188,
        "cadmium": 1.88,
    },
}

RF = {"n_estimators": 200, "max_features": 1 / 3}  # mtry = p/3, as R's randomForest
#: Spatial features: the coordinates as inputs, without (XY) or with (BUFFERS) the distance
#: to every training sample. Every row names both keys: the scene's own (buffer distances
#: on) must not leak into a row that does not ask for them.
XY = {"coordinates": True, "buffer_distances": False}
BUFFERS = {"coordinates": True, "buffer_distances": True}
NONE = {"coordinates": False, "buffer_distances": False}

#: ``auto``'s candidates on Meuse (the forests with the scene's mtry = p/3). ``ga-bp``
#: joins with ``--auto-gabp``; ``tr-ga-bp`` does not apply (no source year).
AUTO_CANDIDATES: list[Any] = [
    {"rf": RF},
    {"rfsp": RF},
    "gbm",
    {"rk": {"base": "rf", "base_params": RF}},
    "ok",
]

#: label -> changes to scenes/meuse.yaml (model, preprocessing, spatial features).
MODELS: dict[str, dict[str, Any]] = {
    "OK (log)": {
        "model": {"name": "ok"},
        "preprocess": {"log_target": True},
        "spatial_features": NONE,
    },
    "RF (covariates + x, y)": {
        "model": {"name": "rf", "params": RF},
        "preprocess": {"log_target": False},
        "spatial_features": XY,
    },
    "RF + buffer distances": {
        "model": {"name": "rf", "params": RF},
        "preprocess": {"log_target": False},
        "spatial_features": BUFFERS,
    },
    "RK (RF base)": {
        "model": {"name": "rk", "params": {"base": "rf", "base_params": RF}},
        "preprocess": {"log_target": False},
        "spatial_features": NONE,
    },
    "GA-BP (covariates + x, y)": {
        "model": {"name": "ga-bp"},
        "preprocess": {"log_target": True},
        "spatial_features": XY,
    },
    "GA-BP (covariates + x, y, no log)": {
        "model": {"name": "ga-bp"},
        "preprocess": {"log_target": False},
        "spatial_features": XY,
    },
    # The whole auto selection in every outer training fold (evaluate_auto): candidates
    # scored by 5-fold spatial-block CV inside the fold, then the best or their stack.
    "auto": {
        "model": {"name": "auto", "params": {"candidates": AUTO_CANDIDATES}},
        "preprocess": {"log_target": False},
        "spatial_features": NONE,
        "validation": {"test_fraction": 0.0, "cv_folds": 0},
        "output": {"uncertainty": False},
    },
}


def point_covariates(table_X: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    """The covariates recorded with the samples (what the R reference used), same columns.

    ``elev`` (m) and ``ffreq`` in meuse.csv differ from the grids (the grid ``elev`` is
    another elevation product, r = 0.26 at the samples; ``ffreq`` agrees at 83 % of
    them); ``x``, ``y`` become the exact sample coordinates instead of pixel centres.
    """
    pts = points.set_index(points.index.astype(str))
    out = table_X.copy()
    for col in ("dist", "elev", "ffreq", "soil", "x", "y"):
        out[col] = pts.loc[out.index.astype(str), col].to_numpy(dtype="float64")
    return out


def _config(base: SceneConfig, changes: dict[str, Any]) -> SceneConfig:
    data = base.model_dump()
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict) and key != "model":
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return SceneConfig.model_validate(data)


def evaluate(
    cfg: SceneConfig, X: pd.DataFrame, y: np.ndarray, reps: int, folds: int
) -> list[dict[str, float]]:
    """Metrics of the pooled out-of-fold predictions, one dict per repetition."""
    if model_entry(cfg.model.name).selects:
        raise ValueError("model 'auto': use evaluate_auto")
    columns = model_columns(cfg.fit_spec(), [c for c in X.columns if c in _cube_columns(cfg, X)])
    Xm = X[columns]
    pipe = model_pipeline(cfg.fit_spec(), columns)
    out = []
    for rep in range(reps):
        oof = np.empty_like(y)
        for train, test in KFold(folds, shuffle=True, random_state=rep).split(Xm):
            model = clone(pipe).fit(Xm.iloc[train], y[train])
            oof[test] = np.maximum(model.predict(Xm.iloc[test]), 0.0)
        out.append(metrics(y, oof))
    return out


def auto_fold_prediction(
    cfg: SceneConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    xy: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    target: str,
) -> tuple[np.ndarray, FittedTarget]:
    """``auto`` fitted on the ``train`` rows only, and its predictions (ppm) of ``test``.

    The training rows become a sample table of their own (``X`` with every column, the
    sample coordinates ``xy`` for the spatial blocks) handed to
    :func:`geohm.training.fit_target`: it scores the candidates by spatial-block CV on
    those rows and fits the chosen one (or the stack) on all of them (the config's
    ``validation.test_fraction`` is 0). Predictions below 0 are set to 0, as for every row.
    """
    table = SampleTable(
        X=X.iloc[train],
        y=pd.DataFrame({target: y[train]}, index=X.index[train]),
        xy=xy[train],
    )
    fitted = fit_target(cfg.fit_spec(), table, target)
    pred = fitted.estimator.predict(X.iloc[test][fitted.features])
    return np.maximum(pred, 0.0), fitted


def evaluate_auto(
    cfg: SceneConfig,
    X: pd.DataFrame,
    y: np.ndarray,
    xy: np.ndarray,
    reps: int,
    folds: int,
    target: str,
) -> tuple[list[dict[str, float]], list[str]]:
    """As :func:`evaluate` for ``model: {name: auto}``: the whole selection in every fold.

    Each outer training fold runs :func:`auto_fold_prediction` (candidates scored by
    spatial-block CV inside the fold, then the chosen model or the stack); the outer test
    fold is predicted by that model.

    Returns
    -------
    list of dict, list of str
        The metrics per repetition, and what ``auto`` chose in each fit (in order).
    """
    out, chosen = [], []
    for rep in range(reps):
        oof = np.empty_like(y)
        for train, test in KFold(folds, shuffle=True, random_state=rep).split(X):
            oof[test], fitted = auto_fold_prediction(cfg, X, y, xy, train, test, target)
            chosen.append(str(fitted.report["auto"]["chosen"]))
        out.append(metrics(y, oof))
    return out, chosen


def coverage(cfg: SceneConfig, X: pd.DataFrame, y: np.ndarray, folds: int) -> dict[str, Any]:
    """Nested-CV calibration of the 90 % intervals geohm maps for this model."""
    columns = model_columns(cfg.fit_spec(), [c for c in X.columns if c in _cube_columns(cfg, X)])
    pipe = model_pipeline(cfg.fit_spec(), columns)
    return cross_validate_interval(
        pipe,
        X[columns],
        y,
        coverage=0.9,
        folds=folds,
        seed=0,
        calibrate=True if cfg.model.name == "rk" else None,
    )


def _cube_columns(cfg: SceneConfig, X: pd.DataFrame) -> list[str]:
    """Covariates always; x, y only when the model takes coordinates."""
    sf = cfg.spatial_features
    coords = cfg.model.name in ("ok", "rk") or sf.coordinates or sf.buffer_distances
    return [c for c in X.columns if coords or c not in ("x", "y")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument(
        "--models",
        nargs="*",
        default=[m for m in MODELS if m != "auto"],
        help="rows to run (default: all but auto, which takes ~13 min a repetition)",
    )
    ap.add_argument("--metals", nargs="*", default=METALS)
    ap.add_argument(
        "--covariates",
        nargs="*",
        default=["rasters", "points"],
        help="rasters: the grids at the sample pixels (the geohm run path); points: the "
        "values recorded with the samples (the reference's features); rasters+elev, "
        "rasters+ffreq, rasters+x: the grids with the points' elev, ffreq or exact x, y",
    )
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "_work" / "meuse")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument(
        "--coverage",
        action="store_true",
        help="instead of the accuracy table: nested 5-fold CV coverage of the 90 %% intervals",
    )
    ap.add_argument(
        "--auto-gabp", action="store_true", help="add ga-bp to auto's candidates (slower)"
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.auto_gabp:
        AUTO_CANDIDATES.append("ga-bp")

    base = load_config(ROOT / "scenes" / "meuse.yaml", output_dir=args.out)
    inputs, cube, _ = build_cube(base, base.features, coordinates=True)
    table, n = sample_points(base, inputs, cube)
    print(f"{len(table.X)} of {n} samples; features {list(table.X.columns)}")

    points = pd.read_csv(ROOT / "scenes" / "data" / "meuse" / "meuse.csv")
    at_points = point_covariates(table.X, points)
    sources = {"rasters": table.X, "points": at_points}
    for col in ("elev", "ffreq", "x"):  # the grids with one covariate from the points
        swapped = table.X.copy()
        for c in ("x", "y") if col == "x" else (col,):
            swapped[c] = at_points[c]
        sources[f"rasters+{col}"] = swapped
    if args.coverage:
        cov_rows = []
        for source in args.covariates:
            for label in args.models:
                cfg = _config(base, MODELS[label])
                for metal in args.metals:
                    y = table.y[metal].to_numpy()
                    res = coverage(cfg, sources[source], y, args.folds)
                    cov_rows.append(
                        {
                            "covariates": source,
                            "metal": metal,
                            "model": label,
                            **{k: v for k, v in res.items() if not isinstance(v, np.ndarray)},
                        }
                    )
                    print(
                        f"{source:7s} {metal:8s} {label:28s} coverage {res['coverage']:.3f} "
                        f"mean width {res['mean_width']:.2f}",
                        flush=True,
                    )
        (args.out / f"coverage{args.tag}.json").write_text(
            json.dumps(cov_rows, indent=1, default=str)
        )
        return
    rows = []
    for source in args.covariates:
        for label in args.models:
            cfg = _config(base, MODELS[label])
            for metal in args.metals:
                t0 = time.perf_counter()
                X = sources[source]
                y = table.y[metal].to_numpy()
                picks: list[str] = []
                if model_entry(cfg.model.name).selects:
                    scores, picks = evaluate_auto(cfg, X, y, table.xy, args.reps, args.folds, metal)
                else:
                    scores = evaluate(cfg, X, y, args.reps, args.folds)
                df = pd.DataFrame(scores)
                rows.append(
                    {
                        "covariates": source,
                        "metal": metal,
                        "model": label,
                        **{f"{k}": df[k].mean() for k in ("rmse", "mae", "r2")},
                        "rmse_sd": df["rmse"].std(ddof=1) if len(df) > 1 else 0.0,
                        "seconds": time.perf_counter() - t0,
                        "chosen": dict(Counter(picks)) if picks else None,
                    }
                )
                r = rows[-1]
                print(
                    f"{source:13s} {metal:8s} {label:28s} RMSE {r['rmse']:8.2f}  R2 {r['r2']:.3f}"
                    f"  ({r['seconds']:.0f} s)" + (f"  chose {r['chosen']}" if picks else ""),
                    flush=True,
                )
    res = pd.DataFrame(rows)
    (args.out / f"results{args.tag}.json").write_text(json.dumps(rows, indent=1))

    lines = [
        "| metal | covariates | model | RMSE (ppm) | MAE (ppm) | R2 | best reference RMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for metal in args.metals:
        best_ref = min(v[metal] for v in REFERENCE.values())
        for _, r in res[res.metal == metal].iterrows():
            lines.append(
                f"| {metal} | {r.covariates} | {r.model} | {r.rmse:.2f} ± {r.rmse_sd:.2f} | "
                f"{r.mae:.2f} | {r.r2:.3f} | {best_ref} |"
            )
    table_md = "\n".join(lines)
    (args.out / f"table{args.tag}.md").write_text(table_md + "\n")
    print(table_md)


if __name__ == "__main__":
    main()

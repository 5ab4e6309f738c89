"""The transfer experiment of seed 002 (Table 5) on the built-in two-year synthetic case.

For each of 10 seeds: the synthetic case is generated; factors are screened on the source
year (correlation + VIF, aspect and elevation forced, as the paper does); the target year's
usable samples are split into 16 training samples and the rest for testing (the paper's
design). These are compared on the same features:

- ``Null (mean of 16)``: the mean of the 16 target samples everywhere (a flat map);
- ``GA-BP (16)``: GA-BP trained on the 16 target samples;
- ``GA-BP (source)``: GA-BP trained on all source-year samples, applied to the target year;
- ``Tr-GA-BP``: the source net transferred with the 16 target samples;
- ``RF (16)``: a 200-tree random forest on the 16 target samples;
- ``RF (pooled)``: a 200-tree random forest on the source-year samples and the 16 target
  samples together (each year's rows with its own year's features);
- ``RFsp (16)``, ``GBM (16)``, ``OK (16)``, ``RK (16)``: the other candidates of
  ``model: {name: auto}`` fitted alone on the 16 target samples, as ``auto`` fits them
  (RFsp: the forest with the pixel coordinates and the distance to every training sample;
  OK: ordinary kriging of the 16; RK: the forest plus kriging of its out-of-fold residuals);
- ``auto (16)``: ``model: {name: auto}`` on the 16 target samples (and the source year for
  its Tr-GA-BP candidate) with the candidates rf, rfsp, gbm, ga-bp, tr-ga-bp, ok and rk
  (:data:`AUTO_CANDIDATES`): each is scored by spatial-block CV on the 16 (5 folds), the
  best, or their stack when it scores better, is fitted on the 16.

Every model but OK takes the factors screened on the source year; RFsp, OK, RK and
``auto`` also take the pixel-centre coordinates ``x``, ``y`` (what ``geohm run`` gives
``auto`` on a projected grid). So each candidate inside ``auto`` is the same model, on
the same inputs, as its own row: ``auto`` can be compared with the best single candidate.

GA-BP and Tr-GA-BP run with their defaults (``params: {}``); ``--gabp-params`` (JSON)
sets GA-BP's for the nets of both (e.g. ``'{"n_nets": 1, "stopping": "none",
"regularization": "none", "max_step": null}'``, the paper's path).

Each is scored on the held-out target samples (RMSE, MRE) and on the whole predicted map
against the truth raster (RMSE, R2 over valid pixels). Run by hand:

    OMP_NUM_THREADS=1 python benchmarks/transfer.py --seeds 10   # 17 min on 2 shared cores

(``auto`` is most of it: ~40 s per seed and metal.) Then copy the printed tables into
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import rasterio

from geohm.config import load_config
from geohm.evaluate import metrics
from geohm.models import COORDS
from geohm.pipeline import build_cube, sample_points, source_spec
from geohm.predict import TargetModel, predict_map
from geohm.sampling import SampleTable
from geohm.synth import make_demo
from geohm.training import fit_target

NULL = "Null (mean of 16)"
AUTO = "auto (16)"
#: The candidates of ``auto`` that apply to a transfer job on a projected grid (all of
#: geohm.models.registry.CANDIDATES); each fitted alone has its own row (the label).
AUTO_CANDIDATES = {
    "rf": "RF (16)",
    "rfsp": "RFsp (16)",
    "gbm": "GBM (16)",
    "ga-bp": "GA-BP (16)",
    "tr-ga-bp": "Tr-GA-BP",
    "ok": "OK (16)",
    "rk": "RK (16)",
}
MODELS = [
    NULL,
    "GA-BP (16)",
    "GA-BP (source)",
    "Tr-GA-BP",
    "RF (16)",
    "RF (pooled)",
    "RFsp (16)",
    "GBM (16)",
    "OK (16)",
    "RK (16)",
    AUTO,
]


class ArraySink:
    """Collects predicted windows in memory (fine for a 400 x 400 benchmark scene)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.array = np.full(shape, np.nan, dtype="float32")

    def write(self, r: int, c: int, data: np.ndarray) -> None:
        self.array[r : r + data.shape[0], c : c + data.shape[1]] = data


def _subset(table: SampleTable, rows: np.ndarray, features: list[str] | None = None) -> SampleTable:
    X = table.X.iloc[rows]
    return SampleTable(
        X=X if features is None else X[features], y=table.y.iloc[rows], xy=table.xy[rows]
    )


class ConstantMap:
    """The null model: one value (the training mean) for every row."""

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.value)


def _pooled(source: SampleTable, target: SampleTable, rows: np.ndarray, features: list[str]):
    """Source-year rows and the target year's ``rows``, one table (same feature names)."""
    tables = [_subset(source, np.arange(len(source.X)), features), _subset(target, rows, features)]
    X = pd.concat([t.X for t in tables])
    X.index = [f"{i}_{k}" for i, k in enumerate(X.index)]  # both years number from 0
    y = pd.concat([t.y for t in tables])
    y.index = X.index
    return SampleTable(X=X, y=y, xy=np.concatenate([t.xy for t in tables]))


def _auto_params(gabp: dict[str, Any] | None) -> dict[str, Any]:
    """``auto``'s params: every candidate, the nets with ``--gabp-params`` when given."""
    cands: list[Any] = list(AUTO_CANDIDATES)
    if gabp:
        cands = [
            {"ga-bp": gabp}
            if c == "ga-bp"
            else {"tr-ga-bp": {"source_params": gabp}}
            if c == "tr-ga-bp"
            else c
            for c in cands
        ]
    return {"candidates": cands}


def run_seed(
    seed: int, work: Path, size: int, n_train: int, gabp: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """All models, both metals, one synthetic case."""
    data = work / f"seed{seed}"
    if not (data / "scene.yaml").exists():
        make_demo(data, seed=seed, size=size)
    base = load_config(data / "scene.yaml")
    # The pixel-centre coordinates too, as geohm run gives auto on a projected grid; the
    # rows without spatial inputs get the table without them.
    inputs, cube, features = build_cube(base, base.features, optional_coordinates=True)
    table_xy, _ = sample_points(base, inputs, cube)
    coords = [c for c in COORDS if c in features]
    plain = [c for c in features if c not in coords]
    everyone = np.arange(len(table_xy.X))
    table = _subset(table_xy, everyone, plain)
    spec = source_spec(base)
    s_inputs, s_cube, _ = build_cube(spec, plain)
    source, _ = sample_points(spec, s_inputs, s_cube)
    rng = np.random.default_rng(1000 + seed)
    order = rng.permutation(len(table.X))
    train, test = np.sort(order[:n_train]), np.sort(order[n_train:])
    common = {
        "validation": {"test_fraction": 0.0, "cv_folds": 0, "seed": seed},
        # Intervals are not scored here: their fitting would only add to the fit times.
        "output": {"dir": str(work / "unused"), "uncertainty": False},
    }
    rows: list[dict[str, Any]] = []
    cube_values = cube.values  # 400 x 400: small enough to hold for the benchmark
    cube = cube.copy(data=cube_values)
    assert base.samples is not None
    for target in base.samples.targets:
        with rasterio.open(data / "truth" / f"target_{target}.tif") as src:
            truth = src.read(1, masked=True).filled(np.nan)
        fitted: dict[str, Any] = {}
        timings: dict[str, float] = {}
        # Tr-GA-BP first: it screens factors on the source year; the others reuse them.
        cfg = base.model_copy(
            update={
                "model": base.model.model_copy(
                    update={
                        "name": "tr-ga-bp",
                        "params": {"source_params": gabp} if gabp else {},
                    }
                ),
                "selection": base.selection.model_copy(
                    update={"method": "correlation_vif", "force": ["aspect", "elevation"]}
                ),
                **{k: getattr(base, k).model_copy(update=v) for k, v in common.items()},
            }
        )
        t = time.perf_counter()
        tr = fit_target(cfg.fit_spec(), _subset(table, train), target, source=source)
        timings["Tr-GA-BP"] = time.perf_counter() - t
        feats = tr.features
        fitted["Tr-GA-BP"] = tr
        ytr = table.y[target].to_numpy()[train]
        fitted[NULL] = SimpleNamespace(
            estimator=ConstantMap(np.nanmean(ytr)), features=feats, report={}
        )
        timings[NULL] = 0.0
        spatial = feats + coords
        all_source = _subset(source, np.arange(len(source.X)), feats)
        rfsp = {"coordinates": True, "buffer_distances": True}
        for name, model, params, tab, sf in (
            ("GA-BP (16)", "ga-bp", gabp or {}, _subset(table, train, feats), {}),
            (
                "GA-BP (source)",
                "ga-bp",
                gabp or {},
                _subset(source, np.arange(len(source.X)), feats),
                {},
            ),
            ("RF (16)", "rf", {"n_estimators": 200}, _subset(table, train, feats), {}),
            (
                "RF (pooled)",
                "rf",
                {"n_estimators": 200},
                _pooled(source, table, train, feats),
                {},
            ),
            ("RFsp (16)", "rf", {"n_estimators": 200}, _subset(table_xy, train, spatial), rfsp),
            ("GBM (16)", "gbm", {}, _subset(table, train, feats), {}),
            ("OK (16)", "ok", {}, _subset(table_xy, train, spatial), {}),
            ("RK (16)", "rk", {}, _subset(table_xy, train, spatial), {}),
            (AUTO, "auto", _auto_params(gabp), _subset(table_xy, train, spatial), {}),
        ):
            c = base.model_copy(
                update={
                    "model": base.model.model_copy(update={"name": model, "params": params}),
                    "spatial_features": base.spatial_features.model_copy(update=sf),
                    **{k: getattr(base, k).model_copy(update=v) for k, v in common.items()},
                }
            )
            t = time.perf_counter()
            fitted[name] = fit_target(
                c.fit_spec(),
                tab,
                target,
                source=all_source if model == "auto" else None,
            )
            timings[name] = time.perf_counter() - t
        ranking = fitted[AUTO].report["auto"]["ranking"]
        test_X = table_xy.X.iloc[test]
        test_y = table.y[target].to_numpy()[test]
        for name in MODELS:
            f = fitted[name]
            pred = np.maximum(f.estimator.predict(test_X[f.features]), 0.0)
            m = metrics(test_y, pred)
            sub = cube.sel(feature=f.features)
            sink = ArraySink(truth.shape)
            predict_map(
                sub, {target: TargetModel(f.estimator, f.features)}, {target: sink}, tile=512
            )
            ok = np.isfinite(sink.array) & np.isfinite(truth)
            mm = metrics(truth[ok], sink.array[ok])
            rows.append(
                {
                    "seed": seed,
                    "target": target,
                    "model": name,
                    "test_rmse": m["rmse"],
                    "test_mre": m["mre"],
                    "map_rmse": mm["rmse"],
                    "map_r2": mm["r2"],
                    "fit_s": timings[name],
                    "n_test": len(test),
                    "features": ",".join(f.features),
                    "beta0": tr.report["transfer"]["beta0"] if name == "Tr-GA-BP" else None,
                    "auto_chosen": fitted[AUTO].report["auto"]["chosen"] if name == AUTO else None,
                    "auto_cv": json.dumps(
                        {r["candidate"]: r.get("rmse", r["status"]) for r in ranking}
                    )
                    if name == AUTO
                    else None,
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--size", type=int, default=400)
    ap.add_argument("--train", type=int, default=16)
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "_work" / "transfer")
    ap.add_argument("--gabp-params", type=json.loads, default=None, help="GA-BP params (JSON)")
    ap.add_argument("--tag", default="", help="suffix of the result file")
    args = ap.parse_args()
    rows = []
    for seed in range(args.seeds):
        t = time.perf_counter()
        rows += run_seed(seed, args.work, args.size, args.train, args.gabp_params)
        print(f"seed {seed}: {time.perf_counter() - t:.1f} s", flush=True)
    df = pd.DataFrame(rows)
    args.work.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.work / f"transfer_results{args.tag}.csv", index=False)
    agg = df.groupby(["target", "model"], sort=False)[
        ["test_rmse", "test_mre", "map_rmse", "map_r2", "fit_s"]
    ].agg(["mean", "std"])
    print()
    print("| metal | model | test RMSE (mg/kg) | test MRE | map RMSE (mg/kg) | map R2 | fit (s) |")
    print("|---|---|---|---|---|---|---|")
    for (target, model), r in agg.iterrows():
        cells = [
            f"{r[(c, 'mean')]:.2f} ± {r[(c, 'std')]:.2f}"
            for c in ("test_rmse", "test_mre", "map_rmse", "map_r2", "fit_s")
        ]
        print(f"| {target} | {model} | " + " | ".join(cells) + " |")
    print()
    for target in df["target"].unique():
        d = df[df["target"] == target].pivot(index="seed", columns="model", values="test_rmse")
        gain = 1 - d["Tr-GA-BP"] / d["GA-BP (16)"]
        tr = df[(df.target == target) & (df.model == "Tr-GA-BP")]
        beta0 = json.dumps(tr["beta0"].value_counts().to_dict())
        print(
            f"{target}: Tr-GA-BP vs GA-BP (16) test RMSE change: mean {-gain.mean():+.1%} "
            f"(ratio of means {d['Tr-GA-BP'].mean() / d['GA-BP (16)'].mean() - 1:+.1%}), "
            f"Tr-GA-BP better in {int((gain > 0).sum())} of {len(gain)} seeds; "
            f"chosen beta0: {beta0}"
        )
        for model in MODELS[1:]:
            skill = 1 - d[model] / d[NULL]
            print(
                f"{target}: {model} test RMSE / null's: mean {(d[model] / d[NULL]).mean():.3f}, "
                f"skill 1 - RMSE/RMSE_null {skill.mean():+.3f}, below the null in "
                f"{int((skill > 0).sum())} of {len(skill)} seeds"
            )
        _auto_summary(df[df["target"] == target], d, target)


def _auto_summary(df: pd.DataFrame, d: pd.DataFrame, target: str) -> None:
    """``auto`` against the best single candidate (by mean test RMSE) and each seed's best."""
    cands = [c for c in AUTO_CANDIDATES.values() if c in d.columns]
    best = min(cands, key=lambda c: d[c].mean())
    oracle = d[cands].min(axis=1)
    label = {v: k for k, v in AUTO_CANDIDATES.items()}
    test_best = d[cands].idxmin(axis=1).map(label)
    auto = df[df.model == AUTO].set_index("seed")
    chosen = auto["auto_chosen"]
    print(
        f"{target}: auto {d[AUTO].mean():.2f} vs the best single candidate {best} "
        f"{d[best].mean():.2f} mg/kg ({d[AUTO].mean() / d[best].mean() - 1:+.1%}; auto lower "
        f"in {int((d[AUTO] < d[best]).sum())} of {len(d)} seeds, equal in "
        f"{int((d[AUTO] == d[best]).sum())}); each seed's best candidate picked on the test "
        f"samples (an oracle): {oracle.mean():.2f}"
    )
    print(
        f"{target}: auto chose {json.dumps(chosen.value_counts().to_dict())}; the test-best "
        f"candidate {json.dumps(test_best.value_counts().to_dict())}; same in "
        f"{int((chosen == test_best).sum())} of {len(d)} seeds"
    )
    # How well the CV on the 16 ranks the candidates: Spearman correlation, per seed,
    # between the candidates' CV RMSE (auto's ranking) and their test RMSE (their rows).
    rhos = []
    for seed, row in auto.iterrows():
        cv = {k: v for k, v in json.loads(row["auto_cv"]).items() if isinstance(v, float)}
        names = [n for n in cv if n in AUTO_CANDIDATES]
        if len(names) < 3:
            continue
        a = pd.Series([cv[n] for n in names]).rank()
        b = pd.Series([d.loc[seed, AUTO_CANDIDATES[n]] for n in names]).rank()
        rhos.append(float(np.corrcoef(a, b)[0, 1]))
    if rhos:
        print(
            f"{target}: rank correlation of the candidates' CV RMSE (on the 16) with their "
            f"test RMSE: mean {np.mean(rhos):+.2f} (per seed "
            f"{', '.join(f'{r:+.2f}' for r in rhos)})"
        )


if __name__ == "__main__":
    main()

"""Patch CNN (issue 17) against the random forest, on the same spatial-block folds.

Three models, each given the same 7 x 7-pixel patches (``h = 3``) read through one window
reader (:func:`geohm.patches.read_patches`; for the demo and Meuse that reader is
the scene's :class:`geohm.cube.WindowSource`, the map's own feature path):

- ``rf``: a 200-tree random forest on the centre pixel's features;
- ``rf+ctx``: the same forest on the centre pixel plus the window mean and standard
  deviation of every feature (so that smoothing alone is not credited to convolution);
- ``cnn``: :class:`geohm.models.patchcnn.PatchCNNRegressor` on the whole patch.

Cases:

(a) ``synthetic``: a 160 x 160 grid (30 m) whose truth depends on the neighbourhood: the
    contamination of a pixel is the distance-weighted source intensity of the *upslope*
    pixels within 3 pixels (material washed down), plus a little of its own; features are
    the source intensity, elevation and two unrelated smooth fields (no direction
    feature: the CNN trains with flips/rotations). 200 random sample pixels.
(b) ``demo``: ``geohm synth``'s scene (target year, Cu and Pb, 41 usable samples, 19
    features, among them aspect: the CNN trains without augmentation).
(c) ``meuse``: ``scenes/meuse.yaml``'s covariates (dist, elev, ffreq and soil one-hot;
    no coordinates), 155 samples, 40 m pixels, the four metals.

Protocol: spatial-block folds fixed per case and target (blocks of
:func:`geohm.spatialcv.default_block_size` on log values, 5 folds, fold seed 0); every
model is refitted on each training fold with seeds ``0 .. seeds-1``. Per (seed, fold):
RMSE of each model on the fold's test samples; the table gives the mean RMSE over seeds
and folds and the paired differences ``cnn - rf`` and ``cnn - rf+ctx`` (mean and sd over
the seed x fold pairs; negative: the CNN is better), how many pairs the CNN wins, and the
coverage of the CNN's 90 % interval. Run by hand (one thread):

    OMP_NUM_THREADS=1 python benchmarks/patch_cnn.py --seeds 2 --ensemble 3

and copy the printed tables into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter
from sklearn.ensemble import RandomForestRegressor

from geohm.models.patchcnn import PatchCNNRegressor
from geohm.patches import read_patches
from geohm.spatialcv import default_block_size, spatial_block_folds

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "patch_cnn"
HALF = 3


class ArrayReader:
    """A window reader over an in-memory (C, rows, cols) cube (the synthetic case)."""

    def __init__(self, cube: np.ndarray) -> None:
        self.cube = cube.astype(np.float32)
        self.shape = (cube.shape[1], cube.shape[2])

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        return self.cube[:, row_off : row_off + rows, col_off : col_off + cols].copy()


def _smooth(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    f = gaussian_filter(rng.normal(size=(n, n)), sigma, mode="reflect")
    return (f - f.mean()) / f.std()


def synthetic_case(seed: int = 0, n: int = 160, samples: int = 200) -> dict[str, Any]:
    """Case (a): upslope, distance-weighted contamination (truth needs the neighbourhood)."""
    rng = np.random.default_rng(seed)
    elev = 100 + 15 * _smooth(rng, n, 10)  # m
    source = np.exp(1.2 * _smooth(rng, n, 1.5))  # source intensity, lognormal patches
    noise = [_smooth(rng, n, 4), _smooth(rng, n, 8)]
    pad = np.pad(source, HALF, mode="edge")
    zpad = np.pad(elev, HALF, mode="edge")
    truth = 0.2 * source
    for dr in range(-HALF, HALF + 1):
        for dc in range(-HALF, HALF + 1):
            if dr == 0 and dc == 0:
                continue
            s = pad[HALF + dr : HALF + dr + n, HALF + dc : HALF + dc + n]
            z = zpad[HALF + dr : HALF + dr + n, HALF + dc : HALF + dc + n]
            truth = truth + (z > elev) * s / np.hypot(dr, dc)
    cube = np.stack([source, elev, *noise])
    pix = rng.choice(n * n, size=samples, replace=False)
    rows, cols = pix // n, pix % n
    y = truth[rows, cols] * (1 + 0.05 * rng.normal(size=samples))
    reader = ArrayReader(cube)
    X = read_patches(reader, rows, cols, HALF)
    xy = np.c_[cols * 30.0 + 15, -(rows * 30.0 + 15)]
    return {
        "targets": {"upslope": y},
        "X": X,
        "xy": xy,
        "names": ["source", "elevation", "field1", "field2"],
    }


def _scene_patches(cfg: Any) -> tuple[np.ndarray, Any, list[str]]:
    """Patches at the samples of a scene config through its WindowSource."""
    from geohm.pipeline.inputs import build_cube, sample_points, window_source

    inputs, cube, feats = build_cube(cfg, cfg.features)
    table, _ = sample_points(cfg, inputs, cube)
    with window_source(inputs, feats) as source:
        inv = ~source.transform
        colf, rowf = inv * (table.xy[:, 0], table.xy[:, 1])
        rows, cols = np.floor(rowf).astype(int), np.floor(colf).astype(int)
        X = read_patches(source, rows, cols, HALF)
    # The sample table was read through the same source: the patch centres are its rows.
    centre = X[:, :, HALF, HALF]
    assert np.allclose(centre, table.X[feats].to_numpy(dtype=np.float32), equal_nan=True)
    return X, table, feats


def demo_case() -> dict[str, Any]:
    """Case (b): the demo scene (written by geohm.synth's make_demo)."""
    from geohm.config import load_config
    from geohm.synth.demo import make_demo

    paths = make_demo(WORK / "demo", seed=0)
    cfg = load_config(paths.scene)
    X, table, feats = _scene_patches(cfg)
    targets = {str(t): table.y[t].to_numpy(dtype=float) for t in table.y.columns}
    return {"targets": targets, "X": X, "xy": table.xy, "names": feats}


def _one_hot(X: np.ndarray, names: list[str], categorical: list[str]) -> tuple[np.ndarray, list]:
    """Categorical channels as one channel per class (NaN stays NaN in all of them)."""
    out, out_names = [], []
    for k, name in enumerate(names):
        if name not in categorical:
            out.append(X[:, k])
            out_names.append(name)
            continue
        values = X[:, k]
        for c in np.unique(values[np.isfinite(values)]):
            out.append(np.where(np.isfinite(values), (values == c).astype(np.float32), np.nan))
            out_names.append(f"{name}={int(c)}")
    return np.stack(out, axis=1).astype(np.float32), out_names


def meuse_case() -> dict[str, Any]:
    """Case (c): Meuse covariates (no coordinates), 155 samples, four metals."""
    from geohm.config import load_config

    cfg = load_config(ROOT / "scenes" / "meuse.yaml")
    X, table, feats = _scene_patches(cfg)
    X, names = _one_hot(X, feats, ["ffreq", "soil"])
    targets = {str(t): table.y[t].to_numpy(dtype=float) for t in table.y.columns}
    return {"targets": targets, "X": X, "xy": table.xy, "names": names}


def context_table(X: np.ndarray) -> np.ndarray:
    """Centre pixel, window mean and window sd of every channel (NaN-aware)."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(X, axis=(2, 3))
            sd = np.nanstd(X, axis=(2, 3))
    return np.concatenate([X[:, :, HALF, HALF], mean, sd], axis=1)


def _rf(seed: int) -> RandomForestRegressor:
    return RandomForestRegressor(n_estimators=200, random_state=seed, n_jobs=1)


def _impute(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.nanmean(train, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    return np.where(np.isfinite(train), train, mean), np.where(np.isfinite(test), test, mean)


def run_target(
    X: np.ndarray,
    y: np.ndarray,
    xy: np.ndarray,
    names: list[str],
    *,
    seeds: int,
    cnn_params: dict[str, Any],
) -> dict[str, Any]:
    """Every model on every (seed, fold) of one target; RMSE per pair and coverage."""
    keep = np.isfinite(y)
    X, y, xy = X[keep], y[keep], xy[keep]
    block = default_block_size(xy, np.log1p(np.clip(y, 0, None)), random_state=0)
    folds = spatial_block_folds(xy, n_splits=5, block_size=block, random_state=0)
    centre = X[:, :, HALF, HALF]
    ctx = context_table(X)
    rmse: dict[str, list[float]] = {"rf": [], "rf+ctx": [], "cnn": []}
    covered, epochs, seconds = [], [], 0.0
    for seed in range(seeds):
        for f in range(5):
            tr, te = folds != f, folds == f
            a, b = _impute(centre[tr], centre[te])
            p_rf = _rf(seed).fit(a, y[tr]).predict(b)
            a, b = _impute(ctx[tr], ctx[te])
            p_ctx = _rf(seed).fit(a, y[tr]).predict(b)
            t0 = time.process_time()
            cnn = PatchCNNRegressor(**cnn_params, random_state=seed)
            cnn.fit(X[tr], y[tr], channel_names=names)
            dist = cnn.predict_distribution(X[te], alpha=0.1)
            seconds += time.process_time() - t0
            epochs += cnn.best_epochs_
            assert dist.lower is not None and dist.upper is not None
            covered += list((y[te] >= dist.lower) & (y[te] <= dist.upper))
            for name, p in (("rf", p_rf), ("rf+ctx", p_ctx), ("cnn", dist.prediction)):
                rmse[name].append(float(np.sqrt(np.mean((p - y[te]) ** 2))))
    r = {k: np.asarray(v) for k, v in rmse.items()}
    return {
        "n": int(len(y)),
        "block_m": float(block),
        "rmse": {k: float(v.mean()) for k, v in r.items()},
        "sd_y": float(y.std()),
        "d_rf": (float((r["cnn"] - r["rf"]).mean()), float((r["cnn"] - r["rf"]).std(ddof=1))),
        "d_ctx": (
            float((r["cnn"] - r["rf+ctx"]).mean()),
            float((r["cnn"] - r["rf+ctx"]).std(ddof=1)),
        ),
        "d_ctx_rf": (
            float((r["rf+ctx"] - r["rf"]).mean()),
            float((r["rf+ctx"] - r["rf"]).std(ddof=1)),
        ),
        "wins_rf": int((r["cnn"] < r["rf"]).sum()),
        "wins_ctx": int((r["cnn"] < r["rf+ctx"]).sum()),
        "pairs": int(r["cnn"].size),
        "coverage90": float(np.mean(covered)),
        "median_epochs": float(np.median(epochs)),
        "cnn_cpu_s_per_fit": seconds / (seeds * 5),
        "augment": cnn.augment_,
    }


def main() -> None:
    """Run the cases and print the tables."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="+", default=["synthetic", "demo", "meuse"])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--ensemble", type=int, default=3)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--patience", type=int, default=20)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--out", type=Path, default=WORK / "results.json")
    args = ap.parse_args()
    cnn_params = {
        "patch": HALF,
        "channels": args.channels,
        "ensemble": args.ensemble,
        "max_epochs": args.max_epochs,
        "patience": args.patience,
    }
    WORK.mkdir(parents=True, exist_ok=True)
    makers = {"synthetic": synthetic_case, "demo": demo_case, "meuse": meuse_case}
    results: dict[str, Any] = {}
    start = time.time()
    for case in args.cases:
        data = makers[case]()
        for target, y in data["targets"].items():
            res = run_target(
                data["X"], y, data["xy"], data["names"], seeds=args.seeds, cnn_params=cnn_params
            )
            results[f"{case}/{target}"] = res
            print(f"{case}/{target}: {json.dumps(res)}  ({time.time() - start:.0f} s)", flush=True)
    args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, **results}))
    print()
    print(
        "| case / target | n | RMSE rf | RMSE rf+ctx | RMSE cnn | cnn - rf | cnn - rf+ctx "
        "| rf+ctx - rf | cnn wins (vs rf / rf+ctx) | cnn 90 % coverage | augment |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for key, r in results.items():
        rm = r["rmse"]
        print(
            f"| {key} | {r['n']} | {rm['rf']:.3g} | {rm['rf+ctx']:.3g} | {rm['cnn']:.3g} "
            f"| {r['d_rf'][0]:+.3g} ± {r['d_rf'][1]:.2g} "
            f"| {r['d_ctx'][0]:+.3g} ± {r['d_ctx'][1]:.2g} "
            f"| {r['d_ctx_rf'][0]:+.3g} ± {r['d_ctx_rf'][1]:.2g} "
            f"| {r['wins_rf']}/{r['pairs']} / {r['wins_ctx']}/{r['pairs']} "
            f"| {r['coverage90']:.2f} | {r['augment']} |"
        )
    print(f"\ntotal {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()

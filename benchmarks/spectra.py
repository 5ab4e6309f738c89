"""Seed 004's transfer experiment with the 1D ResNet on 500 real KSSL MIR spectra.

The committed KSSL sample (``tests/data/kssl``: absorbance at 600-4000 cm-1, clay,
CEC, organic carbon, exchangeable K) is split at random, for each split seed, into

- a **source** set (300 spectra) labelled with one property (default clay, %),
- a **target** training set (100 spectra) labelled with a second property
  (default CEC, cmol(+)/kg), and
- a **test** set (the other 100 spectra), scored on the second property.

The three models of seed 004 come from one :func:`geohm.models.spectral.compare_transfer`
call (source net linearly recalibrated on the target training set, target-only net,
source net fine-tuned with the convolutional and residual blocks frozen), and two
baselines are fitted on the same 100 target spectra: PLSR (``n_components`` by
5-fold CV) and a random forest. Every model sees the same preprocessed spectra
(Savitzky-Golay smoothing, 11 points, degree 2; then SNV). Integrated gradients of
the transferred net over the first split's test spectra give the wavenumber
contributions (CSV and PNG in ``benchmarks/_work/spectra``). Run by hand::

    python benchmarks/spectra.py                      # the README table
    python benchmarks/spectra.py --quick              # a small smoke run

and copy the printed tables into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cross_decomposition import PLSRegression
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.pipeline import make_pipeline

from geohm.io.reports import save_figure, write_csv, write_text
from geohm.io.spectra import read_spectra
from geohm.models.spectral import SpectralResNetRegressor, compare_transfer, spectral_scores
from geohm.spectra import (
    SavitzkyGolay,
    StandardNormalVariate,
    contribution_regions,
    plot_wavelength_contribution,
    wavelength_contribution,
)

ROOT = Path(__file__).resolve().parents[1]
KSSL = ROOT / "tests" / "data" / "kssl" / "toy_kssl_mir.csv.gz"
KSSL_SHA256 = "044841268f5f6a12e5472092bf89ec3e7746727c773810577135c78a9ca1fc6b"

#: short name -> (column in the KSSL table, unit)
PROPERTIES = {
    "clay": ("clay.tot_usda.a334_w.pct", "%"),
    "cec": ("cec_usda.a723_cmolc.kg", "cmol(+)/kg"),
    "oc": ("oc_usda.c729_w.pct", "%"),
    "k": ("k.ext_usda.a725_cmolc.kg", "cmol(+)/kg"),
}
MODELS = ["ResNet source (recalibrated)", "ResNet target only", "ResNet transfer", "PLSR", "RF"]
_RESNET_ROWS = {
    "source": "ResNet source (recalibrated)",
    "target only": "ResNet target only",
    "transfer": "ResNet transfer",
}


def preprocess() -> Any:
    """The spectral preprocessing every model gets (stateless, row by row)."""
    return make_pipeline(SavitzkyGolay(window_length=11, polyorder=2), StandardNormalVariate())


def baselines(
    X_tgt: np.ndarray,
    y_tgt: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    *,
    seed: int,
    quick: bool,
) -> dict[str, dict[str, float]]:
    """PLSR (components by 5-fold CV) and a random forest on the target training set."""
    rows: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    max_comp = min(5 if quick else 20, X_tgt.shape[0] - X_tgt.shape[0] // 5 - 1)
    pls = GridSearchCV(
        PLSRegression(scale=False),
        {"n_components": list(range(1, max_comp + 1))},
        cv=KFold(5, shuffle=True, random_state=seed),
        scoring="neg_root_mean_squared_error",
    ).fit(X_tgt, y_tgt)
    pred = np.asarray(pls.predict(X_test)).ravel()
    rows["PLSR"] = {
        **spectral_scores(y_test, pred),
        "n_train": y_tgt.size,
        "fit_s": time.perf_counter() - t0,
        "n_components": pls.best_params_["n_components"],
    }
    t0 = time.perf_counter()
    rf = RandomForestRegressor(
        n_estimators=50 if quick else 500, max_features=0.33, n_jobs=2, random_state=seed
    ).fit(X_tgt, y_tgt)
    rows["RF"] = {
        **spectral_scores(y_test, rf.predict(X_test)),
        "n_train": y_tgt.size,
        "fit_s": time.perf_counter() - t0,
    }
    return rows


def run(
    *,
    source: str = "clay",
    target: str = "cec",
    n_source: int = 300,
    n_target: int = 100,
    splits: int = 3,
    quick: bool = False,
    data: Path = KSSL,
    work: Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the experiment; return per-split scores, the summary and the contributions.

    Parameters
    ----------
    source, target : str
        Property names (keys of :data:`PROPERTIES`).
    n_source, n_target : int
        Source and target training spectra per split; the rest are test spectra.
    splits : int
        Random splits (seeds 0 .. splits - 1).
    quick : bool
        Short training (a smoke run for the tests), not for reporting.
    data : Path
        The KSSL table.
    work : Path, optional
        Folder for the contribution CSV and PNG; None writes nothing.
    progress : bool
        Print each split's test RMSE as it finishes.

    Returns
    -------
    dict
        ``scores`` (one row per split and model), ``summary`` (mean and sd per model),
        ``contributions`` and ``regions`` (integrated gradients of the transferred net,
        split 0), ``settings``.
    """
    spectra = read_spectra(data, unit="cm-1", sha256=KSSL_SHA256 if data == KSSL else None)
    X = preprocess().fit_transform(spectra.spectra)
    y_src_all = spectra.targets[PROPERTIES[source][0]].to_numpy(dtype=float)
    y_tgt_all = spectra.targets[PROPERTIES[target][0]].to_numpy(dtype=float)
    if n_source + n_target >= X.shape[0]:
        raise ValueError(f"n_source + n_target must leave test spectra (< {X.shape[0]})")
    net = SpectralResNetRegressor(
        max_epochs=3 if quick else 300, patience=2 if quick else 30, random_state=0
    )
    records = []
    contributions = regions = None
    explained = X[:0]
    for split in range(splits):
        perm = np.random.default_rng(split).permutation(X.shape[0])
        src, tgt, test = np.split(perm, [n_source, n_source + n_target])
        net.set_params(random_state=split)
        table, models = compare_transfer(
            X[src],
            y_src_all[src],
            X[tgt],
            y_tgt_all[tgt],
            X[test],
            y_tgt_all[test],
            estimator=net,
            same_property=source == target,
            return_models=True,
        )
        rows = {_RESNET_ROWS[k]: dict(v) for k, v in table.to_dict(orient="index").items()}
        rows["ResNet transfer"]["best_epoch"] = models["transfer"].best_epoch_
        rows["ResNet target only"]["best_epoch"] = models["target only"].best_epoch_
        rows.update(
            baselines(X[tgt], y_tgt_all[tgt], X[test], y_tgt_all[test], seed=split, quick=quick)
        )
        for model, r in rows.items():
            records.append({"split": split, "model": model, **r})
        if progress:
            rmse = ", ".join(f"{m} {r['rmse']:.2f}" for m, r in rows.items())
            print(f"split {split}: test RMSE {rmse}", flush=True)
        if split == 0:
            explained = X[test[:10]] if quick else X[test]
            contributions = wavelength_contribution(
                models["transfer"],
                explained,
                wavelengths=spectra.wavenumbers,
                name="wavenumber",
                n_steps=8 if quick else 50,
            )
            regions = contribution_regions(contributions, top=6, smooth=9)
    scores = pd.DataFrame.from_records(records)
    summary = (
        scores.groupby("model", sort=False)[["rmse", "r2", "rpd", "rpiq", "fit_s"]]
        .agg(["mean", "std"])
        .reindex(MODELS)
    )
    assert contributions is not None and regions is not None
    if work is not None:
        work.mkdir(parents=True, exist_ok=True)
        write_csv(work / f"scores_{source}_{target}.csv", scores)
        write_csv(
            work / f"contributions_{source}_{target}.csv", contributions.set_index("wavenumber")
        )
        fig = plot_wavelength_contribution(
            contributions,
            spectra=explained,
            regions=regions,
            invert_axis=True,
            units=PROPERTIES[target][1],
            xlabel="wavenumber (cm-1)",
            spectra_label="preprocessed absorbance (SG + SNV), mean ± 1 sd",
            title=f"ResNet {source} -> {target}: integrated gradients (test spectra, split 0)",
        )
        save_figure(fig, work / f"contributions_{source}_{target}.png")
    return {
        "scores": scores,
        "summary": summary,
        "contributions": contributions,
        "regions": regions,
        "settings": {
            "source": source,
            "target": target,
            "n_source": n_source,
            "n_target": n_target,
            "n_test": X.shape[0] - n_source - n_target,
            "splits": splits,
            "quick": quick,
        },
    }


def markdown(result: dict[str, Any]) -> str:
    """The README tables: mean ± sd over splits, per-split RMSE, top regions."""
    s = result["settings"]
    unit = PROPERTIES[s["target"]][1]
    summary = result["summary"]
    lines = [
        f"Source: {s['source']} ({s['n_source']} spectra); target: {s['target']} "
        f"({s['n_target']} training, {s['n_test']} test spectra); {s['splits']} split(s). "
        f"Mean ± sd over splits.",
        "",
        f"| model | RMSE ({unit}) | R2 | RPD | RPIQ | fit (s) |",
        "|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        r = summary.loc[model]
        cells = [
            f"{r[(m, 'mean')]:.{d}f} ± {0.0 if np.isnan(r[(m, 'std')]) else r[(m, 'std')]:.{d}f}"
            for m, d in (("rmse", 2), ("r2", 2), ("rpd", 2), ("rpiq", 2), ("fit_s", 1))
        ]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    scores = result["scores"]
    per = scores.pivot(index="split", columns="model", values="rmse")[MODELS]
    lines += ["", "Test RMSE per split:", "", "| split | " + " | ".join(MODELS) + " |"]
    lines.append("|---" * (len(MODELS) + 1) + "|")
    for split, row in per.iterrows():
        lines.append(f"| {split} | " + " | ".join(f"{v:.2f}" for v in row) + " |")
    pls = scores.loc[scores.model == "PLSR", "n_components"].astype(int).tolist()
    lines += ["", f"PLSR components chosen by CV per split: {pls}."]
    lines += ["", "Top wavenumber regions (integrated gradients, transferred net, split 0):", ""]
    lines += ["| peak (cm-1) | region (cm-1) | share of total |", "|---|---|---|"]
    for _, r in result["regions"].iterrows():
        lines.append(f"| {r.peak:.0f} | {r.start:.0f}-{r.end:.0f} | {r.share:.1%} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default="clay", choices=sorted(PROPERTIES))
    ap.add_argument("--target", default="cec", choices=sorted(PROPERTIES))
    ap.add_argument("--n-source", type=int, default=300)
    ap.add_argument("--n-target", type=int, default=100)
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="short training, 1 split (smoke run)")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "spectra")
    args = ap.parse_args()
    t0 = time.perf_counter()
    result = run(
        source=args.source,
        target=args.target,
        n_source=args.n_source,
        n_target=args.n_target,
        splits=1 if args.quick else args.splits,
        quick=args.quick,
        work=args.work,
        progress=True,
    )
    text = markdown(result) + f"\n(wall time {time.perf_counter() - t0:.0f} s)\n"
    write_text(args.work / f"results_{args.source}_{args.target}.md", text)
    print(text)


if __name__ == "__main__":
    main()

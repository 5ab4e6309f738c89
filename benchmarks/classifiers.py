"""Seed 001's contamination classifiers on the built-in demo's target year (Tables 5-6 style).

Samples are labelled contaminated when any metal exceeds a limit; RF, SVM and KNN (grid
searched, F1-macro, balanced class weights) are compared by stratified 10-fold CV
repeated 3 times with fixed seeds. Two label sets: GB 15618-2018 screening values (other
land, pH 6.8: Cu 100, Pb 120 mg/kg) and the Shaanxi background maxima of seed 002
Table 6 (Cu 43.6, Pb 34.5 mg/kg: enrichment above the regional background). Run by hand:

    python benchmarks/classifiers.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from geohm.config import load_config
from geohm.models.classify import UNKNOWN_LABEL, compare_classifiers, contamination_labels
from geohm.pipeline import build_cube, sample_points
from geohm.synth import make_demo

LABELS = {
    "GB 15618 screening (Cu 100, Pb 120)": {"Cu": 100.0, "Pb": 120.0},
    "Shaanxi background max (Cu 43.6, Pb 34.5)": {"Cu": 43.6, "Pb": 34.5},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(__file__).parent / "_work" / "classifiers")
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data = args.work / "demo"
    if not (data / "scene.yaml").exists():
        make_demo(data, seed=0, size=400)
    cfg = load_config(data / "scene.yaml")
    inputs, cube, _ = build_cube(cfg, cfg.features)
    table, _ = sample_points(cfg, inputs, cube)
    for title, limits in LABELS.items():
        y = contamination_labels(table.y, limits)
        keep = y != UNKNOWN_LABEL
        t = time.perf_counter()
        df = compare_classifiers(
            table.X[keep], y[keep], folds=args.folds, repeats=args.repeats, seed=0
        )
        print(
            f"\n### {title}: {int((y == 1).sum())} contaminated of {int(keep.sum())} samples "
            f"({time.perf_counter() - t:.0f} s)\n"
        )
        print("| model | accuracy | precision | recall | F1 | folds |")
        print("|---|---|---|---|---|---|")
        for name, r in df.iterrows():
            print(
                f"| {name} | {r['accuracy']} | {r['precision']} | {r['recall']} | {r['f1']} | "
                f"{r['folds_used']} |"
            )


if __name__ == "__main__":
    main()

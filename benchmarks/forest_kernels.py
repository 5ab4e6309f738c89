"""CPU cost of the random-forest map layers per pixel: concentration, interval, exceedance.

A 200-tree forest (log target, as geohm fits it) on 43 random samples of 19 features,
evaluated on 500,000 random float32 rows, one thread, best of 3 (CPU seconds):

* concentration: ``accelerate(pipeline).predict`` (the compiled kernel);
* concentration + 90 % interval: ``IntervalModel.predict_interval`` (quantile forest);
* exceedance probability: tree votes above a screening value, with scikit-learn's
  per-tree ``predict`` and with the compiled kernel's leaf ids.

Run by hand: ``python benchmarks/forest_kernels.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from geohm.models.compiled import accelerate
from geohm.models.ensemble import exceedance_probability
from geohm.models.uncertainty import interval_model
from geohm.preprocess import build_pipeline


def _cpu(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    rng = np.random.default_rng(0)
    X = rng.random((43, 19))
    y = X[:, 0] * 50 + rng.normal(0, 5, 43) + 20
    pipe = build_pipeline(RandomForestRegressor(200, random_state=0, n_jobs=1), log=True)
    pipe.fit(X, y)
    fast = accelerate(pipe)
    interval = interval_model(pipe, X, y, coverage=0.9, random_state=0)
    rows = rng.random((500_000, 19)).astype("float32")
    cases = {
        "concentration, scikit-learn": lambda: pipe.predict(rows),
        "concentration, compiled": lambda: fast.predict(rows),
        "concentration + 90 % interval": lambda: interval.predict_interval(rows),
        "exceedance, scikit-learn trees": lambda: exceedance_probability(pipe, rows, 40.0),
        "exceedance, compiled": lambda: exceedance_probability(fast, rows, 40.0),
    }
    print("| layer (500,000 rows, 200 trees) | CPU s |\n|---|---|")
    for name, fn in cases.items():
        print(f"| {name} | {_cpu(fn):.2f} |", flush=True)


if __name__ == "__main__":
    main()

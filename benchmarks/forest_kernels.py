"""CPU cost of the random-forest map layers per pixel: concentration, interval, exceedance.

A 200-tree forest (log target, as geohm fits it) on 43 random samples of 19 features,
evaluated on 500,000 random float32 rows, one thread, best of 3 (CPU seconds):

* concentration: scikit-learn's ``predict`` and ``accelerate(pipeline).predict`` (the
  compiled kernel, the extension module built by ``pip install``); with ``--numba``
  also a numba port of the same bit-vector kernel on the same tables (``numba`` is not a
  geohm dependency: ``pip install numba`` first), which is how the build product was
  chosen (issue 13 item 6);
* concentration + 90 % interval: ``IntervalModel.predict_interval`` (quantile forest);
* exceedance probability: tree votes above a screening value, with scikit-learn's trees
  (per-tree ``apply``) and with the compiled kernel's leaf ids;
* all three layers of a window: the interval and the exceedance as two calls (two
  traversals of the forest, geohm before issue 13 item 5) and as one
  ``predict_distribution`` call (one traversal).

Every variant's numbers are checked equal to scikit-learn's before it is timed.

Run by hand: ``python benchmarks/forest_kernels.py [--numba]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from geohm.models.compiled import accelerate
from geohm.models.ensemble import exceedance_probability, predict_distribution
from geohm.models.uncertainty import interval_model
from geohm.preprocess import build_pipeline


def _cpu(fn: Callable[[], Any], repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


try:  # numba is not a geohm dependency: the port below is timed only when it is installed
    import numba
    from numba.cpython.unsafe.numbers import trailing_zeros
except ImportError:
    numba = None

if numba is not None:

    @numba.njit(cache=True, nogil=True)  # compiled once, then loaded from the on-disk cache
    def _numba_qs(X, thr, thr_off, thr_len, masks, mask_off, leaf_values, leaf_off, n_words, out):  # type: ignore[no-untyped-def]
        """The bit-vector kernel of ``_forest_kernel.c`` (``quickscorer``), for numba."""
        n, n_feat = X.shape
        n_trees = leaf_off.size
        width = n_trees * n_words
        acc = np.empty(width, np.uint64)
        full = ~np.uint64(0)
        for r in range(n):
            for k in range(width):
                acc[k] = full
            for f in range(n_feat):
                size = thr_len[f]
                if size == 0:
                    continue
                v = X[r, f]
                o = thr_off[f]
                b = 0
                if size <= 128:
                    for j in range(size):
                        b += thr[o + j] < v
                else:
                    lo, hi = 0, size
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if thr[o + mid] < v:
                            lo = mid + 1
                        else:
                            hi = mid
                    b = lo
                m0 = mask_off[f] + b * width
                for k in range(width):
                    acc[k] &= masks[m0 + k]
            s = 0.0
            for t in range(n_trees):
                w = 0
                while acc[t * n_words + w] == 0:
                    w += 1
                s += leaf_values[leaf_off[t] + 64 * w + trailing_zeros(acc[t * n_words + w])]
            out[r] = s / n_trees


def _numba_predict(q: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """Predict with the numba port on the compiled forest's own tables ``q``."""

    def predict(x: np.ndarray) -> np.ndarray:
        out = np.empty(len(x))
        _numba_qs(x, q["thr"], q["thr_off"], q["thr_len"], q["masks"], q["mask_off"],
                  q["leaf_values"], q["leaf_off"], q["n_words"], out)  # fmt: skip
        return out

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--numba", action="store_true", help="also time the numba port")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    X = rng.random((43, 19))
    y = X[:, 0] * 50 + rng.normal(0, 5, 43) + 20
    pipe = build_pipeline(RandomForestRegressor(200, random_state=0, n_jobs=1), log=True)
    pipe.fit(X, y)
    fast = accelerate(pipe)
    interval = interval_model(pipe, X, y, coverage=0.9, random_state=0)
    rows = rng.random((500_000, 19)).astype("float32")
    screening = np.full(len(rows), 40.0)

    ref = pipe.predict(rows)
    assert np.array_equal(fast.predict(rows), ref), "compiled kernel differs from scikit-learn"
    two = (interval.predict_interval(rows), exceedance_probability(fast, rows, screening))
    one = predict_distribution(fast, rows, interval=interval, thresholds=screening)
    assert np.array_equal(one.prediction, two[0][0]) and np.array_equal(one.prediction, ref)
    assert np.array_equal(one.lower, two[0][1]) and np.array_equal(one.upper, two[0][2])
    assert np.array_equal(one.exceedance, two[1])
    assert np.array_equal(exceedance_probability(pipe, rows, screening), two[1])

    cases: dict[str, Callable[[], Any]] = {
        "concentration, scikit-learn": lambda: pipe.predict(rows),
        "concentration, compiled kernel (extension)": lambda: fast.predict(rows),
    }
    if args.numba:
        if numba is None:
            raise SystemExit("--numba needs numba: pip install numba")
        forest = fast.steps[-1][1].regressor_
        Xt = np.ascontiguousarray(pipe[:-1].transform(rows), dtype=np.float32)
        numba_predict = _numba_predict(forest._qs)
        t0 = time.perf_counter()
        numba_predict(Xt[:10])
        first = time.perf_counter() - t0
        assert np.array_equal(numba_predict(Xt), forest.forest_.predict(Xt)), "numba differs"
        print(f"numba: first call (compile, or load from the cache) {first:.2f} s")
        cases["forest only, compiled kernel (extension)"] = lambda: forest.predict(Xt)
        cases["forest only, numba port of the kernel"] = lambda: numba_predict(Xt)
    cases.update(
        {
            "concentration + 90 % interval": lambda: interval.predict_interval(rows),
            "exceedance, scikit-learn trees": lambda: exceedance_probability(pipe, rows, 40.0),
            "exceedance, compiled kernel": lambda: exceedance_probability(fast, rows, 40.0),
            "all three layers, two traversals (interval; exceedance)": lambda: (
                interval.predict_interval(rows),
                exceedance_probability(fast, rows, screening),
            ),
            "all three layers, one traversal (predict_distribution)": lambda: predict_distribution(
                fast, rows, interval=interval, thresholds=screening
            ),
        }
    )
    print("| layer (500,000 rows, 200 trees) | CPU s |\n|---|---|")
    times = {}
    for name, fn in cases.items():
        times[name] = _cpu(fn)
        print(f"| {name} | {times[name]:.2f} |", flush=True)
    base, kernel = times["concentration, scikit-learn"], times[list(cases)[1]]
    speedup = base / kernel
    print(f"\ncompiled kernel: {speedup:.2f}x scikit-learn's single-thread predict")


if __name__ == "__main__":
    main()

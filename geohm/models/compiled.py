"""Fast, exact prediction of fitted random forests (a small compiled C kernel).

:func:`accelerate` takes a fitted geohm estimator (a scikit-learn
:class:`~sklearn.pipeline.Pipeline` of columns/scale/impute/select steps ending in a
model, possibly wrapped in a log-target
:class:`~sklearn.compose.TransformedTargetRegressor`) and returns a copy whose final
:class:`~sklearn.ensemble.RandomForestRegressor` (or
:class:`~sklearn.ensemble.ExtraTreesRegressor`) is replaced by a
:class:`CompiledForest`. The preprocessing steps and the target back-transform run as
before; only the trees are evaluated differently.

How the trees are evaluated
---------------------------
One generic C kernel is compiled once per process (about a second, with the system C
compiler ``cc``/``$CC``; nothing is compiled per model), and each forest is flattened
into numpy tables that it reads. Forests whose trees have at most 128 leaves (what a
few dozen to ~100 soil samples grow) are evaluated with the bit-vector algorithm of
QuickScorer (Lucchese et al., SIGIR 2015): per feature, the pixel's value is located
among the sorted split thresholds of all trees, and precomputed masks (one or two
64-bit words per tree and threshold interval) remove the leaves the pixel cannot reach;
the exit leaf is the lowest remaining bit. No data-dependent branch per node, so it is
several times faster than walking the trees. Larger trees (forests fitted on hundreds
of samples) gain nothing measurable from a compiled walk, so :func:`accelerate` leaves
those forests to scikit-learn; the walk kernel only serves rows with missing values.

Both are exact: the features are float32 (as scikit-learn's trees use them), each
float64 split threshold is rounded *down* to float32, which keeps every ``x <= t``
decision for float32 ``x`` identical, and the leaf values (float64) are summed in tree
order and divided by the number of trees as scikit-learn does: the predictions are
bit-identical to scikit-learn's single-threaded ``predict`` (its multi-threaded
``predict`` adds the trees in thread order, so it can differ in the last bits). Rows
with a missing value (NaN) follow each split's ``missing_go_to_left`` like
scikit-learn.

Threads: a :class:`CompiledForest` splits large tables over ``n_jobs`` threads (the C
kernel releases the GIL); it exposes ``n_jobs`` through ``get_params``/``set_params``,
so :func:`geohm.predict.predict_map` sets it to 1 while it runs windows in parallel,
exactly as it does for scikit-learn's forests. ``predict`` may be called from several
threads at once. A :class:`CompiledForest` pickles (and saves, :mod:`geohm.io.models`)
as the original forest only: loading checks its trees and rebuilds the tables from them,
and the kernel is compiled lazily in the process that first predicts.

Leaves and quantiles (quantile regression forests)
-------------------------------------------------
:meth:`CompiledForest.apply_mean` returns, from the same traversal, the exit node of
every tree (equal to each tree's ``apply``) and the mean (equal to ``predict``);
:func:`qrf_quantiles` computes the weighted quantiles of a quantile regression forest
from those leaves. :mod:`geohm.models.uncertainty` uses both for the uncertainty maps.

Without a working C compiler :func:`accelerate` logs a warning and returns the
estimator unchanged.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from geohm._system import usable_cpus

__all__ = [
    "CompiledForest",
    "accelerate",
    "check_tree_structure",
    "kernel_available",
    "qrf_quantiles",
    "tree_votes",
]

log = logging.getLogger("geohm")

#: Trees with at most this many leaves use the bit-vector (QuickScorer) kernel.
MAX_QS_LEAVES = 128
#: Largest bit-vector table (bytes); a larger one would not stay in cache.
MAX_QS_TABLE = 8 * 2**20
#: Fewer rows than this per thread are not worth a thread.
MIN_ROWS_PER_THREAD = 20_000

_NODE = np.dtype(
    [("thr", "<f4"), ("left", "<i4"), ("right", "<i4"), ("feat", "<i2"), ("nanright", "<i2")]
)

_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <math.h>

typedef struct { float thr; int32_t left; int32_t right; int16_t feat; int16_t nanright; } node_t;

/* Walk every tree, one tree at a time over all rows (the tree stays in cache); leaves
   point to themselves. out[] is summed in tree order, then divided, as scikit-learn.
   With ids (n x n_trees, row-major), also the exit node of each tree plus id_base[t]. */
static inline void walk(const float* X, int64_t n, int64_t stride, const node_t* nodes,
                        const int64_t* tree_off, const double* value, int32_t n_trees,
                        const int32_t* id_base, int32_t* ids, double* out)
{
  for (int64_t r = 0; r < n; r++) out[r] = 0.0;
  for (int32_t t = 0; t < n_trees; t++) {
    const node_t* tn = nodes + tree_off[t];
    const double* tv = value + tree_off[t];
    for (int64_t r = 0; r < n; r++) {
      const float* x = X + r * stride;
      int32_t i = 0;
      for (;;) {
        const node_t nd = tn[i];
        if (nd.left == i) break;
        const float v = x[nd.feat];
        i = ((v > nd.thr) | ((v != v) & nd.nanright)) ? nd.right : nd.left;
      }
      out[r] += tv[i];
      if (ids) ids[r * n_trees + t] = i + id_base[t];
    }
  }
  for (int64_t r = 0; r < n; r++) out[r] /= n_trees;
}

void geohm_walk(const float* X, int64_t n, int64_t stride, const node_t* nodes,
                const int64_t* tree_off, const double* value, int32_t n_trees, double* out)
{
  walk(X, n, stride, nodes, tree_off, value, n_trees, 0, 0, out);
}

void geohm_walk_apply(const float* X, int64_t n, int64_t stride, const node_t* nodes,
                      const int64_t* tree_off, const double* value, int32_t n_trees,
                      const int32_t* id_base, int32_t* ids, double* out)
{
  walk(X, n, stride, nodes, tree_off, value, n_trees, id_base, ids, out);
}

/* QuickScorer: per feature, AND the masks (n_words 64-bit words per tree) of the
   threshold interval holding x; the exit leaf is the lowest remaining bit. With ids,
   also leaf_node[leaf] (the exit node's id) + id_base[t] per tree. */
static inline void quickscorer(const float* X, int64_t n, int64_t stride, int32_t n_feat,
                               const float* thr, const int64_t* thr_off, const int32_t* thr_len,
                               const uint64_t* masks, const int64_t* mask_off,
                               const double* leaf_value, const int64_t* leaf_off,
                               int32_t n_trees, int32_t n_words, uint64_t* acc, double* out,
                               const int32_t* leaf_node, const int32_t* id_base, int32_t* ids)
{
  const int64_t width = (int64_t)n_trees * n_words;
  for (int64_t r = 0; r < n; r++) {
    const float* x = X + r * stride;
    for (int64_t k = 0; k < width; k++) acc[k] = ~(uint64_t)0;
    for (int32_t f = 0; f < n_feat; f++) {
      const int32_t len = thr_len[f];
      if (len == 0) continue;
      const float* T = thr + thr_off[f];
      const float v = x[f];
      int32_t b = 0;
      if (len <= 128) {
        for (int32_t j = 0; j < len; j++) b += T[j] < v;
      } else {
        int32_t lo = 0, hi = len;
        while (lo < hi) {
          const int32_t mid = (lo + hi) >> 1;
          if (T[mid] < v) lo = mid + 1; else hi = mid;
        }
        b = lo;
      }
      const uint64_t* m = masks + mask_off[f] + (int64_t)b * width;
      for (int64_t k = 0; k < width; k++) acc[k] &= m[k];
    }
    double s = 0.0;
    int32_t* row_ids = ids ? ids + r * n_trees : 0;
    for (int32_t t = 0; t < n_trees; t++) {
      const uint64_t* a = acc + (int64_t)t * n_words;
      int32_t w = 0;
      while (a[w] == 0) w++;  /* the exit leaf's bit is always set */
      const int64_t leaf = leaf_off[t] + 64 * w + __builtin_ctzll(a[w]);
      s += leaf_value[leaf];
      if (ids) row_ids[t] = leaf_node[leaf] + id_base[t];
    }
    out[r] = s / n_trees;
  }
}

void geohm_qs(const float* X, int64_t n, int64_t stride, int32_t n_feat,
              const float* thr, const int64_t* thr_off, const int32_t* thr_len,
              const uint64_t* masks, const int64_t* mask_off,
              const double* leaf_value, const int64_t* leaf_off, int32_t n_trees,
              int32_t n_words, uint64_t* acc, double* out)
{
  quickscorer(X, n, stride, n_feat, thr, thr_off, thr_len, masks, mask_off, leaf_value,
              leaf_off, n_trees, n_words, acc, out, 0, 0, 0);
}

void geohm_qs_apply(const float* X, int64_t n, int64_t stride, int32_t n_feat,
                    const float* thr, const int64_t* thr_off, const int32_t* thr_len,
                    const uint64_t* masks, const int64_t* mask_off,
                    const double* leaf_value, const int64_t* leaf_off, int32_t n_trees,
                    int32_t n_words, uint64_t* acc, double* out,
                    const int32_t* leaf_node, const int32_t* id_base, int32_t* ids)
{
  quickscorer(X, n, stride, n_feat, thr, thr_off, thr_len, masks, mask_off, leaf_value,
              leaf_off, n_trees, n_words, acc, out, leaf_node, id_base, ids);
}

static int cmp_i32(const void* a, const void* b)
{
  const int32_t x = *(const int32_t*)a, y = *(const int32_t*)b;
  return (x > y) - (x < y);
}

/* Weighted quantiles of a quantile regression forest. Row r's weight of training rank
   c is the sum, in tree order, of the CSR rows ids[r, t] (columns: ranks, ascending
   target); out[k * ld + r] = y_sorted at the first rank (ascending) whose running sum
   reaches qs[k] * total - 1e-9 (total: the running sum over all the row's ranks), i.e.
   inf{y : F(y | x) >= q}. buf: n_train zeros (left zero); touched: n_train int32.
   Few training samples (n_train <= 8 x the row's stored weights): the whole buffer is
   scanned; else the touched ranks are collected and sorted. Same sums either way. */
void geohm_qrf_quantiles(const int32_t* ids, int64_t n, int32_t n_trees,
                         const int64_t* indptr, const int32_t* indices, const double* data,
                         const double* y_sorted, int32_t n_train, const double* qs,
                         int32_t n_q, double* buf, int32_t* touched, double* out, int64_t ld)
{
  for (int64_t r = 0; r < n; r++) {
    const int32_t* row = ids + r * n_trees;
    int64_t stored = n_trees;  /* a lower bound: a leaf holds training samples */
    if ((int64_t)n_train > 8 * stored) {
      stored = 0;
      for (int32_t t = 0; t < n_trees; t++) stored += indptr[row[t] + 1] - indptr[row[t]];
    }
    if ((int64_t)n_train <= 8 * stored) {
      for (int32_t t = 0; t < n_trees; t++) {
        const int64_t end = indptr[row[t] + 1];
        for (int64_t j = indptr[row[t]]; j < end; j++) buf[indices[j]] += data[j];
      }
      double total = 0.0;
      for (int32_t c = 0; c < n_train; c++) total += buf[c];  /* + 0.0 changes nothing */
      for (int32_t k = 0; k < n_q; k++) {
        const double target = qs[k] * total - 1e-9;
        double cum = 0.0;
        int32_t pos = -1, last = -1;  /* last: the highest rank with a weight */
        for (int32_t c = 0; c < n_train; c++) {
          const double w = buf[c];
          if (w == 0.0) continue;
          cum += w;
          last = c;
          if (cum >= target) { pos = c; break; }
        }
        if (pos < 0) pos = last;  /* not reached (rounding): the highest rank */
        out[k * ld + r] = pos < 0 ? NAN : y_sorted[pos];
      }
      for (int32_t c = 0; c < n_train; c++) buf[c] = 0.0;
      continue;
    }
    if (stored == 0) {
      for (int32_t k = 0; k < n_q; k++) out[k * ld + r] = NAN;
      continue;
    }
    int32_t m = 0;
    for (int32_t t = 0; t < n_trees; t++) {
      const int64_t end = indptr[row[t] + 1];
      for (int64_t j = indptr[row[t]]; j < end; j++) {
        const int32_t c = indices[j];
        if (buf[c] == 0.0) touched[m++] = c;  /* weights are > 0 */
        buf[c] += data[j];
      }
    }
    if (m <= 16) {
      for (int32_t i = 1; i < m; i++) {
        const int32_t c = touched[i];
        int32_t j = i - 1;
        while (j >= 0 && touched[j] > c) { touched[j + 1] = touched[j]; j--; }
        touched[j + 1] = c;
      }
    } else {
      qsort(touched, (size_t)m, sizeof(int32_t), cmp_i32);
    }
    double total = 0.0;
    for (int32_t i = 0; i < m; i++) total += buf[touched[i]];
    for (int32_t k = 0; k < n_q; k++) {
      const double target = qs[k] * total - 1e-9;
      double cum = 0.0;
      int32_t pos = m - 1;
      for (int32_t i = 0; i < m; i++) {
        cum += buf[touched[i]];
        if (cum >= target) { pos = i; break; }
      }
      out[k * ld + r] = y_sorted[touched[pos]];
    }
    for (int32_t i = 0; i < m; i++) buf[touched[i]] = 0.0;
  }
}

/* Per row, the number of trees whose leaf value is above the row's threshold (ids:
   global leaf ids, row-major (n, n_trees); a NaN threshold counts no tree). */
void geohm_tree_votes(const int32_t* ids, int64_t n, int32_t n_trees, const double* leaf,
                      const double* thr, int32_t* count) {
  for (int64_t r = 0; r < n; r++) {
    const int32_t* row = ids + r * (int64_t)n_trees;
    const double t = thr[r];
    int32_t c = 0;
    for (int32_t k = 0; k < n_trees; k++) c += leaf[row[k]] > t;
    count[r] = c;
  }
}
"""

_LIB_LOCK = threading.Lock()
_FALLBACK_LOGGED = threading.Event()  # the "no kernel, scikit-learn's trees" warning, once
_LIB: ctypes.CDLL | None = None
_LIB_ERROR: str | None = None


def _compile() -> ctypes.CDLL:
    """Compile the kernel into a temporary folder, load it, and remove the folder."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise OSError("no C compiler found (cc, gcc or $CC)")
    with tempfile.TemporaryDirectory(prefix="geohm-forest-") as tmp:
        src = Path(tmp) / "forest.c"
        lib = Path(tmp) / "forest.so"
        src.write_text(_SOURCE)
        errors = []
        # -march=native: the library is built and used on this very machine.
        for arch in (["-march=native"], []):
            cmd = [cc, "-O3", "-std=c99", *arch, "-shared", "-fPIC", "-o", str(lib), str(src)]
            res = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if res.returncode == 0:
                break
            errors.append(res.stderr.strip()[-500:])
        else:
            raise OSError(f"{cc} could not compile the forest kernel: {errors[-1]}")
        handle = ctypes.CDLL(str(lib))  # stays loaded after the file is removed
    ptr, i64, i32 = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32
    handle.geohm_walk.argtypes = [ptr, i64, i64, ptr, ptr, ptr, i32, ptr]
    handle.geohm_walk.restype = None
    handle.geohm_qs.argtypes = [ptr, i64, i64, i32, ptr, ptr, ptr, ptr, ptr, ptr, ptr, i32, i32]
    handle.geohm_qs.argtypes += [ptr, ptr]
    handle.geohm_qs.restype = None
    handle.geohm_walk_apply.argtypes = [*handle.geohm_walk.argtypes[:-1], ptr, ptr, ptr]
    handle.geohm_walk_apply.restype = None
    handle.geohm_qs_apply.argtypes = [*handle.geohm_qs.argtypes, ptr, ptr, ptr]
    handle.geohm_qs_apply.restype = None
    handle.geohm_qrf_quantiles.argtypes = [ptr, i64, i32, ptr, ptr, ptr, ptr, i32, ptr, i32]
    handle.geohm_qrf_quantiles.argtypes += [ptr, ptr, ptr, i64]
    handle.geohm_qrf_quantiles.restype = None
    handle.geohm_tree_votes.argtypes = [ptr, i64, i32, ptr, ptr, ptr]
    handle.geohm_tree_votes.restype = None
    return handle


def _library() -> ctypes.CDLL:
    """The compiled kernel (compiled on first use, once per process).

    Raises
    ------
    OSError
        No C compiler, or it failed (the message says why); remembered, not retried.
    """
    global _LIB, _LIB_ERROR
    with _LIB_LOCK:
        if _LIB is None and _LIB_ERROR is None:
            try:
                _LIB = _compile()
            except (OSError, subprocess.SubprocessError) as exc:
                _LIB_ERROR = str(exc)
        if _LIB is None:
            raise OSError(_LIB_ERROR or "the forest kernel is unavailable")
        return _LIB


def kernel_available() -> bool:
    """Whether the compiled forest kernel can be built on this machine (compiles it once)."""
    try:
        _library()
    except OSError:
        return False
    return True


def _threshold32(t64: np.ndarray) -> np.ndarray:
    """float64 thresholds rounded down to float32: ``x <= t`` unchanged for float32 ``x``."""
    t32 = t64.astype(np.float32)
    up = t32.astype(np.float64) > t64
    t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
    return t32


def _ptr(a: np.ndarray) -> ctypes.c_void_p:
    return ctypes.c_void_p(a.ctypes.data)


def _effective_jobs(n_jobs: int | None) -> int:
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(usable_cpus() + 1 + n_jobs, 1)
    return int(n_jobs)


def _in_threads(work: Callable[[int, int], None], n: int, jobs: int) -> None:
    """Call ``work(a, b)`` on ``jobs`` consecutive row ranges covering ``0..n``, in threads.

    The kernels release the GIL, so the ranges run in parallel in a pool of ``jobs``
    threads (one range: in the calling thread). Exceptions of the workers are raised
    here.
    """
    if jobs <= 1:
        work(0, n)
        return
    bounds = np.linspace(0, n, jobs + 1).astype(int)
    with ThreadPoolExecutor(jobs) as pool:
        futures = [
            pool.submit(work, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        for fut in futures:
            fut.result()


class CompiledForest(RegressorMixin, BaseEstimator):
    """A forest regressor evaluated by geohm's compiled kernel.

    A drop-in for the fitted forest inside a pipeline: ``predict`` gives the same
    values as the forest's own single-threaded ``predict`` (bit for bit; see the module
    docstring), faster. ``estimators_`` are the original trees, so per-tree uses
    (exceedance probabilities) keep working. Build it with :func:`accelerate`, which
    wraps an already fitted forest; ``fit`` fits a clone of ``forest`` and compiles it.

    Parameters
    ----------
    forest : RandomForestRegressor or ExtraTreesRegressor
        Single output.
    n_jobs : int or None, default=None
        Threads for one ``predict`` call (-1: all cores); None: the forest's ``n_jobs``.

    Attributes
    ----------
    forest_ : RandomForestRegressor or ExtraTreesRegressor
        The fitted forest whose trees are evaluated.
    n_features_in_ : int
        Number of input features.

    Examples
    --------
    >>> from sklearn.ensemble import RandomForestRegressor
    >>> X = np.arange(40.0).reshape(20, 2)
    >>> rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, X[:, 0])
    >>> fast = accelerate(rf)
    >>> bool(np.array_equal(fast.predict(X), rf.set_params(n_jobs=1).predict(X)))
    True
    """

    def __init__(self, forest: Any = None, n_jobs: int | None = None) -> None:
        self.forest = forest
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any, **fit_params: Any) -> CompiledForest:
        """Fit a clone of ``forest`` on ``(X, y)`` and compile its trees.

        Returns
        -------
        CompiledForest
            self.
        """
        return self._load(clone(self.forest).fit(X, y, **fit_params))

    def _load(self, forest: Any) -> CompiledForest:
        """Take a fitted forest and build the kernel's tables from its trees.

        Raises
        ------
        TypeError
            Not a fitted single-output forest regressor of fewer than 32768 features.
        """
        if not isinstance(forest, RandomForestRegressor | ExtraTreesRegressor):
            raise TypeError(f"not a forest regressor: {type(forest).__name__}")
        trees = getattr(forest, "estimators_", None)
        if not trees:
            raise TypeError("the forest is not fitted")
        if getattr(forest, "n_outputs_", 1) != 1:
            raise TypeError("multi-output forests are not supported")
        if forest.n_features_in_ >= 2**15:
            raise TypeError("forests of 32768 features or more are not supported")
        self.n_features_in_ = int(forest.n_features_in_)
        names = getattr(forest, "feature_names_in_", None)
        if names is not None:
            self.feature_names_in_ = names
        structs = [t.tree_ for t in trees]
        leaves = max(int((s.children_left == -1).sum()) for s in structs)
        n_words = -(-leaves // 64)
        self._qs = self._build_qs(structs, n_words) if leaves <= MAX_QS_LEAVES else None
        self._walk = self._build_walk(structs) if self._qs is None else None
        self.forest_ = forest
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "forest_")

    # ---------------------------------------------------------- serialization

    def __getstate__(self) -> dict[str, Any]:
        """The parameters and the fitted forest, without the kernel's tables.

        The tables are derived data: :meth:`__setstate__` rebuilds them from the trees,
        so a saved or pickled forest never hands the C kernel offsets it did not compute.
        """
        state = dict(super().__getstate__())
        state.pop("_qs", None)
        state.pop("_walk", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the parameters, check every tree, rebuild the tables from them.

        Raises
        ------
        ValueError
            The forest is not a fitted forest regressor, or a tree is malformed (see
            :func:`check_tree_structure`): the kernel would read outside its tables.
        """
        super().__setstate__(state)
        forest = self.__dict__.get("forest_")
        if forest is None:  # unfitted
            return
        if not isinstance(forest, RandomForestRegressor | ExtraTreesRegressor):
            raise ValueError(f"CompiledForest.forest_ is a {type(forest).__name__}, not a forest")
        n_features = int(forest.n_features_in_)
        for tree in getattr(forest, "estimators_", None) or []:
            check_tree_structure(tree.tree_, n_features)
        try:
            self._load(forest)
        except TypeError as exc:  # not fitted, several outputs, too many features
            raise ValueError(f"CompiledForest: {exc}") from None

    # ---------------------------------------------------------------- tables

    @staticmethod
    def _build_walk(structs: list[Any]) -> dict[str, np.ndarray]:
        nodes, values, offsets = [], [], []
        off = 0
        for s in structs:
            n = s.node_count
            arr = np.zeros(n, dtype=_NODE)
            leaf = s.children_left == -1
            own = np.arange(n, dtype=np.int32)
            arr["thr"] = np.where(leaf, np.float32(np.inf), _threshold32(s.threshold))
            arr["left"] = np.where(leaf, own, s.children_left)
            arr["right"] = np.where(leaf, own, s.children_right)
            arr["feat"] = np.where(leaf, 0, s.feature)
            mgl = np.asarray(getattr(s, "missing_go_to_left", np.ones(n, np.uint8)))
            arr["nanright"] = np.where(leaf, 0, 1 - mgl.astype(np.int16))
            nodes.append(arr)
            values.append(s.value[:, 0, 0].astype(np.float64))
            offsets.append(off)
            off += n
        return {
            "nodes": np.concatenate(nodes),
            "values": np.concatenate(values),
            "offsets": np.asarray(offsets, dtype=np.int64),
        }

    def _build_qs(self, structs: list[Any], n_words: int) -> dict[str, Any] | None:
        n_feat, n_trees = self.n_features_in_, len(structs)
        feats: list[np.ndarray] = []
        thrs: list[np.ndarray] = []
        trees: list[np.ndarray] = []
        masks: list[np.ndarray] = []
        leaf_values: list[np.ndarray] = []
        leaf_nodes: list[np.ndarray] = []
        leaf_off = np.zeros(n_trees, dtype=np.int64)
        off = 0
        for t, s in enumerate(structs):
            internal, lo, hi, values, nodes = _leaf_ranges(s)
            if internal.size:
                masks.append(_clear_bits(lo, hi, n_words))
                feats.append(s.feature[internal])
                thrs.append(_threshold32(s.threshold[internal]))
                trees.append(np.full(internal.size, t, dtype=np.int64))
            leaf_values.append(values)
            leaf_nodes.append(nodes)
            leaf_off[t] = off
            off += values.size
        thr_parts, mask_parts = [], []
        thr_off = np.zeros(n_feat, dtype=np.int64)
        thr_len = np.zeros(n_feat, dtype=np.int32)
        mask_off = np.zeros(n_feat, dtype=np.int64)
        all_feat = np.concatenate(feats) if feats else np.zeros(0, np.int64)
        all_thr = np.concatenate(thrs) if thrs else np.zeros(0, np.float32)
        all_tree = np.concatenate(trees) if trees else np.zeros(0, np.int64)
        all_mask = np.concatenate(masks) if masks else np.zeros((0, n_words), np.uint64)
        t_pos = m_pos = 0
        full = np.uint64(2**64 - 1)
        for f in range(n_feat):
            sel = all_feat == f
            uniq = np.unique(all_thr[sel])
            if (m_pos + (uniq.size + 1) * n_trees * n_words) * 8 > MAX_QS_TABLE:
                return None
            # table[b, t]: the leaves of tree t still reachable when b thresholds of f
            # are below x (every split on f with one of those thresholds goes right).
            table = np.full((uniq.size + 1, n_trees, n_words), full, dtype=np.uint64)
            k = np.searchsorted(uniq, all_thr[sel])
            for w in range(n_words):
                np.bitwise_and.at(table[:, :, w], (k + 1, all_tree[sel]), all_mask[sel, w])
            table = np.bitwise_and.accumulate(table, axis=0)
            thr_parts.append(uniq)
            mask_parts.append(table.ravel())
            thr_off[f], thr_len[f], mask_off[f] = t_pos, uniq.size, m_pos
            t_pos += uniq.size
            m_pos += table.size
        return {
            "thr": np.concatenate(thr_parts).astype(np.float32),
            "thr_off": thr_off,
            "thr_len": thr_len,
            "masks": np.concatenate(mask_parts),
            "mask_off": mask_off,
            "leaf_values": np.concatenate(leaf_values),
            "leaf_off": leaf_off,
            "leaf_node": np.concatenate(leaf_nodes).astype(np.int32),
            "n_words": n_words,
        }

    def _walk_tables(self) -> dict[str, np.ndarray]:
        # Rows with NaN in the bit-vector path are walked; built on first need.
        if self._walk is None:
            self._walk = self._build_walk([t.tree_ for t in self.forest_.estimators_])
        return self._walk

    # --------------------------------------------------------------- predict

    @property
    def bit_vector(self) -> bool:
        """Whether the fast bit-vector kernel evaluates this forest (else the tree walk)."""
        return self._qs is not None

    @property
    def estimators_(self) -> list[Any]:
        """The original trees (for per-tree predictions)."""
        return list(self.forest_.estimators_)

    def _table(self, X: Any) -> np.ndarray:
        """``X`` as a C-contiguous float32 table of the forest's features."""
        check_is_fitted(self)
        x = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has shape {x.shape}; the forest takes {self.n_features_in_} features"
            )
        return x

    def _jobs(self, n_rows: int) -> int:
        """Threads for ``n_rows`` rows: ``n_jobs`` (or the forest's), at most one per
        :data:`MIN_ROWS_PER_THREAD` rows."""
        n_jobs = self.forest_.n_jobs if self.n_jobs is None else self.n_jobs
        return min(_effective_jobs(n_jobs), max(n_rows // MIN_ROWS_PER_THREAD, 1))

    def predict(self, X: Any) -> np.ndarray:
        """Mean of the trees' predictions, as the forest's ``predict``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Converted to C-contiguous float32, as scikit-learn's trees do.

        Returns
        -------
        numpy.ndarray
            (n_samples,) float64.

        Raises
        ------
        ValueError
            Not a 2-D table with the forest's number of features.
        """
        x = self._table(X)
        out = np.empty(x.shape[0], dtype=np.float64)
        if x.shape[0] == 0:
            return out
        try:
            lib = _library()
        except OSError as exc:  # a forest loaded where no C compiler builds the kernel
            return self._predict_with_trees(x, exc)
        _in_threads(
            lambda a, b: self._predict_rows(lib, x[a:b], out[a:b]),
            x.shape[0],
            self._jobs(x.shape[0]),
        )
        return out

    def _predict_with_trees(self, x: np.ndarray, exc: OSError) -> np.ndarray:
        """:meth:`predict` by scikit-learn's trees, summed in tree order (the forest's
        single-threaded ``predict``, bit for bit), when the kernel cannot be built."""
        if not _FALLBACK_LOGGED.is_set():
            _FALLBACK_LOGGED.set()
            log.warning("compiled forest unavailable (%s); using scikit-learn's trees", exc)
        out = np.zeros(x.shape[0], dtype=np.float64)
        for tree in self.forest_.estimators_:
            out += tree.predict(x, check_input=False)
        out /= len(self.forest_.estimators_)
        return out

    def apply_mean(self, X: Any, *, global_ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Exit node of every tree and the forest's mean, from one traversal.

        ``ids[:, t]`` equals ``estimators_[t].apply(X)`` (the exit leaf's node id in tree
        ``t``) and ``mean`` equals :meth:`predict` (the forest's single-threaded
        ``predict``) bit for bit. Threads as :meth:`predict`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Converted to C-contiguous float32, as scikit-learn's trees do.
        global_ids : bool, default=False
            Add to the node ids of tree ``t`` the node counts of the trees before it:
            ids into the nodes of all trees, numbered tree after tree.

        Returns
        -------
        ids : numpy.ndarray
            (n_samples, n_trees) int32.
        mean : numpy.ndarray
            (n_samples,) float64.

        Raises
        ------
        ValueError
            Not a 2-D table with the forest's number of features, or (``global_ids``)
            2**31 nodes or more in all.
        """
        x = self._table(X)
        n, n_trees = x.shape[0], len(self.forest_.estimators_)
        base = self._id_base(global_ids)
        ids = np.empty((n, n_trees), dtype=np.int32)
        mean = np.empty(n, dtype=np.float64)
        if n == 0:
            return ids, mean
        lib = _library()
        _in_threads(
            lambda a, b: self._apply_rows(lib, x[a:b], ids[a:b], mean[a:b], base), n, self._jobs(n)
        )
        return ids, mean

    def _id_base(self, global_ids: bool) -> np.ndarray:
        """Per tree, the number added to its node ids (int32)."""
        trees = self.forest_.estimators_
        if not global_ids:
            return np.zeros(len(trees), dtype=np.int32)
        counts = np.array([t.tree_.node_count for t in trees], dtype=np.int64)
        if counts.sum() >= 2**31:
            raise ValueError("global node ids of 2**31 nodes or more do not fit in int32")
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)

    def _leaf_nodes(self, q: dict[str, Any]) -> np.ndarray:
        """Node id of each leaf of the bit-vector tables, in their leaf order (int32)."""
        nodes = q.get("leaf_node")
        if nodes is None:  # tables pickled before node ids were kept
            parts = [_leaf_ranges(t.tree_)[4] for t in self.forest_.estimators_]
            nodes = q["leaf_node"] = np.concatenate(parts).astype(np.int32)
        return np.asarray(nodes)

    def _predict_rows(self, lib: ctypes.CDLL, x: np.ndarray, out: np.ndarray) -> None:
        """Fill ``out`` (a contiguous slice) with the predictions of the rows ``x``."""
        q = self._qs
        n_trees = len(self.forest_.estimators_)
        if q is None:
            self._walk_rows(lib, x, out)
            return
        nan_rows = np.isnan(x).any(axis=1)
        acc = np.empty(n_trees * q["n_words"], dtype=np.uint64)
        lib.geohm_qs(*self._qs_args(x, q, acc, out))
        if nan_rows.any():
            rows = np.ascontiguousarray(x[nan_rows])
            walked = np.empty(rows.shape[0], dtype=np.float64)
            self._walk_rows(lib, rows, walked)
            out[nan_rows] = walked

    def _apply_rows(
        self, lib: ctypes.CDLL, x: np.ndarray, ids: np.ndarray, out: np.ndarray, base: np.ndarray
    ) -> None:
        """Fill ``ids`` and ``out`` (contiguous slices) for the rows ``x``."""
        q = self._qs
        if q is None:
            self._walk_rows(lib, x, out, ids, base)
            return
        nan_rows = np.isnan(x).any(axis=1)
        acc = np.empty(len(self.forest_.estimators_) * q["n_words"], dtype=np.uint64)
        leaf_node = self._leaf_nodes(q)
        lib.geohm_qs_apply(*self._qs_args(x, q, acc, out), _ptr(leaf_node), _ptr(base), _ptr(ids))
        if nan_rows.any():
            rows = np.ascontiguousarray(x[nan_rows])
            walked = np.empty(rows.shape[0], dtype=np.float64)
            walked_ids = np.empty((rows.shape[0], ids.shape[1]), dtype=np.int32)
            self._walk_rows(lib, rows, walked, walked_ids, base)
            out[nan_rows] = walked
            ids[nan_rows] = walked_ids

    def _qs_args(
        self, x: np.ndarray, q: dict[str, Any], acc: np.ndarray, out: np.ndarray
    ) -> tuple[Any, ...]:
        """The arguments of ``geohm_qs`` for the rows ``x``."""
        return (
            _ptr(x),
            x.shape[0],
            x.shape[1],
            x.shape[1],
            _ptr(q["thr"]),
            _ptr(q["thr_off"]),
            _ptr(q["thr_len"]),
            _ptr(q["masks"]),
            _ptr(q["mask_off"]),
            _ptr(q["leaf_values"]),
            _ptr(q["leaf_off"]),
            len(self.forest_.estimators_),
            q["n_words"],
            _ptr(acc),
            _ptr(out),
        )

    def _walk_rows(
        self,
        lib: ctypes.CDLL,
        x: np.ndarray,
        out: np.ndarray,
        ids: np.ndarray | None = None,
        base: np.ndarray | None = None,
    ) -> None:
        w = self._walk_tables()
        args = (
            _ptr(x),
            x.shape[0],
            x.shape[1],
            _ptr(w["nodes"]),
            _ptr(w["offsets"]),
            _ptr(w["values"]),
            len(w["offsets"]),
        )
        if ids is None or base is None:
            lib.geohm_walk(*args, _ptr(out))
        else:
            lib.geohm_walk_apply(*args, _ptr(base), _ptr(ids), _ptr(out))


def qrf_quantiles(
    ids: Any,
    indptr: Any,
    indices: Any,
    weights: Any,
    y_sorted: Any,
    qs: Sequence[float],
    *,
    n_jobs: int | None = 1,
) -> np.ndarray:
    """Weighted quantiles of a quantile regression forest (Meinshausen 2006), compiled.

    Row ``i`` of the CSR matrix ``(weights, indices, indptr)`` holds, for node ``i`` of
    the forest (global ids, e.g. from :meth:`CompiledForest.apply_mean` with
    ``global_ids=True``), the weight of each training sample in that leaf; columns are
    training ranks, ascending in the target. Per row of ``ids``, the weights of its
    leaves are added per rank in tree order, the ranks are walked in ascending order
    with a running sum, and the bound for level ``q`` is ``y_sorted`` at the first rank
    where the sum reaches ``q * total - 1e-9`` (``total``: the row's whole sum), i.e.
    ``inf{y : F(y | x) >= q}`` up to rounding.

    Parameters
    ----------
    ids : array-like of shape (n, n_trees)
        Global leaf ids of the rows, int32.
    indptr, indices, weights : array-like
        The CSR matrix (any integer index types; the weights must be > 0).
    y_sorted : array-like of shape (n_train,)
        Training targets in ascending order (the column order).
    qs : sequence of float
        Quantile levels in [0, 1].
    n_jobs : int or None, default=1
        Threads (-1: all cores); at most one per :data:`MIN_ROWS_PER_THREAD` rows.

    Returns
    -------
    numpy.ndarray
        (len(qs), n) float64.

    Raises
    ------
    ValueError
        Inconsistent shapes, ids outside the matrix, or a weight that is not > 0.
    OSError
        The kernel cannot be compiled.

    Examples
    --------
    >>> # one leaf holding ranks 0..4 (y = 0..4) with weight 1/5 each
    >>> qrf_quantiles([[0]], [0, 5], [0, 1, 2, 3, 4], [0.2] * 5, np.arange(5.0), [0.05, 0.5])
    array([[0.],
           [2.]])
    """
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    indptr = np.ascontiguousarray(indptr, dtype=np.int64)
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    y_sorted = np.ascontiguousarray(y_sorted, dtype=np.float64)
    levels = np.ascontiguousarray(qs, dtype=np.float64).reshape(-1)
    n_train = y_sorted.shape[0]
    if ids.ndim != 2 or y_sorted.ndim != 1 or indptr.ndim != 1 or indptr.size < 1:
        raise ValueError("ids must be 2-D, y_sorted and indptr 1-D")
    if indices.shape != weights.shape or indices.ndim != 1 or indptr[-1] != indices.size:
        raise ValueError("indptr, indices and weights do not form a CSR matrix")
    if indptr[0] != 0 or np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must start at 0 and not decrease")
    if indices.size and (indices.min() < 0 or indices.max() >= n_train):
        raise ValueError("a column index is outside y_sorted")
    if not np.all(weights > 0):
        raise ValueError("the weights must be > 0")
    if ids.size and (ids.min() < 0 or ids.max() >= indptr.size - 1):
        raise ValueError("a leaf id is outside the weight matrix")
    n, n_trees = ids.shape
    out = np.empty((levels.size, n), dtype=np.float64)
    if n == 0 or levels.size == 0:
        return out
    lib = _library()

    def work(a: int, b: int) -> None:
        buf = np.zeros(n_train, dtype=np.float64)
        touched = np.empty(n_train, dtype=np.int32)
        lib.geohm_qrf_quantiles(
            _ptr(ids[a:b]),
            b - a,
            n_trees,
            _ptr(indptr),
            _ptr(indices),
            _ptr(weights),
            _ptr(y_sorted),
            n_train,
            _ptr(levels),
            levels.size,
            _ptr(buf),
            _ptr(touched),
            ctypes.c_void_p(out.ctypes.data + 8 * a),
            n,
        )

    _in_threads(work, n, min(_effective_jobs(n_jobs), max(n // MIN_ROWS_PER_THREAD, 1)))
    return out


def tree_votes(
    ids: Any, leaf_values: Any, thresholds: Any, *, n_jobs: int | None = 1
) -> np.ndarray:
    """Per row, how many trees end in a leaf whose value is above the row's threshold.

    The exceedance count of :func:`geohm.models.ensemble.exceedance_probability`
    without a ``(n, n_trees)`` table of leaf values: ``(leaf_values[ids] >
    thresholds[:, None]).sum(axis=1)``, compiled.

    Parameters
    ----------
    ids : array-like of shape (n, n_trees)
        Global leaf ids of the rows (:meth:`CompiledForest.apply_mean` with
        ``global_ids=True``), int32.
    leaf_values : array-like of shape (n_nodes,)
        Value of every node of the forest, numbered as the ids (float64).
    thresholds : array-like of shape (n,)
        One threshold per row (float64); NaN counts no tree.
    n_jobs : int or None, default=1
        Threads (-1: all cores); at most one per :data:`MIN_ROWS_PER_THREAD` rows.

    Returns
    -------
    numpy.ndarray
        (n,) int32 counts in ``0 .. n_trees``.

    Raises
    ------
    ValueError
        Inconsistent shapes or an id outside ``leaf_values``.
    OSError
        The kernel cannot be compiled.

    Examples
    --------
    >>> tree_votes([[0, 1], [1, 2]], [5.0, 10.0, 20.0], [7.0, 15.0]).tolist()
    [1, 1]
    """
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    leaf = np.ascontiguousarray(leaf_values, dtype=np.float64)
    thr = np.ascontiguousarray(thresholds, dtype=np.float64)
    if ids.ndim != 2 or leaf.ndim != 1 or thr.shape != (ids.shape[0],):
        raise ValueError("ids must be (n, n_trees), leaf_values 1-D and thresholds (n,)")
    if ids.size and (ids.min() < 0 or ids.max() >= leaf.size):
        raise ValueError("a leaf id is outside leaf_values")
    n, n_trees = ids.shape
    count = np.zeros(n, dtype=np.int32)
    if n == 0 or n_trees == 0:
        return count
    lib = _library()

    def work(a: int, b: int) -> None:
        lib.geohm_tree_votes(
            _ptr(ids[a:b]), b - a, n_trees, _ptr(leaf), _ptr(thr[a:b]), _ptr(count[a:b])
        )

    _in_threads(work, n, min(_effective_jobs(n_jobs), max(n // MIN_ROWS_PER_THREAD, 1)))
    return count


def _clear_bits(lo: np.ndarray, hi: np.ndarray, n_words: int) -> np.ndarray:
    """(n, n_words) masks with the leaf bits ``lo..hi`` (inclusive) cleared, others set."""
    out = np.empty((lo.size, n_words), dtype=np.uint64)
    for w in range(n_words):
        a = np.clip(lo - 64 * w, 0, 64)
        b = np.clip(hi - 64 * w + 1, 0, 64)  # exclusive
        n = (b - a).astype(np.uint64)
        # (1 << n) - 1 for n < 64; all ones for n == 64 (no uint64 shift by 64)
        ones = np.where(
            n >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(n, 63)) - np.uint64(1)
        )
        bits = np.where(n > 0, ones << a.astype(np.uint64) % np.uint64(64), np.uint64(0))
        out[:, w] = ~bits
    return out


def check_tree_structure(tree: Any, n_features: int) -> None:
    """Check that a scikit-learn ``Tree`` (``estimator.tree_``) is a well-formed tree.

    scikit-learn's ``Tree.__setstate__`` checks the dtypes and shapes of the node and
    value arrays, but neither the node count nor the child and feature indices, and
    both its Cython ``predict`` and geohm's kernel index with them unchecked. For a
    tree read from a file this is the invariant everything relies on: ``node_count``
    nodes; a node is a leaf (both children -1) or has two children with larger ids;
    every node but the root is the child of exactly one node (so all are reached from
    the root, once); split features are in ``[0, n_features)``.

    Parameters
    ----------
    tree : sklearn.tree._tree.Tree
        The fitted tree structure.
    n_features : int
        Number of input columns of the estimator holding it.

    Raises
    ------
    ValueError
        What is wrong with the tree.
    """
    nodes = tree.__getstate__()["nodes"]
    n = int(tree.node_count)
    if n < 1 or nodes.shape != (n,):
        raise ValueError(f"tree of {n} nodes holds {nodes.shape} node records")
    if not 0 < int(tree.n_features) <= n_features:
        raise ValueError(f"tree of {tree.n_features} features in a model of {n_features}")
    left = np.asarray(nodes["left_child"], dtype=np.int64)
    right = np.asarray(nodes["right_child"], dtype=np.int64)
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        raise ValueError("tree node with one child")
    ids = np.flatnonzero(~leaf)
    lo, hi = left[ids], right[ids]
    if np.any(lo <= ids) or np.any(hi <= ids) or np.any(lo >= n) or np.any(hi >= n):
        raise ValueError("tree node whose child id is out of order or out of range")
    if not np.array_equal(np.sort(np.concatenate([lo, hi])), np.arange(1, n)):
        raise ValueError("tree nodes that are not reached exactly once from the root")
    feat = np.asarray(nodes["feature"], dtype=np.int64)[ids]
    if np.any(feat < 0) or np.any(feat >= min(n_features, int(tree.n_features))):
        raise ValueError("tree split on a feature out of range")


def _leaf_ranges(s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """In-order leaf numbering of one tree.

    Returns the internal node ids, for each the first and last leaf number of its
    *left* subtree, and the leaf values and node ids in leaf-number order.
    """
    left, right = s.children_left, s.children_right
    n = s.node_count
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    values: list[float] = []
    leaves: list[int] = []
    # Iterative post-order: number the leaves left to right, then spans bottom-up.
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node, done = stack.pop()
        if left[node] == -1:
            first[node] = last[node] = len(values)
            values.append(float(s.value[node, 0, 0]))
            leaves.append(node)
        elif done:
            first[node], last[node] = first[left[node]], last[right[node]]
        else:
            stack += [(node, True), (int(right[node]), False), (int(left[node]), False)]
    internal = np.flatnonzero(left != -1)
    lchild = left[internal]
    return (
        internal,
        first[lchild],
        last[lchild],
        np.asarray(values, dtype=np.float64),
        np.asarray(leaves, dtype=np.int64),
    )


def accelerate(estimator: Any, *, n_jobs: int | None = None) -> Any:
    """A copy of a fitted estimator whose final forest runs on the compiled kernel.

    Parameters
    ----------
    estimator : fitted estimator
        A :class:`~sklearn.pipeline.Pipeline` (as geohm builds them), a
        :class:`~sklearn.compose.TransformedTargetRegressor`, or a forest regressor.
        The fitted steps are shared with the original, not copied.
    n_jobs : int or None, default=None
        Threads per ``predict`` call of the compiled forest; None keeps the forest's.

    Returns
    -------
    estimator
        The accelerated copy, or ``estimator`` itself when it does not end in a fitted
        single-output :class:`~sklearn.ensemble.RandomForestRegressor` or
        :class:`~sklearn.ensemble.ExtraTreesRegressor`, or when no C compiler can
        build the kernel (a warning is logged).

    Examples
    --------
    >>> from sklearn.linear_model import LinearRegression
    >>> lr = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    >>> accelerate(lr) is lr
    True
    """
    if isinstance(estimator, Pipeline):
        name, final = estimator.steps[-1]
        fast = accelerate(final, n_jobs=n_jobs)
        if fast is final:
            return estimator
        out = copy.copy(estimator)
        out.steps = [*estimator.steps[:-1], (name, fast)]
        return out
    if isinstance(estimator, TransformedTargetRegressor):
        inner = getattr(estimator, "regressor_", None)
        if inner is None:
            return estimator
        fast = accelerate(inner, n_jobs=n_jobs)
        if fast is inner:
            return estimator
        wrapped = copy.copy(estimator)
        wrapped.regressor_ = fast
        # Also the parameter, so ``get_params(deep=True)`` reaches the compiled forest's
        # n_jobs (predict_map sets it to 1 while windows run in parallel).
        wrapped.regressor = fast
        return wrapped
    if isinstance(estimator, CompiledForest):
        return estimator
    if not isinstance(estimator, RandomForestRegressor | ExtraTreesRegressor):
        return estimator
    try:
        _library()
    except OSError as exc:
        log.warning("compiled forest unavailable (%s); using scikit-learn's predict", exc)
        return estimator
    try:
        # n_jobs always concrete, so predict_map's "n_jobs -> 1" switch reaches it.
        jobs = estimator.n_jobs if n_jobs is None else n_jobs
        fast = CompiledForest(estimator, jobs)._load(estimator)
    except TypeError:  # not fitted, several outputs, too many features
        return estimator
    if not fast.bit_vector:
        log.info(
            "forest trees too large for the bit-vector kernel (more than %d leaves); "
            "keeping scikit-learn's predict, which is as fast as a compiled tree walk",
            MAX_QS_LEAVES,
        )
        return estimator
    return fast

"""The binding of geohm's compiled forest kernel, and the routines that work on leaf ids.

The kernel is the C extension module ``geohm.models._forest_kernel``, compiled from
``geohm/models/_forest_kernel.c`` by the package build (``setup.py``; ``pip install``
needs a C compiler for it). Nothing is compiled or written at run time. Where the
extension is missing (an installation built without a compiler), :func:`available` is
False, :func:`note_fallback` logs that once per process, and geohm evaluates forests
with scikit-learn instead: the same maps, more slowly.

This module checks every argument it passes (the C routines trust the tables built
from checked trees, and check the leaf ids they are given as they read them), and
splits rows over threads: each C call releases the GIL.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from geohm._system import usable_cpus

_EXT: Any  # the extension module, or None where it was not built
try:
    from geohm.models import _forest_kernel

    _EXT, _MISSING = _forest_kernel, ""
except ImportError as _exc:  # built without a C compiler
    _EXT, _MISSING = None, f"{type(_exc).__name__}: {_exc}"

__all__ = [
    "MIN_ROWS_PER_THREAD",
    "available",
    "effective_jobs",
    "in_threads",
    "note_fallback",
    "qrf_quantiles",
    "quickscorer",
    "tree_votes",
    "walk",
]

log = logging.getLogger("geohm")

#: Fewer rows than this per thread are not worth a thread.
MIN_ROWS_PER_THREAD = 20_000

#: The first weights of one leaf of a quantile regression forest, as the kernel reads
#: them (``slots_t`` in ``_forest_kernel.c``: 64 bytes, one cache line).
SLOT_RECORD = np.dtype([("i", "<i4", (4,)), ("w", "<f8", (4,)), ("rest", "<i8"), ("end", "<i8")])

_WARNED = threading.Event()


def available() -> bool:
    """Whether the compiled kernel was built and imported.

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    return _EXT is not None


def note_fallback() -> None:
    """Log, once per process, that forests run on scikit-learn for want of the kernel."""
    if not _WARNED.is_set():
        _WARNED.set()
        log.warning(
            "geohm's compiled forest kernel is not built (%s); random forests are "
            "evaluated with scikit-learn instead: the same maps, more slowly. Reinstall "
            "geohm where a C compiler is present (pip install -e .) to build it.",
            _MISSING or "not imported",
        )


def _ext() -> Any:
    """The extension module; RuntimeError when it was not built."""
    if _EXT is None:
        raise RuntimeError(f"geohm's compiled forest kernel is not built ({_MISSING})")
    return _EXT


def effective_jobs(n_jobs: int | None) -> int:
    """Threads for scikit-learn's ``n_jobs`` convention (None: 1; -1: every usable CPU).

    Examples
    --------
    >>> effective_jobs(None), effective_jobs(3)
    (1, 3)
    """
    if n_jobs is None or n_jobs == 0:
        return 1
    if n_jobs < 0:
        return max(usable_cpus() + 1 + n_jobs, 1)
    return int(n_jobs)


def in_threads(work: Callable[[int, int], None], n: int, jobs: int) -> None:
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


def _row_jobs(n_jobs: int | None, n: int) -> int:
    return min(effective_jobs(n_jobs), max(n // MIN_ROWS_PER_THREAD, 1))


# --------------------------------------------------------------------- traversal


def walk(
    x: np.ndarray,
    tables: dict[str, np.ndarray],
    out: np.ndarray,
    ids: np.ndarray | None = None,
    base: np.ndarray | None = None,
) -> None:
    """Tree walk of the rows ``x``: the mean into ``out`` and, with ``ids``, exit nodes.

    Parameters
    ----------
    x : numpy.ndarray
        (n, n_features) C-contiguous float32 rows.
    tables : dict
        :func:`geohm.models.forest_tables.walk_tables` of the forest.
    out : numpy.ndarray
        (n,) C-contiguous float64, filled with the forest's mean.
    ids, base : numpy.ndarray, optional
        (n, n_trees) int32 exit node ids to fill, and (n_trees,) int32 numbers added to
        each tree's ids; both or neither.
    """
    _ext().walk(x, x.shape[1], tables["nodes"], tables["offsets"], tables["values"], out, base, ids)


def quickscorer(
    x: np.ndarray,
    q: dict[str, Any],
    out: np.ndarray,
    ids: np.ndarray | None = None,
    base: np.ndarray | None = None,
) -> None:
    """Bit-vector evaluation of the finite rows ``x``, as :func:`walk`.

    ``q`` is :func:`geohm.models.forest_tables.bit_vector_tables` of the forest. Rows
    with a missing value must be walked instead (their masks do not route NaN).
    """
    _ext().quickscorer(
        x,
        x.shape[1],
        q["thr"],
        q["thr_off"],
        q["thr_len"],
        q["masks"],
        q["mask_off"],
        q["leaf_values"],
        q["leaf_off"],
        q["n_words"],
        out,
        None if ids is None else q["leaf_node"],
        base,
        ids,
    )


# ----------------------------------------------------------------- from leaf ids


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
        (len(qs), n) float64, in the units of ``y_sorted``.

    Raises
    ------
    ValueError
        Inconsistent shapes, ids outside the matrix, or a weight that is not > 0.
    RuntimeError
        The kernel was not built (:func:`available` is False).

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
    n, n_trees = ids.shape
    out = np.empty((levels.size, n), dtype=np.float64)
    if n == 0 or levels.size == 0 or n_trees == 0:
        out.fill(np.nan)
        return out
    ext = _ext()
    slots, n_slots = _leaf_slots(indptr, indices, weights)

    def work(a: int, b: int) -> None:
        ext.qrf_quantiles(
            ids[a:b], n_trees, indptr, indices, weights, slots, n_slots, y_sorted, levels, out, n, a
        )

    in_threads(work, n, _row_jobs(n_jobs, n))
    return out


def _leaf_slots(
    indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, int]:
    """The first ``k`` weights of every CSR row (leaf) as :data:`SLOT_RECORD` records.

    The kernel adds a leaf's ``k`` slot weights without a data-dependent branch (an
    unused slot adds +0.0 to rank 0, which changes no sum) and only the leaf's further
    weights in a loop: the same sums in the same order as the plain CSR loop, about
    1.8 times faster for leaves of one to three weights (what forests fitted on tens to
    hundreds of samples hold). ``k``: the fewest slots that hold every weight of 95 % of
    the leaves, at most 4.
    """
    start, end = indptr[:-1], indptr[1:]
    size = end - start
    filled = size[size > 0]
    k = int(np.clip(np.quantile(filled, 0.95, method="higher"), 1, 4)) if filled.size else 1
    slots = np.zeros(size.size, dtype=SLOT_RECORD)
    for j in range(k):
        has = size > j
        slots["i"][has, j] = indices[start[has] + j]
        slots["w"][has, j] = weights[start[has] + j]
    slots["rest"] = start + np.minimum(size, k)
    slots["end"] = end
    return slots, k


def tree_votes(
    ids: Any, leaf_values: Any, thresholds: Any, *, n_jobs: int | None = 1
) -> np.ndarray:
    """Per row, how many trees end in a leaf whose value is above the row's threshold.

    ``(leaf_values[ids] > thresholds[:, None]).sum(axis=1)`` without the ``(n,
    n_trees)`` table of leaf values, compiled when the kernel is built (numpy
    otherwise; the same counts).

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
    n, n_trees = ids.shape
    count = np.zeros(n, dtype=np.int32)
    if n == 0 or n_trees == 0:
        return count
    if _EXT is None:
        if ids.min() < 0 or ids.max() >= leaf.size:
            raise ValueError("a leaf id is outside leaf_values")
        for t in range(n_trees):  # one column at a time: no (n, n_trees) float table
            count += leaf[ids[:, t]] > thr
        return count
    ext = _EXT

    def work(a: int, b: int) -> None:
        ext.tree_votes(ids[a:b], n_trees, leaf, thr[a:b], count[a:b])

    in_threads(work, n, _row_jobs(n_jobs, n))
    return count

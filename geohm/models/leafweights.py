"""Quantile-forest leaf weights of a fitted forest (Meinshausen 2006), on geohm's kernel.

Kept in model files as ``_LeafWeights`` (inside :class:`geohm.models.uncertainty.IntervalModel`).

Why not the ``quantile-forest`` package
---------------------------------------
``quantile-forest`` 1.4.2 (``RandomForestQuantileRegressor``) grows the same trees as
scikit-learn for the same seed. Using it would mean either changing geohm's ``rf`` model
class, with a new compiled dependency, or storing a second forest. Its weights count
only in-bag samples, and its raw intervals under-cover the same way (0.81 at 0.9). It
was measured here on 155 and 1000 training samples with 200 trees, in CPU time relative
to the forest's ``predict``. Its quantiles took 2.7-3.3 times, plus one more ``predict``
for the mean. This module took 2.5-3.5 times with scipy's sparse products, with the
mean (bit-identical to ``predict``) from the same traversal. It works on the fitted
scikit-learn forest through public API only. Memory is bounded by ``chunk_size`` rows
(about 7 kB per row with 200 trees).

Where geohm's compiled forest kernel (:mod:`geohm.models.kernel`, built with the
package) is present, the weighted quantiles come from its routine (per row, the leaf
weights are added per training rank and the ranks walked in order), and forests of
small trees (at most 128 leaves, as a few dozen samples grow) also find their leaves and
mean with its bit-vector tables (:mod:`geohm.models.compiled`). The intervals are the
same. Measured on 500 000 rows of 19 features (43 samples, 100 trees, CPU time, one
thread): scikit-learn's ``predict`` 2.4 s, intervals with the mean 1.1-1.3 s (4.1 s
with the sparse products). With trees too large for the bit-vector tables (155 and 1000
samples, 200 trees) the intervals took about 1.4-1.5 times the forest's ``predict``.
Without the kernel the scikit-learn/scipy path is used.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from geohm.models import kernel as forest_kernel
from geohm.models.compiled import CompiledForest
from geohm.models.kernel import effective_jobs, in_threads, qrf_quantiles, tree_votes

_QRF_ROWS_PER_THREAD = 4096

_KERNEL_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Kernel:
    """What the compiled kernel needs for one fitted forest; built on demand, never pickled.

    Attributes
    ----------
    forest : RandomForestRegressor or ExtraTreesRegressor
        The forest the tables were built from (the cache is valid for it only).
    trees : CompiledForest or None
        Its bit-vector tables (single-threaded), or None when its trees are too large
        for them: scikit-learn's ``apply`` then finds the leaves.
    indptr, indices, data : numpy.ndarray
        The leaf weights as int64 / int32 / float64 CSR arrays.
    """

    forest: Any
    trees: CompiledForest | None
    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    members: tuple[Any, ...] = ()

    def serves(self, forest: Any) -> bool:
        """Built from this forest as it is now (not refitted or grown since)."""
        return self.forest is forest and self.members == tuple(forest.estimators_)


class _LeafWeights:
    """Meinshausen's quantile-regression-forest weights, stored per leaf of every tree.

    Row ``offset[t] + node`` of the sparse matrix ``weights`` holds, for leaf ``node`` of
    tree ``t``, the weight ``1 / (T * leaf size)`` of each training sample in that leaf.
    Columns are the training samples in ascending order of their target, so a row-wise
    cumulative sum is the conditional distribution function. All training samples are
    counted, not only the tree's bootstrap sample, as in Meinshausen (2006). This needs no
    private scikit-learn API and gives slightly wider (better) raw intervals than in-bag
    counts. The memory is ``T * n_train`` stored weights.

    When geohm's compiled kernel was built (:func:`geohm.models.kernel.available`), the
    leaves and the mean come from its bit-vector tables (forests of small trees) and
    the quantiles from its weighted-quantile routine. The results are those of the
    scikit-learn/scipy path (:meth:`_apply_trees`, :meth:`_quantiles_sparse`), which
    remains the fallback: the same leaves, the same mean bit for bit, the same quantiles
    (they can differ only where a cumulative weight lies within rounding of ``q``; the
    compiled routine sums each row on its own, the sparse path over all rows at once).
    The kernel's tables are built on first use in each process and are not pickled.
    """

    def __init__(self, forest: Any, Xt: Any, yt: np.ndarray) -> None:
        if getattr(forest, "n_outputs_", 1) != 1:
            raise ValueError("quantile forest intervals need a single-output forest")
        leaves = np.asarray(forest.apply(Xt))  # (n_train, T)
        n, n_trees = leaves.shape
        order = np.argsort(yt, kind="stable")
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        counts = [int(e.tree_.node_count) for e in forest.estimators_]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        n_nodes = int(self.offsets[-1])
        rows = (leaves + self.offsets[:-1]).reshape(-1)
        size = np.bincount(rows, minlength=n_nodes)
        data = 1.0 / (n_trees * size[rows])
        cols = np.repeat(rank, n_trees)
        self.weights = sp.csr_array((data, (rows, cols)), shape=(n_nodes, n))
        self.weights.sum_duplicates()
        self.y_sorted = np.asarray(yt, dtype=np.float64)[order]
        # Leaf values, flat over all trees, for the forest mean from the same leaves.
        self.values = np.concatenate(
            [np.asarray(e.tree_.value, dtype=np.float64)[:, 0, 0] for e in forest.estimators_]
        )
        self.n_trees = n_trees
        self.index_dtype = np.int32 if n_nodes < 2**31 else np.int64

    def __getstate__(self) -> dict[str, Any]:
        """The state without the kernel's tables (rebuilt where they are needed)."""
        state = self.__dict__.copy()
        state.pop("_kernel", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the state and check that its arrays fit together.

        The compiled quantile routine indexes the CSR arrays with the leaf ids and the
        target ranks without bounds checks, so a state read from a file must be a
        well-formed CSR matrix of one row per tree node and one column per sample.

        Raises
        ------
        ValueError
            Inconsistent arrays (a corrupt or crafted file).
        """
        state = dict(state)
        state.pop("_kernel", None)
        self.__dict__.update(state)
        offsets = np.asarray(self.offsets)
        y_sorted = np.asarray(self.y_sorted)
        w = self.weights
        ok = (
            offsets.ndim == 1
            and offsets.dtype == np.int64
            and offsets.size >= 2
            and offsets[0] == 0
            and bool(np.all(np.diff(offsets) > 0))
            and int(self.n_trees) == offsets.size - 1
            and y_sorted.ndim == 1
            and y_sorted.dtype == np.float64
            and np.asarray(self.values).shape == (int(offsets[-1]),)
            and self.index_dtype in (np.int32, np.int64)
            and isinstance(w, sp.csr_array | sp.csr_matrix)
            and w.shape == (int(offsets[-1]), y_sorted.size)
        )
        if not ok:
            raise ValueError("quantile-forest leaf weights with inconsistent arrays")
        w.check_format(full_check=True)  # indptr monotone, indices within the columns

    def check_forest(self, forest: Any) -> None:
        """Check that these weights belong to ``forest``: one row per node of its trees.

        Raises
        ------
        ValueError
            Another number of trees or nodes (a corrupt or crafted file).
        """
        trees = getattr(forest, "estimators_", None) or []
        counts = [int(e.tree_.node_count) for e in trees]
        if not np.array_equal(np.concatenate([[0], np.cumsum(counts)]), self.offsets):
            raise ValueError("quantile-forest leaf weights do not match the forest's trees")

    def kernel(self, forest: Any) -> _Kernel | None:
        """The compiled kernel's inputs for ``forest`` (built once), or None without it.

        None when the kernel was not built (the scikit-learn/scipy path is used; logged
        once per process) or when the node ids do not fit in int32.
        """
        if self.index_dtype is not np.int32:
            return None
        if not forest_kernel.available():
            forest_kernel.note_fallback()
            return None
        cached: _Kernel | None = self.__dict__.get("_kernel")
        if cached is not None and cached.serves(forest):
            return cached
        with _KERNEL_LOCK:
            cached = self.__dict__.get("_kernel")
            if cached is not None and cached.serves(forest):
                return cached
            trees: CompiledForest | None
            try:  # single-threaded: predict() splits the rows over threads itself
                trees = CompiledForest(forest, 1)._load(forest)
            except TypeError:  # not a forest the kernel takes (e.g. too many features)
                trees = None
            if trees is not None and not trees.bit_vector:
                trees = None  # large trees: scikit-learn's apply is as fast as a walk
            w = self.weights
            kernel = _Kernel(
                forest=forest,
                trees=trees,
                indptr=np.ascontiguousarray(w.indptr, dtype=np.int64),
                indices=np.ascontiguousarray(w.indices, dtype=np.int32),
                data=np.ascontiguousarray(w.data, dtype=np.float64),
                members=tuple(forest.estimators_),
            )
            self.__dict__["_kernel"] = kernel
        return kernel

    def _table(self, forest: Any, Xt: Any) -> np.ndarray | None:
        """``Xt`` as a float32 table the trees can take unchecked, or None.

        None lets scikit-learn validate it (wrong shape, missing or infinite values).
        """
        Xf = np.ascontiguousarray(np.asarray(Xt, dtype=np.float32))
        if Xf.ndim != 2 or Xf.shape[1] != forest.n_features_in_ or not np.isfinite(Xf).all():
            return None
        return Xf

    def apply(self, forest: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
        """Global leaf ids ``(n, T)`` of the rows and the forest's mean prediction.

        The mean is summed tree by tree in scikit-learn's order. It therefore equals the
        forest's single-threaded ``predict`` bit for bit, from the same single traversal.
        """
        Xf = self._table(forest, Xt)
        kernel = self.kernel(forest) if Xf is not None else None
        if Xf is not None and kernel is not None and kernel.trees is not None:
            return kernel.trees.apply_mean(Xf, global_ids=True)
        return self._apply_trees(forest, Xt if Xf is None else Xf)

    def _apply_trees(self, forest: Any, Xt: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`apply` with scikit-learn's trees (``Xt`` float32 when it is a valid table).

        Trees are applied one by one to one float32 copy of the table.
        """
        Xf = self._table(forest, Xt)
        if Xf is None:
            # let scikit-learn validate (and route missing values, or raise)
            ids = np.asarray(forest.apply(Xt)) + self.offsets[:-1]
            mean = np.zeros(ids.shape[0])
            for t in range(self.n_trees):
                mean += self.values[ids[:, t]]
            return ids.astype(self.index_dtype), mean / self.n_trees
        ids = np.empty((Xf.shape[0], self.n_trees), dtype=self.index_dtype)
        mean = np.zeros(Xf.shape[0])
        for t, tree in enumerate(forest.estimators_):
            leaf = tree.apply(Xf, check_input=False) + self.offsets[t]
            ids[:, t] = leaf
            mean += self.values[leaf]
        return ids, mean / self.n_trees

    def quantiles(
        self, nodes: np.ndarray, qs: Sequence[float], forest: Any = None
    ) -> list[np.ndarray]:
        """Weighted quantiles ``inf{y : F(y | x) >= q}`` for rows of global leaf ids.

        With ``forest`` (the fitted forest) and the compiled kernel, its routine computes
        them; otherwise scipy's sparse products (:meth:`_quantiles_sparse`).
        """
        kernel = self.kernel(forest) if forest is not None else None
        if kernel is None:
            return self._quantiles_sparse(nodes, qs)
        out = qrf_quantiles(nodes, kernel.indptr, kernel.indices, kernel.data, self.y_sorted, qs)
        return list(out)

    def _quantiles_sparse(self, nodes: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
        """:meth:`quantiles` with scipy: one sparse product, then a cumulative sum."""
        n, n_trees = nodes.shape
        index_dtype = np.int32 if n * n_trees < 2**31 else np.int64
        pick = sp.csr_array(
            (
                np.ones(n * n_trees),
                nodes.reshape(-1).astype(index_dtype, copy=False),
                np.arange(0, n * n_trees + 1, n_trees, dtype=index_dtype),
            ),
            shape=(n, self.weights.shape[0]),
            copy=False,
        )
        w = sp.csr_array(pick @ self.weights)
        w.sort_indices()  # columns = target ranks: ascending y within each row
        cum = np.cumsum(w.data)  # increasing (weights > 0), row after row
        start, end = w.indptr[:-1], w.indptr[1:]
        before = np.concatenate([[0.0], cum])[start]
        total = cum[end - 1] - before  # 1 up to rounding
        out = []
        for q in qs:
            # Tolerance: the row's weights sum to 1 only up to rounding of the running sum.
            pos = np.searchsorted(cum, before + q * total - 1e-9, side="left")
            pos = np.clip(pos, start, end - 1)
            out.append(self.y_sorted[w.indices[pos]])
        return out

    def predict(
        self,
        forest: Any,
        Xt: Any,
        qs: Sequence[float],
        votes: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray | None]:
        """The forest's mean, the weighted quantiles ``qs`` and tree votes of the rows ``Xt``.

        All from one traversal of the forest: the leaves of the rows are found once and
        give the mean, the quantiles and the votes. With the compiled kernel the rows
        are split over the forest's ``n_jobs`` threads (at most one per 4096 rows); the
        results do not depend on the number of threads.

        Parameters
        ----------
        forest : RandomForestRegressor or ExtraTreesRegressor
            The fitted forest these weights belong to.
        Xt : array-like of shape (n, n_features)
            Rows as the forest sees them (after the pipeline's preprocessing).
        qs : sequence of float
            Quantile levels in [0, 1].
        votes : (leaf_values, thresholds), optional
            A value per node of the forest (global ids, e.g. the leaf values
            back-transformed to mg/kg) and (k, n) thresholds in the same units: per row
            and threshold, the number of trees whose leaf value is above it.

        Returns
        -------
        mean : numpy.ndarray
            (n,) float64, the forest's single-threaded ``predict``, bit for bit.
        bounds : list of numpy.ndarray
            One (n,) float64 array per level of ``qs``.
        counts : numpy.ndarray or None
            (k, n) int32 votes (None without ``votes``).
        """
        Xf = self._table(forest, Xt)
        kern = self.kernel(forest) if Xf is not None else None
        if Xf is None or kern is None:
            nodes, mean = self.apply(forest, Xt)
            counts = None if votes is None else _votes(nodes, *votes)
            return mean, self.quantiles(nodes, qs, forest), counts
        n = Xf.shape[0]
        mean = np.empty(n)
        bounds = np.empty((len(qs), n))
        counts = None if votes is None else np.empty((votes[1].shape[0], n), dtype=np.int32)

        def work(a: int, b: int) -> None:
            trees = kern.trees
            rows = Xf[a:b]
            nodes, mean[a:b] = (
                trees.apply_mean(rows, global_ids=True)
                if trees is not None
                else self._apply_trees(forest, rows)
            )
            bounds[:, a:b] = qrf_quantiles(
                nodes, kern.indptr, kern.indices, kern.data, self.y_sorted, qs
            )
            if votes is not None and counts is not None:
                counts[:, a:b] = _votes(nodes, votes[0], votes[1][:, a:b])

        jobs = effective_jobs(getattr(forest, "n_jobs", 1))
        in_threads(work, n, min(jobs, max(n // _QRF_ROWS_PER_THREAD, 1)))
        return mean, list(bounds), counts


def _votes(nodes: np.ndarray, leaf_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(k, n) int32: per threshold row, the trees whose leaf value is above it."""
    return np.stack([tree_votes(nodes, leaf_values, t) for t in thresholds]).reshape(
        thresholds.shape
    )

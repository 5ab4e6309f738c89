"""Prediction intervals for every geohm model: the data behind the uncertainty map.

What the uncertainty map shows
------------------------------
``<target>_uncertainty.tif`` is the **width of the central prediction interval**,
``upper - lower`` in mg/kg, of nominal coverage ``coverage`` (0.9: the 5 % and 95 %
bounds). Every model uses this definition. Bounds are computed in the space the model was
fitted in (``log1p`` of the concentration when ``preprocess.log_target`` is on) and
back-transformed with the model's inverse (``expm1``). The back-transform is monotone, so
bounds map onto bounds and the 90 % coverage carries over to mg/kg. A standard deviation
would not carry over this way. With a log target the interval is therefore asymmetric
around the map value and wider where concentrations are high.

Method per model (chosen by :class:`IntervalModel` from the last step of the pipeline)
-------------------------------------------------------------------------------------
``"quantile-forest"`` (:class:`~sklearn.ensemble.RandomForestRegressor`,
:class:`~sklearn.ensemble.ExtraTreesRegressor`)
    Quantile regression forest (Meinshausen 2006, *JMLR* 7:983). Every training sample
    is dropped down every tree. A sample in the leaf of ``x`` in tree ``t`` weighs
    ``1 / (T * leaf size)``. The bound is the weighted quantile of the training targets,
    ``inf{y : F(y | x) >= q}``. The forest is used as fitted; no second forest is grown.
    Raw QRF intervals of fully grown trees (``min_samples_leaf=1``, geohm's default) are
    too narrow: on synthetic heteroscedastic data they covered 0.81-0.83 at a nominal
    0.9. They are therefore calibrated by conformalized quantile regression (CQR; Romano,
    Patterson & Candes 2019). Out-of-fold QRF bounds (the pipeline refitted on each
    training fold) give scores ``max(lower - y, y - upper)``, and both bounds move
    outwards by their conformal quantile (inwards when that quantile is negative).
``"kriging"`` (a final step whose ``predict`` takes ``return_std``:
:class:`~geohm.models.kriging.OrdinaryKrigingRegressor`,
:class:`~geohm.models.kriging.RegressionKriging`)
    Gaussian interval ``pred +- z * std``, with ``z = 1.645`` for 90 %. It is computed in
    log space under a log target, then back-transformed. Regression kriging's std leaves
    out the trend model's error, so the interval tends to be too narrow.
    ``calibrate=True`` replaces ``z`` by the conformal quantile of the out-of-fold
    normalised residuals ``|y - pred| / std`` (normalised conformal prediction).
``"residual"`` (GA-BP, Tr-GA-BP, any other regressor)
    Conformal interval ``pred +- Q``. ``Q`` is the conformal quantile of the absolute
    out-of-fold residuals ``|y - oof|``, taken in log space under a log target. A
    constant ``Q`` in log space is a relative (multiplicative) band in mg/kg.

The conformal quantile (:func:`conformal_quantile`) is the ``ceil(coverage * (n + 1))``-th
smallest of the ``n`` scores: the finite-sample correction of split conformal
prediction.

Assumptions and limits
----------------------
* **Exchangeability.** The guarantee is marginal: on average over pixels distributed
  like the samples, about ``coverage`` of the true values fall inside. It says nothing
  about one pixel, and nothing about pixels unlike any sample (another land cover,
  extrapolation in feature space). There the intervals are likely too narrow.
* **Random k-fold residuals of clustered samples are optimistic.** A held-out sample
  usually has a training neighbour nearby. Pass spatial-block folds as ``cv`` (e.g. from
  :func:`geohm.spatialcv.spatial_block_folds`) to calibrate for prediction away from
  the samples.
* **Cheap, not formal CV+.** Intervals are centred on the model fitted on all training
  samples: one prediction per pixel. CV+ (Barber et al. 2021, *Ann. Statist.* 49:486)
  would keep the ``k`` fold models and pay ``k`` predictions per pixel for its
  ``1 - 2 alpha`` worst-case guarantee. The fold models see ``(k-1)/k`` of the data, so
  their residuals are a little larger than the full model's and the intervals err on the
  wide side.
* A per-pixel difficulty for the nets (spread of a seeded ensemble) is not used. With
  tens to hundreds of samples, estimating it adds noise to ``Q``, and it would multiply
  the cost of a map by the ensemble size. Under a log target the band already scales
  with the concentration.

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

The same leaves give the exceedance votes of the forest's trees
(:meth:`IntervalModel.predict_distribution`): the concentration, its interval and
P(C > threshold) of a window come from one traversal of the forest.

Models see only arrays (and the DataFrames of geohm pipelines): never rasters, paths or
config.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import norm
from sklearn.base import BaseEstimator, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from geohm.models import kernel as forest_kernel
from geohm.models.compiled import CompiledForest
from geohm.models.kernel import effective_jobs, in_threads, qrf_quantiles, tree_votes

__all__ = [
    "METHODS",
    "EstimatorParts",
    "IntervalModel",
    "conformal_quantile",
    "estimator_parts",
    "interval_model",
    "interval_width",
    "prediction_interval",
]

log = logging.getLogger(__name__)

#: Interval methods, in the order ``method="auto"`` tries them.
METHODS: tuple[str, ...] = ("quantile-forest", "kriging", "residual")

Method = Literal["auto", "quantile-forest", "kriging", "residual"]

_FORESTS = (RandomForestRegressor, ExtraTreesRegressor)


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class EstimatorParts:
    """A fitted geohm estimator taken apart: preprocessing, final regressor, target transform.

    Attributes
    ----------
    final : regressor
        The fitted regressor at the end of the pipeline, the one that sees the
        preprocessed table and the transformed target (e.g. ``log1p`` mg/kg).
    prep : transformer or None
        The fitted steps before it (a :class:`~sklearn.pipeline.Pipeline` slice), or
        None when the estimator is a bare regressor.
    target : transformer or None
        The fitted target transformer of a
        :class:`~sklearn.compose.TransformedTargetRegressor` (``transformer_``), or None.
    """

    final: Any
    prep: Any | None
    target: Any | None

    def features(self, X: Any) -> Any:
        """The table the final regressor sees: ``X`` through the preprocessing steps."""
        return X if self.prep is None else self.prep.transform(X)

    def to_model(self, y: Any) -> np.ndarray:
        """Targets (e.g. mg/kg) in the space the final regressor was fitted in, float64."""
        v = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.target is None:
            return v
        return np.asarray(self.target.transform(v.reshape(-1, 1)), dtype=np.float64).reshape(-1)

    def from_model(self, v: Any) -> np.ndarray:
        """Back-transform values of the final regressor to target units, as the pipeline does.

        This is the same call :meth:`TransformedTargetRegressor.predict` makes, so a
        back-transformed prediction equals the pipeline's ``predict`` bit for bit.
        """
        arr = np.asarray(v, dtype=np.float64).reshape(-1)
        if self.target is None:
            return arr
        return np.asarray(self.target.inverse_transform(arr.reshape(-1, 1))).reshape(-1)


def estimator_parts(estimator: Any) -> EstimatorParts:
    """Split a fitted estimator into preprocessing, final regressor and target transform.

    Handles what geohm builds: a :class:`~sklearn.pipeline.Pipeline` (from
    :func:`geohm.preprocess.build_pipeline`, or Tr-GA-BP's frozen-preprocessing pipeline)
    whose last step may be a :class:`~sklearn.compose.TransformedTargetRegressor`
    (``log_target``). It also handles a bare regressor and a
    :class:`~sklearn.frozen.FrozenEstimator` around any of these.

    Parameters
    ----------
    estimator : fitted estimator
        The model as fitted by geohm.

    Returns
    -------
    EstimatorParts
        ``final``, ``prep`` and ``target`` of the estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from geohm.preprocess import build_pipeline
    >>> X, y = np.arange(10.0)[:, None], np.arange(10.0) ** 2
    >>> parts = estimator_parts(build_pipeline(LinearRegression(), log=True).fit(X, y))
    >>> type(parts.final).__name__, parts.to_model([0.0]).tolist()
    ('LinearRegression', [0.0])
    """
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    prep = None
    if isinstance(estimator, Pipeline):
        if len(estimator.steps) > 1:
            prep = estimator[:-1]
        estimator = estimator.steps[-1][1]
        while isinstance(estimator, FrozenEstimator):
            estimator = estimator.estimator
    target = None
    if isinstance(estimator, TransformedTargetRegressor):
        check_is_fitted(estimator, "regressor_")
        target = estimator.transformer_
        estimator = estimator.regressor_
    return EstimatorParts(final=estimator, prep=prep, target=target)


def _check_coverage(coverage: Any) -> float:
    if (
        isinstance(coverage, bool)
        or not isinstance(coverage, numbers.Real)
        or not 0.0 < float(coverage) < 1.0
    ):
        raise ValueError(f"coverage must be a number in (0, 1), got {coverage!r}")
    return float(coverage)


def _has_std(final: Any) -> bool:
    predict = getattr(final, "predict", None)
    if predict is None:
        return False
    try:
        return "return_std" in inspect.signature(predict).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False


def _rows(X: Any, index: Any) -> Any:
    """Rows of a DataFrame (by position) or an array."""
    return X.iloc[index] if isinstance(X, pd.DataFrame) else np.asarray(X)[index]


def _n_rows(X: Any) -> int:
    return int(X.shape[0]) if hasattr(X, "shape") else len(X)


def _ordered(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) elementwise: a decreasing back-transform swaps the bounds."""
    return np.minimum(lower, upper), np.maximum(lower, upper)


def conformal_quantile(scores: Any, coverage: float) -> float:
    """The conformal quantile of scores: the ``ceil(coverage * (n + 1))``-th smallest.

    This is the split-conformal finite-sample correction. If the scores and a new score
    are exchangeable, the new score is at most this value with probability >=
    ``coverage``. When ``n < coverage / (1 - coverage)`` (fewer than 9 scores at 0.9),
    the exact answer is infinite. The largest score is then returned and a warning is
    logged.

    Parameters
    ----------
    scores : array-like of shape (n,)
        Conformity scores (e.g. absolute out-of-fold residuals). NaNs are ignored.
    coverage : float
        Nominal coverage in (0, 1).

    Returns
    -------
    float
        The quantile, in the units of the scores.

    Raises
    ------
    ValueError
        No finite score, or a coverage outside (0, 1).

    Examples
    --------
    >>> conformal_quantile(np.arange(1.0, 20.0), 0.9)  # n = 19: the 18th smallest
    18.0
    """
    coverage = _check_coverage(coverage)
    s = np.sort(np.asarray(scores, dtype=np.float64).reshape(-1))
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise ValueError("conformal_quantile needs at least one score")
    k = math.ceil(coverage * (s.size + 1) - 1e-9)  # tolerance: 0.9 * 20 is 18.000000000000004
    if k > s.size:
        log.warning(
            "only %d calibration samples: a %.0f %% conformal interval would be unbounded; "
            "using the largest score (coverage may fall short)",
            s.size,
            100 * coverage,
        )
        k = s.size
    return float(s[max(k, 1) - 1])


def interval_width(lower: Any, upper: Any, *, floor: float | None = None) -> np.ndarray:
    """Width of a prediction interval, ``upper - lower`` (mg/kg for concentrations).

    This is what ``<target>_uncertainty.tif`` holds. With ``floor`` (e.g. 0 mg/kg, the
    floor applied to the concentration map), both bounds are first raised to it. A
    concentration cannot be negative, so a lower bound below 0 says nothing more than 0.

    Parameters
    ----------
    lower, upper : array-like
        Interval bounds.
    floor : float, optional
        Lowest meaningful value of the target.

    Returns
    -------
    numpy.ndarray
        Widths, float64, >= 0 where the bounds are ordered; NaN where a bound is NaN.

    Examples
    --------
    >>> interval_width([-2.0, 3.0], [4.0, 5.0], floor=0.0).tolist()
    [4.0, 2.0]
    """
    lo = np.asarray(lower, dtype=np.float64)
    hi = np.asarray(upper, dtype=np.float64)
    if floor is not None:
        lo = np.maximum(lo, floor)
        hi = np.maximum(hi, floor)
    return hi - lo


# --------------------------------------------------------------------------- QRF


#: Fewer rows than this per thread are not worth a thread (quantile forest path).
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
        """``Xt`` as a float32 table the trees can take unchecked, or None (let
        scikit-learn validate it: wrong shape, missing or infinite values)."""
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


# --------------------------------------------------------------------------- model


class IntervalModel(BaseEstimator):
    """Prediction intervals around a fitted geohm estimator (see the module docstring).

    The estimator is used as fitted and is never refitted. Only the calibration fits
    clones of it on training folds. Fit on the estimator's own training samples.
    Then :meth:`interval` gives bounds for any table the estimator can predict, e.g. a
    window of pixels as an ``(n, n_features)`` float32 array. Save it together with
    the estimator (one :func:`geohm.io.models.save_model`), so that the shared estimator
    is stored once.

    Parameters
    ----------
    estimator : fitted estimator
        The model (pipeline) whose predictions the intervals surround.
    coverage : float, default=0.9
        Nominal coverage: 0.9 gives the 5 % and 95 % bounds.
    method : {"auto", "quantile-forest", "kriging", "residual"}, default="auto"
        ``"auto"`` picks ``"quantile-forest"`` for a random forest / extra trees final
        step, ``"kriging"`` for a final step whose ``predict`` takes ``return_std``, and
        ``"residual"`` otherwise. ``"residual"`` works for any estimator.
    calibrate : bool or None, default=None
        Conformal calibration on out-of-fold data. None means True for
        ``"quantile-forest"`` and ``"residual"`` (which has no interval without it) and
        False for ``"kriging"`` (the Gaussian interval).
    cv : int or iterable of (train, test) index arrays, default=5
        Folds of the calibration. An int gives a
        :class:`~sklearn.model_selection.KFold` shuffled with ``random_state``, the same
        folds as :func:`geohm.evaluate.cross_validate` with ``seed=random_state``.
        Index pairs (e.g. spatial blocks) are used as given, and every sample must be
        in exactly one test fold.
    random_state : int or None, default=None
        Seed of the ``KFold`` folds. Estimators keep their own seeds.
    chunk_size : int, default=16384
        Rows handled at once by :meth:`interval`. It bounds memory, not results.

    Attributes
    ----------
    method_ : str
        The method used (one of :data:`METHODS`).
    calibrated_ : bool
        Whether a conformal correction is applied.
    correction_ : float or None
        The conformal quantile, in the final regressor's target space (``log1p`` mg/kg
        under a log target). For ``"residual"`` it is the half-width ``Q``; for
        ``"quantile-forest"`` the outward shift of each bound; for ``"kriging"`` the
        multiple of the std that replaces ``z``. None when not calibrated.
    z_ : float
        Standard-normal quantile of the Gaussian interval (1.645 for 0.9).
    n_calibration_ : int
        Number of out-of-fold scores behind ``correction_`` (0 when not calibrated).
    raw_oof_coverage_ : float
        Share of the out-of-fold samples inside their *uncalibrated* interval (QRF
        quantiles, Gaussian kriging interval). It shows how much calibration was
        needed. NaN for ``"residual"`` and when not calibrated.
    forest_ : object or None
        Leaf weights of the quantile regression forest (``"quantile-forest"`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(0, 1, (200, 2))
    >>> y = 3 * X[:, 0] + rng.normal(0, 0.5, 200)
    >>> model = LinearRegression().fit(X, y)
    >>> im = IntervalModel(model, random_state=0).fit(X, y)
    >>> im.method_
    'residual'
    >>> lower, upper = im.interval(X[:3])
    >>> bool(np.allclose(upper - lower, 2 * im.correction_))
    True
    """

    method_: str
    calibrated_: bool
    correction_: float | None
    z_: float
    n_calibration_: int
    raw_oof_coverage_: float
    forest_: _LeafWeights | None

    def __init__(
        self,
        estimator: Any,
        *,
        coverage: float = 0.9,
        method: Method = "auto",
        calibrate: bool | None = None,
        cv: Any = 5,
        random_state: Any = None,
        chunk_size: int = 16_384,
    ) -> None:
        self.estimator = estimator
        self.coverage = coverage
        self.method = method
        self.calibrate = calibrate
        self.cv = cv
        self.random_state = random_state
        self.chunk_size = chunk_size

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the state; quantile-forest weights must match the estimator's forest.

        Raises
        ------
        ValueError
            Leaf weights of another forest (a corrupt or crafted file).
        """
        super().__setstate__(state)
        weights = self.__dict__.get("forest_")
        if weights is not None:
            if not isinstance(weights, _LeafWeights):
                raise ValueError(f"IntervalModel.forest_ is a {type(weights).__name__}")
            weights.check_forest(estimator_parts(self.estimator).final)

    # ----------------------------------------------------------------- fit

    def _resolve_method(self, parts: EstimatorParts) -> str:
        if self.method not in ("auto", *METHODS):
            raise ValueError(
                f"method must be one of {', '.join(('auto', *METHODS))}, got {self.method!r}"
            )
        forest = isinstance(parts.final, _FORESTS)
        kriging = _has_std(parts.final)
        if self.method == "auto":
            return "quantile-forest" if forest else "kriging" if kriging else "residual"
        if self.method == "quantile-forest" and not forest:
            raise ValueError(
                f"method 'quantile-forest' needs a random forest, got {type(parts.final).__name__}"
            )
        if self.method == "kriging" and not kriging:
            raise ValueError(
                f"method 'kriging' needs predict(X, return_std=True), which "
                f"{type(parts.final).__name__} lacks"
            )
        return str(self.method)

    def _splits(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        cv = self.cv
        if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
            if cv < 2:
                raise ValueError(f"cv must be >= 2, got {cv!r}")
            kf = KFold(min(int(cv), n), shuffle=True, random_state=self.random_state)
            return list(kf.split(np.zeros((n, 1))))
        if isinstance(cv, str) or not isinstance(cv, Iterable):
            raise ValueError(f"cv must be an int or (train, test) index pairs, got {cv!r}")
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv]
        seen = np.concatenate([te for _, te in splits]) if splits else np.empty(0, int)
        if np.sort(seen).tolist() != list(range(n)):
            raise ValueError("cv folds must put every sample in exactly one test fold")
        return splits

    def fit(self, X: Any, y: Any, *, oof_predictions: Any = None) -> IntervalModel:
        """Prepare the intervals from the estimator's training samples.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            The training table of ``estimator`` (the same columns it was fitted on).
        y : array-like of shape (n_samples,)
            Its training targets, in target units (mg/kg).
        oof_predictions : array-like of shape (n_samples,), optional
            Out-of-fold predictions of ``estimator`` on ``X`` in target units. An
            example is ``geohm.evaluate.cross_validate(...)["predictions"]``.
            ``"residual"`` uses them instead of refitting the estimator on ``cv`` folds.
            The other methods need out-of-fold intervals and refit anyway.

        Returns
        -------
        self : IntervalModel
            The fitted interval model.

        Raises
        ------
        ValueError
            Bad parameters, an unfitted or unsuitable estimator, or mismatched lengths.
        """
        self.z_ = float(norm.ppf(0.5 + _check_coverage(self.coverage) / 2))
        if not isinstance(self.chunk_size, numbers.Integral) or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        parts = estimator_parts(self.estimator)
        check_is_fitted(parts.final)
        method = self._resolve_method(parts)
        calibrate = self.calibrate if self.calibrate is not None else method != "kriging"
        if method == "residual" and not calibrate:
            raise ValueError("method 'residual' is a conformal interval: calibrate cannot be False")
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        n = _n_rows(X)
        if y.size != n:
            raise ValueError(f"X has {n} rows but y has {y.size} values")
        self.method_ = method
        self.calibrated_ = bool(calibrate)
        self.forest_ = (
            _LeafWeights(parts.final, parts.features(X), parts.to_model(y))
            if method == "quantile-forest"
            else None
        )
        self.correction_ = None
        self.n_calibration_ = 0
        self.raw_oof_coverage_ = float("nan")
        if calibrate:
            scores = self._oof_scores(X, y, oof_predictions, parts)
            self.correction_ = conformal_quantile(scores, self.coverage)
            self.n_calibration_ = int((~np.isnan(scores)).sum())
        return self

    def _oof_scores(self, X: Any, y: np.ndarray, oof: Any, parts: EstimatorParts) -> np.ndarray:
        """Conformity scores of the training samples, from models that did not see them."""
        yt = parts.to_model(y)
        if self.method_ == "residual" and oof is not None:
            oof = np.asarray(oof, dtype=np.float64).reshape(-1)
            if oof.size != y.size:
                raise ValueError(f"oof_predictions has {oof.size} values, y has {y.size}")
            return np.abs(yt - parts.to_model(oof))
        if isinstance(self.estimator, FrozenEstimator):
            raise ValueError(
                "a FrozenEstimator cannot be refitted on calibration folds: pass "
                "oof_predictions (method 'residual') or the unfrozen estimator"
            )
        scores = np.empty(y.size)
        inside = np.zeros(y.size, dtype=bool)
        for train, test in self._splits(y.size):
            fold = clone(self.estimator).fit(_rows(X, train), y[train])
            if self.method_ == "residual":
                center = estimator_parts(fold).to_model(fold.predict(_rows(X, test)))
                scores[test] = np.abs(yt[test] - center)
                continue
            raw = IntervalModel(
                fold,
                coverage=self.coverage,
                method=self.method_,  # type: ignore[arg-type]
                calibrate=False,
                chunk_size=self.chunk_size,
            ).fit(_rows(X, train), y[train])
            center, lower, upper, std, _ = raw._model_space(_rows(X, test))
            inside[test] = (yt[test] >= lower) & (yt[test] <= upper)
            if self.method_ == "quantile-forest":
                scores[test] = np.maximum(lower - yt[test], yt[test] - upper)
            else:  # kriging: normalised residuals; a zero std scores 0 or inf
                err = np.abs(yt[test] - center)
                with np.errstate(divide="ignore", invalid="ignore"):
                    scores[test] = np.where(err == 0, 0.0, err / std)
        if self.method_ != "residual":
            self.raw_oof_coverage_ = float(inside.mean())
        return scores

    # ----------------------------------------------------------------- predict

    def _chunks(self, X: Any) -> Iterator[tuple[slice, Any]]:
        n = _n_rows(X)
        step = int(self.chunk_size)
        for start in range(0, n, step):
            sl = slice(start, min(start + step, n))
            yield sl, (X.iloc[sl] if isinstance(X, pd.DataFrame) else X[sl])

    def _model_space(
        self, X: Any, thresholds: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(prediction, lower, upper, std, votes) in the final regressor's target space.

        ``thresholds`` ((k, n), target units): also the (k, n) int32 number of trees
        above each, from the quantile forest's own traversal (None without them).
        """
        check_is_fitted(self, "method_")
        parts = estimator_parts(self.estimator)
        X = X if isinstance(X, pd.DataFrame) else np.asarray(X)
        n = _n_rows(X)
        center, lower, upper = np.empty(n), np.empty(n), np.empty(n)
        std = np.full(n, np.nan)
        alpha = 1.0 - float(self.coverage)
        counts = None
        if thresholds is not None:
            if self.method_ != "quantile-forest" or self.forest_ is None:
                raise ValueError(
                    f"exceedance votes need a quantile forest, not method {self.method_!r}"
                )
            counts = np.empty(thresholds.shape, dtype=np.int32)
            leaf_values = parts.from_model(self.forest_.values)  # mg/kg, as the thresholds
        for sl, Xc in self._chunks(X):
            Xt = parts.features(Xc)
            if self.method_ == "quantile-forest":
                assert self.forest_ is not None
                votes = None
                if counts is not None and thresholds is not None:
                    votes = (leaf_values, thresholds[:, sl])
                center[sl], (lo, hi), chunk_votes = self.forest_.predict(
                    parts.final, Xt, (alpha / 2, 1 - alpha / 2), votes
                )
                if counts is not None and chunk_votes is not None:
                    counts[:, sl] = chunk_votes
                if self.correction_ is not None:
                    lo, hi = lo - self.correction_, hi + self.correction_
                    mid = 0.5 * (lo + hi)  # a negative correction cannot cross the bounds
                    lo, hi = np.minimum(lo, mid), np.maximum(hi, mid)
                lower[sl], upper[sl] = lo, hi
            elif self.method_ == "kriging":
                pred, s = parts.final.predict(Xt, return_std=True)
                pred = np.asarray(pred, dtype=np.float64).reshape(-1)
                s = np.asarray(s, dtype=np.float64).reshape(-1)
                half = (self.z_ if self.correction_ is None else self.correction_) * s
                center[sl], std[sl] = pred, s
                lower[sl], upper[sl] = pred - half, pred + half
            else:
                pred = np.asarray(parts.final.predict(Xt), dtype=np.float64).reshape(-1)
                assert self.correction_ is not None
                center[sl] = pred
                lower[sl], upper[sl] = pred - self.correction_, pred + self.correction_
        return center, lower, upper, std, counts

    def predict_interval(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Prediction and interval bounds, in target units (mg/kg), in one pass.

        The prediction equals ``estimator.predict(X)`` (bit for bit for a single-threaded
        forest, whose trees are summed in the same order). A window can therefore give its
        concentration and its uncertainty from one traversal of the model.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Rows in the estimator's input columns, e.g. a window's valid pixels (float32).

        Returns
        -------
        prediction, lower, upper : numpy.ndarray of shape (n,)
            float64, in target units; ``lower <= upper``.
        """
        center, lower, upper, _, _ = self._model_space(X)
        parts = estimator_parts(self.estimator)
        lo, hi = _ordered(parts.from_model(lower), parts.from_model(upper))
        return parts.from_model(center), lo, hi

    def predict_distribution(
        self, X: Any, thresholds: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Prediction, interval bounds and tree votes above thresholds, in one pass.

        :meth:`predict_interval` plus, for a quantile forest, the number of its trees
        whose leaf value (back-transformed to target units) is above each threshold:
        the leaves each row ends in are found once per chunk of rows and give the mean,
        the weighted quantiles and the votes. The exceedance probability is the votes
        divided by the number of trees
        (:func:`geohm.models.ensemble.predict_distribution` does that).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Rows in the estimator's input columns, e.g. a window's valid pixels (float32).
        thresholds : array-like of shape (k, n), optional
            Values in target units (mg/kg); a NaN threshold counts no tree.

        Returns
        -------
        prediction, lower, upper : numpy.ndarray of shape (n,)
            As :meth:`predict_interval`.
        votes : numpy.ndarray or None
            (k, n) int32 in ``0 .. n_trees``; None without ``thresholds``.

        Raises
        ------
        ValueError
            ``thresholds`` of another shape, or given to an interval model that is not a
            quantile forest.
        """
        t = None
        if thresholds is not None:
            t = np.asarray(thresholds, dtype=np.float64)
            if t.ndim != 2 or t.shape[1] != _n_rows(X):
                raise ValueError(f"thresholds of shape {t.shape} for {_n_rows(X)} rows")
        center, lower, upper, _, counts = self._model_space(X, t)
        parts = estimator_parts(self.estimator)
        lo, hi = _ordered(parts.from_model(lower), parts.from_model(upper))
        return parts.from_model(center), lo, hi, counts

    def interval(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the central ``coverage`` interval (mg/kg).

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Rows in the estimator's input columns.

        Returns
        -------
        lower, upper : numpy.ndarray of shape (n,)
            float64, in target units. Take :func:`interval_width` for the uncertainty
            map.
        """
        _, lower, upper = self.predict_interval(X)
        return lower, upper


def interval_model(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    oof_predictions: Any = None,
    coverage: float = 0.9,
    method: Method = "auto",
    calibrate: bool | None = None,
    cv: Any = 5,
    random_state: Any = None,
) -> IntervalModel:
    """Fit the :class:`IntervalModel` suited to ``estimator`` on its training samples.

    Shorthand for ``IntervalModel(estimator, ...).fit(X, y, oof_predictions=...)``;
    the parameters are those of :class:`IntervalModel` and :meth:`IntervalModel.fit`.
    ``X, y`` are the estimator's training table and targets (mg/kg). Pass
    ``oof_predictions`` from :func:`geohm.evaluate.cross_validate` run with
    ``folds=cv, seed=random_state`` to spare the refits of the ``"residual"`` method.

    Returns
    -------
    IntervalModel
        Fitted; call ``.interval(X)`` or ``.predict_interval(X)``.
    """
    return IntervalModel(
        estimator,
        coverage=coverage,
        method=method,
        calibrate=calibrate,
        cv=cv,
        random_state=random_state,
    ).fit(X, y, oof_predictions=oof_predictions)


def prediction_interval(
    estimator: Any, X: Any, *, coverage: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of the central ``coverage`` interval from a fitted estimator alone.

    Only two kinds of object carry their uncertainty with them. An
    :class:`IntervalModel` gives its own (calibrated) interval; its ``coverage`` must
    match. An estimator whose final step predicts a standard deviation (kriging) gives
    the Gaussian ``pred +- z * std``, computed in the fitted target space and
    back-transformed. Other models need their training samples: use
    :func:`interval_model`.

    Parameters
    ----------
    estimator : IntervalModel or fitted estimator
        See above.
    X : array-like or DataFrame of shape (n, n_features)
        Rows in the estimator's input columns.
    coverage : float, default=0.9
        Nominal coverage.

    Returns
    -------
    lower, upper : numpy.ndarray of shape (n,)
        float64, in target units (mg/kg).

    Raises
    ------
    TypeError
        The estimator has no uncertainty of its own.
    ValueError
        ``coverage`` outside (0, 1), or different from an IntervalModel's.

    Examples
    --------
    >>> import numpy as np
    >>> from geohm.models.kriging import OrdinaryKrigingRegressor
    >>> xy = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0], [100.0, 100.0]])
    >>> ok = OrdinaryKrigingRegressor(
    ...     "spherical", variogram_parameters={"sill": 1.0, "range": 150.0, "nugget": 0.0}
    ... ).fit(xy, [1.0, 2.0, 3.0, 4.0])
    >>> lower, upper = prediction_interval(ok, [[50.0, 50.0]])
    >>> pred, std = ok.predict([[50.0, 50.0]], return_std=True)
    >>> bool(np.allclose(upper - pred, 1.6448536 * std))
    True
    """
    coverage = _check_coverage(coverage)
    if isinstance(estimator, IntervalModel):
        check_is_fitted(estimator, "method_")
        if not math.isclose(float(estimator.coverage), coverage):
            raise ValueError(
                f"this IntervalModel was fitted for coverage {estimator.coverage}, not {coverage}"
            )
        return estimator.interval(X)
    parts = estimator_parts(estimator)
    if not _has_std(parts.final):
        raise TypeError(
            f"{type(parts.final).__name__} predicts no uncertainty of its own; build an "
            "IntervalModel from its training samples with interval_model(estimator, X, y)"
        )
    z = float(norm.ppf(0.5 + coverage / 2))
    pred, std = parts.final.predict(parts.features(X), return_std=True)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1)
    half = z * np.asarray(std, dtype=np.float64).reshape(-1)
    return _ordered(parts.from_model(pred - half), parts.from_model(pred + half))

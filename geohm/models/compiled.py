"""Fast, exact prediction of fitted random forests on geohm's compiled kernel.

:func:`accelerate` takes a fitted geohm estimator (a scikit-learn
:class:`~sklearn.pipeline.Pipeline` of columns/scale/impute/select steps ending in a
model, possibly wrapped in a log-target
:class:`~sklearn.compose.TransformedTargetRegressor`) and returns a copy whose final
:class:`~sklearn.ensemble.RandomForestRegressor` (or
:class:`~sklearn.ensemble.ExtraTreesRegressor`) is replaced by a
:class:`CompiledForest`. The preprocessing steps and the target back-transform run as
before; only the trees are evaluated differently. Model files keep the plain fitted
estimators: acceleration happens after loading, in the process that predicts.

How the trees are evaluated
---------------------------
The kernel is a C extension module built with the package (:mod:`geohm.models.kernel`);
each forest is flattened into numpy tables that it reads
(:mod:`geohm.models.forest_tables`). Forests whose trees have at most 128 leaves (what
a few dozen to ~100 soil samples grow) are evaluated with the bit-vector algorithm of
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
threads at once. A :class:`CompiledForest` pickles as the original forest only:
unpickling checks its trees and rebuilds the tables from them.

Leaves (quantile regression forests, exceedance votes)
------------------------------------------------------
:meth:`CompiledForest.apply_mean` returns, from the same traversal, the exit node of
every tree (equal to each tree's ``apply``) and the mean (equal to ``predict``);
:func:`geohm.models.kernel.qrf_quantiles` computes the weighted quantiles of a quantile
regression forest from those leaves, :func:`geohm.models.kernel.tree_votes` the trees
above a threshold. :mod:`geohm.models.uncertainty` and :mod:`geohm.models.ensemble`
use them for the uncertainty and exceedance maps.

Where the extension was not built, :func:`accelerate` logs that once and returns the
estimator unchanged, and a :class:`CompiledForest` evaluates scikit-learn's trees one
by one (the same numbers).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from geohm.models import kernel
from geohm.models.forest_tables import (
    MAX_QS_LEAVES,
    bit_vector_tables,
    check_tree_structure,
    walk_tables,
)
from geohm.models.kernel import MIN_ROWS_PER_THREAD

__all__ = [
    "CompiledForest",
    "accelerate",
    "apply_trees",
    "check_tree_structure",
    "kernel_available",
]

log = logging.getLogger("geohm")


def kernel_available() -> bool:
    """Whether the compiled forest kernel was built with this installation.

    Examples
    --------
    >>> isinstance(kernel_available(), bool)
    True
    """
    return kernel.available()


class CompiledForest(RegressorMixin, BaseEstimator):
    """A forest regressor evaluated by geohm's compiled kernel.

    A drop-in for the fitted forest inside a pipeline: ``predict`` gives the same
    values as the forest's own single-threaded ``predict`` (bit for bit; see the module
    docstring), faster. ``estimators_`` are the original trees, so per-tree uses
    keep working. Build it with :func:`accelerate`, which wraps an already fitted
    forest; ``fit`` fits a clone of ``forest`` and flattens it.

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
    >>> fast = CompiledForest(rf).fit(X, X[:, 0])
    >>> bool(np.array_equal(fast.predict(X), rf.set_params(n_jobs=1).predict(X)))
    True
    """

    def __init__(self, forest: Any = None, n_jobs: int | None = None) -> None:
        self.forest = forest
        self.n_jobs = n_jobs

    def fit(self, X: Any, y: Any, **fit_params: Any) -> CompiledForest:
        """Fit a clone of ``forest`` on ``(X, y)`` and build its tables.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Training target.
        **fit_params
            Passed to the forest's ``fit`` (e.g. ``sample_weight``).

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
        self._qs = (
            bit_vector_tables(structs, self.n_features_in_, n_words)
            if leaves <= MAX_QS_LEAVES
            else None
        )
        self._walk = walk_tables(structs) if self._qs is None else None
        self.forest_ = forest
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "forest_")

    # ---------------------------------------------------------- serialization

    def __getstate__(self) -> dict[str, Any]:
        """The parameters and the fitted forest, without the kernel's tables.

        The tables are derived data: :meth:`__setstate__` rebuilds them from the trees,
        so an unpickled forest never hands the kernel offsets it did not compute.
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
        """Threads for ``n_rows`` rows.

        ``n_jobs`` (or the forest's), at most one per :data:`MIN_ROWS_PER_THREAD` rows.
        """
        n_jobs = self.forest_.n_jobs if self.n_jobs is None else self.n_jobs
        return min(kernel.effective_jobs(n_jobs), max(n_rows // MIN_ROWS_PER_THREAD, 1))

    def predict(self, X: Any) -> np.ndarray:
        """Mean of the trees' predictions, as the forest's ``predict``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Converted to C-contiguous float32, as scikit-learn's trees do.

        Returns
        -------
        numpy.ndarray
            (n_samples,) float64, in the units of the forest's target.

        Raises
        ------
        ValueError
            Not a 2-D table with the forest's number of features.
        """
        x = self._table(X)
        out = np.empty(x.shape[0], dtype=np.float64)
        if x.shape[0] == 0:
            return out
        if not kernel.available():
            kernel.note_fallback()
            return apply_trees(self.forest_.estimators_, x)[1]
        kernel.in_threads(
            lambda a, b: self._rows(x[a:b], out[a:b]), x.shape[0], self._jobs(x.shape[0])
        )
        return out

    def apply_mean(self, X: Any, *, global_ids: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Exit node of every tree and the forest's mean, from one traversal.

        ``ids[:, t]`` equals ``estimators_[t].apply(X)`` (the exit leaf's node id in tree
        ``t``) and ``mean`` equals :meth:`predict` (the forest's single-threaded
        ``predict``) bit for bit. Threads as :meth:`predict`. Without the compiled
        kernel, scikit-learn's trees are applied one by one (the same numbers).

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
            (n_samples,) float64, in the units of the forest's target.

        Raises
        ------
        ValueError
            Not a 2-D table with the forest's number of features, or (``global_ids``)
            2**31 nodes or more in all.
        """
        x = self._table(X)
        n, n_trees = x.shape[0], len(self.forest_.estimators_)
        base = _id_base(self.forest_.estimators_, global_ids)
        ids = np.empty((n, n_trees), dtype=np.int32)
        mean = np.empty(n, dtype=np.float64)
        if n == 0:
            return ids, mean
        if not kernel.available():
            kernel.note_fallback()
            return apply_trees(self.forest_.estimators_, x, global_ids=global_ids)
        kernel.in_threads(
            lambda a, b: self._rows(x[a:b], mean[a:b], ids[a:b], base), n, self._jobs(n)
        )
        return ids, mean

    def _rows(
        self,
        x: np.ndarray,
        out: np.ndarray,
        ids: np.ndarray | None = None,
        base: np.ndarray | None = None,
    ) -> None:
        """Fill ``out`` (and ``ids``: contiguous slices) for the rows ``x``."""
        q = self._qs
        if q is None:
            kernel.walk(x, self._walk_tables(), out, ids, base)
            return
        kernel.quickscorer(x, q, out, ids, base)
        nan_rows = np.isnan(x).any(axis=1)
        if nan_rows.any():  # the masks do not route missing values: walk those rows
            rows = np.ascontiguousarray(x[nan_rows])
            walked = np.empty(rows.shape[0], dtype=np.float64)
            walked_ids = None if ids is None else np.empty((rows.shape[0], ids.shape[1]), np.int32)
            kernel.walk(rows, self._walk_tables(), walked, walked_ids, base)
            out[nan_rows] = walked
            if ids is not None:
                ids[nan_rows] = walked_ids

    def _walk_tables(self) -> dict[str, np.ndarray]:
        # Rows with NaN in the bit-vector path are walked; built on first need.
        if self._walk is None:
            self._walk = walk_tables([t.tree_ for t in self.forest_.estimators_])
        return self._walk


def _id_base(trees: list[Any], global_ids: bool) -> np.ndarray:
    """Per tree, the number added to its node ids (int32)."""
    if not global_ids:
        return np.zeros(len(trees), dtype=np.int32)
    counts = np.array([t.tree_.node_count for t in trees], dtype=np.int64)
    if counts.sum() >= 2**31:
        raise ValueError("global node ids of 2**31 nodes or more do not fit in int32")
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)


def apply_trees(
    trees: list[Any], x: np.ndarray, *, global_ids: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Exit node of every tree and the mean, by scikit-learn's trees one at a time.

    What :meth:`CompiledForest.apply_mean` gives, without the compiled kernel: the
    leaf values are summed in tree order and divided by the number of trees, as the
    forest's single-threaded ``predict`` does (bit for bit).

    Parameters
    ----------
    trees : list of DecisionTreeRegressor
        The forest's ``estimators_`` (single output).
    x : numpy.ndarray
        (n, n_features) C-contiguous float32 rows (NaN follows ``missing_go_to_left``).
    global_ids : bool, default=False
        Number the nodes of all trees tree after tree (see ``apply_mean``).

    Returns
    -------
    ids : numpy.ndarray
        (n, n_trees) int32.
    mean : numpy.ndarray
        (n,) float64, in the units of the trees' target.
    """
    base = _id_base(trees, global_ids)
    mean = np.zeros(x.shape[0], dtype=np.float64)
    ids = np.empty((x.shape[0], len(trees)), dtype=np.int32)
    for t, tree in enumerate(trees):
        leaf = tree.apply(x, check_input=False)
        mean += tree.tree_.value[leaf, 0, 0]
        ids[:, t] = leaf + base[t]
    mean /= len(trees)
    return ids, mean


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
        :class:`~sklearn.ensemble.ExtraTreesRegressor` of small trees, or when the
        kernel was not built (logged once per process).

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
    if not kernel.available():
        kernel.note_fallback()
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

"""Area of applicability: where a model's predictors resemble its training data.

The dissimilarity index (DI) and area of applicability (AOA) of Meyer & Pebesma (2021,
Methods Ecol. Evol. 12:1620-1633), with the definitions of the reference implementation,
R's CAST (``trainDI()``, ``aoa()``, ``errorProfiles()``):

1. Categorical predictors are one-hot encoded (one 0/1 column per level present in the
   training rows). Every column is standardised with the training mean and sample standard
   deviation (``ddof=1``, as R's ``scale()``), then multiplied by the weight of its
   predictor (the model's permutation importance; negative -> 0; a categorical predictor's
   weight goes to each of its columns).
2. ``d_bar`` (CAST's ``trainDist_avrgmean``): the mean over training points of their mean
   Euclidean distance to the other training points, that is the mean of the distance matrix
   without its diagonal.
3. Training DI of point ``i``: its distance to the nearest training point in another
   cross-validation fold (without folds: the nearest other point), divided by ``d_bar``.
4. Threshold: the upper whisker of the training DI, ``Q75 + 1.5 IQR`` (quantiles of R's
   default type 7, numpy's default ``linear``), capped at the largest training DI.
5. DI of new data: distance to the nearest training point / ``d_bar`` (a scikit-learn
   KD-tree up to 15 weighted columns, brute force above), block by block; a pixel is
   inside the AOA when ``DI <= threshold``.

The DI is dimensionless (distances in weighted standard deviations, divided by ``d_bar``).
Two departures from CAST, both recorded on the result: training rows with a NaN are left
out (CAST stops), and a predictor constant over the training rows contributes nothing
(CAST stops: "no variance"). Only CAST's Euclidean (``L2``) distance is implemented.

:func:`error_profile` fits the absolute cross-validation error as a non-decreasing function
of the DI (isotonic regression; CAST fits a monotone spline of a moving-window metric), and
:func:`covariate_shift` gives the share of rows (target-year samples or pixels) outside a
source model's AOA.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.metrics import pairwise_distances_argmin
from sklearn.neighbors import KDTree

from geohm.errors import NoDataError, SampleError

__all__ = [
    "AOA_INSIDE",
    "AOA_NODATA",
    "AOA_OUTSIDE",
    "AreaOfApplicability",
    "aoa_threshold",
    "fit_aoa",
]

#: Code of :meth:`AreaOfApplicability.inside` for a pixel inside the AOA.
AOA_INSIDE = 1
#: Code of :meth:`AreaOfApplicability.inside` for a pixel outside the AOA.
AOA_OUTSIDE = 0
#: Code of :meth:`AreaOfApplicability.inside` where the DI is NaN (a predictor is missing).
AOA_NODATA = 255

#: Rows of new data transformed and queried at a time (bounds the memory of :meth:`di`).
_CHUNK_ROWS = 65536
#: Distance-matrix entries computed at a time for ``d_bar``.
_CHUNK_CELLS = 1 << 22
#: Up to this many used columns the nearest training row is found with a KD-tree; above,
#: by brute force (scikit-learn's own rule for ``NearestNeighbors(algorithm="auto")``: a
#: KD-tree loses to brute force in many dimensions, 6x at 20 columns and 2000 samples).
_KDTREE_MAX_COLUMNS = 15


def aoa_threshold(train_di: Any) -> float:
    """The AOA threshold: the upper whisker of the training DI.

    ``Q75 + 1.5 (Q75 - Q25)`` of the finite values, quantiles of R's default type 7
    (numpy's ``linear``), capped at their maximum, as CAST's ``trainDI()``.

    Parameters
    ----------
    train_di : array-like of shape (n,)
        Training DI, dimensionless; NaN values are ignored.

    Returns
    -------
    float
        The threshold, dimensionless.

    Raises
    ------
    ValueError
        No finite value.

    Examples
    --------
    >>> round(aoa_threshold([0.2, 0.2, 0.3, 0.5, 1.4]), 12)  # 0.5 + 1.5 * (0.5 - 0.2)
    0.95
    >>> aoa_threshold([0.2, 0.2, 0.4, 0.6, 0.8])  # whisker 1.2, capped at the largest DI
    0.8
    """
    di = np.asarray(train_di, dtype=np.float64).ravel()
    di = di[np.isfinite(di)]
    if di.size == 0:
        raise ValueError("train_di holds no finite value: no threshold can be derived")
    q25, q75 = np.quantile(di, [0.25, 0.75])
    whisker = float(q75 + 1.5 * (q75 - q25))
    return min(whisker, float(di.max()))


@dataclass(frozen=True, eq=False, repr=False)
class AreaOfApplicability:
    """A fitted area of applicability (from :func:`fit_aoa`).

    Parameters
    ----------
    n_features_in : int
        Number of predictor columns the model (and :meth:`di`) takes.
    categorical : tuple of int
        Indices of the one-hot encoded predictors.
    levels : tuple of numpy.ndarray
        The training levels (codes) of each categorical predictor, in the order of
        ``categorical``. An unseen level in new data sets all of its columns to 0, as CAST.
    source : numpy.ndarray of shape (k,)
        Predictor index of each column used in the distances (predictors with a zero
        weight or no variance are left out: they contribute nothing).
    level : numpy.ndarray of shape (k,)
        The level a one-hot column stands for; NaN for a numeric column.
    center, scale : numpy.ndarray of shape (k,)
        Training mean and sample standard deviation (``ddof=1``) of each column, in the
        predictor's units (0/1 for a one-hot column).
    weight : numpy.ndarray of shape (k,)
        Weight of each column (that of its predictor).
    feature_weights : numpy.ndarray of shape (n_features_in,)
        The weight of each predictor as used: the given weights with negatives set to 0
        (all 1 when none were given).
    constant_features : tuple of int
        Predictors constant over the training rows used (a categorical one with a single
        level): left out of the distances.
    dropped_rows : numpy.ndarray
        Indices of the training rows left out because a predictor was NaN or infinite.
    train : numpy.ndarray of shape (n_train, k)
        The training rows used, standardised and weighted (weighted standard deviations).
    mean_distance : float
        ``d_bar``: the mean distance between two different training rows, in weighted
        standard deviations; the DI's unit.
    train_di : numpy.ndarray of shape (n_samples,)
        Training DI of every row given to :func:`fit_aoa` (dimensionless): NaN at
        ``dropped_rows``.
    threshold : float
        The AOA threshold (dimensionless): a DI above it is outside.
    folds_used : bool
        Whether the training DI was taken to the nearest point of another CV fold (True)
        or to the nearest other point (False).
    """

    n_features_in: int
    categorical: tuple[int, ...]
    levels: tuple[np.ndarray, ...]
    source: np.ndarray
    level: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    weight: np.ndarray
    feature_weights: np.ndarray
    constant_features: tuple[int, ...]
    dropped_rows: np.ndarray
    train: np.ndarray
    mean_distance: float
    train_di: np.ndarray
    threshold: float
    folds_used: bool
    _tree: KDTree | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tree", _tree_for(self.train))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_tree", None)  # rebuilt on loading: only arrays travel
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def to_state(self) -> dict[str, Any]:
        """The fitted state as plain values (numbers, lists, numpy arrays).

        What a model file stores (no geohm type in it): :meth:`from_state` rebuilds it.

        Returns
        -------
        dict
            One entry per field; tuples become lists.
        """
        out: dict[str, Any] = {}
        for f in fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AreaOfApplicability:
        """Rebuild from :meth:`to_state`'s values.

        Parameters
        ----------
        state : dict
            The values of :meth:`to_state`.

        Returns
        -------
        AreaOfApplicability
            Equal to the one the state was taken from (the same DI for any row).
        """
        kw = dict(state)
        for name in ("categorical", "constant_features"):
            kw[name] = tuple(int(v) for v in kw[name])
        kw["levels"] = tuple(np.asarray(v) for v in kw["levels"])
        kw["n_features_in"] = int(kw["n_features_in"])
        kw["mean_distance"] = float(kw["mean_distance"])
        kw["threshold"] = float(kw["threshold"])
        kw["folds_used"] = bool(kw["folds_used"])
        return cls(**kw)

    def __repr__(self) -> str:
        return (
            f"AreaOfApplicability(n_train={self.n_train}, n_features_in={self.n_features_in}, "
            f"mean_distance={self.mean_distance:.6g}, threshold={self.threshold:.6g}, "
            f"folds_used={self.folds_used}, dropped_rows={len(self.dropped_rows)}, "
            f"constant_features={list(self.constant_features)})"
        )

    @property
    def n_train(self) -> int:
        """Number of training rows used (rows given less ``dropped_rows``)."""
        return int(self.train.shape[0])

    def transform(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Standardised, weighted predictors of rows, and which rows are complete.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in)
            Predictors in the model's column order and units.

        Returns
        -------
        z : numpy.ndarray of shape (n, k)
            The used columns (one-hot expanded), standardised and weighted (weighted
            standard deviations); undefined where ``valid`` is False.
        valid : numpy.ndarray of shape (n,)
            True where every predictor of the row is finite.
        """
        x = _as_matrix(X, "X")
        if x.shape[1] != self.n_features_in:
            raise ValueError(
                f"X has {x.shape[1]} predictor columns; this area of applicability was "
                f"fitted on {self.n_features_in}: give the model's predictors in its order"
            )
        valid = np.isfinite(x).all(axis=1)
        cols = x[:, self.source]
        dummy = ~np.isnan(self.level)
        if dummy.any():
            cols[:, dummy] = cols[:, dummy] == self.level[dummy]
        return (cols - self.center) / self.scale * self.weight, valid

    def di(self, X: Any) -> np.ndarray:
        """Dissimilarity index of new rows (pixels of a map window, target samples).

        The distance from each row to its nearest training row (standardised, weighted),
        divided by ``mean_distance``. A training row has DI 0.

        Parameters
        ----------
        X : array-like of shape (n, n_features_in)
            Predictors in the model's column order and units (a window's pixels as rows).

        Returns
        -------
        numpy.ndarray of shape (n,), float32
            DI, dimensionless; NaN where a predictor is NaN or infinite.

        Raises
        ------
        ValueError
            ``X`` has the wrong number of columns.

        Examples
        --------
        >>> aoa = fit_aoa([[0.0], [1.0], [3.0]])
        >>> aoa.di([[0.0], [2.0], [np.nan]]).tolist()  # d_bar = (1 + 3 + 2) / 3 = 2
        [0.0, 0.5, nan]
        """
        x = _as_matrix(X, "X")
        out = np.full(x.shape[0], np.nan, dtype=np.float32)
        for start in range(0, x.shape[0], _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, x.shape[0])
            z, valid = self.transform(x[start:stop])
            if valid.any():
                dist = _nearest_distance(self.train, z[valid], self._tree)
                out[start:stop][valid] = dist / self.mean_distance
        return out

    def inside(self, di: Any) -> np.ndarray:
        """AOA codes of DI values: 1 inside (``DI <= threshold``), 0 outside, 255 no data.

        The comparison is made in the dtype of ``di`` (a float32 DI against the float32
        threshold), so a value equal to the threshold before rounding stays inside.

        Parameters
        ----------
        di : array-like
            DI values (any shape), dimensionless, e.g. from :meth:`di`.

        Returns
        -------
        numpy.ndarray of uint8, same shape as ``di``
            :data:`AOA_INSIDE`, :data:`AOA_OUTSIDE`, or :data:`AOA_NODATA` where the DI
            is NaN.

        Examples
        --------
        >>> aoa = fit_aoa([[0.0], [1.0], [3.0]])  # training DI 0.5, 0.5, 1: threshold 1
        >>> aoa.inside(np.array([0.5, 1.0, 1.5, np.nan], dtype=np.float32)).tolist()
        [1, 1, 0, 255]
        """
        arr = np.asarray(di)
        if not np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float64)
        out = np.full(arr.shape, AOA_NODATA, dtype=np.uint8)
        ok = ~np.isnan(arr)
        out[ok] = np.where(arr[ok] <= arr.dtype.type(self.threshold), AOA_INSIDE, AOA_OUTSIDE)
        return out


def fit_aoa(
    X: Any,
    *,
    weights: Any = None,
    folds: Any = None,
    categorical: Sequence[int] | None = None,
) -> AreaOfApplicability:
    """Fit the area of applicability of a model to its training predictors.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Training predictors, in the model's column order and units. Rows with a NaN or
        infinite value are left out and listed in ``dropped_rows`` (their ``train_di`` is
        NaN).
    weights : array-like of shape (n_features,), optional
        Weight of each predictor: the model's permutation importance (e.g. mean RMSE
        increase). Negative weights count as 0; only ratios matter. None: all 1.
    folds : array-like of int, shape (n_samples,), optional
        Cross-validation fold of each sample (spatial block folds). The training DI is then
        taken to the nearest point of another fold; None: to the nearest other point.
    categorical : sequence of int, optional
        Indices of categorical predictors (numeric codes, e.g. land-use classes): one-hot
        encoded over the levels in the training rows.

    Returns
    -------
    AreaOfApplicability
        ``mean_distance`` (d_bar), ``train_di``, ``threshold`` (dimensionless) and the
        scaling, with :meth:`AreaOfApplicability.di` for new rows.

    Raises
    ------
    SampleError
        Fewer than two complete training rows, or all complete rows in one fold.
    NoDataError
        All weights are zero or negative, or every weighted predictor is constant.
    ValueError
        Malformed arguments (shapes, indices, non-integer folds, NaN weights).

    Examples
    --------
    >>> X = [[0.0, 500.0], [1.0, 600.0], [3.0, 800.0], [6.0, 1100.0], [20.0, 2500.0]]
    >>> aoa = fit_aoa(X, folds=[0, 0, 1, 1, 2])
    >>> np.round(aoa.train_di * 9, 12).tolist()
    [3.0, 2.0, 2.0, 5.0, 14.0]
    >>> round(aoa.threshold, 12)  # whisker (5 + 1.5 * 3) / 9
    1.055555555556
    """
    x = _as_matrix(X, "X")
    n, p = x.shape
    cats = _check_categorical(categorical, p)
    feature_weights = _check_weights(weights, p)
    fold_ids = _check_folds(folds, n)

    valid = np.isfinite(x).all(axis=1)
    dropped = np.flatnonzero(~valid)
    xu = x[valid]
    if xu.shape[0] < 2:
        raise SampleError(
            f"only {xu.shape[0]} of {n} training rows have every predictor: the area of "
            "applicability needs at least two; check the predictors at the sample points"
        )

    # columns: one per numeric predictor, one per training level of a categorical one
    source_l: list[int] = []
    level_l: list[float] = []
    levels: list[np.ndarray] = []
    for j in range(p):
        if j in cats:
            lv = np.unique(xu[:, j])
            levels.append(lv)
            source_l.extend([j] * lv.size)
            level_l.extend(lv.tolist())
        else:
            source_l.append(j)
            level_l.append(math.nan)
    source = np.asarray(source_l, dtype=np.intp)
    level = np.asarray(level_l, dtype=np.float64)
    cols = xu[:, source]
    dummy = ~np.isnan(level)
    cols[:, dummy] = cols[:, dummy] == level[dummy]
    constant_col = np.ptp(cols, axis=0) == 0
    constant = tuple(j for j in range(p) if constant_col[source == j].all())

    if not (feature_weights > 0).any():
        raise NoDataError(
            "all predictor weights (permutation importances) are zero or negative, so no "
            "predictor would count in the dissimilarity index: fit the area of "
            "applicability without weights (weights=None), or check the model, which "
            "predicts no better than with its predictors shuffled"
        )
    used = (feature_weights[source] > 0) & ~constant_col
    if not used.any():
        raise NoDataError(
            f"every predictor with a positive weight is constant over the {xu.shape[0]} "
            f"training rows (constant: {list(constant)}): the dissimilarity index has "
            "nothing to measure; check the predictors at the sample points"
        )
    center = cols[:, used].mean(axis=0)
    scale = cols[:, used].std(axis=0, ddof=1)
    train = (cols[:, used] - center) / scale * feature_weights[source[used]]

    mean_distance = _mean_pairwise_distance(train)
    if fold_ids is None:
        di_used = _nearest_other(train) / mean_distance
    else:
        di_used = _nearest_other_fold(train, fold_ids[valid]) / mean_distance
    train_di = np.full(n, np.nan)
    train_di[valid] = di_used

    return AreaOfApplicability(
        n_features_in=p,
        categorical=cats,
        levels=tuple(levels),
        source=source[used],
        level=level[used],
        center=center,
        scale=scale,
        weight=feature_weights[source[used]],
        feature_weights=feature_weights,
        constant_features=constant,
        dropped_rows=dropped,
        train=train,
        mean_distance=mean_distance,
        train_di=train_di,
        threshold=aoa_threshold(di_used),
        folds_used=fold_ids is not None,
    )


def _as_matrix(X: Any, name: str) -> np.ndarray:
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"{name} must be a 2-d array (rows, predictors), got shape {x.shape}")
    return x


def _check_categorical(categorical: Sequence[int] | None, p: int) -> tuple[int, ...]:
    if categorical is None:
        return ()
    cats = tuple(sorted({int(c) for c in categorical}))
    if any(c < 0 or c >= p for c in cats):
        raise ValueError(f"categorical indices {list(cats)} out of range for {p} predictors")
    return cats


def _check_weights(weights: Any, p: int) -> np.ndarray:
    if weights is None:
        return np.ones(p)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.size != p:
        raise ValueError(f"weights has {w.size} values for {p} predictors: give one each")
    if not np.isfinite(w).all():
        raise ValueError("weights hold NaN or infinite values: give a finite weight each")
    return np.maximum(w, 0.0)


def _check_folds(folds: Any, n: int) -> np.ndarray | None:
    if folds is None:
        return None
    f = np.asarray(folds).ravel()
    if f.size != n:
        raise ValueError(f"folds has {f.size} values for {n} training rows: give one each")
    if f.dtype.kind == "f" and not np.all(np.isfinite(f) & (f == np.round(f))):
        raise ValueError("folds must be integer fold ids")
    if f.dtype.kind not in "iuf":
        raise ValueError(f"folds must be integer fold ids, got dtype {f.dtype}")
    return f.astype(np.int64)


def _mean_pairwise_distance(z: np.ndarray) -> float:
    """Mean Euclidean distance between two different rows (``d_bar``)."""
    n = z.shape[0]
    step = max(1, _CHUNK_CELLS // n)
    total = 0.0
    for start in range(0, n, step):
        total += float(cdist(z[start : start + step], z).sum())  # the diagonal adds 0
    return total / (n * (n - 1))


def _tree_for(reference: np.ndarray) -> KDTree | None:
    """A KD-tree of the reference rows where it beats brute force (few columns)."""
    return KDTree(reference) if reference.shape[1] <= _KDTREE_MAX_COLUMNS else None


def _nearest_distance(reference: np.ndarray, query: np.ndarray, tree: KDTree | None) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row.

    With a KD-tree, its query; without, scikit-learn's brute-force nearest index (chunked
    matrix products), then the distance recomputed exactly from the coordinates, so that a
    query row equal to a reference row gets exactly 0.
    """
    if tree is not None:
        dist, _ = tree.query(query, k=1)
        return np.asarray(dist[:, 0])
    idx = pairwise_distances_argmin(query, reference)
    return np.sqrt(((query - reference[idx]) ** 2).sum(axis=1))


def _nearest_other(z: np.ndarray) -> np.ndarray:
    """Distance from each row to its nearest other row (a duplicate counts: 0)."""
    if z.shape[1] <= _KDTREE_MAX_COLUMNS:
        dist, _ = KDTree(z).query(z, k=2)
        return np.asarray(dist[:, 1])
    out = np.empty(z.shape[0])
    step = max(1, _CHUNK_CELLS // z.shape[0])
    for start in range(0, z.shape[0], step):
        block = cdist(z[start : start + step], z)
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = np.inf
        out[start : start + step] = block.min(axis=1)
    return out


def _nearest_other_fold(z: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Distance from each row to the nearest row of another fold."""
    ids = np.unique(fold)
    if ids.size < 2:
        raise SampleError(
            f"all {z.shape[0]} complete training rows are in CV fold {ids[0]}: the "
            "training DI needs points in another fold; give folds=None (nearest other "
            "point) or more folds"
        )
    out = np.empty(z.shape[0])
    for f in ids:
        held = fold == f
        others = z[~held]
        out[held] = _nearest_distance(others, z[held], _tree_for(others))
    return out

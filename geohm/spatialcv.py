"""Spatial block cross-validation: whole square blocks of samples go to one fold.

Random k-fold flatters models of spatially clustered samples: a held-out sample usually has
a training sample a few metres away, so the score measures interpolation within clusters,
not prediction at new places. Spatial block k-fold puts every sample of a square block of
``block_size`` metres into the same fold, so a test sample's close neighbours are held out
with it.

Blocks are squares of a grid anchored at the smallest ``x`` and ``y`` of the points. Whole
blocks are dealt to folds greedily, largest first (ties in an order shuffled with
``random_state``), each to the fold holding the fewest points so far (ties between folds
drawn at random): fold sizes then differ by at most the point count of the largest block.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.model_selection import BaseCrossValidator
from sklearn.utils import check_random_state

__all__ = [
    "block_folds",
    "SpatialBlockKFold",
    "block_ids",
    "default_block_size",
    "spatial_block_folds",
]

log = logging.getLogger(__name__)


def _as_xy(xy: Any) -> np.ndarray:
    arr = np.asarray(xy, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"xy must be an (n, 2) array of x, y in metres, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("xy holds NaN or infinite coordinates")
    return arr


def _check_block_size(block_size: Any) -> float:
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, numbers.Real)
        or not math.isfinite(block_size)
        or block_size <= 0
    ):
        raise ValueError(f"block_size must be a positive number of metres, got {block_size!r}")
    return float(block_size)


def block_ids(xy: Any, *, block_size: float) -> np.ndarray:
    """Index of the square block each point falls in.

    Parameters
    ----------
    xy : array-like of shape (n, 2)
        Point coordinates ``x, y`` in projected metres.
    block_size : float
        Side of the square blocks, in metres. The grid is anchored at the smallest ``x``
        and ``y`` of the points.

    Returns
    -------
    ndarray of shape (n,)
        Block index of each point, ``0 .. n_blocks - 1`` over the non-empty blocks
        (ordered by block row, then column).

    Examples
    --------
    >>> block_ids([[0, 0], [5, 5], [12, 0], [0, 25]], block_size=10).tolist()
    [0, 0, 1, 2]
    """
    arr = _as_xy(xy)
    size = _check_block_size(block_size)
    cells = np.floor((arr - arr.min(axis=0)) / size).astype(np.int64)
    _, ids = np.unique(cells[:, ::-1], axis=0, return_inverse=True)
    return ids.ravel()


def spatial_block_folds(
    xy: Any, *, n_splits: int = 5, block_size: float, random_state: Any = None
) -> np.ndarray:
    """Fold of each point, dealing whole blocks to folds balanced by point count.

    Parameters
    ----------
    xy : array-like of shape (n, 2)
        Point coordinates ``x, y`` in projected metres.
    n_splits : int, default=5
        Number of folds (>= 2).
    block_size : float
        Side of the square blocks, in metres.
    random_state : int, RandomState instance or None, default=None
        Seeds the order of equal-sized blocks and the choice between equally full folds.

    Returns
    -------
    ndarray of shape (n,)
        Fold index ``0 .. n_splits - 1`` of each point.

    Raises
    ------
    ValueError
        Fewer non-empty blocks than ``n_splits`` (use a smaller ``block_size``).

    Examples
    --------
    >>> xy = [[0, 0], [1, 1], [20, 0], [40, 0], [41, 1], [60, 0]]
    >>> folds = spatial_block_folds(xy, n_splits=2, block_size=10, random_state=0)
    >>> sorted(np.bincount(folds).tolist())
    [3, 3]
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, numbers.Integral) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    ids = block_ids(xy, block_size=block_size)
    counts = np.bincount(ids)
    if counts.size < n_splits:
        raise ValueError(
            f"only {counts.size} blocks of {block_size:g} m hold points, fewer than "
            f"n_splits={n_splits}: use a smaller block_size"
        )
    rng = check_random_state(random_state)
    order = rng.permutation(counts.size)
    order = order[np.argsort(-counts[order], kind="stable")]  # largest first, ties shuffled
    load = np.zeros(n_splits, dtype=np.int64)
    block_fold = np.empty(counts.size, dtype=np.int64)
    for b in order:
        lightest = np.flatnonzero(load == load.min())
        f = lightest[rng.randint(lightest.size)]
        block_fold[b] = f
        load[f] += counts[b]
    return block_fold[ids]


def default_block_size(
    xy: Any, values: Any, *, random_state: Any = 0, kriging_params: dict[str, Any] | None = None
) -> float:
    """Block size from the range of a variogram of ``values`` (metres).

    Samples further apart than the variogram range are (nearly) uncorrelated, so blocks
    one range wide keep most of a test sample's correlated neighbours out of training.
    The range is that of :class:`geohm.models.kriging.OrdinaryKrigingRegressor` with
    ``variogram_model="auto"`` (the practical range of the model chosen by
    cross-validation). The fit is deemed to fail, and 1/5 of the diagonal of the points'
    bounding box is returned instead, when it raises, or gives a range that is not a
    positive number, or one of at least half that diagonal (no correlation structure
    within the area: the fit ran to the largest lag).

    Parameters
    ----------
    xy : array-like of shape (n, 2)
        Sample coordinates ``x, y`` in projected metres.
    values : array-like of shape (n,)
        Sample values (e.g. mg/kg; a log transform may suit skewed metals better).
    random_state : int, RandomState instance or None, default=0
        Seeds the cross-validation that chooses the variogram model.
    kriging_params : dict, optional
        Other parameters of the :class:`~geohm.models.kriging.OrdinaryKrigingRegressor`
        (e.g. ``nlags``: pykrige's default of 6 lag classes over the largest distance is
        coarse and tends to overstate the range).

    Returns
    -------
    float
        Block size in metres.
    """
    from geohm.models.kriging import OrdinaryKrigingRegressor

    arr = _as_xy(xy)
    diagonal = float(np.hypot(*np.ptp(arr, axis=0)))
    fallback = diagonal / 5.0
    try:
        params = {"variogram_model": "auto", "random_state": random_state}
        ok = OrdinaryKrigingRegressor(**{**params, **(kriging_params or {})}).fit(arr, values)
        range_ = float(ok.variogram_parameters_["range"])
    except ValueError as err:
        log.info("default_block_size: variogram fit failed (%s); using diagonal/5", err)
        return fallback
    if not math.isfinite(range_) or range_ <= 0 or range_ >= diagonal / 2:
        log.info(
            "default_block_size: variogram range %g m unusable (diagonal %g m); using diagonal/5",
            range_,
            diagonal,
        )
        return fallback
    return range_


class SpatialBlockKFold(BaseCrossValidator):
    """K-fold cross-validation over square spatial blocks (scikit-learn splitter).

    Every sample of a block lands in the same fold, so no block is split between training
    and test sets; blocks are dealt to folds balanced by point count (see
    :func:`spatial_block_folds`).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (>= 2).
    block_size : float or None, default=None
        Side of the square blocks, in metres. ``None``: :func:`default_block_size` of the
        ``X`` coordinates and ``y`` given to :meth:`split` (one variogram range); without
        ``y``, 1/5 of the diagonal of the points' bounding box.
    random_state : int, RandomState instance or None, default=None
        Seeds the dealing of blocks to folds.
    coords : tuple of int, default=(0, 1)
        Column indices of ``x`` and ``y`` (projected metres) in ``X``. To split a table
        without coordinates, split the ``(n, 2)`` coordinates instead and pass the folds
        as ``cv=list(splitter.split(xy, y))``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> xy = rng.uniform(0, 1000, size=(100, 2))
    >>> cv = SpatialBlockKFold(4, block_size=250, random_state=0)
    >>> [len(test) for _, test in cv.split(xy)]
    [25, 24, 26, 25]
    """

    def __init__(
        self,
        n_splits: int = 5,
        *,
        block_size: float | None = None,
        random_state: Any = None,
        coords: tuple[int, int] = (0, 1),
    ) -> None:
        self.n_splits = n_splits
        self.block_size = block_size
        self.random_state = random_state
        self.coords = coords

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of folds.

        Parameters
        ----------
        X, y, groups : object
            Ignored; present for the scikit-learn API.

        Returns
        -------
        int
            ``n_splits``.
        """
        return int(self.n_splits)

    def _xy(self, X: Any) -> np.ndarray:
        coords = self.coords
        if (
            not isinstance(coords, tuple | list)
            or len(coords) != 2
            or not all(isinstance(c, numbers.Integral) and c >= 0 for c in coords)
            or coords[0] == coords[1]
        ):
            raise ValueError(f"coords must be two distinct column indices, got {coords!r}")
        ix, iy = int(coords[0]), int(coords[1])
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[1] <= max(ix, iy):
            raise ValueError(f"X of shape {arr.shape} has no columns {ix}, {iy} for x, y (coords)")
        return _as_xy(arr[:, [ix, iy]])

    def fold_ids(self, X: Any, y: Any = None) -> np.ndarray:
        """Fold index of each sample.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Table with the coordinates (projected metres) in the columns ``coords``.
        y : array-like of shape (n_samples,), optional
            Target; only used to derive the block size when ``block_size`` is None.

        Returns
        -------
        ndarray of shape (n_samples,)
            Fold index ``0 .. n_splits - 1``.
        """
        xy = self._xy(X)
        size = self.block_size
        if size is None:
            if y is None:
                size = float(np.hypot(*np.ptp(xy, axis=0))) / 5.0
            else:
                size = default_block_size(xy, np.asarray(y, dtype=np.float64).ravel())
            log.info("SpatialBlockKFold: block_size %g m", size)
        return spatial_block_folds(
            xy, n_splits=self.n_splits, block_size=size, random_state=self.random_state
        )

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Generate train and test indices, one fold at a time.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Table with the coordinates (projected metres) in the columns ``coords``.
        y : array-like of shape (n_samples,), optional
            Target; only used to derive the block size when ``block_size`` is None.
        groups : object
            Ignored.

        Yields
        ------
        train : ndarray
            Indices of the training samples.
        test : ndarray
            Indices of the test samples.
        """
        folds = self.fold_ids(X, y)
        for k in range(self.get_n_splits()):
            test = folds == k
            yield np.flatnonzero(~test), np.flatnonzero(test)


def block_folds(
    xy: np.ndarray,
    y: np.ndarray,
    folds: int,
    *,
    block_size: float | None = None,
    seed: int = 0,
) -> tuple[np.ndarray | None, float]:
    """The spatial block fold of each sample, and the block size (map units, metres).

    Parameters
    ----------
    xy : numpy.ndarray
        (n, 2) sample coordinates in a projected CRS.
    y : numpy.ndarray
        (n,) target values (mg/kg), for the default block size.
    folds : int
        Number of folds.
    block_size : float, optional
        Block side; default: the variogram range of ``y`` (:func:`default_block_size`).
    seed : int
        Seed of the block-to-fold assignment.

    Returns
    -------
    tuple of (numpy.ndarray or None, float)
        The fold of each sample and the block size used: a block size leaving fewer
        occupied blocks than folds is halved until it fits (folds None when it never
        does).
    """
    block = block_size or default_block_size(xy, y, random_state=seed)
    for _ in range(12):
        try:
            fold = spatial_block_folds(xy, n_splits=folds, block_size=block, random_state=seed)
            return fold, float(block)
        except ValueError:  # fewer occupied blocks than folds
            block /= 2
    return None, float(block)

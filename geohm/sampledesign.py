"""Where to sample next: points that most reduce the uncertainty about exceedance.

Every valid pixel gets a score, the product of three components:

==============  ============================================  ========================
component       definition                                    column
==============  ============================================  ========================
closeness       1 - 2 |P(C > S) - 0.5|: 1 at P = 0.5, 0 at     ``closeness``
                P = 0 or 1
width           prediction-interval width / its maximum over  ``width_share``
                the scene's valid pixels (0-1)                (mg/kg: ``interval_width``)
DI              dissimilarity index (area of applicability,   ``di``
                dimensionless; 1 when not given)
score           closeness x width x DI                        ``score``
==============  ============================================  ========================

A pixel is valid where P and the width (and the DI, when given) are finite. Then
``n`` points are picked greedily: the highest score first, each next one the highest
scoring pixel at least ``min_spacing_m`` from every point already picked and from every
existing sample. Pixels of score 0 (P = 0 or 1, no width, DI 0 at a training sample)
are never suggested: a sample there teaches nothing about the exceedance, so fewer than
``n`` points may come back. Ties are broken by position (row, then column), so the
result is deterministic.

:class:`NextSamples` runs on a full scene in bounded memory: the prediction calls
:meth:`~NextSamples.update` once per map window (any order, any size), which keeps the
``pool_size`` best pixels of the scene so far (by score, then position); the maximum
interval width is tracked over every valid pixel, so the normalisation is exact. The
greedy pick over this pool equals the pick over the whole scene whenever it finds its
``n`` points inside the pool (a greedy pick only ever looks at the pixels above its
last point, and the pool holds the best ``pool_size`` of them); when the pool runs out
first, :attr:`SampleDesign.exact` is False and a note says to raise ``pool_size``. One
pick rules out a disc of about pi (min_spacing / pixel)^2 pixels (314 at 300 m and
30 m pixels), so the default pool (250,000 pixels, 10 MB) holds hundreds of such discs.

Pixel centres are placed with the grid's affine transform; the grid is projected, so
``min_spacing_m`` and the coordinates are in metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

__all__ = ["NextSamples", "SampleDesign", "suggest_samples"]

#: Columns of :attr:`SampleDesign.points`, in order.
COLUMNS = (
    "rank",
    "x",
    "y",
    "row",
    "col",
    "score",
    "closeness",
    "width_share",
    "interval_width",
    "di",
    "probability",
    "nearest_sample_m",
)

_Floats = NDArray[np.float64]
_Ints = NDArray[np.int64]


@dataclass(frozen=True)
class SampleDesign:
    """Suggested sample points, ranked.

    Parameters
    ----------
    points : pandas.DataFrame
        One row per point, best first: ``rank`` (1..), ``x``, ``y`` (pixel centre,
        grid CRS, m), ``row``, ``col`` (grid pixel), ``score``, ``closeness``,
        ``width_share``, ``interval_width`` (mg/kg), ``di``, ``probability`` (P(C > S)),
        ``nearest_sample_m`` (distance to the nearest existing sample, m; NaN without
        samples).
    exact : bool
        Whether the points are those of the greedy pick over the whole scene (False:
        the candidate pool ran out first; see the module docstring).
    candidates : int
        Valid pixels with a positive score seen.
    notes : tuple of str
        Why fewer than ``n`` points came back, if they did.
    """

    points: pd.DataFrame
    exact: bool
    candidates: int
    notes: tuple[str, ...] = ()


@dataclass
class _Pool:
    """Candidate pixels (sorted by score descending, row, column only in ``select``)."""

    row: _Ints = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    col: _Ints = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    raw: _Floats = field(default_factory=lambda: np.empty(0))  # closeness x width x DI
    prob: _Floats = field(default_factory=lambda: np.empty(0))
    width: _Floats = field(default_factory=lambda: np.empty(0))
    di: _Floats = field(default_factory=lambda: np.empty(0))

    @classmethod
    def of(cls, arrays: list[Any]) -> _Pool:
        return cls(*arrays)

    def take(self, idx: NDArray[np.intp]) -> _Pool:
        return _Pool.of([a[idx] for a in self.arrays()])

    def arrays(self) -> tuple[_Ints, _Ints, _Floats, _Floats, _Floats, _Floats]:
        return (self.row, self.col, self.raw, self.prob, self.width, self.di)

    def __len__(self) -> int:
        return len(self.raw)


def _order(pool: _Pool) -> NDArray[np.intp]:
    """Indices sorting by score (descending), then row, then column."""
    return np.lexsort((pool.col, pool.row, -pool.raw))


def _best(pool: _Pool, k: int) -> tuple[_Pool, bool]:
    """The ``k`` first candidates in that order (unsorted); and whether any was dropped.

    A selection, not a sort: O(len(pool)); only the pixels tied with the k-th best
    score are ordered (by position) to choose among them.
    """
    if len(pool) <= k:
        return pool, False
    kth = np.partition(pool.raw, len(pool) - k)[len(pool) - k]
    above = np.flatnonzero(pool.raw > kth)
    tied = np.flatnonzero(pool.raw == kth)
    tied = tied[np.lexsort((pool.col[tied], pool.row[tied]))][: k - len(above)]
    return pool.take(np.concatenate([above, tied])), True


class NextSamples:
    """Streaming candidate pool for the next sample points of one map.

    Parameters
    ----------
    transform : affine.Affine
        The grid's transform (pixel (col, row) -> map x, y; metres).
    n : int
        Number of points to suggest (``sampling_design.n``).
    min_spacing_m : float
        Least distance between two suggested points, and between a suggested point and
        an existing sample (``sampling_design.min_spacing_m``), metres.
    pool_size : int
        Best pixels kept (see the module docstring); at least ``n``.

    Examples
    --------
    Six 10 m pixels; points at least 15 m apart. The best pixel (P = 0.5, the widest
    interval) comes first; its neighbours are too close; of the two tied next ones
    (score 0.2) the one on the upper row is taken:

    >>> from affine import Affine
    >>> ns = NextSamples(Affine(10, 0, 0, 0, -10, 100), n=3, min_spacing_m=15)
    >>> p = np.array([[0.5, 0.5, 0.1], [0.9, 0.5, np.nan]])
    >>> ns.update(0, 0, p, np.array([[4.0, 2.0, 4.0], [4.0, 3.0, 4.0]]))
    >>> design = ns.select()
    >>> design.points[["rank", "x", "y"]].to_dict("list")
    {'rank': [1, 2], 'x': [5.0, 25.0], 'y': [95.0, 95.0]}
    >>> design.points["score"].round(6).tolist(), design.exact
    ([1.0, 0.2], True)
    """

    def __init__(
        self,
        transform: Affine,
        *,
        n: int = 20,
        min_spacing_m: float = 300.0,
        pool_size: int = 250_000,
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if not (math.isfinite(min_spacing_m) and min_spacing_m >= 0):
            raise ValueError(f"min_spacing_m must be >= 0 m, got {min_spacing_m!r}")
        self.transform = transform
        self.n = int(n)
        self.min_spacing_m = float(min_spacing_m)
        self.pool_size = max(int(pool_size), self.n)
        self._pool = _Pool()
        self._dropped = False
        self._max_width = 0.0
        self._candidates = 0
        self._floor = 0.0  # the worst score in a full pool

    def update(
        self,
        row_off: int,
        col_off: int,
        probability: ArrayLike,
        width: ArrayLike,
        di: ArrayLike | None = None,
    ) -> None:
        """Add one window.

        Parameters
        ----------
        row_off, col_off : int
            The window's first row and column on the grid (pixels).
        probability : array-like of float, shape (y, x)
            P(C > S) (0-1); NaN where not mapped.
        width : array-like of float, shape (y, x)
            Width of the prediction interval (mg/kg, >= 0); NaN where not mapped.
        di : array-like of float, shape (y, x), optional
            Dissimilarity index (>= 0); NaN where not computed. None: 1 everywhere.

        Raises
        ------
        ValueError
            Arrays of different shapes, a probability outside 0-1 or a negative width
            or DI.
        """
        p = np.asarray(probability, dtype=np.float64)
        w = np.asarray(width, dtype=np.float64)
        d = np.ones_like(p) if di is None else np.asarray(di, dtype=np.float64)
        if w.shape != p.shape or d.shape != p.shape:
            raise ValueError(f"shapes differ: probability {p.shape}, width {w.shape}, di {d.shape}")
        ok = np.isfinite(p) & np.isfinite(w) & np.isfinite(d)
        rows, cols = np.nonzero(ok)
        pv, wv, dv = p[ok], w[ok], d[ok]
        if pv.size == 0:
            return
        if pv.min() < 0 or pv.max() > 1:
            raise ValueError("probability must lie in 0-1 (NaN where not mapped)")
        if wv.min() < 0 or dv.min() < 0:
            raise ValueError("interval width and DI must be >= 0")
        self._max_width = max(self._max_width, float(wv.max()))
        raw = (1.0 - 2.0 * np.abs(pv - 0.5)) * wv * dv
        positive = raw > 0
        keep = positive.copy()
        self._candidates += int(positive.sum())
        if len(self._pool) >= self.pool_size:  # only what beats (or ties) the pool's worst
            keep &= raw >= self._floor
            self._dropped |= bool(keep.sum() < positive.sum())
        if not keep.any():
            return
        window, cut = _best(
            _Pool(
                rows[keep].astype(np.int64) + row_off,
                cols[keep].astype(np.int64) + col_off,
                raw[keep],
                pv[keep],
                wv[keep],
                dv[keep],
            ),
            self.pool_size,
        )
        pairs = zip(self._pool.arrays(), window.arrays(), strict=True)
        self._pool, cut_pool = _best(_Pool.of([np.concatenate(ab) for ab in pairs]), self.pool_size)
        self._dropped |= cut or cut_pool
        if len(self._pool) >= self.pool_size:
            self._floor = float(self._pool.raw.min())

    def select(self, existing_xy: ArrayLike | None = None) -> SampleDesign:
        """Pick the points greedily from the pool.

        Parameters
        ----------
        existing_xy : array-like of float, shape (m, 2), optional
            The existing samples' x, y in the grid's CRS (m).

        Returns
        -------
        SampleDesign
            Up to ``n`` points, best first.
        """
        pool = self._pool.take(_order(self._pool))
        t = self.transform
        cc, rr = pool.col + 0.5, pool.row + 0.5
        xy = np.column_stack([t.a * cc + t.b * rr + t.c, t.d * cc + t.e * rr + t.f])
        alive = np.ones(len(pool), dtype=bool)
        nearest = np.full(len(pool), np.nan)
        s = self.min_spacing_m
        if existing_xy is not None:
            known = np.asarray(existing_xy, dtype=np.float64).reshape(-1, 2)
            known = known[np.isfinite(known).all(axis=1)]
            if len(known) and len(pool):
                nearest, _ = cKDTree(known).query(xy, k=1)
                alive &= nearest >= s
        picked: list[int] = []
        tree = cKDTree(xy) if len(pool) else None
        i = 0
        while len(picked) < self.n:
            while i < len(pool) and not alive[i]:
                i += 1
            if i == len(pool):
                break
            picked.append(i)
            alive[i] = False
            if s > 0 and tree is not None:
                close = np.asarray(tree.query_ball_point(xy[i], r=s), dtype=np.intp)
                if close.size:
                    dist = np.hypot(xy[close, 0] - xy[i, 0], xy[close, 1] - xy[i, 1])
                    alive[close[dist < s]] = False
        exact = len(picked) == self.n or not self._dropped
        notes: list[str] = []
        if len(picked) < self.n:
            if self._candidates == 0:
                notes.append(
                    "no point: no mapped pixel has a positive score (P(C > S) is 0 or 1 "
                    "everywhere, or the interval has no width): nothing is uncertain enough "
                    "to sample for"
                )
            elif exact:
                notes.append(
                    f"only {len(picked)} of {self.n} points: no other valid pixel with a positive "
                    f"score lies {s:g} m from the picked points and the existing samples"
                )
            else:
                notes.append(
                    f"only {len(picked)} of {self.n} points: the {len(pool)} best pixels kept "
                    "ran out; raise pool_size for the rest"
                )
        idx = np.asarray(picked, dtype=np.intp)
        top = self._max_width if self._max_width > 0 else 1.0
        closeness = 1.0 - 2.0 * np.abs(pool.prob[idx] - 0.5)
        points = pd.DataFrame(
            {
                "rank": np.arange(1, len(idx) + 1, dtype=np.int64),
                "x": xy[idx, 0],
                "y": xy[idx, 1],
                "row": pool.row[idx],
                "col": pool.col[idx],
                "score": pool.raw[idx] / top,
                "closeness": closeness,
                "width_share": pool.width[idx] / top,
                "interval_width": pool.width[idx],
                "di": pool.di[idx],
                "probability": pool.prob[idx],
                "nearest_sample_m": nearest[idx],
            },
            columns=list(COLUMNS),
        )
        return SampleDesign(points, exact=exact, candidates=self._candidates, notes=tuple(notes))


def suggest_samples(
    probability: ArrayLike,
    width: ArrayLike,
    di: ArrayLike | None = None,
    *,
    transform: Affine,
    n: int = 20,
    min_spacing_m: float = 300.0,
    existing_xy: ArrayLike | None = None,
) -> SampleDesign:
    """Suggest the next sample points on a whole (small) map; a scene: :class:`NextSamples`.

    Parameters
    ----------
    probability, width, di : array-like of float, shape (y, x)
        P(C > S), the interval width (mg/kg) and the DI (optional), as in
        :meth:`NextSamples.update`.
    transform : affine.Affine
        The grid's transform (metres).
    n : int
        Number of points.
    min_spacing_m : float
        Least distance between points and to existing samples (m).
    existing_xy : array-like of float, shape (m, 2), optional
        Existing samples' x, y (grid CRS, m).

    Returns
    -------
    SampleDesign
        Up to ``n`` points, best first.
    """
    p = np.asarray(probability, dtype=np.float64)
    ns = NextSamples(transform, n=n, min_spacing_m=min_spacing_m, pool_size=max(p.size, n))
    ns.update(0, 0, p, width, di)
    return ns.select(existing_xy)

"""Neighbourhoods of the feature cube: the patch around a sample and a window with a halo.

Models that see a pixel's neighbourhood (the patch CNN) read their inputs here, through the
one feature reader (:class:`geohm.cube.WindowSource`, or anything with ``read`` and
``shape``): the patch of a sample is the one-pixel window at its pixel with an ``h``-pixel
halo, read by the same code as a map window with its halo, so the two agree bit for bit.
Cells beyond the grid are NaN.

A patch table is flattened for the sample table as ``<feature>@<dy>,<dx>`` columns
(:func:`patch_columns`): feature-major, then rows, then columns, which is C order of a
``(n, C, 2h + 1, 2h + 1)`` array.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

__all__ = ["WindowLike", "patch_channels", "patch_columns", "read_halo", "read_patches"]


class WindowLike(Protocol):
    """A feature reader: :class:`geohm.cube.WindowSource` is one."""

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        ...

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        """The (feature, rows, cols) float32 block of a window inside the grid."""
        ...


def read_halo(
    source: WindowLike, row_off: int, col_off: int, rows: int, cols: int, halo: int
) -> np.ndarray:
    """The window ``(row_off, col_off, rows, cols)`` with a ``halo``-pixel margin.

    Parameters
    ----------
    source : WindowLike
        The feature reader (:class:`geohm.cube.WindowSource`).
    row_off, col_off, rows, cols : int
        The window on the grid (pixels).
    halo : int
        Margin in pixels on every side (the patch half-width ``h``).

    Returns
    -------
    ndarray of shape (C, rows + 2 halo, cols + 2 halo), float32
        The features, NaN where the margin lies outside the grid.
    """
    ny, nx = source.shape
    r0, c0 = row_off - halo, col_off - halo
    r1, c1 = row_off + rows + halo, col_off + cols + halo
    rr0, cc0, rr1, cc1 = max(r0, 0), max(c0, 0), min(r1, ny), min(c1, nx)
    inner = source.read(rr0, cc0, rr1 - rr0, cc1 - cc0)
    out = np.full((inner.shape[0], r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    out[:, rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = inner
    return out


def read_patches(
    source: WindowLike, rows: Any, cols: Any, half: int, *, tile: int = 256
) -> np.ndarray:
    """The ``(2 half + 1)``-pixel patch centred on each pixel, NaN outside the grid.

    Samples are grouped by ``tile`` x ``tile`` block of the grid and each group is one
    :func:`read_halo` of the box around its pixels (a few reads for a whole survey, not
    one per sample); the values do not depend on the window read.

    Parameters
    ----------
    source : WindowLike
        The feature reader (:class:`geohm.cube.WindowSource`).
    rows, cols : array-like of int, shape (n,)
        Pixel row and column of every sample.
    half : int
        Patch half-width ``h`` in pixels.
    tile : int
        Side of the blocks samples are grouped by (pixels).

    Returns
    -------
    ndarray of shape (n, C, 2 half + 1, 2 half + 1), float32
        Patch ``i`` equals :func:`read_halo` of the one-pixel window at
        ``(rows[i], cols[i])``.
    """
    rr = np.asarray(rows, dtype=np.int64).ravel()
    cc = np.asarray(cols, dtype=np.int64).ravel()
    if rr.size == 0:
        raise ValueError("read_patches: no pixels given")
    size = 2 * half + 1
    out: np.ndarray | None = None
    key = (rr // tile) * (int(cc.max()) // tile + 1) + cc // tile
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        r0, c0 = int(rr[idx].min()), int(cc[idx].min())
        r1, c1 = int(rr[idx].max()) + 1, int(cc[idx].max()) + 1
        block = read_halo(source, r0, c0, r1 - r0, c1 - c0, half)
        if out is None:
            out = np.empty((rr.size, block.shape[0], size, size), dtype=np.float32)
        for i in idx:
            r, c = int(rr[i]) - r0, int(cc[i]) - c0
            out[i] = block[:, r : r + size, c : c + size]
    assert out is not None
    return out


def patch_columns(features: Sequence[str], half: int) -> list[str]:
    """Column names of flattened ``(2 half + 1)``-pixel patches of ``features``.

    Examples
    --------
    >>> patch_columns(["ndvi"], 1)[:4]
    ['ndvi@-1,-1', 'ndvi@-1,+0', 'ndvi@-1,+1', 'ndvi@+0,-1']
    """
    offsets = range(-half, half + 1)
    return [f"{f}@{dy:+d},{dx:+d}" for f in features for dy in offsets for dx in offsets]


def patch_channels(columns: Sequence[str]) -> list[str]:
    """The features (channels, in order) of flattened patch columns.

    Examples
    --------
    >>> patch_channels(patch_columns(["ndvi", "slope"], 1))
    ['ndvi', 'slope']
    """
    return list(dict.fromkeys(str(c).rsplit("@", 1)[0] for c in columns))

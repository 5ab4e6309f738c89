"""Window planning: the window side a memory budget allows, and the windows of a grid."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def window_size(n_features: int, *, workers: int, memory_mb: float, block: int = 256) -> int:
    """Window side (pixels, a multiple of the GeoTIFF ``block``) that fits a memory budget.

    Per pixel a window holds the feature block (float32), the valid-pixel table handed to
    the models (float64 copy) and a few output layers: about ``12 * n_features + 64``
    bytes. Up to ``2 * workers + 1`` windows are in flight (read-ahead plus the one being
    written).

    Examples
    --------
    >>> window_size(21, workers=2, memory_mb=1024)
    768
    >>> window_size(21, workers=2, memory_mb=64)
    256
    """
    per_pixel = 12 * n_features + 64
    pixels = memory_mb * 2**20 / (per_pixel * (2 * max(workers, 1) + 1))
    side = int(np.sqrt(pixels)) // block * block
    return int(min(max(side, block), 4096))


def iter_windows(height: int, width: int, tile: int) -> Iterator[tuple[int, int, int, int]]:
    """Row-major windows ``(row_off, col_off, rows, cols)`` covering a grid.

    Examples
    --------
    >>> list(iter_windows(3, 5, 2))  # doctest: +NORMALIZE_WHITESPACE
    [(0, 0, 2, 2), (0, 2, 2, 2), (0, 4, 2, 1), (2, 0, 1, 2), (2, 2, 1, 2), (2, 4, 1, 1)]
    """
    if tile < 1:
        raise ValueError("tile must be a positive number of pixels")
    for r in range(0, height, tile):
        for c in range(0, width, tile):
            yield r, c, min(tile, height - r), min(tile, width - c)

"""Random fields and shapes the demo world is drawn with (pixel units, ``(row, col)``)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["disc", "edt", "fractal", "line_mask", "smooth_field"]


def smooth_field(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field, correlation length ``sigma`` pixels."""
    m = n + 2 * int(np.ceil(2 * sigma))  # pad against FFT wrap-around
    noise = rng.standard_normal((m, m))
    fy = np.fft.fftfreq(m)[:, None]
    fx = np.fft.rfftfreq(m)[None, :]
    kernel = np.exp(-2.0 * (np.pi * sigma) ** 2 * (fx**2 + fy**2))
    f = np.fft.irfft2(np.fft.rfft2(noise) * kernel, s=(m, m))
    off = (m - n) // 2
    f = f[off : off + n, off : off + n]
    return (f - f.mean()) / f.std()


def fractal(rng: np.random.Generator, n: int, beta: float = 3.0) -> np.ndarray:
    """Zero-mean, unit-std fractal (power-law spectrum ``f**-beta``) noise."""
    noise = rng.standard_normal((n, n))
    fy = np.fft.fftfreq(n)[:, None]
    fx = np.fft.rfftfreq(n)[None, :]
    f2 = fx**2 + fy**2
    f2[0, 0] = np.inf
    f = np.fft.irfft2(np.fft.rfft2(noise) * f2 ** (-beta / 4), s=(n, n))
    return (f - f.mean()) / f.std()


def disc(
    shape: tuple[int, int],
    r0: float,
    c0: float,
    radius: float,
    wobble: np.ndarray | None = None,
    stretch: float = 1.0,
) -> np.ndarray:
    """Pixels inside a wobbly disc of ``radius`` pixels around (r0, c0).

    Rows are scaled by ``1/stretch`` and the edge moved by a quarter of ``wobble`` (a
    field in units of the radius).
    """
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    d = np.hypot((rr - r0) / stretch, cc - c0) / radius
    if wobble is not None:
        d = d + 0.25 * wobble
    return d < 1.0


def line_mask(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], width: float
) -> np.ndarray:
    """Pixels within ``width`` pixels of the segment p0-p1 (row, col)."""
    rr, cc = np.ogrid[: shape[0], : shape[1]]
    (r0, c0), (r1, c1) = p0, p1
    dr, dc = r1 - r0, c1 - c0
    t = np.clip(((rr - r0) * dr + (cc - c0) * dc) / max(dr * dr + dc * dc, 1e-9), 0, 1)
    return np.hypot(rr - (r0 + t * dr), cc - (c0 + t * dc)) <= width


def edt(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (pixels) to the nearest True pixel, and that pixel's (row, col) indices."""
    if not mask.any():
        return np.full(mask.shape, np.inf), np.zeros((2, *mask.shape), dtype=int)
    d, idx = ndimage.distance_transform_edt(~mask, return_indices=True)
    return d, idx

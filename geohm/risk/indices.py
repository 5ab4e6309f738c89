"""Soil-risk indices from concentrations and reference values: arrays in, arrays out.

Every index function takes NumPy arrays (or scalars) of concentrations in mg/kg,
broadcasts them, and returns a new float64 array. They are called per prediction
window, so nothing here touches rasters, paths or config objects.

Formulas (science.md section 4; C concentration, S standard value, B background, all mg/kg):

==================  ==========================================  ======================
index               formula                                     function
==================  ==========================================  ======================
single factor       P_i = C_i / S_i                             :func:`single_factor`
Nemerow             P_N = sqrt((P_max^2 + P_avg^2) / 2)         :func:`nemerow`
geoaccumulation     I_geo = log2(C / (1.5 B))                   :func:`igeo`
Hakanson E_r        E_r = T_r C / B                             :func:`hakanson_er`
Hakanson RI         RI = sum of E_r over metals                 :func:`hakanson_ri`
==================  ==========================================  ======================

A negative, infinite or NaN concentration is invalid and gives NaN. A standard or background
value that is zero or negative is a configuration error (:class:`~geohm.errors.ConfigError`
naming the metal); a NaN one (a NaN pH pixel, say) gives NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from geohm.errors import ConfigError

__all__ = ["FloatArray", "hakanson_er", "hakanson_ri", "igeo", "nemerow", "single_factor"]

#: The float64 arrays every index returns.
FloatArray = NDArray[np.float64]


def _floats(x: ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _valid_concentration(c: FloatArray) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return np.isfinite(c) & (c >= 0)


def _check_reference(x: FloatArray, what: str, metal: str | None) -> None:
    """Raise if any finite reference value (standard, background, T_r) is <= 0."""
    with np.errstate(invalid="ignore"):
        bad = np.isfinite(x) & (x <= 0)
    if np.any(bad):
        who = f" of {metal}" if metal else ""
        raise ConfigError(f"the {what}{who} must be > 0 mg/kg, got {x[bad].ravel()[0]:g}")


def single_factor(c: ArrayLike, s: ArrayLike, *, metal: str | None = None) -> FloatArray:
    """Single-factor pollution index P_i = C / S (dimensionless).

    Parameters
    ----------
    c : array_like
        Concentration, mg/kg.
    s : array_like
        Standard (screening) value, mg/kg: a scalar or an array (a pH-dependent value per
        pixel, from :meth:`Standard.screening`). Broadcast against ``c``.
    metal : str, optional
        Named in error messages.

    Returns
    -------
    numpy.ndarray of float64
        NaN where C is negative, infinite or NaN, or S is NaN.

    Raises
    ------
    ConfigError
        A finite S <= 0.

    Examples
    --------
    >>> single_factor([45.0, 90.0, -1.0], 90.0).tolist()
    [0.5, 1.0, nan]
    """
    c, s = _floats(c), _floats(s)
    _check_reference(s, "standard value", metal)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = c / s
    return np.where(_valid_concentration(c), p, np.nan)


def nemerow(p: Sequence[ArrayLike] | FloatArray) -> FloatArray:
    """Nemerow integrated pollution index P_N = sqrt((P_max^2 + P_avg^2) / 2).

    P_max and P_avg are the largest and the mean single-factor index over the metals, pixel
    by pixel.

    Parameters
    ----------
    p : sequence of array_like
        One P_i array per metal (dimensionless), all broadcastable to one shape (a 2-D array
        is read as metals along axis 0).

    Returns
    -------
    numpy.ndarray of float64
        NaN wherever any metal's P_i is NaN, infinite or negative.

    Examples
    --------
    >>> round(float(nemerow([0.5, 2.0])), 4)  # sqrt((2^2 + 1.25^2) / 2)
    1.6677
    """
    arrays = [_floats(a) for a in p]
    if not arrays:
        raise ValueError("nemerow needs the single-factor index of at least one metal")
    stack = np.stack(np.broadcast_arrays(*arrays))
    stack = np.where(_valid_concentration(stack), stack, np.nan)
    pmax = stack.max(axis=0)
    pavg = stack.mean(axis=0)
    return np.asarray(np.sqrt((pmax**2 + pavg**2) / 2.0), dtype=np.float64)


def igeo(c: ArrayLike, b: ArrayLike, *, metal: str | None = None) -> FloatArray:
    """Geoaccumulation index I_geo = log2(C / (1.5 B)) (Müller 1969).

    Parameters
    ----------
    c : array_like
        Concentration, mg/kg.
    b : array_like
        Geochemical background, mg/kg (scalar or array, broadcast against ``c``).
    metal : str, optional
        Named in error messages.

    Returns
    -------
    numpy.ndarray of float64
        NaN where C <= 0 (log undefined), C is not finite, or B is NaN.

    Raises
    ------
    ConfigError
        A finite B <= 0.

    Examples
    --------
    >>> igeo([45.0, 90.0, 0.0], 30.0).tolist()  # log2(1), log2(2), undefined
    [0.0, 1.0, nan]
    """
    c, b = _floats(c), _floats(b)
    _check_reference(b, "background value", metal)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log2(c / (1.5 * b))
        ok = np.isfinite(c) & (c > 0)
    return np.where(ok, out, np.nan)


def hakanson_er(c: ArrayLike, b: ArrayLike, tr: float, *, metal: str | None = None) -> FloatArray:
    """Hakanson potential ecological risk of one metal, E_r = T_r C / B.

    Parameters
    ----------
    c : array_like
        Concentration, mg/kg.
    b : array_like
        Background value, mg/kg.
    tr : float
        Toxic-response factor T_r (dimensionless; :func:`toxic_response`).
    metal : str, optional
        Named in error messages.

    Returns
    -------
    numpy.ndarray of float64
        NaN where C is negative or not finite, or B is NaN.

    Raises
    ------
    ConfigError
        T_r or a finite B <= 0.

    Examples
    --------
    >>> hakanson_er([0.194], 0.097, 30).tolist()  # Cd: 30 * 2
    [60.0]
    """
    c, b, t = _floats(c), _floats(b), _floats(tr)
    if not (t.ndim == 0 and math.isfinite(float(t)) and float(t) > 0):
        who = f" of {metal}" if metal else ""
        raise ConfigError(f"the toxic-response factor{who} must be one number > 0, got {tr!r}")
    _check_reference(b, "background value", metal)
    with np.errstate(divide="ignore", invalid="ignore"):
        er = float(t) * c / b
    return np.where(_valid_concentration(c), er, np.nan)


def hakanson_ri(er: Sequence[ArrayLike] | FloatArray) -> FloatArray:
    """Hakanson potential ecological risk index RI = sum of E_r over metals.

    Parameters
    ----------
    er : sequence of array_like
        One E_r array per metal, broadcastable to one shape.

    Returns
    -------
    numpy.ndarray of float64
        NaN wherever any metal's E_r is NaN, infinite or negative.

    Examples
    --------
    >>> hakanson_ri([[60.0, 10.0], [5.0, float("nan")]]).tolist()
    [65.0, nan]
    """
    arrays = [_floats(a) for a in er]
    if not arrays:
        raise ValueError("hakanson_ri needs E_r of at least one metal")
    stack = np.stack(np.broadcast_arrays(*arrays))
    stack = np.where(_valid_concentration(stack), stack, np.nan)
    return np.asarray(stack.sum(axis=0), dtype=np.float64)

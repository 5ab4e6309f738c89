"""What the dissimilarity index says about error and about a change of year.

:func:`error_profile` fits the absolute cross-validation error as a non-decreasing function
of the DI (isotonic regression; CAST's ``errorProfiles()`` fits a monotone spline of a
moving-window metric); :func:`covariate_shift` gives the share of rows (target-year samples
or pixels) outside a source model's area of applicability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression

from geohm.aoa.index import AOA_NODATA, AOA_OUTSIDE, AreaOfApplicability
from geohm.errors import SampleError

__all__ = ["CovariateShift", "ErrorProfile", "covariate_shift", "error_profile"]


@dataclass(frozen=True, eq=False)
class ErrorProfile:
    """Expected absolute error as a non-decreasing function of the DI (:func:`error_profile`).

    Parameters
    ----------
    di_knots : numpy.ndarray
        DI values (dimensionless) of the fitted steps, increasing.
    error_knots : numpy.ndarray
        Fitted absolute error at ``di_knots`` (units of the target, e.g. mg/kg),
        non-decreasing.
    n_used : int
        Pairs the fit used.
    n_left_out : int
        Pairs left out because the DI or the error was NaN.
    n_above_threshold : int
        Pairs left out because their DI exceeded the given threshold.
    """

    di_knots: np.ndarray
    error_knots: np.ndarray
    n_used: int
    n_left_out: int
    n_above_threshold: int

    def expected_error(self, di: Any) -> np.ndarray:
        """Expected absolute error at DI values (a map of it from a DI map).

        Linear between the knots, constant beyond the first and last (as scikit-learn's
        ``IsotonicRegression(out_of_bounds="clip")``).

        Parameters
        ----------
        di : array-like
            DI values, any shape, dimensionless.

        Returns
        -------
        numpy.ndarray of float32, same shape as ``di``
            Expected absolute error in the units of the target; NaN where the DI is NaN.
        """
        arr = np.asarray(di, dtype=np.float64)
        out = np.interp(arr, self.di_knots, self.error_knots)
        out[np.isnan(arr)] = np.nan
        return np.asarray(out, dtype=np.float32)


def error_profile(di: Any, abs_error: Any, *, threshold: float | None = None) -> ErrorProfile:
    """Fit the absolute cross-validation error as a non-decreasing function of the DI.

    An isotonic regression (scikit-learn, ``increasing=True``) of each sample's absolute
    CV error on its training DI: the monotone DI-error relation of CAST's
    ``errorProfiles()``, which fits a monotone spline (``scam``) to a moving-window metric.

    Parameters
    ----------
    di : array-like of shape (n,)
        Training DI of each sample (:attr:`AreaOfApplicability.train_di`), dimensionless.
    abs_error : array-like of shape (n,)
        Absolute error of each sample's cross-validated prediction, ``|pred - obs|``, in
        the target's units.
    threshold : float, optional
        Use only samples with ``DI <= threshold`` (the AOA threshold), as CAST does. None:
        all samples.

    Returns
    -------
    ErrorProfile
        The fitted steps, with :meth:`ErrorProfile.expected_error`.

    Raises
    ------
    ValueError
        Shapes differ or an error is negative.
    SampleError
        Fewer than two usable pairs.

    Examples
    --------
    >>> prof = error_profile([0.1, 0.2, 0.3, 0.4], [1.0, 3.0, 2.0, 5.0])
    >>> prof.expected_error([0.0, 0.25, 1.0]).tolist()
    [1.0, 2.5, 5.0]
    """
    d = np.asarray(di, dtype=np.float64).ravel()
    e = np.asarray(abs_error, dtype=np.float64).ravel()
    if d.shape != e.shape:
        raise ValueError(f"di has {d.size} values and abs_error {e.size}: give one per sample")
    if np.any(e < 0):
        raise ValueError("abs_error holds negative values: give absolute errors |pred - obs|")
    ok = ~(np.isnan(d) | np.isnan(e))
    n_left_out = int((~ok).sum())
    above = ok & (d > threshold) if threshold is not None else np.zeros_like(ok)
    ok &= ~above
    if ok.sum() < 2:
        raise SampleError(
            f"only {int(ok.sum())} samples have both a DI and a CV error"
            + (" inside the threshold" if threshold is not None else "")
            + ": the error profile needs at least two"
        )
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(d[ok], e[ok])
    return ErrorProfile(
        di_knots=np.asarray(iso.X_thresholds_, dtype=np.float64),
        error_knots=np.asarray(iso.y_thresholds_, dtype=np.float64),
        n_used=int(ok.sum()),
        n_left_out=n_left_out,
        n_above_threshold=int(above.sum()),
    )


@dataclass(frozen=True, eq=False)
class CovariateShift:
    """How many rows lie outside a source model's AOA (:func:`covariate_shift`).

    Parameters
    ----------
    di : numpy.ndarray of float32
        DI of each row against the source training data, dimensionless.
    n_rows : int
        Rows given.
    n_nodata : int
        Rows with a NaN predictor (no DI).
    n_outside : int
        Rows with ``DI > threshold``.
    share_outside : float
        ``n_outside / (n_rows - n_nodata)``, 0-1; NaN when no row has a DI.
    """

    di: np.ndarray
    n_rows: int
    n_nodata: int
    n_outside: int
    share_outside: float


def covariate_shift(source: AreaOfApplicability, X: Any) -> CovariateShift:
    """The share of rows outside the AOA of a source model (transfer jobs).

    Parameters
    ----------
    source : AreaOfApplicability
        Fitted on the source-year training predictors.
    X : array-like of shape (n, n_features_in)
        Rows to test, e.g. the target-year samples' predictors, in the source model's
        column order.

    Returns
    -------
    CovariateShift
        Their DI and the share outside the source AOA. For pixels over many windows, sum
        the counts of :meth:`AreaOfApplicability.inside` codes instead.

    Examples
    --------
    >>> from geohm.aoa import fit_aoa
    >>> src = fit_aoa([[0.0], [1.0], [3.0]])  # d_bar 2, threshold 1: outside beyond 2 units
    >>> covariate_shift(src, [[0.5], [2.0], [6.0], [np.nan]]).share_outside
    0.3333333333333333
    """
    d = source.di(X)
    codes = source.inside(d)
    n_nodata = int((codes == AOA_NODATA).sum())
    n_outside = int((codes == AOA_OUTSIDE).sum())
    n_valid = d.size - n_nodata
    return CovariateShift(
        di=d,
        n_rows=int(d.size),
        n_nodata=n_nodata,
        n_outside=n_outside,
        share_outside=n_outside / n_valid if n_valid else math.nan,
    )

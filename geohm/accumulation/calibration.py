"""Calibration of the net input with two surveys (issue 16, item 3).

Between a source-year survey and the target year, dt years later, the linear budget
dC/dt = a - k C predicts the target-year concentration at a sample from the source-year one:

    C1_hat = C0 e^(-k dt) + a g,   g = (1 - e^(-k dt)) / k   (k -> 0: g = dt)

(:func:`~geohm.accumulation.projection.closed_form`). Where the observed C1 differs, geohm
reads the difference as a bias of the net input, a' = a + delta(X), with delta a regression
on the covariates X:

- :func:`implied_input_bias` inverts the closed form at each sample:
  delta = (C1 - C0 e^(-k dt)) / g - a (mg/kg/yr).
- :func:`calibrate` fits delta(X) and keeps it only if spatial block cross-validation
  (:func:`geohm.spatialcv.block_folds`; random K-fold, said so, when the samples fill too
  few blocks) shows that C1 predicted with a + delta is closer to the held-out observations
  than C1 predicted with a alone (RMSE, mg/kg).

geohm's choices:

- delta is a random forest (fixed ``random_state``, 200 trees, at least 3 samples a leaf).
  Its predictions stay within the range of the implied biases at the samples, so a map
  pixel with covariates outside the samples' range never gets an extrapolated flux, which
  the projection would compound over decades (a ridge would extrapolate linearly); it
  needs no scaling of X and takes non-linear effects. 15-60 samples make it coarse, and
  the cross-validation is what decides whether it helps.
- The forest is fitted with weights g^2: C1 - C1_hat' = (delta - delta_hat) g, so its
  weighted squared error in delta is the squared error in C1 that the cross-validation
  scores.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.ensemble import RandomForestRegressor
from sklearn.model_selection import KFold

from geohm.accumulation.projection import closed_form
from geohm.accumulation.soil import FloatArray
from geohm.errors import ConfigError, SampleError
from geohm.spatialcv import block_folds

__all__ = ["MIN_SAMPLES", "Calibration", "calibrate", "implied_input_bias"]

log = logging.getLogger(__name__)

#: Fewest usable samples (finite C0, C1, a, k, X, xy) a calibration is attempted with.
MIN_SAMPLES = 6

#: Parameters of the forest behind delta(X) (``random_state`` is the seed).
FOREST_PARAMS: dict[str, Any] = {"n_estimators": 200, "min_samples_leaf": 3, "n_jobs": 1}


def _gain(k: FloatArray, dt: float) -> FloatArray:
    """dC1/da = (1 - e^(-k dt)) / k in yr (dt at k = 0), as ``closed_form`` computes it."""
    x = k * dt
    phi = np.ones(x.shape)
    nz = x != 0
    phi[nz] = -np.expm1(-x[nz]) / x[nz]
    return np.asarray(dt * phi, dtype=np.float64)


def _check_dt(dt: float) -> float:
    if isinstance(dt, bool) or not isinstance(dt, numbers.Real) or not np.isfinite(dt) or dt <= 0:
        raise ConfigError(
            f"accumulation calibration: the years between the surveys must be > 0, got {dt!r}; "
            "the source year must be earlier than the target year"
        )
    return float(dt)


def implied_input_bias(
    c0: ArrayLike, c1: ArrayLike, a: ArrayLike, k: ArrayLike, dt: float
) -> FloatArray:
    """Input bias delta that makes the closed form take C0 to C1 in dt years (mg/kg/yr).

    Parameters
    ----------
    c0 : array_like
        Source-year concentration C0 (mg/kg).
    c1 : array_like
        Observed target-year concentration C1 (mg/kg).
    a : array_like
        Net input rate of the process model (mg/kg/yr).
    k : array_like
        Output rate constant (1/yr, >= 0); 0 gives delta = (C1 - C0) / dt - a.
    dt : float
        Years from the source to the target survey (> 0).

    Returns
    -------
    numpy.ndarray
        delta (mg/kg/yr), float64, the broadcast shape:
        ``closed_form(c0, a + delta, k, dt)`` equals ``c1`` to round-off.

    Raises
    ------
    ConfigError
        If dt is not > 0 or a finite k is negative.

    Examples
    --------
    >>> float(implied_input_bias(50.0, 60.0, 0.5, 0.0, 10.0))
    0.5
    >>> round(float(implied_input_bias(100.0, 100.0, 0.0, np.log(2) / 10, 10.0)), 6)
    6.931472
    """
    t = _check_dt(dt)
    c0f, c1f, af, kf = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (c0, c1, a, k))
    )
    with np.errstate(invalid="ignore"):
        if np.any(np.isfinite(kf) & (kf < 0)):
            raise ConfigError("accumulation calibration: k must be >= 0 1/yr; check the outputs")
    return np.asarray((c1f - c0f * np.exp(-kf * t)) / _gain(kf, t) - af, dtype=np.float64)


@dataclass(frozen=True)
class Calibration:
    """Outcome of :func:`calibrate`: the correction of the net input and its evidence.

    Parameters
    ----------
    kept : bool
        Whether the correction beat the uncalibrated model in cross-validation.
    reason : str
        Why it was kept or rejected (one sentence, with the CV RMSEs).
    cv : dict
        ``rmse_uncalibrated`` and ``rmse_calibrated`` (mg/kg, pooled over the held-out
        samples), ``folds`` (``"spatial_block"`` or ``"random"``), ``n_folds``,
        ``block_size`` (m, None for random folds), ``n`` (samples used), ``n_left_out``
        (samples with a non-finite value), ``mean_implied_delta`` (mg/kg/yr) and ``note``.
    model : RandomForestRegressor or None
        delta(X) fitted on all samples when kept, else None.
    n_features : int
        Number of covariates the model takes.
    """

    kept: bool
    reason: str
    cv: dict[str, Any]
    model: RandomForestRegressor | None
    n_features: int

    def delta(self, X: ArrayLike) -> FloatArray:
        """Input bias delta(X) to add to a (mg/kg/yr); zeros when the correction was rejected.

        Parameters
        ----------
        X : array_like of shape (n, n_features)
            Covariates, in the columns and units of those given to :func:`calibrate`.

        Returns
        -------
        numpy.ndarray of shape (n,)
            delta (mg/kg/yr), float64.

        Raises
        ------
        SampleError
            If X does not have ``n_features`` columns.
        """
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise SampleError(
                f"accumulation calibration: covariates of shape {x.shape} given, the "
                f"correction was fitted on {self.n_features}; pass the same covariate columns"
            )
        if self.model is None:
            return np.zeros(x.shape[0])
        return np.asarray(self.model.predict(x), dtype=np.float64)

    def to_report(self) -> dict[str, Any]:
        """JSON-able summary: kept, reason, the CV figures and the model's parameters.

        Returns
        -------
        dict
            ``kept``, ``reason``, ``cv`` and ``model`` (None when rejected).
        """
        model = None
        if self.model is not None:
            model = {"kind": "random_forest", **FOREST_PARAMS, "n_features": self.n_features}
        return {"kept": self.kept, "reason": self.reason, "cv": dict(self.cv), "model": model}


def _forest(seed: int) -> RandomForestRegressor:
    return RandomForestRegressor(**FOREST_PARAMS, random_state=seed)


def calibrate(
    c0: ArrayLike,
    c1: ArrayLike,
    a: ArrayLike,
    k: ArrayLike,
    dt: float,
    X: ArrayLike,
    xy: ArrayLike,
    *,
    folds: int = 5,
    block_size: float | None = None,
    seed: int = 0,
) -> Calibration:
    """Fit a correction delta(X) of the net input and keep it only if spatial CV says so.

    Parameters
    ----------
    c0 : array_like of shape (n,)
        Source-year concentration at the target-year samples (mg/kg; the source map there).
    c1 : array_like of shape (n,)
        Observed target-year concentration (mg/kg).
    a : array_like of shape (n,) or scalar
        Net input rate of the process model at the samples (mg/kg/yr).
    k : array_like of shape (n,) or scalar
        Output rate constant at the samples (1/yr, >= 0).
    dt : float
        Years from the source to the target survey (> 0).
    X : array_like of shape (n, p)
        Covariates at the samples.
    xy : array_like of shape (n, 2)
        Sample coordinates (projected metres).
    folds : int, default=5
        Number of cross-validation folds (>= 2; at most the number of samples).
    block_size : float, optional
        Side of the spatial blocks (m); default: the variogram range of the uncalibrated
        residual C1 - C1_hat (:func:`geohm.spatialcv.block_folds`).
    seed : int, default=0
        Seed of the folds and of the forest.

    Returns
    -------
    Calibration
        The decision, the CV figures and delta(X).

    Raises
    ------
    SampleError
        Fewer than :data:`MIN_SAMPLES` samples with finite values, or mismatched shapes.
    ConfigError
        If dt is not > 0, k is negative or ``folds`` is not an integer >= 2.
    """
    t = _check_dt(dt)
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise ConfigError(f"accumulation calibration: folds must be an integer >= 2, got {folds!r}")
    c1f = np.asarray(c1, dtype=np.float64).ravel()
    n = c1f.size
    x = np.asarray(X, dtype=np.float64)
    pts = np.asarray(xy, dtype=np.float64)
    try:
        c0f, af, kf = (np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) for v in (c0, a, k))
    except ValueError as err:
        raise SampleError(
            f"accumulation calibration: C0, a, k do not match the {n} samples"
        ) from err
    if x.ndim != 2 or x.shape[0] != n or pts.shape != (n, 2):
        raise SampleError(
            f"accumulation calibration: {n} samples but covariates of shape {x.shape} and "
            f"coordinates of shape {pts.shape}; give one row per sample"
        )
    ok = np.isfinite(np.column_stack([c0f, c1f, af, kf, x, pts])).all(axis=1)
    used = int(ok.sum())
    if used < MIN_SAMPLES:
        raise SampleError(
            f"accumulation calibration needs at least {MIN_SAMPLES} target-year samples with "
            f"finite C0, C1, a, k and covariates, got {used} of {n}; add samples inside the "
            "source-year map or turn the calibration off"
        )
    c0f, c1f, af, kf, x, pts = c0f[ok], c1f[ok], af[ok], kf[ok], x[ok], pts[ok]
    target = implied_input_bias(c0f, c1f, af, kf, t)
    weight = _gain(kf, t) ** 2
    c1_hat = closed_form(c0f, af, kf, t)

    n_folds = min(int(folds), used)
    fold, block = block_folds(pts, c1f - c1_hat, n_folds, block_size=block_size, seed=seed)
    if fold is None:
        kind, size = "random", None
        note = (
            f"the samples fill fewer than {n_folds} spatial blocks even at {block:g} m: random "
            f"{n_folds}-fold CV, which flatters the correction where samples cluster"
        )
        log.warning("accumulation calibration: %s", note)
        fold = np.empty(used, dtype=np.int64)
        for i, (_, test) in enumerate(KFold(n_folds, shuffle=True, random_state=seed).split(pts)):
            fold[test] = i
    else:
        kind, size, note = "spatial_block", block, f"spatial block {n_folds}-fold CV"
    c1_cal = np.empty(used)
    for f in range(n_folds):
        test = fold == f
        model = _forest(seed).fit(x[~test], target[~test], sample_weight=weight[~test])
        c1_cal[test] = closed_form(c0f[test], af[test] + model.predict(x[test]), kf[test], t)
    rmse_u = float(np.sqrt(np.mean((c1_hat - c1f) ** 2)))
    rmse_c = float(np.sqrt(np.mean((c1_cal - c1f) ** 2)))
    kept = rmse_c < rmse_u
    verdict = "kept: it lowers" if kept else "rejected: it does not lower"
    reason = (
        f"input correction {verdict} the {kind.replace('_', ' ')} CV RMSE of the target-year "
        f"concentration ({rmse_c:.4g} mg/kg calibrated vs {rmse_u:.4g} uncalibrated, "
        f"{used} samples)"
    )
    cv = {
        "rmse_uncalibrated": rmse_u,
        "rmse_calibrated": rmse_c,
        "folds": kind,
        "n_folds": n_folds,
        "block_size": size,
        "n": used,
        "n_left_out": n - used,
        "mean_implied_delta": float(np.mean(target)),
        "note": note,
    }
    final = _forest(seed).fit(x, target, sample_weight=weight) if kept else None
    return Calibration(kept=kept, reason=reason, cv=cv, model=final, n_features=x.shape[1])

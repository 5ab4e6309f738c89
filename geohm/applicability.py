"""What drives a fitted model and where it can be trusted, from its cross-validation folds.

After a target's model is fitted and cross-validated, :func:`assess` reuses the CV's own
fold models (no refit) to measure each factor's permutation importance on its held-out
fold (:mod:`geohm.importance`), draws the partial dependence of the top factors, and fits
the area of applicability (:mod:`geohm.aoa`) on the training factors the model really
uses, weighted by those importances and with the same folds; the absolute CV errors
against the training dissimilarity index give the error profile. Everything it leaves
out is said in its report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from geohm.aoa import AreaOfApplicability, covariate_shift, error_profile, fit_aoa
from geohm.errors import NoDataError, SampleError
from geohm.importance import aoa_weights, partial_dependence_top, permutation_importance_cv
from geohm.models.parts import single_threaded

__all__ = ["Assessment", "assess", "source_shift"]


@dataclass
class Assessment:
    """Importance, partial dependence and area of applicability of one fitted target.

    Attributes
    ----------
    report : dict
        ``importance``, ``partial_dependence`` and ``applicability`` blocks for
        report.json (absent blocks are named in ``skipped`` with their reason).
    aoa : AreaOfApplicability or None
        Fitted on ``columns`` of the training samples; None when it could not be.
    columns : list of str
        The factors the AOA measures distances on (the model's factors after screening).
    """

    report: dict[str, Any] = field(default_factory=dict)
    aoa: AreaOfApplicability | None = None
    columns: list[str] = field(default_factory=list)
    #: The AOA's factor weights (permutation importance, negatives 0), per ``columns``.
    weights: np.ndarray | None = None
    #: Transfer jobs: the AOA of the source year's samples, on ``source_columns``.
    source_aoa: AreaOfApplicability | None = None
    source_columns: list[str] = field(default_factory=list)


def assess(
    estimator: Any,
    X: pd.DataFrame,
    y: np.ndarray,
    fold: np.ndarray | None,
    *,
    oof: np.ndarray | None = None,
    fold_models: Mapping[int, Any] | None = None,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    folds_kind: str = "spatial blocks",
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> Assessment:
    """Permutation importance, partial dependence and the area of applicability.

    Parameters
    ----------
    estimator : estimator
        The target's model fitted on every training sample (its partial dependence).
    X : pandas.DataFrame
        Training factors, the model's input columns.
    y : numpy.ndarray
        Training values (mg/kg).
    fold : numpy.ndarray or None
        CV fold id of each training sample (the spatial blocks); None: no folds could
        be made, and nothing is assessed (the reason is in the report).
    oof : numpy.ndarray, optional
        Out-of-fold predictions on ``fold`` (mg/kg): their absolute errors against the
        training DI give the error profile.
    fold_models : mapping of int to estimator, optional
        Fold id -> the CV's model fitted without that fold (reused, not refitted).
    columns : sequence of str, optional
        Factors the model really uses (after screening); default: all of ``X``.
    categorical : sequence of str
        Class-code factors (one-hot in the AOA, no partial dependence).
    folds_kind : str
        What the folds are, for the report (``"spatial blocks"`` or ``"random"``).
    seed : int
        Seeds the permutations.
    ids : sequence of str, optional
        The training samples' ids (default: their positions), to name those left out.

    Returns
    -------
    Assessment
        The report blocks and the fitted AOA.
    """
    out = Assessment(columns=list(columns) if columns is not None else list(X.columns))
    if fold is None:
        out.report["skipped"] = [
            "permutation importance and area of applicability: no cross-validation folds "
            "(too few samples or locations)"
        ]
        return out
    # one thread per forest: its multi-threaded predict sums trees in thread order, and
    # the weights (hence every DI) would vary in the last bits from run to run
    with single_threaded([estimator, *(fold_models or {}).values()]):
        try:
            imp = permutation_importance_cv(
                estimator, X, y, fold, n_repeats=5, random_state=seed, fitted=fold_models
            )
        except SampleError as exc:
            out.report["skipped"] = [f"permutation importance and area of applicability: {exc}"]
            return out
        out.report["importance"] = {**imp.to_report(), "folds_kind": folds_kind}
        out.report["partial_dependence"] = partial_dependence_top(
            estimator, X, imp, categorical=[c for c in categorical if c in X.columns]
        )
    weights_all = dict(zip(imp.factors, aoa_weights(imp), strict=True))
    weights = np.array([weights_all[c] for c in out.columns])
    cat = [i for i, c in enumerate(out.columns) if c in categorical]
    Xa = X[out.columns].to_numpy(dtype="float64")
    note = None
    try:
        aoa = fit_aoa(Xa, weights=weights, folds=fold, categorical=cat)
    except NoDataError:  # no factor raised the error when shuffled: weigh them equally
        note = "no factor's importance was above 0: the factors are weighted equally"
        aoa = fit_aoa(Xa, folds=fold, categorical=cat)
    except SampleError as exc:
        out.report["skipped"] = [f"area of applicability: {exc}"]
        return out
    out.aoa = aoa
    out.weights = aoa.feature_weights
    out.report["applicability"] = _aoa_report(aoa, out.columns, y, oof, folds_kind, note, ids)
    return out


def _aoa_report(
    aoa: AreaOfApplicability,
    columns: list[str],
    y: np.ndarray,
    oof: np.ndarray | None,
    folds_kind: str,
    note: str | None,
    ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """report.json's ``applicability`` block of one target."""
    di = aoa.train_di
    finite = np.isfinite(di)
    rep: dict[str, Any] = {
        "method": "Meyer & Pebesma (2021), CAST trainDI/aoa definitions",
        "factors": columns,
        "weights": {c: float(w) for c, w in zip(columns, aoa.feature_weights, strict=True)},
        "folds": folds_kind,
        "mean_distance": float(aoa.mean_distance),
        "threshold": float(aoa.threshold),
        "train_di_max": float(np.nanmax(di)) if finite.any() else None,
        "train_inside_share": float(np.mean(di[finite] <= aoa.threshold)) if finite.any() else None,
        "samples_left_out": [
            {
                "id": str(ids[int(r)]) if ids is not None else str(int(r)),
                "reason": "a factor is missing (NaN) at this sample: no training DI",
            }
            for r in aoa.dropped_rows
        ],
        "constant_factors": [columns[i] for i in aoa.constant_features],
    }
    if note:
        rep["notes"] = [note]
    if oof is not None:
        err = np.abs(np.asarray(oof, dtype=float) - np.asarray(y, dtype=float))
        try:
            prof = error_profile(di, err, threshold=aoa.threshold)
        except SampleError as exc:
            rep["error_profile"] = {"skipped": str(exc)}
        else:
            rep["error_profile"] = {
                "di": [float(v) for v in prof.di_knots],
                "abs_error_mg_kg": [float(v) for v in prof.error_knots],
                "n_used": int(prof.n_used),
            }
    return rep


def source_shift(
    found: Assessment, X_source: pd.DataFrame, X_target: pd.DataFrame, categorical: Sequence[str]
) -> dict[str, Any]:
    """How far the target year's samples lie from the source year's (covariate shift).

    The area of applicability of the *source* year's samples (the same factors and
    weights as the target model's, no folds: the nearest other source sample), and the
    share of the target-year training samples outside it: a transferred model meets
    those conditions for the first time. The source AOA is kept on ``found``
    (``source_aoa``) for the map's pixels.

    Parameters
    ----------
    found : Assessment
        The target model's assessment (its factors and weights).
    X_source, X_target : pandas.DataFrame
        The source and target years' training factors.
    categorical : sequence of str
        Class-code factors.

    Returns
    -------
    dict
        ``threshold``, ``n_target``, ``n_outside``, ``share_outside`` (None when no
        target sample has a DI), or ``skipped`` with the reason.
    """
    cols = [c for c in found.columns if c in X_source.columns and c in X_target.columns]
    if not cols or found.weights is None:
        return {"skipped": "no factor shared by both years"}
    weight = dict(zip(found.columns, found.weights, strict=True))
    cat = [i for i, c in enumerate(cols) if c in categorical]
    try:
        src = fit_aoa(
            X_source[cols].to_numpy(dtype="float64"),
            weights=np.array([weight[c] for c in cols]),
            categorical=cat,
        )
    except (NoDataError, SampleError) as exc:
        return {"skipped": str(exc)}
    shift = covariate_shift(src, X_target[cols].to_numpy(dtype="float64"))
    found.source_aoa, found.source_columns = src, cols
    return {
        "threshold": float(src.threshold),
        "n_source": int(src.n_train),
        "n_target": int(shift.n_rows),
        "n_outside": int(shift.n_outside),
        "share_outside": None if shift.n_rows == shift.n_nodata else float(shift.share_outside),
    }

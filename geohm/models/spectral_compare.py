"""Seed 004's evaluation of spectral transfer: soil-spectroscopy scores, three models compared.

:func:`spectral_scores` gives RMSE, R2, RPD and RPIQ of predictions;
:func:`compare_transfer` fits seed 004's three models (source, target only, transferred;
:class:`~geohm.models.spectral.SpectralResNetRegressor`) on one split and scores them.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.linear_model import LinearRegression

if TYPE_CHECKING:
    from geohm.models.spectral import SpectralResNetRegressor

__all__ = ["compare_transfer", "spectral_scores"]

def spectral_scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Soil-spectroscopy accuracy scores of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted property, same units.

    Returns
    -------
    dict
        ``rmse`` (property units), ``r2`` (1 - SSE/SST), ``rpd`` (sample standard
        deviation of ``y_true`` / RMSE) and ``rpiq`` (interquartile range of
        ``y_true`` / RMSE, Bellon-Maurel et al. 2010), ``n``.

    Examples
    --------
    >>> s = spectral_scores([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 6.0])
    >>> round(s["rmse"], 4), s["r2"], round(s["rpd"], 3), round(s["rpiq"], 3)
    (0.4472, 0.9, 3.536, 4.472)
    """
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"y_true and y_pred need the same non-zero length: {t.size}, {p.size}")
    rmse = float(np.sqrt(np.mean((p - t) ** 2)))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    q1, q3 = np.percentile(t, [25, 75])
    sd = float(t.std(ddof=1)) if t.size > 1 else float("nan")
    inf = float("inf")
    return {
        "rmse": rmse,
        "r2": float(1.0 - np.sum((p - t) ** 2) / ss_tot) if ss_tot > 0 else float("nan"),
        "rpd": sd / rmse if rmse > 0 else inf,
        "rpiq": float(q3 - q1) / rmse if rmse > 0 else inf,
        "n": int(t.size),
    }


@overload
def compare_transfer(
    X_src: Any,
    y_src: Any,
    X_tgt: Any,
    y_tgt: Any,
    X_test: Any,
    y_test: Any,
    *,
    estimator: SpectralResNetRegressor | None = ...,
    same_property: bool = ...,
    return_models: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def compare_transfer(
    X_src: Any,
    y_src: Any,
    X_tgt: Any,
    y_tgt: Any,
    X_test: Any,
    y_test: Any,
    *,
    estimator: SpectralResNetRegressor | None = ...,
    same_property: bool = ...,
    return_models: Literal[True],
) -> tuple[pd.DataFrame, dict[str, Any]]: ...


def compare_transfer(
    X_src: Any,
    y_src: Any,
    X_tgt: Any,
    y_tgt: Any,
    X_test: Any,
    y_test: Any,
    *,
    estimator: SpectralResNetRegressor | None = None,
    same_property: bool = False,
    return_models: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
    """Seed 004's three models on one split: source, target only, transferred.

    - ``source``: the net trained on the source set (:meth:`~SpectralResNetRegressor.
      fit_source`) applied to the target test spectra. When the source and target
      properties differ (``same_property=False``, e.g. pH and Pb, or clay % and
      organic carbon %), its output is in the wrong units, so it is **linearly
      recalibrated** on the target training set (``y ~ a + b * source_prediction``,
      least squares, clipped at 0 when the estimator is ``non_negative``): this row
      then measures how much target information the frozen source *output* carries.
      With ``same_property=True`` the source net is applied as is.
    - ``target only``: a fresh net trained on the target training set alone.
    - ``transfer``: the source net fine-tuned on the target training set with the
      estimator's ``freeze`` blocks fixed.

    Parameters
    ----------
    X_src, y_src : array-like
        Source spectra ``(n_src, n_wavelengths)`` and property ``(n_src,)``.
    X_tgt, y_tgt : array-like
        Target training spectra and property (the few samples).
    X_test, y_test : array-like
        Target test spectra and property (held out from everything).
    estimator : SpectralResNetRegressor, optional
        Template (cloned for each model, with its ``freeze``, training settings and
        ``random_state``); default ``SpectralResNetRegressor(random_state=0)``.
    same_property : bool, default False
        Source and target are the same property in the same units.
    return_models : bool, default False
        Also return the fitted models ``{"source", "target only", "transfer"}``
        (the ``source`` entry is the source-fitted estimator).

    Returns
    -------
    pandas.DataFrame
        Indexed by model (``source``, ``target only``, ``transfer``); columns
        ``rmse`` (target units), ``r2``, ``rpd``, ``rpiq``, ``n_train`` (target
        training spectra used, 0 for an uncalibrated source net) and ``fit_s``
        (seconds). With ``return_models``, a ``(table, models)`` tuple.
    """
    # imported here: geohm.models.spectral imports this module for its names
    from geohm.models.spectral import SpectralResNetRegressor

    template = estimator if estimator is not None else SpectralResNetRegressor(random_state=0)
    y_tgt = np.asarray(y_tgt, dtype=np.float64)
    rows: dict[str, dict[str, float]] = {}

    t0 = time.perf_counter()
    source = clone(template).fit_source(X_src, y_src)
    fit_src = time.perf_counter() - t0
    pred = source.predict(X_test)
    n_used = 0
    if not same_property:
        cal = LinearRegression().fit(source.predict(X_tgt)[:, None], y_tgt)
        pred = cal.predict(pred[:, None])
        if template.non_negative:
            pred = np.maximum(pred, 0.0)
        n_used = y_tgt.size
    rows["source"] = {**spectral_scores(y_test, pred), "n_train": n_used, "fit_s": fit_src}

    t0 = time.perf_counter()
    target_only = clone(template).fit(X_tgt, y_tgt)
    rows["target only"] = {
        **spectral_scores(y_test, target_only.predict(X_test)),
        "n_train": y_tgt.size,
        "fit_s": time.perf_counter() - t0,
    }

    transfer = copy.deepcopy(source)
    t0 = time.perf_counter()
    transfer.fit(X_tgt, y_tgt)
    rows["transfer"] = {
        **spectral_scores(y_test, transfer.predict(X_test)),
        "n_train": y_tgt.size,
        "fit_s": time.perf_counter() - t0,
    }
    table = pd.DataFrame.from_dict(rows, orient="index")[
        ["rmse", "r2", "rpd", "rpiq", "n_train", "fit_s"]
    ]
    table.index.name = "model"
    if return_models:
        return table, {"source": source, "target only": target_only, "transfer": transfer}
    return table

"""Predictor screening: Pearson correlation with the target, then a VIF collinearity test.

This is the factor selection of the Daxigou papers (Yang et al. 2023, section 3.1.3 and
Tables 2-3): keep the factors whose Pearson correlation with the metal concentration is
significant, then drop the most collinear factor until every variance inflation factor
(VIF) is below 10. Factors named in ``force`` (the paper forces aspect and elevation in)
are always kept.

Everything here sees plain arrays or pandas tables; it never sees rasters, files or
config objects.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from geohm.errors import ConfigError

__all__ = ["CorrelationVIFSelector", "vif"]

# 1 - R^2 at or below this is treated as perfect collinearity (VIF = inf). Exact linear
# combinations leave residuals at rounding level (relative ~1e-30); real data with a
# VIF above 1e10 is collinear for every practical purpose as well.
_PERFECT = 1e-10


def vif(X: Any) -> np.ndarray:
    """Variance inflation factor of every column, from regressions with an intercept.

    ``VIF_j = 1 / (1 - R_j**2)``, where ``R_j**2`` is the coefficient of determination of
    the least-squares regression of column ``j`` on all the other columns **plus a
    constant**. This is the textbook definition (fmsb's ``VIF``, statsmodels'
    ``stats.multicollinearity.vif``). statsmodels'
    ``outliers_influence.variance_inflation_factor`` adds no constant: on data with a
    large mean it reports a huge VIF for independent factors, unless ``add_constant``
    is called first.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The factors, finite. A pandas DataFrame is accepted.

    Returns
    -------
    numpy.ndarray of shape (n_features,)
        VIF of each column, >= 1. ``inf`` for a column that is an exact linear
        combination of the others (or constant, i.e. collinear with the intercept), and
        whenever there are too few samples to tell (``n_samples <= n_features``). A
        single column has VIF 1.

    Raises
    ------
    ValueError
        ``X`` is not 2-D or holds NaN or infinity.

    Examples
    --------
    >>> import numpy as np
    >>> x1 = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    >>> x2 = np.array([2.0, 1.0, 4.0, 3.0, 5.0])
    >>> r = np.corrcoef(x1, x2)[0, 1]
    >>> np.allclose(vif(np.column_stack([x1, x2])), 1 / (1 - r**2))
    True
    >>> vif(np.column_stack([x1, x2, x1 + x2])).tolist()
    [inf, inf, inf]
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"vif needs a 2-D (n_samples, n_features) array, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError("vif needs finite values; impute or drop NaN and infinity first")
    n_features = X.shape[1]
    out = np.ones(n_features)
    if n_features < 2 or X.shape[0] == 0:
        # A lone factor regressed on the intercept alone: R^2 = 0, VIF = 1.
        if n_features == 1 and np.ptp(X) == 0:
            out[:] = np.inf
        return out
    # Centring every column and regressing without a constant is exactly the regression
    # with an intercept, and better conditioned.
    Xc = X - X.mean(axis=0)
    for j in range(n_features):
        target = Xc[:, j]
        ss_tot = float(target @ target)
        if ss_tot == 0.0:
            out[j] = np.inf  # constant: collinear with the intercept
            continue
        others = np.delete(Xc, j, axis=1)
        coef, *_ = np.linalg.lstsq(others, target, rcond=None)
        resid = target - others @ coef
        unexplained = float(resid @ resid) / ss_tot  # 1 - R^2
        out[j] = np.inf if unexplained <= _PERFECT else 1.0 / unexplained
    return out


class CorrelationVIFSelector(SelectorMixin, BaseEstimator):
    """Keep factors correlated with the target, then drop collinear ones by VIF.

    ``fit`` works in four steps:

    1. Pearson ``r`` and its two-sided ``p`` (:func:`scipy.stats.pearsonr`) between every
       factor and ``y``. A constant factor (or a constant ``y``) has ``r = nan`` and
       ``p = 1`` and is never kept unless forced.
    2. Keep the factors with ``p < max_p``, plus the forced ones.
    3. While a kept, unforced factor has ``VIF >= max_vif`` (see :func:`vif`, computed
       with an intercept among the kept factors), drop the one with the highest VIF.
       Ties (typically several ``inf`` from an exact linear combination) drop the factor
       with the weaker correlation (larger ``p``), then the later column. Forced factors
       are never dropped, but they take part in the others' regressions and their VIF is
       reported.
    4. If fewer than ``min_features`` factors survive, add the non-constant factors with
       the lowest ``p`` (those not dropped for collinearity first, then the others) until
       there are ``min_features``, so a model always has inputs. ``fallback_used_``
       records that this happened and ``scores_`` says which factors it added.

    Correlation and VIF are both invariant to shifting and rescaling a factor, so the
    selection is the same before or after min-max scaling.

    Parameters
    ----------
    max_p : float, default=0.05
        Significance level of the correlation screen, in (0, 1].
    max_vif : float, default=10.0
        Factors are dropped until every VIF is below this (> 1; ``inf`` turns the
        collinearity test off).
    force : sequence of str or int, default=()
        Factors always kept, by column name (needs a DataFrame) or by column index.
    min_features : int, default=1
        Keep at least this many factors (capped at the number of non-constant or forced
        factors). 0 allows an empty selection.

    Attributes
    ----------
    n_features_in_ : int
        Number of factors seen in ``fit``.
    feature_names_in_ : numpy.ndarray of str
        Factor names, when ``fit`` got a DataFrame with string column names.
    support_ : numpy.ndarray of bool, shape (n_features_in_,)
        Mask of the kept factors.
    selected_ : list of str
        Names of the kept factors, in input order (``x0``, ``x1`` ... for arrays).
    correlations_ : numpy.ndarray of shape (n_features_in_,)
        Pearson ``r`` of each factor with the target (nan for a constant factor).
    pvalues_ : numpy.ndarray of shape (n_features_in_,)
        Two-sided ``p`` of each ``r`` (1 for a constant factor).
    scores_ : list of dict
        One JSON-serialisable record per factor, in input order, like the paper's
        Tables 2-3: ``feature`` (str), ``r`` and ``p`` (float; ``r`` is nan for a
        constant factor), ``vif`` (float: the final VIF among the kept factors for a
        kept one, the VIF when it was dropped for a collinear one, or None when it was
        dropped by the correlation screen; may be inf), ``kept`` (bool) and ``reason``
        (str), e.g. ``"p < 0.05"``, ``"forced"``, ``"dropped: p = 0.31 >= 0.05"``,
        ``"dropped: VIF 23.4 >= 10"``, ``"dropped: constant"`` or
        ``"kept: min_features=1 fallback, p = 0.31"``. :func:`json.dumps` accepts it;
        nan and inf become ``NaN``/``Infinity`` there (geohm's report writer writes
        null).
    fallback_used_ : bool
        Whether step 4 added factors.

    Raises
    ------
    ConfigError
        From ``fit``: a parameter out of range, or a forced factor that does not exist.

    Examples
    --------
    >>> import numpy as np
    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["blue", "ndvi", "aspect"])
    >>> y = 3 * X["blue"] + rng.normal(scale=0.5, size=40)
    >>> sel = CorrelationVIFSelector(force=["aspect"]).fit(X, y)
    >>> sel.selected_
    ['blue', 'aspect']
    >>> [s["reason"] for s in sel.scores_]
    ['p < 0.05', 'dropped: p = 0.71 >= 0.05', 'forced']
    """

    def __init__(
        self,
        max_p: float = 0.05,
        max_vif: float = 10.0,
        force: Sequence[str | int] = (),
        min_features: int = 1,
    ) -> None:
        self.max_p = max_p
        self.max_vif = max_vif
        self.force = force
        self.min_features = min_features

    def fit(self, X: Any, y: Any) -> CorrelationVIFSelector:
        """Screen the factors of ``X`` against ``y``.

        Parameters
        ----------
        X : array-like or pandas.DataFrame of shape (n_samples, n_features)
            Finite factor values; a DataFrame's column names name the factors.
        y : array-like of shape (n_samples,)
            Target (e.g. a concentration in mg/kg).

        Returns
        -------
        CorrelationVIFSelector
            ``self``, fitted.

        Raises
        ------
        ConfigError
            A parameter out of range, or a forced factor that is not a column.
        ValueError
            Fewer than 2 samples, NaN or infinity, or inconsistent lengths.
        """
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        n_features = X.shape[1]
        names = self._names(n_features)
        forced = self._forced_mask(names)

        r, p, constant = _correlations(X, y)
        kept = ((p < self.max_p) & ~constant) | forced

        # Step 3: drop the most collinear unforced factor until every VIF < max_vif.
        vif_dropped = np.zeros(n_features, dtype=bool)
        vif_at_drop = np.full(n_features, np.nan)
        while True:
            idx = np.flatnonzero(kept)
            v = vif(X[:, idx]) if idx.size else np.empty(0)
            over = [
                (v[k], p[i], i) for k, i in enumerate(idx) if not forced[i] and v[k] >= self.max_vif
            ]
            if not over:
                break
            worst_vif, _, worst = max(over)
            kept[worst] = False
            vif_dropped[worst] = True
            vif_at_drop[worst] = worst_vif

        # Step 4: fall back on the lowest-p factors so a model always has inputs.
        added = np.zeros(n_features, dtype=bool)
        if kept.sum() < self.min_features:
            pool = [i for i in range(n_features) if not kept[i] and not constant[i]]
            pool.sort(key=lambda i: (vif_dropped[i], p[i], i))
            for i in pool[: self.min_features - int(kept.sum())]:
                kept[i] = added[i] = True

        idx = np.flatnonzero(kept)
        final_vif = np.full(n_features, np.nan)
        if idx.size:
            final_vif[idx] = vif(X[:, idx])

        self.support_ = kept
        self.selected_ = [names[i] for i in idx]
        self.correlations_ = r
        self.pvalues_ = p
        self.fallback_used_ = bool(added.any())
        self.scores_ = [
            self._score(
                names[i],
                r[i],
                p[i],
                forced=bool(forced[i]),
                constant=bool(constant[i]),
                kept=bool(kept[i]),
                added=bool(added[i]),
                vif_dropped=bool(vif_dropped[i]),
                vif_value=final_vif[i] if kept[i] else vif_at_drop[i],
            )
            for i in range(n_features)
        ]
        return self

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self, "support_")
        return self.support_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # -- helpers ---------------------------------------------------------------------

    def _check_params(self) -> None:
        if not _is_real(self.max_p) or not 0 < self.max_p <= 1:
            raise ConfigError(f"max_p must be a number in (0, 1], got {self.max_p!r}")
        if not _is_real(self.max_vif) or math.isnan(self.max_vif) or self.max_vif <= 1:
            raise ConfigError(
                f"max_vif must be a number > 1 (a VIF is never below 1), got {self.max_vif!r}"
            )
        if (
            not isinstance(self.min_features, numbers.Integral)
            or isinstance(self.min_features, bool)
            or self.min_features < 0
        ):
            raise ConfigError(f"min_features must be an integer >= 0, got {self.min_features!r}")

    def _names(self, n_features: int) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"x{i}" for i in range(n_features)]

    def _forced_mask(self, names: list[str]) -> np.ndarray:
        force = self.force
        if isinstance(force, str | numbers.Integral):
            force = [force]
        mask = np.zeros(len(names), dtype=bool)
        has_names = getattr(self, "feature_names_in_", None) is not None
        for item in force:
            if isinstance(item, str):
                if not has_names:
                    raise ConfigError(
                        f"cannot force factor {item!r} by name: X has no column names "
                        "(pass a DataFrame, or force by column index)"
                    )
                if item not in names:
                    raise ConfigError(
                        f"forced factor {item!r} is not a column; columns are {names}"
                    )
                mask[names.index(item)] = True
            elif isinstance(item, numbers.Integral) and not isinstance(item, bool):
                if not -len(names) <= int(item) < len(names):
                    raise ConfigError(
                        f"forced factor index {item} is out of range for {len(names)} factors"
                    )
                mask[int(item)] = True
            else:
                raise ConfigError(f"force takes factor names or indices, got {item!r}")
        return mask

    def _score(
        self,
        name: str,
        r: float,
        p: float,
        *,
        forced: bool,
        constant: bool,
        kept: bool,
        added: bool,
        vif_dropped: bool,
        vif_value: float,
    ) -> dict[str, Any]:
        if forced:
            reason = "forced"
        elif added:
            reason = f"kept: min_features={self.min_features} fallback, p = {p:.2g}"
        elif kept:
            reason = f"p < {self.max_p:g}"
        elif constant:
            reason = "dropped: constant"
        elif vif_dropped:
            reason = f"dropped: VIF {vif_value:.3g} >= {self.max_vif:g}"
        else:
            reason = f"dropped: p = {p:.2g} >= {self.max_p:g}"
        return {
            "feature": name,
            "r": float(r),
            "p": float(p),
            "vif": None if math.isnan(vif_value) else float(vif_value),
            "kept": kept,
            "reason": reason,
        }


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _correlations(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pearson r and two-sided p of each column with y, and a constant-column mask."""
    n_features = X.shape[1]
    r = np.full(n_features, np.nan)
    p = np.ones(n_features)
    constant = np.ptp(X, axis=0) == 0
    if np.ptp(y) == 0:
        return r, p, constant
    for j in np.flatnonzero(~constant):
        with warnings.catch_warnings():
            # Near-constant inputs warn; their r and p are still what scipy returns.
            warnings.simplefilter("ignore")
            res = stats.pearsonr(X[:, j], y)
        r[j] = float(res.statistic)
        p[j] = 1.0 if np.isnan(res.pvalue) else float(res.pvalue)
    return r, p, constant

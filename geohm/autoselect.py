"""Automatic model choice (``model: {name: auto}``): score, rank, keep the best or stack.

Every candidate (a registry model with its own preprocessing, see
:data:`geohm.models.registry.CANDIDATES`) is cross-validated on the **same** folds: the
spatial blocks of :mod:`geohm.spatialcv` over the training samples, so a candidate is
judged on prediction away from its samples, as the map needs it. The candidates are
ranked by that CV RMSE. A stacked ensemble (scikit-learn's
:class:`~sklearn.ensemble.StackingRegressor`, a non-negative linear meta-learner,
:class:`~sklearn.linear_model.LinearRegression` with ``positive=True``) replaces the best
candidate when it scores better on the same folds.

How the stack is scored: its members are the candidates the meta-learner weights when
fitted on all their out-of-fold predictions (at least :data:`MIN_SHARE` of the weight,
at most :data:`MAX_MEMBERS`); the
meta-learner is then cross-validated on those members' out-of-fold predictions over the
same folds (fold ``k``'s weights fitted on the other folds). The predictions it combines
for fold ``k`` come from models that never saw fold ``k``; its few non-negative weights
(and the choice of members) were fitted on predictions of models that did, a small
optimism. The chosen stack then goes through geohm's normal validation (hold-out test,
CV and spatial CV refitting the whole stack, members and meta-learner, in every fold),
which is fully honest.

Interval coverage in the ranking is the same check for every candidate: for each fold, a
conformal interval ``prediction +- q`` whose ``q`` is the conformal quantile of the other
folds' absolute out-of-fold errors; the share of the fold's samples inside it, pooled.
It tells how well a candidate's errors away from the samples can be calibrated; the
chosen model's own interval method is checked on the hold-out test set afterwards.

Nothing here reads files or knows model names: training hands in each candidate as a
:class:`Proposal` that builds its unfitted estimator, or says why it does not apply.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline

from geohm.errors import GeohmError, SampleError
from geohm.evaluate import cross_validate, metrics, with_null
from geohm.preprocess import _ColumnFrame

__all__ = [
    "Proposal",
    "RowFolds",
    "Selection",
    "conformal_fold_coverage",
    "select_model",
    "stacked_estimator",
]

#: Least share of the summed weights that keeps a candidate in the stack: a member costs
#: a prediction per pixel and, in the stack's validation, a fit per fold and inner fold.
MIN_SHARE = 0.05
#: Most members of a stacked ensemble (those with the largest weights).
MAX_MEMBERS = 3


class RowFolds:
    """Cross-validation folds fixed per row: the stack's ``cv`` (scikit-learn splitter).

    A table's rows carry their position among a target's samples as their index label;
    ``folds[label]`` is the row's fold (``-1``: in none, e.g. a hold-out test sample).
    ``split`` yields one (train, test) pair per fold present among the rows it is given,
    so the stack fitted on all training samples uses exactly the spatial folds the
    candidates were scored on, and a stack refitted inside a CV fold uses the same folds
    less the rows held out.

    Parameters
    ----------
    folds : array-like of int
        Fold of each row position.

    Examples
    --------
    >>> X = pd.DataFrame({"a": [1.0, 2, 3, 4]}, index=[0, 1, 2, 3])
    >>> [t.tolist() for _, t in RowFolds([0, 1, 0, 1]).split(X)]
    [[0, 2], [1, 3]]
    >>> [t.tolist() for _, t in RowFolds([0, 1, 0, 2]).split(X.iloc[[0, 1, 3]])]
    [[0], [1], [2]]
    """

    def __init__(self, folds: Any) -> None:
        self.folds = folds

    def _fold_of(self, X: Any) -> np.ndarray:
        folds = np.asarray(self.folds, dtype=np.int64).reshape(-1)
        index = getattr(X, "index", None)
        if not isinstance(X, pd.DataFrame) or index is None or index.dtype.kind not in "iu":
            raise ValueError(
                "RowFolds splits a DataFrame whose index is each row's position among the "
                "target's samples"
            )
        labels = index.to_numpy(dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= folds.size):
            raise ValueError(f"row labels outside the {folds.size} positions of the folds")
        fold = folds[labels]
        if np.any(fold < 0):
            raise ValueError("rows outside every fold (hold-out samples) cannot be fitted here")
        if np.unique(fold).size < 2:
            raise ValueError("the rows fall in fewer than 2 folds")
        return fold

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Folds present among the rows of ``X`` (all folds without ``X``)."""
        if X is None:
            folds = np.asarray(self.folds, dtype=np.int64)
            return int(np.unique(folds[folds >= 0]).size)
        return int(np.unique(self._fold_of(X)).size)

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(train, test) positions in ``X``, one pair per fold present."""
        fold = self._fold_of(X)
        for k in np.unique(fold):
            test = fold == k
            yield np.flatnonzero(~test), np.flatnonzero(test)

    def __repr__(self) -> str:
        return f"RowFolds(<{len(np.asarray(self.folds))} rows>)"


@dataclass(frozen=True)
class Proposal:
    """A candidate as training hands it in.

    Attributes
    ----------
    name : str
        The candidate's name (``rf``, ``rfsp``, ...).
    summary : str
        One line for the report.
    distribution : str
        Its registry entry's predictive distribution (``quantiles``, ``std``,
        ``residuals``).
    build : callable or None
        ``build()`` -> (unfitted estimator, its input columns); None when it does not
        apply.
    reason : str or None
        Why it does not apply (with ``build`` None).
    stackable : bool
        Whether it may be a member of the stacked ensemble (a model that maps from a
        pixel's neighbourhood, not its feature row, may not: the stack predicts rows).
    """

    name: str
    summary: str
    distribution: str
    build: Callable[[], tuple[Any, list[str]]] | None
    reason: str | None = None
    stackable: bool = True


@dataclass
class Selection:
    """What :func:`select_model` found.

    Attributes
    ----------
    ranking : list of dict
        One row per candidate (and the stack), ranked rows first: ``candidate``,
        ``status`` (``scored``, ``not applicable``, ``skipped``, ``failed``; the stack
        also ``not chosen``), ``rank``, ``rmse``, ``mae``, ``r2``, ``rmse_null``,
        ``skill``, ``interval_coverage``, ``seconds``, ``distribution``, ``inputs`` (the
        columns it took; the stack: ``weights``), or ``reason``.
    chosen : str
        The best candidate's name, or ``"stack"``.
    why : str
        One sentence: why it was chosen.
    members : dict
        With a stack: member name -> (unfitted estimator, columns); else the chosen one.
    weights : dict
        With a stack: member name -> meta-learner weight on the full level-1 data.
    stacked : bool
        Whether the stacked ensemble was chosen.
    """

    ranking: list[dict[str, Any]]
    chosen: str
    why: str
    members: dict[str, tuple[Any, list[str]]] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    stacked: bool = False


def conformal_fold_coverage(
    y: np.ndarray, oof: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], coverage: float
) -> float:
    """Share of samples inside ``oof +- q``, ``q`` from the *other* folds' errors.

    For each fold, ``q`` is the conformal quantile (the ``ceil(coverage (n + 1))``-th
    smallest, capped at the largest) of the absolute out-of-fold errors of the other
    folds' samples.

    Examples
    --------
    >>> y = np.zeros(4); oof = np.array([1.0, -1.0, 3.0, 0.5])
    >>> conformal_fold_coverage(y, oof, [(np.array([2, 3]), np.array([0, 1])),
    ...                                  (np.array([0, 1]), np.array([2, 3]))], 0.5)
    0.75
    """
    err = np.abs(np.asarray(oof, dtype=float) - np.asarray(y, dtype=float))
    inside = np.zeros(err.size, dtype=bool)
    for _, test in splits:
        others = np.sort(np.delete(err, test))
        k = min(max(math.ceil(coverage * (others.size + 1) - 1e-9), 1), others.size)
        inside[test] = err[test] <= others[k - 1]
    return float(inside.mean())


def _row(name: str, summary: str, y: np.ndarray, oof: np.ndarray, null: np.ndarray) -> dict:
    m = with_null(metrics(y, oof), y, null)
    return {
        "candidate": name,
        "summary": summary,
        "status": "scored",
        **{k: m[k] for k in ("rmse", "mae", "r2", "rmse_null", "skill", "n")},
    }


def select_model(
    proposals: Sequence[Proposal],
    X: pd.DataFrame,
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    *,
    max_minutes: float,
    stack: bool = True,
    coverage: float = 0.9,
) -> Selection:
    """Score every candidate on ``splits``, rank them, keep the best or their stack.

    Parameters
    ----------
    proposals : sequence of Proposal
        The candidates, in scoring order.
    X : DataFrame
        The training samples (every column any candidate takes), indexed by position.
    y : ndarray
        Their targets (mg/kg).
    splits : sequence of (train, test) index pairs
        The folds (spatial blocks), positions in ``X``.
    max_minutes : float
        Time for scoring: once spent, the remaining candidates are skipped (listed with
        the reason). The first candidate is always scored.
    stack : bool
        Whether a stacked ensemble may be chosen.
    coverage : float
        Nominal coverage of the interval check.

    Returns
    -------
    Selection

    Raises
    ------
    SampleError
        No candidate could be scored (the message lists why each was left out).
    """
    y = np.asarray(y, dtype=float)
    null = np.empty_like(y)  # the flat map of each fold: its training mean
    for train, test in splits:
        null[test] = y[train].mean()
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []
    scored: dict[str, tuple[np.ndarray, Any, list[str]]] = {}
    unstackable = {p.name for p in proposals if not p.stackable}
    for p in proposals:
        spent = time.perf_counter() - start
        if p.build is None:
            left.append({"candidate": p.name, "status": "not applicable", "reason": p.reason})
            continue
        if scored and spent > max_minutes * 60.0:
            left.append(
                {
                    "candidate": p.name,
                    "status": "skipped",
                    "reason": f"time budget spent (model.params.max_minutes: {max_minutes:g}; "
                    f"{spent:.1f} s used)",
                }
            )
            continue
        t = time.perf_counter()
        try:
            estimator, columns = p.build()
            cv = cross_validate(estimator, X[columns], y, folds=len(splits), seed=0, splits=splits)
            oof = cv["predictions"]
            if not np.all(np.isfinite(oof)):
                raise ValueError("non-finite out-of-fold predictions")
        except (ValueError, ArithmeticError, RuntimeError, GeohmError) as exc:
            msg = " ".join(str(exc).split())[:200] or type(exc).__name__
            left.append({"candidate": p.name, "status": "failed", "reason": msg})
            continue
        row = _row(p.name, p.summary, y, oof, null)
        row["distribution"] = p.distribution
        row["inputs"] = list(columns)
        row["interval_coverage"] = conformal_fold_coverage(y, oof, splits, coverage)
        row["seconds"] = round(time.perf_counter() - t, 2)
        rows.append(row)
        scored[p.name] = (oof, estimator, columns)
    if not scored:
        why = "; ".join(f"{r['candidate']}: {r['reason']}" for r in left)
        raise SampleError(
            f"model 'auto': no candidate could be scored ({why}); choose other candidates "
            "in model.params.candidates"
        )
    rows.sort(key=lambda r: r["rmse"])  # stable: ties keep the scoring order
    best = rows[0]
    second = f" (next: {rows[1]['candidate']}, {rows[1]['rmse']:.3g})" if len(rows) > 1 else ""
    chosen, why = (
        best["candidate"],
        f"lowest CV RMSE on the folds, {best['rmse']:.3g} mg/kg{second}",
    )
    members = {chosen: scored[chosen][1:]}
    weights: dict[str, float] = {}
    stacked = False
    spent = time.perf_counter() - start
    if stack and sum(k not in unstackable for k in scored) >= 2 and spent > max_minutes * 60.0:
        left.append(
            {
                "candidate": "stack",
                "status": "skipped",
                "reason": f"time budget spent (model.params.max_minutes: {max_minutes:g}; "
                f"{spent:.1f} s used)",
            }
        )
    elif stack and sum(k not in unstackable for k in scored) >= 2:
        stackable = {k: v for k, v in scored.items() if k not in unstackable}
        srow, weights = _stack_row(stackable, X, y, splits, null, coverage)
        if srow["status"] != "scored":
            left.insert(0, srow)
        elif srow["rmse"] < best["rmse"]:
            chosen, stacked = "stack", True
            why = (
                f"the stacked ensemble of {', '.join(weights)} scores better than the best "
                f"single candidate, {best['candidate']} ({srow['rmse']:.3g} vs "
                f"{best['rmse']:.3g} mg/kg CV RMSE)"
            )
            members = {k: scored[k][1:] for k in weights}
            rows.append(srow)
        else:
            srow["note"] = f"not better than {best['candidate']}"
            rows.append(srow)
            why += f"; the stacked ensemble of {', '.join(weights)} scored {srow['rmse']:.3g}"
    ranked = sorted(rows, key=lambda r: r["rmse"])
    for i, r in enumerate(ranked, 1):
        r["rank"] = i
    return Selection(ranked + left, chosen, why, members, weights if stacked else {}, stacked)


def _stack_row(
    scored: dict[str, tuple[np.ndarray, Any, list[str]]],
    X: pd.DataFrame,
    y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    null: np.ndarray,
    coverage: float,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The stack's ranking row (nested CV on the same folds) and its members' weights.

    The members are the candidates the meta-learner weights when fitted on all their
    out-of-fold predictions: at least :data:`MIN_SHARE` of the summed weights, at most
    :data:`MAX_MEMBERS` (the largest weights). The score is what refitting the whole
    stack in every fold gives, as its spatial CV will: for fold ``k`` the meta-learner
    is fitted on the other folds' samples, each predicted by members fitted without its
    own fold and without ``k`` (one fit per pair of folds, shared by both), and applied
    to the members' predictions of fold ``k`` by models fitted without it (the
    candidates' out-of-fold predictions).
    """
    names = list(scored)
    P = np.column_stack([scored[n][0] for n in names])
    coef = LinearRegression(positive=True).fit(P, y).coef_
    total = float(np.sum(coef))
    keep = [int(i) for i in np.argsort(-coef, kind="stable") if coef[i] >= MIN_SHARE * total]
    keep = sorted(keep[:MAX_MEMBERS]) if total > 0 else []  # in scoring order
    weights = {names[i]: float(w) for i, w in zip(keep, coef[keep], strict=True)}
    row: dict[str, Any] = {
        "candidate": "stack",
        "summary": "stacked ensemble (non-negative linear meta-learner)",
    }
    if len(keep) < 2:
        return {
            **row,
            "status": "not chosen",
            "reason": "the meta-learner weights only one candidate: no ensemble",
        }, weights
    if len(splits) < 3:
        return {
            **row,
            "status": "not chosen",
            "reason": "scoring a stack needs at least 3 folds",
        }, weights
    fold = np.empty(y.size, dtype=np.int64)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    n_folds = len(splits)
    # inner[m, k, i]: member m's prediction of sample i by a model fitted without fold k
    # and without sample i's own fold
    inner = np.full((len(keep), n_folds, y.size), np.nan)
    t = time.perf_counter()
    for a, i in enumerate(keep):
        estimator, columns = scored[names[i]][1:]
        table = X[columns]
        for j in range(n_folds):
            for k in range(j + 1, n_folds):
                train = np.flatnonzero((fold != j) & (fold != k))
                model = clone(estimator).fit(table.iloc[train], y[train])
                for held, other in ((j, k), (k, j)):
                    rows = np.flatnonzero(fold == held)
                    inner[a, other, rows] = model.predict(table.iloc[rows])
    oof = np.empty_like(y)
    for k in range(n_folds):
        tr, te = fold != k, fold == k
        meta = LinearRegression(positive=True).fit(inner[:, k, tr].T, y[tr])
        oof[te] = meta.predict(P[np.ix_(te, keep)])
    full = LinearRegression(positive=True).fit(P[:, keep], y)
    weights = {names[i]: float(w) for i, w in zip(keep, full.coef_, strict=True)}
    row.update(_row("stack", row["summary"], y, oof, null))
    row.update(
        distribution="residuals",
        interval_coverage=conformal_fold_coverage(y, oof, splits, coverage),
        seconds=round(time.perf_counter() - t, 2),
        weights=weights,
        intercept=float(full.intercept_),
    )
    return row, weights


def stacked_estimator(members: dict[str, tuple[Any, list[str]]], folds: np.ndarray) -> Pipeline:
    """The unfitted stacked ensemble of ``members`` (name -> (estimator, its columns)).

    Each member sees only its own columns (a passthrough
    :class:`~sklearn.compose.ColumnTransformer`), then its own pipeline; the meta-learner
    is fitted on their out-of-fold predictions over ``folds`` (:class:`RowFolds`). The
    first step names the columns, so the fitted stack also predicts from plain arrays in
    the union's column order (the prediction windows).
    """
    estimators = []
    for name, (estimator, columns) in members.items():
        # One thread per member: the stack's fitted members are out of reach of the map
        # pass's switch to one thread (get_params shows the unfitted templates), and a
        # forest summing its trees on several threads adds them in varying order, so the
        # map would change in the last bit from run to run. Results are otherwise equal.
        estimator = clone(estimator)
        threads = {k: 1 for k in estimator.get_params(deep=True) if k.endswith("n_jobs")}
        try:
            estimator.set_params(**threads)
        except (ValueError, AttributeError):  # a frozen part (Tr-GA-BP's source steps)
            for key in threads:
                try:
                    estimator.set_params(**{key: 1})
                except (ValueError, AttributeError):
                    continue
        pick = ColumnTransformer(
            [("keep", "passthrough", list(columns))],
            remainder="drop",
            verbose_feature_names_out=False,
        ).set_output(transform="pandas")
        estimators.append((name, Pipeline([("pick", pick), ("model", estimator)])))
    stack = StackingRegressor(
        estimators,
        final_estimator=LinearRegression(positive=True),
        cv=RowFolds(np.asarray(folds, dtype=np.int64)),
    )
    return Pipeline([("columns", _ColumnFrame()), ("stack", stack)])

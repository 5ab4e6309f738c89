"""Contamination classifiers: labels from permissible limits, RF/SVM/KNN, cross-validation.

This follows the classification study of a polymetallic tailings dam (seed 001): a sample
is *contaminated* (class 1) when at least one parameter exceeds its maximum permissible
limit (MPL), else *uncontaminated* (class 0). Three models (random forest, support vector
machine, k-nearest neighbours) are tuned with ``GridSearchCV`` on the macro F1 score, with
standardised features and balanced class weights where the model takes them, and compared
by repeated stratified k-fold cross-validation reported as mean ± standard deviation
(the paper's Tables 5-6).

Models see only ``X, y`` tables (NumPy arrays or pandas DataFrames): never xarray, paths or
config objects. The labels come from :mod:`geohm.models.contamination` (its names are
importable from here too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    make_scorer,
    precision_score,
    recall_score,
)
from sklearn.model_selection import (
    BaseCrossValidator,
    GridSearchCV,
    RepeatedStratifiedKFold,
    StratifiedKFold,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from geohm.errors import ConfigError, SampleError
from geohm.models.base import GeohmEstimator
from geohm.models.contamination import UNKNOWN_LABEL, contamination_labels

__all__ = [
    "CLASSIFIER_NAMES",
    "UNKNOWN_LABEL",
    "compare_classifiers",
    "contamination_labels",
    "contamination_probability",
    "evaluate_classifier",
    "make_classifier",
]

log = logging.getLogger(__name__)

#: Canonical classifier names; each also answers to ``<name>-classifier``.
CLASSIFIER_NAMES: tuple[str, ...] = ("rf", "svm", "knn")

_ALIASES: dict[str, str] = {
    **{name: name for name in CLASSIFIER_NAMES},
    **{f"{name}-classifier": name for name in CLASSIFIER_NAMES},
}

_LABELS = (0, 1)
_METRICS = ("accuracy", "precision", "recall", "f1")

# Same score as scoring="f1_macro", but a validation fold where the model predicts a single
# class scores 0 for the missing class instead of raising UndefinedMetricWarning.
_F1_MACRO = make_scorer(f1_score, average="macro", zero_division=0)


# --------------------------------------------------------------------------------------
# estimators


class _CappedStratifiedKFold(BaseCrossValidator):
    """Shuffled stratified k-fold with at most as many folds as the minority class has samples.

    ``StratifiedKFold(max_splits)`` on data whose smallest class has ``m < max_splits``
    samples leaves that class out of some validation folds (the macro F1 is then
    ill-defined there); this uses ``max(2, min(max_splits, m))`` folds instead. The inner
    training sets of :func:`evaluate_classifier` can be that small.
    """

    def __init__(
        self, max_splits: int = 5, *, shuffle: bool = True, random_state: int | None = None
    ) -> None:
        self.max_splits = max_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def _n_splits(self, y: Any) -> int:
        smallest = int(np.unique(np.asarray(y), return_counts=True)[1].min())
        return max(2, min(self.max_splits, smallest))

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.max_splits if y is None else self._n_splits(y)

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if y is None:
            raise SampleError("stratified splitting needs the class labels y")
        folds = StratifiedKFold(
            self._n_splits(y), shuffle=self.shuffle, random_state=self.random_state
        )
        yield from folds.split(X, y, groups)


class _FeatureGuard(TransformerMixin, GeohmEstimator):
    """First pipeline step: pass the feature table on as a float array, checking its columns.

    Fitted on a DataFrame, it remembers the column names; a DataFrame given later is put
    in that column order (missing columns raise :class:`~geohm.errors.SampleError`), and
    a NumPy array is taken to hold the same columns in the same order. Downstream steps
    therefore always see plain arrays, so predicting a tile from a NumPy array does not
    warn about missing feature names. It takes no parameters, and validates nothing but
    the columns: the classifiers after it check the values.
    """

    _fitted_attribute = "n_features_in_"

    def fit(self, X: Any, y: Any = None) -> _FeatureGuard:
        names = getattr(X, "columns", None)
        if names is not None and all(isinstance(c, str) for c in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.n_features_in_ = int(np.shape(X)[1])
        return self

    def transform(self, X: Any) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if names is not None and hasattr(X, "columns"):
            missing = [c for c in names if c not in X.columns]
            if missing:
                raise SampleError(
                    f"feature column(s) {', '.join(map(repr, missing))} seen in fit are "
                    "missing from the table to predict"
                )
            X = X[list(names)]
        out = np.asarray(X, dtype=float)
        if out.ndim != 2 or out.shape[1] != self.n_features_in_:
            raise SampleError(
                f"expected a table of {self.n_features_in_} feature column(s), "
                f"got shape {out.shape}"
            )
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            names = np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        return np.asarray(names, dtype=object)


def _canonical(name: str) -> str:
    try:
        return _ALIASES[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"key 'model.name': unknown classifier {name!r} (valid: {', '.join(_ALIASES)})"
        ) from None


def _rf_and_grid(
    random_state: int, inner: _CappedStratifiedKFold
) -> tuple[BaseEstimator, dict[str, list[Any]]]:
    rf = RandomForestClassifier(class_weight="balanced", random_state=random_state)
    return rf, {
        # more trees only lower the variance (never the bias) of a forest: one size keeps
        # the search to 4 candidates, which costs ~1000 tree fits on 5 inner folds
        "model__n_estimators": [50],
        "model__max_depth": [None, 5],
        "model__min_samples_leaf": [1, 3],
    }


def _svm_and_grid(
    random_state: int, inner: _CappedStratifiedKFold
) -> tuple[BaseEstimator, dict[str, list[Any]]]:
    # SVC(probability=True) is deprecated since scikit-learn 1.9: Platt scaling on
    # out-of-fold decision values, then one SVC refitted on all the data.
    svc = SVC(kernel="rbf", class_weight="balanced", random_state=random_state)
    svm = CalibratedClassifierCV(svc, method="sigmoid", cv=inner, ensemble=False)
    return svm, {
        "model__estimator__C": [0.1, 1.0, 10.0, 100.0],
        # "scale" is 1 / n_features on standardised features (a smooth boundary);
        # 1.0 lets the boundary bend round small islands of the other class
        "model__estimator__gamma": ["scale", 1.0],
    }


def _knn_and_grid(
    random_state: int, inner: _CappedStratifiedKFold
) -> tuple[BaseEstimator, dict[str, list[Any]]]:
    knn = KNeighborsClassifier()
    return knn, {
        "model__n_neighbors": [3, 5, 7, 9],
        "model__weights": ["uniform", "distance"],
    }


#: Each classifier kind: its unfitted model and its search grid.
_MODEL_AND_GRID: dict[
    str,
    Callable[[int, _CappedStratifiedKFold], tuple[BaseEstimator, dict[str, list[Any]]]],
] = {"rf": _rf_and_grid, "svm": _svm_and_grid, "knn": _knn_and_grid}


def make_classifier(
    name: str, *, random_state: int = 0, cv: int = 5, n_jobs: int = 1
) -> GridSearchCV:
    """Build an unfitted, grid-searched contamination classifier by name.

    The estimator is ``GridSearchCV(Pipeline([features, StandardScaler, model]))`` tuned
    on the macro F1 score over a small grid (after seed 001), refitted on all the data with
    the best parameters. Features are standardised because SVM and KNN work on distances.

    ===========  ==================================  =========================================
    name         model                               grid (4, 8 and 8 candidates)
    ===========  ==================================  =========================================
    ``rf``       random forest of 50 trees,          max_depth {None, 5},
                 ``class_weight="balanced"``         min_samples_leaf {1, 3}
    ``svm``      RBF support vector machine,         C {0.1, 1, 10, 100},
                 ``class_weight="balanced"``,        gamma {"scale", 1}
                 Platt-scaled probabilities
    ``knn``      k-nearest neighbours (Euclidean;    n_neighbors {3, 5, 7, 9},
                 takes no class weights)             weights {"uniform", "distance"}
    ===========  ==================================  =========================================

    The grids are kept small so that a fit on ~40 samples takes 1-2 s: each candidate is
    fitted once per inner fold. The SVM's probabilities come from
    ``CalibratedClassifierCV(SVC, ensemble=False)`` (``SVC(probability=True)`` is deprecated
    since scikit-learn 1.9), so its ``predict`` is the argmax of those probabilities, like
    the forest's and the neighbours'.

    Each name also answers to ``<name>-classifier`` (``rf-classifier`` ...).

    Parameters
    ----------
    name : {"rf", "svm", "knn", "rf-classifier", "svm-classifier", "knn-classifier"}
        The model.
    random_state : int
        Seed of the forest, the SVM and every shuffled split: equal seeds give equal fits.
    cv : int
        Folds of the inner, shuffled, stratified cross-validation of the grid search (and of
        the SVM's probability calibration). Fewer are used when the smallest class of the
        training data has fewer samples than ``cv`` (but never fewer than 2).
    n_jobs : int
        Parallel jobs of the grid search (``-1``: all cores).

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Unfitted. Once fitted, ``predict(X)`` gives 0/1 labels and ``predict_proba(X)[:, 1]``
        the probability of contamination (see :func:`contamination_probability`), on a
        DataFrame or on a NumPy array holding the training columns in the same order.

    Raises
    ------
    ConfigError
        Unknown name (the message lists the valid ones), or ``cv`` below 2.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (20, 2)), rng.normal(4, 1, (20, 2))]
    >>> y = np.repeat([0, 1], 20)
    >>> model = make_classifier("knn").fit(X, y)
    >>> model.predict([[0.0, 0.0], [4.0, 4.0]])
    array([0, 1])
    """
    key = _canonical(name)
    if isinstance(cv, bool) or not isinstance(cv, int | np.integer) or cv < 2:
        raise ConfigError(f"inner cross-validation needs cv >= 2 folds, got {cv!r}")
    inner = _CappedStratifiedKFold(int(cv), shuffle=True, random_state=random_state)
    model, grid = _MODEL_AND_GRID[key](random_state, inner)
    pipeline = Pipeline(
        [("features", _FeatureGuard()), ("scale", StandardScaler()), ("model", model)]
    )
    return GridSearchCV(pipeline, grid, scoring=_F1_MACRO, cv=inner, n_jobs=n_jobs, refit=True)


def contamination_probability(estimator: Any, X: Any) -> np.ndarray:
    """Probability of contamination (class 1) for each row of ``X``.

    Parameters
    ----------
    estimator : fitted classifier
        With ``predict_proba`` and ``classes_``, e.g. from :func:`make_classifier`.
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
        The training feature columns, in the same order for a NumPy array.

    Returns
    -------
    numpy.ndarray of float, shape (n_samples,)
        P(contaminated), in [0, 1].

    Raises
    ------
    SampleError
        The estimator was not trained on class 1.
    """
    classes = list(np.asarray(estimator.classes_))
    if 1 not in classes:
        raise SampleError(
            f"the classifier was trained on classes {classes}, without 1 (contaminated)"
        )
    return np.asarray(estimator.predict_proba(X))[:, classes.index(1)]


# --------------------------------------------------------------------------------------
# evaluation


def _check_table(X: Any, y: Any) -> tuple[Any, np.ndarray]:
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise SampleError(f"class labels must be one-dimensional, got shape {labels.shape}")
    if isinstance(X, pd.DataFrame):
        values = X.to_numpy(dtype=float)
        table: Any = X.reset_index(drop=True)
    else:
        values = np.asarray(X, dtype=float)
        table = values
    if values.ndim != 2:
        raise SampleError(f"features must be a 2-D table, got shape {values.shape}")
    if len(values) != len(labels):
        raise SampleError(f"{len(values)} feature rows but {len(labels)} labels")
    bad_rows = int((~np.isfinite(values)).any(axis=1).sum())
    if bad_rows:
        raise SampleError(f"{bad_rows} sample(s) have NaN or infinite features: drop them first")
    if np.any(labels == UNKNOWN_LABEL):
        raise SampleError(
            f"{int(np.sum(labels == UNKNOWN_LABEL))} sample(s) have the unknown label "
            f"{UNKNOWN_LABEL} (all limited parameters missing): drop them first"
        )
    stray = sorted(set(labels.tolist()) - set(_LABELS))
    if stray:
        raise SampleError(f"class labels must be 0 or 1, found {stray}")
    return table, labels.astype(np.int64)


def _rows(table: Any, index: np.ndarray) -> Any:
    return table.iloc[index] if isinstance(table, pd.DataFrame) else table[index]


def _positive_int(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def evaluate_classifier(
    estimator: Any,
    X: Any,
    y: npt.ArrayLike,
    *,
    folds: int = 10,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Repeated stratified k-fold scores of a classifier, as mean ± standard deviation.

    Each of the ``folds_used × repeats`` splits fits a fresh clone of ``estimator`` on the
    training part and scores its predictions on the held-out part.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Unfitted or fitted (it is cloned, never modified), e.g. from :func:`make_classifier`.
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
        Features; every value finite.
    y : array-like of int, shape (n_samples,)
        Labels 0 (uncontaminated) and 1 (contaminated), both present; drop unknown (-1)
        labels first.
    folds : int
        Folds per repetition. When the smaller class has fewer samples than ``folds``, that
        many folds are used instead (reported as ``folds_used``, and logged).
    repeats : int
        Repetitions, each with a different shuffle.
    seed : int
        Seed of the shuffles: equal seeds (and a seeded estimator) give equal results.

    Returns
    -------
    dict
        JSON-serialisable:

        - ``accuracy``, ``precision``, ``recall``, ``f1``: ``{"mean": float, "sd": float}``
          over the splits; precision, recall and F1 are macro averages over classes 0 and 1,
          with ``zero_division=0``. ``sd`` is the population standard deviation (``ddof=0``,
          as ``numpy.std`` of scikit-learn's cross-validation scores).
        - ``confusion_matrix``: ``[[TN, FP], [FN, TP]]`` summed over all splits (rows true
          class, columns predicted class, ``labels`` [0, 1]); it sums to ``repeats × n``.
        - ``labels``: ``[0, 1]``; ``average``: ``"macro"``.
        - ``support``: samples per class, ``{"0": int, "1": int}``; ``n``: samples.
        - ``folds``: folds asked for; ``folds_used``; ``folds_reduced``: bool; ``repeats``;
          ``n_splits``: ``folds_used × repeats``; ``seed``.

    Raises
    ------
    SampleError
        Bad shapes, non-finite features, labels other than 0/1, or a class with fewer than
        2 samples.
    ConfigError
        ``folds`` below 2 or ``repeats`` below 1.
    """
    folds = _positive_int(folds, "folds", 2)
    repeats = _positive_int(repeats, "repeats", 1)
    table, labels = _check_table(X, y)
    support = {str(c): int(np.sum(labels == c)) for c in _LABELS}
    smallest = min(support.values())
    if smallest < 2:
        raise SampleError(f"cross-validation needs at least 2 samples of each class, got {support}")
    folds_used = min(folds, smallest)
    if folds_used < folds:
        log.warning(
            "only %d samples in the smaller class: using %d folds instead of %d",
            smallest,
            folds_used,
            folds,
        )

    splitter = RepeatedStratifiedKFold(n_splits=folds_used, n_repeats=repeats, random_state=seed)
    scores: dict[str, list[float]] = {m: [] for m in _METRICS}
    matrix = np.zeros((len(_LABELS), len(_LABELS)), dtype=np.int64)
    for train, test in splitter.split(np.zeros(len(labels)), labels):
        model = clone(estimator).fit(_rows(table, train), labels[train])
        truth, pred = labels[test], np.asarray(model.predict(_rows(table, test)))
        scores["accuracy"].append(accuracy_score(truth, pred))
        for metric, fn in (
            ("precision", precision_score),
            ("recall", recall_score),
            ("f1", f1_score),
        ):
            scores[metric].append(
                fn(truth, pred, labels=list(_LABELS), average="macro", zero_division=0)
            )
        matrix += confusion_matrix(truth, pred, labels=list(_LABELS))

    result: dict[str, Any] = {
        m: {"mean": float(np.mean(s)), "sd": float(np.std(s))} for m, s in scores.items()
    }
    result.update(
        confusion_matrix=matrix.tolist(),
        labels=list(_LABELS),
        average="macro",
        support=support,
        n=int(len(labels)),
        folds=folds,
        folds_used=int(folds_used),
        folds_reduced=bool(folds_used < folds),
        repeats=repeats,
        n_splits=int(folds_used * repeats),
        seed=int(seed),
    )
    return result


def compare_classifiers(
    X: Any,
    y: npt.ArrayLike,
    names: Sequence[str] = CLASSIFIER_NAMES,
    *,
    folds: int = 10,
    repeats: int = 3,
    seed: int = 0,
    cv: int = 5,
    n_jobs: int = 1,
    decimals: int = 3,
) -> pd.DataFrame:
    """Cross-validate several classifiers on the same splits, as a report table.

    Parameters
    ----------
    X : array-like or pandas.DataFrame, shape (n_samples, n_features)
        Features; every value finite.
    y : array-like of int, shape (n_samples,)
        Labels 0 and 1.
    names : sequence of str
        Classifier names for :func:`make_classifier`; all are checked before any fitting.
    folds, repeats, seed
        As in :func:`evaluate_classifier`; ``seed`` also seeds each model
        (``random_state``), so every model is scored on the same splits.
    cv, n_jobs
        As in :func:`make_classifier`.
    decimals : int
        Decimals of the ``"mean ± sd"`` text columns.

    Returns
    -------
    pandas.DataFrame
        One row per name (index ``model``), columns ``accuracy``, ``precision``, ``recall``,
        ``f1`` as text (``"0.980 ± 0.033"``, seed 001's Tables 5-6), then the numbers
        ``<metric>_mean`` and ``<metric>_sd`` for each, ``folds_used`` and ``n``.

    Raises
    ------
    ConfigError
        An unknown name, or bad ``folds``/``repeats``/``cv``.
    SampleError
        As in :func:`evaluate_classifier`.
    """
    names = list(names)
    if not names:
        raise ConfigError("no classifier names given")
    for name in names:
        _canonical(name)
    rows = []
    for name in names:
        model = make_classifier(name, random_state=seed, cv=cv, n_jobs=n_jobs)
        res = evaluate_classifier(model, X, y, folds=folds, repeats=repeats, seed=seed)
        row: dict[str, Any] = {"model": name}
        for m in _METRICS:
            row[m] = f"{res[m]['mean']:.{decimals}f} ± {res[m]['sd']:.{decimals}f}"
        for m in _METRICS:
            row[f"{m}_mean"] = res[m]["mean"]
            row[f"{m}_sd"] = res[m]["sd"]
        row["folds_used"] = res["folds_used"]
        row["n"] = res["n"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")

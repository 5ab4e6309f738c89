"""Contamination classifiers: MPL labels, RF/SVM/KNN grid searches, repeated stratified CV."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score, recall_score
from sklearn.model_selection import GridSearchCV
from threadpoolctl import threadpool_limits

from geohm.errors import ConfigError, SampleError
from geohm.models.classify import (
    CLASSIFIER_NAMES,
    UNKNOWN_LABEL,
    compare_classifiers,
    contamination_labels,
    contamination_probability,
    evaluate_classifier,
    make_classifier,
)

FEATURES = ["ph", "ec", "pb", "cu"]


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny fits: OpenMP/BLAS threads only spin (3x slower on a busy 2-core machine)."""
    with threadpool_limits(1):
        yield


def blobs(n0: int, n1: int, *, shift: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Class 0 around 0, class 1 around ``shift`` in every feature (unit s.d.)."""
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0.0, 1.0, (n0, 4)), rng.normal(shift, 1.0, (n1, 4))]
    return pd.DataFrame(X, columns=FEATURES), np.repeat([0, 1], [n0, n1])


@pytest.fixture(scope="module")
def imbalanced() -> tuple[pd.DataFrame, np.ndarray]:
    """30 clean vs 10 contaminated samples, well apart."""
    return blobs(30, 10, shift=2.5, seed=1)


@pytest.fixture(scope="module")
def fitted(imbalanced: tuple[pd.DataFrame, np.ndarray]) -> dict[str, GridSearchCV]:
    X, y = imbalanced
    return {name: make_classifier(name).fit(X, y) for name in CLASSIFIER_NAMES}


# --------------------------------------------------------------------------------------
# labels


def test_labels_on_a_hand_table() -> None:
    nan = np.nan
    table = pd.DataFrame(
        {
            "pb": [10.0, 63.0, 63.01, nan, nan, 100.0, nan, 5.0],
            "cu": [1.0, 4.0, 1.0, 5.0, nan, nan, 3.0, 4.5],
            "zn": [999.0, 999.0, 999.0, 999.0, 999.0, nan, 999.0, 1.0],  # not limited
        }
    )
    labels = contamination_labels(table, {"pb": 63.0, "cu": 4})
    #  both below | both equal (not above) | pb above | NaN + cu above | all NaN |
    #  pb above, cu NaN | NaN + cu below (clean) | cu above
    assert labels.tolist() == [0, 0, 1, 1, UNKNOWN_LABEL, 1, 0, 1]
    assert labels.dtype == np.int64
    assert UNKNOWN_LABEL == -1


def test_labels_take_integer_columns_and_one_limit() -> None:
    table = pd.DataFrame({"pb": [62, 63, 64]})
    assert contamination_labels(table, {"pb": 63}).tolist() == [0, 0, 1]


def test_labels_name_the_missing_column() -> None:
    table = pd.DataFrame({"pb": [1.0], "cu": [2.0]})
    with pytest.raises(SampleError, match="'zn'"):
        contamination_labels(table, {"pb": 63.0, "zn": 200.0})


def test_labels_reject_bad_limits_and_values() -> None:
    table = pd.DataFrame({"pb": [1.0], "cu": ["<0.1"]})
    with pytest.raises(ConfigError, match="empty"):
        contamination_labels(table, {})
    with pytest.raises(ConfigError, match="'pb'"):
        contamination_labels(table, {"pb": float("nan")})
    with pytest.raises(ConfigError, match="'pb'"):
        contamination_labels(table, {"pb": "high"})  # type: ignore[dict-item]
    with pytest.raises(SampleError, match="'cu'"):
        contamination_labels(table, {"cu": 4.0})


# --------------------------------------------------------------------------------------
# classifiers


@pytest.mark.parametrize("name", CLASSIFIER_NAMES)
def test_each_classifier_learns_a_separable_problem(name: str) -> None:
    X, y = blobs(20, 20, shift=4.0, seed=0)
    X_test, y_test = blobs(100, 100, shift=4.0, seed=10)
    model = make_classifier(name).fit(X, y)
    assert f1_score(y_test, model.predict(X_test), average="macro") > 0.9


@pytest.mark.parametrize("name", CLASSIFIER_NAMES)
def test_each_classifier_learns_an_imbalanced_problem(
    name: str, fitted: dict[str, GridSearchCV]
) -> None:
    X_test, y_test = blobs(300, 100, shift=2.5, seed=11)
    pred = fitted[name].predict(X_test)
    assert f1_score(y_test, pred, average="macro") > 0.9
    assert recall_score(y_test, pred) > 0.85  # the contaminated minority is found
    params = fitted[name].estimator.get_params()
    weight = {"rf": "model__class_weight", "svm": "model__estimator__class_weight"}
    if name in weight:
        assert params[weight[name]] == "balanced"


def test_grid_search_settings() -> None:
    model = make_classifier("svm", random_state=7, cv=4, n_jobs=2)
    assert isinstance(model, GridSearchCV)
    assert model.n_jobs == 2
    assert model.cv.max_splits == 4 and model.cv.shuffle and model.cv.random_state == 7
    X, y = blobs(6, 4, shift=1.0, seed=6)
    guess = DummyClassifier(strategy="stratified", random_state=0).fit(X, y)
    assert model.scoring(guess, X, y) == f1_score(y, guess.predict(X), average="macro")
    assert [step for step, _ in model.estimator.steps] == ["features", "scale", "model"]
    assert set(make_classifier("rf").param_grid) == {
        "model__n_estimators",
        "model__max_depth",
        "model__min_samples_leaf",
    }
    assert set(make_classifier("knn").param_grid) == {"model__n_neighbors", "model__weights"}


def test_suffixed_aliases_build_the_same_model() -> None:
    for name in CLASSIFIER_NAMES:
        a, b = make_classifier(name), make_classifier(f"{name}-classifier")
        assert type(a.estimator.named_steps["model"]) is type(b.estimator.named_steps["model"])
        assert a.param_grid == b.param_grid


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="'xgb'.*rf, svm, knn"):
        make_classifier("xgb")
    with pytest.raises(ConfigError, match="cv"):
        make_classifier("rf", cv=1)


@pytest.mark.parametrize("name", CLASSIFIER_NAMES)
def test_predict_a_numpy_tile(name: str, fitted: dict[str, GridSearchCV]) -> None:
    model = fitted[name]
    tile, _ = blobs(24, 24, shift=2.5, seed=12)  # 48 pixels, e.g. a 6 x 8 tile
    pixels = tile.to_numpy().reshape(6, 8, 4).reshape(-1, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        pred = model.predict(pixels)
        proba = model.predict_proba(pixels)
        p1 = contamination_probability(model, pixels)
    assert pred.shape == (48,) and set(pred.tolist()) <= {0, 1}
    assert proba.shape == (48, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == [0, 1]
    np.testing.assert_allclose(p1, proba[:, 1])
    assert np.all((p1 >= 0) & (p1 <= 1))
    np.testing.assert_array_equal(pred, np.argmax(proba, axis=1))  # labels match the map
    # a DataFrame is matched by column name, whatever its column order
    np.testing.assert_array_equal(model.predict(tile[FEATURES[::-1]]), pred)
    with pytest.raises(SampleError, match="'cu'"):
        model.predict(tile.drop(columns="cu"))
    with pytest.raises(SampleError, match="4 feature"):
        model.predict(pixels[:, :3])


# --------------------------------------------------------------------------------------
# evaluation


def test_evaluate_is_reproducible_and_json_ready(
    imbalanced: tuple[pd.DataFrame, np.ndarray],
) -> None:
    X, y = imbalanced
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    res = evaluate_classifier(forest, X, y, folds=5, repeats=3, seed=4)
    again = evaluate_classifier(forest, X, y, folds=5, repeats=3, seed=4)
    assert res == again
    assert json.loads(json.dumps(res)) == res
    assert np.sum(res["confusion_matrix"]) == 3 * 40
    assert np.sum(res["confusion_matrix"], axis=1).tolist() == [3 * 30, 3 * 10]
    assert res["support"] == {"0": 30, "1": 10} and res["n"] == 40
    assert (res["folds_used"], res["folds_reduced"], res["n_splits"]) == (5, False, 15)
    for metric in ("accuracy", "precision", "recall", "f1"):
        assert set(res[metric]) == {"mean", "sd"}
        assert 0.0 <= res[metric]["mean"] <= 1.0 and res[metric]["sd"] >= 0.0
    assert not hasattr(forest, "estimators_")  # clones are fitted, never the argument


def test_evaluate_confusion_matrix_layout_by_hand() -> None:
    X, y = blobs(12, 6, shift=1.0, seed=2)
    always_1 = DummyClassifier(strategy="constant", constant=1)
    res = evaluate_classifier(always_1, X, y, folds=3, repeats=2)
    # rows: true 0, true 1; columns: predicted 0, predicted 1
    assert res["confusion_matrix"] == [[0, 24], [0, 12]]
    assert res["accuracy"] == {"mean": pytest.approx(1 / 3), "sd": pytest.approx(0.0)}
    assert res["recall"]["mean"] == pytest.approx(0.5)  # (0 + 1) / 2
    assert res["precision"]["mean"] == pytest.approx(1 / 6)  # (0 [zero_division] + 1/3) / 2


def test_evaluate_reduces_folds_for_a_tiny_minority(
    caplog: pytest.LogCaptureFixture,
) -> None:
    X, y = blobs(20, 4, shift=4.0, seed=3)
    with caplog.at_level(logging.WARNING, logger="geohm.models.classify"):
        res = evaluate_classifier(make_classifier("knn"), X, y, folds=10, repeats=1)
    assert (res["folds"], res["folds_used"], res["folds_reduced"]) == (10, 4, True)
    assert res["n_splits"] == 4 and np.sum(res["confusion_matrix"]) == 24
    assert "4 folds instead of 10" in caplog.text
    assert res["f1"]["mean"] > 0.9


def test_evaluate_rejects_unusable_samples() -> None:
    X, y = blobs(10, 5, shift=3.0, seed=4)
    model = DummyClassifier()
    with pytest.raises(SampleError, match="unknown label"):
        evaluate_classifier(model, X, np.r_[y[:-1], UNKNOWN_LABEL])
    with pytest.raises(SampleError, match="at least 2 samples"):
        evaluate_classifier(model, X, np.r_[np.zeros(14, int), 1])
    with pytest.raises(SampleError, match="NaN"):
        evaluate_classifier(model, X.mask(X > 2.5), y)
    with pytest.raises(SampleError, match="15 feature rows but 14"):
        evaluate_classifier(model, X, y[:-1])
    with pytest.raises(ConfigError, match="folds"):
        evaluate_classifier(model, X, y, folds=1)


def test_compare_classifiers_table(imbalanced: tuple[pd.DataFrame, np.ndarray]) -> None:
    X, y = imbalanced
    table = compare_classifiers(X, y, names=("knn", "svm"), folds=2, repeats=1)
    assert table.index.name == "model" and table.index.tolist() == ["knn", "svm"]
    metrics = ["accuracy", "precision", "recall", "f1"]
    numeric = [f"{m}_{s}" for m in metrics for s in ("mean", "sd")]
    assert table.columns.tolist() == [*metrics, *numeric, "folds_used", "n"]
    assert table["f1"].str.fullmatch(r"\d\.\d{3} ± \d\.\d{3}").all()
    row = table.loc["knn"]
    assert row["f1"] == f"{row['f1_mean']:.3f} ± {row['f1_sd']:.3f}"
    assert table["n"].tolist() == [40, 40]


def test_compare_checks_every_name_before_fitting() -> None:
    X, y = blobs(10, 10, shift=3.0, seed=5)
    with pytest.raises(ConfigError, match="'nope'"):
        compare_classifiers(X, y, names=("knn", "nope"))

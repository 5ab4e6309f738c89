"""Spatial block cross-validation (geohm.spatialcv)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from sklearn.model_selection import KFold, cross_val_predict, cross_validate
from sklearn.neighbors import KNeighborsRegressor

from geohm import spatialcv
from geohm.models.kriging import OrdinaryKrigingRegressor
from geohm.spatialcv import (
    SpatialBlockKFold,
    block_ids,
    default_block_size,
    spatial_block_folds,
)


def uniform_points(n: int = 400, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 5000, size=(n, 2))


def clustered(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """40 tight clusters (8 points within 60 m) of a smooth field over 10 km x 10 km."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 10_000, size=(40, 2))
    xy = np.repeat(centres, 8, axis=0) + rng.uniform(-60, 60, size=(320, 2))
    z = np.sin(xy[:, 0] / 1500) + np.cos(xy[:, 1] / 2000) + rng.normal(0, 0.05, 320)
    return xy, z


def test_block_ids_by_hand() -> None:
    xy = [[100, 100], [109, 100], [110, 100], [100, 125], [139.9, 139.9]]
    # Grid anchored at (100, 100), 10 m cells: (col, row) = (0,0) (0,0) (1,0) (0,2) (3,3).
    assert block_ids(xy, block_size=10).tolist() == [0, 0, 1, 2, 3]


def test_no_block_in_two_folds_and_folds_partition_the_samples() -> None:
    xy = uniform_points()
    cv = SpatialBlockKFold(5, block_size=700, random_state=0)
    blocks = block_ids(xy, block_size=700)
    seen = np.zeros(len(xy), dtype=int)
    for train, test in cv.split(xy):
        assert set(blocks[test]).isdisjoint(blocks[train])
        seen[test] += 1
        assert len(train) + len(test) == len(xy)
    np.testing.assert_array_equal(seen, 1)
    folds = cv.fold_ids(xy)
    for b in np.unique(blocks):
        assert np.unique(folds[blocks == b]).size == 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_folds_balanced_by_point_count(seed: int) -> None:
    xy = uniform_points(seed=seed)
    folds = spatial_block_folds(xy, n_splits=5, block_size=700, random_state=seed)
    sizes = np.bincount(folds, minlength=5)
    largest_block = np.bincount(block_ids(xy, block_size=700)).max()
    assert sizes.max() - sizes.min() <= largest_block  # the greedy bound
    assert np.all(np.abs(sizes - 80) <= 8)  # within 10 % of n / k here


def test_deterministic_with_random_state() -> None:
    xy = uniform_points()
    a = spatial_block_folds(xy, n_splits=5, block_size=500, random_state=4)
    b = spatial_block_folds(xy, n_splits=5, block_size=500, random_state=4)
    c = spatial_block_folds(xy, n_splits=5, block_size=500, random_state=5)
    np.testing.assert_array_equal(a, b)
    # Another seed deals blocks differently (not just a relabelling of the folds).
    same_fold_a = a[:, None] == a[None, :]
    same_fold_c = c[:, None] == c[None, :]
    assert not np.array_equal(same_fold_a, same_fold_c)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spatial_cv_is_harder_than_random_cv_on_clustered_samples(seed: int) -> None:
    xy, z = clustered(seed)
    model = KNeighborsRegressor(n_neighbors=5)
    random_pred = cross_val_predict(model, xy, z, cv=KFold(5, shuffle=True, random_state=seed))
    spatial_pred = cross_val_predict(
        model, xy, z, cv=SpatialBlockKFold(5, block_size=1000, random_state=seed)
    )
    rmse_random = np.sqrt(np.mean((random_pred - z) ** 2))
    rmse_spatial = np.sqrt(np.mean((spatial_pred - z) ** 2))
    assert rmse_spatial >= rmse_random
    assert rmse_spatial > 2 * rmse_random  # clusters held out whole


def test_works_with_cross_validate_and_other_columns() -> None:
    xy, z = clustered(0)
    X = np.column_stack([z * 0 + 1.0, xy[:, 1], xy[:, 0]])  # a covariate, then y, x
    cv = SpatialBlockKFold(4, block_size=1000, random_state=0, coords=(2, 1))
    assert cv.get_n_splits() == 4
    res = cross_validate(KNeighborsRegressor(5), X, z, cv=cv, scoring="neg_root_mean_squared_error")
    assert len(res["test_score"]) == 4
    # Same folds as splitting the bare coordinates.
    ref = SpatialBlockKFold(4, block_size=1000, random_state=0)
    for (tr1, te1), (tr2, te2) in zip(cv.split(X), ref.split(xy), strict=True):
        np.testing.assert_array_equal(te1, te2)
        np.testing.assert_array_equal(tr1, tr2)


def bumps(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """300 samples over 10 km x 10 km of a sum of random Gaussian bumps 500 m wide."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 10_000, size=(300, 2))
    centres = rng.uniform(-1000, 11_000, size=(300, 2))
    d2 = ((xy[:, None, :] - centres[None]) ** 2).sum(-1)
    z = (rng.normal(size=300) * np.exp(-d2 / (2 * 500.0**2))).sum(1)
    return xy, z + rng.normal(0, 0.05, 300)


def test_default_block_size_is_the_variogram_range() -> None:
    xy, z = bumps(2)
    size = default_block_size(xy, z, random_state=0)
    ok = OrdinaryKrigingRegressor("auto", random_state=0).fit(xy, z)
    assert size == pytest.approx(ok.variogram_parameters_["range"])
    assert 1000 < size < 5000  # a few bump widths, well below half the diagonal
    folds = SpatialBlockKFold(5, random_state=0).fold_ids(xy, z)  # block_size=None
    np.testing.assert_array_equal(
        folds, spatial_block_folds(xy, n_splits=5, block_size=size, random_state=0)
    )
    # kriging_params reach the variogram fit.
    finer = default_block_size(xy, z, random_state=0, kriging_params={"nlags": 20})
    ok20 = OrdinaryKrigingRegressor("auto", nlags=20, random_state=0).fit(xy, z)
    assert finer == pytest.approx(ok20.variogram_parameters_["range"])


def test_default_block_size_falls_back_when_the_range_spans_the_area() -> None:
    xy, z = clustered(1)  # a sine of 9.4 km period: the fitted range runs to the last lag
    diagonal = np.hypot(*np.ptp(xy, axis=0))
    assert (
        OrdinaryKrigingRegressor(random_state=0).fit(xy, z).variogram_parameters_["range"]
        >= diagonal / 2
    )
    assert default_block_size(xy, z, random_state=0) == pytest.approx(diagonal / 5)


def test_default_block_size_falls_back_to_a_fifth_of_the_diagonal() -> None:
    xy = np.array([[0.0, 0.0], [3000.0, 0.0], [0.0, 4000.0], [3000.0, 4000.0], [10.0, 20.0]])
    # Equal values: no variogram to fit, so the fallback, 5000 m / 5.
    assert default_block_size(xy, np.ones(5)) == pytest.approx(1000.0)
    # Without y, SpatialBlockKFold(block_size=None) uses the same fallback.
    folds = SpatialBlockKFold(2, random_state=0).fold_ids(xy)
    np.testing.assert_array_equal(
        folds, spatial_block_folds(xy, n_splits=2, block_size=1000.0, random_state=0)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_splits": 5, "block_size": 10_000},  # one block
        {"n_splits": 1, "block_size": 100},
        {"n_splits": 5, "block_size": 0},
        {"n_splits": 5, "block_size": float("nan")},
    ],
)
def test_bad_settings_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        spatial_block_folds(uniform_points(50), **kwargs)


def test_bad_coords_raise() -> None:
    with pytest.raises(ValueError):
        next(SpatialBlockKFold(2, block_size=100, coords=(0, 3)).split(uniform_points(20)))


def test_docstring_examples() -> None:
    res = doctest.testmod(spatialcv, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted > 0 and res.failed == 0

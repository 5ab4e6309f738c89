"""Area of applicability (geohm.aoa): hand-computed DI and thresholds, and a synthetic scene
where the map error outside the AOA is measured against inside.

geohm was also checked once against CAST's own test case (30 cookfarm points, threshold
0.52872, 3377 pixels inside): the same threshold and pixel DI quantiles. That data belongs to
CAST and is not copied here."""

from __future__ import annotations

import doctest
import math
import pickle

import numpy as np
import pytest
from scipy.spatial.distance import cdist
from sklearn.ensemble import RandomForestRegressor
from sklearn.inspection import permutation_importance
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import PredefinedSplit, cross_val_predict

from geohm.aoa import (
    AOA_INSIDE,
    AOA_NODATA,
    AOA_OUTSIDE,
    aoa_threshold,
    covariate_shift,
    error_profile,
    fit_aoa,
)
from geohm.aoa import index as aoa_index
from geohm.aoa import profile as aoa_profile
from geohm.errors import GeohmError, NoDataError, SampleError

# Five points on a line in (x1, x2) with x2 = 500 + 100 x1: after standardising, both
# columns are the same (x2's sd is 100 x that of x1), so every distance is sqrt(2) |dx1| / s1
# and the DI (a ratio of distances) can be worked out on x1 alone.
FIVE = np.array([[0.0, 500.0], [1.0, 600.0], [3.0, 800.0], [6.0, 1100.0], [20.0, 2500.0]])
FIVE_FOLDS = np.array([0, 0, 1, 1, 2])


def test_doctests() -> None:
    for module in (aoa_index, aoa_profile):
        res = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.failed == 0, module.__name__


@pytest.mark.parametrize("p", [4, 20])  # a KD-tree (<= 15 columns) and brute force
def test_di_is_zero_at_every_training_point(p: int) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, p)) * rng.uniform(0.1, 10.0, size=p)
    w = rng.uniform(0.1, 2.0, size=p)
    folds = np.arange(60) % 5
    aoa = fit_aoa(X, weights=w, folds=folds)
    di = aoa.di(X)
    assert di.dtype == np.float32
    np.testing.assert_array_equal(di, 0.0)
    np.testing.assert_array_equal(aoa.inside(di), AOA_INSIDE)

    # against the definitions computed directly (scipy distance matrices)
    z = (X - X.mean(axis=0)) / X.std(axis=0, ddof=1) * w
    d = cdist(z, z)
    d_bar = d.sum() / (60 * 59)  # mean of the matrix without its diagonal
    assert aoa.mean_distance == pytest.approx(d_bar, rel=1e-12)
    other_fold = folds[:, None] != folds[None, :]
    np.testing.assert_allclose(
        aoa.train_di, np.where(other_fold, d, np.inf).min(axis=1) / d_bar, rtol=1e-12
    )
    np.fill_diagonal(d, np.inf)
    np.testing.assert_allclose(fit_aoa(X, weights=w).train_di, d.min(axis=1) / d_bar, rtol=1e-12)
    new = rng.normal(size=(300, p)) * X.std(axis=0) * 1.5
    zn = (new - X.mean(axis=0)) / X.std(axis=0, ddof=1) * w
    np.testing.assert_allclose(aoa.di(new), cdist(zn, z).min(axis=1) / d_bar, rtol=1e-6)


def test_five_point_case_by_hand() -> None:
    # x1 = 0, 1, 3, 6, 20. Pairwise |dx1|: 0-1 1, 0-3 3, 0-6 6, 0-20 20, 1-3 2, 1-6 5,
    # 1-20 19, 3-6 3, 3-20 17, 6-20 14: sum 90 over 10 pairs -> d_bar = 9 (x1 units).
    # In standardised units: mean 6, squared deviations 36 + 25 + 9 + 0 + 196 = 266,
    # s1 = sqrt(266 / 4) = sqrt(66.5); distance = sqrt(2) |dx1| / s1, so
    # d_bar = 9 sqrt(2 / 66.5) = 1.560798...
    aoa = fit_aoa(FIVE, folds=FIVE_FOLDS)
    assert aoa.mean_distance == pytest.approx(9 * math.sqrt(2 / 66.5), rel=1e-12)
    np.testing.assert_allclose(aoa.center, [6.0, 1100.0])
    np.testing.assert_allclose(aoa.scale, [math.sqrt(66.5), 100 * math.sqrt(66.5)])
    # Folds 0 0 1 1 2. Nearest point in another fold:
    #   0 (f0) -> {3, 6, 20}: 3;  1 (f0) -> 3: 2;  3 (f1) -> {0, 1, 20}: 1 at 2;
    #   6 (f1) -> 1 at 5;  20 (f2) -> 6 at 14.   DI = [3, 2, 2, 5, 14] / 9.
    np.testing.assert_allclose(aoa.train_di, np.array([3, 2, 2, 5, 14]) / 9, rtol=1e-12)
    # Sorted [2, 2, 3, 5, 14] / 9; type-7 positions 0.25 * 4 = 1 and 0.75 * 4 = 3:
    # Q25 = 2/9, Q75 = 5/9, IQR = 3/9; whisker 5/9 + 4.5/9 = 9.5/9 < max 14/9.
    assert aoa.threshold == pytest.approx(9.5 / 9, rel=1e-12)
    assert aoa.folds_used

    # Without folds: nearest other point 0->1: 1, 1->0: 1, 3->1: 2, 6->3: 3, 20->6: 14,
    # DI = [1, 1, 2, 3, 14] / 9; Q25 = 1/9, Q75 = 3/9, whisker 3/9 + 3/9 = 6/9 < 14/9.
    plain = fit_aoa(FIVE)
    np.testing.assert_allclose(plain.train_di, np.array([1, 1, 2, 3, 14]) / 9, rtol=1e-12)
    assert plain.threshold == pytest.approx(6 / 9, rel=1e-12)
    assert not plain.folds_used

    # New points. x1 = 13 on the line: 7 from both 6 and 20 -> DI 7/9 = 0.778, inside
    # with folds (1.056), outside without (0.667). (3, 900) sits off the line by 100 in x2
    # = 1 x1-unit along the second axis: distance 1 / s1 against sqrt(2) * 9 / s1 -> DI
    # 1 / (9 sqrt 2) = 0.0786.
    new = np.array([[13.0, 1800.0], [3.0, 900.0], [np.nan, 900.0]])
    expected = [7 / 9, 1 / (9 * math.sqrt(2)), math.nan]
    np.testing.assert_allclose(aoa.di(new), expected, rtol=1e-6)
    np.testing.assert_allclose(plain.di(new), expected, rtol=1e-6)
    assert aoa.inside(aoa.di(new)).tolist() == [AOA_INSIDE, AOA_INSIDE, AOA_NODATA]
    assert plain.inside(plain.di(new)).tolist() == [AOA_OUTSIDE, AOA_INSIDE, AOA_NODATA]


def test_threshold_is_the_capped_type7_whisker() -> None:
    # [0.2, 0.2, 0.4, 0.6, 0.8]: Q25 0.2, Q75 0.6, whisker 0.6 + 0.6 = 1.2 -> capped 0.8
    assert aoa_threshold([0.2, 0.2, 0.4, 0.6, 0.8]) == pytest.approx(0.8)
    # six values: type 7 interpolates. Sorted [1, 2, 3, 4, 5, 20]: Q25 at position 1.25
    # = 2.25, Q75 at 3.75 = 4.75, IQR 2.5, whisker 4.75 + 3.75 = 8.5 (type 6 would give
    # Q25 1.75, Q75 8.75 and a whisker above the maximum)
    assert aoa_threshold([5, 1, 20, 3, 2, 4, np.nan]) == pytest.approx(8.5)
    with pytest.raises(ValueError, match="no finite value"):
        aoa_threshold([np.nan])


def test_zero_weight_feature_does_not_change_di() -> None:
    rng = np.random.default_rng(2)
    X = rng.uniform(size=(50, 2))
    noise = rng.normal(scale=100.0, size=(50, 1))
    folds = np.arange(50) % 4
    new = rng.uniform(-0.5, 1.5, size=(200, 2))
    new_noise = rng.normal(scale=500.0, size=(200, 1))
    ref = fit_aoa(X, weights=[2.0, 1.0], folds=folds)
    for w in ([2.0, 1.0, 0.0], [2.0, 1.0, -3.0]):  # a negative importance counts as 0
        aoa = fit_aoa(np.hstack([X, noise]), weights=w, folds=folds)
        np.testing.assert_allclose(aoa.train_di, ref.train_di, rtol=1e-12)
        assert aoa.threshold == pytest.approx(ref.threshold, rel=1e-12)
        assert aoa.mean_distance == pytest.approx(ref.mean_distance, rel=1e-12)
        np.testing.assert_allclose(aoa.di(np.hstack([new, new_noise])), ref.di(new), rtol=1e-6)
        assert aoa.feature_weights.tolist() == [2.0, 1.0, 0.0]
    # only the weights' ratios matter: [4, 2] gives the same DI as [2, 1]
    np.testing.assert_allclose(
        fit_aoa(X, weights=[4.0, 2.0], folds=folds).di(new), ref.di(new), rtol=1e-6
    )
    # on the five points, weight 0 on x2 ignores the point's offset in x2
    flat = fit_aoa(FIVE, weights=[1.0, 0.0], folds=FIVE_FOLDS)
    np.testing.assert_allclose(flat.train_di, np.array([3, 2, 2, 5, 14]) / 9, rtol=1e-12)
    assert flat.di([[3.0, 900.0]]).tolist() == [0.0]


def test_all_zero_weights_raise_a_geohm_error() -> None:
    with pytest.raises(NoDataError, match=r"weights=None"):
        fit_aoa(FIVE, weights=[0.0, -0.1])
    assert issubclass(NoDataError, GeohmError)
    with pytest.raises(ValueError, match="finite"):
        fit_aoa(FIVE, weights=[1.0, np.nan])
    with pytest.raises(ValueError, match="2 predictors"):
        fit_aoa(FIVE, weights=[1.0])


def test_constant_feature_contributes_nothing_and_is_recorded() -> None:
    X = np.hstack([FIVE, np.full((5, 1), 7.0)])
    aoa = fit_aoa(X, folds=FIVE_FOLDS)
    assert aoa.constant_features == (2,)
    np.testing.assert_allclose(aoa.train_di, np.array([3, 2, 2, 5, 14]) / 9, rtol=1e-12)
    assert aoa.di([[3.0, 800.0, 1000.0]]).tolist() == [0.0]
    with pytest.raises(NoDataError, match="constant"):
        fit_aoa(X, weights=[0.0, 0.0, 1.0])


def _reference_categorical_di(X: np.ndarray, new: np.ndarray, cat: int) -> np.ndarray:
    """CAST's recipe by hand: dummies, scale(), nearest distance / mean distance."""
    levels = np.unique(X[:, cat])

    def expand(a: np.ndarray) -> np.ndarray:
        dummies = (a[:, [cat]] == levels).astype(float)
        return np.hstack([np.delete(a, cat, axis=1), dummies])

    t = expand(X)
    mu, sd = t.mean(axis=0), t.std(axis=0, ddof=1)
    zt, zn = (t - mu) / sd, (expand(new) - mu) / sd
    d = cdist(zt, zt)
    d_bar = d.sum() / (len(t) * (len(t) - 1))
    return cdist(zn, zt).min(axis=1) / d_bar


def test_categorical_predictors_are_one_hot_encoded() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 1))
    lu = rng.choice([1.0, 2.0, 5.0], size=(30, 1))  # land-use codes
    X = np.hstack([x, lu])
    new = np.hstack([rng.normal(size=(20, 1)), rng.choice([1.0, 2.0, 5.0, 9.0], size=(20, 1))])
    aoa = fit_aoa(X, categorical=[1])
    assert [lv.tolist() for lv in aoa.levels] == [[1.0, 2.0, 5.0]]
    known = new[:, 1] != 9.0
    np.testing.assert_allclose(
        aoa.di(new[known]), _reference_categorical_di(X, new[known], 1), rtol=1e-6
    )
    # an unseen level (9) has all its dummies 0, as CAST
    unseen = new[~known].copy()
    zeros = np.hstack([unseen[:, :1], np.zeros((len(unseen), 3))])
    levels = aoa.levels[0]
    t = np.hstack([x, (lu == levels).astype(float)])
    mu, sd = t.mean(axis=0), t.std(axis=0, ddof=1)
    d_bar = cdist((t - mu) / sd, (t - mu) / sd).sum() / (30 * 29)
    np.testing.assert_allclose(
        aoa.di(unseen), cdist((zeros - mu) / sd, (t - mu) / sd).min(axis=1) / d_bar, rtol=1e-6
    )
    # the codes are labels, not numbers: relabelling 1, 2, 5 -> 40, 3, 7 changes nothing
    relabel = {1.0: 40.0, 2.0: 3.0, 5.0: 7.0, 9.0: 9.0}
    X2, new2 = X.copy(), new.copy()
    X2[:, 1] = [relabel[v] for v in X[:, 1]]
    new2[:, 1] = [relabel[v] for v in new[:, 1]]
    aoa2 = fit_aoa(X2, categorical=[1])
    np.testing.assert_allclose(aoa2.train_di, aoa.train_di, rtol=1e-12)
    np.testing.assert_allclose(aoa2.di(new2), aoa.di(new), rtol=1e-6)
    # treated as a number instead, the DI differs
    assert not np.allclose(fit_aoa(X).di(new[known]), aoa.di(new[known]))


def test_nan_rows_are_left_out_and_reported() -> None:
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(40, 3))
    folds = np.arange(40) % 4
    Xn = X.copy()
    Xn[[3, 17], 1] = np.nan
    Xn[25, 0] = np.inf
    aoa = fit_aoa(Xn, folds=folds)
    assert aoa.dropped_rows.tolist() == [3, 17, 25]
    assert aoa.n_train == 37
    keep = np.setdiff1d(np.arange(40), [3, 17, 25])
    ref = fit_aoa(X[keep], folds=folds[keep])
    assert np.isnan(aoa.train_di[[3, 17, 25]]).all()
    np.testing.assert_allclose(aoa.train_di[keep], ref.train_di, rtol=1e-12)
    assert aoa.threshold == pytest.approx(ref.threshold, rel=1e-12)
    di = aoa.di(Xn)
    assert np.isnan(di[[3, 17, 25]]).all() and np.all(di[keep] == 0)
    assert (aoa.inside(di)[[3, 17, 25]] == AOA_NODATA).all()
    with pytest.raises(SampleError, match="at least two"):
        fit_aoa([[1.0, np.nan], [2.0, 3.0]])
    with pytest.raises(SampleError, match="one CV fold|in CV fold"):
        fit_aoa([[1.0], [2.0], [np.nan]], folds=[0, 0, 1])
    with pytest.raises(ValueError, match="fitted on 3"):
        aoa.di(np.zeros((2, 2)))


def test_pickled_aoa_gives_the_same_di() -> None:
    aoa = fit_aoa(FIVE, folds=FIVE_FOLDS)
    back = pickle.loads(pickle.dumps(aoa))
    new = np.array([[13.0, 1800.0], [3.0, 900.0]])
    np.testing.assert_array_equal(back.di(new), aoa.di(new))
    assert back.threshold == aoa.threshold


def test_covariate_shift_share_outside() -> None:
    src = fit_aoa(FIVE, folds=FIVE_FOLDS)  # threshold 9.5/9: outside beyond 9.5 x1-units
    target = np.array([[2.0, 700.0], [13.0, 1800.0], [31.0, 3600.0], [40.0, 4500.0], [np.nan, 1.0]])
    # nearest training x1: 1 or 3 (1 away), 6 or 20 (7), 20 (11), 20 (20): DI 1/9, 7/9,
    # 11/9, 20/9 -> two of four valid rows outside
    shift = covariate_shift(src, target)
    np.testing.assert_allclose(shift.di[:4], np.array([1, 7, 11, 20]) / 9, rtol=1e-6)
    assert (shift.n_rows, shift.n_nodata, shift.n_outside) == (5, 1, 2)
    assert shift.share_outside == 0.5
    assert math.isnan(covariate_shift(src, [[np.nan, 0.0]]).share_outside)


def test_error_profile_is_non_decreasing_and_is_isotonic_regression() -> None:
    rng = np.random.default_rng(5)
    di = rng.uniform(0, 2, size=80)
    err = np.abs(rng.normal(scale=0.2 + di))
    prof = error_profile(di, err)
    assert np.all(np.diff(prof.error_knots) >= 0)
    grid = np.linspace(-1, 3, 101)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(di, err)
    np.testing.assert_allclose(prof.expected_error(grid), iso.predict(grid), rtol=1e-6)
    assert np.all(np.diff(prof.expected_error(grid)) >= 0)
    # NaN pairs are counted, not silently used; a threshold keeps DI <= threshold only
    di_n, err_n = di.copy(), err.copy()
    di_n[0], err_n[1] = np.nan, np.nan
    cut = error_profile(di_n, err_n, threshold=1.0)
    assert cut.n_left_out == 2
    assert cut.n_above_threshold == int((di[2:] > 1.0).sum())
    assert cut.n_used == 78 - cut.n_above_threshold
    assert cut.di_knots.max() <= 1.0
    assert np.isnan(prof.expected_error([np.nan])[0])
    with pytest.raises(ValueError, match="negative"):
        error_profile([0.1, 0.2], [1.0, -1.0])


def _truth(x: np.ndarray) -> np.ndarray:
    return 2.0 * x[:, 0] + 0.5 * np.sin(2 * np.pi * x[:, 1])


def test_error_outside_the_aoa_is_higher_than_inside() -> None:
    # Samples cover x1 in [0, 0.5] only; the map covers x1 in [0, 1]. A random forest
    # cannot extrapolate the trend in x1, so its error grows outside the sampled range.
    rng = np.random.default_rng(0)
    n = 150
    X = np.column_stack([rng.uniform(0, 0.5, n), rng.uniform(0, 1, n)])
    y = _truth(X) + rng.normal(scale=0.05, size=n)
    folds = rng.permutation(np.arange(n) % 5)
    rf = RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
    imp = permutation_importance(rf, X, y, n_repeats=5, random_state=0, n_jobs=1)
    aoa = fit_aoa(X, weights=imp.importances_mean, folds=folds)

    g = np.linspace(0, 1, 41)
    grid = np.column_stack([np.repeat(g, g.size), np.tile(g, g.size)])
    err = np.abs(rf.predict(grid) - _truth(grid))
    codes = aoa.inside(aoa.di(grid))
    inside, outside = err[codes == AOA_INSIDE], err[codes == AOA_OUTSIDE]
    print(
        f"\nAOA threshold {aoa.threshold:.3f}; share of the map inside "
        f"{inside.size / err.size:.3f}; mean |error| inside {inside.mean():.4f} "
        f"({inside.size} px), outside {outside.mean():.4f} ({outside.size} px), "
        f"ratio {outside.mean() / inside.mean():.1f}"
    )
    assert inside.size > 0 and outside.size > 0
    assert outside.mean() > 1.5 * inside.mean()
    # the sampled half of the map is (almost) all inside, the far end all outside
    assert (codes[grid[:, 0] <= 0.5] == AOA_INSIDE).mean() > 0.95
    assert (codes[grid[:, 0] >= 0.8] == AOA_OUTSIDE).all()

    # the DI -> error profile from the CV predictions rises with the DI
    cv_pred = cross_val_predict(
        RandomForestRegressor(n_estimators=100, random_state=0, n_jobs=1),
        X,
        y,
        cv=PredefinedSplit(folds),
    )
    prof = error_profile(aoa.train_di, np.abs(cv_pred - y))
    assert np.all(np.diff(prof.error_knots) >= 0)
    expected = prof.expected_error(aoa.di(grid))
    assert expected[codes == AOA_OUTSIDE].mean() >= expected[codes == AOA_INSIDE].mean()

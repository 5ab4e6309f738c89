"""RFsp buffer distances (geohm.models.spatial)."""

from __future__ import annotations

import doctest
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from geohm.models import spatial
from geohm.models.spatial import BufferDistances


def test_doctests() -> None:
    assert doctest.testmod(spatial).failed == 0


def test_distances_by_hand_3_4_5() -> None:
    # Training points at (0, 0), (3, 0) and (0, 4) m; the columns between the
    # coordinates (a reflectance) must pass through untouched.
    train = np.array([[0.0, 0.1, 0.0], [3.0, 0.2, 0.0], [0.0, 0.3, 4.0]])
    bd = BufferDistances(coords=(0, 2)).fit(train)
    out = bd.transform(np.array([[3.0, 0.5, 4.0], [0.0, 0.6, 0.0]]))
    np.testing.assert_allclose(out[:, :3], [[3.0, 0.5, 4.0], [0.0, 0.6, 0.0]])
    np.testing.assert_allclose(out[:, 3:], [[5.0, 4.0, 3.0], [0.0, 3.0, 4.0]])
    np.testing.assert_array_equal(bd.points_, [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])


def test_drop_coords_and_feature_names_from_a_frame() -> None:
    train = pd.DataFrame({"x": [0.0, 3.0], "ndvi": [0.2, 0.4], "y": [0.0, 4.0]})
    bd = BufferDistances(coords=("x", "y"), keep_coords=False, prefix="d").fit(train)
    assert bd.coord_indices_ == (0, 2)
    assert bd.get_feature_names_out().tolist() == ["ndvi", "d0", "d1"]
    out = bd.transform(pd.DataFrame({"x": [3.0], "ndvi": [0.7], "y": [0.0]}))
    np.testing.assert_allclose(out, [[0.7, 3.0, 4.0]])
    # set_output: a DataFrame with the names out
    frame = bd.set_output(transform="pandas").transform(train)
    assert list(frame.columns) == ["ndvi", "d0", "d1"]
    np.testing.assert_allclose(frame["d1"], [5.0, 0.0])


def test_float32_in_float32_out_and_chunks_do_not_matter() -> None:
    rng = np.random.default_rng(0)
    train = rng.uniform(0, 1000, (40, 3))
    table = rng.uniform(0, 1000, (1001, 3)).astype(np.float32)
    whole = BufferDistances().fit(train).transform(table)
    chunked = BufferDistances(chunk_size=7).fit(train).transform(table)
    assert whole.dtype == np.float32 and whole.shape == (1001, 3 + 40)
    np.testing.assert_array_equal(whole, chunked)
    ref = np.hypot(
        table[:, :1].astype(float) - train[:, 0], table[:, 1:2].astype(float) - train[:, 1]
    )
    np.testing.assert_allclose(whole[:, 3:], ref, rtol=1e-6)


def test_nan_coordinates_give_nan_distances_and_bad_training_points_raise() -> None:
    bd = BufferDistances().fit(np.array([[0.0, 0.0], [1.0, 1.0]]))
    out = bd.transform(np.array([[np.nan, 0.0]]))
    assert np.isnan(out[0, 2:]).all()
    with pytest.raises(ValueError, match="finite coordinates"):
        BufferDistances().fit(np.array([[0.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="different columns"):
        BufferDistances(coords=(1, 1)).fit(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="not among"):
        BufferDistances(coords=("x", "y")).fit(np.zeros((3, 2)))


def test_rfsp_in_a_pipeline_learns_a_spatial_field() -> None:
    # A field that depends on position only: with coordinates and buffer distances
    # a forest maps it well at new locations.
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 2000, (150, 2))
    z = np.sin(xy[:, 0] / 400) + np.cos(xy[:, 1] / 500)
    pipe = Pipeline(
        [
            ("dist", BufferDistances()),
            ("rf", RandomForestRegressor(n_estimators=50, random_state=0, n_jobs=1)),
        ]
    ).fit(xy, z)
    assert pipe.named_steps["rf"].n_features_in_ == 2 + 150
    new = rng.uniform(0, 2000, (300, 2))
    truth = np.sin(new[:, 0] / 400) + np.cos(new[:, 1] / 500)
    r2 = 1 - np.sum((pipe.predict(new) - truth) ** 2) / np.sum((truth - truth.mean()) ** 2)
    assert r2 > 0.8


@parametrize_with_checks(
    [BufferDistances()],
    expected_failed_checks=lambda est: {
        "check_estimators_nan_inf": (
            "NaN is allowed on purpose: in non-coordinate columns (an imputer may follow) "
            "and in transform (a NaN location gives NaN distances)"
        )
    },
)
def test_sklearn_compatible(estimator: BufferDistances, check: Any) -> None:
    check(estimator)

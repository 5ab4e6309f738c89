"""The patch CNN (issue 17): shapes, parameter counts, seeds, map = patch, augmentation.

scikit-learn's ``parametrize_with_checks`` is not run: its checks feed 2-D tables and
this estimator takes 4-D patches (n, channels, 2h + 1, 2h + 1); the parts of the
contract that apply (clone, unfitted, channel count) are tested here.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from geohm.errors import ConfigError
from geohm.models.patchcnn import PatchCNNRegressor, build, check_params
from geohm.models.patchnet import PatchNet, dihedral
from geohm.patches import read_halo, read_patches

# A tiny net: fits in well under a second.
TINY: dict[str, Any] = {
    "channels": 4,
    "depth": 2,
    "patch": 2,
    "ensemble": 2,
    "max_epochs": 8,
    "patience": 3,
}


class ArrayReader:
    """A window reader over an in-memory (C, rows, cols) cube (as WindowSource.read)."""

    def __init__(self, cube: np.ndarray) -> None:
        self.cube = cube
        self.shape = (cube.shape[1], cube.shape[2])

    def read(self, row_off: int, col_off: int, rows: int, cols: int) -> np.ndarray:
        ny, nx = self.shape
        assert 0 <= row_off and row_off + rows <= ny and 0 <= col_off and col_off + cols <= nx
        return self.cube[:, row_off : row_off + rows, col_off : col_off + cols].copy()


@pytest.fixture(scope="module")
def scene() -> tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    cube = rng.normal(size=(3, 30, 36)).astype(np.float32)
    cube[1, 4:8, 10:13] = np.nan  # a gap in one feature
    cube[:, 20, 5] = np.nan  # a pixel with no features
    rows = rng.integers(0, 30, 60)
    cols = rng.integers(0, 36, 60)
    y = 10 + 2 * cube[0, rows, cols] + rng.normal(scale=0.1, size=60)
    return ArrayReader(cube), rows, cols, y


@pytest.fixture(scope="module")
def fitted(scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray]) -> PatchCNNRegressor:
    reader, rows, cols, y = scene
    X = read_patches(reader, rows, cols, TINY["patch"])
    return PatchCNNRegressor(**TINY, random_state=0).fit(X, y)


def test_net_shapes_and_parameter_count() -> None:
    net = PatchNet(3, 4, 2, 3, 0.1)  # 2 features + validity, 4 filters, 7 x 7 patch
    # conv 3->4 (3x3, no bias) 108, BN 8, conv 4->4 144, BN 8, head 4 x 3 x 3 + 1 = 37
    assert sum(p.numel() for p in net.parameters()) == 108 + 8 + 144 + 8 + 37
    assert net.head_size == 3
    net.eval()
    assert tuple(net(torch.zeros(5, 3, 7, 7)).shape) == (5, 1, 1)
    assert tuple(net(torch.zeros(1, 3, 7 + 10, 7 + 4)).shape) == (1, 11, 5)
    assert PatchNet(3, 4, 3, 3, 0.0).head_size == 1  # depth == patch: a 1 x 1 head
    with pytest.raises(ValueError, match="depth"):
        PatchNet(3, 4, 4, 3, 0.0)


def test_reads_pad_with_nan_outside_the_grid() -> None:
    cube = np.arange(2 * 4 * 5, dtype=np.float32).reshape(2, 4, 5)
    reader = ArrayReader(cube)
    p = read_patches(reader, [0, 2], [0, 4], 1)
    assert p.shape == (2, 2, 3, 3)
    assert np.isnan(p[0, :, 0, :]).all() and np.isnan(p[0, :, :, 0]).all()
    assert p[0, 0, 1:, 1:].tolist() == [[0.0, 1.0], [5.0, 6.0]]
    assert p[1, 1, :, :2].tolist() == [[28.0, 29.0], [33.0, 34.0], [38.0, 39.0]]
    assert np.isnan(p[1, :, :, 2]).all()
    block = read_halo(reader, 1, 1, 2, 3, 2)
    assert block.shape == (2, 6, 7)
    np.testing.assert_array_equal(block[:, 1:5, 1:6], cube[:, :, :])
    assert np.isnan(block[:, 0]).all() and np.isnan(block[:, :, -1]).all()


def test_dihedral_is_the_eight_symmetries_of_the_square() -> None:
    a = np.arange(9, dtype=np.float32).reshape(3, 3)
    x = torch.as_tensor(np.stack([a] * 8)[:, None])
    out = dihedral(x, torch.arange(8))[:, 0].numpy()
    expected = [np.rot90(a, k) for k in range(4)] + [np.fliplr(np.rot90(a, k)) for k in range(4)]
    for got, want in zip(out, expected, strict=True):
        np.testing.assert_array_equal(got, want)
    assert len({g.tobytes() for g in out}) == 8


def test_fit_predict_shapes_and_fitted_state(
    fitted: PatchCNNRegressor, scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    reader, rows, cols, y = scene
    X = read_patches(reader, rows, cols, 2)
    assert fitted.predict(X).shape == (60,)
    assert fitted.predict_members(X).shape == (2, 60)
    assert fitted.halo_ == 2 and fitted.n_features_in_ == 3 and len(fitted.nets_) == 2
    # Training channel statistics over the finite pixels of the patches.
    np.testing.assert_allclose(fitted.x_mean_, np.nanmean(X, axis=(0, 2, 3)), rtol=1e-5)
    assert fitted.y_mean_ == pytest.approx(y.mean())
    assert all(1 <= e <= 8 for e in fitted.best_epochs_)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :2])
    with pytest.raises(ValueError, match="patches"):
        fitted.predict(X[:, :, 1:, 1:])
    with pytest.raises(NotFittedError):
        PatchCNNRegressor().predict(X)
    assert clone(fitted).get_params() == fitted.get_params()


def test_the_same_seed_gives_the_same_model(
    scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray], fitted: PatchCNNRegressor
) -> None:
    reader, rows, cols, y = scene
    X = read_patches(reader, rows, cols, 2)
    again = PatchCNNRegressor(**TINY, random_state=0).fit(X, y)
    np.testing.assert_array_equal(again.predict_members(X), fitted.predict_members(X))
    other = PatchCNNRegressor(**TINY, random_state=1).fit(X, y)
    assert np.abs(other.predict(X) - fitted.predict(X)).max() > 1e-3


@pytest.mark.parametrize("window", [(0, 0, 30, 36), (3, 29, 5, 7)])
def test_the_map_equals_the_patch_prediction_at_every_pixel(
    fitted: PatchCNNRegressor,
    scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray],
    window: tuple[int, int, int, int],
) -> None:
    reader = scene[0]
    r0, c0, h, w = window
    members = fitted.predict_grid_members(read_halo(reader, r0, c0, h, w, fitted.halo_))
    assert members.shape == (2, h, w)
    rr, cc = np.meshgrid(np.arange(r0, r0 + h), np.arange(c0, c0 + w), indexing="ij")
    patches = read_patches(reader, rr.ravel(), cc.ravel(), fitted.halo_)
    expected = fitted.predict_members(patches).reshape(2, h, w)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(members, expected, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(
        fitted.predict_grid(read_halo(reader, r0, c0, h, w, 2)),
        expected.mean(axis=0),
        rtol=0,
        atol=1e-5 * scale,
    )


def test_a_window_taller_than_one_pass_is_predicted_in_strips() -> None:
    # 140 map rows: two forward passes of at most 128 rows, same numbers as the patches.
    rng = np.random.default_rng(3)
    reader = ArrayReader(rng.normal(size=(2, 140, 3)).astype(np.float32))
    rows, cols = rng.integers(0, 140, 30), rng.integers(0, 3, 30)
    m = PatchCNNRegressor(
        patch=1, depth=1, channels=3, ensemble=1, max_epochs=2, random_state=0
    ).fit(read_patches(reader, rows, cols, 1), rng.normal(size=30))
    grid = m.predict_grid(read_halo(reader, 0, 0, 140, 3, 1))
    rr, cc = np.meshgrid(np.arange(140), np.arange(3), indexing="ij")
    expected = m.predict(read_patches(reader, rr.ravel(), cc.ravel(), 1)).reshape(140, 3)
    np.testing.assert_allclose(grid, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_augmentation_is_off_for_direction_features(
    scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    reader, rows, cols, y = scene
    X = read_patches(reader, rows, cols, 2)
    quick: dict[str, Any] = {**TINY, "ensemble": 1, "max_epochs": 1}
    names = ["elevation", "slope", "aspect"]
    assert PatchCNNRegressor(**quick).fit(X, y, channel_names=names).augment_ == "none"
    assert (
        PatchCNNRegressor(**quick).fit(X, y, channel_names=["red", "nir", "slope"]).augment_
        == "flips"
    )
    # Unknown channel names: only an empty direction_features allows flips.
    assert PatchCNNRegressor(**quick).fit(X, y).augment_ == "none"
    assert PatchCNNRegressor(**quick, direction_features=()).fit(X, y).augment_ == "flips"
    assert PatchCNNRegressor(**quick, augment="none").fit(X, y).augment_ == "none"
    with pytest.raises(ValueError, match="direction feature"):
        PatchCNNRegressor(**quick, augment="flips").fit(X, y, channel_names=names)
    # Flips change training (different batches of patches), hence the model.
    a = PatchCNNRegressor(**TINY, augment="none", random_state=0).fit(X, y)
    b = PatchCNNRegressor(**TINY, augment="flips", direction_features=(), random_state=0)
    assert np.abs(a.predict(X) - b.fit(X, y).predict(X)).max() > 1e-4


def test_inner_folds_keep_groups_whole_and_early_stopping_uses_them(
    scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    from geohm.models.patchcnn import _inner_folds

    groups = np.repeat(np.arange(10), 3)
    folds = _inner_folds(np.random.RandomState(0), 30, 5, groups)
    assert folds is not None
    assert sorted(np.bincount(folds).tolist()) == [6, 6, 6, 6, 6]
    for g in range(10):
        assert len(set(folds[groups == g].tolist())) == 1
    assert _inner_folds(np.random.RandomState(0), 7, 5, None) is None  # too few: no stopping
    reader, rows, cols, y = scene
    X = read_patches(reader, rows, cols, 2)
    m = PatchCNNRegressor(**{**TINY, "max_epochs": 200, "patience": 2}, random_state=0)
    m.fit(X, y)
    assert all(e < 200 for e in m.best_epochs_)  # stopped early


def test_predictive_distribution_by_hand(
    fitted: PatchCNNRegressor, scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    reader, rows, cols, _ = scene
    X = read_patches(reader, rows[:5], cols[:5], 2)
    members = fitted.predict_members(X)
    mean, sd = members.mean(axis=0), np.sqrt(members.var(axis=0) + fitted.oof_mse_)
    d = fitted.predict_distribution(X, alpha=0.1, thresholds=np.r_[mean[:4], np.nan])
    np.testing.assert_allclose(d.prediction, mean)
    np.testing.assert_allclose(d.upper - mean, 1.6448536 * sd, rtol=1e-6)
    np.testing.assert_allclose(mean - d.lower, 1.6448536 * sd, rtol=1e-6)
    assert d.exceedance is not None
    np.testing.assert_allclose(d.exceedance[:4], 0.5, atol=1e-6)
    assert np.isnan(d.exceedance[4])
    g = fitted.predict_distribution(read_halo(reader, 0, 0, 4, 5, 2), grid=True, thresholds=10)
    assert g.lower is not None and g.prediction.shape == g.lower.shape == (4, 5)
    assert g.exceedance is not None and g.exceedance.shape == (4, 5)


def test_a_pickled_model_predicts_the_same(
    fitted: PatchCNNRegressor, scene: tuple[ArrayReader, np.ndarray, np.ndarray, np.ndarray]
) -> None:
    reader, rows, cols, _ = scene
    X = read_patches(reader, rows, cols, 2)
    state = fitted.__getstate__()
    assert isinstance(state["nets_"][0]["tensors"]["head.weight"], np.ndarray)
    back = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(back.predict_members(X), fitted.predict_members(X))


def test_config_checks_name_the_key() -> None:
    check_params({"patch": 3, "channels": 16, "augment": "none"}, "model.params")
    with pytest.raises(ConfigError, match=r"^model\.params\.chanels: .*did you mean 'channels'"):
        check_params({"chanels": 16}, "model.params")
    with pytest.raises(
        ConfigError, match=r"^model\.params\.depth: depth 4 is more than the half-width 3"
    ):
        check_params({"depth": 4}, "model.params")
    with pytest.raises(ConfigError, match=r"^model\.params\.augment: 'rotate' is invalid"):
        check_params({"augment": "rotate"}, "model.params")
    with pytest.raises(ConfigError, match=r"^model\.params\.random_state: .*validation\.seed"):
        check_params({"random_state": 1}, "model.params")
    with pytest.raises(ConfigError, match=r"^model\.params\.ensemble: 0 is invalid"):
        check_params({"ensemble": 0}, "model.params")
    m = build({"patch": 2, "direction_features": ["aspect"]}, random_state=7)
    assert m.direction_features == ("aspect",) and m.random_state == 7 and m.patch == 2

"""One feature path: the features a model is trained on are the features it maps with.

At every sample of the demo scene, the feature vector of the training table equals, bit
for bit, the feature vector of the pixel under it on the prediction path (windows of
any size, read by several threads) and in the lazy cube of ``build_cube``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from geohm.config import load_config
from geohm.io.rasters import read_block
from geohm.pipeline import build_cube, needs_coordinates, sample_points, window_source
from geohm.predict import iter_windows
from geohm.synth import make_demo


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo(tmp_path_factory.mktemp("demo"), seed=0).scene


@pytest.mark.parametrize("tile", [512, 100, 37])
def test_training_features_equal_the_map_pixels(demo_scene: Path, tile: int) -> None:
    cfg = load_config(demo_scene, output_dir=demo_scene.parent / "out")
    inputs, cube, features = build_cube(cfg, cfg.features, coordinates=needs_coordinates(cfg))
    table, _ = sample_points(cfg, inputs, cube)
    assert len(table.X) > 30 and list(table.X.columns) == features
    # The demo's DEM and covariate are warped onto the Landsat grid: the hard case.
    assert "elevation" in features and "slope" in features and "dist_source" in features
    inv = ~inputs.grid.transform
    cols = np.floor([(inv * tuple(p))[0] for p in table.xy]).astype(int)
    rows = np.floor([(inv * tuple(p))[1] for p in table.xy]).astype(int)
    height, width = inputs.grid.shape
    mapped = np.full((len(rows), len(features)), np.nan, dtype=np.float32)
    with window_source(inputs, features) as source:
        windows = list(iter_windows(height, width, tile))
        with ThreadPoolExecutor(2) as pool:
            blocks = pool.map(lambda w: (w, source.read(*w)), windows)
            for (r, c, h, w), block in blocks:
                inside = (rows >= r) & (rows < r + h) & (cols >= c) & (cols < c + w)
                for k in np.flatnonzero(inside):
                    mapped[k] = block[:, rows[k] - r, cols[k] - c]
    trained = table.X.to_numpy(dtype=np.float32)
    assert trained.dtype == mapped.dtype
    assert np.array_equal(trained.view(np.uint32), mapped.view(np.uint32))
    lazy = read_block(cube)[:, rows, cols].T
    assert np.array_equal(trained.view(np.uint32), lazy.view(np.uint32))

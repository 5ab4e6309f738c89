"""Where to sample next (geohm.sampledesign) and the files of the suggestions."""

from __future__ import annotations

import doctest
import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from pyproj import Transformer

from geohm import sampledesign
from geohm.io.zones import write_next_samples
from geohm.sampledesign import NextSamples, suggest_samples

# 30 m pixels in UTM 33N; x = 500000 m is the central meridian (15 deg E).
T = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 5000000.0)


def _scene(seed: int = 0, h: int = 40, w: int = 50):
    """P(C > S), interval width (mg/kg) and DI on an h x w map, with invalid pixels."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    z = (xx - w / 2) / 6 + np.sin(yy / 5) + rng.normal(0, 0.3, (h, w))
    p = 1 / (1 + np.exp(-z))
    width = 10 + 5 * np.cos(xx / 7) + rng.uniform(0, 2, (h, w))
    di = rng.uniform(0.1, 1.5, (h, w))
    p[rng.random((h, w)) < 0.1] = np.nan
    width[5:9, 30:36] = np.nan
    p[0, :4] = 1.0  # certain pixels: score 0
    return p, width, di


def _reference(p, width, di, *, n, spacing, existing=None):
    """Brute-force greedy pick over every pixel: the definition, loop by loop."""
    ok = np.isfinite(p) & np.isfinite(width) & np.isfinite(di)
    top = width[ok].max()
    rows, cols = np.nonzero(ok)
    score = (1 - 2 * np.abs(p[ok] - 0.5)) * width[ok] * di[ok] / top
    order = sorted(range(len(score)), key=lambda k: (-score[k], rows[k], cols[k]))
    picked: list[tuple[float, float, int, int]] = []
    others = [] if existing is None else [tuple(e) for e in existing]
    for k in order:
        if score[k] <= 0:
            break
        x, y = T * (cols[k] + 0.5, rows[k] + 0.5)
        near = [(a, b) for a, b, *_ in picked] + others
        if all(np.hypot(x - a, y - b) >= spacing for a, b in near):
            picked.append((x, y, int(rows[k]), int(cols[k])))
        if len(picked) == n:
            break
    return picked


def test_doctests() -> None:
    assert doctest.testmod(sampledesign, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_points_keep_their_spacing_and_lie_on_valid_pixels() -> None:
    p, width, di = _scene()
    existing = np.array([[500600.0, 4999400.0], [501200.0, 4999000.0], [500100.0, 4998900.0]])
    design = suggest_samples(
        p, width, di, transform=T, n=15, min_spacing_m=200.0, existing_xy=existing
    )
    pts = design.points
    assert len(pts) == 15 and design.exact
    xy = pts[["x", "y"]].to_numpy()
    gaps = [np.hypot(*(a - b)) for a, b in itertools.combinations(xy, 2)]
    assert min(gaps) >= 200.0
    to_samples = np.hypot(
        xy[:, None, 0] - existing[None, :, 0], xy[:, None, 1] - existing[None, :, 1]
    )
    assert to_samples.min() >= 200.0
    assert pts["nearest_sample_m"].to_numpy() == pytest.approx(to_samples.min(axis=1))
    r, c = pts["row"].to_numpy(), pts["col"].to_numpy()
    assert np.isfinite(p[r, c]).all() and np.isfinite(width[r, c]).all()
    assert (p[r, c] > 0).all() and (p[r, c] < 1).all()  # score 0 never suggested
    # x, y are the pixel centres
    cx, cy = T * (c + 0.5, r + 0.5)
    assert np.array_equal(pts["x"], cx) and np.array_equal(pts["y"], cy)
    assert pts["rank"].tolist() == list(range(1, 16))
    assert (np.diff(pts["score"]) <= 0).all()


def test_greedy_pick_equals_the_brute_force_definition() -> None:
    p, width, di = _scene(seed=1)
    existing = np.array([[500700.0, 4999300.0]])
    ref = _reference(p, width, di, n=12, spacing=150.0, existing=existing)
    design = suggest_samples(
        p, width, di, transform=T, n=12, min_spacing_m=150.0, existing_xy=existing
    )
    got = list(zip(design.points["row"], design.points["col"], strict=True))
    assert got == [(r, c) for _, _, r, c in ref]


def test_the_highest_score_pixel_is_first_and_components_multiply() -> None:
    p, width, di = _scene(seed=2)
    ok = np.isfinite(p) & np.isfinite(width) & np.isfinite(di)
    score = np.where(ok, (1 - 2 * np.abs(p - 0.5)) * width * di, -1.0)
    best = np.unravel_index(np.argmax(score), score.shape)
    pts = suggest_samples(p, width, di, transform=T, n=5, min_spacing_m=100.0).points
    assert (pts.loc[0, "row"], pts.loc[0, "col"]) == best
    assert pts["score"].to_numpy() == pytest.approx(
        (pts["closeness"] * pts["width_share"] * pts["di"]).to_numpy()
    )
    assert pts["width_share"].to_numpy() == pytest.approx(
        pts["interval_width"].to_numpy() / np.nanmax(np.where(ok, width, np.nan))
    )
    r, c = pts["row"].to_numpy(), pts["col"].to_numpy()
    assert pts["closeness"].to_numpy() == pytest.approx(1 - 2 * np.abs(p[r, c] - 0.5))
    assert pts["probability"].to_numpy() == pytest.approx(p[r, c])


def test_ties_are_broken_by_position() -> None:
    p = np.full((3, 4), 0.5)
    width = np.ones((3, 4))
    pts = suggest_samples(p, width, transform=T, n=3, min_spacing_m=0.0).points
    assert list(zip(pts["row"], pts["col"], strict=True)) == [(0, 0), (0, 1), (0, 2)]
    assert pts["di"].tolist() == [1.0, 1.0, 1.0]  # no DI: 1


@pytest.mark.parametrize(("tile", "pool"), [(7, 400), (13, 2000), (50, 10**6)])
def test_windows_in_any_order_give_the_whole_map_result(tile: int, pool: int) -> None:
    p, width, di = _scene(seed=4)
    whole = suggest_samples(p, width, di, transform=T, n=10, min_spacing_m=120.0).points
    windows = [(r, c) for r, c in itertools.product(range(0, 40, tile), range(0, 50, tile))]
    for order in (windows, windows[::-1]):
        ns = NextSamples(T, n=10, min_spacing_m=120.0, pool_size=pool)
        for r, c in order:
            sl = np.s_[r : r + tile, c : c + tile]
            ns.update(r, c, p[sl], width[sl], di[sl])
        design = ns.select()
        assert design.exact
        pd.testing.assert_frame_equal(design.points, whole)


def test_a_pool_that_runs_out_says_so() -> None:
    p, width, di = _scene(seed=5)
    ns = NextSamples(T, n=20, min_spacing_m=300.0, pool_size=25)
    for r in range(0, 40, 10):
        ns.update(r, 0, p[r : r + 10], width[r : r + 10], di[r : r + 10])
    design = ns.select()
    assert len(design.points) < 20 and not design.exact
    assert "raise pool_size" in design.notes[0]
    # with the whole map as pool, the same call is exact
    full = suggest_samples(p, width, di, transform=T, n=20, min_spacing_m=300.0)
    assert full.exact and design.candidates == full.candidates


def test_nothing_uncertain_gives_no_points() -> None:
    p = np.array([[0.0, 1.0], [np.nan, 1.0]])
    design = suggest_samples(p, np.ones((2, 2)), transform=T, n=3, min_spacing_m=10.0)
    assert design.points.empty and design.exact and design.candidates == 0
    assert "no mapped pixel has a positive score" in design.notes[0]


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="n must be"):
        NextSamples(T, n=0)
    ns = NextSamples(T)
    with pytest.raises(ValueError, match="shapes differ"):
        ns.update(0, 0, np.ones((2, 2)) * 0.5, np.ones((2, 3)))
    with pytest.raises(ValueError, match=">= 0"):
        ns.update(0, 0, np.ones((2, 2)) * 0.5, -np.ones((2, 2)))


def test_next_samples_files_round_trip(tmp_path) -> None:
    p, width, di = _scene(seed=6)
    pts = suggest_samples(p, width, di, transform=T, n=4, min_spacing_m=200.0).points.copy()
    # a known point: on the central meridian of UTM 33N at the equator -> 15 E, 0 N
    pts.loc[0, ["x", "y"]] = [500000.0, 0.0]
    gpkg, csv = write_next_samples(pts, crs="EPSG:32633", folder=tmp_path / "out")
    assert gpkg.name == "next_samples.gpkg" and csv.name == "next_samples.csv"
    table = pd.read_csv(csv)
    assert list(table.columns[:5]) == ["rank", "lon", "lat", "x", "y"]
    assert table.loc[0, ["lon", "lat"]].tolist() == pytest.approx([15.0, 0.0], abs=1e-9)
    lon, lat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(
        pts["x"].to_numpy(), pts["y"].to_numpy()
    )
    assert table["lon"].to_numpy() == pytest.approx(lon, abs=1e-9)
    assert table["lat"].to_numpy() == pytest.approx(lat, abs=1e-9)
    assert table["score"].to_numpy() == pytest.approx(pts["score"].to_numpy())
    back = gpd.read_file(gpkg, engine="pyogrio")
    assert back.crs.to_epsg() == 32633
    assert back.geometry.x.to_numpy() == pytest.approx(pts["x"].to_numpy())
    assert back.geometry.y.to_numpy() == pytest.approx(pts["y"].to_numpy())
    assert back["lat"].to_numpy() == pytest.approx(lat, abs=1e-9)
    assert back["rank"].tolist() == [1, 2, 3, 4]
    assert not [f for f in gpkg.parent.iterdir() if f.name.startswith(".")]

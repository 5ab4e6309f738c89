"""Monitoring-well series (issue 17 part 2): loader, splits, baselines, warning, LSTM, run."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geohm.errors import ConfigError, InputError
from geohm.io.series import read_series_table, read_tull
from geohm.models.lstm import LSTMForecaster, lstm_parameter_count
from geohm.series import load_series_config, parse_series_config, run_series
from geohm.series.baselines import climatology, persistence, seasonal_naive
from geohm.series.data import regularise, site_scaling, steps_since_last, windows
from geohm.series.forecast import forecast_split
from geohm.series.validate import (
    leave_sites_out_splits,
    metrics_by_horizon,
    rolling_origin_splits,
)
from geohm.series.warning import exceedance_probability, warning_levels
from geohm.synth.wells import synthetic_wells, write_synthetic_wells

TULL = Path("/usr/lib/R/site-library/gstat/data/tull.rda")

# -- the loader, with gaps


def _csv(tmp_path: Path, text: str, name: str = "wells.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GAPPY = """site,time,Cd,x,y
A,2020-01-10,1.0,10,20
A,2020-01-25,3.0,10,20
A,2020-04-02,4.0,10,20
A,2020-05-15,,10,20
A,2020-06-01,n.d.,10,20
A,2020-06-20,6.0,10,20
B,2020-02-03,2.0,30,40
B,2020-02-03,2.0,30,40
B,2020-03-09,5.0,30,40
"""


def test_loader_puts_gaps_on_the_grid_with_mask_and_time_since_last(tmp_path: Path) -> None:
    read = read_series_table(_csv(tmp_path, GAPPY), metals=["Cd"])
    # the empty cell and the text are left out of Cd, with the row and reason
    assert [(r["row"], r["reason"]) for r in read.left_out] == [
        (4, "no value"), (5, "not a number: 'n.d.'")
    ]
    assert read.sites.loc["B"].tolist() == [30.0, 40.0]
    panel = regularise(read.table, read.sites, metals=["Cd"], covariates=[], step="month",
                       season=12, min_observations=2)
    assert [str(p) for p in panel.periods] == ["2020-01", "2020-02", "2020-03", "2020-04",
                                               "2020-05", "2020-06"]
    a = panel.values[0, :, 0]
    # January's two samples averaged; Feb, Mar, May not sampled (NaN, masked)
    np.testing.assert_array_equal(np.isnan(a), [False, True, True, False, True, False])
    assert a[0] == 2.0 and a[3] == 4.0 and a[5] == 6.0
    assert panel.counts[0, 0, 0] == 2
    assert panel.mask[1].tolist() == [[False], [True], [True], [False], [False], [False]]
    # the exact duplicate row of B is listed, not counted twice
    assert any("duplicate" in r["reason"] and r["site"] == "B" for r in panel.left_out)
    assert panel.counts[1, 1, 0] == 1
    np.testing.assert_array_equal(
        steps_since_last(panel.mask[0, :, 0], cap=24), [0, 1, 2, 0, 1, 0]
    )


def test_short_series_are_left_out_with_the_reason(tmp_path: Path) -> None:
    read = read_series_table(_csv(tmp_path, GAPPY), metals=["Cd"])
    panel = regularise(read.table, read.sites, metals=["Cd"], covariates=[], step="month",
                       season=12, min_observations=3)
    assert panel.sites == ["A"]
    (row,) = [r for r in panel.left_out if r["site"] == "B" and r["metal"] == "Cd"]
    assert "too short a series: 2 observed month(s)" in row["reason"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("site,date,Cd,x,y\nA,2020-01-01,1,0,0\n", ["no column 'time'", "wells.csv"]),
        ("site,time,Cd,x,y\nA,2020-13-45,1,0,0\n", ["column 'time'", "data rows [1]",
                                                    "ISO 8601"]),
        ("site,time,Cd,x,y\nA,2020-01-01,1,0,0\nB,2020-01-01,1,,\n",
         ["site(s) B have no coordinates"]),
        ("site,time,Cd,x,y\nA,2020-01-01,-1,0,0\n", ["negative", "column 'Cd'"]),
        ("site,time,Cd,x,y\nA,2020-01-01,1,0,0\nA,2020-02-01,1,5,0\n",
         ["different coordinates"]),
    ],
)
def test_loader_errors_name_the_file_and_column(
    tmp_path: Path, text: str, words: list[str]
) -> None:
    with pytest.raises(InputError) as err:
        read_series_table(_csv(tmp_path, text), metals=["Cd"])
    for w in words:
        assert w in str(err.value)


def test_geopackage_table_takes_coordinates_and_crs_from_its_points(tmp_path: Path) -> None:
    gdf = gpd.GeoDataFrame(
        {"site": ["A", "A", "B"], "time": ["2020-01-01", "2020-02-01", "2020-01-05"],
         "Cd": [1.0, 2.0, 3.0]},
        geometry=gpd.points_from_xy([1.0, 1.0, 7.0], [2.0, 2.0, 9.0]), crs="EPSG:32633",
    )
    gdf.to_file(tmp_path / "w.gpkg", driver="GPKG")
    read = read_series_table(tmp_path / "w.gpkg", metals=["Cd"])
    assert read.sites.loc["B"].tolist() == [7.0, 9.0]
    assert "32633" in read.crs
    assert read.table["Cd"].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.skipif(not TULL.is_file(), reason="Debian r-cran-gstat's tull.rda not installed")
def test_tull_loads_from_gstat() -> None:
    read = read_tull(TULL)
    # gstat's tull: 36 wells, 746 chloride samples, 1992-01-16 .. 1997-03-25 (local days)
    assert len(read.sites) == 36 and len(read.table) == 746
    assert str(read.table["time"].min().date()) == "1992-01-16"
    assert read.table.groupby("site").size().max() == 42
    assert read.crs is None
    s411 = read.table[read.table.site == "S411"]
    assert s411["chloride"].iloc[0] == 22.5  # Chlorid92 row 3 (1992-01-21)


# -- splits never train on the future


def test_rolling_origin_windows_never_hold_a_value_after_the_cutoff() -> None:
    table, _ = synthetic_wells(n_sites=4, n_months=36, seed=1)
    sites = table.groupby("site")[["x", "y"]].first()
    panel = regularise(table, sites, metals=["Cd"], covariates=["rainfall"], step="month",
                       season=12, min_observations=6)
    splits = rolling_origin_splits(36, 4, horizon=3, origins=3, stride=3, min_train=15)
    assert [s.cutoff for s in splits] == [26, 29, 32]
    for sp in splits:
        sc = site_scaling(panel, 0, cutoff=sp.cutoff, train_sites=sp.train_sites)
        w = windows(panel, 0, sc, sites=sp.train_sites, cutoff=sp.cutoff, lags=6, horizon=3)
        seen = np.isfinite(w.y)
        assert w.target_step[seen].max() <= sp.cutoff  # targets: never after the cutoff
        assert w.origin.max() < sp.cutoff
        # inputs end at the origin: changing every value after the cutoff changes nothing
        changed = panel.values.copy()
        changed[:, sp.cutoff + 1 :] += 100.0
        other = type(panel)(**{**panel.__dict__, "values": changed})
        w2 = windows(other, 0, site_scaling(other, 0, cutoff=sp.cutoff,
                                            train_sites=sp.train_sites),
                     sites=sp.train_sites, cutoff=sp.cutoff, lags=6, horizon=3)
        np.testing.assert_array_equal(w.X, w2.X)
        np.testing.assert_array_equal(w.y, w2.y)


def test_leave_sites_out_folds_partition_the_sites() -> None:
    splits = leave_sites_out_splits(10, cutoff=20, folds=3, seed=0)
    tested = np.concatenate([s.test_sites for s in splits])
    assert sorted(tested.tolist()) == list(range(10))
    for s in splits:
        assert not set(s.train_sites) & set(s.test_sites)
        assert s.cutoff == 20
    assert leave_sites_out_splits(10, cutoff=20, folds=3, seed=0)[0].test_sites.tolist() == (
        splits[0].test_sites.tolist()
    )


# -- baselines by hand


def test_baselines_by_hand_on_a_tiny_series() -> None:
    # quarterly, season 4: steps 0..8, origin 7; NaN at 5 and 8
    v = np.array([10.0, 20.0, 30.0, 40.0, 12.0, np.nan, 32.0, 44.0, np.nan])
    pos = np.arange(12) % 4
    np.testing.assert_array_equal(persistence(v, 7, 3), [44.0, 44.0, 44.0])
    np.testing.assert_array_equal(persistence(v, 5, 2), [12.0, 12.0])
    # targets 8, 9, 10 -> one season back 4, 5, 6; step 5 is a gap -> step 1
    f, fb = seasonal_naive(v, 7, 3, 4)
    np.testing.assert_array_equal(f, [12.0, 20.0, 32.0])
    assert fb == 0
    f, fb = seasonal_naive(v, 1, 2, 4)  # nothing a season before: persistence, counted
    np.testing.assert_array_equal(f, [20.0, 20.0])
    assert fb == 2
    # climatology: target 8 (pos 0) mean(10, 12) = 11, 9 (pos 1) mean(20) = 20,
    # 10 (pos 2) mean(30, 32) = 31
    np.testing.assert_array_equal(climatology(v, pos, 7, 3), [11.0, 20.0, 31.0])


def test_metrics_by_horizon_by_hand() -> None:
    truth = np.array([[1.0, 2.0], [3.0, np.nan]])
    m = metrics_by_horizon(truth, {"persistence": np.array([[2.0, 2.0], [2.0, 2.0]]),
                                   "x": np.array([[1.0, 3.0], [4.0, 0.0]])})
    x = m[m.model == "x"].set_index("horizon")
    assert x.loc[1, "rmse"] == pytest.approx(np.sqrt(0.5))
    assert x.loc[1, "skill"] == pytest.approx(1 - np.sqrt(0.5) / 1.0)
    assert x.loc[2, "n"] == 1 and x.loc[2, "mae"] == 1.0


# -- warning


def test_warning_probability_on_a_series_crossing_the_threshold() -> None:
    # a member's forecast rises through the limit 10: 8, 10, 12 (sd 1); another far below
    mean = np.array([[[8.0, 10.0, 12.0], [1.0, 1.0, 1.0]]])
    sd = np.ones_like(mean)
    p_step, p_within = exceedance_probability(mean, sd, 10.0)
    np.testing.assert_allclose(p_step[0], [0.02275, 0.5, 0.97725], atol=1e-5)
    assert p_within[0] == pytest.approx(0.97725, abs=1e-5)
    assert p_within[1] < 1e-10
    # two members: the mixture averages them
    two = np.concatenate([mean, mean - 4.0])
    _, p2 = exceedance_probability(two, np.ones_like(two), 10.0)
    assert p2[0] == pytest.approx((0.97725 + 0.02275) / 2, abs=1e-5)
    assert warning_levels(np.array([0.0, 0.3, 0.98]), (0.1, 0.5)).tolist() == [
        "low", "medium", "high"
    ]


def test_lstm_forecast_of_a_series_crossing_the_threshold_warns() -> None:
    # three wells rising through the limit 5 (2 -> 7.9 over 60 months), three flat at 1
    rng = np.random.default_rng(0)
    t = np.arange(60)
    rows = []
    for i in range(6):
        c = (2.0 + 0.1 * t if i < 3 else np.ones(60)) + rng.normal(0, 0.1, 60)
        start = pd.Timestamp("2015-01-15")
        rows += [{"site": f"S{i}", "time": start + pd.DateOffset(months=int(k)), "Cd": c[k]}
                 for k in t]
    table = pd.DataFrame(rows)
    sites = pd.DataFrame({"x": np.arange(6.0), "y": np.zeros(6)}, index=[f"S{i}" for i in range(6)])
    panel = regularise(table, sites, metals=["Cd"], covariates=[], step="month", season=12,
                       min_observations=12)
    f = forecast_split(panel, 0, cutoff=59, train_sites=np.arange(6), test_sites=np.arange(6),
                       lags=6, horizon=2, lstm_params={"n_members": 2, "max_epochs": 40},
                       ridge_alpha=1.0, seed=0)
    _, p = exceedance_probability(f.lstm_member_mean, f.lstm_member_std, 5.0)
    assert (p[:3] > 0.9).all() and (p[3:] < 0.01).all()
    assert warning_levels(p, (0.1, 0.5)).tolist() == ["high"] * 3 + ["low"] * 3


# -- the LSTM


def test_lstm_shapes_parameter_count_and_seed() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5, 3))
    s = rng.normal(size=(40, 2))
    y = X[:, -1, :1] + np.array([0.0, 0.5, 1.0, 1.5])  # H = 4
    y[::3, 2] = np.nan  # unobserved targets are left out of the loss
    f = LSTMForecaster(hidden_size=8, n_members=3, max_epochs=4, random_state=7)
    assert f.fit(X, y, static=s) is f
    mu, sd = f.predict_members(X, static=s)
    assert mu.shape == sd.shape == (3, 40, 4) and (sd > 0).all()
    assert f.predict(X, static=s).shape == (40, 4)
    assert f.loss_curve_.shape == (3, 4)
    # 4*8*(3+8+1) + (8+2)*8 + 8 + 2*4*(8+1) = 384 + 88 + 72
    assert f.n_parameters() == lstm_parameter_count(3, 2, 4, 8) == 544
    g = LSTMForecaster(hidden_size=8, n_members=3, max_epochs=4, random_state=7).fit(
        X, y, static=s
    )
    np.testing.assert_array_equal(g.predict(X, static=s), f.predict(X, static=s))
    h = LSTMForecaster(hidden_size=8, n_members=3, max_epochs=4, random_state=8).fit(
        X, y, static=s
    )
    assert not np.array_equal(h.predict(X, static=s), f.predict(X, static=s))
    with pytest.raises(ValueError, match="fit saw"):
        f.predict(X[:, :4], static=s)
    assert f.get_params()["device"] == "cpu"


# -- config and the whole run


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    base = {"name": "x", "data": {"path": "w.csv", "metals": ["Cd"]},
            "warning": {"thresholds": {"Cd": 5}}, "output": {"dir": "out"}}
    assert parse_series_config(base).horizon == 3
    with pytest.raises(ConfigError, match="unknown key 'lstm.hiden'; did you mean 'hidden'"):
        parse_series_config({**base, "lstm": {"hiden": 4}})
    with pytest.raises(ConfigError, match="key 'horizon'"):
        parse_series_config({**base, "horizon": 0})
    with pytest.raises(ConfigError, match="no limit for \\['Pb'\\]"):
        parse_series_config({**base, "data": {"path": "w.csv", "metals": ["Cd", "Pb"]}})
    with pytest.raises(ConfigError, match="missing required key 'warning'"):
        parse_series_config({k: v for k, v in base.items() if k != "warning"})


def test_synthetic_run_writes_every_output(tmp_path: Path) -> None:
    cfg_path = write_synthetic_wells(tmp_path, n_sites=6, n_months=48, epochs=3, members=2)
    text = cfg_path.read_text().replace("min_observations: 24", "min_observations: 12")
    text = text.replace("lags: 12", "lags: 6").replace("origins: 4", "origins: 2")
    cfg_path.write_text(text.replace("site_folds: 4", "site_folds: 2"))
    seen: list[str] = []
    r = run_series(cfg_path, tmp_path / "out", progress=lambda s, i, n: seen.append(s))
    out = tmp_path / "out"
    for name in ("series_warning.gpkg", "report.md", "report.json", "manifest.json",
                 "series_metrics.csv", "series_forecast.csv"):
        assert (out / name).is_file(), name
    assert len(list((out / "series").glob("W*.png"))) == 6
    layer = gpd.read_file(out / "series_warning.gpkg")
    assert len(layer) == 6 and set(layer["level"]) <= {"low", "medium", "high"}
    assert "32633" in layer.crs.to_string()
    m = r.metrics
    assert set(m["model"]) == {"lstm", "ridge", "persistence", "seasonal_naive", "climatology"}
    assert set(m["scheme"]) == {"rolling_origin", "leave_sites_out"}
    pers = m[m.model == "persistence"]
    assert (pers["skill"] == 0.0).all()
    report = json.loads((out / "report.json").read_text())
    assert report["metals"]["Cd"]["splits"][0]["scheme"] == "rolling_origin"
    assert "| lstm |" in (out / "report.md").read_text()
    assert "validate Cd" in seen and "figures" in seen


@pytest.mark.skipif(not TULL.is_file(), reason="Debian r-cran-gstat's tull.rda not installed")
def test_tull_run_loads_validates_and_reports(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    cfg = load_series_config(root / "scenes" / "series_tull.yaml")
    assert cfg.data.path == TULL
    text = (root / "scenes" / "series_tull.yaml").read_text()
    text = text.replace("members: 5, epochs: 100", "members: 2, epochs: 2")
    text = text.replace("origins: 4", "origins: 1").replace("site_folds: 4", "site_folds: 2")
    p = tmp_path / "tull.yaml"
    p.write_text(text.replace("{dir: ../out/series_tull}", "{dir: o, plots: false}"))
    r = run_series(p, tmp_path / "out")
    # S5321 has one sample, the S5319/20/22/23 wells three: too short, listed
    left = {x["site"] for x in r.report["left_out"] if x.get("metal") == "chloride"}
    assert {"S5319", "S5320", "S5321", "S5322", "S5323"} <= left
    assert len(r.panel.sites) == 36 - len(left)
    assert r.report["data"]["first"] == "1992Q1" and r.report["data"]["last"] == "1997Q1"
    assert (tmp_path / "out" / "series_warning.gpkg").is_file()
    assert gpd.read_file(tmp_path / "out" / "series_warning.gpkg").crs is None
    assert set(pd.unique(r.metrics["model"])) >= {"lstm", "persistence"}

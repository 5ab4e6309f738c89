"""report.md's trust sections (AOA, drivers, area above the standard, next samples) and
the drivers figure, from hand-made report.json content."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from geohm.report import drivers_figure, render_markdown


def _importance(n: int = 12) -> dict[str, Any]:
    """``n`` factors f1..fn, f1 most important: mean 2 n - 2 (rank - 1) ... , sd 0.5."""
    return {
        "metric": "increase of the RMSE ...",
        "unit": "mg/kg",
        "n_repeats": 5,
        "folds": [{"fold": k, "n_test": 8, "baseline_rmse": 10.0} for k in range(4)],
        "skipped": [],
        "n_unused": 0,
        "folds_kind": "spatial blocks",
        "factors": [
            {"factor": f"f{r}", "rank": r, "mean": 2.0 * (n - r) + 0.25, "sd": 0.5, "per_fold": []}
            for r in range(1, n + 1)
        ],
    }


def _curve(factor: str, rank: int) -> dict[str, Any]:
    return {
        "factor": factor,
        "rank": rank,
        "importance": 1.0,
        "grid": [0.0, 0.5, 1.0],
        "average": [10.0, 20.0, 25.0],
    }


def _zone(zone: Any, mapped: float, expected: float) -> dict[str, Any]:
    return {
        "zone": zone,
        "area_ha": mapped,
        "mapped_ha": mapped,
        "expected_ha": expected,
        "certain_ha": expected / 2,
        "possible_ha": expected * 2,
        "expected_share": expected / mapped,
        "certain_share": expected / mapped / 2,
        "possible_share": expected / mapped * 2,
    }


def _report() -> dict[str, Any]:
    cu = {
        "model": "rf",
        "cv_spatial": {"n": 40, "rmse": 5.0},
        "map_stats": {"min": 1.0, "max": 9.0, "mean": 4.0, "std": 1.0, "pixels": 10000},
        "uncertainty": {"method": "qrf", "nominal": 0.9, "test": {"coverage": 0.9, "n": 10}},
        "importance": _importance(),
        "partial_dependence": [
            _curve("f1", 1),
            {"factor": "rock", "rank": 2, "importance": 3.0, "skipped": "categorical factor"},
            _curve("f3", 3),
            _curve("f4", 4),
        ],
        "drivers_figure": "Cu_drivers.png",
        "applicability": {
            "method": "Meyer & Pebesma (2021)",
            "factors": ["f1", "f2"],
            "weights": {"f1": 1.0, "f2": 0.5},
            "folds": "spatial blocks",
            "mean_distance": 2.5,
            "threshold": 0.4123,
            "train_di_max": 0.6,
            "train_inside_share": 0.95,
            "samples_left_out": [{"row": 3, "reason": "a factor is missing (NaN) at this sample"}],
            "constant_factors": ["f9"],
            "notes": ["no factor's importance was above 0: the factors are weighted equally"],
            "error_profile": {
                "di": [0.0, 0.2, 1.3],
                "abs_error_mg_kg": [4.2, 6.0, 11.5],
                "n_used": 40,
            },
        },
        "aoa_map": {
            "di_file": "Cu_di.tif",
            "aoa_file": "Cu_aoa.tif",
            "share_inside": 0.93,
            "pixels_inside": 9300,
            "pixels_outside": 700,
        },
    }
    pb = {
        "model": "rf",
        "skipped": [
            "permutation importance and area of applicability: no cross-validation folds "
            "(too few samples or locations)"
        ],
    }
    zones = [_zone(f"P{k:02d}", 100.0, 1.0 + k) for k in range(1, 33)]  # 32 zones
    cu_areas = {
        "pixel_area_m2": 900.0,
        "scene": _zone(None, 90.0, 12.5),
        "outside_zones": _zone(None, 5.0, 0.5),
        "zones": zones,
    }
    pb_areas = {
        "pixel_area_m2": 900.0,
        "scene": {**_zone(None, 90.0, 3.0), "certain_ha": None, "certain_share": None},
        "outside_zones": _zone(None, 5.0, 0.5),
        "zones": [_zone("P01", 100.0, 2.0)],
    }
    points = [
        {
            "rank": r,
            "x": 512345.4 + 300 * r,
            "y": 4123456.6,
            "lon": 112.1234567,
            "lat": 23.1234567,
            "score": 1.0 / r,
            "closeness": 0.9,
            "width_share": 0.8,
            "di": 1.25,
            "probability": 0.45,
            "nearest_sample_m": 150.25,
        }
        for r in range(1, 13)
    ]
    return {
        "name": "trust",
        "targets": {"Cu": cu, "Pb": pb},
        "risk": {
            "standard": "GB 15618-2018",
            "land_use": "other",
            "ph": 6.0,
            "screening_values_mg_kg": {"Cu": 100.0},
            "layers": {},
        },
        "zones": {
            "file": "zones.gpkg",
            "id": "parcel_id",
            "screening_mg_kg": {"Cu": 100.0, "Pb": "per pixel"},
            "metals": {"Cu": cu_areas, "Pb": pb_areas},
            "zones_outside_grid": ["Z9", "Z10"],
        },
        "next_samples": {
            "files": ["next_samples.gpkg", "next_samples.csv"],
            "target": "Cu",
            "n": 20,
            "min_spacing_m": 300.0,
            "points": points[:10],
            "notes": ["only 12 pixels have a positive score: 12 points, not 20"],
            "exact": True,
        },
    }


def test_trust_sections_give_the_report_numbers() -> None:
    md = render_markdown(_report())
    # the order: maps and uncertainty, then trust and drivers, ..., risk, zones, next samples
    heads = [
        "## Maps",
        "## Uncertainty",
        "## Where the map can be trusted",
        "## What drives the model",
        "## Risk",
        "## Area above the screening value",
        "## Where to sample next",
        "## Not computed",
    ]
    assert [md.index(h) for h in heads] == sorted(md.index(h) for h in heads)

    # area of applicability
    assert (
        "**Cu**: 93.0% of the 10000 mapped pixels inside the AOA; threshold DI 0.412 "
        "(folds: spatial blocks), 95.0% of the training samples inside. Expected |error| "
        "4.2 mg/kg at DI 0, 11.5 mg/kg at DI 1.3 (40 CV predictions)." in md
    )
    assert "- sample 3 left out: a factor is missing (NaN) at this sample" in md
    assert "- constant factors (no weight): f9" in md
    assert "- no factor's importance was above 0: the factors are weighted equally" in md

    # drivers: top 10 of 12, mean = 2 (12 - rank) + 0.25
    assert "**Cu**: 4 folds, spatial blocks, 5 shuffles each." in md
    assert "| rank | factor | RMSE increase (mg/kg) |" in md
    assert "| 1 | f1 | 22.2 ± 0.5 |" in md  # 22.25 to 3 significant digits
    assert "| 10 | f10 | 4.25 ± 0.5 |" in md
    assert "| 11 | f11 |" not in md
    assert "No partial-dependence curve for rock (categorical factor)." in md
    assert "![Cu drivers](Cu_drivers.png)" in md

    # areas above the screening value: scene, outside, 30 of 32 zones
    assert "Zones: `zones.gpkg` (id `parcel_id`)." in md
    assert "**Cu** (S: 100 mg/kg)" in md
    assert "| zone | mapped ha | expected ha | certain ha | possible ha | expected share |" in md
    assert "| **scene** | 90 | 12.5 | 6.25 | 25 | 13.9% |" in md
    assert "| outside the zones | 5 | 0.5 | 0.25 | 1 | 10.0% |" in md
    assert "| P01 | 100 | 2 | 1 | 4 | 2.0% |" in md
    assert "| P30 | 100 | 31 | 15.5 | 62 | 31.0% |" in md
    assert "| P31 |" not in md
    assert "2 more zones in `zones.gpkg`." in md
    assert "**Pb** (S: per pixel)" in md
    assert "| **scene** | 90 | 3 | - | 6 | 3.3% |" in md  # no lower bound: certain unknown
    assert "Zones outside the grid: Z9, Z10." in md

    # next samples: the 10 points given
    assert "`next_samples.gpkg`, `next_samples.csv`: 20 points for Cu" in md
    assert "at least 300 m from each other and from the samples." in md
    assert "Not exact" not in md
    assert (
        "| 1 | 512645 | 4123457 | 112.12346 | 23.123457 | 1 | 0.9 | 0.8 | 1.25 | 0.45 | 150 |" in md
    )
    assert "| 10 | 515345 | 4123457 | 112.12346 | 23.123457 | 0.1 | 0.9 |" in md
    assert "- only 12 pixels have a positive score: 12 points, not 20" in md

    # a skipped assessment is named
    assert "- Pb: permutation importance and area of applicability: no cross-validation" in md


@pytest.mark.parametrize(
    "target",
    [
        {"model": "rf"},
        {"model": "rf", "importance": {"factors": []}, "partial_dependence": []},
        {
            "model": "rf",
            "importance": {"factors": [{"factor": "a", "rank": 1, "mean": 1.0, "sd": 0.0}]},
        },
        {"model": "rf", "applicability": {"threshold": 0.5}},
        {"model": "rf", "applicability": {"error_profile": {"skipped": "too few samples"}}},
        {"model": "rf", "aoa_map": {"share_inside": 0.5}},
    ],
)
def test_missing_keys_render(target: dict[str, Any]) -> None:
    report = {
        "name": "old",
        "targets": {"Cu": target},
        "zones": {"metals": {"Cu": {"scene": {"mapped_ha": 9.0}}}},
        "next_samples": {"n": 0},
    }
    md = render_markdown(report)
    assert "| **scene** | 9 | - | - | - | - |" in md
    assert "## Where to sample next" in md
    if "applicability" in target:
        assert "## Where the map can be trusted" in md
        assert "threshold DI" in md
    if "skipped" in target.get("applicability", {}).get("error_profile", {}):
        assert "No error profile: too few samples." in md
    md = render_markdown({"name": "old", "targets": {"Cu": target}})
    assert "## Area above the screening value" not in md
    assert "## Where to sample next" not in md
    assert "## Not computed" not in md
    assert ("## What drives the model" in md) == bool(target.get("importance", {}).get("factors"))


def test_drivers_figure_has_ten_bars_and_a_panel_per_curve() -> None:
    target = _report()["targets"]["Cu"]
    fig = drivers_figure(target, title="Cu drivers")
    FigureCanvasAgg(fig).draw()
    bars, *panels = fig.axes
    assert len(panels) == 3  # f1, f3, f4: the categorical factor has no curve
    assert [p.get_xlabel() for p in panels] == ["f1", "f3", "f4"]
    assert len(bars.patches) == 10
    # most important on top: bar length follows the y position
    by_height = sorted(bars.patches, key=lambda p: -p.get_y())
    assert [round(p.get_width(), 2) for p in by_height] == [
        2.0 * (12 - r) + 0.25 for r in range(1, 11)
    ]
    top_label = max(zip(bars.get_yticks(), bars.get_yticklabels(), strict=True), key=lambda t: t[0])
    assert top_label[1].get_text() == "f1"

    six = {**target, "partial_dependence": [_curve(f"f{r}", r) for r in range(1, 7)]}
    assert len(drivers_figure(six, title="t").axes) == 1 + 4  # at most 4 curves
    only_bars = drivers_figure({**target, "partial_dependence": []}, title="t")
    assert len(only_bars.axes) == 1


def test_drivers_figure_is_none_without_importance() -> None:
    assert drivers_figure({"model": "rf"}, title="t") is None
    assert drivers_figure({"importance": {"factors": []}}, title="t") is None
    assert (
        drivers_figure({"importance": None, "partial_dependence": [_curve("a", 1)]}, title="t")
        is None
    )

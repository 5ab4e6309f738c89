from pathlib import Path

import pytest

from geohm.config import load_config, parse_config
from geohm.errors import ConfigError, InputError

BASE = {"name": "x", "landsat": "scene", "samples": {"path": "s.gpkg"}}


def test_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    cfg_file = tmp_path / "sub" / "scene.yaml"
    cfg_file.parent.mkdir()
    cfg_file.write_text(
        "name: a\nlandsat: ../data/L8\nsamples: {path: s.gpkg}\n"
        "covariates: {d: d.tif, r: {path: r.tif, categorical: true}}\n"
    )
    cfg = load_config(cfg_file)
    assert cfg.landsat == (tmp_path / "data" / "L8").resolve()
    assert cfg.samples.path == (tmp_path / "sub" / "s.gpkg").resolve()
    assert cfg.covariates["r"].categorical and not cfg.covariates["d"].categorical
    assert cfg.covariates["d"].path == (tmp_path / "sub" / "d.tif").resolve()
    assert cfg.output.tile is None and cfg.output.workers == 0 and cfg.model.name == "rf"
    cfg2 = load_config(cfg_file, output_dir=tmp_path / "o")
    assert cfg2.output.dir == (tmp_path / "o").resolve()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"modle": {"name": "rf"}}, "unknown key 'modle'; did you mean 'model'?"),
        (
            {"samples": {"path": "s", "taregts": ["Cu"]}},
            "'samples.taregts'; did you mean 'targets'",
        ),
        ({"output": {"tiel": 256}}, "'output.tiel'; did you mean 'tile'"),
        ({"model": {"name": "svm"}}, "key 'model.name': unknown model 'svm'"),
        ({"samples": {"path": "s", "window": 2}}, "key 'samples.window': must be an odd"),
        ({"validation": {"test_fraction": 1.5}}, "key 'validation.test_fraction'"),
        ({"qa_mask": ["clouds"]}, "key 'qa_mask.0'"),
        ({"bands": {"red": "r.tif"}}, "either 'landsat'"),
        ({"landsat": None, "grid": "g.tif"}, "needs inputs"),
        ({"grid": "g.tif"}, "'grid:' is for scenes without imagery"),
        (
            {"covariates": {"r": {"path": "r.tif", "categoricl": True}}},
            "'covariates.r.categoricl'; did you mean 'categorical'",
        ),
    ],
)
def test_bad_keys_name_the_key(change: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({**BASE, **change}, source="scene.yaml")
    assert expected in str(err.value)
    assert str(err.value).startswith("scene.yaml: ")
    assert "\n" not in str(err.value)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match="missing required key 'name'"):
        parse_config({"landsat": "a", "samples": {"path": "s.gpkg"}})
    with pytest.raises(ConfigError, match="'tr-ga-bp' transfers from an earlier year"):
        parse_config({**BASE, "model": {"name": "tr-ga-bp"}})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)


def test_deposition_settings_that_only_work_together_are_checked_at_load() -> None:
    from geohm.errors import ConfigError

    base = {
        "name": "a",
        "covariates": {"d": "d.tif"},
        "risk": {"standard": "gb15618"},
    }
    for dep, key in (
        ({"stacks": "s.csv"}, "wind_rose"),
        ({"rasters": {"Cu": "d.tif"}, "scavenging": 1e-4}, "rain_fraction"),
    ):
        with pytest.raises(ConfigError, match=f"accumulation.deposition.*{key}"):
            parse_config({**base, "accumulation": {"deposition": dep}})

"""pyproject.toml and environment.yml must name the same packages; .ci/run must run the README."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name(s) where they differ.
CONDA_NAMES = {
    "torch": ["pytorch"],
    "dask[distributed]": ["dask", "distributed"],
    "PyYAML": ["pyyaml"],
    "types-PyYAML": ["types-pyyaml"],
}
CONDA_ONLY = {"python", "gdal"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ ;]", req, maxsplit=1)[0].strip()


def test_environment_yml_names_the_same_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = [
        _name(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]
    ]
    expected = set()
    for n in pip_names:
        expected.update(CONDA_NAMES.get(n, [n.lower()]))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d).lower() for d in env["dependencies"] if isinstance(d, str)} - CONDA_ONLY
    assert conda == expected


def test_ci_runs_the_readme_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, flags=re.S)
    setup = next(b for b in blocks if "pip install" in b).strip().splitlines()[-1]
    test = next(b for b in blocks if "pytest" in b and "pip" not in b).strip().splitlines()[-1]
    ci_lines = [ln.strip() for ln in ci.splitlines()]
    assert setup in ci_lines
    assert test in ci_lines
    assert "torch==2.13.0" in (ROOT / "pyproject.toml").read_text()


def test_scenes_demo_yaml_is_the_synthetic_case_config() -> None:
    from geohm.synth import demo_config_text

    text = (ROOT / "scenes" / "demo.yaml").read_text()
    body = "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))
    assert body.strip() == demo_config_text("../demo/data/", "../demo").strip()

"""The documentation site builds with warnings as errors, and its generated pages are whole.

One ``sphinx-build -W --keep-going -b html docs OUT`` per test session (a broken
reference, a bad docstring or a registry model without a page fails it); the pages are
then checked against the code they are generated from: the config reference against
``SceneConfig.model_fields`` (walked here independently of the docs extension), the
model pages against the model registry, the API page against ``geohm.__all__``. One fast
test (no build) checks that every key of the schema has a description with its unit.
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import geohm
from geohm.config import SceneConfig
from geohm.models.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

PAGES = [
    "index",
    "getting-started",
    "quickstart",
    "config",
    "outputs",
    "risk",
    "batch",
    "qgis",
    "api",
    "models/index",
    "science/uncertainty",
    "science/applicability",
    "science/accumulation",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _page(site: Path, name: str) -> str:
    return (site / f"{name}.html").read_text(encoding="utf-8")


def _blocks(annotation: Any, path: str) -> list[tuple[type[BaseModel], str]]:
    """Pydantic models inside a field's annotation, with their key path."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, path)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _blocks(args[0], path)
    if origin in (typing.Union, types.UnionType):
        return [b for a in args for b in _blocks(a, path)]
    if origin is list:
        return [b for a in args for b in _blocks(a, f"{path}[]")]
    if origin is dict:
        return _blocks(args[1], f"{path}.<name>")
    return []


def _schema_fields() -> dict[str, Any]:
    """Every key of the scene schema -> its pydantic FieldInfo (first path of each block)."""
    fields: dict[str, Any] = {}
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[type[BaseModel], str]] = [(SceneConfig, "")]
    while queue:
        model, prefix = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            fields[key] = info
            queue.extend(b for b in _blocks(info.annotation, key) if b[0] not in seen)
    return fields


def _numeric(annotation: Any) -> bool:
    """Whether a value of ``annotation`` holds a number (int or float, not bool).

    Unions, lists and dict *values* are looked into (``dict[str, float]`` is numeric,
    ``dict[int, str]``, a raster code -> name table, is not); nested blocks are not (their
    own keys are checked).
    """
    if annotation in (int, float):
        return True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _numeric(args[0])
    if origin is dict:
        return _numeric(args[1])
    if origin in (typing.Union, types.UnionType, list, tuple, set):
        return any(_numeric(a) for a in args)
    return False


#: The units a description may give, as the start of a parenthesised group:
#: ``(mg/kg)``, ``(m, in the stacks' crs)``, ``(kg/ha/yr, dry)``. ``-`` is dimensionless,
#: ``0-1`` a fraction or probability; counts name what they count.
UNITS = (
    "-", "0-1", "%", "K", "m", "m/s", "1/s", "m3/m3", "kg/m3", "mm/yr", "yr", "mg/kg", "mg/L",
    "mg/m2/yr", "kg/ha/yr", "t/ha/yr", "L/kg", "log10 L/kg", "nm", "MiB",
    "reflectance", "reflectance per DN", "interquartile ranges",
    "pixels", "points", "samples", "folds", "repeats", "windows",
)  # fmt: skip
_UNIT = re.compile(r"\((?:" + "|".join(re.escape(u) for u in UNITS) + r")(?:[ ,;][^()]*)?\)")

#: Numeric keys whose unit is said in words, not in parentheses (stac.py's wording:
#: "in degrees of longitude / latitude", "in percent"); no other exception.
UNIT_IN_WORDS = {"landsat.bbox", "landsat.max_cloud"}


def test_every_schema_key_is_described_with_its_unit() -> None:
    fields = _schema_fields()
    assert len(fields) > 140  # every block was walked, not only the top level
    undescribed = sorted(k for k, f in fields.items() if not (f.description or "").strip())
    assert not undescribed, f"keys without a description: {undescribed}"
    numeric = {k for k, f in fields.items() if _numeric(f.annotation)}
    # the walk finds numbers in unions, dict values and lists, and skips booleans
    assert {"risk.ph", "accumulation.fertiliser", "output.bins", "samples.window"} <= numeric
    assert not {"risk.land_use.classes", "output.quicklooks"} & numeric
    assert UNIT_IN_WORDS <= numeric
    unitless = sorted(
        k for k in numeric - UNIT_IN_WORDS if not _UNIT.search(fields[k].description or "")
    )
    assert not unitless, f"numeric keys without a parenthesised unit: {unitless}"
    assert _UNIT.search("dry deposition velocity (m/s)")
    assert not _UNIT.search("(default: row number)") and not _UNIT.search("(ms)")


def _schema_keys() -> set[str]:
    """Every key of the scene schema, each block under the first path it is found at."""
    keys: set[str] = set()
    seen: set[type[BaseModel]] = set()
    queue: list[tuple[type[BaseModel], str]] = [(SceneConfig, "")]
    while queue:
        model, prefix = queue.pop(0)
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            keys.add(key)
            queue.extend(b for b in _blocks(info.annotation, key) if b[0] not in seen)
    return keys


def _config_rows(page: str) -> dict[str, list[str]]:
    """Key -> the text of its row's cells, from the config reference's tables."""
    rows: dict[str, list[str]] = {}
    for row in re.findall(r"<tr class=\"row-(?:odd|even)\">(.*?)</tr>", page, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td>(.*?)</td>", row, re.S)
        ]
        if len(cells) == 5:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.slow
def test_pages_exist(site: Path) -> None:
    missing = [p for p in PAGES if not (site / f"{p}.html").is_file()]
    assert not missing


@pytest.mark.slow
def test_config_reference_lists_every_schema_key(site: Path) -> None:
    rows = _config_rows(_page(site, "config"))
    expected = _schema_keys()
    assert set(SceneConfig.model_fields) <= set(rows)
    assert set(rows) == expected
    # nested blocks are there, with their own keys
    for key in (
        "accumulation.deposition.v_d",
        "risk.outside_aoa",
        "output.memory_mb",
        "model.params",
        "validation.interval_coverage",
        "samples.censored",
        "source.samples",
        "risk.land_use.classes",
    ):
        assert key in rows


@pytest.mark.slow
def test_config_reference_types_defaults_constraints_units(site: Path) -> None:
    rows = _config_rows(_page(site, "config"))
    # samples.window: int, default 1, ge=1 (schema.py)
    assert rows["samples.window"][:3] == ["int", "1", "≥ 1"]
    # accumulation.bulk_density: 1300 kg/m3, gt=0 (accumulation.py)
    dtype, default, constraint, desc = rows["accumulation.bulk_density"]
    assert (dtype, default, constraint) == ("float", "1300.0", "> 0.0")
    assert "(kg/m3)" in desc
    assert rows["accumulation.deposition.v_d"][1] == "0.005"
    assert "(m/s)" in rows["accumulation.deposition.v_d"][3]
    assert rows["name"][1] == "required"
    assert rows["samples.targets"][1] == "[Cu, Pb]"
    assert rows["risk.outside_aoa"][0] == "one of class, mask, ignore"
    assert rows["risk"][1] == "null"
    assert rows["output"][1] == "its keys’ defaults"


@pytest.mark.slow
def test_a_model_page_per_registry_family(site: Path) -> None:
    pages = {p.stem: p.read_text(encoding="utf-8") for p in (site / "models").glob("*.html")}
    where = {
        name: [stem for stem, text in pages.items() if f'id="model-{name}"' in text]
        for name in MODELS
    }
    assert all(len(w) == 1 for w in where.values()), where
    families = {w[0] for w in where.values()}
    assert families == set(pages) - {"index"}  # every family page renders a registry entry
    index = pages["index"]
    for name in MODELS:
        assert re.search(rf'href="\w+\.html#model-{re.escape(name)}"', index), name


@pytest.mark.slow
def test_model_parameter_defaults_come_from_the_estimators(site: Path) -> None:
    forest = _page(site, "models/forest")
    # geohm's forest defaults (models/forest.py): 200 trees, all cores
    assert re.search(
        r"n_estimators</span>.*?<td><p><code[^>]*><span class=\"pre\">200<", forest, re.S
    )
    kriging = _page(site, "models/kriging")
    # the registry's kriging default: the nugget is kept at a sample's pixel
    assert re.search(r"exact_values</span>.*?<span class=\"pre\">false<", kriging, re.S)


@pytest.mark.slow
def test_api_page_documents_geohm_all(site: Path) -> None:
    page = _page(site, "api")
    ids = set(re.findall(r'<dt class="sig sig-object py" id="([^"]+)"', page))
    for name in geohm.__all__:
        assert any(i == f"geohm.{name}" or i.endswith(f".{name}") for i in ids), name

"""Provenance in every output folder (issue 18, item 4): run.json and the STAC Item.

One real run of the synthetic case (64 x 64 pixels, a 20-tree forest, Cu only) and one
``predict`` with its model, shared by the module. Checked against references: the
GeoTIFFs as rasterio reads them, hashlib over each file's bytes, the report, rasterio's
``transform_bounds``; the STAC Item is read back by pystac (``Item.from_dict``, its
projection and MLM extension classes) and validated by pystac's JSON-schema validator,
offline: the STAC 1.1.0 core Item schema is the one pystac ships, and the projection
v2.0.0, raster v1.1.0 and MLM v1.4.0 extensions are checked against the small schemas
below, written from the extension specifications (their fields, types, enums, required
fields and cross-field rules), registered under the extensions' URIs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import yaml
from pystac.extensions.mlm import MLMExtension
from pystac.extensions.projection import ProjectionExtension
from pystac.validation import JsonSchemaSTACValidator
from rasterio.warp import transform_bounds
from typer.testing import CliRunner

from geohm.cli import app
from geohm.io.provenance import file_sha256, footprint_wgs84
from geohm.models import model_entry
from geohm.pipeline.provenance import (
    MLM_EXTENSION,
    PROJECTION_EXTENSION,
    RASTER_EXTENSION,
    feature_unit,
)
from geohm.synth import make_demo

pytestmark = pytest.mark.timeout(300)

CORE_ITEM = "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"


# --------------------------------------------------------------------------- the runs


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The demo data, a run's folder and a predict's folder (beside it)."""
    root = tmp_path_factory.mktemp("provenance")
    data = root / "data"
    make_demo(data, seed=3, size=64)
    cfg = yaml.safe_load((data / "scene.yaml").read_text(encoding="utf-8"))
    cfg.pop("source"), cfg.pop("zones"), cfg.pop("sampling_design")
    cfg.update(
        name="prov-demo",
        model={"name": "rf", "params": {"n_estimators": 20}},
        samples={**cfg["samples"], "targets": ["Cu"]},
        validation={"test_fraction": 0.2, "cv_folds": 3, "seed": 0},
        risk={**cfg["risk"], "indices": ["single_factor"]},
        output={"dir": "out", "tile": 512},
    )
    scene = data / "prov.yaml"
    scene.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    run, pred = root / "run", root / "pred"
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(scene), "--out", str(run)])
    assert res.exit_code == 0, res.output
    cfg["output"]["quicklooks"] = False
    scene.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    res = runner.invoke(
        app, ["predict", str(scene), "--model", str(run / "model.geohm"), "--out", str(pred)]
    )
    assert res.exit_code == 0, res.output
    return data, run, pred


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _tifs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tif"))


# --------------------------------------------------------------------------- run.json


def test_every_output_is_an_asset_with_its_role(folders) -> None:
    _, run, _ = folders
    item, record = _json(run / "stac_item.json"), _json(run / "run.json")
    manifest = _json(run / "manifest.json")
    hrefs = {a["href"]: a for a in item["assets"].values()}
    assert all(h.startswith("./") for h in hrefs)  # relative, inside the folder
    # every output the manifest lists (but the item itself) is an asset, and the manifest
    assert {f"./{n}" for n in manifest["outputs"]} - {"./stac_item.json"} | {
        "./manifest.json"
    } == set(hrefs)
    assert {"./run.json", "./report.json", "./model.geohm"} <= set(hrefs)
    assert {o["file"] for o in record["outputs"]} == set(manifest["outputs"]) | {"manifest.json"}
    for href, asset in hrefs.items():
        name = href[2:]
        assert (run / name).is_file(), name
        roles = asset["roles"]
        if name.endswith((".tif", ".csv", ".gpkg")):
            assert roles == ["data"]
        elif name.endswith("_drivers.png"):
            assert roles == ["metadata"]
        elif name.endswith(".png"):
            assert "overview" in roles
        elif name == "model.geohm":
            assert roles == ["mlm:model", "model"] and asset["mlm:artifact_type"]
        else:
            assert roles == ["metadata"], name
    thumbs = [h for h, a in hrefs.items() if "thumbnail" in a["roles"]]
    assert thumbs == ["./Cu_concentration.png"]
    assert json.loads((run / "report.json").read_text())["outputs"] == sorted(manifest["outputs"])


def test_config_hash_in_tags_run_json_and_manifest(folders) -> None:
    _, run, _ = folders
    record, manifest = _json(run / "run.json"), _json(run / "manifest.json")
    text = json.dumps(record["config"], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert record["config_sha256"] == digest == manifest["config_sha256"]
    assert "dir" not in record["config"]["output"]  # the neutral settings are not hashed
    tifs = _tifs(run)
    assert len(tifs) >= 5
    for tif in tifs:
        with rasterio.open(tif) as src:
            tags = src.tags()
        assert tags["config_sha256"] == digest, tif.name
        assert tags["geohm_version"] == record["geohm_version"] and tags["model"] == "rf"


def test_input_hashes_are_the_files_sha256(folders, tmp_path: Path) -> None:
    data, run, _ = folders
    record, manifest = _json(run / "run.json"), _json(run / "manifest.json")
    assert set(record["inputs"]) == set(manifest["inputs"])
    assert str(data / "dem.tif") in record["inputs"]
    assert any(p.endswith("_SR_B4.TIF") for p in record["inputs"])
    for path, rec in record["inputs"].items():
        content = Path(path).read_bytes()
        assert rec == {"size": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    # chunked: a file of 2.5 MiB + 7 bytes, read 1 MiB at a time
    blob = np.random.default_rng(0).integers(0, 256, 5 * 2**19 + 7, dtype=np.uint8).tobytes()
    big = tmp_path / "big.bin"
    big.write_bytes(blob)
    assert file_sha256(big) == hashlib.sha256(blob).hexdigest()


def test_model_card_is_the_report(folders) -> None:
    _, run, _ = folders
    card, report = _json(run / "run.json")["model_card"], _json(run / "report.json")
    t, rep = card["targets"]["Cu"], report["targets"]["Cu"]
    assert card["model"] == t["model"] == "rf" and card["task"] == "regression"
    assert card["framework"] == "scikit-learn"
    assert t["unit"] == "mg/kg" and t["n_train"] == rep["n_train"]
    for block in ("cv", "cv_spatial", "test"):
        for k in ("rmse", "r2", "skill", "rmse_null"):
            assert t[block][k] == rep[block][k], (block, k)
    assert t["cv"]["skill"] == pytest.approx(1 - rep["cv"]["rmse"] / rep["cv"]["rmse_null"])
    assert t["aoa_share_inside"] == rep["aoa_map"]["share_inside"]
    assert card["training_samples"] == {
        "total": report["samples"]["total"],
        "used": report["samples"]["used"],
    }
    units = {f["name"]: f["unit"] for f in card["features"]}
    assert units["NDVI"] == "1" and units["slope"] == "degree" and units["elevation"] == "m"
    assert units["thermal"] == "K" and units["dist_source"] is None
    assert card["hyperparameters"] == {"n_estimators": 20, "random_state": 0}
    std = _json(run / "run.json")["risk_standard"]
    table = Path(__file__).parents[1] / "geohm" / "standards" / "gb15618_2018.csv"
    assert std["name"] == "gb15618" and std["edition"] == "2018"
    assert std["table_sha256"] == hashlib.sha256(table.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the STAC Item


def test_proj_and_raster_fields_are_the_geotiffs(folders) -> None:
    _, run, _ = folders
    item = _json(run / "stac_item.json")
    assets = {a["href"][2:]: a for a in item["assets"].values()}
    for tif in _tifs(run):
        a = assets[tif.name]
        with rasterio.open(tif) as src:
            assert a["proj:code"] == f"EPSG:{src.crs.to_epsg()}" == "EPSG:32649"
            assert a["proj:shape"] == [src.height, src.width] == [64, 64]
            assert a["proj:transform"] == list(src.transform)[:6]
            assert a["proj:bbox"] == list(src.bounds)
            (band,) = a["raster:bands"]
            assert band["data_type"] == src.dtypes[0]
            assert band["nodata"] == src.nodata and band["unit"] == src.units[0]
            assert band["spatial_resolution"] == src.res[0] == 30.0
            assert a["title"] == src.descriptions[0]
    assert assets["Cu_concentration.tif"]["raster:bands"][0] | {} == {
        "name": "Cu_concentration",
        "data_type": "float32",
        "nodata": -9999,
        "unit": "mg/kg",
        "spatial_resolution": 30.0,
        "sampling": "area",
    }
    assert assets["Cu_risk.tif"]["raster:bands"][0]["nodata"] == 255
    png = assets["Cu_concentration.png"]
    assert png["proj:code"] is None and len(png["proj:shape"]) == 2  # not georeferenced
    # the footprint: GDAL's transform_bounds of the grid is the item's bbox
    with rasterio.open(run / "Cu_concentration.tif") as src:
        ref = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assert item["bbox"] == pytest.approx(list(ref), abs=1e-6)
    ring = np.array(item["geometry"]["coordinates"][0])
    assert (ring[0] == ring[-1]).all()
    x, y = ring[:, 0], ring[:, 1]
    assert 0.5 * np.sum(x[:-1] * y[1:] - x[1:] * y[:-1]) > 0  # counter-clockwise (RFC 7946)
    assert item["properties"]["datetime"] == "2019-11-15T00:00:00Z"  # the Landsat date


def test_item_reads_back_and_validates_offline(folders) -> None:
    _, run, _ = folders
    data = _json(run / "stac_item.json")
    item = pystac.Item.from_dict(data)
    assert item.id == "prov-demo" and len(item.assets) == len(data["assets"])
    assert item.to_dict(include_self_link=False)["properties"] == data["properties"]
    assert ProjectionExtension.ext(item).code == "EPSG:32649"
    mlm = MLMExtension.ext(item)
    assert mlm.mlm_name == "geohm-prov-demo-rf" and mlm.tasks == ["regression"]
    assert [o.name for o in mlm.output] == ["Cu"]
    assert mlm.input[0].bands == _json(run / "report.json")["targets"]["Cu"]["features"]
    # every input band is described (name, unit where known) on the model asset
    bands = {b["name"]: b for b in data["assets"]["model"]["raster:bands"]}
    assert set(mlm.input[0].bands) <= set(bands)
    assert bands["NDVI"]["unit"] == "1" and "unit" not in bands["dist_source"]
    validated = item.validate(validator=_validator())
    assert set(validated) == {CORE_ITEM, PROJECTION_EXTENSION, RASTER_EXTENSION, MLM_EXTENSION}


@pytest.mark.parametrize(
    ("change", "schema"),
    [
        (lambda d: d["properties"].pop("mlm:name"), MLM_EXTENSION),
        (lambda d: d["assets"]["model"]["roles"].remove("mlm:model"), MLM_EXTENSION),
        (lambda d: d["assets"]["model"].pop("raster:bands"), MLM_EXTENSION),
        (lambda d: d["assets"]["report_json"].update({"mlm:artifact_type": "x"}), MLM_EXTENSION),
        (lambda d: d["properties"].update({"proj:epsg": 32649}), PROJECTION_EXTENSION),
        (
            lambda d: d["assets"]["Cu_concentration"].update({"proj:shape": [64]}),
            PROJECTION_EXTENSION,
        ),
        (
            lambda d: d["assets"]["Cu_risk"]["raster:bands"][0].update({"data_type": "byte"}),
            RASTER_EXTENSION,
        ),
        (lambda d: d.pop("geometry"), CORE_ITEM),
    ],
)
def test_the_schemas_refuse_a_broken_item(folders, change, schema) -> None:
    """The local schemas bite: each change breaks the schema named, and only it."""
    _, run, _ = folders
    data = _json(run / "stac_item.json")
    change(data)
    validator = _validator()
    exts = [PROJECTION_EXTENSION, RASTER_EXTENSION, MLM_EXTENSION]
    with pytest.raises(pystac.STACValidationError, match="Validation failed"):
        if schema == CORE_ITEM:
            validator.validate_core(data, pystac.STACObjectType.ITEM, "1.1.0")
        else:
            validator.validate_extension(data, pystac.STACObjectType.ITEM, "1.1.0", schema)
    for other in [e for e in exts if e != schema]:
        validator.validate_extension(data, pystac.STACObjectType.ITEM, "1.1.0", other)


def test_predict_folder_points_to_its_model(folders) -> None:
    _, run, pred = folders
    item, record = _json(pred / "stac_item.json"), _json(pred / "run.json")
    model = item["assets"]["model"]
    assert (
        model["href"] == "../run/model.geohm"
        and (pred / model["href"]).resolve() == (run / "model.geohm").resolve()
    )
    assert record["command"] == item["properties"]["geohm:command"] == "predict"
    content = (run / "model.geohm").read_bytes()
    assert (
        record["inputs"][str(run / "model.geohm")]["sha256"] == hashlib.sha256(content).hexdigest()
    )
    card = record["model_card"]
    assert card["trained_on_scene"] == "prov-demo" and card["training_samples"] is None
    assert "validation" in card["targets"]["Cu"]  # scored on the config's samples
    assert {o["file"] for o in record["outputs"]} == set(
        _json(pred / "manifest.json")["outputs"]
    ) | {"manifest.json"}
    for tif in _tifs(pred):
        with rasterio.open(tif) as src:
            assert src.tags()["config_sha256"] == record["config_sha256"]
    pystac.Item.from_dict(item).validate(validator=_validator())


# --------------------------------------------------------------------------- small parts


def test_framework_of_a_torch_net_and_feature_units() -> None:
    from sklearn.pipeline import Pipeline

    from geohm.pipeline.provenance import _framework

    net = Pipeline([("model", model_entry("ga-bp").build({}, 0))])
    forest = Pipeline([("model", model_entry("rf").build({}, 0))])
    assert _framework(net)[0] == "PyTorch" and _framework(forest)[0] == "scikit-learn"
    assert [feature_unit(f) for f in ("red", "wl_450.0", "aspect", "x", "clay")] == [
        "1",
        "1",
        "degree",
        "m",
        None,
    ]


def test_footprint_of_a_utm_box() -> None:
    bounds = (490000.0, 3750000.0, 492880.0, 3752880.0)
    geom, bbox = footprint_wgs84("EPSG:32649", bounds, densify=5)
    ref = transform_bounds("EPSG:32649", "EPSG:4326", *bounds, densify_pts=21)
    assert bbox == pytest.approx(list(ref), abs=1e-6)
    assert len(geom["coordinates"][0]) == 4 * 4 + 1


# --------------------------------------------------------------------------- the schemas
# Written from the extension specifications (README field tables), compactly.
# fmt: off


def _validator() -> JsonSchemaSTACValidator:
    """pystac's validator, offline: its shipped core schemas plus the local ones below."""
    v = JsonSchemaSTACValidator()
    v.schema_cache.update({PROJECTION_EXTENSION: _PROJ_SCHEMA, RASTER_EXTENSION: _RASTER_SCHEMA,
                           MLM_EXTENSION: _MLM_SCHEMA})
    return v


def _uses(uri: str) -> dict[str, Any]:
    return {"required": ["stac_extensions"],
            "properties": {"stac_extensions": {"type": "array", "contains": {"const": uri}}}}


def _only(prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
    """An object whose ``prefix`` fields are exactly the known ones (others: anything)."""
    return {"type": "object", "properties": fields,
            "patternProperties": {f"^(?!{prefix})": {}}, "additionalProperties": False}


def _array(items: Any, lo: int = 0, hi: int | None = None, **more: Any) -> dict[str, Any]:
    out = {"type": "array", "items": items, "minItems": lo, **more}
    return out if hi is None else {**out, "maxItems": hi}


def _some(rule: dict[str, Any]) -> dict[str, Any]:
    """Some asset matches ``rule`` (not: every asset fails it)."""
    return {"not": {"properties": {"assets": {"additionalProperties": {"not": rule}}}}}


_NUM, _STR = {"type": "number"}, {"type": "string", "minLength": 1}
_SCHEMA = "http://json-schema.org/draft-07/schema#"

# Projection v2.0.0 (Item properties and assets): proj:code / wkt2 / projjson (or null),
# geometry, bbox (4 or 6 numbers), centroid (lat/lon), shape (2 integers >= 0), transform
# (6 or 9 numbers); no other proj: field (proj:epsg was removed in v2.0.0).
_PROJ = _only("proj:", {
    "proj:code": {"type": ["string", "null"], "pattern": "^[A-Z0-9_]+:.+$"},
    "proj:wkt2": {"type": ["string", "null"], "minLength": 1},
    "proj:projjson": {"type": ["object", "null"]},
    "proj:geometry": {"type": "object", "required": ["type", "coordinates"]},
    "proj:bbox": {"oneOf": [_array(_NUM, n, n) for n in (4, 6)]},
    "proj:centroid": {"type": "object", "required": ["lat", "lon"], "properties": {
        "lat": {**_NUM, "minimum": -90, "maximum": 90},
        "lon": {**_NUM, "minimum": -180, "maximum": 180}}},
    "proj:shape": _array({"type": "integer", "minimum": 0}, 2, 2),
    "proj:transform": {"oneOf": [_array(_NUM, n, n) for n in (6, 9)]},
})
_PROJ_SCHEMA: dict[str, Any] = {"$schema": _SCHEMA, "$id": PROJECTION_EXTENSION, "allOf": [
    _uses(PROJECTION_EXTENSION),
    {"type": "object", "required": ["properties", "assets"], "properties": {
        "properties": _PROJ, "assets": {"type": "object", "additionalProperties": _PROJ}}},
]}

_DATA_TYPES = [*(f"{k}{b}" for k in ("int", "uint") for b in (8, 16, 32, 64)), "float16",
               "float32", "float64", "cint16", "cint32", "cfloat32", "cfloat64", "other"]
# Raster v1.1.0: raster:bands on assets; each band's data_type (enum), nodata (a number or
# "nan"/"inf"/"-inf"), sampling (area/point), unit, scale, offset, spatial_resolution,
# bits_per_sample, statistics (mean/minimum/maximum/stddev/valid_percent).
_BAND = {"type": "object", "minProperties": 1, "properties": {
    "data_type": {"enum": _DATA_TYPES},
    "nodata": {"oneOf": [_NUM, {"enum": ["nan", "inf", "-inf"]}]},
    "sampling": {"enum": ["area", "point"]}, "unit": {"type": "string"},
    "scale": _NUM, "offset": _NUM, "spatial_resolution": _NUM,
    "bits_per_sample": {"type": "integer"},
    "statistics": _only("", {k: _NUM for k in
                             ("mean", "minimum", "maximum", "stddev", "valid_percent")}),
}}
_RASTER_SCHEMA: dict[str, Any] = {"$schema": _SCHEMA, "$id": RASTER_EXTENSION, "allOf": [
    _uses(RASTER_EXTENSION),
    {"type": "object", "required": ["assets"], "properties": {"assets": {
        "type": "object", "additionalProperties": _only("raster:", {
            "raster:bands": _array(_BAND, 1)})}}},
]}

_TASKS = ["regression", "classification", "scene-classification", "detection",
          "object-detection", "segmentation", "semantic-segmentation", "instance-segmentation",
          "panoptic-segmentation", "similarity-search", "generative", "image-captioning",
          "super-resolution"]
_STRUCTURE = {"type": "object", "required": ["shape", "dim_order", "data_type"], "properties": {
    "shape": _array({"type": "integer", "minimum": -1}, 1),
    "dim_order": _array({"type": "string", "pattern": "^[a-z-_]+$"}, 1, uniqueItems=True),
    "data_type": {"enum": _DATA_TYPES}}}
_EXPRESSION = {"oneOf": [{"type": "null"},
                         {"type": "object", "required": ["format", "expression"]}]}
_MODEL_BAND = {"type": "object", "required": ["name"],
               "dependencies": {"format": ["expression"], "expression": ["format"]}}
_MLM_FIELDS = {
    "mlm:name": {"type": "string", "pattern": r"^[a-zA-Z][a-zA-Z0-9_.\-\s]+[a-zA-Z0-9]$"},
    "mlm:architecture": _STR,
    "mlm:tasks": _array({"enum": _TASKS}, uniqueItems=True),
    "mlm:framework": _STR,
    "mlm:framework_version": {"type": "string", "pattern": r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\."
                              r"(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"},
    "mlm:memory_size": {"type": "integer", "minimum": 0},
    "mlm:total_parameters": {"type": "integer", "minimum": 0},
    "mlm:pretrained": {"type": "boolean"},
    "mlm:pretrained_source": {"type": ["string", "null"]},
    "mlm:batch_size_suggestion": {"type": "integer", "minimum": 0},
    "mlm:accelerator": {"enum": [None, "amd64", "cuda", "xla", "amd-rocm", "intel-ipex-cpu",
                                 "intel-ipex-gpu", "macos-arm"]},
    "mlm:accelerator_constrained": {"type": "boolean"},
    "mlm:accelerator_summary": {"type": "string"},
    "mlm:accelerator_count": {"type": "integer", "minimum": 1},
    "mlm:input": _array({"type": "object", "required": ["name", "bands", "input"], "properties": {
        "name": _STR, "bands": _array({"oneOf": [_STR, _MODEL_BAND]}), "input": _STRUCTURE,
        "description": _STR, "value_scaling": {"type": ["array", "null"], "minItems": 1},
        "resize_type": {"type": ["string", "null"]}, "pre_processing_function": _EXPRESSION}}),
    "mlm:output": _array({"type": "object", "required": ["name", "tasks", "result"],
                          "properties": {
        "name": _STR, "tasks": _array({"enum": _TASKS}, uniqueItems=True), "result": _STRUCTURE,
        "description": _STR, "post_processing_function": _EXPRESSION}}),
    "mlm:hyperparameters": {"type": "object", "minProperties": 1, "additionalProperties": False,
                            "patternProperties": {"^[0-9a-zA-Z_.-]+$": True}},
    "mlm:artifact_type": _STR, "mlm:compile_method": _STR, "mlm:entrypoint": _STR,
}
_MODEL_ROLE = {"required": ["roles"], "properties": {"roles": {"contains": {"const": "mlm:model"}}}}
_HAS_ARTIFACT = {"required": ["mlm:artifact_type"]}
_NAMED_BANDS = {"required": ["raster:bands"], "properties": {
    "raster:bands": _array({"required": ["name"]}, 1)}}
_RASTER_V1 = {"properties": {"stac_extensions": {"contains": {
    "pattern": r"^https://stac-extensions\.github\.io/raster/v1\.\d+\.\d+/schema\.json$"}}}}
_BANDS_USED = {"properties": {"properties": {"properties": {"mlm:input": {
    "contains": {"required": ["bands"], "properties": {"bands": {"minItems": 1}}}}}}}}

# MLM v1.4.0 in an Item: name, architecture, tasks, input, output required in the properties
# (artifact_type / compile_method not there); no unknown mlm: field anywhere; pretrained
# false needs pretrained_source null; some asset has the role mlm:model, exactly those carry
# mlm:artifact_type, and name/input/output/hyperparameters are not asset fields; named input
# bands need the raster v1 extension and raster:bands, each named, on the model asset.
_MLM_SCHEMA: dict[str, Any] = {"$schema": _SCHEMA, "$id": MLM_EXTENSION, "allOf": [
    _uses(MLM_EXTENSION),
    {"type": "object", "required": ["properties", "assets"], "properties": {
        "properties": {"allOf": [
            _only("mlm:", _MLM_FIELDS),
            {"required": ["mlm:name", "mlm:architecture", "mlm:tasks", "mlm:input",
                          "mlm:output"]},
            {"not": {"anyOf": [{"required": ["mlm:artifact_type"]},
                               {"required": ["mlm:compile_method"]}]}},
            {"if": {"required": ["mlm:pretrained"],
                    "properties": {"mlm:pretrained": {"const": False}}},
             "then": {"required": ["mlm:pretrained_source"],
                      "properties": {"mlm:pretrained_source": {"const": None}}}},
        ]},
        "assets": {"type": "object", "additionalProperties": {"allOf": [
            _only("mlm:", _MLM_FIELDS),
            {"not": {"anyOf": [{"required": [k]} for k in
                               ("mlm:name", "mlm:input", "mlm:output", "mlm:hyperparameters")]}},
            {"if": _MODEL_ROLE, "then": _HAS_ARTIFACT, "else": {"not": _HAS_ARTIFACT}},
        ]}},
    }},
    _some(_MODEL_ROLE),
    {"if": _BANDS_USED, "then": {"allOf": [_RASTER_V1, {"properties": {"assets": {
        "additionalProperties": {"if": _MODEL_ROLE, "then": _NAMED_BANDS}}}}]}},
]}
# fmt: on

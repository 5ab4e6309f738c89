"""Provenance of a scene job: ``run.json`` and a STAC Item describing the output folder.

:func:`write_provenance` runs once a job's outputs and report are written, before
``manifest.json``, and assembles from what the run knows (config, report, outputs,
fitted estimators):

``run.json``
    The config exactly as hashed and its sha256 (as in every GeoTIFF's tags and in
    ``manifest.json``), the size and sha256 of every input file (the job's inputs of
    :func:`geohm.io.manifest.job_fingerprint`), the risk standard and its version, the
    model card, the outputs with their STAC roles, the library versions.
``stac_item.json``
    A STAC 1.1.0 Item: every output an asset (relative href, roles); projection v2.0.0,
    raster v1.1.0 (``raster:bands``) and machine-learning-model v1.4.0 (``mlm:``) fields,
    and geohm's ``geohm:`` fields (version, config hash, per-target training count, CV
    metrics with the skill against the flat map, AOA share, risk standard).

File facts, hashes and writing go through :mod:`geohm.io.provenance`; here, dicts only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geohm._version import __version__
from geohm.config import SceneConfig
from geohm.cube import COORDINATE_FEATURES, TERRAIN_FEATURES, WAVELENGTH_PREFIX
from geohm.indices import INDEX_NAMES
from geohm.io.landsat.mtl import REFLECTIVE_BANDS
from geohm.io.manifest import dependency_versions, job_fingerprint
from geohm.io.outnames import MANIFEST_NAME, SIDECAR
from geohm.io.provenance import (
    ARTIFACT_TYPE,
    ITEM_NAME,
    MEDIA_TYPES,
    RUN_NAME,
    asset_key,
    canonical_config,
    describe_outputs,
    file_asset,
    footprint_wgs84,
    hash_files,
    packaged_sha256,
    relative_href,
    write_provenance_files,
)
from geohm.io.standard_tables import STANDARDS_PACKAGE
from geohm.models.registry import CANDIDATES, STACKED, model_entry
from geohm.risk.standards import BUILTIN_STANDARDS, load_standard

__all__ = [
    "MLM_EXTENSION",
    "PROJECTION_EXTENSION",
    "PROVENANCE_NAMES",
    "RASTER_EXTENSION",
    "RUN_FORMAT",
    "STAC_VERSION",
    "feature_unit",
    "model_card",
    "run_record",
    "stac_item",
    "write_provenance",
]

#: The provenance files of an output folder, in the order they are written.
PROVENANCE_NAMES: tuple[str, str] = (RUN_NAME, ITEM_NAME)
#: Version of ``run.json``'s layout.
RUN_FORMAT = 1
STAC_VERSION = "1.1.0"
PROJECTION_EXTENSION = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_EXTENSION = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"
MLM_EXTENSION = "https://stac-extensions.github.io/mlm/v1.4.0/schema.json"

#: The metrics of a validation block kept in the model card.
_METRICS = ("rmse", "mae", "r2", "rmse_null", "skill", "n", "folds", "block_size_m")


# --------------------------------------------------------------------------- entry point


def write_provenance(
    cfg: SceneConfig,
    report: Mapping[str, Any],
    outputs: Iterable[Path],
    *,
    command: str = "run",
    model_path: str | os.PathLike[str] | None = None,
    acquired: str | None = None,
    estimators: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Write ``run.json`` and ``stac_item.json`` into the job's output folder.

    Parameters
    ----------
    cfg : SceneConfig
        The job's config (paths absolute).
    report : mapping
        The job's report (``report.json``), complete.
    outputs : iterable of Path
        Every file the job wrote so far (maps, styles, quicklooks, tables, model,
        report); ``manifest.json`` is added as the asset written last.
    command : {"run", "predict"}
        The job.
    model_path : path-like, optional
        ``geohm predict``'s model file (an input; the item's model asset points to it).
    acquired : str, optional
        The imagery's acquisition date (``YYYY-MM-DD``): the item's ``datetime``
        (default: the time of writing).
    estimators : mapping, optional
        Target -> fitted estimator: the framework of each (PyTorch when a nested
        estimator has a ``device`` parameter, else scikit-learn).

    Returns
    -------
    list of Path
        ``run.json`` and ``stac_item.json``.
    """
    out_dir = Path(cfg.output.dir)
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    job = job_fingerprint(cfg, command=command, inputs=[model_path] if model_path else ())
    inputs = hash_files(job.inputs)
    names = sorted({p.name for p in outputs if not p.name.endswith(SIDECAR)} | {MANIFEST_NAME})
    facts = describe_outputs(out_dir, names)
    grid = report["grid"]
    footprint = footprint_wgs84(
        grid["crs"], _bounds(grid["transform"], grid["height"], grid["width"])
    )
    frameworks = {t: _framework(e) for t, e in (estimators or {}).items()}
    card = model_card(cfg, report, command=command, frameworks=frameworks)
    standard = risk_standard(cfg)
    model_href = None
    if model_path is not None:
        model_href = relative_href(
            Path(os.path.abspath(model_path)), Path(os.path.abspath(out_dir))
        )
    item = stac_item(
        cfg,
        report,
        facts,
        card,
        footprint=footprint,
        config_sha256=job.config_sha256,
        command=command,
        created=created,
        acquired=acquired,
        standard=standard,
        model_href=model_href,
    )
    record = run_record(
        cfg,
        report,
        card,
        inputs=inputs,
        config_sha256=job.config_sha256,
        command=command,
        created=created,
        standard=standard,
        outputs=[
            *(
                {"file": a["href"].removeprefix("./"), "roles": a["roles"]}
                for a in item["assets"].values()
                if a["href"].startswith("./") and a["href"] != model_href
            ),
            {"file": ITEM_NAME, "roles": ["metadata"]},
        ],
    )
    return write_provenance_files(out_dir, record, item)


# --------------------------------------------------------------------------- run.json


def run_record(
    cfg: SceneConfig,
    report: Mapping[str, Any],
    card: Mapping[str, Any],
    *,
    inputs: Mapping[str, Any],
    config_sha256: str,
    command: str,
    created: str,
    standard: Mapping[str, Any] | None,
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    """The JSON object of ``run.json``.

    ``config`` is the config exactly as hashed: ``sha256`` of its JSON with sorted keys,
    no spaces and ASCII escapes is ``config_sha256``.
    """
    return {
        "format": RUN_FORMAT,
        "geohm_version": __version__,
        "command": command,
        "created": created,
        "scene": cfg.name,
        "config_sha256": config_sha256,
        "config": canonical_config(cfg),
        "inputs": dict(inputs),
        "risk_standard": None if standard is None else dict(standard),
        "model_card": dict(card),
        "outputs": outputs,
        "stac_item": ITEM_NAME,
        "versions": {"torch": dependency_versions()["torch"], **(report.get("versions") or {})},
    }


def risk_standard(cfg: SceneConfig) -> dict[str, Any] | None:
    """The risk standard a job's risk layers use, and which version of it.

    A built-in standard is identified by its table shipped with this geohm (file name,
    sha256, the year in its name as ``edition``); a user's CSV or YAML by its path (its
    sha256 is in ``run.json``'s inputs); ``risk.user_standard`` by the config hash.
    """
    risk = cfg.risk
    if risk is None:
        return None
    if risk.user_standard is not None:
        return {"name": "user", "source": "risk.user_standard (in the config)"}
    std = load_standard(risk.standard)
    if std.name in BUILTIN_STANDARDS:
        table = BUILTIN_STANDARDS[std.name]
        year = re.search(r"_(\d{4})\.csv$", table)
        return {
            "name": std.name,
            "source": f"built-in table {table} (geohm {__version__})",
            "edition": year.group(1) if year else None,
            "table_sha256": packaged_sha256(STANDARDS_PACKAGE, table),
        }
    return {"name": std.name, "source": f"file {risk.standard} (sha256 in inputs)"}


# --------------------------------------------------------------------------- model card


def model_card(
    cfg: SceneConfig,
    report: Mapping[str, Any],
    *,
    command: str = "run",
    frameworks: Mapping[str, tuple[str, str]] | None = None,
) -> dict[str, Any]:
    """The model card of a job: what model, on what features, how good, for which metal.

    Parameters
    ----------
    cfg, report : SceneConfig, mapping
        The job's config and report.
    command : {"run", "predict"}
        ``predict`` has no training metrics (the model's run has them); its validation
        on the config's samples when it has them.
    frameworks : mapping, optional
        Target -> ``(framework, version)``.

    Returns
    -------
    dict
        ``name``, ``model``, ``task``, ``architecture``, ``framework`` (and version),
        ``pretrained``, ``hyperparameters``, ``features`` (name, unit, kind),
        ``targets`` (per target: unit, model, architecture, features, ``n_train``,
        ``cv``, ``cv_spatial``, ``test``, ``validation``, ``aoa_share_inside``),
        ``training_samples``.
    """
    frameworks = dict(frameworks or {})
    classification = report.get("classification")
    per_target: Mapping[str, Any] = (
        {"contamination": classification}
        if classification is not None
        else (report.get("targets") or {})
    )
    first: Mapping[str, Any] = next(iter(per_target.values()), {})
    model = str(first.get("model", cfg.model.name))
    targets: dict[str, Any] = {}
    for t, rep in per_target.items():
        chosen = (rep.get("auto") or {}).get("chosen")
        summary, transferred = _architecture(str(rep.get("model", model)), chosen)
        fw = frameworks.get(t)
        info: dict[str, Any] = {
            "unit": "1 (probability)" if classification is not None else "mg/kg",
            "model": chosen or rep.get("model", model),
            "architecture": summary,
            "framework": fw[0] if fw else None,
            "transferred_from_source_year": transferred,
            "features": list(rep.get("features") or []),
            "n_train": rep.get("n_train", (rep.get("cv") or {}).get("n")),
        }
        for block in ("cv", "cv_spatial", "test", "validation"):
            if isinstance(rep.get(block), Mapping):
                info[block] = {k: rep[block][k] for k in _METRICS if k in rep[block]}
        if classification is not None:
            info["cv"] = rep.get("cv")
        aoa = rep.get("aoa_map")
        info["aoa_share_inside"] = aoa.get("share_inside") if isinstance(aoa, Mapping) else None
        targets[t] = info
    archs = sorted({v["architecture"] for v in targets.values()})
    fws = sorted({f for f in frameworks.values()})
    samples = report.get("samples") or {}
    card: dict[str, Any] = {
        "name": _mlm_name(cfg.name, model),
        "model": model,
        "task": "classification" if classification is not None else "regression",
        "architecture": archs[0]
        if len(archs) == 1
        else "; ".join(f"{t}: {v['architecture']}" for t, v in targets.items()),
        "framework": " and ".join(f for f, _ in fws) if fws else None,
        "framework_version": fws[0][1] if len(fws) == 1 else None,
        "pretrained": any(v["transferred_from_source_year"] for v in targets.values()),
        "hyperparameters": {**dict(cfg.model.params), "random_state": cfg.validation.seed},
        "features": [
            {"name": f, "unit": feature_unit(f), "kind": _feature_kind(f)}
            for f in report.get("features") or []
        ],
        "targets": targets,
        "training_samples": {"total": samples.get("total"), "used": samples.get("used")}
        if command == "run"
        else None,
    }
    if command == "predict":
        card["model_file"] = report.get("model_file")
        card["trained_on_scene"] = report.get("model_trained_on")
    return card


def _architecture(model: str, chosen: str | None) -> tuple[str, bool]:
    """The registry's one-line summary of a target's model, and whether it transfers."""
    if chosen is not None:
        cand = CANDIDATES.get(chosen)
        if cand is not None:
            return cand.summary, model_entry(cand.model).needs_source
        if chosen == STACKED.name:
            return STACKED.summary, False
        return chosen, False
    entry = model_entry(model)
    return entry.summary, entry.needs_source


def _framework(estimator: Any) -> tuple[str, str]:
    """``(framework, version)`` of a fitted estimator.

    geohm's torch estimators take a ``device`` parameter (style.md: the net is built in
    ``fit``, ``device`` is a parameter); every other estimator is scikit-learn's or follows
    its contract.
    """
    versions = dependency_versions()
    try:
        params = estimator.get_params(deep=True)
    except (AttributeError, TypeError):  # not a scikit-learn estimator
        params = {}
    if any(k == "device" or k.endswith("__device") for k in params):
        return "PyTorch", versions.get("torch", "")
    return "scikit-learn", versions.get("scikit-learn", "")


def feature_unit(name: str) -> str | None:
    """The unit of a cube feature (None: not known, e.g. a user's covariate).

    Reflectance bands and hyperspectral bands are unitless reflectance (0-1, unit
    ``"1"``), ``thermal`` is in kelvin, spectral indices are unitless, ``elevation`` is
    in metres, ``slope`` and ``aspect`` in degrees, the coordinates ``x``/``y`` in metres
    (they are features only on projected grids).

    Examples
    --------
    >>> feature_unit("NDVI"), feature_unit("slope"), feature_unit("thermal")
    ('1', 'degree', 'K')
    >>> feature_unit("dist_source") is None
    True
    """
    if name in REFLECTIVE_BANDS or name.startswith(WAVELENGTH_PREFIX) or name in INDEX_NAMES:
        return "1"
    units = {"thermal": "K", "elevation": "m", "slope": "degree", "aspect": "degree"}
    if name in units:
        return units[name]
    if name in COORDINATE_FEATURES:
        return "m"
    return None


def _feature_kind(name: str) -> str:
    if name in REFLECTIVE_BANDS or name == "thermal":
        return "Landsat band"
    if name.startswith(WAVELENGTH_PREFIX):
        return "hyperspectral band"
    if name in INDEX_NAMES:
        return "spectral index"
    if name in TERRAIN_FEATURES:
        return "terrain (DEM)"
    if name in COORDINATE_FEATURES:
        return "map coordinate"
    return "covariate"


def _mlm_name(scene: str, model: str) -> str:
    """``mlm:name``: letters, digits, ``_ . -`` only, starting with a letter."""
    text = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"geohm-{scene}-{model}")
    return re.sub(r"[^A-Za-z0-9]+$", "", text)


# --------------------------------------------------------------------------- STAC Item


def stac_item(
    cfg: SceneConfig,
    report: Mapping[str, Any],
    facts: Mapping[str, Mapping[str, Any]],
    card: Mapping[str, Any],
    *,
    footprint: tuple[dict[str, Any], list[float]],
    config_sha256: str,
    command: str,
    created: str,
    acquired: str | None = None,
    standard: Mapping[str, Any] | None = None,
    model_href: str | None = None,
) -> dict[str, Any]:
    """The STAC Item (a GeoJSON Feature, STAC 1.1.0) of an output folder.

    Parameters
    ----------
    cfg : SceneConfig
        The job's config.
    report : mapping
        The job's report.
    facts, card : mapping
        Output name -> facts (:func:`geohm.io.provenance.describe_outputs`); :func:`model_card`.
    footprint : (dict, list)
        The grid's footprint and bbox in WGS 84 (:func:`geohm.io.provenance.footprint_wgs84`).
    config_sha256, command, created, acquired : str
        Config hash, job, time of writing (ISO 8601, UTC), acquisition date (``YYYY-MM-DD``,
        the ``datetime``; default ``created``).
    standard : mapping, optional
        :func:`risk_standard`.
    model_href : str, optional
        A ``predict`` job's model file, relative to the folder.

    Returns
    -------
    dict
        The Item, every asset href relative (``./NAME``).
    """
    geometry, bbox = footprint
    assets: dict[str, Any] = {}
    thumb = False
    for name, fact in facts.items():
        key = asset_key(name, assets)
        asset = file_asset(name, fact)
        if not thumb and name.endswith("_concentration.png"):  # the item's thumbnail
            asset["roles"] = ["thumbnail", "overview"]
            thumb = True
        assets[key] = asset
    assets[asset_key(RUN_NAME, assets)] = {
        "href": f"./{RUN_NAME}",
        "type": "application/json",
        "title": "provenance: config, input hashes, model card (geohm)",
        "roles": ["metadata"],
    }
    if model_href is not None:
        assets["model"] = {
            "href": model_href,
            "type": MEDIA_TYPES[".geohm"],
            "title": f"the model this prediction used (an input; trained on "
            f"{card.get('trained_on_scene') or 'another scene'})",
            "roles": ["mlm:model", "model"],
            "mlm:artifact_type": ARTIFACT_TYPE,
        }
    if "model" in assets:  # the bands the model reads (MLM: raster:bands on the model)
        assets["model"]["raster:bands"] = [
            {
                "name": f["name"],
                **({"unit": f["unit"]} if f["unit"] else {}),
                "description": f["kind"],
            }
            for f in card["features"]
        ]
    code, wkt2 = _crs_of(facts, report)
    properties: dict[str, Any] = {
        "datetime": f"{acquired}T00:00:00Z" if acquired else created,
        "created": created,
        "title": f"{cfg.name}: soil heavy-metal maps (geohm {command})",
        "proj:code": code,
        "proj:wkt2": wkt2,
        **_mlm_fields(card),
        "geohm:version": __version__,
        "geohm:command": command,
        "geohm:config_sha256": config_sha256,
        "geohm:features": card["features"],
        "geohm:targets": {
            t: {
                k: v[k]
                for k in (
                    "unit",
                    "model",
                    "n_train",
                    "cv",
                    "cv_spatial",
                    "test",
                    "validation",
                    "aoa_share_inside",
                )
                if k in v
            }
            for t, v in card["targets"].items()
        },
        "geohm:risk_standard": None if standard is None else dict(standard),
    }
    if card.get("training_samples") is not None:
        properties["geohm:training_samples"] = card["training_samples"]
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [PROJECTION_EXTENSION, RASTER_EXTENSION, MLM_EXTENSION],
        "id": cfg.name,
        "geometry": geometry,
        "bbox": bbox,
        "properties": properties,
        "links": [
            {
                "rel": "describedby",
                "href": f"./{RUN_NAME}",
                "type": "application/json",
                "title": "provenance record (run.json)",
            }
        ],
        "assets": assets,
    }


def _mlm_fields(card: Mapping[str, Any]) -> dict[str, Any]:
    """The ``mlm:`` Item properties of a model card (MLM extension v1.4.0)."""
    task = card["task"]
    fields: dict[str, Any] = {
        "mlm:name": card["name"],
        "mlm:architecture": card["architecture"],
        "mlm:tasks": [task],
        "mlm:pretrained": bool(card["pretrained"]),
        "mlm:pretrained_source": "the source year's imagery and samples (source:)"
        if card["pretrained"]
        else None,
        "mlm:accelerator": None,
        "mlm:accelerator_constrained": False,
        "mlm:input": [
            {
                "name": f"{t} features",
                "bands": list(v["features"]),
                "input": {
                    "shape": [-1, len(v["features"])],
                    "dim_order": ["batch", "channel"],
                    "data_type": "float64",
                },
                "description": f"per-pixel features of the {t} model (units in geohm:features); "
                "scaling and screening are part of the model",
                "value_scaling": None,
                "resize_type": None,
                "pre_processing_function": None,
            }
            for t, v in card["targets"].items()
        ],
        "mlm:output": [
            {
                "name": t,
                "tasks": [task],
                "result": {"shape": [-1], "dim_order": ["batch"], "data_type": "float32"},
                "description": f"{t} concentration in topsoil, {v['unit']}"
                if task == "regression"
                else f"probability that the soil is contaminated ({v['unit']})",
                "post_processing_function": None,
            }
            for t, v in card["targets"].items()
        ],
        "mlm:hyperparameters": {
            re.sub(r"[^0-9A-Za-z_.-]", "_", str(k)): v for k, v in card["hyperparameters"].items()
        },
    }
    if card.get("framework"):
        fields["mlm:framework"] = card["framework"]
    if card.get("framework_version"):
        fields["mlm:framework_version"] = card["framework_version"]
    return fields


def _crs_of(facts: Mapping[str, Mapping[str, Any]], report: Mapping[str, Any]) -> tuple[Any, Any]:
    """``proj:code`` and ``proj:wkt2`` of the grid: from the first GeoTIFF written."""
    for fact in facts.values():
        if fact.get("kind") == "raster":
            return fact["crs_code"], fact["crs_wkt2"]
    return None, str(report["grid"]["crs"])


def _bounds(transform: list[float], height: int, width: int) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a north-up grid."""
    a, _, c, _, e, f = (float(v) for v in transform[:6])
    xs = (c, c + a * width)
    ys = (f, f + e * height)
    return (min(xs), min(ys), max(xs), max(ys))

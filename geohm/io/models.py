"""Saving and loading fitted geohm models (``model.geohm``), without pickle.

A model file is a zip archive of two members:

``manifest.json``
    The format name and integer version, the geohm version that wrote it, the scene and
    model names, the cube features and, per target, its features (JSON).
``model.skops``
    The fitted objects (pipelines, estimators, interval models) written by
    :func:`skops.io.dumps`. skops stores objects as a JSON description of their state
    and numpy arrays saved with ``allow_pickle=False``; loading imports and builds only
    the types it is told to trust.

Loading never unpickles anything. It lists every type the file would build (skops'
audit tree, with skops' default trust of all scikit-learn estimators, numpy and the
builtins switched off: see :func:`_types_in`) and refuses the file unless each one is in
:data:`TRUSTED_TYPES` (:mod:`geohm.io.trusted`), an explicit list of geohm's own
estimators and transformers and exactly the scikit-learn, numpy, scipy and pykrige types
they hold; ``skops.io.loads`` is
then given that list. A default-trusted scikit-learn estimator that geohm never writes
(``KMeans``, ``SVR``...), whose arrays compiled code would follow unchecked, is refused.
Torch nets are stored as their architecture and their weights as numpy arrays (see
``SpectralResNetRegressor.__getstate__``), so no torch pickle is involved either; state
an estimator keeps only for a later ``fit`` (the gradient boosting's random generator) is
left out (:data:`~geohm.io.trusted.FIT_SCRATCH`). After loading, every scikit-learn,
scipy and pykrige object is checked against the list again, and the structures that
compiled code indexes without bounds checks (scikit-learn trees, gradient boosting trees
and neighbour trees, the SVC's libsvm arrays, pykrige's kriging system, sparse matrices)
are checked (:func:`geohm.io.trusted.check_graph`). Model files hold the fitted
scikit-learn forests, never geohm's compiled forest: its tables are built after loading,
from the checked trees (:func:`save_model` refuses a geohm type it would not load).

Old ``model.joblib`` files (pickle) are refused with a hint to re-run ``geohm run``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from geohm.errors import InputError
from geohm.io.rasters import atomic_path
from geohm.io.trusted import FIT_SCRATCH, TRUSTED_TYPES, object_graph, qualname
from geohm.io.trusted import check_graph as _check_graph

__all__ = ["FORMAT", "FORMAT_VERSION", "MODEL_FILE", "TRUSTED_TYPES", "load_model", "save_model"]

#: File name ``geohm run`` writes the fitted models to.
MODEL_FILE = "model.geohm"
#: ``format`` of the manifest.
FORMAT = "geohm-model"
#: Version of the file layout this geohm writes and the newest it reads.
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_OBJECTS = "model.skops"
#: Largest member read from a model file (bytes, uncompressed): a bound against zip bombs.
_MAX_MEMBER = 8 * 2**30

_REWRITE = f"re-run geohm run to write {MODEL_FILE}"


def save_model(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a fitted-model bundle atomically as a ``model.geohm`` zip archive.

    Parameters
    ----------
    path : path-like
        The file to write (``OUT/model.geohm``).
    payload : dict
        ``targets: {name: {"estimator", "features", "required", "interval", "aoa",
        "aoa_features"}}`` (``aoa``: the area of applicability's state as plain values,
        or None) plus the metadata ``geohm_version``, ``scene``, ``model`` and ``cube_features``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import skops
    import skops.io as sio

    targets = payload["targets"]
    objects = {
        "targets": {
            k: {
                "estimator": v["estimator"],
                "interval": v.get("interval"),
                "aoa": v.get("aoa"),
                "source_aoa": v.get("source_aoa"),
            }
            for k, v in targets.items()
        }
    }
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "geohm_version": payload.get("geohm_version"),
        "skops_version": skops.__version__,
        "scene": payload.get("scene"),
        "model": payload.get("model"),
        "cube_features": list(payload.get("cube_features", [])),
        "targets": {
            k: {
                "features": list(v["features"]),
                "required": None if v.get("required") is None else list(v["required"]),
                "interval": v.get("interval") is not None,
                "train_mean": _finite_or_none(v.get("train_mean")),
                **{
                    key: list(v[key])
                    for key, state in (
                        ("aoa_features", "aoa"),
                        ("source_aoa_features", "source_aoa"),
                    )
                    if v.get(state) is not None and v.get(key) is not None
                },
            }
            for k, v in targets.items()
        },
        "members": [_MANIFEST, _OBJECTS],
    }
    with _without_fit_scratch(objects):
        data = sio.dumps(objects, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    # A geohm type that load_model refuses is never written (e.g. the compiled forest of
    # geohm.models.compiled: model files hold the fitted estimators; acceleration
    # happens after loading).
    refused = sorted({t for t in _types_in(data) if t.startswith("geohm.")} - TRUSTED_TYPES)
    if refused:
        raise ValueError(
            f"model file '{path}' not written: it would hold {', '.join(refused)}, which "
            "geohm does not load; save the fitted estimators, not accelerated copies"
        )
    final = Path(path)
    with atomic_path(final) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr(_MANIFEST, json.dumps(manifest, indent=2))
        zf.writestr(_OBJECTS, data)  # already compressed by skops
    return final


@contextmanager
def _without_fit_scratch(root: Any) -> Iterator[None]:
    """Leave the :data:`FIT_SCRATCH` attributes out while the file is written.

    They are removed from the ``__dict__`` of every estimator under ``root`` and put back
    afterwards.
    """
    removed: list[tuple[Any, str, Any]] = []
    try:
        for obj in object_graph(root):
            for name in FIT_SCRATCH.get(qualname(obj), ()):
                attrs = vars(obj)
                if name in attrs:
                    removed.append((obj, name, attrs.pop(name)))
        yield
    finally:
        for obj, name, value in removed:
            vars(obj)[name] = value


def load_model(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a bundle written by :func:`save_model`, running no code from the file.

    Returns
    -------
    dict
        ``kind``, ``format_version``, ``geohm_version``, ``scene``, ``model``,
        ``cube_features`` and ``targets: {name: {"estimator", "features", "required",
        "interval"}}``.

    Raises
    ------
    InputError
        Missing file; an old pickle/joblib model; not a geohm model file; written by a
        newer geohm; a type outside :data:`TRUSTED_TYPES`; corrupt or inconsistent
        contents. The message is one line that names the file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"model file '{p}' does not exist; geohm run writes it as {MODEL_FILE}")
    if p.is_dir():
        raise InputError(f"model file '{p}' is a folder; give the {MODEL_FILE} inside it")
    try:
        if not zipfile.is_zipfile(p):
            if _looks_pickled(p):
                raise InputError(
                    f"model file '{p}' is an old pickle/joblib model, which geohm no longer "
                    f"loads because loading it can run code; {_REWRITE}"
                )
            raise InputError(f"'{p}' is not a geohm model file ({MODEL_FILE} from geohm run)")
        with zipfile.ZipFile(p) as zf:
            manifest = _manifest(p, zf)
            data = _member(p, zf, _OBJECTS)
    except InputError:
        raise
    except PermissionError as exc:
        raise InputError(f"model file '{p}' cannot be read: {_one_line(exc)}") from None
    except Exception as exc:  # zipfile and zlib raise many types on a damaged archive
        raise InputError(f"model file '{p}' is corrupt ({_one_line(exc)}); {_REWRITE}") from None
    objects = _load_objects(p, data)
    return _bundle(p, manifest, objects)


def _looks_pickled(p: Path) -> bool:
    """Tell whether ``p`` is a pickle or joblib file (plain or zlib/gzip/bz2/xz/lzma)."""
    if p.suffix.lower() in (".joblib", ".pkl", ".pickle"):
        return True
    with p.open("rb") as f:
        head = f.read(6)
    zlib = (b"\x78\x01", b"\x78\x5e", b"\x78\x9c", b"\x78\xda")
    magics = (b"\x80", b"ZF", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00\x00", *zlib)
    return head.startswith(magics)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _member(p: Path, zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise InputError(
            f"'{p}' is not a geohm model file (no {name} in the archive); {_REWRITE}"
        ) from None
    if info.file_size > _MAX_MEMBER:
        raise InputError(f"model file '{p}': member {name} is implausibly large; {_REWRITE}")
    return zf.read(info)


def _manifest(p: Path, zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = json.loads(_member(p, zf, _MANIFEST).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"model file '{p}' has an unreadable {_MANIFEST}; {_REWRITE}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"'{p}' is not a geohm model file ({MODEL_FILE} from geohm run)")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InputError(f"model file '{p}' has an invalid format_version {version!r}; {_REWRITE}")
    if version > FORMAT_VERSION:
        raise InputError(
            f"model file '{p}' has format version {version}, written by geohm "
            f"{manifest.get('geohm_version')}; this geohm reads up to version "
            f"{FORMAT_VERSION}: upgrade geohm"
        )
    return manifest


def _load_objects(p: Path, data: bytes) -> Any:
    """The object graph of ``model.skops``, if every type in it is in :data:`TRUSTED_TYPES`."""
    import skops.io as sio

    try:
        held = _types_in(data)
    except Exception as exc:  # skops raises many types on a malformed archive
        raise InputError(f"model file '{p}' is corrupt ({_one_line(exc)}); {_REWRITE}") from None
    refused = sorted(held - TRUSTED_TYPES)
    if refused:
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        raise InputError(
            f"model file '{p}' refused: it holds types geohm does not load "
            f"({', '.join(refused[:3])}{more}); use only model files written by geohm run"
        )
    try:
        # skops adds its defaults (every scikit-learn estimator) to any list; the check
        # above has already refused whatever is not in TRUSTED_TYPES
        objects = sio.loads(data, trusted=sorted(TRUSTED_TYPES))
        _check_graph(objects)
    except Exception as exc:  # building or checking the (trusted) objects failed
        raise InputError(
            f"model file '{p}' cannot be loaded ({_one_line(exc)}); {_REWRITE}"
        ) from None
    return objects


def _types_in(data: bytes) -> set[str]:
    """Every type, function and method a skops archive would build, trusted by default or not.

    :func:`skops.io.get_untrusted_types` leaves out what skops trusts by itself (all of
    scikit-learn's estimators, numpy's scalars, the builtins), and skops has no switch to
    turn those defaults off. So this builds skops' own audit tree of the archive (no
    object is built, nothing is imported) as :func:`skops.io.get_untrusted_types` does,
    empties every node's trusted list, and asks skops' audit for its unsafe set: every
    type in the file. Written against skops' node API (``Node.children`` and
    ``Node.trusted``, documented in ``skops.io._audit.Node``) because no public function
    lists them; ``load_model``'s tests pin it.
    """
    from skops.io._audit import Node, get_tree
    from skops.io._utils import read_schema

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        schema, context = read_schema(zf)
        tree = get_tree(schema, context, trusted=None)
    seen: set[int] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if not isinstance(node, Node) or id(node) in seen:
            continue
        seen.add(id(node))
        node.trusted = []
        for child in node.children.values():
            if isinstance(child, list):
                stack.extend(child)
            elif isinstance(child, dict):
                stack.extend(child.values())
            else:
                stack.append(child)
    return set(tree.get_unsafe_set())


def _bundle(p: Path, manifest: dict[str, Any], objects: Any) -> dict[str, Any]:
    """The bundle of :func:`load_model`: the manifest's metadata and the loaded objects."""
    described = manifest.get("targets")
    loaded = objects.get("targets") if isinstance(objects, dict) else None
    if (
        not isinstance(described, dict)
        or not isinstance(loaded, dict)
        or set(described) != set(loaded)
        or not described
        or not isinstance(manifest.get("cube_features"), list)
    ):
        raise InputError(f"model file '{p}': manifest and models do not match; {_REWRITE}")
    targets = {}
    for name, info in described.items():
        obj = loaded[name]
        if (
            not isinstance(info, dict)
            or not isinstance(info.get("features"), list)
            or not isinstance(obj, dict)
            or not callable(getattr(obj.get("estimator"), "predict", None))
            or not (obj.get("interval") is None or qualname(obj["interval"]) == _INTERVAL)
            or not all(
                obj.get(k) is None or isinstance(obj[k], dict) for k in ("aoa", "source_aoa")
            )
        ):
            raise InputError(f"model file '{p}': target '{name}' is incomplete; {_REWRITE}")
        targets[name] = {
            "estimator": obj["estimator"],
            "features": [str(f) for f in info["features"]],
            "required": None if info.get("required") is None else list(info["required"]),
            "interval": obj.get("interval"),
            "train_mean": _finite_or_none(info.get("train_mean")),
            "aoa": obj.get("aoa"),
            "source_aoa": obj.get("source_aoa"),
            **{
                key: None if info.get(key) is None else [str(f) for f in info[key]]
                for key in ("aoa_features", "source_aoa_features")
            },
        }
    return {
        "kind": FORMAT,
        "format_version": manifest["format_version"],
        "geohm_version": manifest.get("geohm_version"),
        "scene": manifest.get("scene"),
        "model": manifest.get("model"),
        "cube_features": [str(f) for f in manifest["cube_features"]],
        "targets": targets,
    }


def _finite_or_none(value: Any) -> float | None:
    """A finite number from the manifest, else None (never an error: it is optional)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and np.isfinite(value) else None


_INTERVAL = "geohm.models.uncertainty.IntervalModel"

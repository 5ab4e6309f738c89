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

Loading never unpickles anything. It lists the types the file would build
(:func:`skops.io.get_untrusted_types`) and refuses the file unless each one is in
:data:`TRUSTED_TYPES`: geohm's own estimators and transformers, enumerated, and the few
scikit-learn, scipy and pykrige types they hold (skops trusts the plain scikit-learn
estimators, numpy and the builtin containers by itself). Torch nets are stored as their
architecture and their weights as numpy arrays (see
``SpectralResNetRegressor.__getstate__``), so no torch pickle is involved either. After
loading, the structures that compiled code indexes without bounds checks (scikit-learn
trees and neighbour trees, pykrige's kriging system, sparse matrices) are checked; geohm's
compiled forest rebuilds its tables from the checked trees and never takes code, C
source or a library path from the file.

Old ``model.joblib`` files (pickle) are refused with a hint to re-run ``geohm run``.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from geohm.errors import InputError
from geohm.io.rasters import atomic_path

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

#: Types, beyond skops' defaults, that a model file may contain (fully qualified names).
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        # geohm's own transformers and estimators
        "geohm.preprocess.KNNImputer",
        "geohm.preprocess._ColumnFrame",
        "geohm.preprocess._Except",
        "geohm.selection.CorrelationVIFSelector",
        "geohm.spectra.Absorbance",
        "geohm.spectra.SavitzkyGolay",
        "geohm.spectra.StandardNormalVariate",
        "geohm.models.spatial.BufferDistances",
        "geohm.models.gabp.GABPRegressor",
        "geohm.models.transfer.TransferGABPRegressor",
        "geohm.models.kriging.OrdinaryKrigingRegressor",
        "geohm.models.kriging.RegressionKriging",
        "geohm.models.spectral.SpectralResNetRegressor",
        "geohm.models.compiled.CompiledForest",
        "geohm.models.uncertainty.IntervalModel",
        "geohm.models.uncertainty._LeafWeights",
        "geohm.models.classify._FeatureGuard",
        "geohm.models.classify._CappedStratifiedKFold",
        "geohm.pipeline._Probability",
        # what they hold: tree structures (checked after loading), sparse leaf weights,
        # pykrige's kriging object and its variogram functions
        "sklearn.tree._tree.Tree",
        "scipy.sparse._csr.csr_array",
        "scipy.sparse._csr.csr_matrix",
        "pykrige.ok.OrdinaryKriging",
        "pykrige.variogram_models.spherical_variogram_model",
        "pykrige.variogram_models.exponential_variogram_model",
        "pykrige.variogram_models.gaussian_variogram_model",
        # the classifiers' grid search (scorer), calibration and neighbour search
        "sklearn.metrics._scorer._Scorer",
        "sklearn.metrics._classification.f1_score",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
    }
)

_REWRITE = f"re-run geohm run to write {MODEL_FILE}"


def save_model(path: str | os.PathLike[str], payload: dict[str, Any]) -> Path:
    """Write a fitted-model bundle atomically as a ``model.geohm`` zip archive.

    Parameters
    ----------
    path : path-like
        The file to write (``OUT/model.geohm``).
    payload : dict
        ``targets: {name: {"estimator", "features", "required", "interval"}}`` plus the
        metadata ``geohm_version``, ``scene``, ``model`` and ``cube_features``.

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
            k: {"estimator": v["estimator"], "interval": v.get("interval")}
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
            }
            for k, v in targets.items()
        },
        "members": [_MANIFEST, _OBJECTS],
    }
    data = sio.dumps(objects, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    final = Path(path)
    with atomic_path(final) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr(_MANIFEST, json.dumps(manifest, indent=2))
        zf.writestr(_OBJECTS, data)  # already compressed by skops
    return final


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
    """A pickle or joblib file (plain, zlib, gzip, bz2, xz or lzma compressed)?"""
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
    """The object graph of ``model.skops``, if every type in it is trusted."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # skops raises many types on a malformed archive
        raise InputError(f"model file '{p}' is corrupt ({_one_line(exc)}); {_REWRITE}") from None
    refused = [t for t in untrusted if t not in TRUSTED_TYPES]
    if refused:
        more = f" and {len(refused) - 3} more" if len(refused) > 3 else ""
        raise InputError(
            f"model file '{p}' refused: it holds types geohm does not load "
            f"({', '.join(refused[:3])}{more}); use only model files written by geohm run"
        )
    try:
        objects = sio.loads(data, trusted=untrusted)
        _check_graph(objects)
    except Exception as exc:  # building or checking the (trusted) objects failed
        raise InputError(
            f"model file '{p}' cannot be loaded ({_one_line(exc)}); {_REWRITE}"
        ) from None
    return objects


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
            or not (obj.get("interval") is None or _qualname(obj["interval"]) == _INTERVAL)
        ):
            raise InputError(f"model file '{p}': target '{name}' is incomplete; {_REWRITE}")
        targets[name] = {
            "estimator": obj["estimator"],
            "features": [str(f) for f in info["features"]],
            "required": None if info.get("required") is None else list(info["required"]),
            "interval": obj.get("interval"),
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


# --------------------------------------------------------------------------- checks
# skops decides which types may be built; these checks cover what it cannot see: the
# values inside trusted structures that compiled code (Cython, geohm's C kernel) indexes
# without bounds checks. Written by hand because no library validates these structures.


def _check_graph(root: Any) -> None:
    """Check every tree, neighbour tree, kriging object and sparse matrix under ``root``.

    Raises
    ------
    ValueError
        A malformed structure (corrupt or crafted file).
    """
    from pykrige.ok import OrdinaryKriging
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float):
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
            continue
        if isinstance(obj, dict):
            stack.extend(obj.values())
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
            continue
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "__dict__")):
            continue
        if isinstance(obj, Tree):
            _check_tree(obj, int(obj.n_features))
        elif isinstance(obj, BaseDecisionTree) and hasattr(obj, "tree_"):
            _check_tree(obj.tree_, int(obj.n_features_in_))
        elif isinstance(obj, KDTree | BallTree):
            _check_neighbour_tree(obj)
        elif isinstance(obj, OrdinaryKriging):
            _check_kriging(obj)
        elif sp.issparse(obj):
            obj.check_format(full_check=True)
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            stack.extend(attrs.values())


def _check_tree(tree: Any, n_features: int) -> None:
    """A scikit-learn ``Tree`` must be a well-formed tree of ``n_features`` inputs.

    scikit-learn's ``Tree.__setstate__`` checks the dtypes and shapes of the node and value
    arrays but neither the node count nor the child and feature indices, which its
    Cython ``predict`` (and geohm's kernel) follow unchecked. The invariant: ``node_count``
    nodes; a node is a leaf (both children -1) or has two children with larger ids; every
    node but the root is the child of exactly one node; split features are in
    ``[0, n_features)``. (``geohm.models.compiled.check_tree_structure`` checks the same
    for the compiled forest's own trees; ``geohm.io`` does not import the models.)
    """
    nodes = tree.__getstate__()["nodes"]
    n = int(tree.node_count)
    if n < 1 or nodes.shape != (n,) or not 0 < int(tree.n_features) <= n_features:
        raise ValueError("tree whose node count or number of features is inconsistent")
    left = np.asarray(nodes["left_child"], dtype=np.int64)
    right = np.asarray(nodes["right_child"], dtype=np.int64)
    leaf = left == -1
    ids = np.flatnonzero(~leaf)
    lo, hi = left[ids], right[ids]
    feat = np.asarray(nodes["feature"], dtype=np.int64)[ids]
    if (
        np.any(leaf != (right == -1))
        or np.any(lo <= ids)
        or np.any(hi <= ids)
        or not np.array_equal(np.sort(np.concatenate([lo, hi])), np.arange(1, n))
        or np.any(feat < 0)
        or np.any(feat >= int(tree.n_features))
    ):
        raise ValueError("tree whose child or feature indices are out of order or range")


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


_INTERVAL = "geohm.models.uncertainty.IntervalModel"


def _check_neighbour_tree(tree: Any) -> None:
    """A KD/ball tree must be the one scikit-learn builds from its own data.

    Its queries follow the stored index and node arrays unchecked; rebuilding it from
    ``data`` with the same leaf size and metric must give the same arrays.
    """
    from sklearn.metrics._dist_metrics import EuclideanDistance64

    state = tree.__getstate__()
    data, metric = np.asarray(state[0]), state[11]
    if not isinstance(metric, EuclideanDistance64) or data.ndim != 2 or state[12] is not None:
        raise ValueError("neighbour tree with an unexpected metric, data or sample weights")
    rebuilt = type(tree)(data, leaf_size=int(state[4]), metric="euclidean").__getstate__()
    for i in (1, 2, 3):
        a, b = np.asarray(state[i]), np.asarray(rebuilt[i])
        if a.dtype != b.dtype or a.shape != b.shape or a.tobytes() != b.tobytes():
            raise ValueError("neighbour tree whose arrays are not those of its data")
    if tuple(state[5:7]) != tuple(rebuilt[5:7]):
        raise ValueError("neighbour tree whose sizes are not those of its data")


def _check_kriging(ok: Any) -> None:
    """pykrige's kriging object: consistent arrays and one of geohm's variogram models.

    pykrige's compiled moving-window loop indexes ``Z`` with neighbours of the
    ``X_ADJUSTED``/``Y_ADJUSTED`` points, and its compiled variogram reads three
    parameters, all unchecked.
    """
    from pykrige import variogram_models as vm

    functions = {
        "spherical": vm.spherical_variogram_model,
        "exponential": vm.exponential_variogram_model,
        "gaussian": vm.gaussian_variogram_model,
    }
    names = ("X_ORIG", "Y_ORIG", "X_ADJUSTED", "Y_ADJUSTED", "Z")
    arrays: list[Any] = [getattr(ok, k, None) for k in names]
    params = getattr(ok, "variogram_model_parameters", None)
    model = getattr(ok, "variogram_model", None)
    if (
        getattr(ok, "coordinates_type", None) != "euclidean"
        or not isinstance(model, str)
        or functions.get(model) is not getattr(ok, "variogram_function", None)
        or not all(isinstance(a, np.ndarray) and a.dtype == np.float64 for a in arrays)
        or len({a.shape for a in arrays}) != 1
        or arrays[0].ndim != 1
        or arrays[0].size < 1
        or not isinstance(params, np.ndarray)
        or params.dtype != np.float64
        or params.shape != (3,)
    ):
        raise ValueError("kriging object with inconsistent arrays or an unknown variogram")

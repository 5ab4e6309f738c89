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
:data:`TRUSTED_TYPES`, an explicit list of geohm's own estimators and transformers and
exactly the scikit-learn, numpy, scipy and pykrige types they hold; ``skops.io.loads`` is
then given that list. A default-trusted scikit-learn estimator that geohm never writes
(``KMeans``, ``SVR``...), whose arrays compiled code would follow unchecked, is refused.
Torch nets are stored as their architecture and their weights as numpy arrays (see
``SpectralResNetRegressor.__getstate__``), so no torch pickle is involved either; state
an estimator keeps only for a later ``fit`` (the gradient boosting's random generator) is
left out (:data:`_FIT_SCRATCH`). After loading, every scikit-learn, scipy and pykrige
object is checked against the list again, and the structures that compiled code indexes
without bounds checks (scikit-learn trees, gradient boosting trees and neighbour trees,
the SVC's libsvm arrays, pykrige's kriging system, sparse matrices) are checked; geohm's
compiled forest rebuilds its tables from the checked trees and never takes code, C source
or a library path from the file.

Old ``model.joblib`` files (pickle) are refused with a hint to re-run ``geohm run``.
"""

from __future__ import annotations

import io
import json
import os
import types
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

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

_HGB = "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingRegressor"

#: geohm's own estimators and transformers that a model file may contain.
_GEOHM_TYPES = frozenset(
    {
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
    }
)

#: The scikit-learn, numpy, scipy, pykrige and builtin types geohm's models hold: exactly
#: those ``geohm run`` writes (skops by itself would also build every other scikit-learn
#: estimator, e.g. an ``SVR`` or ``KMeans`` whose arrays libsvm or Cython would follow
#: unchecked; they are refused).
_LIBRARY_TYPES = frozenset(
    {
        # containers and scalars
        *(f"builtins.{t}" for t in ("bool", "int", "float", "str", "list", "tuple", "dict", "set")),
        "numpy.ndarray",
        "numpy.ma.MaskedArray",  # GridSearchCV.cv_results_
        *(f"numpy.{t}" for t in ("float64", "float32", "int64", "int32", "bool", "bool_")),
        "numpy.uint64",  # the gradient boosting's and its binner's seed
        # the log-target transform (TransformedTargetRegressor's func and inverse_func)
        "numpy.log1p",
        "numpy.expm1",
        # regression pipelines: scaling, one-hot codes, raw columns, log target, frozen
        # transfer steps, random forest (its trees are checked after loading)
        "sklearn.pipeline.Pipeline",
        "sklearn.compose._column_transformer.ColumnTransformer",
        "sklearn.compose._target.TransformedTargetRegressor",
        "sklearn.preprocessing._data.MinMaxScaler",
        "sklearn.preprocessing._encoders.OneHotEncoder",
        "sklearn.preprocessing._function_transformer.FunctionTransformer",
        "sklearn.frozen._frozen.FrozenEstimator",
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._tree.Tree",
        # gradient boosting (geohm.models.gbm, squared error loss): its trees
        # (TreePredictor, checked after loading), binner and loss; its fit-only random
        # generator is not saved (see _FIT_SCRATCH)
        _HGB,
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
        "sklearn._loss.loss.HalfSquaredError",
        "sklearn._loss._loss.CyHalfSquaredError",
        "sklearn._loss.link.IdentityLink",
        "sklearn._loss.link.Interval",
        # the classifiers (geohm.models.classify): grid search on macro F1, standardised
        # features, random forest, SVC with sigmoid calibration (checked after loading),
        # k nearest neighbours and their KD tree (checked after loading)
        "sklearn.model_selection._search.GridSearchCV",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.metrics._classification.f1_score",
        "sklearn.preprocessing._data.StandardScaler",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.calibration.CalibratedClassifierCV",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.svm._classes.SVC",
        "sklearn.neighbors._classification.KNeighborsClassifier",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        # sparse leaf weights of the interval model (checked after loading)
        "scipy.sparse._csr.csr_array",
        # pykrige's kriging object and geohm's variogram models (checked after loading)
        "pykrige.ok.OrdinaryKriging",
        "pykrige.variogram_models.spherical_variogram_model",
        "pykrige.variogram_models.exponential_variogram_model",
        "pykrige.variogram_models.gaussian_variogram_model",
    }
)

#: Every type a model file may contain (fully qualified names), and the only ones loading
#: builds: nothing is trusted by default, scikit-learn's estimators included.
TRUSTED_TYPES: frozenset[str] = _GEOHM_TYPES | _LIBRARY_TYPES

#: Attributes that a fitted estimator keeps only for a later ``fit`` (never for
#: ``predict``) and that :func:`save_model` leaves out of the file, by estimator type.
#: ``HistGradientBoostingRegressor._feature_subsample_rng`` is a ``numpy.random.Generator``
#: used only to draw features while growing trees (and to continue that draw on a warm
#: start); trusting ``Generator`` would also make skops call whichever numpy bit
#: generator the file names, which skops trusts with no switch to turn that off. A
#: loaded gradient boosting model predicts exactly as before; it cannot be warm-started.
#: ``_raw_predict`` is a bound method of the estimator itself that early stopping on a
#: ``scoring`` other than the loss leaves in ``__dict__`` (scikit-learn patches it while
#: scoring and puts the class's method back as an instance attribute); skops recurses on
#: it, and without it the class's own method, the same one, answers.
_FIT_SCRATCH: dict[str, tuple[str, ...]] = {_HGB: ("_feature_subsample_rng", "_raw_predict")}

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
                "train_mean": _finite_or_none(v.get("train_mean")),
            }
            for k, v in targets.items()
        },
        "members": [_MANIFEST, _OBJECTS],
    }
    with _without_fit_scratch(objects):
        data = sio.dumps(objects, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    final = Path(path)
    with atomic_path(final) as tmp, zipfile.ZipFile(tmp, "w") as zf:
        zf.writestr(_MANIFEST, json.dumps(manifest, indent=2))
        zf.writestr(_OBJECTS, data)  # already compressed by skops
    return final


def _graph(root: Any) -> Iterator[Any]:
    """Every object under ``root``: containers, object arrays and instance attributes."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, np.ndarray):
            if obj.dtype == object:
                stack.extend(obj.ravel().tolist())
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif not isinstance(obj, type | types.ModuleType | types.FunctionType) and isinstance(
            getattr(obj, "__dict__", None), dict
        ):
            stack.extend(vars(obj).values())


@contextmanager
def _without_fit_scratch(root: Any) -> Iterator[None]:
    """Leave the :data:`_FIT_SCRATCH` attributes of every estimator under ``root`` out of
    its ``__dict__`` while the file is written, and put them back afterwards."""
    removed: list[tuple[Any, str, Any]] = []
    try:
        for obj in _graph(root):
            for name in _FIT_SCRATCH.get(_qualname(obj), ()):
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
            or not (obj.get("interval") is None or _qualname(obj["interval"]) == _INTERVAL)
        ):
            raise InputError(f"model file '{p}': target '{name}' is incomplete; {_REWRITE}")
        targets[name] = {
            "estimator": obj["estimator"],
            "features": [str(f) for f in info["features"]],
            "required": None if info.get("required") is None else list(info["required"]),
            "interval": obj.get("interval"),
            "train_mean": _finite_or_none(info.get("train_mean")),
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
# TRUSTED_TYPES decides which types may be built; these checks cover what it cannot see:
# the values inside trusted structures that compiled code (Cython, geohm's C kernel) indexes
# without bounds checks. Written by hand because no library validates these structures.


def _check_graph(root: Any) -> None:
    """Check every object under ``root``: its type, and the structures compiled code reads.

    Every scikit-learn, scipy and pykrige object and function must be in
    :data:`TRUSTED_TYPES` (a second line of defence behind the check of the file's types);
    trees, gradient boosting trees, neighbour trees, support vector machines, kriging
    objects and sparse matrices must be well formed.

    Raises
    ------
    ValueError
        A malformed structure or a type geohm does not load (corrupt or crafted file).
    """
    from pykrige.ok import OrdinaryKriging
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    for obj in _graph(root):  # _graph walks into containers and instance attributes
        if isinstance(obj, np.ndarray | dict | list | tuple | set | frozenset):
            continue
        if isinstance(obj, types.FunctionType):
            # imported from its module by name (its attributes are the library's, not
            # the file's): only the name is checked
            _check_name(f"{obj.__module__}.{obj.__qualname__}")
            continue
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "__dict__")):
            continue
        _check_name(_qualname(obj))
        if isinstance(obj, Tree):
            _check_tree(obj, int(obj.n_features))
        elif isinstance(obj, BaseDecisionTree) and hasattr(obj, "tree_"):
            _check_tree(obj.tree_, int(obj.n_features_in_))
        elif isinstance(obj, BaseHistGradientBoosting) and "_predictors" in vars(obj):
            _check_hist_gbm(obj)
        elif isinstance(obj, KDTree | BallTree):
            _check_neighbour_tree(obj)
        elif isinstance(obj, BaseLibSVM) and hasattr(obj, "support_vectors_"):
            _check_svc(obj)
        elif isinstance(obj, OrdinaryKriging):
            _check_kriging(obj)
        elif sp.issparse(obj):
            obj.check_format(full_check=True)


#: Libraries whose objects :func:`_check_graph` checks against :data:`TRUSTED_TYPES`.
_CHECKED_LIBRARIES = ("sklearn", "scipy", "pykrige")


def _finite_or_none(value: Any) -> float | None:
    """A finite number from the manifest, else None (never an error: it is optional)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if ok and np.isfinite(value) else None


def _plain(a: Any) -> TypeGuard[np.ndarray]:
    """Whether ``a`` is exactly a numpy array: not a subclass such as ``MaskedArray``,
    whose masked entries numpy's reductions skip while compiled code reads them."""
    return type(a) is np.ndarray


def _check_name(name: str) -> None:
    if name.partition(".")[0] in _CHECKED_LIBRARIES and name not in TRUSTED_TYPES:
        raise ValueError(f"a {name}, which geohm does not load")


def _check_svc(svc: Any) -> None:
    """A fitted ``SVC`` must be one libsvm can read: dense, RBF, consistent array sizes.

    scikit-learn hands ``support_``, ``support_vectors_``, ``_n_support``,
    ``_dual_coef_``, ``_intercept_``, ``_probA`` and ``_probB`` to libsvm, which sizes its
    model from ``len(support_)`` and ``len(_n_support)`` and walks the per-class support
    vector counts without bounds checks; scikit-learn only checks that the counts sum to
    the number of support vectors (``[100000, -99979]`` passes and crashes the process).
    The invariant, for ``k`` classes and ``l`` support vectors: the counts are ``k``
    non-negative int32 summing to ``l``; ``support_`` holds ``l`` indices of training
    samples; ``support_vectors_`` is ``(l, n_features_in_)`` float64; ``_dual_coef_`` is
    ``(k - 1, l)``; ``_intercept_`` has ``k(k - 1)/2`` values and ``_probA``/``_probB``
    none or as many.
    """
    classes = np.asarray(getattr(svc, "classes_", []))
    k = classes.shape[0] if classes.ndim == 1 else 0
    pairs = k * (k - 1) // 2
    sv, n_sv = svc.support_vectors_, svc._n_support
    support, dual, intercept = svc.support_, svc._dual_coef_, svc._intercept_
    prob_a, prob_b = svc._probA, svc._probB
    shape_fit = getattr(svc, "shape_fit_", None)
    arrays = (sv, n_sv, support, dual, intercept, prob_a, prob_b)
    if (
        type(svc).__name__ != "SVC"
        or getattr(svc, "_impl", None) != "c_svc"
        or getattr(svc, "kernel", None) != "rbf"
        or getattr(svc, "_sparse", None) is not False
        or k < 2
        or not all(_plain(a) for a in arrays)
        or not isinstance(shape_fit, tuple)
        or len(shape_fit) != 2
    ):
        raise ValueError("support vector machine of an unexpected kind or without its arrays")
    n_features = int(getattr(svc, "n_features_in_", -1))
    n_train = int(shape_fit[0])
    l_sv = sv.shape[0] if sv.ndim == 2 else -1
    if (
        sv.dtype != np.float64
        or sv.shape != (l_sv, n_features)
        or int(shape_fit[1]) != n_features
        or n_sv.dtype != np.int32
        or n_sv.shape != (k,)
        or np.any(n_sv < 0)
        or int(n_sv.sum(dtype=np.int64)) != l_sv
        or support.dtype != np.int32
        or support.shape != (l_sv,)
        or np.any(support < 0)
        or np.any(support >= n_train)
        or dual.dtype != np.float64
        or dual.shape != (k - 1, l_sv)
        or intercept.dtype != np.float64
        or intercept.shape != (pairs,)
        or prob_a.dtype != np.float64
        or prob_b.dtype != np.float64
        or prob_a.shape not in ((0,), (pairs,))
        or prob_b.shape != prob_a.shape
    ):
        raise ValueError("support vector machine whose libsvm arrays are inconsistent")


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


def _check_hist_gbm(gbm: Any) -> None:
    """A fitted ``HistGradientBoostingRegressor`` must hold trees its Cython predict can walk.

    ``predict`` checks that ``X`` has ``n_features_in_`` columns, then, for every tree
    (``TreePredictor``) of every iteration, walks ``nodes`` from node 0 until a leaf
    (``sklearn/ensemble/_hist_gradient_boosting/_predictor.pyx``, compiled without bounds
    checks): it reads ``X[row, feature_idx]`` and goes to ``nodes[left]`` or
    ``nodes[right]``; at a categorical split it reads row ``bitset_idx`` of the tree's
    ``raw_left_cat_bitsets`` and row ``f_idx_map[feature_idx]`` of the binner's known
    categories (``f_idx_map`` has one entry per ``_bin_mapper.is_categorical_``), the
    binned walk the same with ``binned_left_cat_bitsets``. scikit-learn checks none of
    these indices, and a cycle would loop for ever. The invariant (scikit-learn numbers
    the nodes depth first: a split's children come after it): ``nodes`` is a non-empty
    array of ``PREDICTOR_RECORD_DTYPE``; a split node's ``left`` and ``right`` are larger
    than its own index and below ``len(nodes)``, and every node but the root is the child
    of exactly one split; split features are in ``[0, n_features_in_)``; a categorical
    split is on a feature the binner lists as categorical, and its ``bitset_idx`` is a
    row of both bitset arrays (``uint32``, 8 words a row). And the model: no
    column preprocessor (categorical inputs need scikit-learn's ordinal encoder, which
    geohm does not load; the preprocessor would decide the column count the walk
    trusts), not in the middle of ``fit`` (that switches ``predict`` to the binned walk),
    one tree per iteration and a ``(1, 1)`` float64 baseline.
    """
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.common import PREDICTOR_RECORD_DTYPE
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    attrs = vars(gbm)
    n_features = attrs.get("n_features_in_")
    binner = attrs.get("_bin_mapper")
    baseline = attrs.get("_baseline_prediction")
    iterations = attrs.get("_predictors")
    categorical = getattr(binner, "is_categorical_", None)
    if (
        not isinstance(n_features, int | np.integer)
        or isinstance(n_features, bool)
        or n_features < 1
        or attrs.get("_n_features", n_features) != n_features
        or "_in_fit" in attrs
        or attrs.get("_preprocessor") is not None
        or attrs.get("n_trees_per_iteration_") != 1
        or not _plain(baseline)
        or baseline.dtype != np.float64
        or baseline.shape != (1, 1)
        or type(binner) is not _BinMapper
        or not _plain(categorical)
        or categorical.shape != (n_features,)
        or not isinstance(iterations, list)
        or not iterations
        or not all(
            isinstance(trees, list) and len(trees) == 1 and type(trees[0]) is TreePredictor
            for trees in iterations
        )
    ):
        raise ValueError("gradient boosting model of an unexpected kind or shape")
    is_categorical = categorical.astype(bool)
    for (tree,) in iterations:
        nodes = getattr(tree, "nodes", None)
        bitsets: list[Any] = [
            getattr(tree, k, None) for k in ("raw_left_cat_bitsets", "binned_left_cat_bitsets")
        ]
        if (
            not _plain(nodes)
            or nodes.dtype != PREDICTOR_RECORD_DTYPE
            or nodes.ndim != 1
            or nodes.size < 1
            or not all(
                _plain(b)
                and b.dtype == np.uint32
                and b.ndim == 2
                and b.shape[1] == 8
                for b in bitsets
            )
        ):
            raise ValueError("gradient boosting tree whose node or bitset arrays are malformed")
        n = nodes.size
        ids = np.flatnonzero(nodes["is_leaf"] == 0)
        left = nodes["left"][ids].astype(np.int64)
        right = nodes["right"][ids].astype(np.int64)
        feat = nodes["feature_idx"][ids].astype(np.int64)
        split_cat = nodes["is_categorical"][ids] != 0
        if (
            np.any(left <= ids)
            or np.any(right <= ids)
            or not np.array_equal(np.sort(np.concatenate([left, right])), np.arange(1, n))
            or np.any(feat < 0)
            or np.any(feat >= n_features)
            or not np.all(is_categorical[feat[split_cat]])
            or np.any(nodes["bitset_idx"][ids][split_cat] >= min(len(b) for b in bitsets))
        ):
            raise ValueError(
                "gradient boosting tree whose child, feature or bitset indices are out of "
                "order or range"
            )


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
        or not all(_plain(a) and a.dtype == np.float64 for a in arrays)
        or len({a.shape for a in arrays}) != 1
        or arrays[0].ndim != 1
        or arrays[0].size < 1
        or not _plain(params)
        or params.dtype != np.float64
        or params.shape != (3,)
    ):
        raise ValueError("kriging object with inconsistent arrays or an unknown variogram")

"""What a model file may hold: the trusted types, and checks of what compiled code reads.

:data:`TRUSTED_TYPES` is an explicit list of geohm's own estimators and transformers and
exactly the scikit-learn, numpy, scipy and pykrige types they hold; a model file that
names any other type is refused (:mod:`geohm.io.models`), and skops builds only these.
A default-trusted scikit-learn estimator that geohm never writes (``KMeans``, ``SVR``...),
whose arrays compiled code would follow unchecked, is refused. State an estimator keeps
only for a later ``fit`` is left out of the file (:data:`FIT_SCRATCH`).

After loading, :func:`check_graph` checks every scikit-learn, scipy and pykrige object
against the list again, and the structures that compiled code indexes without bounds
checks: scikit-learn trees, gradient boosting trees and neighbour trees, the SVC's
libsvm arrays, pykrige's kriging system, sparse matrices; and what a stacked ensemble
calls (its members' methods, its meta-learner's weights).

A new model whose fitted state holds new types adds them here (ARCHITECTURE.md, "A model").
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any, TypeGuard

import numpy as np
import scipy.sparse as sp

__all__ = ["FIT_SCRATCH", "TRUSTED_TYPES", "check_graph", "object_graph", "qualname"]

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
        "geohm.models.patchcnn.PatchCNNRegressor",
        "geohm.models.uncertainty.IntervalModel",
        "geohm.models.uncertainty._LeafWeights",
        "geohm.models.leafweights._LeafWeights",  # (files before 2026-12-02: the line above)
        "geohm.models.classify._FeatureGuard",
        "geohm.models.classify._CappedStratifiedKFold",
        "geohm.pipeline._Probability",
        "geohm.pipeline.run._Probability",  # (files before 2026-12-02: the line above)
        "geohm.autoselect.RowFolds",  # the stacked ensemble's folds (used by fit only)
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
        # auto's stacked ensemble: the candidates' pipelines under a stacking regressor
        # with a non-negative linear meta-learner (checked after loading)
        "sklearn.ensemble._stacking.StackingRegressor",
        "sklearn.linear_model._base.LinearRegression",
        "sklearn.utils._bunch.Bunch",  # a dict: the stack's members by name
        "sklearn.ensemble._forest.RandomForestRegressor",
        "sklearn.tree._classes.DecisionTreeRegressor",
        "sklearn.tree._tree.Tree",
        # gradient boosting (geohm.models.gbm, squared error loss): its trees
        # (TreePredictor, checked after loading), binner and loss; its fit-only random
        # generator is not saved (see FIT_SCRATCH)
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
#: ``predict``) and that :func:`geohm.io.models.save_model` leaves out of the file, by
#: estimator type.
#: ``HistGradientBoostingRegressor._feature_subsample_rng`` is a ``numpy.random.Generator``
#: used only to draw features while growing trees (and to continue that draw on a warm
#: start); trusting ``Generator`` would also make skops call whichever numpy bit
#: generator the file names, which skops trusts with no switch to turn that off. A
#: loaded gradient boosting model predicts exactly as before; it cannot be warm-started.
#: ``_raw_predict`` is a bound method of the estimator itself that early stopping on a
#: ``scoring`` other than the loss leaves in ``__dict__`` (scikit-learn patches it while
#: scoring and puts the class's method back as an instance attribute); skops recurses on
#: it, and without it the class's own method, the same one, answers.
FIT_SCRATCH: dict[str, tuple[str, ...]] = {_HGB: ("_feature_subsample_rng", "_raw_predict")}


def object_graph(root: Any) -> Iterator[Any]:
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


# --------------------------------------------------------------------------- checks
# TRUSTED_TYPES decides which types may be built; these checks cover what it cannot see:
# the values inside trusted structures that compiled code (Cython, geohm's C kernel) indexes
# without bounds checks. Written by hand because no library validates these structures.


def check_graph(root: Any) -> None:
    """Check every object under ``root``: its type, and the structures compiled code reads.

    Every scikit-learn, scipy and pykrige object and function must be in
    :data:`TRUSTED_TYPES` (a second line of defence behind the check of the file's types);
    trees, gradient boosting trees, neighbour trees, support vector machines, kriging
    objects, stacked ensembles and sparse matrices must be well formed.

    Raises
    ------
    ValueError
        A malformed structure or a type geohm does not load (corrupt or crafted file).
    """
    from pykrige.ok import OrdinaryKriging
    from sklearn.ensemble import StackingRegressor
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )
    from sklearn.neighbors import BallTree, KDTree
    from sklearn.svm._base import BaseLibSVM
    from sklearn.tree import BaseDecisionTree
    from sklearn.tree._tree import Tree

    for obj in object_graph(root):  # object_graph walks into containers and instance attributes
        if isinstance(obj, np.ndarray | dict | list | tuple | set | frozenset):
            continue
        if isinstance(obj, types.FunctionType):
            # imported from its module by name (its attributes are the library's, not
            # the file's): only the name is checked
            _check_name(f"{obj.__module__}.{obj.__qualname__}")
            continue
        if isinstance(obj, type) or (callable(obj) and not hasattr(obj, "__dict__")):
            continue
        _check_name(qualname(obj))
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
        elif isinstance(obj, StackingRegressor) and "estimators_" in vars(obj):
            _check_stack(obj)
        elif sp.issparse(obj):
            obj.check_format(full_check=True)


#: Libraries whose objects :func:`check_graph` checks against :data:`TRUSTED_TYPES`.
_CHECKED_LIBRARIES = ("sklearn", "scipy", "pykrige")


def _plain(a: Any) -> TypeGuard[np.ndarray]:
    """Whether ``a`` is exactly a numpy array.

    Not a subclass such as ``MaskedArray``, whose masked entries numpy's reductions skip
    while compiled code reads them.
    """
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


def qualname(obj: Any) -> str:
    """``module.QualifiedName`` of the type of ``obj``."""
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


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
    """Pykrige's kriging object: consistent arrays and one of geohm's variogram models.

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


def _check_stack(stack: Any) -> None:
    """A fitted ``StackingRegressor`` (auto's stacked ensemble) as geohm builds it.

    Its ``predict`` calls ``getattr(member, method)(X)`` for each fitted member with the
    method names of ``stack_method_``, taken from the file, then the meta-learner on the
    stacked predictions. The invariant: every member has a ``predict`` and every method
    is ``"predict"``; no passthrough of the inputs; the meta-learner is a
    ``LinearRegression`` with one float64 weight per member and a float intercept.
    """
    from sklearn.linear_model import LinearRegression

    attrs = vars(stack)
    members = attrs.get("estimators_")
    methods = attrs.get("stack_method_")
    meta = attrs.get("final_estimator_")
    coef = getattr(meta, "coef_", None)
    intercept = getattr(meta, "intercept_", None)
    if (
        not isinstance(members, list)
        or not members
        or not all(callable(getattr(m, "predict", None)) for m in members)
        or not isinstance(methods, list)
        or methods != ["predict"] * len(members)
        or attrs.get("passthrough") is not False
        or type(meta) is not LinearRegression
        or not _plain(coef)
        or coef.dtype != np.float64
        or coef.shape != (len(members),)
        or not isinstance(intercept, float | np.floating)
    ):
        raise ValueError("stacked ensemble of an unexpected kind or shape")

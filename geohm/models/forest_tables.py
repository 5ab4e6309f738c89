"""The forest kernel's tables: fitted scikit-learn trees flattened into numpy arrays.

:mod:`geohm.models.compiled` builds them once per forest and hands them to the
compiled kernel (:mod:`geohm.models.kernel`), which indexes them without bounds
checks: they are built here only, from trees that :func:`check_tree_structure`
accepts, and never read from a file.

Two layouts:

* :func:`walk_tables`, for the tree walk: every node as a record (float32 threshold,
  children, feature, where missing values go), a leaf pointing to itself, trees one
  after the other;
* :func:`bit_vector_tables`, for QuickScorer (Lucchese et al., SIGIR 2015), forests
  whose trees have at most :data:`MAX_QS_LEAVES` leaves: per feature, the sorted float32
  thresholds of all trees and, per threshold interval and tree, a mask of one or two
  64-bit words with the leaves that stay reachable (leaves numbered left to right).

Both are exact: each float64 split threshold is rounded *down* to float32
(:func:`threshold32`), which keeps every ``x <= t`` decision for the float32 features
scikit-learn's trees use; leaf values stay float64.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "MAX_QS_LEAVES",
    "MAX_QS_TABLE",
    "NODE",
    "bit_vector_tables",
    "check_tree_structure",
    "leaf_ranges",
    "threshold32",
    "walk_tables",
]

#: Trees with at most this many leaves use the bit-vector (QuickScorer) kernel.
MAX_QS_LEAVES = 128
#: Largest bit-vector table (bytes); a larger one would not stay in cache.
MAX_QS_TABLE = 8 * 2**20

#: One node of the tree walk (the C kernel's ``node_t``).
NODE = np.dtype(
    [("thr", "<f4"), ("left", "<i4"), ("right", "<i4"), ("feat", "<i2"), ("nanright", "<i2")]
)


def threshold32(t64: np.ndarray) -> np.ndarray:
    """float64 thresholds rounded down to float32: ``x <= t`` unchanged for float32 ``x``.

    Examples
    --------
    >>> t = np.array([0.1, 0.5])
    >>> t32 = threshold32(t)
    >>> bool(np.all(t32.astype(np.float64) <= t)), t32.dtype.name
    (True, 'float32')
    """
    t32 = t64.astype(np.float32)
    up = t32.astype(np.float64) > t64
    t32[up] = np.nextafter(t32[up], np.float32(-np.inf))
    return t32


def check_tree_structure(tree: Any, n_features: int) -> None:
    """Check that a scikit-learn ``Tree`` (``estimator.tree_``) is a well-formed tree.

    scikit-learn's ``Tree.__setstate__`` checks the dtypes and shapes of the node and
    value arrays, but neither the node count nor the child and feature indices, and
    both its Cython ``predict`` and geohm's kernel index with them unchecked. For a
    tree read from a file this is the invariant everything relies on: ``node_count``
    nodes; a node is a leaf (both children -1) or has two children with larger ids;
    every node but the root is the child of exactly one node (so all are reached from
    the root, once); split features are in ``[0, n_features)``.

    Parameters
    ----------
    tree : sklearn.tree._tree.Tree
        The fitted tree structure.
    n_features : int
        Number of input columns of the estimator holding it.

    Raises
    ------
    ValueError
        What is wrong with the tree.
    """
    nodes = tree.__getstate__()["nodes"]
    n = int(tree.node_count)
    if n < 1 or nodes.shape != (n,):
        raise ValueError(f"tree of {n} nodes holds {nodes.shape} node records")
    if not 0 < int(tree.n_features) <= n_features:
        raise ValueError(f"tree of {tree.n_features} features in a model of {n_features}")
    left = np.asarray(nodes["left_child"], dtype=np.int64)
    right = np.asarray(nodes["right_child"], dtype=np.int64)
    leaf = left == -1
    if np.any(leaf != (right == -1)):
        raise ValueError("tree node with one child")
    ids = np.flatnonzero(~leaf)
    lo, hi = left[ids], right[ids]
    if np.any(lo <= ids) or np.any(hi <= ids) or np.any(lo >= n) or np.any(hi >= n):
        raise ValueError("tree node whose child id is out of order or out of range")
    if not np.array_equal(np.sort(np.concatenate([lo, hi])), np.arange(1, n)):
        raise ValueError("tree nodes that are not reached exactly once from the root")
    feat = np.asarray(nodes["feature"], dtype=np.int64)[ids]
    if np.any(feat < 0) or np.any(feat >= min(n_features, int(tree.n_features))):
        raise ValueError("tree split on a feature out of range")


def walk_tables(structs: list[Any]) -> dict[str, np.ndarray]:
    """The tree walk's tables of the trees ``structs`` (``estimator.tree_`` each).

    Returns
    -------
    dict
        ``nodes`` (:data:`NODE` records of all trees, one after the other), ``values``
        (float64 leaf value of every node) and ``offsets`` (int64, first node of each
        tree).
    """
    nodes, values, offsets = [], [], []
    off = 0
    for s in structs:
        n = s.node_count
        arr = np.zeros(n, dtype=NODE)
        leaf = s.children_left == -1
        own = np.arange(n, dtype=np.int32)
        arr["thr"] = np.where(leaf, np.float32(np.inf), threshold32(s.threshold))
        arr["left"] = np.where(leaf, own, s.children_left)
        arr["right"] = np.where(leaf, own, s.children_right)
        arr["feat"] = np.where(leaf, 0, s.feature)
        mgl = np.asarray(getattr(s, "missing_go_to_left", np.ones(n, np.uint8)))
        arr["nanright"] = np.where(leaf, 0, 1 - mgl.astype(np.int16))
        nodes.append(arr)
        values.append(s.value[:, 0, 0].astype(np.float64))
        offsets.append(off)
        off += n
    return {
        "nodes": np.concatenate(nodes),
        "values": np.concatenate(values),
        "offsets": np.asarray(offsets, dtype=np.int64),
    }


def bit_vector_tables(structs: list[Any], n_feat: int, n_words: int) -> dict[str, Any] | None:
    """QuickScorer's tables of the trees ``structs``.

    None when larger than :data:`MAX_QS_TABLE`.

    Parameters
    ----------
    structs : list of sklearn.tree._tree.Tree
        The trees, each with at most ``64 * n_words`` leaves.
    n_feat : int
        Number of input features.
    n_words : int
        64-bit words per tree mask.

    Returns
    -------
    dict or None
        ``thr``/``thr_off``/``thr_len`` (per feature, its sorted unique float32
        thresholds), ``masks``/``mask_off`` (per feature, ``(len + 1, n_trees,
        n_words)`` uint64 masks), ``leaf_values``/``leaf_off``/``leaf_node`` (per tree,
        its leaves' values and node ids in left-to-right order) and ``n_words``.
    """
    n_trees = len(structs)
    feats: list[np.ndarray] = []
    thrs: list[np.ndarray] = []
    trees: list[np.ndarray] = []
    masks: list[np.ndarray] = []
    leaf_values: list[np.ndarray] = []
    leaf_nodes: list[np.ndarray] = []
    leaf_off = np.zeros(n_trees, dtype=np.int64)
    off = 0
    for t, s in enumerate(structs):
        internal, lo, hi, values, nodes = leaf_ranges(s)
        if internal.size:
            masks.append(_clear_bits(lo, hi, n_words))
            feats.append(s.feature[internal])
            thrs.append(threshold32(s.threshold[internal]))
            trees.append(np.full(internal.size, t, dtype=np.int64))
        leaf_values.append(values)
        leaf_nodes.append(nodes)
        leaf_off[t] = off
        off += values.size
    thr_parts, mask_parts = [], []
    thr_off = np.zeros(n_feat, dtype=np.int64)
    thr_len = np.zeros(n_feat, dtype=np.int32)
    mask_off = np.zeros(n_feat, dtype=np.int64)
    all_feat = np.concatenate(feats) if feats else np.zeros(0, np.int64)
    all_thr = np.concatenate(thrs) if thrs else np.zeros(0, np.float32)
    all_tree = np.concatenate(trees) if trees else np.zeros(0, np.int64)
    all_mask = np.concatenate(masks) if masks else np.zeros((0, n_words), np.uint64)
    t_pos = m_pos = 0
    full = np.uint64(2**64 - 1)
    for f in range(n_feat):
        sel = all_feat == f
        uniq = np.unique(all_thr[sel])
        if (m_pos + (uniq.size + 1) * n_trees * n_words) * 8 > MAX_QS_TABLE:
            return None
        # table[b, t]: the leaves of tree t still reachable when b thresholds of f
        # are below x (every split on f with one of those thresholds goes right).
        table = np.full((uniq.size + 1, n_trees, n_words), full, dtype=np.uint64)
        k = np.searchsorted(uniq, all_thr[sel])
        for w in range(n_words):
            np.bitwise_and.at(table[:, :, w], (k + 1, all_tree[sel]), all_mask[sel, w])
        table = np.bitwise_and.accumulate(table, axis=0)
        thr_parts.append(uniq)
        mask_parts.append(table.ravel())
        thr_off[f], thr_len[f], mask_off[f] = t_pos, uniq.size, m_pos
        t_pos += uniq.size
        m_pos += table.size
    return {
        "thr": np.concatenate(thr_parts).astype(np.float32),
        "thr_off": thr_off,
        "thr_len": thr_len,
        "masks": np.concatenate(mask_parts),
        "mask_off": mask_off,
        "leaf_values": np.concatenate(leaf_values),
        "leaf_off": leaf_off,
        "leaf_node": np.concatenate(leaf_nodes).astype(np.int32),
        "n_words": n_words,
    }


def _clear_bits(lo: np.ndarray, hi: np.ndarray, n_words: int) -> np.ndarray:
    """(n, n_words) masks with the leaf bits ``lo..hi`` (inclusive) cleared, others set."""
    out = np.empty((lo.size, n_words), dtype=np.uint64)
    for w in range(n_words):
        a = np.clip(lo - 64 * w, 0, 64)
        b = np.clip(hi - 64 * w + 1, 0, 64)  # exclusive
        n = (b - a).astype(np.uint64)
        # (1 << n) - 1 for n < 64; all ones for n == 64 (no uint64 shift by 64)
        ones = np.where(
            n >= 64, np.uint64(2**64 - 1), (np.uint64(1) << np.minimum(n, 63)) - np.uint64(1)
        )
        bits = np.where(n > 0, ones << a.astype(np.uint64) % np.uint64(64), np.uint64(0))
        out[:, w] = ~bits
    return out


def leaf_ranges(s: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """In-order leaf numbering of one tree (``estimator.tree_``).

    Returns
    -------
    tuple of numpy.ndarray
        The internal node ids, for each the first and last leaf number of its *left*
        subtree, and the leaf values and node ids in leaf-number order.
    """
    left, right = s.children_left, s.children_right
    n = s.node_count
    first = np.zeros(n, dtype=np.int64)
    last = np.zeros(n, dtype=np.int64)
    values: list[float] = []
    leaves: list[int] = []
    # Iterative post-order: number the leaves left to right, then spans bottom-up.
    stack: list[tuple[int, bool]] = [(0, False)]
    while stack:
        node, done = stack.pop()
        if left[node] == -1:
            first[node] = last[node] = len(values)
            values.append(float(s.value[node, 0, 0]))
            leaves.append(node)
        elif done:
            first[node], last[node] = first[left[node]], last[right[node]]
        else:
            stack += [(node, True), (int(right[node]), False), (int(left[node]), False)]
    internal = np.flatnonzero(left != -1)
    lchild = left[internal]
    return (
        internal,
        first[lchild],
        last[lchild],
        np.asarray(values, dtype=np.float64),
        np.asarray(leaves, dtype=np.int64),
    )

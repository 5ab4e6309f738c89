"""Type stub of the compiled extension built from ``_forest_kernel.c`` (see that file).

Every array argument is a C-contiguous buffer of the dtype the C code reads;
:mod:`geohm.models.kernel` checks them before calling.
"""

from typing import Any

def walk(
    X: Any,
    stride: int,
    nodes: Any,
    tree_off: Any,
    value: Any,
    out: Any,
    id_base: Any | None,
    ids: Any | None,
    /,
) -> None: ...
def quickscorer(
    X: Any,
    stride: int,
    thr: Any,
    thr_off: Any,
    thr_len: Any,
    masks: Any,
    mask_off: Any,
    leaf_value: Any,
    leaf_off: Any,
    n_words: int,
    out: Any,
    leaf_node: Any | None,
    id_base: Any | None,
    ids: Any | None,
    /,
) -> None: ...
def qrf_quantiles(
    ids: Any,
    n_trees: int,
    indptr: Any,
    indices: Any,
    data: Any,
    slots: Any | None,
    n_slots: int,
    y_sorted: Any,
    qs: Any,
    out: Any,
    ld: int,
    col0: int,
    /,
) -> None: ...
def tree_votes(ids: Any, n_trees: int, leaf: Any, thr: Any, count: Any, /) -> None: ...

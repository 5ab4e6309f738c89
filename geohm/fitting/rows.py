"""A target's usable rows: values present, IQR outliers out, the seeded hold-out split."""

from __future__ import annotations

import numpy as np
import pandas as pd

from geohm.config import FitSpec
from geohm.errors import SampleError
from geohm.evaluate import (
    holdout_split,
)
from geohm.models import model_entry
from geohm.preprocess import iqr_outliers
from geohm.sampling import SampleTable

__all__ = ["MIN_TRAIN", "split_rows"]

#: Fewest training samples of a target.
MIN_TRAIN = 5


def _target_rows(
    table: SampleTable, target: str, spec: FitSpec
) -> tuple[pd.DataFrame, pd.Series, np.ndarray, list[str], np.ndarray]:
    """The samples with a value for ``target``, less the IQR outliers.

    Also their groups, the ids of the outliers and the rows' positions in ``table``.

    Samples without a value for this target (NaN, listed in ``table.dropped``) are left
    out of this target only.
    """
    has = np.isfinite(table.y[target].to_numpy(dtype=float))
    X = table.X
    if model_entry(spec.model.name).inputs == "patches":
        if table.patches is None:
            raise SampleError(
                f"model '{spec.model.name}' takes feature patches, but the samples were read "
                "without them (geohm.sampling.with_patches)"
            )
        X = table.patches
    X, y = X[has], table.y[target][has]
    groups = np.asarray(table.groups)[has]
    pos = np.flatnonzero(has)
    if spec.preprocess.outliers != "iqr":
        return X, y, groups, [], pos
    out = iqr_outliers(y.to_numpy(), k=spec.preprocess.iqr_k)
    return X[~out], y[~out], groups[~out], [str(i) for i in y.index[out]], pos[~out]


def split_rows(
    spec: FitSpec, table: SampleTable, target: str
) -> tuple[pd.DataFrame, pd.Series, np.ndarray, list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The target's rows and the seeded hold-out split (train, test positions).

    The rows are indexed by position, with their groups, outliers and positions in
    ``table``.

    Raises
    ------
    SampleError
        Fewer than :data:`MIN_TRAIN` training samples.
    """
    val = spec.validation
    X, y, groups, removed, pos = _target_rows(table, target, spec)
    train, test = holdout_split(
        len(y), test_fraction=val.test_fraction, seed=val.seed, groups=groups
    )
    if len(train) < MIN_TRAIN:
        raise SampleError(
            f"only {len(train)} usable training samples for {target}; geohm needs at least "
            f"{MIN_TRAIN} (see the dropped points in the report, or lower "
            "validation.test_fraction)"
        )
    # Rows are labelled by position (sample ids need not be unique): auto's stacked
    # ensemble finds each row's spatial fold by it (geohm.autoselect.RowFolds).
    return X.reset_index(drop=True), y, groups, removed, pos, train, test

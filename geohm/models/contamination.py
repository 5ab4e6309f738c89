"""Contamination labels: a sample is contaminated when a parameter exceeds its limit.

Seed 001's strict safety criterion: a sample is *contaminated* (class 1) when at least one
parameter exceeds its maximum permissible limit (MPL), else *uncontaminated* (class 0);
:mod:`geohm.models.classify` trains and compares classifiers of these labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from geohm.errors import ConfigError, SampleError

__all__ = ["UNKNOWN_LABEL", "contamination_labels"]

#: Label of a sample whose limited parameters are all missing (see :func:`contamination_labels`).
UNKNOWN_LABEL = -1


def contamination_labels(values: pd.DataFrame, limits: Mapping[str, float]) -> np.ndarray:
    """Label samples contaminated (1) when any parameter exceeds its permissible limit.

    A sample is contaminated when **at least one** parameter named in ``limits`` is
    **strictly greater** than its limit (a value equal to the limit is within it), and
    uncontaminated (0) otherwise: the strict safety criterion of seed 001.

    Missing values: a NaN parameter never counts as exceeding, so a row with some NaN
    parameters is labelled from the others. A row where **every** limited parameter is NaN
    gets :data:`UNKNOWN_LABEL` (-1): nothing can be said about it. Callers drop those rows
    before training (``keep = labels != UNKNOWN_LABEL``);
    :func:`~geohm.models.classify.evaluate_classifier` rejects them.

    Parameters
    ----------
    values : pandas.DataFrame
        One row per sample, one column per measured parameter, in the units of ``limits``
        (e.g. Pb and Cu in mg/kg). Columns not named in ``limits`` are ignored.
    limits : mapping of str to float
        Maximum permissible limit of each parameter, e.g. ``{"pb": 63.0, "cu": 4.0}``.
        Only upper limits: a two-sided range such as the pH 6-8 of seed 001 must be turned
        into an exceedance column by the caller first.

    Returns
    -------
    numpy.ndarray of int64, shape (n_samples,)
        1 contaminated, 0 uncontaminated, -1 unknown (all limited parameters missing).

    Raises
    ------
    ConfigError
        ``limits`` is empty, or a limit is not a finite number.
    SampleError
        A parameter named in ``limits`` is not a column of ``values``, or is not numeric.

    Examples
    --------
    >>> import pandas as pd
    >>> table = pd.DataFrame({"pb": [10.0, 63.0, 63.5, None], "cu": [5.0, 1.0, 1.0, None]})
    >>> contamination_labels(table, {"pb": 63.0, "cu": 4.0})
    array([ 1,  0,  1, -1])
    """
    if not limits:
        raise ConfigError("contamination limits are empty: give at least one parameter")
    columns = list(limits)
    missing = [c for c in columns if c not in values.columns]
    if missing:
        raise SampleError(
            f"parameter(s) {', '.join(map(repr, missing))} named in the limits are not "
            f"columns of the sample table (it has: {', '.join(map(str, values.columns))})"
        )
    thresholds = np.empty(len(columns))
    for i, name in enumerate(columns):
        limit = limits[name]
        try:
            thresholds[i] = float(limit)
        except (TypeError, ValueError):
            raise ConfigError(f"limit of {name!r} is not a number: {limit!r}") from None
        if not math.isfinite(thresholds[i]):
            raise ConfigError(f"limit of {name!r} is not finite: {limit!r}")
    table = np.empty((len(values), len(columns)))
    for i, name in enumerate(columns):
        try:
            table[:, i] = pd.to_numeric(values[name], errors="raise").to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise SampleError(f"parameter {name!r} holds non-numeric values ({exc})") from None

    exceeds = np.any(table > thresholds, axis=1)  # NaN > limit is False
    labels = np.asarray(exceeds, dtype=np.int64)
    labels[np.isnan(table).all(axis=1)] = UNKNOWN_LABEL
    return labels

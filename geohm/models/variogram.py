"""pykrige underneath geohm's kriging estimators: coordinates, variogram, kriging at points.

The coordinate columns of ``X`` (:func:`check_coords`, :func:`coords_of`), samples at
repeated locations averaged (:func:`merge_duplicates`), pykrige's variogram fit
(:func:`fit_pykrige`) and its parameters (:func:`variogram_dict`,
:func:`check_variogram_parameters`), and kriging at points with a moving neighbourhood
(:func:`krige_at`). :mod:`geohm.models.kriging` builds its estimators on these; pykrige's
maths is used as it is.
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np

try:
    from pykrige.ok import OrdinaryKriging
except ImportError as err:  # pragma: no cover - pykrige is a declared dependency
    raise ImportError("geohm's kriging models need pykrige: pip install 'pykrige>=1.7'") from err

try:  # pykrige's compiled moving-window loop; same algorithm as backend="loop"
    from pykrige.lib import cok as _cok  # noqa: F401

    _HAS_C_BACKEND = True
except ImportError:  # pragma: no cover - depends on the pykrige wheel
    _HAS_C_BACKEND = False

__all__ = [
    "check_coords",
    "check_variogram_parameters",
    "coords_of",
    "fit_pykrige",
    "krige_at",
    "merge_duplicates",
    "variogram_dict",
]

log = logging.getLogger("geohm.models.kriging")


def check_coords(coords: Any, names: Any = None) -> tuple[int, int]:
    """Validate ``coords`` and return it as a tuple of two distinct column indices.

    ``coords`` holds two column indices, or two column names looked up in ``names`` (the
    ``feature_names_in_`` of an estimator fitted on a DataFrame; a geohm pipeline feeds its
    model DataFrames whose columns may have been selected or reordered).
    """
    try:
        i, j = coords
    except (TypeError, ValueError):
        raise ValueError(f"coords must be two column indices (x, y), got {coords!r}") from None
    if isinstance(i, str) and isinstance(j, str):
        if names is None:
            return -1, -1  # resolved once X (a DataFrame) is seen
        listed = [str(n) for n in names]
        missing = [c for c in (i, j) if c not in listed]
        if missing:
            raise ValueError(f"coordinate columns {missing} are not in X (columns: {listed})")
        i, j = listed.index(i), listed.index(j)
    for c in (i, j):
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0:
            raise ValueError(f"coords must be non-negative column indices, got {coords!r}")
    if i == j:
        raise ValueError(f"coords must name two different columns, got {coords!r}")
    return int(i), int(j)


def coords_of(est: Any) -> tuple[int, int]:
    """Column indices of an estimator's ``coords`` once it has seen X."""
    ix, iy = check_coords(est.coords, getattr(est, "feature_names_in_", None))
    if ix < 0:
        raise ValueError("coords given by name need X as a pandas DataFrame with those columns")
    return ix, iy


def merge_duplicates(xy: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average the values of samples that share a location.

    The kriging system is singular with repeated locations; data without repeated
    locations come back unchanged.
    """
    uniq, inverse, counts = np.unique(xy, axis=0, return_inverse=True, return_counts=True)
    if uniq.shape[0] == xy.shape[0]:
        return xy, z
    log.info("kriging: merged %d samples at repeated locations", xy.shape[0] - uniq.shape[0])
    sums = np.bincount(inverse.ravel(), weights=z, minlength=uniq.shape[0])
    return uniq, sums / counts


def fit_pykrige(
    xy: np.ndarray,
    z: np.ndarray,
    *,
    model: str,
    parameters: Any,
    nlags: int,
    weight: bool,
    exact_values: bool,
) -> Any:
    """Build (and so fit the variogram of) a pykrige :class:`OrdinaryKriging`."""
    return OrdinaryKriging(
        xy[:, 0],
        xy[:, 1],
        z,
        variogram_model=model,
        variogram_parameters=parameters,
        nlags=nlags,
        weight=weight,
        exact_values=exact_values,
    )


def krige_at(
    ok: Any, xy: np.ndarray, *, n_closest_points: int | None, backend: str
) -> tuple[np.ndarray, np.ndarray]:
    """Krige at the points ``xy`` (one chunk): pykrige's ``execute("points", ...)``.

    The neighbourhood is clipped to the number of data (pykrige fails when it asks for
    more neighbours than there are points); ``None`` kriges with all the data.
    """
    n_data = ok.X_ORIG.shape[0]
    k = None if n_closest_points is None else min(int(n_closest_points), n_data)
    if backend == "C" and not _HAS_C_BACKEND:  # pragma: no cover - depends on the wheel
        backend = "loop"
    if backend == "C":
        # pykrige's Cython loop takes writable buffers only; a model loaded from a
        # read-only memory map (joblib) holds read-only arrays: give it private copies.
        for name in ("Z", "variogram_model_parameters"):
            arr = getattr(ok, name)
            if isinstance(arr, np.ndarray) and not arr.flags.writeable:
                setattr(ok, name, arr.copy())
    z, var = ok.execute("points", xy[:, 0], xy[:, 1], backend=backend, n_closest_points=k)
    return np.asarray(z, dtype=np.float64), np.asarray(var, dtype=np.float64)


def variogram_dict(params: Any) -> dict[str, float]:
    """Pykrige's ``[psill, range, nugget]`` as ``{"sill", "range", "nugget"}`` (total sill)."""
    psill, range_, nugget = (float(v) for v in params)
    return {"sill": psill + nugget, "range": range_, "nugget": nugget}


def check_variogram_parameters(value: Any) -> None:
    """``[sill, range, nugget]`` or ``{sill|psill, range, nugget}``: finite, >= 0, range > 0.

    pykrige only finds out at fit (KeyError, TypeError or a singular system); this says
    what is wrong before any input is read.
    """
    expect = "[sill, range, nugget] or {sill (or psill), range, nugget}"
    if isinstance(value, dict):
        keys = set(value)
        if not ({"range", "nugget"} <= keys and keys & {"sill", "psill"}) or len(keys) != 3:
            raise ValueError(f"variogram_parameters must be {expect}, got {value!r}")
        numbers_ = dict(value)
    elif isinstance(value, list | tuple):
        if len(value) != 3:
            raise ValueError(f"variogram_parameters must be {expect}, got {value!r}")
        numbers_ = dict(zip(("sill", "range", "nugget"), value, strict=True))
    else:
        raise ValueError(f"variogram_parameters must be {expect}, got {value!r}")
    for key, v in numbers_.items():
        x = float(v) if isinstance(v, numbers.Real) and not isinstance(v, bool) else np.nan
        if not (np.isfinite(x) and x >= 0) or (key == "range" and x == 0):
            low = "> 0" if key == "range" else ">= 0"
            raise ValueError(
                f"variogram_parameters: {key} must be a number {low} (map units; variance "
                f"(mg/kg)^2 for sill and nugget), got {v!r}"
            )

"""Spatial covariates for data without good ones: distances to the sample points (RFsp).

Random forest for spatial prediction (RFsp; Hengl et al. 2018, *PeerJ* 6:e5518) gives a
forest the geographic position of a pixel relative to every training sample. These are
"buffer distances": one column per training point, the Euclidean distance from the row's
location to that point. Trees split on them as on any covariate, and so learn spatial
trends and local structure that spectral and terrain factors miss.

:class:`BufferDistances` is a scikit-learn transformer. ``fit`` stores the training
points' coordinates; ``transform`` appends the distances. It sits in a pipeline before
the regressor. It must come before any scaling of the coordinate columns, since
distances are taken in the units of the coordinates (metres in a projected CRS). The
distance columns can be scaled afterwards.

Cost: a prediction table grows by one column per training point (155 for the Meuse
data), so a window of ``n`` pixels needs ``n * n_points`` more values. It is computed
``chunk_size`` rows at a time, and float32 input gives float32 output. Note that
float32 coordinates of a large projected CRS (UTM northings of millions of metres) are
only good to about 0.5 m.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import TransformerMixin
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from geohm.models.base import GeohmEstimator

__all__ = ["BufferDistances"]


class BufferDistances(TransformerMixin, GeohmEstimator):
    """Append the distance from each row to every training point (RFsp buffer distances).

    Parameters
    ----------
    coords : tuple of two int or two str, default=(0, 1)
        The ``x`` and ``y`` columns (projected metres): column positions, or column
        names when fitting on a DataFrame.
    keep_coords : bool, default=True
        Keep the coordinate columns in the output; False drops them, leaving only the
        other columns and the distances.
    prefix : str, default: ``"dist_"``
        Distance columns are named ``f"{prefix}{i}"``, ``i`` being the training
        point's row number in ``fit``.
    chunk_size : int, default=65536
        Rows whose distances are computed at once; bounds temporary memory, not results.

    Attributes
    ----------
    points_ : numpy.ndarray of shape (n_points, 2)
        ``x, y`` of the training points (float64, coordinate units).
    coord_indices_ : tuple of int
        Positions of the ``x`` and ``y`` columns in the input.
    n_features_in_ : int
        Number of input columns.
    feature_names_in_ : numpy.ndarray of str
        Input column names (only when fitted on a DataFrame).

    Examples
    --------
    >>> import numpy as np
    >>> pts = np.array([[0.0, 0.0], [3.0, 0.0]])
    >>> bd = BufferDistances().fit(pts)
    >>> bd.transform(np.array([[3.0, 4.0]])).tolist()  # x, y, then 5 m and 4 m
    [[3.0, 4.0, 5.0, 4.0]]
    >>> bd.get_feature_names_out().tolist()
    ['x0', 'x1', 'dist_0', 'dist_1']
    """

    points_: np.ndarray
    coord_indices_: tuple[int, int]

    #: Valid values of each parameter (scikit-learn's ``_validate_params``).
    _parameter_constraints: dict[str, list[Any]] = {
        "coords": [tuple, list],
        "keep_coords": ["boolean"],
        "prefix": [str],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left")],
    }
    _fitted_attribute = "points_"

    def __init__(
        self,
        coords: tuple[Any, Any] = (0, 1),
        *,
        keep_coords: bool = True,
        prefix: str = "dist_",
        chunk_size: int = 65_536,
    ) -> None:
        self.coords = coords
        self.keep_coords = keep_coords
        self.prefix = prefix
        self.chunk_size = chunk_size

    def _coord_indices(self, names: Any) -> tuple[int, int]:
        try:
            cx, cy = self.coords
        except (TypeError, ValueError):
            raise ValueError(f"coords must name two columns (x, y), got {self.coords!r}") from None
        out = []
        for c in (cx, cy):
            if isinstance(c, str):
                if names is None or c not in list(names):
                    raise ValueError(f"coordinate column {c!r} is not among the input columns")
                out.append(list(names).index(c))
            elif isinstance(c, numbers.Integral) and not isinstance(c, bool) and int(c) >= 0:
                out.append(int(c))
            else:
                raise ValueError(f"coords must be column positions or names, got {self.coords!r}")
        if out[0] == out[1]:
            raise ValueError(f"coords must name two different columns, got {self.coords!r}")
        return out[0], out[1]

    def fit(self, X: Any, y: Any = None) -> BufferDistances:
        """Store the coordinates of the training points.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n_samples, n_features)
            Training table with the coordinate columns (finite); other columns may hold
            NaN (an imputer may come later).
        y : ignored

        Returns
        -------
        self : BufferDistances
            The fitted transformer.

        Raises
        ------
        ValueError
            Bad ``coords``, ``chunk_size`` or ``prefix``, or a non-finite coordinate.
        """
        if not isinstance(self.prefix, str):
            raise ValueError(f"prefix must be a string, got {self.prefix!r}")
        if (
            isinstance(self.chunk_size, bool)
            or not isinstance(self.chunk_size, numbers.Integral)
            or self.chunk_size < 1
        ):
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        names = X.columns if isinstance(X, pd.DataFrame) else None
        ix, iy = self._coord_indices(names)
        X = self._fit_table(X, ensure_all_finite="allow-nan", ensure_min_features=max(ix, iy) + 1)
        points = X[:, [ix, iy]]
        if not np.isfinite(points).all():
            raise ValueError(
                "BufferDistances needs finite coordinates (no NaN or inf) at every training point"
            )
        self.points_ = np.ascontiguousarray(points)
        self.coord_indices_ = (ix, iy)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Append the distances (coordinate units, e.g. metres) to every training point.

        Parameters
        ----------
        X : array-like or DataFrame of shape (n, n_features)
            Same columns as in ``fit``. A NaN coordinate gives NaN distances.

        Returns
        -------
        numpy.ndarray of shape (n, n_out)
            The input columns (without the coordinates unless ``keep_coords``), then one
            distance column per training point. float32 for float32 input, else float64.
        """
        X = self._predict_data(X, dtype=(np.float64, np.float32), ensure_all_finite="allow-nan")
        ix, iy = self.coord_indices_
        base = X if self.keep_coords else np.delete(X, [ix, iy], axis=1)
        n_base = base.shape[1]
        out = np.empty((X.shape[0], n_base + self.points_.shape[0]), dtype=X.dtype)
        out[:, :n_base] = base
        px, py = self.points_[:, 0], self.points_[:, 1]
        for start in range(0, X.shape[0], int(self.chunk_size)):
            sl = slice(start, start + int(self.chunk_size))
            x = X[sl, ix].astype(np.float64)[:, None]
            y = X[sl, iy].astype(np.float64)[:, None]
            out[sl, n_base:] = np.hypot(x - px, y - py)
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Output column names: the kept input columns, then ``prefix + i`` per point.

        Parameters
        ----------
        input_features : array-like of str, optional
            Input column names; by default ``feature_names_in_`` or ``x0, x1, ...``.

        Returns
        -------
        numpy.ndarray of str
            Names of the transformed columns.
        """
        check_is_fitted(self, self._fitted_attribute)
        if input_features is None:
            names = getattr(self, "feature_names_in_", None)
            if names is None:
                names = [f"x{i}" for i in range(self.n_features_in_)]
        else:
            names = list(input_features)
            if len(names) != self.n_features_in_:
                raise ValueError(
                    f"input_features has {len(names)} names, expected {self.n_features_in_}"
                )
        ix, iy = self.coord_indices_
        kept = [str(f) for i, f in enumerate(names) if self.keep_coords or i not in (ix, iy)]
        dist = [f"{self.prefix}{i}" for i in range(self.points_.shape[0])]
        return np.asarray(kept + dist, dtype=object)

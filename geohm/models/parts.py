"""A fitted pipeline taken apart: its input transforms, final regressor and target transform."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted


@dataclass(frozen=True)
class EstimatorParts:
    """A fitted geohm estimator taken apart: preprocessing, final regressor, target transform.

    Attributes
    ----------
    final : regressor
        The fitted regressor at the end of the pipeline, the one that sees the
        preprocessed table and the transformed target (e.g. ``log1p`` mg/kg).
    prep : transformer or None
        The fitted steps before it (a :class:`~sklearn.pipeline.Pipeline` slice), or
        None when the estimator is a bare regressor.
    target : transformer or None
        The fitted target transformer of a
        :class:`~sklearn.compose.TransformedTargetRegressor` (``transformer_``), or None.
    """

    final: Any
    prep: Any | None
    target: Any | None

    def features(self, X: Any) -> Any:
        """The table the final regressor sees: ``X`` through the preprocessing steps."""
        return X if self.prep is None else self.prep.transform(X)

    def to_model(self, y: Any) -> np.ndarray:
        """Targets (e.g. mg/kg) in the space the final regressor was fitted in, float64."""
        v = np.asarray(y, dtype=np.float64).reshape(-1)
        if self.target is None:
            return v
        return np.asarray(self.target.transform(v.reshape(-1, 1)), dtype=np.float64).reshape(-1)

    def from_model(self, v: Any) -> np.ndarray:
        """Back-transform values of the final regressor to target units, as the pipeline does.

        This is the same call :meth:`TransformedTargetRegressor.predict` makes, so a
        back-transformed prediction equals the pipeline's ``predict`` bit for bit.
        """
        arr = np.asarray(v, dtype=np.float64).reshape(-1)
        if self.target is None:
            return arr
        return np.asarray(self.target.inverse_transform(arr.reshape(-1, 1))).reshape(-1)


def estimator_parts(estimator: Any) -> EstimatorParts:
    """Split a fitted estimator into preprocessing, final regressor and target transform.

    Handles what geohm builds: a :class:`~sklearn.pipeline.Pipeline` (from
    :func:`geohm.preprocess.build_pipeline`, or Tr-GA-BP's frozen-preprocessing pipeline)
    whose last step may be a :class:`~sklearn.compose.TransformedTargetRegressor`
    (``log_target``). It also handles a bare regressor and a
    :class:`~sklearn.frozen.FrozenEstimator` around any of these.

    Parameters
    ----------
    estimator : fitted estimator
        The model as fitted by geohm.

    Returns
    -------
    EstimatorParts
        ``final``, ``prep`` and ``target`` of the estimator.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from geohm.preprocess import build_pipeline
    >>> X, y = np.arange(10.0)[:, None], np.arange(10.0) ** 2
    >>> parts = estimator_parts(build_pipeline(LinearRegression(), log=True).fit(X, y))
    >>> type(parts.final).__name__, parts.to_model([0.0]).tolist()
    ('LinearRegression', [0.0])
    """
    while isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    prep = None
    if isinstance(estimator, Pipeline):
        if len(estimator.steps) > 1:
            prep = estimator[:-1]
        estimator = estimator.steps[-1][1]
        while isinstance(estimator, FrozenEstimator):
            estimator = estimator.estimator
    target = None
    if isinstance(estimator, TransformedTargetRegressor):
        check_is_fitted(estimator, "regressor_")
        target = estimator.transformer_
        estimator = estimator.regressor_
    return EstimatorParts(final=estimator, prep=prep, target=target)


@contextlib.contextmanager
def single_threaded(estimators: Iterable[Any]) -> Iterator[None]:
    """Set ``n_jobs=1`` on every (settable) estimator given, for the duration.

    A forest's multi-threaded ``predict`` adds its trees' outputs in thread order, so the
    last bits of a prediction would vary from run to run; one thread each makes them
    repeatable (and avoids oversubscription where the caller runs its own threads).

    Parameters
    ----------
    estimators : iterable of estimator
        Every estimator object to switch (nested ones included: ``get_params(deep=True)``
        reaches the parameters of the steps of a pipeline).

    Yields
    ------
    None
        The estimators are restored on exit.
    """
    changed: list[tuple[Any, str, Any]] = []
    for est in estimators:
        params = est.get_params(deep=True) if hasattr(est, "get_params") else {}
        for key, value in params.items():
            # None too: for GA-BP it means torch's own thread count, not one thread.
            if key.endswith("n_jobs") and value != 1:
                try:
                    est.set_params(**{key: 1})
                except (ValueError, AttributeError):  # frozen parts cannot be changed
                    continue
                changed.append((est, key, value))
    try:
        yield
    finally:
        for est, key, value in changed:
            est.set_params(**{key: value})

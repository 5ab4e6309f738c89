"""The estimator contract that geohm's own estimators share, stated once.

geohm's estimators follow scikit-learn's contract:

- ``__init__`` stores its keyword parameters unchanged (``get_params``, ``clone``);
- :attr:`GeohmEstimator._parameter_constraints` gives the valid values of every one of
  them, in scikit-learn's ``_validate_params`` format; geohm's config checks
  ``model.params`` against it before any data is read (:mod:`geohm.models.registry`),
  and a subclass that leaves a parameter out fails when it is defined;
- ``fit`` validates ``X`` and ``y`` as float arrays, sets ``n_features_in_`` (and
  ``feature_names_in_`` for a DataFrame) and returns ``self``; fitted attributes end
  in ``_``;
- ``predict`` / ``transform`` refuse an unfitted estimator and an ``X`` with another
  number of columns (or other column names) than ``fit`` saw;
- ``random_state`` (int, ``RandomState`` or None) seeds every random step.

:class:`GeohmEstimator` holds the shared steps (:meth:`~GeohmEstimator._fit_data`,
:meth:`~GeohmEstimator._fit_table`, :meth:`~GeohmEstimator._predict_data`,
:meth:`~GeohmEstimator._random_state`); scikit-learn's mixins
(``RegressorMixin``, ``TransformerMixin``) come before it in the bases. It adds no
parameter and no fitted state, so a model file's contents do not change with it.
Estimators that scikit-learn provides as they are (the random forest, the gradient
boosting) are built by a function and need no class here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["GeohmEstimator"]


class GeohmEstimator(BaseEstimator):
    """Base class of geohm's estimators: the scikit-learn contract in one place.

    Subclasses set :attr:`_parameter_constraints` (an entry for every ``__init__``
    parameter) and :attr:`_fitted_attribute`, call :meth:`_fit_data` (or
    :meth:`_fit_table`) at the start of ``fit`` and :meth:`_predict_data` at the start
    of ``predict`` / ``transform``.

    Examples
    --------
    >>> from sklearn.base import RegressorMixin
    >>> class Mean(RegressorMixin, GeohmEstimator):
    ...     _parameter_constraints = {"shift": [float]}
    ...     _fitted_attribute = "mean_"
    ...     def __init__(self, shift: float = 0.0) -> None:
    ...         self.shift = shift
    ...     def fit(self, X, y):
    ...         X, y = self._fit_data(X, y)
    ...         self.mean_ = float(y.mean()) + self.shift
    ...         return self
    ...     def predict(self, X):
    ...         X = self._predict_data(X)
    ...         return np.full(X.shape[0], self.mean_)
    >>> Mean(shift=1.0).fit([[0.0], [1.0]], [2.0, 4.0]).predict([[5.0]]).tolist()
    [4.0]
    """

    #: Valid values of each ``__init__`` parameter (scikit-learn's ``_validate_params``
    #: format); every parameter needs an entry.
    _parameter_constraints: dict[str, list[Any]] = {}
    #: A fitted attribute: ``predict`` on an estimator without it raises
    #: ``NotFittedError``.
    _fitted_attribute: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse a subclass whose ``__init__`` has a parameter without a constraint.

        Raises
        ------
        TypeError
            A parameter of ``__init__`` is missing from ``_parameter_constraints``.
        """
        super().__init_subclass__(**kwargs)
        missing = sorted(set(cls._get_param_names()) - set(cls._parameter_constraints))
        if missing:
            raise TypeError(
                f"{cls.__name__}: parameter(s) {', '.join(missing)} have no entry in "
                "_parameter_constraints"
            )

    def _fit_data(self, X: Any, y: Any, **check_params: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate the training data and record its columns (``n_features_in_``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features.
        y : array-like of shape (n_samples,)
            Training target.
        **check_params
            Passed on to scikit-learn's ``validate_data`` (default ``dtype=np.float64``
            and ``y_numeric=True``).

        Returns
        -------
        X, y : ndarray
            The validated arrays.
        """
        check_params = {"dtype": np.float64, "y_numeric": True, **check_params}
        return validate_data(self, X, y, reset=True, **check_params)

    def _fit_table(self, X: Any, **check_params: Any) -> np.ndarray:
        """Validate the training table of a transformer (no target); see :meth:`_fit_data`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training table.
        **check_params
            Passed on to scikit-learn's ``validate_data`` (default ``dtype=np.float64``).

        Returns
        -------
        ndarray
            The validated table.
        """
        check_params = {"dtype": np.float64, **check_params}
        return validate_data(self, X, reset=True, **check_params)

    def _predict_data(self, X: Any, **check_params: Any) -> np.ndarray:
        """Check that the estimator is fitted and that ``X`` has the columns ``fit`` saw.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features to predict from (or to transform).
        **check_params
            Passed on to scikit-learn's ``validate_data`` (default ``dtype=np.float64``).

        Returns
        -------
        ndarray
            The validated array.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            ``fit`` has not been called.
        ValueError
            Another number of columns (or other column names) than in ``fit``.
        """
        check_is_fitted(self, self._fitted_attribute)
        check_params = {"dtype": np.float64, **check_params}
        return validate_data(self, X, reset=False, **check_params)

    def _random_state(self) -> np.random.RandomState:
        """The generator that ``random_state`` stands for (scikit-learn's convention).

        Returns
        -------
        numpy.random.RandomState
            A new one seeded by an int, the instance itself, or numpy's global one for None.
        """
        return check_random_state(self.random_state)

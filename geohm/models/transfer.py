"""Tr-GA-BP: parameter transfer of a GA-BP net to a year with few samples.

Yang et al. (2023, *Sustainability* 15:11765, section 3.2.2) pre-train a GA-BP net
on a source year with many samples (2017, 44 samples) and move it to a target year
with few (2019, 16 samples) through their equation 1,

    W_T = beta * W_S*,

where ``W_S*`` holds all weights and thresholds of the pre-trained net, ``W_T`` those
of the target net and ``beta`` is a scalar "similarity coefficient". ``beta`` starts
at ``beta0``, picked by grid search over {0, 0.1, 1}; then "beta and W_T" are
retrained by gradient descent on the target samples "using Equation (1)", so that
"the parameters beta and W_T ... reach the optimum simultaneously".

How this module reads equation 1
--------------------------------
If ``W_T`` were only ``beta * W_S*``, the target net could only rescale the source
net and "W_T" would have nothing of its own to retrain; if ``W_T`` were free and
``beta`` only set its start, ``beta`` could not be optimised. Both are retrained
together when ``W_T`` is equation 1 plus a free correction:

    W_T = beta * W_S* + D,     beta(0) = beta0,   D(0) = 0,

and the target net runs with ``W_T`` (weights and thresholds, the same layout as
:attr:`GABPRegressor.weights_ <geohm.models.gabp.GABPRegressor>`). Gradient descent
updates the scalar ``beta`` (its gradient is the projection of the weight gradient
on ``W_S*``) and the correction ``D`` (its gradient is the weight gradient itself).
At the start ``W_T = beta0 * W_S*`` exactly (the paper's step 2); with ``beta0 = 1``
and no retraining the target net *is* the source net. ``beta0 = 0`` starts from an
all-zero net whose hidden units are interchangeable: gradient steps on ``D`` alone
would keep them identical, and only ``beta`` (moving along ``W_S*``) breaks the tie,
so the net learns how much of the source to take back.
:attr:`TransferGABPRegressor.target_weights_` is the final ``W_T`` (the paper's
printed ``W*_T`` and ``T*_T``) and :attr:`~TransferGABPRegressor.betas_` the final
``beta``, one row (one value) per member.

Ensemble
--------
The source is a GA-BP ensemble (10 nets by default, issue 14). Every member is
transferred on its own through equation 1, with one ``beta0`` and one retraining length
for all, chosen by the inner cross-validation of the ensemble's mean prediction on the
target samples (the validation stopping of a 16-sample year); the model predicts the
members' mean. A source with one member is the paper's single net.

Scaling
-------
Target inputs and target values are scaled with the **source** model's min-max
parameters, never their own: ``W_S*`` acts on source-scaled inputs and gives a
source-scaled output, so only the source scaling keeps "beta times the source
weights" meaningful (and keeps the ``beta0 = 1``, no-retraining net identical to
the source net). Min-max ranges from 16 samples would also be noisy. A shift of the
target's level or range is absorbed by the retrained weights and thresholds; the
linear output is not bounded to [-1, 1].
"""

from __future__ import annotations

import copy
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import KFold
from sklearn.utils._param_validation import HasMethods, Interval
from sklearn.utils.validation import NotFittedError, check_is_fitted, check_X_y

from geohm.models.base import GeohmEstimator
from geohm.models.gabp import GABPRegressor, _torch_device
from geohm.models.lm import forward_nets, single_threaded
from geohm.models.retrain import retrain_transfer

__all__ = ["TransferGABPRegressor", "retrain_transfer"]

_DTYPE = torch.float64
_SEED_MAX = 2**31 - 1


class TransferGABPRegressor(RegressorMixin, GeohmEstimator):
    """GA-BP nets moved from a source year to a target year with few samples (Tr-GA-BP).

    Each member net of the source ensemble (:attr:`GABPRegressor.weights_
    <geohm.models.gabp.GABPRegressor>`, one row per member) is transferred on its own:
    its target weights and thresholds are ``W_T = beta * W_S* + D`` (equation 1 of
    Yang et al. 2023 with a free correction ``D``; see the module docstring). For each
    ``beta0`` of ``beta_grid``, ``beta`` starts at ``beta0`` and ``D`` at 0 and both are
    retrained by gradient descent on the target samples. The inner cross-validation is
    the validation stopping of this small-sample setting: each member is retrained on
    the folds of its own shuffle of the target samples, every sample thus gets one
    out-of-fold prediction per member, and the mean of those (the ensemble's
    out-of-fold prediction) is scored after 0, ``epoch_step``, 2 ``epoch_step``, ...
    steps. The ``beta0`` and step count with the lowest RMSE (ties: the first
    ``beta0`` in ``beta_grid``, the fewest steps) are kept, and every member retrained
    on all target samples for that many steps is the model; the prediction is the
    members' mean.

    Parameters
    ----------
    source : GABPRegressor or FrozenEstimator, optional
        A fitted GA-BP ensemble of the source year, used as-is (deep-copied). Wrap it in
        :class:`sklearn.frozen.FrozenEstimator` to keep it fitted through
        :func:`sklearn.base.clone` (cross-validation, grid search): ``clone`` returns
        a plain estimator parameter unfitted, and ``fit`` then raises ``ValueError``.
        Give either ``source`` or ``X_source, y_source`` to :meth:`fit`, not both.
    source_params : dict, optional
        Parameters of the :class:`GABPRegressor` fitted when :meth:`fit` gets
        ``X_source, y_source``. Default: GABPRegressor's defaults (an ensemble of 10
        nets with Bayesian regularisation), with this estimator's ``random_state`` and
        ``device`` unless given.
    beta_grid : sequence of float, default=(0.0, 0.1, 1.0)
        Starting values ``beta0`` tried (the paper's grid).
    retrain_epochs : int, default=500
        Full-batch gradient steps on the target samples (0: ``W_T = beta0 * W_S*``).
    learning_rate : float, default=0.1
        Gradient-descent step on the target MSE in scaled units (the paper's Table 4
        learning rate).
    momentum : float, default=0.9
        Heavy-ball momentum in [0, 1); 0 gives plain gradient descent.
    inner_cv : int, default=4
        Folds of the inner cross-validation that picks ``beta0`` (fewer when there
        are fewer target samples); each member has its own shuffle.
    select_epochs : bool, default=True
        Choose the number of retraining steps together with ``beta0`` by the same
        inner cross-validation (early stopping), among 0, ``epoch_step``,
        2 ``epoch_step``, ... ``retrain_epochs``. With 16 target samples a fixed long
        retraining over-fits (see benchmarks/README.md); False always trains
        ``retrain_epochs`` steps.
    epoch_step : int, default=10
        Spacing of the candidate step counts when ``select_epochs``.
    batch_size : int, default=2**18
        Rows per forward pass in :meth:`predict`; bounds memory, not results.
    device : str, default="cpu"
        Torch device.
    n_jobs : int or None, default=None
        CPU threads of :meth:`predict`: 1 runs torch on one thread (set by
        :func:`geohm.predict.predict_map` while windows run in parallel); None leaves
        torch's own setting.
    random_state : int, RandomState instance or None, default=None
        Seeds the inner-CV fold shuffles and, through ``source_params``, a source fit.

    Attributes
    ----------
    source_estimator_ : GABPRegressor
        The source ensemble (a deep copy of ``source``, or fitted on ``X_source``).
    source_weights_ : ndarray of shape (n_members, n_params)
        ``W_S*`` of each member: the source nets' flat weights and thresholds.
    beta0_ : float
        The chosen start ``beta0``.
    betas_ : ndarray of shape (n_members,)
        Final ``beta`` of each member.
    beta_ : float
        Their mean.
    target_weights_ : ndarray of shape (n_members, n_params)
        Final ``W_T`` of each member, same layout as ``source_weights_``.
    cv_scores_ : dict of float to float
        ``beta0`` -> inner cross-validated RMSE in the target's units (of the
        ensemble's out-of-fold predictions, at the best step count; NaN when there are
        too few samples to split).
    retrain_history_ : ndarray of shape ``(n_epochs_ + 1, n_members)``
        Training MSE (source-scaled units) of the final retraining of each member.
    n_epochs_ : int
        Retraining steps of the final net (chosen by inner CV when ``select_epochs``).
    cv_curve_ : dict of float to ndarray
        ``beta0`` -> inner-CV RMSE after each candidate step count (``epochs_grid_``).
    epochs_grid_ : ndarray of int
        The candidate step counts.
    n_features_in_ : int
        Number of input features (equal to the source's).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.frozen import FrozenEstimator
    >>> rng = np.random.default_rng(0)
    >>> X_2017, X_2019 = rng.uniform(-2, 2, size=(80, 2)), rng.uniform(-2, 2, size=(16, 2))
    >>> source = GABPRegressor(random_state=0).fit(X_2017, np.sin(X_2017[:, 0]) + X_2017[:, 1])
    >>> y_2019 = np.sin(X_2019[:, 0]) + X_2019[:, 1] + 0.5  # the level shifted by 0.5
    >>> model = TransferGABPRegressor(source=FrozenEstimator(source), random_state=0)
    >>> model = model.fit(X_2019, y_2019)
    >>> model.beta0_ in (0.0, 0.1, 1.0)
    True
    >>> model.predict_members(X_2019[:4]).shape  # one row per source member
    (10, 4)
    >>> sorted(model.cv_scores_)
    [0.0, 0.1, 1.0]
    """

    #: Valid values of each parameter (scikit-learn's ``_validate_params``); geohm's
    #: config checks ``model.params`` against them before any data is read, then
    #: :meth:`_check_params` (finite ``beta_grid``, integers that are not booleans).
    _parameter_constraints: dict[str, list[Any]] = {
        "source": [HasMethods(["predict"]), None],
        "source_params": [dict, None],
        "beta_grid": ["array-like"],
        "retrain_epochs": [Interval(Integral, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "inner_cv": [Interval(Integral, 2, None, closed="left")],
        "select_epochs": ["boolean"],
        "epoch_step": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "target_weights_"

    def __init__(
        self,
        *,
        source: Any = None,
        source_params: dict[str, Any] | None = None,
        beta_grid: Any = (0.0, 0.1, 1.0),
        retrain_epochs: int = 500,
        learning_rate: float = 0.1,
        momentum: float = 0.9,
        inner_cv: int = 4,
        select_epochs: bool = True,
        epoch_step: int = 10,
        batch_size: int = 2**18,
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.source = source
        self.source_params = source_params
        self.beta_grid = beta_grid
        self.retrain_epochs = retrain_epochs
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.inner_cv = inner_cv
        self.select_epochs = select_epochs
        self.epoch_step = epoch_step
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ----------------------------------------------------------------- helpers

    def _check_params(self) -> tuple[np.ndarray, torch.device]:
        try:
            grid = np.asarray(self.beta_grid, dtype=float).ravel()
        except (TypeError, ValueError):
            raise ValueError(
                f"beta_grid must hold finite numbers, got {self.beta_grid!r}"
            ) from None
        if grid.size == 0 or not np.all(np.isfinite(grid)):
            raise ValueError(f"beta_grid must hold finite numbers, got {self.beta_grid!r}")
        for name, low in (("retrain_epochs", 0), ("inner_cv", 2), ("batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        return grid, _torch_device(self.device)

    def _source_model(self, X_source: Any, y_source: Any) -> GABPRegressor:
        if X_source is not None or y_source is not None:
            if X_source is None or y_source is None:
                raise ValueError("pass both X_source and y_source, or neither")
            if self.source is not None:
                raise ValueError(
                    "got both a `source` model and X_source/y_source: pass one of them"
                )
            X_source, y_source = check_X_y(X_source, y_source, y_numeric=True)
            unknown = sorted(set(self.source_params or {}) - set(GABPRegressor().get_params()))
            if unknown:
                raise ValueError(f"source_params: GABPRegressor has no parameter {unknown}")
            params = {
                "random_state": self.random_state,
                "device": self.device,
                **(self.source_params or {}),
            }
            return GABPRegressor(**params).fit(X_source, y_source)
        if self.source is None:
            raise ValueError(
                "TransferGABPRegressor needs a source model: pass a fitted GABPRegressor "
                "as `source` (wrapped in sklearn.frozen.FrozenEstimator to survive clone), "
                "or X_source and y_source to fit()"
            )
        model = self.source
        if isinstance(model, FrozenEstimator):
            model = model.estimator
        if not isinstance(model, GABPRegressor):
            raise ValueError(f"source must be a fitted GABPRegressor, got {type(model).__name__}")
        try:
            check_is_fitted(model, "weights_")
        except NotFittedError as err:
            raise ValueError(
                "source GABPRegressor is not fitted (sklearn.base.clone unfits estimator "
                "parameters: wrap the fitted source in sklearn.frozen.FrozenEstimator)"
            ) from err
        return copy.deepcopy(model)

    # ----------------------------------------------------------------- API

    def fit(
        self, X: Any, y: Any, *, X_source: Any = None, y_source: Any = None
    ) -> TransferGABPRegressor:
        """Transfer the source net to the target samples ``X, y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target-year predictors (few samples).
        y : array-like of shape (n_samples,)
            Target-year values, e.g. mg/kg.
        X_source : array-like of shape (n_source, n_features), optional
            Source-year predictors; with ``y_source``, a :class:`GABPRegressor` is
            fitted on them with ``source_params``.
        y_source : array-like of shape (n_source,), optional
            Source-year values, in the same units as ``y``.

        Returns
        -------
        self : TransferGABPRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            No source (neither ``source`` nor ``X_source, y_source``), both, an
            unfitted source, source and target with different numbers of features,
            fewer than 2 target samples with more than one ``beta0`` to choose
            from, or invalid parameters or data.
        """
        grid, device = self._check_params()
        X, y = self._fit_data(X, y)
        n = X.shape[0]
        n_splits = min(self.inner_cv, n)
        if n_splits < 2 and grid.size > 1:
            raise ValueError(
                f"cannot cross-validate beta_grid with {n} sample(s): Tr-GA-BP needs at "
                "least 2 target samples, or a single beta0 in beta_grid"
            )
        source = self._source_model(X_source, y_source)
        if source.n_features_in_ != X.shape[1]:
            raise ValueError(
                f"X has {X.shape[1]} feature(s), but the source model was fitted on "
                f"{source.n_features_in_}: source and target need the same features"
            )
        ws = np.atleast_2d(source.weights_)  # 1-D in files written before the ensemble
        n_members = ws.shape[0]
        rng = self._random_state()

        Xt = source._scale_X(torch.tensor(X, dtype=_DTYPE, device=device))
        yt = torch.tensor(source._scale_y(y), dtype=_DTYPE, device=device)
        folds, masks = _fold_masks(X, n_members, n_splits, grid.size, rng)
        n_per = masks.shape[2]
        step = self.epoch_step if self.select_epochs and folds else 0
        with single_threaded():
            _, _, history, snaps, beta_snaps = retrain_transfer(
                np.repeat(ws, grid.size * n_per, axis=0),
                np.tile(np.repeat(grid, n_per), n_members),
                Xt,
                yt,
                masks.reshape(-1, n),
                hidden=source.hidden,
                activation=source.activation,
                epochs=self.retrain_epochs,
                learning_rate=self.learning_rate,
                momentum=self.momentum,
                snapshot_every=step,
            )
        epochs_grid = (
            np.append(np.arange(0, self.retrain_epochs, step), self.retrain_epochs)
            if step
            else np.array([self.retrain_epochs])
        )
        n_snaps = len(snaps)
        snaps = snaps.reshape(n_snaps, n_members, grid.size, n_per, -1)
        beta_snaps = beta_snaps.reshape(n_snaps, n_members, grid.size, n_per)
        history = history.reshape(-1, n_members, grid.size, n_per)

        cv_curve, cv_scores, best, snap = _choose(source, snaps, folds, Xt, y, grid)
        chosen = snaps[snap, :, best, -1]
        if not np.all(np.isfinite(chosen)):
            raise ValueError(
                f"retraining diverged for beta0={grid[best]} (non-finite weights): "
                "lower learning_rate or momentum"
            )
        n_epochs = int(epochs_grid[snap])

        self.source_estimator_ = source
        self.source_weights_ = np.array(ws, dtype=float)
        self.cv_scores_ = cv_scores
        self.cv_curve_ = cv_curve
        self.epochs_grid_ = epochs_grid
        self.n_epochs_ = n_epochs
        self.beta0_ = float(grid[best])
        self.betas_ = np.array(beta_snaps[snap, :, best, -1], dtype=float)
        self.beta_ = float(self.betas_.mean())
        self.target_weights_ = np.array(chosen, dtype=float)
        self.retrain_history_ = history[: n_epochs + 1, :, best, -1]
        return self

    def predict_members(self, X: Any) -> np.ndarray:
        """Each member's prediction for every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target-year predictors.

        Returns
        -------
        ndarray of shape (n_members, n_samples)
            Predictions in the target's units (e.g. mg/kg); their mean over axis 0 is
            :meth:`predict`.
        """
        scaled = self._members_scaled(X)
        return self.source_estimator_._unscale_y(scaled)

    def _members_scaled(self, X: Any) -> np.ndarray:
        X = self._predict_data(X, dtype=(np.float64, np.float32))
        return self.source_estimator_._predict_scaled_y(
            X,
            self.target_weights_,
            batch_size=self.batch_size,
            device=self.device,
            n_jobs=getattr(self, "n_jobs", None),
        )

    def predict(self, X: Any) -> np.ndarray:
        """Predict target-year values for every row: the mean of the members' predictions.

        Rows are processed in chunks (``batch_size`` rows times members per pass).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Target-year predictors.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predictions in the target's units (e.g. mg/kg).
        """
        scaled = self._members_scaled(X).mean(axis=0)
        return self.source_estimator_._unscale_y(scaled)


def _fold_masks(
    X: np.ndarray, n_members: int, n_splits: int, n_beta: int, rng: Any
) -> tuple[list[list[np.ndarray]], np.ndarray]:
    """Inner-CV folds of each member and the training mask of every net of the batch.

    One batch of nets, indexed [member, beta0, fold]: per member and beta0, one net per
    inner-CV fold of the member's own shuffle, then one on all samples. Returns the
    folds (test rows per member and fold; none when ``n_splits < 2``) and the
    (member, beta0, net, row) boolean masks of the rows each net trains on.
    """
    n = X.shape[0]
    folds: list[list[np.ndarray]] = []
    if n_splits >= 2:
        for _ in range(n_members):
            kfold = KFold(n_splits, shuffle=True, random_state=rng.randint(_SEED_MAX))
            folds.append([test for _, test in kfold.split(X)])
    n_per = n_splits + 1 if folds else 1
    masks = np.ones((n_members, n_beta, n_per, n), dtype=bool)
    for m, member_folds in enumerate(folds):
        for k, test in enumerate(member_folds):
            masks[m, :, k, test] = False
    return folds, masks


def _choose(
    source: Any,
    snaps: np.ndarray,
    folds: list[list[np.ndarray]],
    Xt: torch.Tensor,
    y: np.ndarray,
    grid: np.ndarray,
) -> tuple[dict[float, np.ndarray], dict[float, float], int, int]:
    """beta0 and the retraining snapshot with the lowest inner-CV RMSE of the ensemble.

    ``snaps`` is (snapshot, member, beta0, net, weights); the ensemble's out-of-fold
    prediction is the members' mean. Returns the CV curve per beta0 (RMSE per snapshot,
    target units), the best RMSE per beta0, the chosen beta0's index and snapshot
    (the last snapshot and the first beta0 without folds).
    """
    n_snaps, n_members = snaps.shape[0], snaps.shape[1]
    n = len(y)
    if not folds:
        curve = {float(b): np.full(n_snaps, np.nan) for b in grid}
        return curve, {b: float("nan") for b in curve}, 0, n_snaps - 1
    n_splits = len(folds[0])
    with torch.no_grad():
        out = forward_nets(
            torch.as_tensor(snaps[:, :, :, :-1].reshape(-1, snaps.shape[-1])),
            Xt,
            hidden=source.hidden,
            activation=source.activation,
        )
    # (snapshot, member, beta0, fold, row) predictions in target units
    pred = source._unscale_y(out.cpu().numpy()).reshape(n_snaps, n_members, grid.size, n_splits, n)
    oof = np.empty((n_snaps, n_members, grid.size, n))
    for m, member_folds in enumerate(folds):
        for k, test in enumerate(member_folds):
            oof[:, m][:, :, test] = pred[:, m, :, k][:, :, test]
    rmse = np.sqrt(np.mean((oof.mean(axis=1) - y) ** 2, axis=-1))  # (snap, beta0)
    rmse = np.where(np.isfinite(rmse), rmse, np.inf)
    curve = {float(b): rmse[:, g] for g, b in enumerate(grid)}
    scores = {b: float(np.min(c)) for b, c in curve.items()}
    best = int(np.argmin(list(scores.values())))
    return curve, scores, best, int(np.argmin(rmse[:, best]))

"""GA-BP: three-layer back-propagation nets initialised by a genetic algorithm.

The method of Yang et al. (2023, *Sustainability* 15:11765, section 3.2.1 and
Table 4), which reimplements a MATLAB ``newff``/``trainlm`` workflow:

1. A 3-layer net ``n_features -> hidden -> 1`` (9-4-1 in the paper: 40 weights
   and 5 thresholds), sigmoid hidden layer, linear output.
2. A genetic algorithm searches the flattened vector of all weights and
   thresholds for a low training error (:func:`~geohm.models.ga.genetic_search`).
3. Levenberg-Marquardt refines the GA's best individual (at most 50 iterations;
   :func:`geohm.models.lm.train_nets`).

On 15-60 samples that path fits the noise (16 samples, 45 weights), so the estimator
adds what the same MATLAB tradition uses on small samples, each one a parameter:
validation stopping (``stopping``; ``trainlm``'s default, or an inner K-fold choice of
the number of LM iterations on very small sets), Bayesian regularisation
(``regularization``; ``trainbr``), and an ensemble of nets from different GA seeds
(``n_nets``; the prediction is the members' mean, :meth:`GABPRegressor.predict_members`
gives each member's). ``stopping="none", regularization="none", n_nets=1,
max_step=None`` is the paper's path exactly.

Inputs and target are min-max scaled to [-1, 1] on the training data, as MATLAB's
``mapminmax`` does inside ``newff``; predictions are mapped back to the target's
units (mg/kg for a concentration). The flat layout of a net's weights and thresholds
is in :mod:`geohm.models.lm`.
"""

from __future__ import annotations

from contextlib import nullcontext
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.model_selection import KFold
from sklearn.utils._param_validation import Interval, StrOptions

from geohm.models.base import GeohmEstimator
from geohm.models.ga import genetic_search
from geohm.models.lm import (
    forward_nets,
    levenberg_marquardt,
    n_net_params,
    single_threaded,
    train_nets,
)

__all__ = ["GABPRegressor", "forward_nets", "genetic_search", "levenberg_marquardt", "n_net_params"]

_ACTIVATIONS = ("sigmoid", "tanh")
_STOPPING = ("none", "validation", "cv")
_REGULARIZATION = ("none", "bayesian")
_DTYPE = torch.float64

_SEED_MAX = 2**31 - 1


def _half_range(lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """``(hi - lo) / 2``, with 1 for constant columns (mapped to 0, not divided by 0)."""
    half = (np.asarray(hi, dtype=float) - np.asarray(lo, dtype=float)) / 2.0
    return np.where(half > 0, half, 1.0)


# --------------------------------------------------------------------------- estimator


class GABPRegressor(RegressorMixin, GeohmEstimator):
    """An ensemble of back-propagation nets initialised by a genetic algorithm (GA-BP).

    Each member is a three-layer net ``n_features -> hidden -> 1`` with a sigmoid (or
    tanh) hidden layer and a linear output, as in Yang et al. (2023), Table 4: a
    genetic algorithm searches all weights and thresholds for a low training MSE
    (:func:`~geohm.models.ga.genetic_search`), then Levenberg-Marquardt refines the
    best individual (:func:`geohm.models.lm.train_nets`), with the stopping rule and
    regularisation set below. Members differ in their GA seed (and in their validation
    rows or inner folds); the prediction is their mean.

    Parameters
    ----------
    hidden : int, default=4
        Hidden units.
    activation : {"sigmoid", "tanh"}, default="sigmoid"
        Hidden transfer function: logistic (MATLAB ``logsig``) or tanh (``tansig``).
    population : int, default=30
        GA population size.
    generations : int, default=50
        Most GA generations (0: the best of the random population goes to LM).
    crossover_prob : float, default=0.3
        Probability that a selected pair is recombined.
    mutation_prob : float, default=0.1
        Per-gene mutation probability.
    lm_iterations : int, default=50
        Most Levenberg-Marquardt iterations (0: keep the GA's best).
    goal : float, default=0.0
        Training MSE (on scaled targets when ``normalize``) at which GA and LM stop
        early. The paper's Table 4 lists a "training accuracy" of 0.3, which would
        stop LM almost at once on [-1, 1]-scaled targets; set ``goal=0.3`` to copy it.
    regularization : {"none", "bayesian"}, default="none"
        ``"bayesian"``: MacKay's evidence framework as MATLAB ``trainbr`` (weight decay
        whose strength is re-estimated after every LM step; see
        :mod:`geohm.models.lm`). ``"none"``: plain ``trainlm``.
    stopping : {"validation", "cv", "none"}, default="validation"
        When LM stops, besides ``lm_iterations`` and ``goal``. ``"validation"``
        (``trainlm``'s default): each member holds out ``validation_fraction`` of the
        samples (its own random share; GA and LM see only the rest), stops after
        ``max_fail`` iterations without a better validation MSE and keeps the best
        validation weights. ``"cv"`` (meant for very small sets): ``inner_cv``-fold CV
        of each member's GA + LM on its own shuffle of the samples; the number of LM
        iterations with the lowest validation MSE pooled over all members and folds is
        chosen, and every member is refitted on all samples for that many iterations.
        ``"none"``: ``lm_iterations`` on all samples. With too few samples to split
        (fewer than 3, or fewer than 2 folds) ``"none"`` is used.
    validation_fraction : float, default=0.15
        Share of the samples each member holds out with ``stopping="validation"``
        (MATLAB's 15 %; at least one sample).
    max_fail : int, default=6
        Validation stopping patience (MATLAB's ``max_fail``).
    inner_cv : int, default=4
        Folds of ``stopping="cv"`` (fewer with fewer samples).
    n_nets : int, default=10
        Members of the ensemble, each from its own GA seed.
    max_step : float or None, default=1.0
        Longest LM step (Euclidean norm of the change of all weights and thresholds,
        scaled units); None: unbounded (the paper's LM).
    normalize : bool, default=True
        Min-max scale inputs and target to [-1, 1] on the training data (MATLAB
        ``mapminmax``); predictions are mapped back to the target's units.
    batch_size : int, default=2**18
        Rows times members per forward pass in :meth:`predict`; bounds memory, not
        results.
    device : str, default="cpu"
        Torch device for training and prediction.
    n_jobs : int or None, default=None
        CPU threads of :meth:`predict`: 1 runs torch on one thread (what
        :func:`geohm.predict.predict_map` sets while its windows run in parallel, so that
        torch's idle OpenMP threads do not spin against the window threads); None or any
        other value leaves torch's own setting. Training always runs on one thread.
    random_state : int, RandomState instance or None, default=None
        Seeds every random draw of the fit (with one member, its GA draws straight
        from it; with more, each member's generator is seeded from it).

    Attributes
    ----------
    weights_ : ndarray of shape (n_nets, n_params)
        Flat weights and thresholds of each member (layout in :mod:`geohm.models.lm`),
        acting on scaled inputs and producing a scaled output.
    coefs_ : list of ndarray
        ``[W1 (n_nets, n_features, hidden), W2 (n_nets, hidden, 1)]``, views into
        ``weights_``.
    intercepts_ : list of ndarray
        ``[b1 (n_nets, hidden), b2 (n_nets, 1)]``, views into ``weights_``.
    x_min_, x_max_ : ndarray of shape (n_features,)
        Input scaling: column ``j`` maps ``[x_min_[j], x_max_[j]]`` to [-1, 1]
        (constant columns map to 0). -1 and 1 when ``normalize=False``.
    y_min_, y_max_ : float
        Target scaling, in the target's units, likewise.
    stopping_ : str
        The stopping rule used (``"none"`` when there were too few samples to split).
    ga_history_ : list of ndarray
        Per member: best GA fitness (training MSE, scaled units) of the initial
        population, then after each generation. Non-increasing (elitism).
    ga_best_fitness_ : ndarray of shape (n_nets,)
        Final best GA fitness of each member.
    lm_history_ : list of ndarray
        Per member: training MSE (scaled units) before LM, then after each LM step.
    n_iter_ : ndarray of int, shape (n_nets,)
        LM iterations of each member's final weights.
    validation_rows_ : list of ndarray or None
        ``stopping_ == "validation"``: per member, the indices of the samples it held
        out (never trained on).
    val_history_ : list of ndarray or None
        ``stopping_ == "validation"``: per member, the validation MSE (scaled units)
        before LM and after each LM iteration.
    cv_curve_ : ndarray or None
        ``stopping_ == "cv"``: inner-CV MSE (scaled units, pooled over members and
        folds) after 0, 1, ... ``lm_iterations`` LM iterations.
    alpha_, beta_, gamma_ : ndarray of shape (n_nets,)
        Final ``trainbr`` coefficients and effective number of parameters of each
        member (0, 1 and NaN without regularisation).
    n_features_in_ : int
        Number of input features.

    Notes
    -----
    Defaults, and why. The net and GA are the paper's (4 hidden units, population 30,
    50 generations, crossover 0.3, mutation 0.1, at most 50 LM iterations). On top of them:
    ``stopping="validation"`` (15 % held out per member, ``max_fail=6``),
    ``n_nets=10``, ``regularization="none"``, ``max_step=1``. They were chosen by
    nested cross-validation (``benchmarks/gabp_defaults.py``, table in
    benchmarks/README.md) among the paper's path, ``trainbr``, inner-CV and validation
    stopping, with 1, 10 or 20 nets, in three settings: the synthetic two-year mining
    cases of ``geohm synth`` (10 seeds x Cu, Pb) with 16 target-year samples (~25 held
    out) and with 5-fold CV on the 44 source-year samples, and Meuse (5-fold x 2,
    grids, covariates and coordinates, log target). Test RMSE as a share of the
    training mean's (the null's), in those three settings: the paper's path 0.82 /
    1.21 / 706 (Meuse Pb 2e5 ppm: ``expm1`` of wildly extrapolated log values); the
    defaults 0.59 / 0.52 / 0.67. Why each part:

    - The ensemble: one net with validation stopping scores 0.64 / 0.58 / 0.70, ten
      0.59 / 0.52 / 0.67, twenty 0.59 / 0.51 / 0.67 for 1.5-2 times the time.
    - Validation stopping (MATLAB's own default) is the best rule tried, even on 16
      samples where each member validates on 2 (the members' different held-out
      shares also decorrelate them). Choosing the number of LM iterations by inner
      4-fold CV (``"cv"``) scores 0.62 / 0.53 / 0.68 at four times the cost;
      ``trainbr`` 0.63 / 0.55 / 0.68, and 0.60 / 0.52 / 0.67 with validation stopping;
      ten plain LM nets without a stopping rule 0.68 / 0.69 / 0.68.
    - ``max_step=1`` is a safeguard, not a gain: on the default path an unbounded
      step scores 0.58 / 0.52 / 0.66 (a bound of 10 never binds there). It is what
      keeps LM from diverging when the stopping rule is off: one plain net on Meuse
      scores 0.89 with it, 4.2 with a bound of 3, 232 with 10 and 706 unbounded.

    ``stopping="none", regularization="none", n_nets=1, max_step=None`` is the
    paper's path exactly (the same random draws as before the ensemble existed).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(60, 2))
    >>> y = np.sin(X[:, 0]) + X[:, 1] ** 2
    >>> model = GABPRegressor(random_state=0).fit(X, y)
    >>> model.weights_.shape
    (10, 17)
    >>> model.predict_members(X[:3]).shape
    (10, 3)
    >>> bool(model.score(X, y) > 0.9)
    True
    """

    #: Valid values of each parameter (scikit-learn's ``_validate_params``); geohm's
    #: config checks ``model.params`` against them before any data is read. The
    #: integer checks of :meth:`_check_params` also refuse booleans.
    _parameter_constraints: dict[str, list[Any]] = {
        "hidden": [Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(_ACTIVATIONS))],
        "population": [Interval(Integral, 2, None, closed="left")],
        "generations": [Interval(Integral, 0, None, closed="left")],
        "crossover_prob": [Interval(Real, 0, 1, closed="both")],
        "mutation_prob": [Interval(Real, 0, 1, closed="both")],
        "lm_iterations": [Interval(Integral, 0, None, closed="left")],
        "goal": [Interval(Real, 0, None, closed="left")],
        "regularization": [StrOptions(set(_REGULARIZATION))],
        "stopping": [StrOptions(set(_STOPPING))],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "max_fail": [Interval(Integral, 1, None, closed="left")],
        "inner_cv": [Interval(Integral, 2, None, closed="left")],
        "n_nets": [Interval(Integral, 1, None, closed="left")],
        "max_step": [Interval(Real, 0, None, closed="neither"), None],
        "normalize": ["boolean"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
    }

    _fitted_attribute = "weights_"

    def __init__(
        self,
        *,
        hidden: int = 4,
        activation: str = "sigmoid",
        population: int = 30,
        generations: int = 50,
        crossover_prob: float = 0.3,
        mutation_prob: float = 0.1,
        lm_iterations: int = 50,
        goal: float = 0.0,
        regularization: str = "none",
        stopping: str = "validation",
        validation_fraction: float = 0.15,
        max_fail: int = 6,
        inner_cv: int = 4,
        n_nets: int = 10,
        max_step: float | None = 1.0,
        normalize: bool = True,
        batch_size: int = 2**18,
        device: str = "cpu",
        n_jobs: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.population = population
        self.generations = generations
        self.crossover_prob = crossover_prob
        self.mutation_prob = mutation_prob
        self.lm_iterations = lm_iterations
        self.goal = goal
        self.regularization = regularization
        self.stopping = stopping
        self.validation_fraction = validation_fraction
        self.max_fail = max_fail
        self.inner_cv = inner_cv
        self.n_nets = n_nets
        self.max_step = max_step
        self.normalize = normalize
        self.batch_size = batch_size
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state

    # ----------------------------------------------------------------- validation

    def _check_params(self) -> torch.device:
        def check_int(name: str, low: int) -> None:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")

        def check_real(name: str, low: float, high: float, *, closed: bool) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int | float | np.number) and not isinstance(value, bool)
            inside = ok and (low <= value <= high if closed else low < value < high)
            if not inside:
                bounds = f"[{low}, {high}]" if closed else f"({low}, {high})"
                raise ValueError(f"{name} must be a number in {bounds}, got {value!r}")

        for name, low in (
            ("hidden", 1),
            ("population", 2),
            ("generations", 0),
            ("lm_iterations", 0),
            ("batch_size", 1),
            ("max_fail", 1),
            ("inner_cv", 2),
            ("n_nets", 1),
        ):
            check_int(name, low)
        check_real("crossover_prob", 0.0, 1.0, closed=True)
        check_real("mutation_prob", 0.0, 1.0, closed=True)
        check_real("validation_fraction", 0.0, 1.0, closed=False)
        check_real("goal", 0.0, np.inf, closed=True)
        if self.max_step is not None:
            check_real("max_step", 0.0, np.inf, closed=False)
        for name, options in (
            ("activation", _ACTIVATIONS),
            ("stopping", _STOPPING),
            ("regularization", _REGULARIZATION),
        ):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {options}, got {getattr(self, name)!r}")
        return _torch_device(self.device)

    # ----------------------------------------------------------------- scaling

    def _scale_X(self, X: torch.Tensor) -> torch.Tensor:
        """``X`` (a fresh tensor, overwritten) mapped to [-1, 1] by the training range."""
        lo = torch.as_tensor(self.x_min_, dtype=_DTYPE, device=X.device)
        hi = torch.as_tensor(self.x_max_, dtype=_DTYPE, device=X.device)
        half = torch.as_tensor(_half_range(self.x_min_, self.x_max_), dtype=_DTYPE, device=X.device)
        # In place: two temporaries of the whole batch fewer (8 % of a map's time).
        return X.sub_((lo + hi) / 2).div_(half)

    def _scale_y(self, y: np.ndarray) -> np.ndarray:
        half = float(_half_range(self.y_min_, self.y_max_))
        return (np.asarray(y, dtype=float) - (self.y_min_ + self.y_max_) / 2) / half

    def _unscale_y(self, y: np.ndarray) -> np.ndarray:
        half = float(_half_range(self.y_min_, self.y_max_))
        return np.asarray(y, dtype=float) * half + (self.y_min_ + self.y_max_) / 2

    def _predict_scaled_y(
        self,
        X: np.ndarray,
        weights: np.ndarray,
        *,
        batch_size: int,
        device: Any,
        n_jobs: int | None = None,
    ) -> np.ndarray:
        """Scaled outputs ``(n_nets, n_rows)`` of the nets ``weights`` on raw rows ``X``.

        In chunks of ``batch_size // n_nets`` rows (one batched pass of all nets per
        chunk). ``n_jobs=1``: on one torch thread (see the class's ``n_jobs``).
        """
        device = _torch_device(device)
        w = torch.as_tensor(np.atleast_2d(weights), dtype=_DTYPE, device=device)
        rows = max(1, batch_size // w.shape[0])
        out = np.empty((w.shape[0], X.shape[0]), dtype=float)
        threads = single_threaded() if n_jobs == 1 else nullcontext()
        with torch.no_grad(), threads:
            for start in range(0, X.shape[0], rows):
                stop = start + rows
                xb = self._scale_X(torch.tensor(X[start:stop], dtype=_DTYPE, device=device))
                yb = forward_nets(w, xb, hidden=self.hidden, activation=self.activation)
                out[:, start:stop] = yb.cpu().numpy()
        return out

    # ----------------------------------------------------------------- fitting

    def _resolve_stopping(self, n: int) -> str:
        mode = str(self.stopping)
        if mode == "cv" and min(self.inner_cv, n) < 2:
            return "none"
        if mode == "validation" and n - self._n_validation(n) < 2:
            return "none"
        return mode

    def _n_validation(self, n: int) -> int:
        return max(1, int(round(self.validation_fraction * n)))

    def fit(self, X: Any, y: Any) -> GABPRegressor:
        """Fit the ensemble: per member a GA search, then Levenberg-Marquardt.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Predictors (reflectance 0-1, indices, terrain...).
        y : array-like of shape (n_samples,)
            Target, e.g. a concentration in mg/kg.

        Returns
        -------
        self : GABPRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            Invalid parameters, or X/y with NaN, infinities or mismatched lengths.
        """
        device = self._check_params()
        X, y = self._fit_data(X, y)
        rng = self._random_state()
        if self.normalize:
            self.x_min_, self.x_max_ = X.min(axis=0), X.max(axis=0)
            self.y_min_, self.y_max_ = float(y.min()), float(y.max())
        else:
            self.x_min_ = np.full(X.shape[1], -1.0)
            self.x_max_ = np.full(X.shape[1], 1.0)
            self.y_min_, self.y_max_ = -1.0, 1.0
        Xt = self._scale_X(torch.tensor(X, dtype=_DTYPE, device=device))
        yt = torch.tensor(self._scale_y(y), dtype=_DTYPE, device=device)
        n = X.shape[0]
        mode = self._resolve_stopping(n)
        members = (
            [rng]
            if self.n_nets == 1
            else [np.random.RandomState(s) for s in rng.randint(_SEED_MAX, size=self.n_nets)]
        )
        # One GA (and LM) per member on its training rows; with "cv", one more per
        # member and inner fold, on the fold's training rows. All run in one batch.
        # Validation shares and inner folds come from their own generator, so that each
        # member's GA draws what it would draw without a stopping rule.
        train = np.ones((self.n_nets, n), dtype=bool)
        val = np.zeros((self.n_nets, n), dtype=bool)
        fold_train: list[np.ndarray] = []
        fold_rngs: list[np.random.RandomState] = []
        if mode != "none":
            splits = np.random.RandomState(rng.randint(_SEED_MAX))
            for m in range(self.n_nets):
                if mode == "validation":
                    held = splits.permutation(n)[: self._n_validation(n)]
                    train[m, held], val[m, held] = False, True
                    continue
                kfold = KFold(
                    min(self.inner_cv, n), shuffle=True, random_state=splits.randint(_SEED_MAX)
                )
                for _, test in kfold.split(X):
                    fold_train.append(~np.isin(np.arange(n), test))
                    fold_rngs.append(np.random.RandomState(splits.randint(_SEED_MAX)))
        masks = np.concatenate([train, np.asarray(fold_train, dtype=bool).reshape(-1, n)])
        hidden, activation = self.hidden, self.activation
        with single_threaded():
            starts, ga_history = genetic_search(
                Xt,
                yt,
                masks,
                members + fold_rngs,
                hidden=hidden,
                activation=activation,
                population=self.population,
                generations=self.generations,
                crossover_prob=self.crossover_prob,
                mutation_prob=self.mutation_prob,
                goal=self.goal,
            )
            max_iter, cv_curve = self.lm_iterations, None
            if mode == "cv":
                folds = masks[self.n_nets :]
                res = train_nets(
                    starts[self.n_nets :],
                    Xt,
                    yt,
                    folds,
                    ~folds,
                    hidden=hidden,
                    activation=activation,
                    max_iter=max_iter,
                    regularization=self.regularization,
                    goal=self.goal,
                    max_step=self.max_step,
                )
                n_val = (~folds).sum(axis=1)
                cv_curve = (res.val_curve * n_val[:, None]).sum(axis=0) / n_val.sum()
                max_iter = int(np.argmin(np.where(np.isfinite(cv_curve), cv_curve, np.inf)))
            res = train_nets(
                starts[: self.n_nets],
                Xt,
                yt,
                train,
                val if mode == "validation" else None,
                hidden=hidden,
                activation=activation,
                max_iter=max_iter,
                regularization=self.regularization,
                max_fail=self.max_fail if mode == "validation" else None,
                goal=self.goal,
                max_step=self.max_step,
            )
        self.stopping_ = mode
        self.ga_history_ = ga_history[: self.n_nets]
        self.ga_best_fitness_ = np.array([h[-1] for h in self.ga_history_])
        self.lm_history_ = res.history
        self.n_iter_ = res.n_iter
        self.val_history_ = (
            [c[: len(h)] for c, h in zip(res.val_curve, res.history, strict=True)]
            if mode == "validation"
            else None
        )
        self.validation_rows_ = [np.flatnonzero(v) for v in val] if mode == "validation" else None
        self.cv_curve_ = cv_curve
        self.alpha_, self.beta_, self.gamma_ = res.alpha, res.beta, res.gamma
        self._set_weights(res.params)
        return self

    def _set_weights(self, weights: np.ndarray) -> None:
        n_in, h = self.n_features_in_, self.hidden
        self.weights_ = np.atleast_2d(np.asarray(weights, dtype=float))
        w = self.weights_
        self.coefs_ = [
            w[:, : n_in * h].reshape(-1, n_in, h),
            w[:, n_in * h + h : n_in * h + 2 * h].reshape(-1, h, 1),
        ]
        self.intercepts_ = [w[:, n_in * h : n_in * h + h], w[:, -1:]]

    # ----------------------------------------------------------------- prediction

    def predict_members(self, X: Any) -> np.ndarray:
        """Each member's prediction for every row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Predictors, in the units used in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_nets, n_samples)
            Predictions in the target's units (e.g. mg/kg); their mean over axis 0 is
            :meth:`predict`.
        """
        return self._unscale_y(self._members_scaled(X))

    def _members_scaled(self, X: Any) -> np.ndarray:
        # float32 rows (map windows) stay float32 here: the chunks are converted to
        # float64 once, on their way into torch (the same values, one copy fewer).
        X = self._predict_data(X, dtype=(np.float64, np.float32))
        return self._predict_scaled_y(
            X,
            self.weights_,  # 1-D in files written before the ensemble: one member
            batch_size=self.batch_size,
            device=self.device,
            n_jobs=getattr(self, "n_jobs", None),  # models saved before n_jobs existed
        )

    def predict(self, X: Any) -> np.ndarray:
        """Predict the target for every row: the mean of the members' predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Predictors, in the units used in :meth:`fit`.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predictions in the target's units (e.g. mg/kg).
        """
        return self._unscale_y(self._members_scaled(X).mean(axis=0))


def _torch_device(device: Any) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device: {err}") from err

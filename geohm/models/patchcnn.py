"""A patch CNN (issue 17, seed 000): each sample's neighbourhood of the feature cube.

:class:`PatchCNNRegressor` predicts a concentration (mg/kg) from the ``(2h + 1) x (2h +
1)`` window of the feature cube centred on a sample (``h = patch``, default 3: 7 x 7
pixels, 210 m at 30 m), read by the same window reader as the map
(:func:`~geohm.patches.read_patches`, :func:`~geohm.patches.read_halo`).
The net (:class:`~geohm.models.patchnet.PatchNet`) is fully convolutional, so a map
window with an ``h``-pixel halo is predicted in one pass and the map at a pixel equals
the prediction for the patch centred there (:meth:`PatchCNNRegressor.predict_grid`).

Training for tens to hundreds of samples: AdamW with weight decay, dropout, early
stopping on inner folds (member ``i`` of the ensemble stops on inner fold ``i mod
inner_folds``, folds of whole location groups when ``groups`` is given), an ensemble of
``ensemble`` members with their own seeds, and augmentation by the 8 rotations and
mirror images of the square patch where the features allow it.

Predictive distribution: the members' mean and spread plus the members' pooled
out-of-fold (inner validation) squared error, as a normal distribution:
``sd^2 = var(members) + mse_oof``. Conservative by construction (the out-of-fold error
already holds part of the member spread); check intervals on held-out data.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from scipy.stats import norm
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from geohm.errors import ConfigError
from geohm.models.base import GeohmEstimator
from geohm.models.ensemble import Distribution
from geohm.models.patchnet import DTYPE, PatchNet, dihedral, encode, net_from_state, net_state
from geohm.models.resnet1d import seeded, threads, torch_device

__all__ = ["DIRECTION_FEATURES", "PatchCNNRegressor", "build", "check_params"]

log = logging.getLogger(__name__)

#: Features whose values depend on the orientation of the grid: aspect (degrees from
#: north) and the map coordinates (their gradients point east and north). A rotated or
#: mirrored patch of them is not a patch that could occur, so ``augment="auto"`` turns
#: augmentation off when any of them is a channel.
DIRECTION_FEATURES: tuple[str, ...] = ("aspect", "x", "y")

_PREDICT_ROWS = 4096  # patches per forward pass
_GRID_ROWS = 128  # output rows per forward pass of a map window


class PatchCNNRegressor(RegressorMixin, GeohmEstimator):
    """Fully convolutional CNN on feature patches, an ensemble over seeds and inner folds.

    ``X`` is ``(n_samples, n_channels, 2 patch + 1, 2 patch + 1)``: the features (in
    their own units: reflectance 0-1, elevation m, ...) of the window centred on each
    sample, NaN where missing or outside the scene. NaN becomes the training mean of its
    channel, channels are standardised with the training statistics (over every finite
    pixel of the training patches), and one channel marks the pixels where every feature
    is finite. ``y`` is the concentration (mg/kg).

    Parameters
    ----------
    patch : int, default 3
        Half-width ``h`` of the patch in pixels (the map's halo); the patch is ``2h + 1``
        pixels square (7 x 7 = 210 m at 30 m).
    channels : int, default 32
        Filters of each 3 x 3 convolution.
    depth : int, default 2
        Number of 3 x 3 convolutions (batch norm, ReLU, dropout); at most ``patch``. The
        head is a ``2 patch + 1 - 2 depth`` square convolution (3 x 3 by default).
    dropout : float, default 0.1
        Dropout after each hidden layer (training only).
    weight_decay : float, default 1e-4
        AdamW's decoupled weight decay.
    learning_rate : float, default 3e-3
        AdamW's step size.
    batch_size : int, default 32
        Patches per mini-batch.
    max_epochs : int, default 300
        Upper bound on passes over the training patches.
    patience : int, default 30
        Epochs without a better inner-fold loss before a member stops (its best
        epoch's weights are kept).
    inner_folds : int, default 5
        Folds of the training samples for early stopping; with fewer than 8 samples no
        fold is held out and every member trains ``max_epochs``.
    ensemble : int, default 5
        Members (own seed, own inner validation fold); the prediction is their mean.
    augment : {"auto", "none", "flips"}, default "auto"
        "flips": train on random rotations by quarter turns and mirror images of the
        patches (assumes an isotropic process: the concentration's dependence on the
        neighbourhood does not prefer a compass direction, e.g. no prevailing wind).
        "auto": "flips" when no channel is a direction feature, else "none"; when
        ``fit`` is given no ``channel_names`` it is "flips" only if
        ``direction_features`` is empty. Direction features are not rotated with the
        patch: augmentation is off for them.
    direction_features : tuple of str, default ("aspect", "x", "y")
        Channel names whose values depend on the grid's orientation (flow direction,
        aspect, coordinates); ``augment="flips"`` with one of them among the channels
        is refused.
    device : str, default "cpu"
        Torch device for training and prediction (``"cuda"``).
    n_threads : int or None, default 1
        Torch intra-op CPU threads during fit and predict (None: torch's setting).
    random_state : int, RandomState or None, default None
        Seeds the inner folds, every member's weights, mini-batches and augmentation.

    Attributes
    ----------
    nets_ : list of PatchNet
        The members, in eval mode.
    x_mean_, x_scale_ : ndarray of shape (n_features_in_,)
        Training mean and standard deviation of each channel.
    y_mean_, y_scale_ : float
        Target standardisation (mg/kg).
    halo_ : int
        ``patch``: pixels of margin a map window needs on every side.
    augment_ : str
        The augmentation used, "flips" or "none".
    channel_names_ : tuple of str or None
        The ``channel_names`` given to ``fit``.
    oof_mse_ : float
        Pooled inner-fold squared error of the members (mg/kg squared); the training
        error when no fold was held out.
    best_epochs_ : list of int
        Epochs each member trained (its kept weights').
    n_features_in_ : int
        Channels of ``X``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 2, 3, 3)).astype("float32")
    >>> y = X[:, 0].mean(axis=(1, 2))
    >>> m = PatchCNNRegressor(patch=1, depth=1, channels=4, ensemble=2, max_epochs=5,
    ...                       random_state=0).fit(X, y)
    >>> m.predict(X).shape, m.predict_members(X).shape, m.halo_
    ((40,), (2, 40), 1)
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "patch": [Interval(Integral, 1, 32, closed="both")],
        "channels": [Interval(Integral, 1, 512, closed="both")],
        "depth": [Interval(Integral, 1, 32, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "inner_folds": [Interval(Integral, 2, None, closed="left")],
        "ensemble": [Interval(Integral, 1, 1000, closed="both")],
        "augment": [StrOptions({"auto", "none", "flips"})],
        "direction_features": [tuple, list],
        "device": [str, torch.device],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
    }
    _fitted_attribute = "nets_"

    def __init__(
        self,
        patch: int = 3,
        channels: int = 32,
        depth: int = 2,
        dropout: float = 0.1,
        weight_decay: float = 1e-4,
        learning_rate: float = 3e-3,
        batch_size: int = 32,
        max_epochs: int = 300,
        patience: int = 30,
        inner_folds: int = 5,
        ensemble: int = 5,
        augment: str = "auto",
        direction_features: Sequence[str] = DIRECTION_FEATURES,
        device: str = "cpu",
        n_threads: int | None = 1,
        random_state: Any = None,
    ) -> None:
        self.patch = patch
        self.channels = channels
        self.depth = depth
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.inner_folds = inner_folds
        self.ensemble = ensemble
        self.augment = augment
        self.direction_features = direction_features
        self.device = device
        self.n_threads = n_threads
        self.random_state = random_state

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        """Checks of parameters that depend on each other (``ValueError`` names the key)."""
        if self.depth > self.patch:
            raise ValueError(
                f"depth {self.depth} is more than the half-width {self.patch} of the "
                "patches (each 3 x 3 convolution takes one pixel of it); lower depth or "
                "widen the patches"
            )
        bad = [f for f in self.direction_features if not isinstance(f, str)]
        if bad:
            raise ValueError(f"direction_features must be feature names, got {bad!r}")
        torch_device(self.device)

    def _resolve_augment(self, names: tuple[str, ...] | None) -> str:
        direction = set(self.direction_features)
        if names is None:
            hit = sorted(direction)
        else:
            hit = [n for n in names if n in direction]
        if self.augment == "flips" and names is not None and hit:
            raise ValueError(
                f"augment 'flips' with direction feature(s) {hit} among the channels: their "
                "values are not rotated with the patch; use augment 'auto' or 'none'"
            )
        if self.augment == "auto":
            return "none" if hit else "flips"
        return str(self.augment)

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        groups: Any = None,
        channel_names: Sequence[str] | None = None,
    ) -> PatchCNNRegressor:
        """Train the ensemble on feature patches.

        Parameters
        ----------
        X : array-like of shape (n, C, 2 patch + 1, 2 patch + 1)
            Feature patches (own units), NaN where missing or outside the scene; or
            ``(n, C (2 patch + 1)^2)`` the same flattened in C order (the sample table's
            ``<feature>@<dy>,<dx>`` columns, whose names give ``channel_names``).
        y : array-like of shape (n,)
            Concentrations (mg/kg).
        groups : array-like of shape (n,), optional
            Location group of every sample: the inner folds keep groups whole.
        channel_names : sequence of str, optional
            The feature of each channel, for ``augment`` and ``direction_features``.

        Returns
        -------
        PatchCNNRegressor
            self.
        """
        self._validate_params()
        self._check_params()
        X, flat_names = self._unflatten(X)
        if channel_names is None:
            channel_names = flat_names
        X, y = self._fit_data(
            X, y, allow_nd=True, ensure_all_finite=False, dtype=np.float32, y_numeric=True
        )
        size = 2 * self.patch + 1
        if X.ndim != 4 or X.shape[2:] != (size, size):
            raise ValueError(
                f"X must be (n, channels, {size}, {size}) patches for patch={self.patch}, "
                f"got shape {X.shape}"
            )
        y = np.asarray(y, dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("y has NaN or infinite values")
        names = None if channel_names is None else tuple(str(c) for c in channel_names)
        if names is not None and len(names) != X.shape[1]:
            raise ValueError(f"{len(names)} channel_names for {X.shape[1]} channels")
        self.augment_ = self._resolve_augment(names)
        self.channel_names_ = names
        with np.errstate(all="ignore"):
            mean = np.nanmean(X, axis=(0, 2, 3), dtype=np.float64)
            sd = np.nanstd(X, axis=(0, 2, 3), dtype=np.float64)
        self.x_mean_ = np.where(np.isfinite(mean), mean, 0.0)
        self.x_scale_ = np.where(np.isfinite(sd) & (sd > 0), sd, 1.0)
        self.y_mean_ = float(y.mean())
        self.y_scale_ = float(y.std()) or 1.0
        self.halo_ = int(self.patch)
        rng = self._random_state()
        folds = _inner_folds(rng, len(y), self.inner_folds, groups)
        device = torch_device(self.device)
        Xt = torch.as_tensor(encode(X, self.x_mean_, self.x_scale_), device=device)
        zt = torch.as_tensor((y - self.y_mean_) / self.y_scale_, dtype=DTYPE, device=device)
        nets, epochs, sq = [], [], []
        with threads(self.n_threads):
            for member in range(self.ensemble):
                seed = int(rng.randint(0, 2**31 - 1))
                if folds is None:
                    train, val = np.arange(len(y)), np.arange(0)
                else:
                    k = member % int(folds.max() + 1)
                    train, val = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
                with seeded(seed, device):
                    net, epoch = self._train(Xt, zt, train, val, device)
                nets.append(net)
                epochs.append(epoch)
                rows = val if val.size else train
                with torch.no_grad():
                    out = self._forward(net, Xt[torch.as_tensor(rows, device=device)])
                sq.append((out.cpu().numpy() - zt[rows].cpu().numpy()) ** 2)
        self.nets_ = nets
        self.best_epochs_ = epochs
        self.oof_mse_ = float(np.mean(np.concatenate(sq))) * self.y_scale_**2
        return self

    def _train(
        self,
        Xt: torch.Tensor,
        zt: torch.Tensor,
        train: np.ndarray,
        val: np.ndarray,
        device: torch.device,
    ) -> tuple[PatchNet, int]:
        """One member: AdamW on ``train``, early stopping on ``val`` (best weights kept)."""
        net = PatchNet(Xt.shape[1], self.channels, self.depth, self.patch, self.dropout).to(device)
        opt = torch.optim.AdamW(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        tr = torch.as_tensor(train, device=device)
        va = torch.as_tensor(val, device=device)
        best, best_state, best_epoch, wait = np.inf, None, self.max_epochs, 0
        starts = list(range(0, len(train), self.batch_size))
        if len(starts) > 1 and len(train) - starts[-1] < 2:
            starts.pop()  # batch norm needs 2 patches: the last one joins the batch before
        for epoch in range(1, self.max_epochs + 1):
            net.train()
            order = tr[torch.randperm(tr.numel()).to(device)]
            for i, s in enumerate(starts):
                end = starts[i + 1] if i + 1 < len(starts) else len(train)
                idx = order[s:end]
                xb = Xt[idx]
                if self.augment_ == "flips":
                    xb = dihedral(xb, torch.randint(0, 8, (idx.numel(),)).to(device))
                loss = torch.mean((net(xb)[:, 0, 0] - zt[idx]) ** 2)
                opt.zero_grad()
                loss.backward()
                opt.step()
            if va.numel() == 0:
                continue
            net.eval()
            with torch.no_grad():
                vloss = float(torch.mean((self._forward(net, Xt[va]) - zt[va]) ** 2))
            if vloss < best:
                best, best_epoch, wait = vloss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                wait += 1
                if wait >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        return net, best_epoch

    @staticmethod
    def _forward(net: PatchNet, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode outputs of patches, in chunks: (n,) standardised."""
        return torch.cat(
            [net(x[s : s + _PREDICT_ROWS])[:, 0, 0] for s in range(0, x.shape[0], _PREDICT_ROWS)]
        )

    # --------------------------------------------------------------- prediction
    def _unflatten(self, X: Any) -> tuple[Any, list[str] | None]:
        """Flattened patches as ``(n, C, 2h+1, 2h+1)``, with their channel names.

        ``(n, C (2h+1)^2)`` in C order (the sample table's ``<feature>@<dy>,<dx>``
        columns; a DataFrame's column names give the channels); 4-D input as it is.
        """
        if np.ndim(X) != 2:
            return X, None
        names = None
        if hasattr(X, "columns"):
            names = list(dict.fromkeys(str(c).rsplit("@", 1)[0] for c in X.columns))
        arr = np.asarray(X, dtype=np.float32)
        size = 2 * self.patch + 1
        if arr.shape[1] % (size * size):
            raise ValueError(
                f"{arr.shape[1]} columns are not whole {size} x {size} patches (patch={self.patch})"
            )
        return arr.reshape(arr.shape[0], -1, size, size), names

    def _patches(self, X: Any) -> torch.Tensor:
        X, _ = self._unflatten(X)
        X = self._predict_data(X, allow_nd=True, ensure_all_finite=False, dtype=np.float32)
        size = 2 * self.patch + 1
        if X.ndim != 4 or X.shape[2:] != (size, size):
            raise ValueError(f"X must be (n, {self.n_features_in_}, {size}, {size}) patches")
        return torch.as_tensor(
            encode(X, self.x_mean_, self.x_scale_), device=torch_device(self.device)
        )

    def predict_members(self, X: Any) -> np.ndarray:
        """Every member's prediction (mg/kg): shape ``(ensemble, n)``, float64."""
        Xt = self._patches(X)
        with torch.no_grad(), threads(self.n_threads):
            z = np.stack([self._forward(n, Xt).cpu().numpy() for n in self.nets_])
        return self.y_mean_ + self.y_scale_ * z.astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """The members' mean (mg/kg): shape ``(n,)``, float64."""
        return self.predict_members(X).mean(axis=0)

    def predict_grid_members(self, block: Any) -> np.ndarray:
        """Every member's map of a window given with its halo.

        Parameters
        ----------
        block : array-like of shape (C, H + 2 patch, W + 2 patch)
            The features of the map window and ``patch`` pixels around it
            (:func:`~geohm.patches.read_halo`), NaN where missing or outside the
            scene.

        Returns
        -------
        ndarray of shape (ensemble, H, W), float64
            At each pixel, :meth:`predict_members` of the patch centred there (to float32
            rounding). Pixels whose own features are missing get a value too: mask them
            as for any model.
        """
        check_is_fitted(self, self._fitted_attribute)
        block = np.asarray(block, dtype=np.float32)
        h = self.halo_
        if block.ndim != 3 or block.shape[0] != self.n_features_in_:
            raise ValueError(
                f"block must be ({self.n_features_in_}, H + {2 * h}, W + {2 * h}), got "
                f"shape {block.shape}"
            )
        H, W = block.shape[1] - 2 * h, block.shape[2] - 2 * h
        if H < 1 or W < 1:
            raise ValueError(f"block {block.shape} is smaller than the halo {h} on each side")
        device = torch_device(self.device)
        out = np.empty((len(self.nets_), H, W), dtype=np.float64)
        with torch.no_grad(), threads(self.n_threads):
            for r0 in range(0, H, _GRID_ROWS):
                r1 = min(r0 + _GRID_ROWS, H)
                x = encode(block[:, r0 : r1 + 2 * h], self.x_mean_, self.x_scale_)
                xt = torch.as_tensor(x[None], device=device)
                for m, net in enumerate(self.nets_):
                    out[m, r0:r1] = net(xt)[0].cpu().numpy()
        return self.y_mean_ + self.y_scale_ * out

    def predict_grid(self, block: Any) -> np.ndarray:
        """The map (mg/kg) of a window given with its halo: ``(H, W)``; see above."""
        return self.predict_grid_members(block).mean(axis=0)

    def predict_distribution(
        self, X: Any, *, alpha: float = 0.1, thresholds: Any = None, grid: bool = False
    ) -> Distribution:
        """Prediction, central ``1 - alpha`` interval and P(C > threshold).

        A normal distribution around the members' mean with variance
        ``var(members) + oof_mse_`` (see the module docstring).

        Parameters
        ----------
        X : array-like
            Patches as :meth:`predict`, or with ``grid=True`` a window with its halo as
            :meth:`predict_grid`.
        alpha : float
            Miscoverage of the interval (0.1: 90 %).
        thresholds : float or array-like, optional
            Screening values (mg/kg), broadcast to the prediction (or ``(k, *shape)``).
        grid : bool
            ``X`` is a map window with its halo.

        Returns
        -------
        geohm.models.ensemble.Distribution
        """
        members = self.predict_grid_members(X) if grid else self.predict_members(X)
        mean = members.mean(axis=0)
        sd = np.sqrt(members.var(axis=0) + self.oof_mse_)
        q = float(norm.ppf(1 - alpha / 2))
        exceed = None
        if thresholds is not None:
            t = np.asarray(thresholds, dtype=np.float64)
            with np.errstate(invalid="ignore"):
                exceed = norm.sf((t - mean) / sd).astype(np.float32)
            exceed = np.where(np.isnan(t), np.float32(np.nan), exceed)
        return Distribution(mean, mean - q * sd, mean + q * sd, exceed)

    # ------------------------------------------------------------ serialization
    def __getstate__(self) -> dict[str, Any]:
        """The state with each member as its architecture and weights (plain arrays)."""
        state = dict(super().__getstate__())
        if "nets_" in state:
            state["nets_"] = [net_state(n) for n in state["nets_"]]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuild the members (on ``device`` when it exists here, else the CPU)."""
        state = dict(state)
        specs = state.pop("nets_", None)
        super().__setstate__(state)
        if specs is None:
            return
        nets = [net_from_state(s) for s in specs]
        try:
            nets = [n.to(torch_device(self.device)) for n in nets]
        except (RuntimeError, AssertionError, ValueError) as exc:
            log.warning("PatchCNNRegressor: device %r unavailable (%s); CPU", self.device, exc)
            self.device = "cpu"
        self.nets_ = nets

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.input_tags.allow_nan = True
        return tags


def _inner_folds(rng: np.random.RandomState, n: int, k: int, groups: Any) -> np.ndarray | None:
    """Inner fold of every sample (whole groups dealt round robin), or None if n < 8."""
    if n < 8:
        return None
    g = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(g.max()) + 1
    if n_groups < 2:
        return None
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    fold_of_group[rng.permutation(n_groups)] = np.arange(n_groups) % min(k, n_groups)
    return fold_of_group[g]


def check_params(params: dict[str, Any], where: str) -> None:
    """Check ``model.params`` of ``patch-cnn`` (the registry's ``check``).

    Raises
    ------
    ConfigError
        Naming ``<where>.<key>``: an unknown key, a value outside its range, ``depth``
        above ``patch``, ``random_state`` (the seed is ``validation.seed``).

    Examples
    --------
    >>> check_params({"patch": 2, "depth": 2}, "model.params")
    >>> check_params({"patch": 1, "depth": 2}, "model.params")
    Traceback (most recent call last):
    ...
    geohm.errors.ConfigError: model.params.depth: depth 2 is more than the half-width 1 of the patches (each 3 x 3 convolution takes one pixel of it); lower depth or widen the patches (model 'patch-cnn'); fix the scene config
    """  # noqa: E501
    from geohm.models.paramcheck import _check

    if not isinstance(params, dict):
        raise ConfigError(f"{where}: {params!r} must be a mapping of patch-cnn parameters")
    _check(PatchCNNRegressor, "patch-cnn", params, where, cross=lambda m: m._check_params())


def build(params: dict[str, Any], random_state: int) -> PatchCNNRegressor:
    """The unfitted ``patch-cnn`` of ``model.params`` (the registry's ``build``)."""
    params = dict(params)
    if isinstance(params.get("direction_features"), list):
        params["direction_features"] = tuple(params["direction_features"])
    return PatchCNNRegressor(**params, random_state=random_state)

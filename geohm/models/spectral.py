"""Seed 004's 1D residual network for soil spectra as a regressor, with parameter transfer.

He et al. (2025, *Sensors* 25:4209) predict soil Pb from vis-NIR spectra with a small 1D
ResNet, pre-trained on a large library for another property and fine-tuned on a few
local samples with the convolutional and residual layers frozen.
:class:`SpectralResNetRegressor` is that net as a scikit-learn regressor; the net itself,
its layer table and how this package reads it are in :mod:`geohm.models.resnet1d`.

Transfer
--------
:meth:`SpectralResNetRegressor.fit_source` trains the whole net on a source data
set (e.g. a large library, another property); a following :meth:`fit` starts from
those weights, keeps the blocks named in ``freeze`` fixed and trains the others on
the target samples. The input standardisation is the source's (the frozen filters
were learnt on it); the target standardisation is the target's, because the dense
layers are retrained for the new property. Without :meth:`fit_source`, :meth:`fit`
trains every block from a random start.

:func:`compare_transfer` runs seed 004's three models (source, target only,
transferred) in one call and returns their test scores (RMSE, R2, RPD, RPIQ)
(:mod:`geohm.models.spectral_compare`).
"""

from __future__ import annotations

import copy
import logging
import time
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import Interval
from torch.nn import functional as F

from geohm.models.base import GeohmEstimator
from geohm.models.resnet1d import (
    BLOCKS,
    DTYPE,
    SpectralResNet,
    as_tensor,
    net_from_state,
    net_state,
    pool_of,
    seeded,
    threads,
    torch_device,
)
from geohm.models.spectral_compare import compare_transfer, spectral_scores

__all__ = [
    "BLOCKS",
    "SpectralResNetRegressor",
    "compare_transfer",
    "spectral_scores",
]

log = logging.getLogger(__name__)

_PREDICT_CHUNK = 64  # rows per forward pass at prediction, zero-padded to this size
#: Attributes of :class:`SpectralResNetRegressor` that hold a :class:`SpectralResNet`.
_NETS = ("net_", "source_net_")


class SpectralResNetRegressor(RegressorMixin, GeohmEstimator):
    """Seed 004's 1D ResNet regressor for soil spectra, with optional transfer.

    A scikit-learn regressor on an ``(n_samples, n_wavelengths)`` array of spectra
    (absorbance or reflectance, preprocessed or not; equally spaced points in
    increasing order), predicting one soil property in its own units (e.g. mg/kg).
    The architecture is described in :mod:`geohm.models.resnet1d`.

    Parameters
    ----------
    freeze : tuple of {"conv", "residual", "dense"}, default ("conv", "residual")
        Blocks kept fixed when :meth:`fit` follows :meth:`fit_source` (seed 004:
        convolutional and residual layers frozen, pooling and dense layers trained).
        ``()`` fine-tunes every layer. Ignored without a source net.
    pooled_width : int, default 210
        Target width after the first (average) pooling layer, in points; the pool
        window is ``max(1, round(n_wavelengths / pooled_width))``.
    learning_rate : float, default 1e-3
        Adam step size.
    weight_decay : float, default 0.0
        Adam L2 penalty on the trained weights.
    batch_size : int, default 32
        Spectra per mini-batch.
    max_epochs : int, default 300
        Upper bound on passes over the training spectra.
    patience : int, default 30
        Early stopping: epochs without improvement of the validation loss before
        training stops (the best epoch's weights are kept).
    validation_fraction : float, default 0.2
        Share of the training spectra held out for early stopping. With fewer than
        2 held-out spectra (tiny data) training runs ``max_epochs`` on all spectra.
    non_negative : bool, default True
        ReLU output in property units (seed 004): predictions are >= 0.
    random_state : int, RandomState or None, default None
        Seeds the initial weights, the validation split and the mini-batch order;
        the same seed gives the same predictions (on the same device and thread
        count).
    device : str, default "cpu"
        Torch device for training and prediction (e.g. ``"cuda"``).
    n_threads : int or None, default 1
        Torch intra-op CPU threads during fit and predict (restored afterwards);
        None leaves torch's setting. One thread is the fastest on a busy 2-core
        machine (mini-batches of 32 spectra are too small to share out), and the
        thread count can change the last bits of the results.

    Attributes
    ----------
    net_ : SpectralResNet
        The fitted torch module (on ``device``).
    n_features_in_ : int
        Points per spectrum.
    pool_size_ : int
        Window and stride of the first pooling layer.
    x_mean_ : ndarray of shape ``(n_features_in_,)``
        Mean training spectrum (of the source when transferred); the default
        baseline of :meth:`integrated_gradients`.
    y_mean_, y_scale_ : float
        Target standardisation, in property units.
    history_ : dict of list of float
        Per-epoch ``"train"`` and ``"validation"`` mean squared error on the
        standardised target (``"validation"`` empty without a validation split).
    best_epoch_ : int
        Epoch (1-based) whose weights were kept.
    frozen_ : tuple of str
        Blocks that were frozen during the last fit (``()`` without transfer).
    transferred_ : bool
        Whether the last fit started from a source net.
    source_net_ : SpectralResNet
        The net fitted by :meth:`fit_source` (absent otherwise); :meth:`fit`
        starts from a copy of it, so refitting always starts from the same source.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 420)).cumsum(axis=1)  # smooth random "spectra"
    >>> y = np.abs(X[:, 100] - X[:, 300])
    >>> model = SpectralResNetRegressor(max_epochs=5, random_state=0).fit(X, y)
    >>> model.pool_size_, model.predict(X[:3]).shape
    (2, (3,))
    """

    #: Valid values of each parameter (scikit-learn's ``_validate_params``); geohm's
    #: config checks ``model.params`` against them before any data is read, then
    #: :meth:`_check_params` (the block names of ``freeze``).
    _parameter_constraints: dict[str, list[Any]] = {
        "freeze": [tuple, list],
        "pooled_width": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "non_negative": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }
    _fitted_attribute = "net_"

    def __init__(
        self,
        *,
        freeze: tuple[str, ...] = ("conv", "residual"),
        pooled_width: int = 210,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 32,
        max_epochs: int = 300,
        patience: int = 30,
        validation_fraction: float = 0.2,
        non_negative: bool = True,
        random_state: int | np.random.RandomState | None = None,
        device: str = "cpu",
        n_threads: int | None = 1,
    ) -> None:
        self.freeze = freeze
        self.pooled_width = pooled_width
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.non_negative = non_negative
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    # ------------------------------------------------------------------ fitting
    def fit_source(self, X: Any, y: Any) -> SpectralResNetRegressor:
        """Train the whole net on a source data set, for transfer by :meth:`fit`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths)
            Source spectra.
        y : array-like of shape (n_samples,)
            Source property, in its units (may differ from the target's).

        Returns
        -------
        SpectralResNetRegressor
            ``self``, fitted to the source (``predict`` gives the source property)
            and holding ``source_net_``.
        """
        self._fit(X, y, source=None, freeze=())
        self.source_net_ = copy.deepcopy(self.net_).cpu()
        return self

    def fit(self, X: Any, y: Any) -> SpectralResNetRegressor:
        """Fit the net to the target spectra, transferring from the source if any.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths)
            Training spectra (the same points as the source's, if transferred).
        y : array-like of shape (n_samples,)
            Property to predict, in its units.

        Returns
        -------
        SpectralResNetRegressor
            ``self``.

        Raises
        ------
        ValueError
            Bad parameters, a different number of points than the source spectra,
            or every block frozen.
        """
        source = getattr(self, "source_net_", None)
        freeze = tuple(self.freeze) if source is not None else ()
        return self._fit(X, y, source=source, freeze=freeze)

    def _check_params(self, freeze: tuple[str, ...]) -> None:
        unknown = [b for b in freeze if b not in BLOCKS]
        if unknown:
            raise ValueError(f"freeze: unknown block(s) {unknown}; choose from {BLOCKS}")
        if set(BLOCKS) <= set(freeze):
            raise ValueError("freeze names every block: nothing would be trained")
        if self.pooled_width < 1 or self.batch_size < 1 or self.max_epochs < 1:
            raise ValueError("pooled_width, batch_size and max_epochs must be >= 1")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}"
            )
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")

    def _fit(
        self, X: Any, y: Any, *, source: SpectralResNet | None, freeze: tuple[str, ...]
    ) -> SpectralResNetRegressor:
        self._check_params(tuple(self.freeze))
        X, y = self._fit_data(X, y)
        n, k = X.shape
        if source is not None and source.x_shift.numel() != k:
            raise ValueError(
                f"X has {k} feature(s) but the source net was fitted on "
                f"{source.x_shift.numel()}: source and target spectra need the same points"
            )
        pool = max(1, round(k / self.pooled_width)) if source is None else pool_of(source)
        device = torch_device(self.device)
        rng = self._random_state()
        seed = int(rng.randint(0, 2**31 - 1))
        y = np.asarray(y, dtype=np.float64)
        y_mean = float(y.mean())
        y_sd = float(y.std())
        y_scale = y_sd if y_sd > 0 else 1.0

        with threads(self.n_threads), seeded(seed, device):
            net = self._start_net(X, source, pool, freeze, (y_mean, y_scale), device)
            train, val = _validation_split(rng, n, self.validation_fraction)
            started = time.perf_counter()
            history, best_epoch = self._train(net, X, (y - y_mean) / y_scale, train, val, device)
        net.eval()
        self.net_ = net
        self.pool_size_ = pool
        self.x_mean_ = net.x_shift.detach().cpu().numpy().astype(np.float64)
        self.y_mean_ = y_mean
        self.y_scale_ = y_scale
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.frozen_ = tuple(freeze)
        self.transferred_ = source is not None
        log.debug(
            "SpectralResNetRegressor: %d spectra, %d epochs (best %d), frozen %s, %.1f s",
            n,
            len(history["train"]),
            best_epoch,
            freeze,
            time.perf_counter() - started,
        )
        return self

    def _start_net(
        self,
        X: np.ndarray,
        source: SpectralResNet | None,
        pool: int,
        freeze: tuple[str, ...],
        target_scaling: tuple[float, float],
        device: torch.device,
    ) -> SpectralResNet:
        """The net that training starts from, on ``device``, with ``freeze`` blocks fixed.

        A fresh net standardises the spectra by the training spectra's mean and standard
        deviation per point; a transferred one is a copy of the source, with its input
        standardisation. Either predicts ``mean + scale * z`` (``target_scaling``).
        """
        if source is None:
            net = SpectralResNet(X.shape[1], pool, non_negative=self.non_negative)
            x_mean = X.mean(axis=0)
            x_sd = X.std(axis=0)
            net.x_shift.copy_(torch.as_tensor(x_mean, dtype=DTYPE))
            net.x_scale.copy_(torch.as_tensor(np.where(x_sd > 0, x_sd, 1.0), dtype=DTYPE))
        else:
            net = copy.deepcopy(source)
            net.non_negative = self.non_negative
        y_mean, y_scale = target_scaling
        net.y_shift.fill_(y_mean)
        net.y_scale.fill_(y_scale)
        net = net.to(device)
        for name, modules in net.blocks().items():
            for module in modules:
                module.requires_grad_(name not in freeze)
        return net

    def _train(
        self,
        net: SpectralResNet,
        X: np.ndarray,
        z: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        device: torch.device,
    ) -> tuple[dict[str, list[float]], int]:
        """Adam on the mean squared error of ``z``, early stopping on ``val``."""
        Xt = as_tensor(X, device)
        zt = torch.as_tensor(z, dtype=DTYPE, device=device)
        tr = torch.as_tensor(train, device=device)
        va = torch.as_tensor(val, device=device)
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=self.learning_rate, weight_decay=self.weight_decay)
        history: dict[str, list[float]] = {"train": [], "validation": []}
        best_loss, best_epoch = np.inf, 0
        best_state: dict[str, Any] | None = copy.deepcopy(net.state_dict())
        for epoch in range(1, int(self.max_epochs) + 1):
            net.train()
            order = tr[torch.randperm(tr.numel()).to(device)]
            total = 0.0
            for start in range(0, order.numel(), int(self.batch_size)):
                idx = order[start : start + int(self.batch_size)]
                opt.zero_grad()
                loss = F.mse_loss(net.scaled(Xt[idx]), zt[idx])
                loss.backward()
                opt.step()
                total += float(loss.detach()) * idx.numel()
            history["train"].append(total / max(1, tr.numel()))
            if va.numel() == 0:
                best_epoch, best_state = epoch, None
                continue
            net.eval()
            with torch.no_grad():
                vloss = float(F.mse_loss(net.scaled(Xt[va]), zt[va]))
            history["validation"].append(vloss)
            if vloss < best_loss:
                best_loss, best_epoch = vloss, epoch
                best_state = copy.deepcopy(net.state_dict())
            elif epoch - best_epoch >= self.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        return history, best_epoch

    # --------------------------------------------------------------- prediction
    def _tensor(self, X: Any) -> torch.Tensor:
        X = self._predict_data(X)
        return as_tensor(X, torch_device(self.device))

    def predict(self, X: Any) -> np.ndarray:
        """Predict the property from spectra.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths)
            Spectra, preprocessed as the training spectra were.

        Returns
        -------
        ndarray of shape (n_samples,)
            Predictions in the property's units (>= 0 when ``non_negative``).

        Notes
        -----
        Spectra go through the net in zero-padded chunks of a fixed size (64), so
        that every pass runs the same kernels: a spectrum's prediction is
        bit-identical whatever other spectra (a map window, a subset) come with it,
        on a given device and thread count.
        """
        Xt = self._tensor(X)
        self.net_.eval()
        out = []
        with torch.no_grad(), threads(self.n_threads):
            for start in range(0, Xt.shape[0], _PREDICT_CHUNK):
                chunk = Xt[start : start + _PREDICT_CHUNK]
                n = chunk.shape[0]
                if n < _PREDICT_CHUNK:  # same shapes every pass: same kernels, same bits
                    chunk = torch.cat([chunk, chunk.new_zeros(_PREDICT_CHUNK - n, chunk.shape[1])])
                out.append(self.net_(chunk)[:n].cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros(0)

    def integrated_gradients(
        self,
        X: Any,
        *,
        baseline: np.ndarray | None = None,
        n_steps: int = 50,
        batch_size: int = 64,
    ) -> np.ndarray:
        """Integrated-gradient attribution of each prediction to each spectral point.

        Uses captum's :class:`~captum.attr.IntegratedGradients` on the net from
        spectra to property units. For each spectrum the attributions sum
        (approximately, up to the integral's discretisation) to
        ``predict(x) - predict(baseline)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_wavelengths)
            Spectra to explain.
        baseline : ndarray of shape (n_wavelengths,), optional
            Reference spectrum; default ``x_mean_``, the mean training spectrum, so
            that attributions explain the departure from an average soil.
        n_steps : int, default 50
            Points of the Gauss-Legendre approximation of the path integral.
        batch_size : int, default 64
            Spectra attributed at once (memory: ``batch_size * n_steps`` spectra).

        Returns
        -------
        ndarray of shape (n_samples, n_wavelengths)
            Attributions, in the property's units.

        Raises
        ------
        ImportError
            captum is not installed.
        """
        try:
            from captum.attr import IntegratedGradients
        except ImportError as err:  # pragma: no cover - depends on the environment
            raise ImportError(
                "integrated gradients need captum: pip install 'captum>=0.9'"
            ) from err
        Xt = self._tensor(X)
        base = self.x_mean_ if baseline is None else np.asarray(baseline, dtype=np.float64)
        if base.shape != (self.n_features_in_,):
            raise ValueError(f"baseline must have shape ({self.n_features_in_},), got {base.shape}")
        bt = torch.as_tensor(base, dtype=DTYPE, device=Xt.device).unsqueeze(0)
        self.net_.eval()
        ig = IntegratedGradients(self.net_)
        out = []
        with threads(self.n_threads):
            for start in range(0, Xt.shape[0], batch_size):
                xb = Xt[start : start + batch_size]
                attr = ig.attribute(xb, baselines=bt.expand_as(xb), n_steps=n_steps)
                out.append(attr.detach().cpu().numpy())
        return np.concatenate(out).astype(np.float64) if out else np.zeros((0, Xt.shape[1]))

    # ------------------------------------------------------------ serialization
    def __getstate__(self) -> dict[str, Any]:
        """The state with each torch module replaced by its architecture and weights.

        ``net_`` and ``source_net_`` become ``{"n_wavelengths", "pool_size",
        "non_negative", "tensors": {name: ndarray}}`` (the module's ``state_dict`` as
        numpy arrays), so that a saved model holds plain arrays only: skops stores them
        with ``numpy.save(allow_pickle=False)`` and loading runs no pickle.
        """
        state = dict(super().__getstate__())
        for key in _NETS:
            if isinstance(state.get(key), SpectralResNet):
                state[key] = net_state(state[key])
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore the state, rebuilding the torch modules from their architecture.

        The module is built by :class:`SpectralResNet` from the stored sizes and its
        weights are loaded with ``load_state_dict(strict=True)`` (every name and shape
        must match); ``net_`` goes to ``device`` when that device exists here, else
        it stays on the CPU and ``device`` becomes ``"cpu"`` (logged).

        Raises
        ------
        ValueError
            A stored net that does not fit its architecture (a corrupt or crafted file).
        """
        state = dict(state)
        nets = {key: state.pop(key) for key in _NETS if isinstance(state.get(key), dict)}
        super().__setstate__(state)
        for key, spec in nets.items():
            net = net_from_state(spec)
            if key == "net_":
                try:
                    net = net.to(torch_device(self.device))
                except (RuntimeError, AssertionError, ValueError) as exc:
                    log.warning(
                        "SpectralResNetRegressor: device %r unavailable (%s); using the CPU",
                        self.device,
                        exc,
                    )
                    self.device = "cpu"
                net.eval()
            setattr(self, key, net)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        tags.target_tags.positive_only = bool(self.non_negative)
        return tags


def _validation_split(
    rng: np.random.RandomState, n: int, fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows for early stopping (sorted), drawn from ``rng``.

    With fewer than 2 validation rows, or none left to train on, every row trains and
    none validates.
    """
    n_val = int(round(fraction * n))
    perm = rng.permutation(n)
    if n_val >= 2 and n - n_val >= 1:
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])
    return np.arange(n), perm[:0]

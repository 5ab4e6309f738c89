"""A 1D residual network for soil spectra, with parameter transfer (seed 004).

He et al. (2025, *Sensors* 25:4209) predict soil Pb from vis-NIR spectra with a
small 1D ResNet, pre-trained on a large library for another property (LUCAS pH,
14,277 spectra) and fine-tuned on 98 local Pb samples with the convolutional and
residual layers frozen and the pooling and dense layers trained. Their layer table,
for a 2,100-point spectrum:

====  ==============  =======  ======  =====  ==========  ==================
 #    layer           filters  kernel  width  parameters  activation
====  ==============  =======  ======  =====  ==========  ==================
 2    average pool    -        10      210    0           -
 3    convolution     48       3       210    192         LeakyReLU(0.01)
 4    max pool        -        2       105    0           -
 5    residual block  48, 48   3, 3    105    6960 x 2    ReLU, -
 6    residual block  48, 48   3, 3    105    6960 x 2    ReLU, -
 7    convolution     32       3       105    4640        LeakyReLU(0.01)
 8    max pool        -        2       52     0           -
 9    flatten         -        -       1664   0           -
 10   dense           -        -       16     16,640 (*)  LeakyReLU(0.01)
 11   dense           -        -       10     170         LeakyReLU(0.01)
 12   output          -        -       1      11          ReLU
====  ==============  =======  ======  =====  ==========  ==================

How this module reads the table
-------------------------------
- The average pool has a window of 10 *and a stride of 10* (the table prints stride
  1, but only stride 10 gives width 210). For other spectra the window is
  ``round(n_wavelengths / pooled_width)`` (at least 1), so that about 210 points
  remain; the 1,701-point KSSL MIR spectra are pooled by 8 to 212 points.
- Convolutions keep the width ("same" zero padding); max pools halve it, rounding
  down (105 -> 52).
- A residual block is ``ReLU(x + conv2(ReLU(conv1(x))))`` (He et al. 2016's basic
  block without batch normalisation: the table's counts, 48 x 48 x 3 + 48 = 6960
  per convolution, leave no room for it).
- (*) The first dense layer has 1664 x 16 + 16 = 26,640 parameters; the table's
  16,640 does not match its own widths (a typo, it seems). The test suite checks
  the counts derived from the widths.
- The output unit is ``ReLU`` in the units of the property (non-negative
  concentrations). Training works on a standardised target ``z = (y - mean) / sd``
  for stability: the last dense unit gives ``z`` and the output is
  ``max(0, mean + sd * z)``, the same function class as a ReLU output unit on
  ``y`` (the affine map folds into the unit's 11 parameters).
- The paper's training settings are not in the text we have. Here: Adam, mean
  squared error on ``z``, mini-batches, early stopping on a random validation
  split with the best epoch's weights restored. Spectra are standardised per
  wavelength (centred and scaled by the training spectra) before the net.

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
transferred) in one call and returns their test scores (RMSE, R2, RPD, RPIQ).
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any, Literal, overload

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.linear_model import LinearRegression
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

__all__ = [
    "BLOCKS",
    "SpectralResNetRegressor",
    "compare_transfer",
    "spectral_scores",
]

log = logging.getLogger(__name__)

#: Blocks that ``freeze`` can name: the two plain convolutions (layers 3 and 7), the
#: two residual blocks (5 and 6), the dense layers with the output unit (10-12).
BLOCKS = ("conv", "residual", "dense")

_LEAK = 0.01  # LeakyReLU slope of the layer table
_FILTERS = 48
_OUT_FILTERS = 32
_KERNEL = 3
_DENSE = (16, 10)
_DTYPE = torch.float32
_PREDICT_CHUNK = 64  # rows per forward pass at prediction, zero-padded to this size


class _ResidualBlock(nn.Module):
    """``ReLU(x + conv2(ReLU(conv1(x))))`` with width-preserving convolutions."""

    def __init__(self, channels: int, kernel: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class SpectralResNet(nn.Module):
    """Seed 004's 1D ResNet as a torch module, from raw spectra to the property.

    The module holds its own input standardisation (``x_shift``, ``x_scale``, per
    wavelength) and target scaling (``y_shift``, ``y_scale``) as buffers, so that
    ``forward`` maps spectra as given to the estimator to predictions in property
    units (what integrated gradients should explain).

    Parameters
    ----------
    n_wavelengths : int
        Points per input spectrum.
    pool_size : int
        Window and stride of the first (average) pooling layer.
    non_negative : bool
        Whether the output unit is a ReLU in property units.
    """

    x_shift: torch.Tensor
    x_scale: torch.Tensor
    y_shift: torch.Tensor
    y_scale: torch.Tensor

    def __init__(self, n_wavelengths: int, pool_size: int, *, non_negative: bool = True) -> None:
        super().__init__()
        width = _widths(n_wavelengths, pool_size)
        self.non_negative = non_negative
        self.register_buffer("x_shift", torch.zeros(n_wavelengths, dtype=_DTYPE))
        self.register_buffer("x_scale", torch.ones(n_wavelengths, dtype=_DTYPE))
        self.register_buffer("y_shift", torch.zeros((), dtype=_DTYPE))
        self.register_buffer("y_scale", torch.ones((), dtype=_DTYPE))
        self.avg_pool = nn.AvgPool1d(pool_size, stride=pool_size)
        self.conv_in = nn.Conv1d(1, _FILTERS, _KERNEL, padding=_KERNEL // 2)
        # A short input (a few bands, not a spectrum) rounds the max pools up, so that
        # at least one point survives; real spectra pool with rounding down (105 -> 52).
        ceil = width["avg_pool"] < 4
        self.pool1 = nn.MaxPool1d(2, ceil_mode=ceil)
        self.residual = nn.Sequential(
            _ResidualBlock(_FILTERS, _KERNEL), _ResidualBlock(_FILTERS, _KERNEL)
        )
        self.conv_out = nn.Conv1d(_FILTERS, _OUT_FILTERS, _KERNEL, padding=_KERNEL // 2)
        self.pool2 = nn.MaxPool1d(2, ceil_mode=ceil)
        self.dense1 = nn.Linear(_OUT_FILTERS * width["pool2"], _DENSE[0])
        self.dense2 = nn.Linear(_DENSE[0], _DENSE[1])
        self.output = nn.Linear(_DENSE[1], 1)

    def blocks(self) -> dict[str, list[nn.Module]]:
        """The modules of each block that ``freeze`` can name (see :data:`BLOCKS`)."""
        return {
            "conv": [self.conv_in, self.conv_out],
            "residual": [self.residual],
            "dense": [self.dense1, self.dense2, self.output],
        }

    def scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Standardised prediction ``z`` (before the output ReLU), shape ``(n,)``."""
        h = ((x - self.x_shift) / self.x_scale).unsqueeze(1)
        h = self.avg_pool(h)
        h = self.pool1(F.leaky_relu(self.conv_in(h), _LEAK))
        h = self.residual(h)
        h = self.pool2(F.leaky_relu(self.conv_out(h), _LEAK))
        h = F.leaky_relu(self.dense1(h.flatten(1)), _LEAK)
        h = F.leaky_relu(self.dense2(h), _LEAK)
        z = self.output(h).squeeze(1)
        if self.non_negative:  # ReLU in property units: y >= 0 <=> z >= -shift / scale
            z = torch.maximum(z, -self.y_shift / self.y_scale)
        return z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prediction in property units, shape ``(n,)``, from spectra ``(n, n_wavelengths)``."""
        return self.y_shift + self.y_scale * self.scaled(x)


def _widths(n_wavelengths: int, pool_size: int) -> dict[str, int]:
    """Width of the feature maps after each pooling layer."""
    avg = n_wavelengths // pool_size
    if avg < 4:  # max pools round up (see SpectralResNet)
        half = -(-avg // 2)
        return {"avg_pool": avg, "pool1": half, "pool2": -(-half // 2)}
    return {"avg_pool": avg, "pool1": avg // 2, "pool2": avg // 4}


def _as_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 copy of ``X`` on ``device`` (read-only arrays are fine)."""
    return torch.from_numpy(np.array(X, dtype=np.float32)).to(device)


def _torch_device(device: Any) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device: {err}") from err


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads inside the block (None: leave as is)."""
    if n is None:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(saved)


@contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's CPU generator inside the block; deterministic kernels off the CPU.

    Weights are initialised and mini-batches drawn on the CPU generator, whose
    global state is restored on exit (fitting does not disturb other torch users).
    On CPU the kernels used here are deterministic already; on other devices
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` is set for the
    block and then restored (it is not set on CPU because its first call imports
    torch's compiler stack, several seconds).
    """
    flag = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if device.type != "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            if device.type != "cpu":
                torch.use_deterministic_algorithms(flag, warn_only=warn)


class SpectralResNetRegressor(RegressorMixin, BaseEstimator):
    """Seed 004's 1D ResNet regressor for soil spectra, with optional transfer.

    A scikit-learn regressor on an ``(n_samples, n_wavelengths)`` array of spectra
    (absorbance or reflectance, preprocessed or not; equally spaced points in
    increasing order), predicting one soil property in its own units (e.g. mg/kg).
    The architecture is described in :mod:`geohm.models.spectral`.

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
    x_mean_ : ndarray of shape (n_features_in_,)
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
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, reset=True)
        n, k = X.shape
        if source is not None and source.x_shift.numel() != k:
            raise ValueError(
                f"X has {k} feature(s) but the source net was fitted on "
                f"{source.x_shift.numel()}: source and target spectra need the same points"
            )
        pool = max(1, round(k / self.pooled_width)) if source is None else _pool_of(source)
        device = _torch_device(self.device)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(0, 2**31 - 1))
        y = np.asarray(y, dtype=np.float64)
        y_mean = float(y.mean())
        y_sd = float(y.std())
        y_scale = y_sd if y_sd > 0 else 1.0

        with _threads(self.n_threads), _seeded(seed, device):
            if source is None:
                net = SpectralResNet(k, pool, non_negative=self.non_negative)
                x_mean = X.mean(axis=0)
                x_sd = X.std(axis=0)
                net.x_shift.copy_(torch.as_tensor(x_mean, dtype=_DTYPE))
                net.x_scale.copy_(torch.as_tensor(np.where(x_sd > 0, x_sd, 1.0), dtype=_DTYPE))
            else:
                net = copy.deepcopy(source)
                net.non_negative = self.non_negative
            net.y_shift.fill_(y_mean)
            net.y_scale.fill_(y_scale)
            net = net.to(device)
            blocks = net.blocks()
            for name, modules in blocks.items():
                for module in modules:
                    module.requires_grad_(name not in freeze)
            n_val = int(round(self.validation_fraction * n))
            perm = rng.permutation(n)
            if n_val >= 2 and n - n_val >= 1:
                val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            else:
                val, train = perm[:0], np.arange(n)
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
        Xt = _as_tensor(X, device)
        zt = torch.as_tensor(z, dtype=_DTYPE, device=device)
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
        check_is_fitted(self, "net_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return _as_tensor(X, _torch_device(self.device))

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
        with torch.no_grad(), _threads(self.n_threads):
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
        bt = torch.as_tensor(base, dtype=_DTYPE, device=Xt.device).unsqueeze(0)
        self.net_.eval()
        ig = IntegratedGradients(self.net_)
        out = []
        with _threads(self.n_threads):
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
                state[key] = _net_state(state[key])
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
            net = _net_from_state(spec)
            if key == "net_":
                try:
                    net = net.to(_torch_device(self.device))
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


def _pool_of(net: SpectralResNet) -> int:
    kernel = net.avg_pool.kernel_size
    return int(kernel[0] if isinstance(kernel, tuple) else kernel)


#: Attributes of :class:`SpectralResNetRegressor` that hold a :class:`SpectralResNet`.
_NETS = ("net_", "source_net_")
#: Largest spectrum a stored net may declare (a bound against absurd allocations).
_MAX_WAVELENGTHS = 1_000_000


def _net_state(net: SpectralResNet) -> dict[str, Any]:
    """A :class:`SpectralResNet` as its sizes and its ``state_dict`` as numpy arrays."""
    return {
        "n_wavelengths": int(net.x_shift.numel()),
        "pool_size": _pool_of(net),
        "non_negative": bool(net.non_negative),
        "tensors": {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()},
    }


def _net_from_state(spec: dict[str, Any]) -> SpectralResNet:
    """Rebuild a :class:`SpectralResNet` (on the CPU) from :func:`_net_state`'s output.

    Raises
    ------
    ValueError
        Sizes out of range, or weights whose names or shapes do not fit the net.
    """
    n, pool = spec.get("n_wavelengths"), spec.get("pool_size")
    tensors = spec.get("tensors")
    if (
        not isinstance(n, int)
        or not isinstance(pool, int)
        or not 1 <= pool <= n <= _MAX_WAVELENGTHS
        or not isinstance(spec.get("non_negative"), bool)
        or not isinstance(tensors, dict)
        or not all(isinstance(v, np.ndarray) and v.dtype.kind == "f" for v in tensors.values())
    ):
        raise ValueError("stored spectral net with invalid sizes or weights")
    dense = (_DENSE[0], _OUT_FILTERS * _widths(n, pool)["pool2"])
    if getattr(tensors.get("dense1.weight"), "shape", None) != dense:  # before allocating
        raise ValueError("stored spectral net whose weights do not fit its sizes")
    net = SpectralResNet(n, pool, non_negative=spec["non_negative"])
    try:
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()})
    except RuntimeError as exc:  # missing, unexpected or mis-shaped weights
        raise ValueError(f"stored spectral net does not fit its architecture: {exc}") from None
    return net


# ---------------------------------------------------------------------- scoring
def spectral_scores(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Soil-spectroscopy accuracy scores of predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Measured and predicted property, same units.

    Returns
    -------
    dict
        ``rmse`` (property units), ``r2`` (1 - SSE/SST), ``rpd`` (sample standard
        deviation of ``y_true`` / RMSE) and ``rpiq`` (interquartile range of
        ``y_true`` / RMSE, Bellon-Maurel et al. 2010), ``n``.

    Examples
    --------
    >>> s = spectral_scores([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 6.0])
    >>> round(s["rmse"], 4), s["r2"], round(s["rpd"], 3), round(s["rpiq"], 3)
    (0.4472, 0.9, 3.536, 4.472)
    """
    t = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(f"y_true and y_pred need the same non-zero length: {t.size}, {p.size}")
    rmse = float(np.sqrt(np.mean((p - t) ** 2)))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    q1, q3 = np.percentile(t, [25, 75])
    sd = float(t.std(ddof=1)) if t.size > 1 else float("nan")
    inf = float("inf")
    return {
        "rmse": rmse,
        "r2": float(1.0 - np.sum((p - t) ** 2) / ss_tot) if ss_tot > 0 else float("nan"),
        "rpd": sd / rmse if rmse > 0 else inf,
        "rpiq": float(q3 - q1) / rmse if rmse > 0 else inf,
        "n": int(t.size),
    }


@overload
def compare_transfer(
    X_src: Any,
    y_src: Any,
    X_tgt: Any,
    y_tgt: Any,
    X_test: Any,
    y_test: Any,
    *,
    estimator: SpectralResNetRegressor | None = ...,
    same_property: bool = ...,
    return_models: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def compare_transfer(
    X_src: Any,
    y_src: Any,
    X_tgt: Any,
    y_tgt: Any,
    X_test: Any,
    y_test: Any,
    *,
    estimator: SpectralResNetRegressor | None = ...,
    same_property: bool = ...,
    return_models: Literal[True],
) -> tuple[pd.DataFrame, dict[str, Any]]: ...


def compare_transfer(
    X_src: Any,
    y_src: Any,
    X_tgt: Any,
    y_tgt: Any,
    X_test: Any,
    y_test: Any,
    *,
    estimator: SpectralResNetRegressor | None = None,
    same_property: bool = False,
    return_models: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, Any]]:
    """Seed 004's three models on one split: source, target only, transferred.

    - ``source``: the net trained on the source set (:meth:`~SpectralResNetRegressor.
      fit_source`) applied to the target test spectra. When the source and target
      properties differ (``same_property=False``, e.g. pH and Pb, or clay % and
      organic carbon %), its output is in the wrong units, so it is **linearly
      recalibrated** on the target training set (``y ~ a + b * source_prediction``,
      least squares, clipped at 0 when the estimator is ``non_negative``): this row
      then measures how much target information the frozen source *output* carries.
      With ``same_property=True`` the source net is applied as is.
    - ``target only``: a fresh net trained on the target training set alone.
    - ``transfer``: the source net fine-tuned on the target training set with the
      estimator's ``freeze`` blocks fixed.

    Parameters
    ----------
    X_src, y_src : array-like
        Source spectra ``(n_src, n_wavelengths)`` and property ``(n_src,)``.
    X_tgt, y_tgt : array-like
        Target training spectra and property (the few samples).
    X_test, y_test : array-like
        Target test spectra and property (held out from everything).
    estimator : SpectralResNetRegressor, optional
        Template (cloned for each model, with its ``freeze``, training settings and
        ``random_state``); default ``SpectralResNetRegressor(random_state=0)``.
    same_property : bool, default False
        Source and target are the same property in the same units.
    return_models : bool, default False
        Also return the fitted models ``{"source", "target only", "transfer"}``
        (the ``source`` entry is the source-fitted estimator).

    Returns
    -------
    pandas.DataFrame
        Indexed by model (``source``, ``target only``, ``transfer``); columns
        ``rmse`` (target units), ``r2``, ``rpd``, ``rpiq``, ``n_train`` (target
        training spectra used, 0 for an uncalibrated source net) and ``fit_s``
        (seconds). With ``return_models``, a ``(table, models)`` tuple.
    """
    template = estimator if estimator is not None else SpectralResNetRegressor(random_state=0)
    y_tgt = np.asarray(y_tgt, dtype=np.float64)
    rows: dict[str, dict[str, float]] = {}

    t0 = time.perf_counter()
    source = clone(template).fit_source(X_src, y_src)
    fit_src = time.perf_counter() - t0
    pred = source.predict(X_test)
    n_used = 0
    if not same_property:
        cal = LinearRegression().fit(source.predict(X_tgt)[:, None], y_tgt)
        pred = cal.predict(pred[:, None])
        if template.non_negative:
            pred = np.maximum(pred, 0.0)
        n_used = y_tgt.size
    rows["source"] = {**spectral_scores(y_test, pred), "n_train": n_used, "fit_s": fit_src}

    t0 = time.perf_counter()
    target_only = clone(template).fit(X_tgt, y_tgt)
    rows["target only"] = {
        **spectral_scores(y_test, target_only.predict(X_test)),
        "n_train": y_tgt.size,
        "fit_s": time.perf_counter() - t0,
    }

    transfer = copy.deepcopy(source)
    t0 = time.perf_counter()
    transfer.fit(X_tgt, y_tgt)
    rows["transfer"] = {
        **spectral_scores(y_test, transfer.predict(X_test)),
        "n_train": y_tgt.size,
        "fit_s": time.perf_counter() - t0,
    }
    table = pd.DataFrame.from_dict(rows, orient="index")[
        ["rmse", "r2", "rpd", "rpiq", "n_train", "fit_s"]
    ]
    table.index.name = "model"
    if return_models:
        return table, {"source": source, "target only": target_only, "transfer": transfer}
    return table

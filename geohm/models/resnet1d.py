"""Seed 004's 1D residual network for soil spectra, as a torch module.

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

The module also holds what the estimator (:mod:`geohm.models.spectral`) needs of torch:
a net stored as plain arrays and rebuilt (:func:`net_state`, :func:`net_from_state`),
tensors on a device, a thread count and a seeded generator for a block of code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "BLOCKS",
    "DTYPE",
    "SpectralResNet",
    "as_tensor",
    "net_from_state",
    "net_state",
    "pool_of",
    "seeded",
    "threads",
    "torch_device",
]

#: Blocks that ``freeze`` can name: the two plain convolutions (layers 3 and 7), the
#: two residual blocks (5 and 6), the dense layers with the output unit (10-12).
BLOCKS = ("conv", "residual", "dense")

_LEAK = 0.01  # LeakyReLU slope of the layer table
_FILTERS = 48
_OUT_FILTERS = 32
_KERNEL = 3
_DENSE = (16, 10)
#: The dtype of the net's weights and inputs.
DTYPE = torch.float32


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
        self.register_buffer("x_shift", torch.zeros(n_wavelengths, dtype=DTYPE))
        self.register_buffer("x_scale", torch.ones(n_wavelengths, dtype=DTYPE))
        self.register_buffer("y_shift", torch.zeros((), dtype=DTYPE))
        self.register_buffer("y_scale", torch.ones((), dtype=DTYPE))
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


def as_tensor(X: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 copy of ``X`` on ``device`` (read-only arrays are fine).

    Parameters
    ----------
    X : ndarray
        Any numeric array.
    device : torch.device
        Where the tensor goes.

    Returns
    -------
    torch.Tensor
        float32, same shape.
    """
    return torch.from_numpy(np.array(X, dtype=np.float32)).to(device)


def torch_device(device: Any) -> torch.device:
    """The torch device an estimator's ``device`` parameter names.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        Not a torch device.
    """
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a torch device: {err}") from err


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run torch on ``n`` intra-op threads inside the block (None: leave as is).

    Parameters
    ----------
    n : int or None
        Threads; the previous count is restored on exit.
    """
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
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch's CPU generator inside the block; deterministic kernels off the CPU.

    Weights are initialised and mini-batches drawn on the CPU generator, whose
    global state is restored on exit (fitting does not disturb other torch users).
    On CPU the kernels used here are deterministic already; on other devices
    ``torch.use_deterministic_algorithms(True, warn_only=True)`` is set for the
    block and then restored (it is not set on CPU because its first call imports
    torch's compiler stack, several seconds).

    Parameters
    ----------
    seed : int
        Seed of torch's CPU generator.
    device : torch.device
        The device the block computes on.
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


def pool_of(net: SpectralResNet) -> int:
    """Window (and stride) of a net's first pooling layer, in spectral points.

    Parameters
    ----------
    net : SpectralResNet

    Returns
    -------
    int
    """
    kernel = net.avg_pool.kernel_size
    return int(kernel[0] if isinstance(kernel, tuple) else kernel)


#: Largest spectrum a stored net may declare (a bound against absurd allocations).
_MAX_WAVELENGTHS = 1_000_000


def net_state(net: SpectralResNet) -> dict[str, Any]:
    """A :class:`SpectralResNet` as its sizes and its ``state_dict`` as numpy arrays.

    Parameters
    ----------
    net : SpectralResNet

    Returns
    -------
    dict
        ``{"n_wavelengths", "pool_size", "non_negative", "tensors": {name: ndarray}}``:
        plain values only, so that a model file stores no torch pickle.
    """
    return {
        "n_wavelengths": int(net.x_shift.numel()),
        "pool_size": pool_of(net),
        "non_negative": bool(net.non_negative),
        "tensors": {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()},
    }


def net_from_state(spec: dict[str, Any]) -> SpectralResNet:
    """Rebuild a :class:`SpectralResNet` (on the CPU) from :func:`net_state`'s output.

    Parameters
    ----------
    spec : dict
        What :func:`net_state` returned (read from a model file: checked here).

    Returns
    -------
    SpectralResNet
        With the stored weights (``load_state_dict(strict=True)``).

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



"""The fully convolutional net of the patch CNN, its input encoding and the patch reads.

:class:`PatchNet` maps a ``(n, C + 1, 2h + 1, 2h + 1)`` stack of standardised feature
patches (plus one validity channel) to one value per patch. Every layer is an unpadded
("valid") convolution: ``depth`` 3 x 3 convolutions (batch norm, ReLU, dropout), then a
head convolution of ``k = 2h + 1 - 2 depth`` pixels square to one output channel. A patch
of ``2h + 1`` pixels therefore gives a 1 x 1 output, and a ``(H + 2h) x (W + 2h)`` window
(the map window with an ``h``-pixel halo) gives an ``H x W`` map in one pass whose every
pixel is the net's value on the patch centred there (in eval mode batch norm is an
affine map per channel and dropout is the identity).

Input encoding (:func:`encode`): NaN (missing, or outside the scene) is replaced by the
training mean of its channel, each channel is standardised with the training mean and
standard deviation, and a last channel is 1 where every feature of the pixel is finite,
0 elsewhere.

:func:`geohm.patches.read_patches` and :func:`geohm.patches.read_halo` read the patches
and the haloed map windows through the one feature reader (:class:`geohm.cube.WindowSource`):
the sample patches and the map windows come from the same code. The net sees arrays only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = [
    "PatchNet",
    "dihedral",
    "encode",
    "net_from_state",
    "net_state",
]

DTYPE = torch.float32


class PatchNet(nn.Module):
    """Small fully convolutional regressor of one value per ``(2h + 1)``-pixel patch.

    Parameters
    ----------
    in_channels : int
        Input channels (the features plus the validity channel).
    channels : int
        Filters of every 3 x 3 convolution.
    depth : int
        Number of 3 x 3 convolutions (each followed by batch norm, ReLU and dropout).
    patch : int
        Half-width ``h`` of the patch in pixels (the patch is ``2h + 1`` square);
        ``depth <= patch``.
    dropout : float
        Element-wise dropout after every hidden layer (training only).

    Attributes
    ----------
    head_size : int
        ``k = 2h + 1 - 2 depth``, the side of the head convolution.
    """

    def __init__(
        self, in_channels: int, channels: int, depth: int, patch: int, dropout: float
    ) -> None:
        super().__init__()
        if not 1 <= depth <= patch:
            raise ValueError(f"depth {depth} must be between 1 and patch={patch}")
        self.in_channels = int(in_channels)
        self.channels = int(channels)
        self.depth = int(depth)
        self.patch = int(patch)
        self.dropout = float(dropout)
        self.head_size = 2 * patch + 1 - 2 * depth
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(depth):
            layers += [
                nn.Conv2d(width, channels, 3, bias=False),
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Dropout(dropout),
            ]
            width = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 1, self.head_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(n, C + 1, H + 2h, W + 2h) -> (n, H, W); a patch gives (n, 1, 1)."""
        out: torch.Tensor = self.head(self.body(x))
        return out[:, 0]


def encode(block: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Standardised channels with NaN as the mean, plus the validity channel.

    Parameters
    ----------
    block : ndarray of shape (..., C, rows, cols)
        Features in their own units, NaN where missing.
    mean, scale : ndarray of shape (C,)
        Training mean and standard deviation of each channel.

    Returns
    -------
    ndarray of shape (..., C + 1, rows, cols), float32
        ``(x - mean) / scale`` (0 where ``x`` is NaN), then 1 where every channel of the
        pixel is finite, else 0.

    Examples
    --------
    >>> b = np.array([[[1.0, np.nan]], [[3.0, 5.0]]], dtype=np.float32)  # (2, 1, 2)
    >>> encode(b, np.array([1.0, 3.0]), np.array([1.0, 2.0])).tolist()
    [[[0.0, 0.0]], [[0.0, 1.0]], [[1.0, 0.0]]]
    """
    block = np.asarray(block, dtype=np.float32)
    shape = (-1, 1, 1)
    finite = np.isfinite(block)
    z = (block - mean.reshape(shape).astype(np.float32)) / scale.reshape(shape).astype(np.float32)
    z = np.where(finite, z, np.float32(0.0)).astype(np.float32)
    valid = np.all(finite, axis=-3, keepdims=True).astype(np.float32)
    return np.concatenate([z, valid], axis=-3)


def dihedral(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    """Each patch turned by ``code % 4`` quarter turns, then mirrored when ``code >= 4``.

    Parameters
    ----------
    x : Tensor of shape (n, C, P, P)
        Square patches.
    codes : Tensor of shape (n,)
        Integers 0..7, one of the 8 symmetries of the square per patch (0: unchanged).

    Returns
    -------
    Tensor of shape (n, C, P, P)
    """
    out = x.clone()
    for code in range(1, 8):
        sel = codes == code
        if not bool(sel.any()):
            continue
        t = torch.rot90(x[sel], code % 4, dims=(2, 3))
        out[sel] = torch.flip(t, dims=(3,)) if code >= 4 else t
    return out


def net_state(net: PatchNet) -> dict[str, Any]:
    """The architecture and weights of ``net`` as plain numbers and arrays."""
    return {
        "in_channels": net.in_channels,
        "channels": net.channels,
        "depth": net.depth,
        "patch": net.patch,
        "dropout": net.dropout,
        "tensors": {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()},
    }


def net_from_state(spec: dict[str, Any]) -> PatchNet:
    """Rebuild a :class:`PatchNet` from :func:`net_state` (every name and shape checked).

    Raises
    ------
    ValueError
        A state that does not fit its architecture.
    """
    try:
        net = PatchNet(
            int(spec["in_channels"]),
            int(spec["channels"]),
            int(spec["depth"]),
            int(spec["patch"]),
            float(spec["dropout"]),
        )
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in spec["tensors"].items()}
        net.load_state_dict(tensors, strict=True)
    except (KeyError, RuntimeError, TypeError) as exc:
        raise ValueError(f"a stored patch net does not fit its architecture: {exc}") from exc
    net.eval()
    return net

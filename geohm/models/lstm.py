"""An LSTM forecaster for monitoring-well series: one network across sites (seed 000, 3.2).

Zeng's seed paper (section 3.2 and the copper-mine case of section 6) forecasts heavy
metals in groundwater with an LSTM that learns the seasonal and long-term movement of
each well. The paper gives no architecture; this module's is small on purpose (tens of
wells with tens to hundreds of time steps each):

- input: a window of the last ``L`` time steps of each sample, ``X`` of shape
  ``(n, L, f)`` (the scaled concentration carried forward over gaps, the observation
  mask, the time since the last observation, season and covariates: see
  :mod:`geohm.series.data`), and optional per-site features ``static`` ``(n, s)``
  (coordinates, the site's level);
- an ``nn.LSTM`` (``num_layers`` layers of ``hidden_size`` units) reads the window;
  its last hidden state, joined with ``static``, goes through one dense layer (ReLU,
  dropout) to ``2 H`` outputs: the mean and the log-variance of the target at each of
  the ``H`` steps ahead (a direct multi-horizon forecast);
- the loss is the Gaussian negative log-likelihood over the *observed* targets only
  (``y`` is NaN where a well was not sampled), so irregular series need no filling;
- ``n_members`` networks from different seeds form a deep ensemble (Lakshminarayanan
  et al. 2017): the predictive distribution at each step is the equal mixture of the
  members' Gaussians; its mean is the forecast, and its spread holds both the noise the
  members learnt and their disagreement.

Weights are initialised and trained under :func:`geohm.models.resnet1d.seeded`, so a
``random_state`` gives the same forecasts run after run on one machine.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval
from torch import nn

from geohm.models.base import GeohmEstimator
from geohm.models.resnet1d import seeded, threads, torch_device

__all__ = ["EnsembleLSTM", "LSTMForecaster", "lstm_parameter_count"]

_DTYPE = torch.float32
#: Log-variance bounds (scaled units): keeps the likelihood finite early in training.
_LOGVAR = (-9.0, 5.0)


class EnsembleLSTM(nn.Module):
    """``members`` LSTM networks of the same shape, computed together.

    Each member is an LSTM (``num_layers`` layers of ``hidden_size`` units, the standard
    gates ``i, f, g, o`` with one bias vector) reading the window, a dense layer (ReLU,
    dropout) on its last hidden state joined with the per-site features, and an output
    layer giving the mean and log-variance at each of the ``H`` steps. Every weight has a
    leading ``members`` axis: one batched matrix product computes all members, so an
    ensemble trains in about the time of one network; the members share nothing (their
    gradients are independent) but the mini-batches.

    Parameters
    ----------
    members : int
        Networks.
    n_features : int
        Features per time step (``f``).
    n_static : int
        Per-site features (``s``, may be 0).
    horizon : int
        Steps ahead (``H``).
    hidden_size, num_layers : int
        LSTM width and depth.
    dropout : float
        Dropout before the output layer (and between LSTM layers).
    """

    def __init__(
        self,
        members: int,
        n_features: int,
        n_static: int,
        horizon: int,
        *,
        hidden_size: int,
        num_layers: int,
        dropout: float,
    ) -> None:
        super().__init__()
        h = hidden_size
        self.horizon, self.hidden_size, self.dropout = horizon, h, dropout
        bound = 1.0 / np.sqrt(h)  # torch's nn.LSTM initialisation

        def weight(*shape: int, scale: float) -> nn.Parameter:
            return nn.Parameter(torch.empty(members, *shape).uniform_(-scale, scale))

        self.w_in = nn.ParameterList(
            [weight(n_features if k == 0 else h, 4 * h, scale=bound) for k in range(num_layers)]
        )
        self.w_rec = nn.ParameterList([weight(h, 4 * h, scale=bound) for _ in range(num_layers)])
        self.b = nn.ParameterList([weight(1, 4 * h, scale=bound) for _ in range(num_layers)])
        d = 1.0 / np.sqrt(h + n_static)
        self.w_dense, self.b_dense = weight(h + n_static, h, scale=d), weight(1, h, scale=d)
        o = 1.0 / np.sqrt(h)
        self.w_out, self.b_out = weight(h, 2 * horizon, scale=o), weight(1, 2 * horizon, scale=o)

    def forward(
        self, x: torch.Tensor, static: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance, each ``(members, n, H)``, of a batch ``x`` ``(n, L, f)``."""
        members, n, h = self.w_dense.shape[0], x.shape[0], self.hidden_size
        seq = x.unsqueeze(0).expand(members, -1, -1, -1)  # (M, n, L, f)
        for k, (w_in, w_rec, b) in enumerate(zip(self.w_in, self.w_rec, self.b, strict=True)):
            if k > 0:
                seq = nn.functional.dropout(seq, self.dropout, self.training)
            pre = torch.einsum("mnlf,mfg->mnlg", seq, w_in) + b.unsqueeze(1)
            hs = x.new_zeros(members, n, h)
            cs = x.new_zeros(members, n, h)
            outs = []
            for t in range(x.shape[1]):
                gates = pre[:, :, t] + torch.bmm(hs, w_rec)
                i, f, g, o = gates.chunk(4, dim=2)
                cs = torch.sigmoid(f) * cs + torch.sigmoid(i) * torch.tanh(g)
                hs = torch.sigmoid(o) * torch.tanh(cs)
                outs.append(hs)
            seq = torch.stack(outs, dim=2)
        st = static.unsqueeze(0).expand(members, -1, -1)
        z = torch.relu(torch.bmm(torch.cat([hs, st], dim=2), self.w_dense) + self.b_dense)
        z = nn.functional.dropout(z, self.dropout, self.training)
        out = torch.bmm(z, self.w_out) + self.b_out
        mean, logvar = out[..., : self.horizon], out[..., self.horizon :]
        return mean, logvar.clamp(*_LOGVAR)


def lstm_parameter_count(
    n_features: int, n_static: int, horizon: int, hidden_size: int, num_layers: int = 1
) -> int:
    """Trainable parameters of one member of :class:`EnsembleLSTM`.

    Parameters
    ----------
    n_features, n_static, horizon, hidden_size, num_layers : int
        As :class:`EnsembleLSTM`.

    Returns
    -------
    int
        ``4 h (f + h + 1)`` for the first LSTM layer, ``4 h (2 h + 1)`` for each further
        one, ``(h + s) h + h`` for the dense layer and ``2 H (h + 1)`` for the output.

    Examples
    --------
    >>> lstm_parameter_count(5, 3, 4, 16)
    1864
    """
    h = hidden_size
    lstm = 4 * h * (n_features + h + 1) + (num_layers - 1) * 4 * h * (2 * h + 1)
    return lstm + (h + n_static) * h + h + 2 * horizon * (h + 1)


class LSTMForecaster(GeohmEstimator):
    """Deep ensemble of small LSTMs forecasting ``H`` steps ahead, with intervals.

    Parameters
    ----------
    hidden_size : int, default=16
        LSTM units.
    num_layers : int, default=1
        Stacked LSTM layers.
    dropout : float, default=0.1
        Dropout rate in training (0 <= rate < 1).
    n_members : int, default=5
        Networks in the ensemble, each from its own seed.
    max_epochs : int, default=200
        Passes over the training windows (full batch when ``batch_size`` is None).
    learning_rate : float, default=0.01
        Adam step size.
    weight_decay : float, default=1e-4
        Adam L2 penalty.
    batch_size : int or None, default=None
        Windows per step; None: all at once.
    random_state : int, RandomState or None, default=None
        Seeds the members (weights, dropout, batches).
    device : str, default="cpu"
        Torch device for training and prediction.
    n_threads : int or None, default=None
        Torch intra-op threads while fitting and predicting (None: leave as is).

    Attributes
    ----------
    net_ : EnsembleLSTM
        The trained members (in evaluation mode).
    n_features_in_ : int
        Features per time step.
    n_static_in_ : int
        Per-site features.
    n_lags_ : int
        Window length seen in fit (predict accepts only this length).
    horizon_ : int
        Steps ahead.
    loss_curve_ : ndarray of shape (n_members, max_epochs)
        Training loss (mean Gaussian negative log-likelihood per observed target).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(64, 6, 2)); y = X[:, -1:, 0] + 0.1 * rng.normal(size=(64, 1))
    >>> f = LSTMForecaster(hidden_size=4, n_members=2, max_epochs=5, random_state=0).fit(X, y)
    >>> f.predict(X).shape
    (64, 1)
    """

    _parameter_constraints = {
        "hidden_size": [Interval(Integral, 1, None, closed="left")],
        "num_layers": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0.0, 1.0, closed="left")],
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0.0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0.0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "device": [str],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }
    _fitted_attribute = "net_"

    def __init__(
        self,
        *,
        hidden_size: int = 16,
        num_layers: int = 1,
        dropout: float = 0.1,
        n_members: int = 5,
        max_epochs: int = 200,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        batch_size: int | None = None,
        random_state: Any = None,
        device: str = "cpu",
        n_threads: int | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.n_members = n_members
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.random_state = random_state
        self.device = device
        self.n_threads = n_threads

    # -- data checks

    @staticmethod
    def _windows(X: Any, static: Any, name: str = "X") -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(X, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"{name} must be 3-D (samples, time steps, features), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} holds NaN or infinite values; fill the windows first")
        s = np.zeros((x.shape[0], 0)) if static is None else np.asarray(static, dtype=np.float64)
        if s.ndim != 2 or s.shape[0] != x.shape[0]:
            raise ValueError(f"static must be (samples, features) with {x.shape[0]} rows")
        if not np.isfinite(s).all():
            raise ValueError("static holds NaN or infinite values")
        return x, s

    # -- fitting

    def fit(self, X: Any, y: Any, *, static: Any = None) -> LSTMForecaster:
        """Train the ensemble.

        Parameters
        ----------
        X : array-like of shape (n, L, f)
            Input windows (finite).
        y : array-like of shape (n, H)
            Targets at 1..H steps ahead; NaN where not observed (left out of the loss).
        static : array-like of shape (n, s), optional
            Per-site features.

        Returns
        -------
        LSTMForecaster
            self.
        """
        self._validate_params()
        x, s = self._windows(X, static)
        t = np.asarray(y, dtype=np.float64)
        if t.ndim == 1:
            t = t[:, None]
        if t.ndim != 2 or t.shape[0] != x.shape[0]:
            raise ValueError(f"y must be (samples, horizon) with {x.shape[0]} rows, got {t.shape}")
        observed = np.isfinite(t)
        if not observed.any():
            raise ValueError("y holds no observed target (all NaN)")
        device = torch_device(self.device)
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        self.n_features_in_ = x.shape[2]
        self.n_static_in_ = s.shape[1]
        self.n_lags_ = x.shape[1]
        self.horizon_ = t.shape[1]
        with threads(self.n_threads), seeded(seed, device):
            xt = torch.as_tensor(x, dtype=_DTYPE, device=device)
            st = torch.as_tensor(s, dtype=_DTYPE, device=device)
            yt = torch.as_tensor(np.where(observed, t, 0.0), dtype=_DTYPE, device=device)
            mt = torch.as_tensor(observed, dtype=_DTYPE, device=device)
            self.net_, self.loss_curve_ = self._train(xt, st, yt, mt, device)
        return self

    def _train(
        self,
        x: torch.Tensor,
        s: torch.Tensor,
        y: torch.Tensor,
        m: torch.Tensor,
        device: torch.device,
    ) -> tuple[EnsembleLSTM, np.ndarray]:
        """Adam on the members' summed mean negative log-likelihoods (independent members)."""
        net = EnsembleLSTM(
            self.n_members,
            x.shape[2],
            s.shape[1],
            y.shape[1],
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
        ).to(device)
        opt = torch.optim.Adam(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        n = x.shape[0]
        batch = n if self.batch_size is None else min(self.batch_size, n)
        curve = np.zeros((self.n_members, self.max_epochs))
        net.train()
        for epoch in range(self.max_epochs):
            order = torch.randperm(n).to(device) if batch < n else torch.arange(n, device=device)
            total = torch.zeros(self.n_members, dtype=torch.float64, device=device)
            count = 0.0
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                w = m[idx]
                k = float(w.sum())
                if k == 0.0:
                    continue
                mean, logvar = net(x[idx], s[idx])
                nll = 0.5 * (logvar + (y[idx] - mean) ** 2 * torch.exp(-logvar))
                per_member = (nll * w).sum(dim=(1, 2)) / k
                opt.zero_grad()
                per_member.sum().backward()
                opt.step()
                total += per_member.detach().double() * k
                count += k
            curve[:, epoch] = (total / max(count, 1.0)).cpu().numpy()
        net.eval()
        return net, curve

    # -- prediction

    def predict_members(self, X: Any, *, static: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Each member's Gaussian: means and standard deviations.

        Parameters
        ----------
        X : array-like of shape (n, L, f)
            Input windows, as in fit.
        static : array-like of shape (n, s), optional
            Per-site features, as in fit.

        Returns
        -------
        mean, std : ndarray of shape (n_members, n, H)
            In the units of ``y``.
        """
        self._check_fitted()
        x, s = self._windows(X, static)
        if x.shape[1:] != (self.n_lags_, self.n_features_in_) or s.shape[1] != self.n_static_in_:
            raise ValueError(
                f"X has windows {x.shape[1:]} and static {s.shape[1]} features; fit saw "
                f"({self.n_lags_}, {self.n_features_in_}) and {self.n_static_in_}"
            )
        device = torch_device(self.device)
        with threads(self.n_threads), torch.no_grad():
            xt = torch.as_tensor(x, dtype=_DTYPE, device=device)
            st = torch.as_tensor(s, dtype=_DTYPE, device=device)
            mu, logvar = self.net_(xt, st)
        return mu.double().cpu().numpy(), torch.exp(0.5 * logvar).double().cpu().numpy()

    def predict_distribution(self, X: Any, *, static: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of the ensemble's mixture.

        Parameters
        ----------
        X : array-like of shape (n, L, f)
            Input windows.
        static : array-like of shape (n, s), optional
            Per-site features.

        Returns
        -------
        mean, std : ndarray of shape (n, H)
            ``std`` is the mixture's: ``sqrt(mean(sigma_m^2) + var(mu_m))``.
        """
        mu, sd = self.predict_members(X, static=static)
        mean = mu.mean(axis=0)
        var = (sd**2).mean(axis=0) + mu.var(axis=0)
        return mean, np.sqrt(var)

    def predict(self, X: Any, *, static: Any = None) -> np.ndarray:
        """The forecast: the ensemble mean, ``(n, H)``, in the units of ``y``."""
        return self.predict_distribution(X, static=static)[0]

    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, self._fitted_attribute)

    def n_parameters(self) -> int:
        """Trainable parameters of one member (all members have the same count)."""
        self._check_fitted()
        total = sum(p.numel() for p in self.net_.parameters() if p.requires_grad)
        return int(total // self.n_members)

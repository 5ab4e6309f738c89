"""Soil spectra: preprocessing transformers and wavelength contributions.

Preprocessing steps are scikit-learn transformers acting row by row on an
``(n_samples, n_wavelengths)`` array (one spectrum per row, wavelengths or
wavenumbers in increasing column order), so that they chain in a
:class:`~sklearn.pipeline.Pipeline` before a regressor such as
:class:`geohm.models.spectral.SpectralResNetRegressor`:

- :class:`Absorbance`: apparent absorbance ``A = log10(1 / R)`` from reflectance
  ``R`` (0-1);
- :class:`SavitzkyGolay`: Savitzky-Golay smoothing or derivative
  (:func:`scipy.signal.savgol_filter` along each spectrum);
- :class:`StandardNormalVariate`: SNV (Barnes et al. 1989), each spectrum centred
  on its own mean and divided by its own standard deviation.

All three are stateless: ``fit`` only checks the input (``transform`` works
unfitted too), so fitting them on source spectra and applying them to target
spectra is safe.

Wavelength contributions (:func:`wavelength_contribution`) are integrated gradients
of a fitted spectral regressor, averaged over spectra; :func:`contribution_regions`
turns the profile into a few wavelength intervals and
:func:`plot_wavelength_contribution` draws it with matplotlib's object-oriented API
(no pyplot state). Writing the figure to a file is left to :mod:`geohm.io.reports`.
This module never imports torch: the gradients come from the estimator's own
``integrated_gradients`` method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.signal import savgol_filter
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from geohm.errors import ConfigError

__all__ = [
    "SPECTRAL_STEPS",
    "Absorbance",
    "SavitzkyGolay",
    "StandardNormalVariate",
    "contribution_regions",
    "plot_wavelength_contribution",
    "spectral_preprocessors",
    "wavelength_contribution",
]


class Absorbance(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Apparent absorbance ``A = log10(1 / R)`` from reflectance.

    Reflectance ``R`` is a fraction (0-1, not percent); absorbance is dimensionless
    (absorbance units). A reflectance of 0.1 gives an absorbance of 1, a reflectance
    of 1 an absorbance of 0. Negative reflectance is an error; reflectance below
    ``min_reflectance`` (e.g. exact zeros) is raised to it before the logarithm.

    Parameters
    ----------
    min_reflectance : float, default 1e-6
        Smallest reflectance used (0-1); the largest absorbance is
        ``-log10(min_reflectance)`` (6 by default).

    Examples
    --------
    >>> Absorbance().fit_transform(np.array([[0.1, 1.0, 0.01]]))
    array([[1., 0., 2.]])
    """

    def __init__(self, min_reflectance: float = 1e-6) -> None:
        self.min_reflectance = min_reflectance

    def fit(self, X: Any, y: Any = None) -> Absorbance:
        """Check ``X`` (reflectance, 0-1, shape ``(n_samples, n_wavelengths)``).

        Raises
        ------
        ValueError
            ``X`` holds negative values, or ``min_reflectance`` is not positive.
        """
        if not self.min_reflectance > 0:
            raise ValueError(f"min_reflectance must be > 0, got {self.min_reflectance}")
        X = validate_data(self, X, dtype=np.float64, reset=True)
        _check_non_negative(X)
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return ``log10(1 / max(X, min_reflectance))`` (absorbance units).

        Raises
        ------
        ValueError
            ``X`` holds negative values.
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        _check_non_negative(X)
        return np.asarray(np.log10(1.0 / np.maximum(X, self.min_reflectance)))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.requires_fit = False
        return tags


def _check_non_negative(X: np.ndarray) -> None:
    if np.any(X < 0):
        raise ValueError(
            f"Negative values in data passed to Absorbance: {int(np.sum(X < 0))} "
            "reflectance value(s) < 0 (reflectance is a fraction, 0-1)"
        )


class SavitzkyGolay(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Savitzky-Golay smoothing or derivative along each spectrum.

    A thin wrapper of :func:`scipy.signal.savgol_filter` with ``axis=1``: a
    polynomial of degree ``polyorder`` is fitted by least squares in a moving
    window of ``window_length`` points, and its value (``deriv=0``) or derivative
    (``deriv >= 1``) at the window centre replaces each point. Spectra must be
    sampled at equal steps.

    Parameters
    ----------
    window_length : int, default 11
        Points in the moving window (odd, > ``polyorder``, at most the number of
        wavelengths).
    polyorder : int, default 2
        Degree of the local polynomial.
    deriv : int, default 0
        Order of the derivative (0 = smoothing only).
    delta : float, default 1.0
        Spacing of the spectral axis, in its units (nm, or cm-1 for wavenumbers).
        Derivatives are per unit of ``delta``; the default gives derivatives per
        sampling step.

    Examples
    --------
    A straight line is unchanged by smoothing and its first derivative is its slope:

    >>> x = 1.0 + 2.0 * np.arange(9.0)[None, :]
    >>> SavitzkyGolay(window_length=5, polyorder=2).fit_transform(x).round(6)
    array([[ 1.,  3.,  5.,  7.,  9., 11., 13., 15., 17.]])
    >>> SavitzkyGolay(window_length=5, polyorder=2, deriv=1).fit_transform(x).round(6)
    array([[2., 2., 2., 2., 2., 2., 2., 2., 2.]])
    """

    def __init__(
        self, window_length: int = 11, polyorder: int = 2, deriv: int = 0, delta: float = 1.0
    ) -> None:
        self.window_length = window_length
        self.polyorder = polyorder
        self.deriv = deriv
        self.delta = delta

    def fit(self, X: Any, y: Any = None) -> SavitzkyGolay:
        """Check the filter settings against ``X`` (shape ``(n_samples, n_wavelengths)``).

        Raises
        ------
        ValueError
            ``window_length`` is even, not larger than ``polyorder``, or longer than
            the spectra; ``deriv`` is negative.
        """
        X = validate_data(self, X, dtype=np.float64, reset=True)
        w, p, d = int(self.window_length), int(self.polyorder), int(self.deriv)
        if w % 2 != 1 or w <= p:
            raise ValueError(
                f"SavitzkyGolay: window_length must be odd and > polyorder, got "
                f"window_length={self.window_length}, polyorder={self.polyorder}"
            )
        if d < 0:
            raise ValueError(f"SavitzkyGolay: deriv must be >= 0, got {self.deriv}")
        if X.shape[1] < w:
            raise ValueError(
                f"SavitzkyGolay: spectra have {X.shape[1]} feature(s), fewer than window_length={w}"
            )
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return the filtered spectra, same shape as ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return np.asarray(
            savgol_filter(
                X,
                int(self.window_length),
                int(self.polyorder),
                deriv=int(self.deriv),
                delta=float(self.delta),
                axis=1,
                mode="interp",
            )
        )

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: transform works unfitted
        return tags


class StandardNormalVariate(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standard normal variate (SNV, Barnes et al. 1989) of each spectrum.

    Each row ``x`` becomes ``(x - mean(x)) / std(x)``, the standard deviation with
    ``n - 1`` in the denominator (as in Barnes et al. and R's ``prospectr``). It
    removes additive and multiplicative scatter effects; the output is
    dimensionless. A constant spectrum (standard deviation 0) becomes all zeros.

    Examples
    --------
    >>> StandardNormalVariate().fit_transform(np.array([[1.0, 2.0, 3.0]]))
    array([[-1.,  0.,  1.]])
    """

    def fit(self, X: Any, y: Any = None) -> StandardNormalVariate:
        """Check ``X`` (shape ``(n_samples, n_wavelengths)``, at least 2 wavelengths)."""
        X = validate_data(self, X, dtype=np.float64, reset=True)
        if X.shape[1] < 2:
            raise ValueError(
                f"StandardNormalVariate needs at least 2 wavelengths, got {X.shape[1]} feature(s)"
            )
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Return the SNV-corrected spectra, same shape as ``X``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        centred = X - X.mean(axis=1, keepdims=True)
        sd = X.std(axis=1, ddof=1, keepdims=True)
        out = np.zeros_like(centred)
        np.divide(centred, sd, out=out, where=sd > 0)
        return out

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.requires_fit = False  # stateless: transform works unfitted
        return tags


def _split_pipeline(estimator: Any, X: Any) -> tuple[Any, np.ndarray]:
    """The final regressor and ``X`` passed through the steps before it."""
    steps = getattr(estimator, "steps", None)
    if steps is None:
        return estimator, np.asarray(X, dtype=np.float64)
    Xt = X
    for _, step in steps[:-1]:
        if step is not None and step != "passthrough":
            Xt = step.transform(Xt)
    return steps[-1][1], np.asarray(Xt, dtype=np.float64)


def wavelength_contribution(
    estimator: Any,
    X: Any,
    *,
    wavelengths: Any,
    name: str = "wavelength",
    baseline: np.ndarray | None = None,
    n_steps: int = 50,
) -> pd.DataFrame:
    """Mean absolute integrated-gradient contribution of each wavelength.

    For each spectrum ``x`` in ``X``, integrated gradients (Sundararajan et al. 2017)
    attribute the difference ``f(x) - f(baseline)`` of the prediction to the input
    points; the table averages their absolute values (and the signed values) over
    the spectra.

    Parameters
    ----------
    estimator : fitted regressor or Pipeline
        A fitted :class:`~geohm.models.spectral.SpectralResNetRegressor`, or a
        fitted :class:`~sklearn.pipeline.Pipeline` ending in one. With a pipeline the
        contributions are those of the *preprocessed* spectra (the inputs of the
        final step), at the same wavelengths: the preprocessing steps are one-to-one.
    X : array-like of shape (n_samples, n_wavelengths)
        Spectra to explain (as given to ``estimator.predict``), e.g. the test set.
    wavelengths : array-like of shape (n_wavelengths,)
        The spectral axis of ``X`` (nm, or cm-1 for wavenumbers).
    name : str, default "wavelength"
        Name of the spectral-axis column (e.g. ``"wavenumber"``).
    baseline : ndarray of shape (n_wavelengths,), optional
        Reference spectrum in the final step's input space; by default the mean
        training spectrum of the regressor (``x_mean_``).
    n_steps : int, default 50
        Points of the Gauss-Legendre approximation of the path integral.

    Returns
    -------
    pandas.DataFrame
        One row per wavelength: ``name``, ``mean_abs_contribution`` and
        ``mean_contribution``, both in the units of the predicted property.

    Raises
    ------
    ValueError
        ``wavelengths`` does not have one value per column of ``X``.
    TypeError
        The final step has no ``integrated_gradients`` method.
    """
    model, Xt = _split_pipeline(estimator, X)
    axis = np.asarray(wavelengths, dtype=np.float64).ravel()
    if axis.size != Xt.shape[1]:
        raise ValueError(
            f"wavelengths has {axis.size} values but the spectra have {Xt.shape[1]} columns"
        )
    attribute = getattr(model, "integrated_gradients", None)
    if attribute is None:
        raise TypeError(
            f"{type(model).__name__} has no integrated_gradients method; "
            "use a fitted SpectralResNetRegressor"
        )
    attr = np.asarray(attribute(Xt, baseline=baseline, n_steps=n_steps))
    return pd.DataFrame(
        {
            name: axis,
            "mean_abs_contribution": np.abs(attr).mean(axis=0),
            "mean_contribution": attr.mean(axis=0),
        }
    )


def contribution_regions(
    table: pd.DataFrame,
    *,
    top: int = 5,
    smooth: int = 9,
    fraction: float = 0.15,
    column: str = "mean_abs_contribution",
) -> pd.DataFrame:
    """The spectral regions with the largest contributions.

    The contribution profile is smoothed with a centred moving average of
    ``smooth`` points; the points in the top ``fraction`` of the smoothed profile
    form contiguous runs (runs less than ``smooth`` points apart are merged), and
    the ``top`` runs with the largest summed contribution are reported.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`wavelength_contribution`; its first column is the
        spectral axis (increasing).
    top : int, default 5
        Number of regions.
    smooth : int, default 9
        Width of the moving average, in spectral points.
    fraction : float, default 0.15
        Share of the spectral points, those with the largest smoothed
        contribution, that may belong to a region (0-1).
    column : str, default "mean_abs_contribution"
        Contribution column to use.

    Returns
    -------
    pandas.DataFrame
        ``peak`` (position of the largest contribution in the region), ``start``,
        ``end`` (spectral-axis units, ``start <= end``), ``height`` (contribution at
        the peak, property units) and ``share`` (fraction of the whole profile's sum
        inside the region), sorted by decreasing ``share``.

    Examples
    --------
    >>> t = pd.DataFrame({"wavelength": np.arange(10.0),
    ...                   "mean_abs_contribution": [0, 0, 5, 6, 0, 0, 0, 0, 1, 0.0]})
    >>> contribution_regions(t, top=1, smooth=1, fraction=0.2)
       peak  start  end  height     share
    0   3.0    2.0  3.0     6.0  0.916667
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    axis = table.iloc[:, 0].to_numpy(dtype=np.float64)
    values = table[column].to_numpy(dtype=np.float64)
    k = max(1, min(int(smooth), values.size))
    profile = np.convolve(values, np.ones(k) / k, mode="same")
    threshold = np.quantile(profile, 1.0 - fraction)
    above = np.flatnonzero(profile >= threshold)
    runs: list[list[int]] = []
    for i in above:
        if runs and i - runs[-1][1] <= k:
            runs[-1][1] = int(i)
        else:
            runs.append([int(i), int(i)])
    total = float(values.sum()) or 1.0
    rows = []
    for lo, hi in runs:
        peak = lo + int(np.argmax(values[lo : hi + 1]))
        rows.append(
            {
                "peak": float(axis[peak]),
                "start": float(min(axis[lo], axis[hi])),
                "end": float(max(axis[lo], axis[hi])),
                "height": float(values[peak]),
                "share": float(values[lo : hi + 1].sum() / total),
            }
        )
    regions = pd.DataFrame(rows, columns=["peak", "start", "end", "height", "share"])
    return regions.sort_values("share", ascending=False).head(top).reset_index(drop=True)


def plot_wavelength_contribution(
    table: pd.DataFrame,
    *,
    spectra: np.ndarray | None = None,
    regions: pd.DataFrame | None = None,
    invert_axis: bool = False,
    units: str = "",
    xlabel: str | None = None,
    spectra_label: str = "spectrum (mean ± 1 sd)",
    title: str | None = None,
) -> Figure:
    """Plot a contribution profile (object-oriented matplotlib, no pyplot state).

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`wavelength_contribution`.
    spectra : ndarray of shape (n_samples, n_wavelengths), optional
        Spectra drawn as their mean (± one standard deviation) on a second y axis.
    regions : pandas.DataFrame, optional
        Output of :func:`contribution_regions`, shaded on the plot.
    invert_axis : bool, default False
        Draw the spectral axis decreasing (the convention for wavenumbers, cm-1).
    units : str, default ""
        Units of the contributions (those of the predicted property), for the label.
    xlabel : str, optional
        Label of the spectral axis; default the table's first column name.
    spectra_label : str, default "spectrum (mean ± 1 sd)"
        Label of the second y axis (with ``spectra``).
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; save it with :func:`geohm.io.reports.save_figure`.
    """
    name = str(table.columns[0])
    axis = table.iloc[:, 0].to_numpy(dtype=np.float64)
    fig = Figure(figsize=(9.0, 4.0))
    ax = fig.add_subplot()
    if spectra is not None:
        s = np.asarray(spectra, dtype=np.float64)
        mean, sd = s.mean(axis=0), s.std(axis=0)
        ax2 = ax.twinx()
        ax2.fill_between(axis, mean - sd, mean + sd, color="0.85", lw=0)
        ax2.plot(axis, mean, color="0.5", lw=0.8, label="mean spectrum")
        ax2.set_ylabel(spectra_label)
        ax.set_zorder(ax2.get_zorder() + 1)
        ax.patch.set_visible(False)
    if regions is not None:
        for _, r in regions.iterrows():
            ax.axvspan(r["start"], r["end"], color="tab:orange", alpha=0.25, lw=0)
    ax.plot(axis, table["mean_abs_contribution"].to_numpy(), color="tab:blue", lw=1.0)
    unit = f" ({units})" if units else ""
    ax.set_ylabel(f"mean |integrated gradient|{unit}")
    ax.set_xlabel(xlabel if xlabel is not None else name)
    ax.set_xlim(axis.min(), axis.max())
    if invert_axis:
        ax.invert_xaxis()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


#: Spectral preprocessing steps of ``spectral-resnet`` (``params.preprocess``), by name.
SPECTRAL_STEPS: tuple[str, ...] = ("absorbance", "savgol", "snv")


def spectral_preprocessors(steps: Any) -> list[tuple[str, Any]]:
    """The transformers of ``model.params.preprocess`` (spectral models), in order.

    Parameters
    ----------
    steps : list or None
        Each item is a step name (``absorbance``: log10(1/R); ``savgol``:
        Savitzky-Golay smoothing or derivative; ``snv``: standard normal variate) or a
        one-key mapping ``{name: {parameter: value}}`` (``{savgol: {window_length: 7,
        deriv: 1}}``), see :mod:`geohm.spectra`.

    Returns
    -------
    list of (str, transformer)
        Pipeline steps named ``spectra_<k>_<name>``.

    Raises
    ------
    ConfigError
        Unknown step or parameter.
    """
    classes: dict[str, type[BaseEstimator]] = {
        "absorbance": Absorbance,
        "savgol": SavitzkyGolay,
        "snv": StandardNormalVariate,
    }
    if steps is None:
        return []
    if isinstance(steps, str | dict):
        steps = [steps]
    if not isinstance(steps, list):
        raise ConfigError(
            "key 'model.params.preprocess': expected a list of steps "
            f"({', '.join(SPECTRAL_STEPS)}), got {steps!r}"
        )
    out: list[tuple[str, Any]] = []
    for k, item in enumerate(steps):
        if isinstance(item, dict) and len(item) == 1:
            step, kwargs = next(iter(item.items()))
            kwargs = dict(kwargs or {})
        elif isinstance(item, str):
            step, kwargs = item, {}
        else:
            raise ConfigError(
                f"key 'model.params.preprocess': step {item!r} is neither a name nor a "
                "one-key mapping {name: {parameter: value}}"
            )
        if step not in classes:
            raise ConfigError(
                f"key 'model.params.preprocess': unknown step '{step}'; choose from "
                f"{', '.join(SPECTRAL_STEPS)}"
            )
        cls = classes[step]
        bad = sorted(set(kwargs) - set(cls._get_param_names()))
        if bad:
            raise ConfigError(
                f"key 'model.params.preprocess': step '{step}' has no parameter "
                f"{', '.join(map(repr, bad))} (it takes: "
                f"{', '.join(cls._get_param_names()) or 'none'})"
            )
        out.append((f"spectra_{k}_{step}", cls(**kwargs)))
    return out

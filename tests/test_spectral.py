"""Soil spectra: preprocessing, the KSSL reader, seed 004's 1D ResNet and its transfer."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from geohm.errors import InputError
from geohm.io.spectra import read_spectra
from geohm.models.spectral import (
    SpectralResNetRegressor,
    compare_transfer,
    spectral_scores,
)
from geohm.spectra import (
    Absorbance,
    SavitzkyGolay,
    StandardNormalVariate,
    contribution_regions,
    plot_wavelength_contribution,
    wavelength_contribution,
)

ROOT = Path(__file__).resolve().parents[1]
KSSL = ROOT / "tests" / "data" / "kssl" / "toy_kssl_mir.csv.gz"
KSSL_SHA256 = "044841268f5f6a12e5472092bf89ec3e7746727c773810577135c78a9ca1fc6b"
FAST = {"max_epochs": 4, "patience": 2, "random_state": 0}


def toy_spectra(n: int = 60, k: int = 420, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random 'spectra' and a non-negative property driven by two regions."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)).cumsum(axis=1) / np.sqrt(k)
    y = np.abs(X[:, k // 4 : k // 4 + 20].mean(1) - X[:, 3 * k // 4 :].mean(1))
    return X, y


# ----------------------------------------------------------------- preprocessing
def test_snv_of_a_known_vector() -> None:
    # mean 2, sample sd 1 -> (x - 2) / 1
    out = StandardNormalVariate().fit_transform(np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]))
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]])
    # removes an offset and a gain; a constant spectrum becomes zeros
    x = np.array([[0.3, 0.5, 0.4, 0.9]])
    snv = StandardNormalVariate().fit(x)
    np.testing.assert_allclose(snv.transform(2.5 * x + 7.0), snv.transform(x))
    np.testing.assert_array_equal(snv.transform(np.full((1, 4), 3.0)), np.zeros((1, 4)))


def test_absorbance_of_known_reflectances() -> None:
    out = Absorbance().fit_transform(np.array([[0.1, 1.0, 0.01, 0.5]]))
    np.testing.assert_allclose(out, [[1.0, 0.0, 2.0, np.log10(2.0)]])
    assert Absorbance().fit_transform(np.array([[0.0, 1.0]]))[0, 0] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="Negative values"):
        Absorbance().fit_transform(np.array([[0.2, -0.01]]))


def test_savitzky_golay_smoothing_and_derivatives() -> None:
    t = np.arange(21.0)
    quad = (0.5 * t**2 - 3 * t + 2)[None, :]
    # a quadratic is reproduced exactly by a degree-2 local fit ...
    smooth = SavitzkyGolay(window_length=7, polyorder=2).fit_transform(quad)
    np.testing.assert_allclose(smooth, quad, atol=1e-9)
    # ... its first derivative is t - 3, per unit of delta (step 2 cm-1 halves it)
    d1 = SavitzkyGolay(window_length=7, polyorder=2, deriv=1).fit_transform(quad)
    np.testing.assert_allclose(d1, (t - 3)[None, :], atol=1e-9)
    d1_per_cm = SavitzkyGolay(window_length=7, polyorder=2, deriv=1, delta=2.0).fit_transform(quad)
    np.testing.assert_allclose(d1_per_cm, d1 / 2.0, atol=1e-9)
    # a 3-point moving average is the degree-0/1 filter: interior points by hand
    x = np.array([[1.0, 4.0, 2.0, 8.0, 5.0]])
    out = SavitzkyGolay(window_length=3, polyorder=1).fit_transform(x)
    np.testing.assert_allclose(out[0, 1:4], [7 / 3, 14 / 3, 5.0])
    with pytest.raises(ValueError, match="odd"):
        SavitzkyGolay(window_length=4).fit(x)
    with pytest.raises(ValueError, match="window_length=11"):
        SavitzkyGolay().fit(x)


def test_preprocessing_chains_in_a_pipeline() -> None:
    R = np.random.default_rng(1).uniform(0.05, 0.6, size=(5, 31))
    pipe = make_pipeline(Absorbance(), SavitzkyGolay(window_length=5), StandardNormalVariate())
    out = pipe.fit_transform(R)
    assert out.shape == R.shape
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=1, ddof=1), 1.0)


@parametrize_with_checks(
    [Absorbance(), SavitzkyGolay(window_length=1, polyorder=0), StandardNormalVariate()]
)
def test_sklearn_checks_transformers(estimator, check) -> None:
    check(estimator)


# ------------------------------------------------------------------------ reader
def test_read_committed_kssl_spectra() -> None:
    data = read_spectra(KSSL, sha256=KSSL_SHA256)
    assert data.spectra.shape == (500, 1701)
    np.testing.assert_array_equal(data.axis, np.arange(600.0, 4001.0, 2.0))
    assert data.unit == "cm-1"
    np.testing.assert_allclose(data.wavelengths[[0, -1]], [1e7 / 600, 2500.0])  # nm
    assert list(data.targets.columns) == [
        "k.ext_usda.a725_cmolc.kg",
        "cec_usda.a723_cmolc.kg",
        "oc_usda.c729_w.pct",
        "clay.tot_usda.a334_w.pct",
    ]
    assert data.targets.index.name == "id" and data.ids.size == 500
    assert data.spectra[0, 0] == 1.398  # first absorbance value in the file (600 cm-1)
    assert np.isfinite(data.spectra).all() and 0 < np.median(data.spectra) < 3


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_spectra(tmp_path / "missing.csv.gz")
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(gzip.compress(b"id,a,600,602\n1,2,0.1,0.2\n")[:25])
    with pytest.raises(InputError, match="corrupt.csv.gz"):
        read_spectra(corrupt)
    with pytest.raises(InputError, match="SHA-256"):
        read_spectra(_write(tmp_path / "ok.csv", "id,a,600,602\n1,2,0.1,0.2\n"), sha256="0" * 64)
    with pytest.raises(InputError, match="identifier column 'id'"):
        read_spectra(_write(tmp_path / "noid.csv", "x,a,600,602\n1,2,0.1,0.2\n"))
    with pytest.raises(InputError, match="first at sample '2', column '602'"):
        read_spectra(_write(tmp_path / "gap.csv", "id,a,600,602\n1,2,0.1,0.2\n2,3,0.1,\n"))
    with pytest.raises(InputError, match="spectral column"):
        read_spectra(_write(tmp_path / "nospec.csv", "id,a,b\n1,2,3\n"))
    with pytest.raises(InputError, match="empty"):
        read_spectra(_write(tmp_path / "empty.csv", ""))
    # a wavelength table (nm), columns out of order: sorted on reading
    data = read_spectra(_write(tmp_path / "nm.csv", "id,Pb,1000,500\nA,30,0.2,0.1\n"), unit="nm")
    np.testing.assert_array_equal(data.axis, [500.0, 1000.0])
    np.testing.assert_array_equal(data.spectra, [[0.1, 0.2]])
    np.testing.assert_allclose(data.wavenumbers, [20000.0, 10000.0])


# ------------------------------------------------------------------------- model
def test_shapes_and_parameter_counts_match_seed_004_table() -> None:
    # Seed 004's layer table for a 2100-point spectrum, counted by hand:
    conv_in = 1 * 3 * 48 + 48  # 192
    res_conv = 48 * 3 * 48 + 48  # 6960, four of them in two residual blocks
    conv_out = 48 * 3 * 32 + 32  # 4640
    dense1 = (32 * 52) * 16 + 16  # 26,640 (the table prints 16,640: not 1664 x 16 + 16)
    dense2 = 16 * 10 + 10  # 170
    output = 10 * 1 + 1  # 11
    assert (conv_in, res_conv, conv_out, dense2, output) == (192, 6960, 4640, 170, 11)

    X = np.random.default_rng(0).normal(size=(8, 2100))
    model = SpectralResNetRegressor(max_epochs=1, random_state=0).fit(X, np.arange(8.0))
    net = model.net_
    assert model.pool_size_ == 10

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    assert count(net.conv_in) == conv_in
    for block in net.residual:
        assert count(block.conv1) == count(block.conv2) == res_conv
    assert count(net.residual) == 4 * res_conv
    assert count(net.conv_out) == conv_out
    assert (count(net.dense1), count(net.dense2), count(net.output)) == (dense1, dense2, output)
    assert count(net) == conv_in + 4 * res_conv + conv_out + dense1 + dense2 + output == 59_493

    shapes: dict[str, tuple[int, ...]] = {}
    names = ["avg_pool", "conv_in", "pool1", "residual", "conv_out", "pool2"]
    names += ["dense1", "dense2", "output"]
    hooks = [
        getattr(net, name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:]))
        )
        for name in names
    ]
    with torch.no_grad():
        net(torch.zeros(2, 2100))
    for h in hooks:
        h.remove()
    assert shapes == {
        "avg_pool": (1, 210),
        "conv_in": (48, 210),
        "pool1": (48, 105),
        "residual": (48, 105),
        "conv_out": (32, 105),
        "pool2": (32, 52),  # flatten: 32 x 52 = 1664
        "dense1": (16,),
        "dense2": (10,),
        "output": (1,),
    }


def test_pooling_adapts_to_the_number_of_wavelengths() -> None:
    X, y = toy_spectra(n=12, k=1701)  # KSSL MIR: 1701 points, pooled by 8 to 212
    assert SpectralResNetRegressor(max_epochs=1).fit(X, y).pool_size_ == 8
    X7 = np.random.default_rng(0).uniform(size=(12, 7))  # a 7-band pixel table
    model = SpectralResNetRegressor(max_epochs=2, random_state=0).fit(X7, X7.sum(1))
    assert model.pool_size_ == 1 and model.predict(X7).shape == (12,)


@pytest.fixture(scope="module")
def transfer_models() -> dict[str, SpectralResNetRegressor]:
    X, y = toy_spectra(n=60)
    Xt, yt = toy_spectra(n=30, seed=1)
    source = SpectralResNetRegressor(**FAST).fit_source(X, 10 * y)
    frozen = copy.deepcopy(source).fit(Xt, yt)
    dense_frozen = copy.deepcopy(source).set_params(freeze=("dense",)).fit(Xt, yt)
    return {"source": source, "frozen": frozen, "dense_frozen": dense_frozen}


def _params(net: torch.nn.Module, prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in net.state_dict().items() if k.startswith(prefixes)}


def test_frozen_blocks_keep_their_weights_during_fine_tuning(transfer_models) -> None:
    source = transfer_models["source"].source_net_
    conv_res, dense = ("conv_in", "conv_out", "residual"), ("dense1", "dense2", "output")

    frozen = transfer_models["frozen"]
    assert frozen.transferred_ and frozen.frozen_ == ("conv", "residual")
    for k, v in _params(source, conv_res).items():
        assert torch.equal(frozen.net_.state_dict()[k], v), k
    for k, v in _params(source, dense).items():
        assert not torch.equal(frozen.net_.state_dict()[k], v), k
    # the source's input standardisation is kept (frozen filters were learnt on it)
    assert torch.equal(frozen.net_.x_shift, source.x_shift)

    other = transfer_models["dense_frozen"]
    for k, v in _params(source, dense).items():
        assert torch.equal(other.net_.state_dict()[k], v), k
    for k, v in _params(source, conv_res).items():
        assert not torch.equal(other.net_.state_dict()[k], v), k


def test_refit_restarts_from_the_source(transfer_models) -> None:
    frozen = transfer_models["frozen"]
    again = copy.deepcopy(frozen).fit(*toy_spectra(n=30, seed=1))
    Xq, _ = toy_spectra(n=5, seed=9)
    np.testing.assert_array_equal(again.predict(Xq), frozen.predict(Xq))


def test_transfer_rejects_other_wavelengths_and_bad_freeze(transfer_models) -> None:
    source = copy.deepcopy(transfer_models["source"])
    X, y = toy_spectra(n=20, k=300)
    with pytest.raises(ValueError, match="same points"):
        source.fit(X, y)
    with pytest.raises(ValueError, match="unknown block"):
        source.set_params(freeze=("conv", "lstm")).fit(*toy_spectra(n=20))
    with pytest.raises(ValueError, match="nothing would be trained"):
        source.set_params(freeze=("conv", "residual", "dense")).fit(*toy_spectra(n=20))


def test_predictions_are_reproducible_with_a_seed() -> None:
    X, y = toy_spectra(n=40)
    state = torch.get_rng_state()
    a = SpectralResNetRegressor(**FAST).fit(X, y).predict(X)
    assert torch.equal(torch.get_rng_state(), state)  # global torch RNG untouched
    b = SpectralResNetRegressor(**FAST).fit(X, y).predict(X)
    c = SpectralResNetRegressor(**{**FAST, "random_state": 1}).fit(X, y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert (a >= 0).all()  # ReLU output in property units


def test_predictions_do_not_depend_on_the_batch(transfer_models) -> None:
    model = transfer_models["frozen"]
    X, _ = toy_spectra(n=150, seed=3)
    full = model.predict(X)  # 3 chunks, the last one padded
    parts = np.concatenate([model.predict(X[i : i + 37]) for i in range(0, 150, 37)])
    np.testing.assert_array_equal(full, parts)


def test_early_stopping_keeps_the_best_epoch() -> None:
    X, y = toy_spectra(n=60)
    model = SpectralResNetRegressor(max_epochs=40, patience=3, random_state=0).fit(X, y)
    val = model.history_["validation"]
    assert len(val) == len(model.history_["train"]) <= 40
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    assert len(val) == 40 or len(val) == model.best_epoch_ + 3


def test_clone_and_params() -> None:
    model = SpectralResNetRegressor(freeze=("conv",), max_epochs=7, random_state=3)
    params = clone(model).get_params()
    assert params["freeze"] == ("conv",) and params["max_epochs"] == 7
    assert params["random_state"] == 3 and params["device"] == "cpu"
    assert not hasattr(clone(model), "net_")


@parametrize_with_checks(
    [SpectralResNetRegressor(max_epochs=10, learning_rate=0.01, random_state=0)]
)
def test_sklearn_checks_resnet(estimator, check) -> None:
    check(estimator)


# ------------------------------------------------------------ scores, contributions
def test_spectral_scores_by_hand() -> None:
    s = spectral_scores([1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 4.0, 6.0])
    rmse = np.sqrt(1 / 5)
    assert s["rmse"] == pytest.approx(rmse)
    assert s["r2"] == pytest.approx(1 - 1 / 10)
    assert s["rpd"] == pytest.approx(np.sqrt(2.5) / rmse)  # sample sd of 1..5
    assert s["rpiq"] == pytest.approx((4 - 2) / rmse)  # Q3 - Q1


def test_integrated_gradients_are_complete(transfer_models) -> None:
    model = transfer_models["frozen"]
    X, _ = toy_spectra(n=6, seed=5)
    attr = model.integrated_gradients(X, n_steps=100)
    assert attr.shape == X.shape
    gap = model.predict(X) - model.predict(model.x_mean_[None, :])
    np.testing.assert_allclose(attr.sum(axis=1), gap, rtol=0.05, atol=0.02 * np.abs(gap).max())


def test_wavelength_contribution_table_regions_and_plot(transfer_models) -> None:
    model = transfer_models["frozen"]
    X, _ = toy_spectra(n=10, seed=6)
    pipe = make_pipeline(StandardNormalVariate(), model)  # contributions of the SNV spectra
    axis = np.linspace(600.0, 4000.0, X.shape[1])
    table = wavelength_contribution(pipe, X, wavelengths=axis, name="wavenumber", n_steps=20)
    assert list(table.columns) == ["wavenumber", "mean_abs_contribution", "mean_contribution"]
    assert len(table) == X.shape[1] and (table["mean_abs_contribution"] >= 0).all()
    regions = contribution_regions(table, top=3)
    assert 1 <= len(regions) <= 3 and (regions.start <= regions.peak).all()
    assert (regions.peak <= regions.end).all() and regions.share.is_monotonic_decreasing
    fig = plot_wavelength_contribution(table, spectra=X, regions=regions, invert_axis=True)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] > ax.get_xlim()[1]  # wavenumbers drawn decreasing
    assert (
        "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()
    )
    with pytest.raises(ValueError, match="wavelengths has"):
        wavelength_contribution(model, X, wavelengths=axis[:-1])


# --------------------------------------------------------- transfer on KSSL spectra
def _benchmark_module():
    spec = importlib.util.spec_from_file_location(
        "spectra_benchmark", ROOT / "benchmarks" / "spectra.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kssl_benchmark_quick(tmp_path: Path) -> None:
    bench = _benchmark_module()
    result = bench.run(quick=True, splits=1, n_source=100, n_target=40, work=tmp_path)
    summary = result["summary"]
    assert list(summary.index) == bench.MODELS
    means = summary.xs("mean", axis=1, level=1)[["rmse", "r2", "rpd", "rpiq"]]
    assert np.isfinite(means.to_numpy()).all() and (means["rmse"] > 0).all()
    assert result["settings"]["n_test"] == 500 - 100 - 40
    contrib = result["contributions"]
    assert len(contrib) == 1701 and np.isfinite(contrib["mean_abs_contribution"]).all()
    assert (tmp_path / "contributions_clay_cec.png").stat().st_size > 10_000
    assert "| ResNet transfer |" in bench.markdown(result)


def test_compare_transfer_table_same_property() -> None:
    X, y = toy_spectra(n=70)
    table = compare_transfer(
        X[:40], y[:40], X[40:55], y[40:55], X[55:], y[55:],
        estimator=SpectralResNetRegressor(**FAST),
        same_property=True,
    )  # fmt: skip
    assert list(table.index) == ["source", "target only", "transfer"]
    assert table.loc["source", "n_train"] == 0 and table.loc["transfer", "n_train"] == 15
    assert np.isfinite(table[["rmse", "r2", "rpd", "rpiq"]].to_numpy()).all()
    assert isinstance(table, pd.DataFrame)

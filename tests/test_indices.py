"""Tests for geohm.indices on a hand-made 2 x 3 reflectance cube."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

from geohm import indices
from geohm.errors import ConfigError, InputError

BANDS = ["coastal", "blue", "green", "red", "nir", "swir1", "swir2"]
NAN = np.nan

# Pixels (row, col) and their reflectance; the expected index values below are worked out
# by hand from these numbers.
#   (0,0) vegetation      (0,1) EVI denominator exactly 0   (0,2) all zero
#   (1,0) nir == red      (1,1) vegetation                  (1,2) water
PIXELS = {
    #         coastal blue   green  red    nir   swir1  swir2
    (0, 0): (0.04, 0.05, 0.08, 0.10, 0.50, 0.30, 0.20),
    (0, 1): (0.00, 0.50, 0.00, 0.375, 0.50, 0.00, 0.00),
    (0, 2): (0.00, 0.00, 0.00, 0.00, 0.00, 0.00, 0.00),
    (1, 0): (0.10, 0.10, 0.10, 0.20, 0.20, 0.10, 0.40),
    (1, 1): (0.01, 0.02, 0.04, 0.03, 0.30, 0.15, 0.10),
    (1, 2): (0.07, 0.06, 0.08, 0.04, 0.02, 0.01, 0.005),
}

EXPECTED = {
    # (N - R) / (N + R): 0.4/0.6, 0.125/0.875, 0/0, 0/0.4, 0.27/0.33, -0.02/0.06
    "NDVI": [[0.666667, 0.142857, NAN], [0.0, 0.818182, -0.333333]],
    # 2.5 (N - R) / (N + 6R - 7.5B + 1): 1.0/1.725, 0.3125/(0.5+2.25-3.75+1 = 0), 0/1,
    # 0/1.65, 0.675/1.33, -0.05/0.81
    "EVI": [[0.579710, NAN, 0.0], [0.0, 0.507519, -0.061728]],
    # N - R
    "DVI": [[0.4, 0.125, 0.0], [0.0, 0.27, -0.02]],
    # S1 / S2: 0.3/0.2, 0/0, 0/0, 0.1/0.4, 0.15/0.1, 0.01/0.005
    "CMR": [[1.5, NAN, NAN], [0.25, 1.5, 2.0]],
    # (G - S1) / (G + S1): -0.22/0.38, 0/0, 0/0, 0/0.2, -0.11/0.19, 0.07/0.09
    "MNDWI": [[-0.578947, NAN, NAN], [0.0, -0.578947, 0.777778]],
}

# Tasseled cap at pixel (0,0) (blue 0.05, green 0.08, red 0.10, nir 0.50, swir1 0.30,
# swir2 0.20), Baig et al. 2014 coefficients:
#   brightness =  0.3029*0.05 + 0.2786*0.08 + 0.4733*0.1 + 0.5599*0.5 + 0.5080*0.3
#                 + 0.1872*0.2                                             =  0.554553
#   greenness  = -0.2941*0.05 - 0.2430*0.08 - 0.5424*0.1 + 0.7276*0.5 + 0.0713*0.3
#                 - 0.1608*0.2                                             =  0.264645
#   wetness    =  0.1511*0.05 + 0.1973*0.08 + 0.3283*0.1 + 0.3407*0.5 - 0.7117*0.3
#                 - 0.4559*0.2                                             = -0.078171
TASSELED_00 = {"brightness": 0.554553, "greenness": 0.264645, "wetness": -0.078171}


def make_cube(bands=BANDS):
    data = np.zeros((len(BANDS), 2, 3))
    for (row, col), values in PIXELS.items():
        data[:, row, col] = values
    cube = xr.DataArray(
        data,
        coords={"band": BANDS, "y": [3_900_045.0, 3_900_015.0], "x": [15.0, 45.0, 75.0]},
        dims=("band", "y", "x"),
        name="reflectance",
    )
    return cube.sel(band=list(bands))


@pytest.fixture
def cube():
    return make_cube()


def test_index_names():
    assert indices.INDEX_NAMES == (
        "NDVI",
        "EVI",
        "DVI",
        "CMR",
        "MNDWI",
        "brightness",
        "greenness",
        "wetness",
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_ratio_indices_match_hand_values(cube, name):
    out = indices.compute_index(cube, name)
    np.testing.assert_allclose(out.values, np.array(EXPECTED[name]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(TASSELED_00))
def test_tasseled_cap_matches_hand_values(cube, name):
    out = getattr(indices, name)(cube)
    assert float(out[0, 0]) == pytest.approx(TASSELED_00[name], abs=1e-6)
    assert float(out[0, 2]) == 0.0  # all-zero pixel


@pytest.mark.parametrize("name", indices.INDEX_NAMES)
def test_output_shape_names_and_attrs(cube, name):
    func = getattr(indices, name.lower())
    out = func(cube)
    assert out.dims == ("y", "x")
    assert out.dtype == np.float32
    assert out.name == name
    assert out.attrs["units"] == "1" and out.attrs["long_name"]
    assert "band" not in out.coords
    np.testing.assert_array_equal(out.y.values, cube.y.values)
    np.testing.assert_array_equal(out.x.values, cube.x.values)
    assert func(cube, name="my_index").name == "my_index"
    assert not np.isinf(out.values).any()


def test_ndvi_worked_example():
    refl = xr.DataArray(
        np.array([[[0.1]], [[0.5]]]),
        coords={"band": ["red", "nir"], "y": [0.5], "x": [0.5]},
        dims=("band", "y", "x"),
    )
    assert float(indices.ndvi(refl)[0, 0]) == pytest.approx(0.6667, abs=1e-4)


def test_crs_and_transform_are_kept(cube):
    rioxarray = pytest.importorskip("rioxarray")
    assert rioxarray  # registers the .rio accessor
    geo = cube.rio.write_crs("EPSG:32649")
    for name in indices.INDEX_NAMES:
        out = indices.compute_index(geo, name)
        assert out.rio.crs.to_epsg() == 32649
        assert out.rio.transform() == geo.rio.transform()
    stack = indices.stack_indices(geo, ["NDVI", "wetness"])
    assert stack.rio.crs.to_epsg() == 32649
    assert stack.rio.transform() == geo.rio.transform()


def test_division_by_zero_is_nan_without_warnings(cube):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eager = [indices.compute_index(cube, n).values for n in ("NDVI", "EVI", "CMR", "MNDWI")]
        lazy = [
            indices.compute_index(cube.chunk({"x": 2}), n).values
            for n in ("NDVI", "EVI", "CMR", "MNDWI")
        ]
    for values in eager + lazy:
        assert np.isnan(values).any()
        assert not np.isinf(values).any()


def test_missing_band_names_band_and_index():
    no_blue = make_cube([b for b in BANDS if b != "blue"])
    with pytest.raises(InputError, match=r"EVI needs band 'blue'.*`features:`"):
        indices.evi(no_blue)
    with pytest.raises(InputError, match="brightness needs band 'blue'"):
        indices.compute_index(no_blue, "brightness")
    no_swir2 = make_cube(["red", "nir", "swir1"])
    with pytest.raises(InputError, match="CMR needs band 'swir2'"):
        indices.stack_indices(no_swir2, ["NDVI", "CMR"])
    assert indices.ndvi(no_swir2).shape == (2, 3)


def test_unknown_or_repeated_names(cube):
    with pytest.raises(ConfigError, match="did you mean 'NDVI'"):
        indices.compute_index(cube, "ndvi")
    with pytest.raises(ConfigError, match="repeat"):
        indices.stack_indices(cube, ["NDVI", "NDVI"])
    with pytest.raises(ConfigError):
        indices.stack_indices(cube, [])


def _no_compute(*args, **kwargs):
    raise AssertionError("something computed a dask graph")


def test_dask_input_stays_lazy_and_equals_eager(cube):
    lazy_cube = cube.chunk({"y": 1, "x": 2})
    with dask.config.set(scheduler=_no_compute):
        lazy = indices.stack_indices(lazy_cube, indices.INDEX_NAMES)
        single = indices.evi(lazy_cube)
    assert isinstance(lazy.data, da.Array) and isinstance(single.data, da.Array)
    eager = indices.stack_indices(cube, indices.INDEX_NAMES)
    np.testing.assert_array_equal(lazy.values, eager.values)


def test_stack_indices(cube):
    names = ["MNDWI", "NDVI", "greenness"]
    stack = indices.stack_indices(cube, names)
    assert stack.dims == ("feature", "y", "x")
    assert list(stack.feature.values) == names
    assert stack.dtype == np.float32
    for name in names:
        np.testing.assert_array_equal(
            stack.sel(feature=name).values, indices.compute_index(cube, name).values
        )

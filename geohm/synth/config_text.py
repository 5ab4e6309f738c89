"""The demo's scene job as YAML text (``scene.yaml``, ``scenes/demo.yaml``)."""

from __future__ import annotations

import json
import re

from geohm.synth.case import SOURCE_PRODUCT_ID, TARGET_PRODUCT_ID

__all__ = ["demo_config_text"]


def demo_config_text(
    data_prefix: str = "", output_dir: str = "out", *, accumulation: bool = False
) -> str:
    """The target-year scene job for the demo data, as YAML text.

    Parameters
    ----------
    data_prefix : str
        Prepended to every data path (``""`` when the YAML sits in the demo folder,
        ``"../demo/"`` for ``scenes/demo.yaml`` next to a ``demo/`` folder). Include
        the trailing slash.
    output_dir : str
        ``output.dir`` of the job.
    accumulation : bool
        Add the ``accumulation:`` block of ``geohm demo --accumulation`` (an illustrative
        stack, ``stacks.csv``, and wind rose, ``wind_rose.csv``).

    Returns
    -------
    str
        YAML following the scene-config contract of ``design.md``.

    Examples
    --------
    >>> print(demo_config_text("data/", "out/demo").splitlines()[1])
    landsat: data/target/LC08_L2SP_127036_20191115_20200825_02_T1
    """
    p = data_prefix
    extra = ""
    if accumulation:
        extra = f"""\
accumulation:  # illustrative: the stack's emissions and the wind rose are made up
  years: 50
  output_years: [10, 20, 50]
  depth: 0.2
  bulk_density: 1300
  deposition:
    stacks: {_yq(p + "stacks.csv")}
    wind_rose: {_yq(p + "wind_rose.csv")}
    v_d: 0.01
    illustrative: true
  fertiliser: {{Cu: 1.5, Pb: 0.4}}
  percolation_mm: 100
  kd: {{Cu: 1500, Pb: 5000}}
  erosion: {{R: 1500, K: 0.03, C: 0.1, P: 1.0, sdr: 0.2, enrichment: 1.5}}
  crop_yield: 6.0
  bcf: {{Cu: 0.1, Pb: 0.01}}
  calibrate: true  # the 2017 and 2019 surveys: correct the net input if spatial CV says so
  calibration_years: 2
"""
    return f"""\
name: demo-target
landsat: {_yq(p + "target/" + TARGET_PRODUCT_ID)}
dem: {_yq(p + "dem.tif")}
covariates:
  dist_source: {_yq(p + "covariates/dist_source.tif")}
samples: {{path: {_yq(p + "samples_target.gpkg")}, id: id, targets: [Cu, Pb], window: 1}}
source:
  landsat: {_yq(p + "source/" + SOURCE_PRODUCT_ID)}
  dem: {_yq(p + "dem.tif")}
  samples: {{path: {_yq(p + "samples_source.gpkg")}, id: id, targets: [Cu, Pb]}}
features: auto
model: {{name: auto, params: {{candidates: [rf, rfsp, ok, ga-bp, tr-ga-bp]}}}}  # gbm, rk: slower
validation: {{test_fraction: 0.2, cv_folds: 5, seed: 0}}
risk: {{standard: gb15618, land_use: other, ph: 6.8, indices: [single_factor, nemerow, exceedance]}}
zones: {{path: {_yq(p + "parcels.gpkg")}, id: parcel_id}}
sampling_design: {{n: 10, min_spacing_m: 600}}
{extra}output: {{dir: {_yq(output_dir)}, tile: 512}}
"""


def _yq(s: str) -> str:
    """A YAML scalar for a path: plain when safe, else double-quoted (JSON is YAML)."""
    return (
        s
        if re.fullmatch(r"[A-Za-z0-9_./\\-][A-Za-z0-9_./\\ :-]*", s)
        and ": " not in s
        and not s.endswith(" ")
        else json.dumps(s)
    )

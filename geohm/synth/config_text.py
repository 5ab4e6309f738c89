"""The demo's scene job as YAML text (``scene.yaml``, ``scenes/demo.yaml``)."""

from __future__ import annotations

import json
import re

from geohm.synth.case import SOURCE_PRODUCT_ID, TARGET_PRODUCT_ID

__all__ = ["demo_config_text"]


def demo_config_text(data_prefix: str = "", output_dir: str = "out") -> str:
    """The target-year scene job for the demo data, as YAML text.

    Parameters
    ----------
    data_prefix : str
        Prepended to every data path (``""`` when the YAML sits in the demo folder,
        ``"../demo/"`` for ``scenes/demo.yaml`` next to a ``demo/`` folder). Include
        the trailing slash.
    output_dir : str
        ``output.dir`` of the job.

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
output: {{dir: {_yq(output_dir)}, tile: 512}}
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

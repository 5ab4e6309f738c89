"""``run_scene`` and ``predict_scene``: one scene job, every step in order.

read -> cube -> sample -> train/validate -> predict tiles -> write (maps, styles,
quicklooks, report). The library never prints: progress goes to a callback and to
the ``geohm`` logger.

- :mod:`~geohm.pipeline.inputs`: open the rasters, stack the features (the window
  source, the one feature path), read the sample points.
- :mod:`~geohm.pipeline.run`: the orchestration of ``geohm run`` and ``geohm predict``.
- :mod:`~geohm.pipeline.outputs`: maps tile by tile, styles, quicklooks, samples, the
  model file and the report.
"""

from geohm.pipeline.common import CHUNK, NODATA, Progress
from geohm.pipeline.inputs import (
    SceneInputs,
    _risk_rasters,
    build_cube,
    check_inputs_have_data,
    needs_coordinates,
    open_inputs,
    sample_points,
    source_spec,
    window_source,
)
from geohm.pipeline.outputs import RunResult
from geohm.pipeline.run import (
    _Probability,
    job_status,
    load_job,
    predict_scene,
    run_scene,
)

__all__ = [
    "CHUNK",
    "NODATA",
    "Progress",
    "RunResult",
    "SceneInputs",
    "_Probability",
    "_risk_rasters",
    "build_cube",
    "check_inputs_have_data",
    "job_status",
    "load_job",
    "needs_coordinates",
    "open_inputs",
    "predict_scene",
    "run_scene",
    "sample_points",
    "source_spec",
    "window_source",
]

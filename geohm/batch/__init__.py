"""Many scene jobs at once, one task per scene on dask.distributed.

:func:`run_batch` validates every scene config in the calling process, skips scenes
whose outputs are already complete, and runs the rest as tasks on a
``distributed.LocalCluster`` (processes, one thread each) or on a running scheduler
given by its address: the same code runs on one machine or on a cluster whose
workers see the same file system and have geohm installed.

A failed scene never stops the others. Each scene job writes its own log
(``geohm.log``: the ``geohm`` logger's records while the job ran) into its output
folder, and the batch writes a summary (``batch_summary.json``) naming every
scene's status: ``done``, ``skipped`` (its folder's manifest matches the job: same
config, inputs and geohm version, every output in place) or ``failed`` (with the
error's one-line message), and the reason a scene was skipped or run. The library
never prints: progress goes to a callback, messages to the ``geohm`` logger.

The parts: :mod:`geohm.batch.scenes` (configs validated, scenes planned),
:mod:`geohm.batch.cluster` (the dask client), :mod:`geohm.batch.worker` (one scene job
on a worker), :mod:`geohm.batch.summary` (statuses and ``batch_summary.json``) and
:mod:`geohm.batch.run` (:func:`run_batch`, the steps in order).
"""

from __future__ import annotations

from geohm.batch.run import run_batch
from geohm.batch.scenes import scene_complete
from geohm.batch.summary import LOG_NAME, SUMMARY_NAME, BatchProgress, BatchResult, SceneStatus
from geohm.batch.worker import scene_task as _scene_task  # noqa: F401  (tests run one job)

__all__ = [
    "LOG_NAME",
    "SUMMARY_NAME",
    "BatchProgress",
    "BatchResult",
    "SceneStatus",
    "run_batch",
    "scene_complete",
]

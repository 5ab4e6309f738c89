"""A batch run: configs checked, scenes planned, jobs submitted and collected, summary written.

:func:`run_batch` is the batch's entry point; :mod:`geohm.batch` tells what it does.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geohm.batch.cluster import dask_client
from geohm.batch.scenes import folder_name, plan_scenes
from geohm.batch.summary import (
    SUMMARY_NAME,
    BatchProgress,
    BatchResult,
    SceneStatus,
    SummaryFile,
    one_line,
)
from geohm.batch.worker import scene_task
from geohm.config import SceneConfig
from geohm.errors import ConfigError
from geohm.io.outdir import check_output_folder

__all__ = ["run_batch"]

log = logging.getLogger("geohm.batch")


def run_batch(
    scene_paths: Iterable[str | os.PathLike[str]],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    output_root: str | os.PathLike[str] | None = None,
    progress: BatchProgress | None = None,
    force: bool = False,
    timeout: float = 60.0,
    connect_timeout: float = 30.0,
) -> BatchResult:
    """Run many scene jobs, one dask.distributed task per scene.

    Every config is validated here first; a config that fails validation is a failed
    scene, not an abort. A scene is skipped, unless ``force``, when its folder's
    manifest matches the job: the same config, input files (size and mtime) and geohm
    version, and every output listed in place (:func:`geohm.io.outdir.compare_locked`:
    a folder another run is writing into makes the scene fail, naming that run); each
    scene's ``reason`` says why it was skipped or run. The others run as tasks; a scene
    that raises is reported as failed and the rest carry on. The summary is (re)written
    atomically after every finished scene, so an interrupted batch leaves one too
    (unfinished scenes listed as ``"pending"``).

    Parameters
    ----------
    scene_paths : iterable of path-like
        Scene configs (YAML).
    scheduler : str, optional
        Address of a running dask scheduler (``tcp://host:port``) or the path of its
        scheduler file. Default: a ``LocalCluster`` of worker processes on this machine,
        started for the batch and stopped after it. The workers must see the configs'
        files at the same paths and have geohm installed.
    workers : int, optional
        Worker processes of the LocalCluster (default 2, one thread each). With
        ``scheduler``, the number of workers to wait for before submitting (default 1).
    output_root : path-like, optional
        Write each scene into ``output_root/<scene name>`` instead of its ``output.dir``;
        the summary goes here too (default: the current folder).
    progress : callable, optional
        ``progress(scene_name, status)`` with status ``"queued"``, ``"running"``,
        ``"done"``, ``"skipped"`` or ``"failed"``. ``"running"`` comes best effort from
        the workers and may be called from a background thread; calls never overlap.
    force : bool
        Rerun scenes whose manifest matches.
    timeout : float
        Seconds to wait for the scheduler's workers.
    connect_timeout : float
        Seconds to wait for the scheduler to answer dask's handshake; what was found at
        the address is in the error when none did.

    Returns
    -------
    BatchResult

    Raises
    ------
    GeohmError
        No configs given, a bad ``workers`` value, the folder of the summary cannot be
        written (:class:`~geohm.errors.OutputError`), or the scheduler cannot be reached
        within ``connect_timeout`` or has no workers within ``timeout``.

    Notes
    -----
    The LocalCluster spawns its worker processes: a script that calls ``run_batch``
    without ``scheduler`` needs the usual ``if __name__ == "__main__":`` guard.

    Examples
    --------
    >>> result = run_batch(["scenes/a.yaml", "scenes/b.yaml"])  # doctest: +SKIP
    >>> [s.status for s in result.scenes]  # doctest: +SKIP
    ['done', 'failed']
    """
    t0 = time.perf_counter()
    started = datetime.now(UTC)
    paths, root, summary_path = _check_request(scene_paths, workers, output_root)
    report = _Reporter(progress)
    plan = plan_scenes(paths, root, force, report)
    summary = SummaryFile(summary_path, paths, plan.statuses, started, t0, root)
    if plan.jobs:
        with dask_client(scheduler, workers, timeout, connect_timeout) as (client, where):
            summary.scheduler = where
            _run_jobs(client, paths, plan.jobs, plan.statuses, report, summary.write, plan.reasons)
    summary.write()
    return _result(paths, plan.statuses, summary_path, t0, summary.scheduler)


def _check_request(
    scene_paths: Iterable[str | os.PathLike[str]],
    workers: int | None,
    output_root: str | os.PathLike[str] | None,
) -> tuple[list[Path], Path | None, Path]:
    """The configs, the output root and the summary's path, checked before any scene runs.

    Raises
    ------
    ConfigError
        No configs, or ``workers`` below 1.
    OutputError
        The summary's folder cannot be written.
    """
    paths = [Path(p) for p in scene_paths]
    if not paths:
        raise ConfigError("geohm batch needs at least one scene config")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(output_root).resolve() if output_root is not None else None
    summary_path = (root if root is not None else Path.cwd()) / SUMMARY_NAME
    check_output_folder(summary_path.parent)  # before any scene runs: OutputError if unusable
    return paths, root, summary_path


def _result(
    paths: Sequence[Path],
    statuses: Sequence[SceneStatus | None],
    summary_path: Path,
    t0: float,
    scheduler: str,
) -> BatchResult:
    """The batch's result once every scene is settled (logged in one line)."""
    done = [s for s in statuses if s is not None]
    assert len(done) == len(paths)
    result = BatchResult(done, summary_path, time.perf_counter() - t0, scheduler)
    log.info(
        "batch of %d scene(s): %s in %.1f s; summary in %s",
        len(paths),
        ", ".join(f"{n} {k}" for k, n in result.counts.items() if n),
        result.wall_time,
        summary_path,
    )
    return result


class _Reporter:
    """Serialises progress calls; a late ``running`` never follows a final status."""

    def __init__(self, progress: BatchProgress | None) -> None:
        self.progress = progress
        self.lock = threading.Lock()
        self.final: set[int] = set()

    def __call__(self, name: str, status: str, index: int | None = None) -> None:
        if self.progress is None:
            return
        with self.lock:
            if index is not None:
                if index in self.final:
                    return
                if status in ("done", "skipped", "failed"):
                    self.final.add(index)
            self.progress(name, status)


def _run_jobs(
    client: Any,
    paths: Sequence[Path],
    jobs: Sequence[tuple[int, SceneConfig]],
    statuses: list[SceneStatus | None],
    report: _Reporter,
    write_summary: Callable[[], None],
    reasons: dict[int, str] | None = None,
) -> None:
    """Submit one task per job and collect them as they finish (``reasons``: why each runs)."""
    from distributed import as_completed

    topic = f"geohm-batch-{uuid.uuid4().hex}"
    names = {i: cfg.name for i, cfg in jobs}

    def on_event(event: Any) -> None:
        # (timestamp, message) from Worker.log_event in the task; best effort only.
        try:
            msg = event[1]
            i = int(msg["index"])
            report(names[i], str(msg["status"]), i)
        except Exception:  # a malformed event or a failing callback: never fatal here
            log.debug("ignored batch event %r", event, exc_info=True)

    client.subscribe_topic(topic, on_event)
    try:
        futures = {}
        for i, cfg in jobs:
            key = f"geohm-scene-{folder_name(cfg.name)}-{uuid.uuid4().hex[:8]}"
            fut = client.submit(
                scene_task, cfg, str(paths[i]), topic, i, key=key, pure=False, retries=0
            )
            futures[fut] = i
            report(cfg.name, "queued", i)
        configs = dict(jobs)
        for fut in as_completed(list(futures)):
            i = futures[fut]
            cfg = configs[i]
            try:
                status = fut.result()
            except Exception as exc:  # KilledWorker, cancelled, lost scheduler, ...
                status = SceneStatus(
                    cfg.name,
                    paths[i],
                    "failed",
                    output_dir=Path(cfg.output.dir),
                    error=f"the scene's task failed on the cluster: {one_line(exc)}",
                )
            status.config = paths[i]
            status.reason = (reasons or {}).get(i)
            statuses[i] = status
            report(status.name, status.status, i)
            write_summary()
    finally:
        try:
            client.unsubscribe_topic(topic)
        except Exception:  # the scheduler may already be gone
            log.debug("unsubscribe failed", exc_info=True)

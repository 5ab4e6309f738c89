"""Many scene jobs at once, one task per scene on dask.distributed.

:func:`run_batch` validates every scene config in the calling process, skips scenes
whose outputs are already complete, and runs the rest as tasks on a
``distributed.LocalCluster`` (processes, one thread each) or on a running scheduler
given by its address: the same code runs on one machine or on a cluster whose
workers see the same file system and have geohm installed.

A failed scene never stops the others. Each scene job writes its own log
(``geohm.log``: the ``geohm`` logger's records while the job ran) into its output
folder, and the batch writes a summary (``batch_summary.json``) naming every
scene's status: ``done``, ``skipped`` (its outputs were complete) or ``failed`` (with
the error's one-line message). The library never prints: progress goes to a
callback, messages to the ``geohm`` logger.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from geohm import __version__
from geohm.config import SceneConfig, load_config
from geohm.errors import ConfigError, GeohmError
from geohm.io.reports import write_json

__all__ = [
    "LOG_NAME",
    "SUMMARY_NAME",
    "BatchProgress",
    "BatchResult",
    "SceneStatus",
    "run_batch",
    "scene_complete",
]

log = logging.getLogger("geohm.batch")

#: The per-scene log file, in the scene's output folder.
LOG_NAME = "geohm.log"
#: The batch summary file, in ``output_root`` or the current folder.
SUMMARY_NAME = "batch_summary.json"
#: Worker processes of the default LocalCluster.
DEFAULT_WORKERS = 2

Status = Literal["done", "skipped", "failed"]
#: Progress callback: ``progress(scene_name, status)``; status is one of ``"queued"``,
#: ``"running"``, ``"done"``, ``"skipped"``, ``"failed"``.
BatchProgress = Callable[[str, str], None]


@dataclass
class SceneStatus:
    """The outcome of one scene job in a batch.

    Attributes
    ----------
    name : str
        The scene's ``name`` (the config file's stem when the config is unreadable).
    config : Path
        The scene config as given.
    status : {"done", "skipped", "failed"}
        ``skipped``: the outputs were already complete and the scene was not rerun.
    wall_time : float
        Seconds the job ran (0 for skipped scenes and configs that failed validation).
    output_dir : Path or None
        The scene's output folder (None when the config could not be read).
    error : str or None
        One-line message of a failed scene.
    log : Path or None
        The scene's ``geohm.log``, when the job got far enough to write one.
    """

    name: str
    config: Path
    status: Status
    wall_time: float = 0.0
    output_dir: Path | None = None
    error: str | None = None
    log: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON record of the batch summary."""
        return {
            "name": self.name,
            "config": str(self.config),
            "status": self.status,
            "wall_time_s": round(self.wall_time, 3),
            "output_dir": str(self.output_dir) if self.output_dir is not None else None,
            "error": self.error,
            "log": str(self.log) if self.log is not None else None,
        }


@dataclass
class BatchResult:
    """What a batch produced: one :class:`SceneStatus` per config, in the order given.

    Attributes
    ----------
    scenes : list of SceneStatus
        One record per scene config.
    summary_path : Path
        The ``batch_summary.json`` written.
    wall_time : float
        Seconds the whole batch took.
    scheduler : str
        Where the jobs ran (a scheduler address, or ``"none"`` when nothing had to run).
    """

    scenes: list[SceneStatus]
    summary_path: Path
    wall_time: float
    scheduler: str
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.counts = _counts(self.scenes)

    @property
    def failed(self) -> list[SceneStatus]:
        """The scenes that failed."""
        return [s for s in self.scenes if s.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when every scene is done or skipped."""
        return not self.failed


def scene_complete(output_dir: str | os.PathLike[str]) -> bool:
    """Whether a scene's outputs are complete (a rerun may skip it).

    Complete means the folder holds ``report.json`` and every file its ``outputs``
    list names. :func:`geohm.pipeline.run_scene` writes the report last, and a batch
    job deletes a stale report before it starts, so an interrupted job never looks
    complete.

    Parameters
    ----------
    output_dir : path-like
        The scene's output folder.

    Returns
    -------
    bool
    """
    folder = Path(output_dir)
    try:
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    outputs = report.get("outputs") if isinstance(report, dict) else None
    if not isinstance(outputs, list) or not outputs:
        return False
    return all(isinstance(name, str) and (folder / name).is_file() for name in outputs)


def run_batch(
    scene_paths: Iterable[str | os.PathLike[str]],
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    output_root: str | os.PathLike[str] | None = None,
    progress: BatchProgress | None = None,
    force: bool = False,
    timeout: float = 60.0,
) -> BatchResult:
    """Run many scene jobs, one dask.distributed task per scene.

    Every config is validated here first; a config that fails validation is a failed
    scene, not an abort. Scenes whose outputs are complete (:func:`scene_complete`) are
    skipped unless ``force``. The others run as tasks; a scene that raises is reported
    as failed and the rest carry on. The summary is (re)written atomically after every
    finished scene, so an interrupted batch leaves one too (unfinished scenes listed as
    ``"pending"``).

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
        Rerun scenes whose outputs are complete.
    timeout : float
        Seconds to wait for the scheduler and its workers.

    Returns
    -------
    BatchResult

    Raises
    ------
    GeohmError
        No configs given, a bad ``workers`` value, or the scheduler cannot be reached or
        has no workers within ``timeout``.

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
    paths = [Path(p) for p in scene_paths]
    if not paths:
        raise ConfigError("geohm batch needs at least one scene config")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(output_root).resolve() if output_root is not None else None
    summary_path = (root if root is not None else Path.cwd()) / SUMMARY_NAME
    report = _Reporter(progress)

    statuses: list[SceneStatus | None] = [None] * len(paths)
    jobs: list[tuple[int, SceneConfig]] = []
    owners: dict[Path, str] = {}
    for i, path in enumerate(paths):
        cfg, status = _prepare(path, root, owners, force)
        if status is not None:
            statuses[i] = status
            report(status.name, status.status)
        else:
            assert cfg is not None
            jobs.append((i, cfg))

    where = "no cluster (nothing to run)"

    def write_summary() -> None:
        _write_summary(
            summary_path, paths, statuses, started, time.perf_counter() - t0, where, root
        )

    if jobs:
        with _client(scheduler, workers, timeout) as (client, where):
            _run_jobs(client, paths, jobs, statuses, report, write_summary)
    write_summary()
    done = [s for s in statuses if s is not None]
    assert len(done) == len(paths)
    result = BatchResult(done, summary_path, time.perf_counter() - t0, where)
    log.info(
        "batch of %d scene(s): %s in %.1f s; summary in %s",
        len(paths),
        ", ".join(f"{n} {k}" for k, n in result.counts.items() if n),
        result.wall_time,
        summary_path,
    )
    return result


# --------------------------------------------------------------------------- client side


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


def _prepare(
    path: Path, root: Path | None, owners: dict[Path, str], force: bool
) -> tuple[SceneConfig | None, SceneStatus | None]:
    """Validate one config: ``(cfg, None)`` to run it, ``(None, status)`` when settled."""
    try:
        cfg = load_config(path)
    except GeohmError as exc:
        name = _guess_name(path)
        out = root / _folder_name(name) if root is not None else None
        return None, SceneStatus(name, path, "failed", output_dir=out, error=str(exc))
    except Exception as exc:  # a bug in validation must not stop the batch
        log.error("validating %s failed", path, exc_info=True)
        return None, SceneStatus(_guess_name(path), path, "failed", error=_one_line(exc))
    if root is not None:
        cfg.output.dir = root / _folder_name(cfg.name)
    out_dir = Path(cfg.output.dir).resolve()
    cfg.output.dir = out_dir
    other = owners.get(out_dir)
    if other is not None:
        return None, SceneStatus(
            cfg.name,
            path,
            "failed",
            output_dir=out_dir,
            error=f"output folder '{out_dir}' is also the output of {other}; give each "
            "scene its own 'name' or 'output.dir'",
        )
    owners[out_dir] = f"scene '{cfg.name}' ({path})"
    if not force and scene_complete(out_dir):
        log_path = out_dir / LOG_NAME
        return None, SceneStatus(
            cfg.name,
            path,
            "skipped",
            output_dir=out_dir,
            log=log_path if log_path.is_file() else None,
        )
    return cfg, None


def _guess_name(path: Path) -> str:
    """The ``name:`` of a config that failed validation, else the file's stem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return path.stem
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name.strip() else path.stem


def _folder_name(name: str) -> str:
    """A scene name made safe as one folder name."""
    safe = re.sub(r"[^\w.+-]+", "_", name.strip()).strip("._")
    return safe or "scene"


@contextmanager
def _client(
    scheduler: str | None, workers: int | None, timeout: float
) -> Iterator[tuple[Any, str]]:
    """A distributed Client: a fresh LocalCluster, or a running scheduler."""
    from distributed import Client, LocalCluster

    if scheduler is None:
        n = workers or DEFAULT_WORKERS
        with (
            _quiet("distributed", logging.ERROR),
            LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                # no dashboard; the scheduler's bare HTTP routes on a free loopback port
                # (not 8787, which another cluster may hold)
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            log.info("LocalCluster of %d worker process(es) at %s", n, cluster.scheduler_address)
            yield client, f"LocalCluster({n} workers) {cluster.scheduler_address}"
        return
    try:
        if Path(scheduler).is_file():
            client = Client(scheduler_file=scheduler, timeout=timeout)
        else:
            client = Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise GeohmError(
            f"cannot reach the dask scheduler at '{scheduler}': {_one_line(exc)}"
        ) from None
    with client:
        need = workers or 1
        try:
            client.wait_for_workers(need, timeout=timeout)
        except TimeoutError:
            raise GeohmError(
                f"the dask scheduler at '{scheduler}' has fewer than {need} worker(s) after "
                f"{timeout:g} s; start workers with: dask worker {scheduler}"
            ) from None
        address = str(client.scheduler.address)
        log.info("dask scheduler at %s", address)
        yield client, address


@contextmanager
def _quiet(name: str, level: int) -> Iterator[None]:
    """Raise a logger's level meanwhile (the in-process scheduler logs at INFO)."""
    logger = logging.getLogger(name)
    old = logger.level
    logger.setLevel(max(level, logger.getEffectiveLevel()))
    try:
        yield
    finally:
        logger.setLevel(old)


def _run_jobs(
    client: Any,
    paths: Sequence[Path],
    jobs: Sequence[tuple[int, SceneConfig]],
    statuses: list[SceneStatus | None],
    report: _Reporter,
    write_summary: Callable[[], None],
) -> None:
    """Submit one task per job and collect them as they finish."""
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
            key = f"geohm-scene-{_folder_name(cfg.name)}-{uuid.uuid4().hex[:8]}"
            fut = client.submit(
                _scene_task, cfg, str(paths[i]), topic, i, key=key, pure=False, retries=0
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
                    error=f"the scene's task failed on the cluster: {_one_line(exc)}",
                )
            status.config = paths[i]
            statuses[i] = status
            report(status.name, status.status, i)
            write_summary()
    finally:
        try:
            client.unsubscribe_topic(topic)
        except Exception:  # the scheduler may already be gone
            log.debug("unsubscribe failed", exc_info=True)


def _counts(statuses: Iterable[SceneStatus | None]) -> dict[str, int]:
    counts = {"done": 0, "skipped": 0, "failed": 0}
    for s in statuses:
        key = s.status if s is not None else "pending"
        counts[key] = counts.get(key, 0) + 1
    return counts


def _write_summary(
    path: Path,
    paths: Sequence[Path],
    statuses: Sequence[SceneStatus | None],
    started: datetime,
    wall_time: float,
    scheduler: str,
    root: Path | None,
) -> None:
    scenes = [
        s.as_dict() if s is not None else {"name": p.stem, "config": str(p), "status": "pending"}
        for p, s in zip(paths, statuses, strict=True)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(
        path,
        {
            "geohm_version": __version__,
            "started": started.isoformat(timespec="seconds"),
            "wall_time_s": round(wall_time, 3),
            "scheduler": scheduler,
            "output_root": str(root) if root is not None else None,
            "counts": _counts(statuses),
            "scenes": scenes,
        },
    )


# --------------------------------------------------------------------------- worker side

_active_lock = threading.Lock()
_active_threads: set[int] = set()


class _SceneFilter(logging.Filter):
    """Records of the job's thread, or of threads no other batch job runs on.

    With several threads per worker, two jobs may share a process: each log keeps
    its own job's records (helper threads' records go to every running job's log).
    """

    def __init__(self, thread: int) -> None:
        super().__init__()
        self.thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self.thread:
            return True
        with _active_lock:
            return record.thread not in _active_threads


@contextmanager
def _scene_log(path: Path) -> Iterator[None]:
    """Capture the ``geohm`` logger's records (INFO and up) into ``path`` meanwhile."""
    logger = logging.getLogger("geohm")
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    me = threading.get_ident()
    handler.addFilter(_SceneFilter(me))
    with _active_lock:
        _active_threads.add(me)
        old_level = logger.level
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        with _active_lock:
            _active_threads.discard(me)
            if not _active_threads:
                logger.setLevel(old_level)


def _emit(topic: str | None, index: int, status: str) -> None:
    """Tell the client about a job's status (no-op outside a dask worker)."""
    if topic is None:
        return
    try:
        from distributed import get_worker

        get_worker().log_event(topic, {"index": index, "status": status})
    except Exception:  # not running on a worker, or the event could not be sent
        pass


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` for unexpected errors."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _scene_task(cfg: SceneConfig, config: str, topic: str | None, index: int) -> SceneStatus:
    """One scene job, run on a worker: never raises for a scene's own failure.

    Deletes a stale ``report.json`` first (so an interrupted job never looks
    complete), logs into ``geohm.log`` in the output folder, and returns the status.
    """
    from geohm.pipeline import run_scene

    t0 = time.perf_counter()
    _emit(topic, index, "running")
    # One thread per job is the batch's plan: scikit-learn's note that it falls back to
    # n_jobs=1 in a daemonic dask worker is expected, not news.
    warnings.filterwarnings(
        "ignore", message="Inside a Dask worker with daemon=True", category=UserWarning
    )
    out_dir = Path(cfg.output.dir)
    log_path = out_dir / LOG_NAME
    status: Status = "failed"
    error: str | None = None
    with ExitStack() as stack:
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "report.json").unlink(missing_ok=True)
            stack.enter_context(_scene_log(log_path))
        except OSError as exc:
            return SceneStatus(
                cfg.name,
                Path(config),
                "failed",
                time.perf_counter() - t0,
                out_dir,
                f"cannot write into the output folder '{out_dir}': {exc}",
            )
        log.info(
            "scene '%s' (config %s) starts on %s (pid %d), output in %s",
            cfg.name,
            config,
            socket.gethostname(),
            os.getpid(),
            out_dir,
        )
        try:
            run_scene(cfg)
        except GeohmError as exc:
            error = str(exc)
            log.error("scene '%s' failed: %s", cfg.name, error)
        except Exception as exc:
            error = _one_line(exc)
            log.error(
                "scene '%s' failed with an unexpected error (a bug; please report it):\n%s",
                cfg.name,
                traceback.format_exc(),
            )
        else:
            status = "done"
            log.info("scene '%s' done in %.1f s", cfg.name, time.perf_counter() - t0)
    return SceneStatus(
        cfg.name, Path(config), status, time.perf_counter() - t0, out_dir, error, log_path
    )

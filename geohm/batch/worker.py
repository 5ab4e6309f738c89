"""One scene job on a dask worker: the folder held, the scene's own log, a status back.

:func:`scene_task` runs on a worker and never raises for a scene's own failure: it holds
the scene's output folder, captures the ``geohm`` logger's records (and Python warnings)
into ``geohm.log`` there, runs :func:`geohm.pipeline.run_scene`, and returns the
:class:`~geohm.batch.summary.SceneStatus`. Its progress goes to the client as a dask
event (best effort).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from geohm.batch.summary import LOG_NAME, SceneStatus, Status, one_line
from geohm.config import SceneConfig
from geohm.errors import GeohmError
from geohm.io.outdir import output_folder

__all__ = ["scene_task"]

log = logging.getLogger("geohm.batch")

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


def _warnings_to_log() -> logging.Logger:
    """Route Python warnings (numpy's RuntimeWarning, ...) of this process to logging.

    On a worker, a library warning would otherwise be printed onto the terminal that
    started the cluster; here it goes to the scene's ``geohm.log`` (and nowhere else).
    """
    logging.captureWarnings(False)  # re-hook: something may have reset showwarning since
    logging.captureWarnings(True)
    warned = logging.getLogger("py.warnings")
    warned.propagate = False
    warned.setLevel(logging.WARNING)
    if not any(isinstance(h, logging.NullHandler) for h in warned.handlers):
        warned.addHandler(logging.NullHandler())  # no fallback print to stderr
    return warned


@contextmanager
def _scene_log(path: Path) -> Iterator[None]:
    """Capture the ``geohm`` logger's records (INFO and up) into ``path`` meanwhile."""
    logger = logging.getLogger("geohm")
    warned = _warnings_to_log()
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
    warned.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        warned.removeHandler(handler)
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


def scene_task(cfg: SceneConfig, config: str, topic: str | None, index: int) -> SceneStatus:
    """One scene job, run on a worker: never raises for a scene's own failure.

    Holds the output folder (checked and locked: :func:`geohm.io.outdir.output_folder`;
    ``run_scene`` removes the earlier outputs, manifest first, before it writes, so an
    interrupted job never looks complete), logs into ``geohm.log`` there, and returns
    the status.

    Parameters
    ----------
    cfg : SceneConfig
        The validated scene config (``output.dir`` absolute).
    config : str
        The config file as given (for the status and the log).
    topic : str or None
        The dask event topic that progress goes to (None: no events).
    index : int
        The scene's index among the batch's configs.

    Returns
    -------
    SceneStatus
        ``done`` or ``failed`` (with the error's one-line message), and the wall time.
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
            folder = stack.enter_context(output_folder(out_dir))  # run_scene holds it too
            folder.keep.add(LOG_NAME)  # the earlier run's log is replaced, not removed
            stack.enter_context(_scene_log(log_path))
        except (GeohmError, OSError) as exc:
            return SceneStatus(
                cfg.name,
                Path(config),
                "failed",
                time.perf_counter() - t0,
                out_dir,
                str(exc)
                if isinstance(exc, GeohmError)
                else f"cannot write into the output folder '{out_dir}': {exc}",
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
            error = one_line(exc)
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

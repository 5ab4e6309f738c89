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
"""

from __future__ import annotations

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

from geohm._version import __version__
from geohm.config import SceneConfig
from geohm.errors import ConfigError, GeohmError
from geohm.io.outdir import (
    check_output_folder,
    compare_locked,
    job_fingerprint,
    output_folder,
    outputs_complete,
)
from geohm.io.reports import write_json
from geohm.io.text import read_text

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
        ``skipped``: the folder's manifest matched the job and the scene was not rerun.
    wall_time : float
        Seconds the job ran (0 for skipped scenes and configs that failed validation).
    output_dir : Path or None
        The scene's output folder (None when the config could not be read).
    error : str or None
        One-line message of a failed scene.
    log : Path or None
        The scene's ``geohm.log``, when the job got far enough to write one.
    reason : str or None
        Why the scene was skipped (``"outputs match manifest"``) or run (``"no
        manifest"``, ``"config changed"``, ``"inputs changed (...)"``, ``"forced
        (--force)"``, ...); None for a config that failed validation.
    """

    name: str
    config: Path
    status: Status
    wall_time: float = 0.0
    output_dir: Path | None = None
    error: str | None = None
    log: Path | None = None
    reason: str | None = None

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
            "reason": self.reason,
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
    """Whether a scene's outputs are complete.

    Complete means the folder holds ``manifest.json`` and every output it lists, with
    its recorded size. :func:`geohm.pipeline.run_scene` writes the manifest last and
    removes it before it writes anything, so an interrupted job never looks complete.
    Whether they are the outputs of the job at hand (same config, inputs and geohm
    version) is :func:`geohm.io.outdir.compare`'s question: the batch skips a scene
    only when that matches.

    Parameters
    ----------
    output_dir : path-like
        The scene's output folder.

    Returns
    -------
    bool
    """
    return outputs_complete(output_dir)


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
    paths = [Path(p) for p in scene_paths]
    if not paths:
        raise ConfigError("geohm batch needs at least one scene config")
    if workers is not None and workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    root = Path(output_root).resolve() if output_root is not None else None
    summary_path = (root if root is not None else Path.cwd()) / SUMMARY_NAME
    check_output_folder(summary_path.parent)  # before any scene runs: OutputError if unusable
    report = _Reporter(progress)

    statuses: list[SceneStatus | None] = [None] * len(paths)
    jobs: list[tuple[int, SceneConfig]] = []
    owners: dict[Path, str] = {}
    reasons: dict[int, str] = {}
    for i, path in enumerate(paths):
        cfg, status, reason = _prepare(path, root, owners, force)
        if status is not None:
            statuses[i] = status
            report(status.name, status.status)
        else:
            assert cfg is not None and reason is not None
            jobs.append((i, cfg))
            reasons[i] = reason

    where = "no cluster (nothing to run)"

    def write_summary() -> None:
        _write_summary(
            summary_path, paths, statuses, started, time.perf_counter() - t0, where, root
        )

    if jobs:
        with _client(scheduler, workers, timeout, connect_timeout) as (client, where):
            _run_jobs(client, paths, jobs, statuses, report, write_summary, reasons)
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
) -> tuple[SceneConfig | None, SceneStatus | None, str | None]:
    """Validate one config: ``(cfg, None, why)`` to run it (``why`` it must run), or
    ``(None, status, None)`` when settled."""
    from geohm.pipeline import load_job  # the library, imported once a batch runs

    try:
        cfg = load_job(path)
    except GeohmError as exc:
        name = _guess_name(path)
        out = root / _folder_name(name) if root is not None else None
        return None, SceneStatus(name, path, "failed", output_dir=out, error=str(exc)), None
    except Exception as exc:  # a bug in validation must not stop the batch
        log.error("validating %s failed", path, exc_info=True)
        return None, SceneStatus(_guess_name(path), path, "failed", error=_one_line(exc)), None
    if root is not None:
        cfg.output.dir = root / _folder_name(cfg.name)
    out_dir = Path(cfg.output.dir).resolve()
    cfg.output.dir = out_dir
    other = owners.get(out_dir)
    if other is not None:
        error = (
            f"output folder '{out_dir}' is also the output of {other}; give each "
            "scene its own 'name' or 'output.dir'"
        )
        return None, SceneStatus(cfg.name, path, "failed", output_dir=out_dir, error=error), None
    owners[out_dir] = f"scene '{cfg.name}' ({path})"
    if force:
        return cfg, None, "forced (--force)"
    try:  # a match is asked again under the folder's lock: a run in progress is no skip
        verdict = compare_locked(out_dir, job_fingerprint(cfg, command="run"))
    except GeohmError as exc:  # another run holds the folder
        return None, SceneStatus(cfg.name, path, "failed", output_dir=out_dir, error=str(exc)), None
    if verdict.match:
        log_path = out_dir / LOG_NAME
        skipped = SceneStatus(
            cfg.name,
            path,
            "skipped",
            output_dir=out_dir,
            log=log_path if log_path.is_file() else None,
            reason=verdict.reason,
        )
        return None, skipped, None
    return cfg, None, verdict.reason


def _guess_name(path: Path) -> str:
    """The ``name:`` of a config that failed validation, else the file's stem."""
    try:
        data = yaml.safe_load(read_text(path, what="scene config"))
    except (GeohmError, ValueError, yaml.YAMLError):
        return path.stem
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name.strip() else path.stem


def _folder_name(name: str) -> str:
    """A scene name made safe as one folder name."""
    safe = re.sub(r"[^\w.+-]+", "_", name.strip()).strip("._")
    return safe or "scene"


@contextmanager
def _client(
    scheduler: str | None, workers: int | None, timeout: float, connect_timeout: float = 30.0
) -> Iterator[tuple[Any, str]]:
    """A distributed Client: a fresh LocalCluster, or a running scheduler.

    A running scheduler must answer dask's handshake within ``connect_timeout``
    (:func:`_check_scheduler`), then have ``workers`` workers within ``timeout``.
    """
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
    _check_scheduler(_scheduler_address(scheduler), connect_timeout)
    try:
        if Path(scheduler).is_file():
            client = Client(scheduler_file=scheduler, timeout=connect_timeout)
        else:
            client = Client(scheduler, timeout=connect_timeout)
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


#: What to do when no dask scheduler answers (the end of the error message).
_GIVE_ADDRESS = (
    "give the address of a running dask scheduler (tcp://host:8786) or its scheduler file"
)


def _scheduler_address(scheduler: str) -> str:
    """``scheduler`` itself, or the ``address`` in it when it is a scheduler file."""
    import json

    path = Path(scheduler)
    if not path.is_file():
        return scheduler
    try:
        address = json.loads(read_text(path, what="scheduler file"))["address"]
    except (GeohmError, ValueError, KeyError, TypeError) as exc:
        address = exc
    if not isinstance(address, str):
        raise ConfigError(
            f"'{scheduler}' is not a dask scheduler file (JSON with the scheduler's "
            "'address', as written by: dask scheduler --scheduler-file FILE)"
        )
    return address


def _check_scheduler(address: str, timeout: float) -> None:
    """Raise unless a dask scheduler answers dask's handshake at ``address`` in time.

    ``distributed.Client(address, timeout=...)`` bounds the TCP connect but not the
    handshake that follows (``distributed.comm.core.connect`` awaits the peer's first
    message with no timeout), so a listener that is not a dask scheduler (an HTTP
    server such as the dashboard, a socket that never answers) makes it wait forever.
    Here a plain TCP connect fails at once on a refused port or an unknown host (dask
    retries those until its timeout), then dask's own ``connect`` (with the security
    settings of dask's config, as the Client uses) must complete its handshake within
    ``timeout``; otherwise :func:`_what_answers` says what listens at the address.

    Raises
    ------
    GeohmError
        One line: the address, what was found there, and what to give instead.
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, loc = parse_address(address)
        host, port = parse_host_port(loc) if scheme in ("tcp", "tls") else ("", 0)
    except ValueError as exc:
        raise ConfigError(
            f"'{address}' is not a dask scheduler address ({exc}); {_GIVE_ADDRESS}"
        ) from None
    where = f"cannot reach the dask scheduler at {scheme}://{loc}"
    if host:
        problem = _tcp_problem(host, int(port), timeout)
        if problem is not None:
            raise GeohmError(f"{where}: {problem}; {_GIVE_ADDRESS}")
    try:
        _handshake(f"{scheme}://{loc}", timeout)
    except TimeoutError:
        found = _what_answers(host, int(port), timeout) if host else "no answer"
        raise GeohmError(f"{where} within {timeout:g} s: {found}; {_GIVE_ADDRESS}") from None
    except OSError as exc:  # the peer closed the comm (CommClosedError), reset, ...
        seen = _what_answers(host, int(port), timeout) if host else _one_line(exc)
        raise GeohmError(f"{where}: {seen}; {_GIVE_ADDRESS}") from None
    except Exception as exc:  # dask's TLS / security settings, ...
        tls = (
            "; set dask's TLS settings (distributed.comm.tls.ca-file, .client.cert, "
            ".client.key: README 'Security')"
            if scheme == "tls"
            else ""
        )
        raise GeohmError(f"{where}: {_one_line(exc)}{tls}") from None


def _handshake(address: str, timeout: float) -> None:
    """Open and close one dask comm to ``address``; ``TimeoutError`` after ``timeout`` s.

    Runs on its own event loop in a short-lived thread, so that it works whether or
    not the caller's thread runs an event loop (a notebook).
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect
    from distributed.security import Security

    async def attempt() -> None:
        args = Security().get_connection_args("client")
        async with asyncio.timeout(timeout):
            comm = await connect(address, timeout=timeout, **args)
        await comm.close()

    with ThreadPoolExecutor(1, thread_name_prefix="geohm-dask-handshake") as pool:
        pool.submit(asyncio.run, attempt()).result()


def _tcp_problem(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to ``host:port`` fails, or None when it opens."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror as exc:
        return f"the host name '{host}' does not resolve ({exc.strerror})"
    except ConnectionRefusedError:
        return "nothing listens there (connection refused)"
    except TimeoutError:
        return (
            f"no TCP connection within {timeout:g} s (the host is down or a firewall "
            "drops the packets)"
        )
    except OSError as exc:
        return f"the TCP connection failed ({exc.strerror or exc})"


def _what_answers(host: str, port: int, timeout: float, wait: float = 2.0) -> str:
    """What listens at ``host:port``, in words, from a fresh plain TCP connection.

    A dask scheduler (like SSH or SMTP servers) speaks first; an HTTP server answers a
    ``HEAD`` request, which is sent only when nothing came within ``wait`` seconds.
    This is a hand-written probe because no library names an unknown listener.
    """

    def first_bytes(sock: socket.socket) -> bytes | None:
        try:
            return sock.recv(256)
        except TimeoutError:
            return None

    try:
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)) as sock:
            sock.settimeout(min(wait, timeout))
            data = first_bytes(sock)
            if data is None:
                sock.sendall(b"HEAD / HTTP/1.0\r\n\r\n")
                data = first_bytes(sock)
    except ConnectionResetError:
        return (
            "the address reset the connection (a dask scheduler that expects TLS does: "
            "give its tls:// address and dask's TLS settings)"
        )
    except OSError as exc:
        return f"the connection failed on a second try ({exc.strerror or exc})"
    if data is None:
        return "the address accepted the connection but never answered"
    if not data:
        return "the address closed the connection without a word"
    line = data.splitlines()[0][:80].decode("ascii", "replace") if data.strip() else ""
    if data.startswith(b"HTTP/"):
        dashboard = " (8787 is the dask dashboard's port)" if port == 8787 else ""
        return f"the address answered like an HTTP server ({line}){dashboard}"
    if data[:1] == b"\x15" and data[1:2] == b"\x03":  # a TLS alert record
        return "the address speaks TLS: give a tls:// address and dask's TLS settings"
    if line.isprintable() and line:
        return f"the address answered {line!r}, not dask's handshake"
    return f"the address answered {len(data)} byte(s) that are not dask's handshake"


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
            status.reason = (reasons or {}).get(i)
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


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` for unexpected errors."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _scene_task(cfg: SceneConfig, config: str, topic: str | None, index: int) -> SceneStatus:
    """One scene job, run on a worker: never raises for a scene's own failure.

    Holds the output folder (checked and locked: :func:`geohm.io.outdir.output_folder`;
    ``run_scene`` removes the earlier outputs, manifest first, before it writes, so an
    interrupted job never looks complete), logs into ``geohm.log`` there, and returns
    the status.
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

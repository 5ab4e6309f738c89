"""What a batch reports: each scene's status, the batch result and ``batch_summary.json``.

The summary names every scene's status: ``done``, ``skipped`` (its folder's manifest
matches the job) or ``failed`` (with the error's one-line message), and the reason a
scene was skipped or run. It is rewritten atomically after every finished scene, so an
interrupted batch leaves one too (unfinished scenes listed as ``"pending"``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from geohm._version import __version__
from geohm.io.reports import write_json

__all__ = [
    "LOG_NAME",
    "SUMMARY_NAME",
    "BatchProgress",
    "BatchResult",
    "SceneStatus",
    "SummaryFile",
    "Status",
    "count_statuses",
    "one_line",
    "write_summary",
]

#: The per-scene log file, in the scene's output folder.
LOG_NAME = "geohm.log"
#: The batch summary file, in ``output_root`` or the current folder.
SUMMARY_NAME = "batch_summary.json"

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
        self.counts = count_statuses(self.scenes)

    @property
    def failed(self) -> list[SceneStatus]:
        """The scenes that failed."""
        return [s for s in self.scenes if s.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when every scene is done or skipped."""
        return not self.failed


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message`` for unexpected errors.

    Parameters
    ----------
    exc : BaseException
        The error.

    Returns
    -------
    str
        The type's name, then the first line of its message if it has one.
    """
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def count_statuses(statuses: Iterable[SceneStatus | None]) -> dict[str, int]:
    """How many scenes are done, skipped, failed (and pending: None entries, if any).

    Parameters
    ----------
    statuses : iterable of SceneStatus or None
        One entry per scene; None for a scene still pending.

    Returns
    -------
    dict of str to int
        ``done``, ``skipped``, ``failed`` always; ``pending`` only when some are.
    """
    tally = {"done": 0, "skipped": 0, "failed": 0}
    for s in statuses:
        key = s.status if s is not None else "pending"
        tally[key] = tally.get(key, 0) + 1
    return tally


def write_summary(
    path: Path,
    paths: Sequence[Path],
    statuses: Sequence[SceneStatus | None],
    started: datetime,
    wall_time: float,
    scheduler: str,
    root: Path | None,
) -> None:
    """Write ``batch_summary.json`` (atomically; its folder is created if needed).

    Parameters
    ----------
    path : Path
        The summary file.
    paths : sequence of Path
        The scene configs, in the order given.
    statuses : sequence of SceneStatus or None
        One entry per config; None for a scene still pending.
    started : datetime
        When the batch started.
    wall_time : float
        Seconds since the batch started.
    scheduler : str
        Where the jobs ran.
    root : Path or None
        The batch's ``output_root``.
    """
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
            "counts": count_statuses(statuses),
            "scenes": scenes,
        },
    )


@dataclass
class SummaryFile:
    """The batch summary of a running batch, rewritten by :meth:`write`.

    Attributes
    ----------
    path : Path
        The ``batch_summary.json`` to write.
    paths : sequence of Path
        The scene configs, in the order given.
    statuses : sequence of SceneStatus or None
        One entry per config, None while the scene is pending (filled in as scenes
        finish: the summary reads it at each write).
    started : datetime
        When the batch started (UTC).
    t0 : float
        ``time.perf_counter()`` when the batch started.
    root : Path or None
        The batch's ``output_root``.
    scheduler : str
        Where the jobs run; set once a cluster is up.
    """

    path: Path
    paths: Sequence[Path]
    statuses: Sequence[SceneStatus | None]
    started: datetime
    t0: float
    root: Path | None
    scheduler: str = "no cluster (nothing to run)"

    def write(self) -> None:
        """Write the summary as it stands now (atomically)."""
        write_summary(
            self.path,
            self.paths,
            self.statuses,
            self.started,
            time.perf_counter() - self.t0,
            self.scheduler,
            self.root,
        )

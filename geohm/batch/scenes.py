"""The scenes of a batch: each config validated, and whether its scene runs or is skipped.

Every config is validated in the calling process (:func:`plan_scenes`): a config that
fails validation is a failed scene, not an abort; two scenes writing into one folder
fail; a scene whose folder's manifest matches its job (same config, inputs and geohm
version, every output in place: :func:`scene_complete` says only the last) is skipped
unless forced. The others are the jobs the cluster runs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from geohm.batch.summary import LOG_NAME, SceneStatus, one_line
from geohm.config import SceneConfig
from geohm.errors import GeohmError
from geohm.io.outdir import compare_locked, job_fingerprint, outputs_complete
from geohm.io.text import read_text

__all__ = ["ScenePlan", "folder_name", "plan_scenes", "scene_complete"]

log = logging.getLogger("geohm.batch")


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



@dataclass
class ScenePlan:
    """What a batch does with its configs.

    Attributes
    ----------
    statuses : list of SceneStatus or None
        One entry per config: settled already (failed validation, skipped), or None
        for a scene that runs.
    jobs : list of (int, SceneConfig)
        The scenes that run: their index among the configs, and the validated config
        (``output.dir`` absolute).
    reasons : dict of int to str
        Why each of ``jobs`` runs (``"no manifest"``, ``"forced (--force)"``, ...).
    """

    statuses: list[SceneStatus | None]
    jobs: list[tuple[int, SceneConfig]] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def plan_scenes(
    paths: list[Path],
    root: Path | None,
    force: bool,
    report: Callable[[str, str], None],
) -> ScenePlan:
    """Validate every config and settle what runs, in the calling process.

    Parameters
    ----------
    paths : list of Path
        The scene configs.
    root : Path or None
        ``output_root``: each scene then writes into ``root/<scene name>``.
    force : bool
        Run scenes whose manifest matches.
    report : callable
        ``report(scene_name, status)`` for each scene settled here.

    Returns
    -------
    ScenePlan
    """
    plan = ScenePlan([None] * len(paths))
    owners: dict[Path, str] = {}
    for i, path in enumerate(paths):
        cfg, status, reason = _prepare(path, root, owners, force)
        if status is not None:
            plan.statuses[i] = status
            report(status.name, status.status)
        else:
            assert cfg is not None and reason is not None
            plan.jobs.append((i, cfg))
            plan.reasons[i] = reason
    return plan


def _prepare(
    path: Path, root: Path | None, owners: dict[Path, str], force: bool
) -> tuple[SceneConfig | None, SceneStatus | None, str | None]:
    """Validate one config and decide whether it must run.

    Returns ``(cfg, None, why)`` to run it (``why`` it must run), or
    ``(None, status, None)`` when settled.
    """
    from geohm.pipeline import load_job  # the library, imported once a batch runs

    try:
        cfg = load_job(path)
    except GeohmError as exc:
        name = _guess_name(path)
        out = root / folder_name(name) if root is not None else None
        return None, SceneStatus(name, path, "failed", output_dir=out, error=str(exc)), None
    except Exception as exc:  # a bug in validation must not stop the batch
        log.error("validating %s failed", path, exc_info=True)
        return None, SceneStatus(_guess_name(path), path, "failed", error=one_line(exc)), None
    if root is not None:
        cfg.output.dir = root / folder_name(cfg.name)
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


def folder_name(name: str) -> str:
    """A scene name made safe as one folder name.

    Parameters
    ----------
    name : str
        The scene's ``name``.

    Returns
    -------
    str
        Word characters, ``.``, ``+`` and ``-`` kept, other runs replaced by ``_``;
        ``"scene"`` when nothing is left.
    """
    safe = re.sub(r"[^\w.+-]+", "_", name.strip()).strip("._")
    return safe or "scene"


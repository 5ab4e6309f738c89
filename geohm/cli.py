"""The ``geohm`` command: a thin layer over the library.

Each command builds or loads a config and makes one library call. Exit codes: 0 on
success, 2 on bad input or config (one clear line on stderr), 1 on a bug.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from geohm import GeohmError, __version__

app = typer.Typer(
    name="geohm",
    help="Map heavy-metal (Cu, Pb, ...) concentration of soil from Landsat 8/9 and a DEM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
out = Console()


def _version(value: bool) -> None:
    if value:
        out.print(f"geohm {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Library warnings (numpy RuntimeWarning, scikit-learn's ...) are for developers:
    # they go to the log, shown with --verbose, never raw onto the user's terminal.
    # What a user must know, geohm says itself (report, summary, log.warning).
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.INFO if verbose else logging.ERROR)


@contextmanager
def _errors() -> Iterator[None]:
    """Turn errors into exit codes: GeohmError -> 2, Ctrl-C -> 130, anything else -> 1.

    The first two print one line; anything else prints its traceback.
    """
    try:
        yield
    except GeohmError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        # Every file is written under a temporary name (geohm.io.rasters.atomic_path),
        # removed on any exception, and renamed only when complete.
        console.print(
            "[bold red]interrupted[/]; no half-written output was left under its final "
            "name (the outputs are incomplete: run the command again)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except Exception:
        traceback.print_exc()
        console.print("[bold red]geohm hit a bug[/]; please report it with the traceback above.")
        raise typer.Exit(1) from None


@contextmanager
def _progress_bar() -> Iterator[Callable[[str, int, int], None]]:
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("tiles"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def _summary(result: Any) -> None:
    rep = result.report
    table = Table(title=f"{rep['name']}: accuracy (mg/kg)", title_justify="left")
    for col in ("target", "set", "n", "RMSE", "MAE", "R2", "MRE", "skill"):
        table.add_column(col, justify="right" if col not in ("target", "set") else "left")
    for target, t in rep["targets"].items():
        for set_name in ("test", "cv", "cv_spatial", "validation"):
            m = t.get(set_name)
            if m:
                table.add_row(
                    target,
                    set_name,
                    str(m["n"]),
                    f"{m['rmse']:.2f}",
                    f"{m['mae']:.2f}",
                    f"{m['r2']:.3f}",
                    f"{m['mre']:.3f}",
                    "" if m.get("skill") is None else f"{m['skill']:.2f}",
                )
    out.print(table)
    if any("skill" in (t.get(k) or {}) for t in rep["targets"].values() for k in ("test", "cv")):
        out.print("skill: 1 - RMSE / RMSE of a flat map (the training mean); 0 = no better")
    for t in rep["targets"].values():
        for w in t.get("warnings", []):
            console.print(f"[bold yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
    samples = rep.get("samples")
    if samples:
        dropped = ", ".join(
            f"{d['id']} ({'' if d.get('target', 'all') == 'all' else d['target'] + ': '}"
            f"{d['reason']})"
            for d in samples["dropped"]
        )
        per = samples.get("per_target", {})
        used = ", ".join(f"{t} {c['used']}" for t, c in per.items())
        out.print(
            f"samples: {samples['used']} of {samples['total']} used"
            + (f" ({used})" if used else "")
            + (f"; left out: {dropped}" if dropped else ""),
            highlight=False,
            markup=False,
        )
        for t, c in per.items():
            if c["censored"]:
                out.print(
                    f"{t}: {c['censored']} values below the detection limit set to "
                    f"{c['censored_rule']}",
                    highlight=False,
                )
        for w in samples.get("warnings", []):
            console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False)
    out.print(f"outputs in [bold]{result.output_dir}[/]: {', '.join(rep['outputs'])}")
    out.print(f"done in {rep['timings']['total']:.1f} s")


OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Output folder (overrides output.dir).", show_default=False),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Run even when the output folder's manifest matches (same config, inputs and "
        "geohm version: the outputs are up to date).",
    ),
]


def _why_run(cfg: Any, force: bool, command: str, model: Path | None = None) -> str | None:
    """Why the job runs; None (and says so) when its outputs are up to date: skipped."""
    from geohm import job_status

    run, why = job_status(cfg, command=command, model=model, force=force)
    if not run:
        out.print(
            f"skipped: outputs in [bold]{escape(str(cfg.output.dir))}[/] match manifest (same "
            "config, inputs and versions); --force reruns",
            highlight=False,
        )
        return None
    return why


def _print_why(result: Any, why: str) -> None:
    """Why the job ran, and what it removed of an earlier run's."""
    if why != "no earlier outputs":
        out.print(f"ran: {why}", highlight=False, markup=False)
    note = result.report.get("output_folder", {})
    if note.get("removed_earlier_outputs"):
        n = len(note["removed_earlier_outputs"])
        out.print(f"removed {n} file(s) of the earlier run (listed in report.json)")
    if note.get("removed_temporary_files"):
        n = len(note["removed_temporary_files"])
        out.print(f"removed {n} temporary file(s) left by a killed run")
    if note.get("kept_input_files"):
        names = ", ".join(note["kept_input_files"])
        out.print(f"kept input file(s) of this run: {names}", highlight=False, markup=False)
    if note.get("kept_files_not_written_by_geohm"):
        names = ", ".join(note["kept_files_not_written_by_geohm"])
        out.print(f"kept files geohm did not write: {names}", highlight=False, markup=False)


@app.command()
def run(
    scene: Annotated[Path, typer.Argument(help="Scene config (YAML).", show_default=False)],
    out_dir: OutOption = None,
    force: ForceOption = False,
) -> None:
    """Run one scene job: read, sample, train, validate, map, report.

    Skipped when the output folder's manifest matches (same config, inputs and geohm
    version); --force reruns.
    """
    from geohm import load_job, run_scene

    with _errors():
        cfg = load_job(scene, output_dir=out_dir)
        why = _why_run(cfg, force, "run")
        if why is None:
            return
        with _progress_bar() as progress:
            result = run_scene(cfg, progress=progress)
        _summary(result)
        _print_why(result, why)


@app.command()
def predict(
    scene: Annotated[Path, typer.Argument(help="Scene config (YAML).", show_default=False)],
    model: Annotated[Path, typer.Option("--model", "-m", help="model.geohm written by geohm run.")],
    out_dir: OutOption = None,
    force: ForceOption = False,
) -> None:
    """Map a scene with a saved model (no training); score it on the scene's samples if any.

    Skipped when the output folder's manifest matches (same config, model file, inputs
    and geohm version); --force reruns.
    """
    from geohm import load_config, predict_scene

    with _errors():
        cfg = load_config(scene, output_dir=out_dir)
        why = _why_run(cfg, force, "predict", model)
        if why is None:
            return
        with _progress_bar() as progress:
            result = predict_scene(cfg, model, progress=progress)
        _summary(result)
        _print_why(result, why)


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the case into.")],
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 0,
    size: Annotated[int, typer.Option(help="Scene size in pixels (square, 30 m).", min=64)] = 400,
) -> None:
    """Write the built-in synthetic two-year mining-area case (inputs and truth)."""
    from geohm import make_demo

    with _errors():
        make_demo(out_dir, seed=seed, size=size)
        out.print(
            f"wrote the synthetic case to [bold]{out_dir}[/] "
            f"(run it with: geohm run {out_dir / 'scene.yaml'})"
        )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("demo"),
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic data.")] = 0,
    size: Annotated[int, typer.Option(help="Scene size in pixels.", min=64)] = 400,
    accumulation: Annotated[
        bool,
        typer.Option(
            "--accumulation",
            help="Also project the maps 50 years forward (an illustrative smelter stack).",
        ),
    ] = False,
) -> None:
    """Make the built-in demo data in OUT/data and map it into OUT."""
    from geohm import load_job, make_demo, run_scene

    with _errors():
        data = out_dir / "data"
        console.print(f"writing the synthetic demo case to {data} ...")
        make_demo(data, seed=seed, size=size, accumulation=accumulation)
        cfg = load_job(data / "scene.yaml", output_dir=out_dir)
        with _progress_bar() as progress:
            result = run_scene(cfg, progress=progress)
        _summary(result)


@app.command()
def series(
    config: Annotated[
        Path, typer.Argument(help="SERIES.yaml (monitoring-well series).", show_default=False)
    ],
    out_dir: OutOption = None,
) -> None:
    """Forecast monitoring-well series and warn of exceedances.

    An LSTM across wells against persistence, seasonal naive, site climatology and ridge
    on lags, validated by rolling origin and leave-sites-out (RMSE, MAE, skill against
    persistence per horizon); P(exceeding the limit within the horizon) per well.
    """
    from geohm import run_series

    with _errors():
        with _progress_bar() as progress:
            result = run_series(config, out_dir=out_dir, progress=progress)
        table = Table(title="rolling origin: RMSE (skill against persistence) by horizon")
        table.add_column("metal")
        table.add_column("model")
        m = result.metrics
        m = m[m["scheme"] == "rolling_origin"] if "scheme" in m.columns else m
        horizons = sorted(int(h) for h in m["horizon"].unique())
        for h in horizons:
            table.add_column(f"h={h}", justify="right")
        for (metal, model), rows in m.groupby(["metal", "model"], sort=False):
            by_h = {int(r.horizon): r for r in rows.itertuples()}
            cells = [
                f"{by_h[h].rmse:.3g} ({by_h[h].skill:+.2f})" if h in by_h else "" for h in horizons
            ]
            table.add_row(str(metal), str(model), *cells)
        out.print(table)
        if len(result.warnings) and "level" in result.warnings.columns:
            counts = result.warnings["level"].value_counts().to_dict()
            levels = ", ".join(f"{k}: {v}" for k, v in counts.items())
            out.print(f"warning levels (sites x metals): {levels}")
        out.print(f"{len(result.outputs)} files in [bold]{escape(str(result.out_dir))}[/]")


_STATUS_STYLE = {
    "queued": "dim",
    "running": "cyan",
    "done": "green",
    "skipped": "yellow",
    "failed": "bold red",
}


@contextmanager
def _batch_progress(total: int) -> Iterator[Callable[[str, str], None]]:
    """Overall bar (scenes finished) and one status line per scene change."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("scenes"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    overall = bar.add_task("batch", total=total)

    def update(name: str, status: str) -> None:
        if status == "queued":
            return
        style = _STATUS_STYLE.get(status, "")
        bar.console.print(f"{escape(name)}: [{style}]{status}[/]", highlight=False, soft_wrap=True)
        if status in ("done", "skipped", "failed"):
            bar.advance(overall)

    with bar:
        yield update


def _batch_summary(result: Any) -> None:
    table = Table(
        title=f"batch: {len(result.scenes)} scene(s) on {result.scheduler}", title_justify="left"
    )
    for col in ("scene", "config", "status", "time (s)", "output folder", "why", "error"):
        table.add_column(col, justify="right" if col == "time (s)" else "left", overflow="fold")
    for s in result.scenes:
        style = _STATUS_STYLE.get(s.status, "")
        table.add_row(
            s.name,
            str(s.config),
            f"[{style}]{s.status}[/]",
            f"{s.wall_time:.1f}",
            str(s.output_dir) if s.output_dir is not None else "",
            s.reason or "",
            escape(s.error or ""),
        )
    out.print(table)
    counts = ", ".join(f"{n} {k}" for k, n in result.counts.items() if n)
    out.print(f"{counts} in {result.wall_time:.1f} s; summary in [bold]{result.summary_path}[/]")


@app.command()
def batch(
    scenes: Annotated[
        list[Path],
        typer.Argument(metavar="SCENE.yaml", help="Scene configs (YAML).", show_default=False),
    ],
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="A running dask scheduler: its address (tcp://host:port) or scheduler file. "
            "Default: a LocalCluster on this machine. Its workers run the jobs' code: see "
            "README 'Security'.",
            show_default=False,
        ),
    ] = None,
    scheduler_file: Annotated[
        Path | None,
        typer.Option(
            "--scheduler-file",
            exists=True,
            dir_okay=False,
            help="The JSON file of a running dask scheduler (dask scheduler --scheduler-file).",
            show_default=False,
        ),
    ] = None,
    connect_timeout: Annotated[
        float,
        typer.Option(
            "--connect-timeout",
            min=0.1,
            help="Seconds to wait for the scheduler to answer (then say what was found there).",
        ),
    ] = 30.0,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            "-w",
            min=1,
            help="LocalCluster worker processes (default 2); with --scheduler, the number of "
            "workers to wait for.",
            show_default=False,
        ),
    ] = None,
    out_root: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write each scene into OUT/<scene name> (overrides output.dir) and the "
            "summary into OUT (default: the current folder).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Redo scenes whose manifest matches (outputs up to date)."),
    ] = False,
) -> None:
    """Run many scene jobs on dask.distributed; skip scenes whose outputs are up to date.

    A scene is skipped when its output folder's manifest matches: same config, inputs
    and geohm version, every output in place. Every scene it can is finished; a summary
    (batch_summary.json and a table) names each scene's status and why it ran or was
    skipped. Exit code 2 when any scene failed.
    """
    from geohm import ConfigError, run_batch

    with _errors():
        if scheduler is not None and scheduler_file is not None:
            raise ConfigError("give --scheduler or --scheduler-file, not both")
        with _batch_progress(len(scenes)) as progress:
            result = run_batch(
                scenes,
                scheduler=str(scheduler_file) if scheduler_file is not None else scheduler,
                workers=workers,
                output_root=out_root,
                progress=progress,
                force=force,
                connect_timeout=connect_timeout,
            )
        _batch_summary(result)
    if not result.ok:
        console.print(
            f"[bold red]error:[/] {len(result.failed)} of {len(result.scenes)} scene(s) "
            f"failed; see {result.summary_path}",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)


qgis_plugin_app = typer.Typer(
    help="geohm's QGIS plugin: a Processing provider (Run scene job, Predict with a saved "
    "model, Make the demo data in the Processing toolbox and the graphical modeler).",
    no_args_is_help=True,
)
app.add_typer(qgis_plugin_app, name="qgis-plugin")


@qgis_plugin_app.command("install")
def qgis_plugin_install(
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile",
            help="A QGIS profile folder (QGIS: Settings > User Profiles > Open Active Profile "
            "Folder). Default: QGIS's default profile "
            "(~/.local/share/QGIS/QGIS3/profiles/default on Linux).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Replace a geohm plugin already there that differs from this one."
        ),
    ] = False,
) -> None:
    """Install the QGIS plugin into a QGIS profile (python/plugins/geohm).

    The plugin runs this geohm (this Python, -m geohm.cli) unless its setting or
    GEOHM_EXECUTABLE names another.
    """
    from geohm import install_plugin

    with _errors():
        dest = install_plugin(profile, force=force)
        out.print(
            f"installed the geohm QGIS plugin in [bold]{escape(str(dest))}[/]; restart QGIS, "
            "enable it (Plugins > Manage and Install Plugins > Installed > geohm) and find "
            "geohm in the Processing toolbox",
            highlight=False,
            soft_wrap=True,
        )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()

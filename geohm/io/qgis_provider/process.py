"""Run the ``geohm`` command as a child process: its command line, progress and cancel.

Plain Python (no ``qgis`` import): QGIS's Python is not the one geohm is installed in, so
the plugin's algorithms start ``geohm`` as a program and follow its output. This module
finds the program (:func:`geohm_command`), gives it a clean environment
(:func:`child_environment`), reads its output line by line (:class:`OutputParser`: the
rich progress bar ``predict ━━━━ 3/10 tiles``, warnings, errors) and stops it when asked
(:func:`run_geohm`: Ctrl-C first, as a user at a terminal would, so geohm removes its
temporary files; then terminate, then kill).
"""

from __future__ import annotations

import codecs
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "COMMAND_FILE",
    "EXECUTABLE_ENV",
    "GeohmNotFound",
    "OutputParser",
    "RunOutcome",
    "child_environment",
    "geohm_command",
    "run_geohm",
]

#: Environment variable naming the geohm program (a path, or a command line).
EXECUTABLE_ENV = "GEOHM_EXECUTABLE"
#: Written beside the plugin by ``geohm qgis-plugin install``: the geohm that installed it.
COMMAND_FILE = "geohm_command.json"
#: Variables QGIS sets for its own Python, GDAL and PROJ (OSGeo4W, the macOS bundle) that
#: would point geohm's Python at QGIS's libraries or geohm's PROJ at a proj.db of another
#: version; geohm's rasterio and pyproj find their own data without them.
_QGIS_ONLY = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
    "PROJ_LIB",
    "PROJ_DATA",
)
#: An ANSI escape sequence (CSI, OSC or a two-character one).
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
#: rich's progress line: ``<stage> <bar> <done>/<total> tiles <elapsed>``.
_PROGRESS = re.compile(
    r"^(?P<stage>[^\W\d][^\d]*?)\s+[^\w]*?(?P<done>\d+)/(?P<total>\d+)\s+(?:tiles|scenes)\b"
)


class GeohmNotFound(Exception):
    """No geohm program: the setting, ``$GEOHM_EXECUTABLE`` and ``PATH`` name none."""


def _command(value: str, source: str, path: str | None) -> list[str]:
    """The command line that ``value`` (a program's path or a command line) names."""
    value = value.strip()
    if os.path.isfile(value):
        return [value]
    try:
        words = shlex.split(value, posix=os.name != "nt")
    except ValueError:
        words = []
    if words and (os.path.isfile(words[0]) or shutil.which(words[0], path=path)):
        return words
    raise GeohmNotFound(
        f"{source} names {value!r}, which is neither a file nor a program on PATH; give the "
        "path of the geohm program (`which geohm` in the environment where geohm is installed)"
    )


def _recorded(plugin_dir: Path | None) -> list[str] | None:
    """The command recorded at install (:data:`COMMAND_FILE`), if its program still exists."""
    if plugin_dir is None:
        return None
    try:
        with open(plugin_dir / COMMAND_FILE, encoding="utf-8") as fh:
            command = json.load(fh).get("command")
    except (OSError, ValueError, AttributeError):
        return None
    ok = isinstance(command, list) and command and all(isinstance(w, str) for w in command)
    if ok and os.path.isfile(command[0]):
        return list(command)
    return None


def geohm_command(
    setting: str = "",
    *,
    environ: Mapping[str, str] | None = None,
    plugin_dir: Path | None = None,
) -> list[str]:
    """The command line that starts geohm.

    The first of: the plugin setting (*Settings > Options > Processing > Providers >
    geohm*), ``$GEOHM_EXECUTABLE``, the geohm that installed the plugin (recorded in
    :data:`COMMAND_FILE`), ``geohm`` on ``PATH``.

    Parameters
    ----------
    setting : str
        The plugin setting: a program's path ("" when unset).
    environ : Mapping[str, str], optional
        The environment to read ``GEOHM_EXECUTABLE`` and ``PATH`` from (default:
        ``os.environ``).
    plugin_dir : Path, optional
        The installed plugin's folder, where :data:`COMMAND_FILE` may be.

    Returns
    -------
    list of str
        The program and any arguments before geohm's own (``[python, "-m", "geohm.cli"]``).

    Raises
    ------
    GeohmNotFound
        The setting or the variable names nothing that exists, or nothing is found.
    """
    env = os.environ if environ is None else environ
    path = env.get("PATH")
    if setting and setting.strip():
        return _command(setting, "the geohm provider's setting 'geohm executable'", path)
    if env.get(EXECUTABLE_ENV, "").strip():
        return _command(env[EXECUTABLE_ENV], f"${EXECUTABLE_ENV}", path)
    recorded = _recorded(plugin_dir)
    if recorded:
        return recorded
    found = shutil.which("geohm", path=path)
    if found:
        return [found]
    raise GeohmNotFound(
        "cannot find the geohm program: set its path in Settings > Options > Processing > "
        f"Providers > geohm > 'geohm executable', or in ${EXECUTABLE_ENV}, or run "
        "`geohm qgis-plugin install --force` from the environment where geohm is installed"
    )


def child_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment geohm runs in: QGIS's without its Python, GDAL and PROJ paths.

    rich's progress bar is asked for (``TTY_COMPATIBLE``, ``FORCE_COLOR``: a terminal
    even though the output is a pipe), without colours and wide enough not to wrap.

    Parameters
    ----------
    environ : Mapping[str, str], optional
        The environment to start from (default: ``os.environ``).

    Returns
    -------
    dict of str to str
        The child's environment.
    """
    env = dict(os.environ if environ is None else environ)
    for name in _QGIS_ONLY:
        env.pop(name, None)
    env.update(
        TTY_COMPATIBLE="1",
        FORCE_COLOR="1",
        NO_COLOR="1",
        COLUMNS="200",
        LINES="50",
        PYTHONUNBUFFERED="1",
        PYTHONIOENCODING="utf-8",
    )
    return env


@dataclass(frozen=True)
class Progress:
    """A progress line: ``done`` of ``total`` units (windows) of ``stage``."""

    stage: str
    done: int
    total: int


@dataclass(frozen=True)
class Line:
    """A line of text; ``level`` is ``"info"``, ``"warning"`` or ``"error"``."""

    text: str
    level: str


class OutputParser:
    """geohm's output, in chunks of text, as :class:`Progress` and :class:`Line` events.

    ANSI escapes are removed; lines end at a newline or a carriage return; blank lines
    are dropped; a progress state is reported once (rich redraws its bar ten times a
    second).
    """

    def __init__(self) -> None:
        self._pending = ""
        self._last: Progress | None = None

    def feed(self, text: str) -> list[Progress | Line]:
        """The events of the complete lines in ``text`` (the rest is kept for later).

        Parameters
        ----------
        text : str
            The next chunk of output.

        Returns
        -------
        list of Progress or Line
            In output order.
        """
        parts = re.split(r"\r\n|\r|\n", self._pending + text)
        self._pending = parts.pop()
        return [e for e in map(self._event, parts) if e is not None]

    def close(self) -> list[Progress | Line]:
        """The events of the last, unterminated line.

        Returns
        -------
        list of Progress or Line
            At most one event.
        """
        rest, self._pending = self._pending, ""
        event = self._event(rest)
        return [] if event is None else [event]

    def _event(self, raw: str) -> Progress | Line | None:
        text = _ANSI.sub("", raw).strip()
        if not text:
            return None
        m = _PROGRESS.match(text)
        if m:
            p = Progress(m["stage"].strip(), int(m["done"]), int(m["total"]))
            if p == self._last:
                return None
            self._last = p
            return p
        low = text.lower()
        if low.startswith(("error:", "traceback", "geohm hit a bug")):
            return Line(text, "error")
        if low.startswith(("warning:", "warning ", "interrupted")):
            return Line(text, "warning")
        return Line(text, "info")


@dataclass
class RunOutcome:
    """How a geohm run ended.

    Attributes
    ----------
    returncode : int
        Its exit status (negative: ended by that signal).
    canceled : bool
        It was stopped because the user cancelled.
    pid : int
        Its process id.
    errors : list of str
        Its error lines (``error: ...``).
    tail : list of str
        Its last lines of output (at most 40).
    """

    returncode: int
    canceled: bool
    pid: int
    errors: list[str] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


def _pump(stream: object, out: queue.Queue[str | None]) -> None:
    """Read the child's output (bytes) into ``out`` as text; ``None`` at its end."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = stream.fileno()  # type: ignore[attr-defined]
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            out.put(decoder.decode(chunk))
        out.put(decoder.decode(b"", final=True))
    except OSError:
        pass
    finally:
        out.put(None)


def _signal(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to the child's process group (POSIX) or terminate it (Windows)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, sig)
        elif sig == signal.SIGINT:
            proc.send_signal(getattr(signal, "CTRL_BREAK_EVENT", signal.SIGTERM))
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError, OSError):
        pass


def run_geohm(
    args: list[str],
    *,
    command: list[str],
    on_event: Callable[[Progress | Line], None],
    is_canceled: Callable[[], bool],
    on_start: Callable[[int], None] | None = None,
    environ: Mapping[str, str] | None = None,
    poll_s: float = 0.1,
    grace_s: float = 15.0,
) -> RunOutcome:
    """Run ``command + args`` until it ends or ``is_canceled()``; report its output.

    On cancel the child's process group gets SIGINT (geohm's Ctrl-C: it removes its
    temporary files, exit status 130), then SIGTERM after ``grace_s`` seconds, then
    SIGKILL after as long again. On Windows the child gets CTRL_BREAK, then is killed.

    Parameters
    ----------
    args : list of str
        geohm's arguments (``["run", "scene.yaml", "--out", "out"]``).
    command : list of str
        The program that starts geohm (:func:`geohm_command`).
    on_event : callable
        Called with every :class:`Progress` and :class:`Line`, in the calling thread.
    is_canceled : callable
        Polled every ``poll_s`` seconds; True stops the run.
    on_start : callable, optional
        Called with the child's process id once it has started.
    environ : Mapping[str, str], optional
        Its environment (default: :func:`child_environment`).
    poll_s : float
        Seconds between two cancel checks.
    grace_s : float
        Seconds the child has to end after each signal before the next, harder one.

    Returns
    -------
    RunOutcome
        Its exit status, whether it was cancelled, its error lines and last lines.

    Raises
    ------
    OSError
        The program cannot be started.
    """
    env = child_environment() if environ is None else dict(environ)
    kwargs: dict[str, object] = {}
    if os.name == "posix":
        kwargs["start_new_session"] = True  # its own group: Ctrl-C reaches its workers too
    else:
        kwargs["creationflags"] = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
    proc = subprocess.Popen(
        [*command, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        **kwargs,  # type: ignore[call-overload]
    )
    if on_start is not None:
        on_start(proc.pid)
    chunks: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc.stdout, chunks), daemon=True)
    reader.start()
    parser = OutputParser()
    outcome = RunOutcome(returncode=0, canceled=False, pid=proc.pid)
    signals = [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)]
    deadline = exited_at = None

    def handle(events: list[Progress | Line]) -> None:
        for event in events:
            if isinstance(event, Line):
                outcome.tail = [*outcome.tail[-39:], event.text]
                if event.level == "error":
                    outcome.errors.append(event.text)
            on_event(event)

    while True:
        try:
            chunk = chunks.get(timeout=poll_s)
        except queue.Empty:
            chunk = ""
        if chunk is None:
            break
        handle(parser.feed(chunk))
        now = time.monotonic()
        if not outcome.canceled and is_canceled():
            outcome.canceled = True
            _signal(proc, signals.pop(0))
            deadline = now + grace_s
        elif deadline is not None and now > deadline and proc.poll() is None and signals:
            _signal(proc, signals.pop(0))
            deadline = now + grace_s
        if proc.poll() is not None:
            # a worker that outlived geohm may hold the pipe open: stop reading soon after
            exited_at = now if exited_at is None else exited_at
            if now - exited_at > 2.0:
                break
    handle(parser.close())
    outcome.returncode = proc.wait()
    reader.join(timeout=1.0)
    if proc.stdout is not None and not reader.is_alive():
        proc.stdout.close()
    return outcome

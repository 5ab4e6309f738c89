"""The command line under interruption and wrong scheduler addresses: one line, no hang.

Ctrl-C is a real SIGINT sent to a real ``geohm demo`` process while it writes its maps;
the scheduler addresses are real listeners on 127.0.0.1 (an HTTP server, a socket that
accepts and never answers, a closed port), each bounded by pytest-timeout.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import rasterio
from typer.testing import CliRunner, Result

from geohm.cli import app
from geohm.synth import make_demo

#: A temporary file of geohm's writers: ``.<name>.<8 hex>.scratch.tif``, ``....tmp.png``.
TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{8}\.(?:scratch|tmp)")


# --------------------------------------------------------------------------- Ctrl-C


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ctrl_c_exits_130_with_one_line_and_no_broken_output(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "geohm.cli", "demo", "--out", str(out), "--size", "64"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Wait until the first map has its final name: the others are being written.
        while not any(not p.name.startswith(".") for p in out.glob("*.tif")):
            if proc.poll() is not None:
                pytest.fail(f"geohm demo ended before it wrote a map: {proc.communicate()}")
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = stderr.decode()
    assert proc.returncode == 130, (stdout.decode(), err)
    assert "Traceback" not in err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("interrupted; no half-written output was left under its final name")
    assert "run the command again" in last
    # Every GeoTIFF under a final name is whole: its header and every pixel read back.
    maps = [p for p in out.rglob("*.tif") if not p.name.startswith(".")]
    assert any(p.parent == out for p in maps)
    for path in maps:
        with rasterio.open(path) as src:
            data = src.read(masked=True)
            assert data.shape == (src.count, src.height, src.width)
        assert data.count() > 0, path  # not an empty shell
    # ... and no temporary file is left behind.
    left = [p.name for p in out.iterdir() if TEMPORARY.match(p.name)]
    assert not left, left


# --------------------------------------------------------------------------- scheduler


class _QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # the server's request log would land in the captured stderr


@contextmanager
def _http_server() -> Iterator[int]:
    """An HTTP server (not dask) on 127.0.0.1; its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def _silent_socket() -> Iterator[int]:
    """A listener that accepts connections and never sends a byte; its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(10)
        server.close()
        for conn in held:
            conn.close()


@contextmanager
def _closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 where nothing listens."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = int(probe.getsockname()[1])
    yield port


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small, valid scene job (so that the batch has something to run)."""
    return make_demo(tmp_path_factory.mktemp("scene"), seed=0, size=64).scene


def _error_line(res: Result) -> str:
    """The one line the command printed on stderr."""
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    assert "Traceback" not in res.output
    return lines[0]


LISTENERS: list[tuple[str, Callable[[], AbstractContextManager[int]], list[str]]] = [
    ("http", _http_server, ["within 2 s", "answered like an HTTP server (HTTP/1."]),
    ("silent", _silent_socket, ["within 2 s", "accepted the connection but never answered"]),
    ("refused", _closed_port, ["nothing listens there (connection refused)"]),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("listener", "words"), [(f, w) for _, f, w in LISTENERS], ids=[i for i, _, _ in LISTENERS]
)
def test_batch_scheduler_that_is_not_dask_is_one_line_not_a_hang(
    scene: Path,
    tmp_path: Path,
    listener: Callable[[], AbstractContextManager[int]],
    words: list[str],
) -> None:
    with listener() as port:
        address = f"tcp://127.0.0.1:{port}"
        res = CliRunner().invoke(
            app,
            ["batch", str(scene), "--scheduler", address, "--connect-timeout", "2"]
            + ["--out", str(tmp_path / "out")],
        )
    assert res.exit_code == 2, res.output
    line = _error_line(res)
    assert line.startswith(f"error: cannot reach the dask scheduler at {address}"), line
    for word in words:
        assert word in line, (word, line)
    assert "tcp://host:8786" in line
    assert not list((tmp_path / "out").rglob("*.tif"))  # no scene ran


@pytest.mark.timeout(60)
def test_batch_scheduler_file_is_checked_the_same_way(scene: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    sched = tmp_path / "scheduler.json"
    with _http_server() as port:
        sched.write_text(json.dumps({"address": f"tcp://127.0.0.1:{port}"}), encoding="utf-8")
        for option in ("--scheduler-file", "--scheduler"):
            res = runner.invoke(
                app,
                ["batch", str(scene), option, str(sched), "--connect-timeout", "2"]
                + ["--out", str(tmp_path / "out")],
            )
            assert res.exit_code == 2, res.output
            assert "answered like an HTTP server" in _error_line(res)
    sched.write_text("not json", encoding="utf-8")
    res = runner.invoke(app, ["batch", str(scene), "--scheduler", str(sched)])
    assert res.exit_code == 2
    assert "is not a dask scheduler file" in _error_line(res)
    res = runner.invoke(app, ["batch", str(scene), "--scheduler-file", str(tmp_path / "no.json")])
    assert res.exit_code == 2 and "Invalid value for '--scheduler-file'" in res.output
    res = runner.invoke(
        app, ["batch", str(scene), "--scheduler-file", str(sched), "--scheduler", "tcp://a:1"]
    )
    assert res.exit_code == 2
    assert "give --scheduler or --scheduler-file, not both" in _error_line(res)

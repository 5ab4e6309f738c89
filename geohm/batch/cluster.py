"""The dask cluster of a batch: a fresh LocalCluster, or a running scheduler, checked.

:func:`dask_client` starts a ``distributed.LocalCluster`` of worker processes (one thread
each) for the batch and stops it after, or connects to a running scheduler given by its
address or scheduler file. A running scheduler must answer dask's handshake in time
(:func:`_check_scheduler`): when it does not, the error says what listens at the address
instead (an HTTP server such as the dashboard, a TLS endpoint, nothing).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from geohm.batch.summary import one_line
from geohm.errors import ConfigError, GeohmError
from geohm.io.text import read_text

__all__ = ["DEFAULT_WORKERS", "dask_client"]

log = logging.getLogger("geohm.batch")

#: Worker processes of the default LocalCluster.
DEFAULT_WORKERS = 2


@contextmanager
def dask_client(
    scheduler: str | None, workers: int | None, timeout: float, connect_timeout: float = 30.0
) -> Iterator[tuple[Any, str]]:
    """A distributed Client: a fresh LocalCluster, or a running scheduler.

    A running scheduler must answer dask's handshake within ``connect_timeout``
    (:func:`_check_scheduler`), then have ``workers`` workers within ``timeout``.

    Parameters
    ----------
    scheduler : str or None
        Address of a running dask scheduler or the path of its scheduler file; None
        starts a LocalCluster.
    workers : int or None
        Worker processes of the LocalCluster (default :data:`DEFAULT_WORKERS`); with
        ``scheduler``, the workers to wait for (default 1).
    timeout : float
        Seconds to wait for the scheduler's workers.
    connect_timeout : float
        Seconds to wait for the scheduler to answer dask's handshake.

    Yields
    ------
    (distributed.Client, str)
        The client, and where the jobs run (for the summary).

    Raises
    ------
    GeohmError
        The scheduler cannot be reached in time or has too few workers.
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
            f"cannot reach the dask scheduler at '{scheduler}': {one_line(exc)}"
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
        seen = _what_answers(host, int(port), timeout) if host else one_line(exc)
        raise GeohmError(f"{where}: {seen}; {_GIVE_ADDRESS}") from None
    except Exception as exc:  # dask's TLS / security settings, ...
        tls = (
            "; set dask's TLS settings (distributed.comm.tls.ca-file, .client.cert, "
            ".client.key: README 'Security')"
            if scheme == "tls"
            else ""
        )
        raise GeohmError(f"{where}: {one_line(exc)}{tls}") from None


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

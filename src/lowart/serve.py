"""Serving: start-up work in this (parent) process, the listening socket, then uvicorn, in this
process or (``WORKERS`` above 1) in worker processes that accept on the inherited socket."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import os
import signal
import socket
import stat
import sys
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from pathlib import Path

import structlog
import uvicorn

from lowart.api.read_timeouts import read_timeout_protocol
from lowart.app import announce_admin_key, create_app, start_services
from lowart.errors import StartupError
from lowart.settings import Settings
from lowart.supervisor import ParentLink, Supervisor
from lowart.telemetry.logging import configure_logging
from lowart.telemetry.metrics import MULTIPROCESS_ENV, forget_process, reset_multiprocess_dir

log = structlog.get_logger()


async def preflight(settings: Settings) -> None:
    """Migrations, key files, the bootstrap admin and the first-run model, done once."""
    services, admin_key = await start_services(settings)
    try:
        if admin_key is not None:
            announce_admin_key(admin_key, sys.stdout)
    finally:
        await services.close()


def _unix_socket(path: Path, mode: int) -> socket.socket:
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise StartupError(f"{path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink()  # stale: nobody listens on it
        except OSError as exc:
            raise StartupError(f"{path} exists and is not a usable socket: {exc}") from exc
        else:
            raise StartupError(f"{path} is in use by a running server; refusing to replace it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    os.chmod(path, mode)
    return sock


def bind(settings: Settings) -> socket.socket:
    """The listening socket, bound here so that workers share it."""
    if settings.server.listen_mode == "UDS":
        sock = _unix_socket(Path(settings.server.uds_path), settings.server.uds_mode)
    else:
        family = socket.AF_INET6 if ":" in settings.server.host else socket.AF_INET
        try:
            sock = socket.create_server(
                (settings.server.host, settings.server.port), family=family, backlog=2048
            )
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.server.host}:{settings.server.port}: {exc}"
            ) from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def describe(sock: socket.socket, settings: Settings) -> str:
    if settings.server.listen_mode == "UDS":
        return f"unix:{Path(settings.server.uds_path).resolve()}"
    host, port = sock.getsockname()[:2]
    return (
        f"http://{settings.server.host if ':' not in settings.server.host else f'[{host}]'}:{port}"
    )


GC_YOUNG_THRESHOLD = 20_000  # a request allocates hundreds of objects: collect less often
STOP_MARGIN_S = 10.0  # past SHUTDOWN_GRACE_S, for a worker to flush usage and close


def tune_gc() -> None:
    """Once the app has started: everything built so far lives as long as the process, so it
    leaves the collector's full passes, which otherwise stall the loop for tens of milliseconds
    under load (measured with ``make bench``: p99 at 64 connections fell from ~130 to ~30 ms)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _announce(address: str) -> None:
    sys.stdout.write(f"Lowart listening on {address}\n")
    sys.stdout.flush()


class _Server(uvicorn.Server):
    """uvicorn, calling ``on_started`` once started and exiting normally after a signal."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._signals = signals

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            tune_gc()
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises a captured signal after its graceful shutdown, which kills the
        # process before the socket file is removed; a signal here only asks for that shutdown.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in self._signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _config(settings: Settings) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings, prepared=True),
        loop="uvloop",
        http=read_timeout_protocol(
            settings.server.header_timeout_s, settings.server.body_timeout_s
        ),
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the gateway never uses client addresses: skip that middleware
        timeout_graceful_shutdown=int(settings.server.shutdown_grace_s) or None,
        timeout_keep_alive=30,
    )


def run_worker(settings: Settings, sock: socket.socket, parent: Connection) -> None:
    """One worker process (spawned by the parent): the app, on the parent's socket."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the parent, which stops us
    configure_logging(settings.log.level, settings.log.format)
    link = ParentLink(parent)
    link.watch()
    server = _Server(_config(settings), link.serving, signals=(signal.SIGTERM,))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _serve_here(settings: Settings, sock: socket.socket) -> int:
    server = _Server(_config(settings), functools.partial(_announce, describe(sock, settings)))
    server.run(sockets=[sock])
    return 0 if server.started else 3


def _serve_workers(settings: Settings, sock: socket.socket) -> int:
    metrics_dir = settings.metrics_dir
    assert metrics_dir is not None
    try:
        reset_multiprocess_dir(metrics_dir)
    except OSError as exc:
        raise StartupError(f"cannot prepare the metrics directory {metrics_dir}: {exc}") from exc
    # prometheus_client reads this when a worker imports it: workers are spawned, so they do
    # import it afresh, after this line.
    os.environ[MULTIPROCESS_ENV] = str(metrics_dir)
    supervisor = Supervisor(
        run_worker,
        (settings, sock),
        settings.server.workers,
        stop_timeout_s=settings.server.shutdown_grace_s + STOP_MARGIN_S,
        on_exit=functools.partial(forget_process, metrics_dir),
    )
    return supervisor.run(on_ready=functools.partial(_announce, describe(sock, settings)))


def serve(settings: Settings) -> int:
    """Run the gateway until SIGTERM or SIGINT; returns the exit code."""
    # Bound first: a start that cannot listen fails before the first-run work, which would
    # otherwise generate (and print) an admin key for a gateway that never served.
    sock = bind(settings)
    try:
        asyncio.run(preflight(settings))
        code = (_serve_workers if settings.server.workers > 1 else _serve_here)(settings, sock)
    finally:
        sock.close()
        if settings.server.listen_mode == "UDS":
            with contextlib.suppress(FileNotFoundError):
                Path(settings.server.uds_path).unlink()
    if code != 0:
        sys.stderr.write("lowart: error: the gateway failed to start (see the log above)\n")
    return code

"""Run any ASGI app on uvicorn on a free local port, in the current loop or in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT = 10.0
_POLL = 0.005


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the process's signal handlers alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install nothing: the test process keeps its own Ctrl-C behaviour."""
        yield


def _server(app: ASGIApp, host: str, port: int, graceful: int) -> _Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="auto",
        timeout_graceful_shutdown=graceful,
    )
    return _Server(config)


async def _serve(server: uvicorn.Server) -> None:
    """Serve until told to exit; uvicorn's ``sys.exit`` on a failed start becomes an error."""
    try:
        await server.serve()
    except SystemExit as exc:
        raise RuntimeError(f"uvicorn failed to start (exit code {exc.code})") from exc


def _bound_port(server: uvicorn.Server) -> int:
    port: int = server.servers[0].sockets[0].getsockname()[1]
    return port


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class RunningServer:
    """A server running as a task of the current event loop."""

    server: uvicorn.Server
    host: str
    port: int
    task: asyncio.Task[None]

    @property
    def base_url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        return _base_url(self.host, self.port)

    async def stop(self) -> None:
        """Shut the server down and wait for it to finish."""
        self.server.should_exit = True
        await self.task

    async def __aenter__(self) -> RunningServer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def serve_fake(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, graceful: int = 5
) -> RunningServer:
    """Start ``app`` on uvicorn in this loop and return once it accepts connections."""
    server = _server(app, host, port, graceful)
    task = asyncio.create_task(_serve(server), name=f"uvicorn {host}:{port}")
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if task.done():
            await task
            raise RuntimeError("uvicorn stopped before it started")
        if time.monotonic() > deadline:
            server.should_exit = True
            await task
            raise RuntimeError("uvicorn did not start in time")
        await asyncio.sleep(_POLL)
    return RunningServer(server, host, _bound_port(server), task)


@dataclass
class ThreadedServer:
    """A server running in a daemon thread with its own event loop, for synchronous tests."""

    server: uvicorn.Server
    host: str
    port: int
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        """``http://host:port``, without a trailing slash."""
        return _base_url(self.host, self.port)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down and wait for its thread to end."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _thread_main(server: uvicorn.Server, failures: list[RuntimeError]) -> None:
    try:
        asyncio.run(_serve(server))
    except RuntimeError as exc:  # reported by run_in_thread, which is waiting for the start
        failures.append(exc)


def run_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, graceful: int = 5
) -> ThreadedServer:
    """Start ``app`` on uvicorn in a daemon thread and return once it accepts connections."""
    server = _server(app, host, port, graceful)
    failures: list[RuntimeError] = []
    thread = threading.Thread(
        target=_thread_main, args=(server, failures), name=f"uvicorn {host}:{port}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive():
            cause = failures[0] if failures else None
            raise RuntimeError("uvicorn stopped before it started") from cause
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(START_TIMEOUT)
            raise RuntimeError("uvicorn did not start in time")
        time.sleep(_POLL)
    return ThreadedServer(server, host, _bound_port(server), thread)

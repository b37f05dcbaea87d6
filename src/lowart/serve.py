"""Serving: start-up work in this (parent) process, the listening socket, then uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import sys
from pathlib import Path

import structlog
import uvicorn

from lowart.app import create_app, start_services
from lowart.errors import StartupError
from lowart.settings import Settings

log = structlog.get_logger()


async def preflight(settings: Settings) -> None:
    """Migrations, key files, the bootstrap admin and the first-run model, done once."""
    services, admin_key = await start_services(settings)
    try:
        if admin_key is not None:
            sys.stdout.write(f"Generated admin key (shown once, store it now): {admin_key}\n")
            sys.stdout.flush()
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
    if settings.listen_mode == "UDS":
        sock = _unix_socket(Path(settings.uds_path), settings.uds_mode)
    else:
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        try:
            sock = socket.create_server((settings.host, settings.port), family=family, backlog=2048)
        except OSError as exc:
            raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {exc}") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def describe(sock: socket.socket, settings: Settings) -> str:
    if settings.listen_mode == "UDS":
        return f"unix:{Path(settings.uds_path).resolve()}"
    host, port = sock.getsockname()[:2]
    return f"http://{settings.host if ':' not in settings.host else f'[{host}]'}:{port}"


def serve(settings: Settings) -> int:
    """Run the gateway until SIGTERM or SIGINT; returns the exit code."""
    asyncio.run(preflight(settings))
    sock = bind(settings)
    config = uvicorn.Config(
        create_app(settings),
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or None,
        timeout_keep_alive=30,
    )
    server = uvicorn.Server(config)
    sys.stdout.write(f"Lowart listening on {describe(sock, settings)}\n")
    sys.stdout.flush()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        if settings.listen_mode == "UDS":
            with contextlib.suppress(FileNotFoundError):
                Path(settings.uds_path).unlink()
    return 0 if server.started else 3

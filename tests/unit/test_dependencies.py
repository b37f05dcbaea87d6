"""What the gateway takes from its dependencies, checked so an upgrade or a new import that breaks
it fails here, by name, rather than somewhere downstream.

- Every package ``src/lowart`` imports is declared in pyproject's ``dependencies``.
- The import-linter contract that keeps ``lowart.testing`` out of the product names every
  product module (a module added later is covered, or this fails).
- uvicorn (pinned to a minor in pyproject): the ``HttpToolsProtocol`` hooks that
  ``api/read_timeouts.py`` overrides are still called, and the attributes it reads still exist.
- mcp: the stream protocols ``tools/mcp_session.py`` declares cover the SDK's, found from the
  public ``mcp.client.Transport``.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import inspect
import math
import pkgutil
import re
import socket
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol, get_args, get_origin

import pytest
import uvicorn
from mcp.client import Transport
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

import lowart
from lowart.api.read_timeouts import read_timeout_protocol
from lowart.tools import mcp_session

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SRC = Path(lowart.__path__[0])


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                yield name.partition(".")[0], path


def test_every_imported_package_is_declared() -> None:
    declared = {
        _normal(re.split(r"[\s<>=!~;\[]", dep, maxsplit=1)[0])
        for dep in PYPROJECT["project"]["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    undeclared: dict[str, str] = {}
    for module, path in _imported_top_modules():
        if module in sys.stdlib_module_names or module == "lowart":
            continue
        names = {_normal(d) for d in distributions.get(module, [module])}
        if not names & declared:
            undeclared.setdefault(module, str(path.relative_to(SRC)))
    assert undeclared == {}, f"imported but not in pyproject dependencies: {undeclared}"


def test_the_testing_contract_covers_every_product_module() -> None:
    contracts = PYPROJECT["tool"]["importlinter"]["contracts"]
    (contract,) = [c for c in contracts if c.get("forbidden_modules") == ["lowart.testing"]]
    product = {f"lowart.{m.name}" for m in pkgutil.iter_modules([str(SRC)])} - {"lowart.testing"}
    assert set(contract["source_modules"]) == product


# --- uvicorn: the internals api/read_timeouts.py builds on -------------------------------------

HOOKS = (
    "connection_made",
    "connection_lost",
    "on_message_begin",
    "on_headers_complete",
    "on_body",
    "on_message_complete",
)
HEADER_TIMEOUT_S = 5.0


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    while (message := await receive())["type"] == "http.request" and message["more_body"]:
        pass
    if message["type"] == "http.disconnect":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


class Connection:
    """One connection of the protocol class over a socket pair, driven by hand."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.peer, ours = socket.socketpair()
        self.peer.setblocking(False)
        # As uvicorn.Server.startup's create_protocol makes one per accepted connection.
        self.protocol: Any = config.http_protocol_class(  # type: ignore[call-arg]
            config=config, server_state=ServerState(), app_state={}
        )
        self._ours = ours

    async def open(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.connect_accepted_socket(lambda: self.protocol, self._ours)

    def left(self) -> float:
        """Seconds to the read deadline."""
        return float(self.protocol.read_deadline - self.protocol.loop.time())

    async def received(self, until: bytes = b"") -> bytes:
        """The bytes the protocol sends, up to ``until`` or else until it closes the connection."""
        loop, data = asyncio.get_running_loop(), b""
        while not (until and data.endswith(until)):
            if not (chunk := await loop.sock_recv(self.peer, 4096)):
                self.peer.close()
                break
            data += chunk
        return data


@pytest.fixture
async def config() -> AsyncIterator[uvicorn.Config]:
    cls = read_timeout_protocol(header_timeout_s=HEADER_TIMEOUT_S, body_timeout_s=0.0)
    config = uvicorn.Config(_app, http=cls, lifespan="off", log_config=None, access_log=False)
    config.load()
    yield config
    task = cls.sweeper._task  # type: ignore[attr-defined]
    if task is not None:
        task.cancel()


def test_the_overridden_hooks_exist_in_uvicorn() -> None:
    for name in HOOKS:
        assert callable(getattr(HttpToolsProtocol, name, None)), f"uvicorn lost {name}"
    ours = inspect.signature(read_timeout_protocol(1, 1).on_body)
    assert ours == inspect.signature(HttpToolsProtocol.on_body)


async def test_uvicorn_calls_the_hooks_the_read_timeouts_rely_on(config: uvicorn.Config) -> None:
    conn = Connection(config)
    await conn.open()
    assert conn.protocol in conn.protocol.sweeper.open  # connection_made
    assert 0 < conn.left() <= HEADER_TIMEOUT_S
    conn.protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
    assert conn.left() <= 0  # on_headers_complete: the body's deadline (0 s, plus 2 bytes' time)
    conn.protocol.data_received(b"cd")
    assert conn.protocol.read_deadline == math.inf  # on_message_complete
    assert (await conn.received(until=b"\r\n\r\nok")).startswith(b"HTTP/1.1 200 OK\r\n")
    conn.protocol.data_received(b"GET / HTTP/1.1\r\n")
    assert 0 < conn.left() <= HEADER_TIMEOUT_S  # on_message_begin, on a kept-alive connection
    conn.protocol.expired()  # while reading headers: 408, and the connection is closed
    assert (await conn.received()).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert conn.protocol not in conn.protocol.sweeper.open  # connection_lost


async def test_a_body_is_timed_by_the_bytes_uvicorn_hands_over(config: uvicorn.Config) -> None:
    kept, cut = Connection(config), Connection(config)
    for conn in (kept, cut):
        await conn.open()
        conn.protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n")
    kept.protocol.data_received(b"x" * 1024)  # on_body: one second more at 1 KiB/s
    kept.protocol.expired()
    assert 0.5 < kept.left() <= 1.0 and not kept.protocol.transport.is_closing()
    cut.protocol.expired()  # no byte of the body: 408 (cycle.response_started is read)
    assert (await cut.received()).startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    kept.protocol.transport.close()
    assert await kept.received() == b""


# --- mcp: the stream types, which the SDK names only in private modules ------------------------


def _sdk_streams() -> tuple[type, type]:
    """The read and write stream protocols a ``Transport`` yields, from its public declaration."""
    (manager,) = [
        base
        for base in Transport.__orig_bases__  # type: ignore[attr-defined]
        if get_origin(base) is AbstractAsyncContextManager
    ]
    read, write = get_args(get_args(manager)[0])
    return get_origin(read), get_origin(write)


class _Empty(Protocol):
    pass


def _methods(cls: type) -> set[str]:
    """The methods a class declares itself, beyond what any protocol class has."""
    own = {name for name, value in vars(cls).items() if inspect.isfunction(value)}
    return own - set(vars(_Empty))


def test_the_session_streams_cover_the_sdk_stream_protocols() -> None:
    read, write = _sdk_streams()
    assert _methods(read) <= _methods(mcp_session._WatchedReadStream)
    assert _methods(write) <= _methods(mcp_session._Sender)

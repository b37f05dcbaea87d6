"""One MCP server's session, supervised: connect, list the tools, call them, reconnect.

Only ``mcp.py`` uses this module, and imports it when the first server starts.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, BinaryIO, Protocol, Self

import anyio
import httpx2
import structlog
from mcp import Client, MCPError, StdioServerParameters, stdio_client
from mcp import types as mcp_types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from lowart.security.connect_guard import guarded_transport
from lowart.security.ssrf import DestinationPolicy
from lowart.tools.mcp_server import (
    ServerConfig,
    ServerStatus,
    SessionOptions,
    ToolCallError,
    ToolInfo,
)

log = structlog.get_logger()

_MAX_BACKOFF_S = 60.0
_STABLE_RUN_S = 60.0  # a session that lived this long resets the backoff
_LIST_PAGE_CAP = 100  # a paginator that never ends cannot hang a refresh
_STDERR_LINE_MAX = 4000
_STDERR_DRAIN_S = 1.0  # time for the last stderr lines once the process is gone
# Failures of the server or the network: one log line, no traceback.
_EXPECTED = (OSError, MCPError, TimeoutError, httpx2.HTTPError)

Received = SessionMessage | Exception


# The SDK's streams, by what this module uses of them. mcp exports ``Transport`` (what ``Client``
# accepts) but names its stream types only in private modules: these protocols match them
# structurally, so mypy checks them against the installed SDK and no private name is imported.
class _Receiver(Protocol):
    """The read stream a transport yields."""

    async def receive(self) -> Received: ...
    async def aclose(self) -> None: ...
    async def __anext__(self) -> Received: ...


class _Sender(Protocol):
    """The write stream a transport yields, passed through as it is."""

    async def send(self, item: SessionMessage, /) -> None: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None: ...


Streams = tuple["_WatchedReadStream", _Sender]


def result_text(result: mcp_types.CallToolResult) -> str:
    """The text a model sees for a tool result: text parts joined, other parts summarised."""
    parts = [_content_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    text = "\n".join(parts)
    return f"Tool error: {text or 'the tool failed without a message'}" if result.is_error else text


def _content_text(block: mcp_types.ContentBlock) -> str:
    if isinstance(block, mcp_types.TextContent):
        return block.text
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return f"[{block.type}: {block.mime_type}, {len(block.data) * 3 // 4} bytes]"
    if isinstance(block, mcp_types.ResourceLink):
        return f"[resource link: {block.uri}]"
    resource = block.resource
    if isinstance(resource, mcp_types.TextResourceContents):
        return resource.text
    return f"[resource: {resource.uri}, {resource.mime_type or 'binary'}]"


class Session:
    """One registered server: its supervisor task, its live session and its state."""

    def __init__(self, config: ServerConfig, options: SessionOptions) -> None:
        self.config = config
        self.status: ServerStatus = "starting"
        self.last_error: str | None = None
        self.tools: list[ToolInfo] = []
        self._options = options
        self._client: Client | None = None
        self._up = False  # whether the current attempt reached "running"
        self._settled = asyncio.Event()  # set while the status is not "starting"
        self._scope = anyio.CancelScope()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Launch the supervisor; return once its first attempt has settled."""
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._supervise(), name=f"mcp-server:{self.config.name}")
        await self._settled.wait()

    async def client(self) -> Client:
        """The live session, once a start or restart under way has settled."""
        await self._settled.wait()
        if self._client is None:
            raise ToolCallError(f"MCP server {self.config.name!r} is down: {self.last_error}")
        return self._client

    async def call(self, tool: str, arguments: dict[str, Any]) -> str:
        """Run one tool and return its text, waiting (within the timeout) for a restart."""
        timeout = self._options.call_timeout_s
        where = f"MCP tool {tool!r} on server {self.config.name!r}"
        try:
            with anyio.fail_after(timeout):
                client = await self.client()
                result = await client.call_tool(tool, arguments)
        except TimeoutError as exc:
            raise ToolCallError(f"{where} timed out after {timeout:g} s.") from exc
        except MCPError as exc:
            if exc.code != mcp_types.CONNECTION_CLOSED:
                raise ToolCallError(f"{where} failed: {exc.message}") from exc
            self.lost(client)
            message = f"{where} failed: the server went away during the call (restarting it)."
            raise ToolCallError(message) from exc
        except (ValidationError, RuntimeError) as exc:
            raise ToolCallError(f"{where} failed: {exc}") from exc
        return result_text(result)

    def lost(self, client: Client) -> None:
        """A call saw the connection end: wait for the restart, not on the dead session."""
        if self._client is client:
            self._client = None
            self._enter("starting", "the connection was lost")

    async def stop(self) -> None:
        # An anyio cancellation, not task.cancel(): the SDK shields the subprocess shutdown
        # (stdin close, wait, kill) from the former only.
        self._scope.cancel()
        if self._task is not None:
            await self._task
        self._client = None
        self._enter("failed", "stopped")

    def _enter(self, status: ServerStatus, error: str | None = None) -> None:
        self.status = status
        if error is not None:
            self.last_error = error
        if status == "starting":
            self._settled.clear()
        else:
            self._settled.set()

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        with self._scope:
            while True:
                began = loop.time()
                await self._attempt()
                if loop.time() - began >= _STABLE_RUN_S:
                    failures = 0
                delay = min(self._options.restart_backoff_s * 2**failures, _MAX_BACKOFF_S)
                failures += 1
                log.info("mcp_server_restart_scheduled", server=self.config.name, delay_s=delay)
                await anyio.sleep(delay)

    async def _attempt(self) -> None:
        """Run one session until its connection ends, and record why it ended."""
        self._up = False
        self._enter("starting")
        try:
            await self._run_session()
        except Exception as exc:  # the supervisor outlives any failure of its server
            reason = _describe(exc)
            trace = not all(isinstance(leaf, _EXPECTED) for leaf in _leaves(exc))
            event = "mcp_server_lost" if self._up else "mcp_server_start_failed"
            log.warning(event, server=self.config.name, error=reason, exc_info=trace)
            self._enter("starting" if self._up else "failed", reason)
        else:
            log.warning("mcp_server_exited", server=self.config.name)
            self._enter("starting", "the server exited")
        finally:
            self._client = None

    async def _run_session(self) -> None:
        closed = anyio.Event()
        timeout = self._options.start_timeout_s
        # Bounds connecting and listing, then lifted: a fail_after would exit before the SDK's
        # task groups do.
        connect = (
            _stdio_transport
            if self.config.transport == "stdio"
            else functools.partial(_http_transport, destinations=self._options.destinations)
        )
        with anyio.CancelScope(deadline=anyio.current_time() + timeout) as startup:
            async with Client(connect(self.config, closed), mode="auto", cache=None) as client:
                self.tools = await _list_tools(client)
                startup.deadline = math.inf
                self._client, self._up = client, True
                self._enter("running")
                log.info("mcp_server_started", server=self.config.name, tools=len(self.tools))
                await self._watch(client, closed)
        if startup.cancelled_caught:
            raise TimeoutError(f"the server did not start within {timeout:g} s")

    async def _watch(self, client: Client, closed: anyio.Event) -> None:
        """Refresh the tool list every ``list_refresh_s`` until the connection ends."""
        while True:
            with anyio.move_on_after(self._options.list_refresh_s):
                await closed.wait()
                return
            try:
                with anyio.fail_after(self._options.start_timeout_s):
                    self.tools = await _list_tools(client)
            except (MCPError, TimeoutError, ValidationError) as exc:
                error = _describe(exc)
                log.warning("mcp_tools_refresh_failed", server=self.config.name, error=error)


async def _list_tools(client: Client) -> list[ToolInfo]:
    tools: list[ToolInfo] = []
    cursor: str | None = None
    for _ in range(_LIST_PAGE_CAP):
        page = await client.list_tools(cursor=cursor)
        tools += [ToolInfo(t.name, t.description or "", dict(t.input_schema)) for t in page.tools]
        if (cursor := page.next_cursor) is None:
            break
    return tools


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _describe(exc: BaseException) -> str:
    """A one-line reason: each leaf of an exception group as ``Type: message``."""
    return "; ".join(f"{type(leaf).__name__}: {leaf}" for leaf in _leaves(exc))


@asynccontextmanager
async def _stdio_transport(config: ServerConfig, closed: anyio.Event) -> AsyncIterator[Streams]:
    """Spawn the server with its stderr on a pipe whose lines go to the log."""
    params = StdioServerParameters(
        command=config.command or "", args=list(config.args), env=dict(config.env)
    )
    read_fd, write_fd = os.pipe()  # the child's stderr
    pipe, errlog = os.fdopen(read_fd, "rb", buffering=0), os.fdopen(write_fd, "w")
    drained = anyio.Event()
    with errlog, pipe:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_log_stderr, config.name, pipe, drained)
            async with stdio_client(params, errlog=errlog) as (read, write):
                errlog.close()  # the child has its own copy; ours would hold the pipe open
                yield _WatchedReadStream(read, closed), write
            with anyio.move_on_after(_STDERR_DRAIN_S):
                await drained.wait()
            tg.cancel_scope.cancel()


@asynccontextmanager
async def _http_transport(
    config: ServerConfig, closed: anyio.Event, *, destinations: DestinationPolicy
) -> AsyncIterator[Streams]:
    timeout = httpx2.Timeout(30.0, read=300.0)  # the server may hold a response stream open
    transport = guarded_transport(destinations)  # SSRF policy at connect; never redirected
    async with (
        httpx2.AsyncClient(
            headers=dict(config.headers), timeout=timeout, transport=transport, trust_env=False
        ) as http,
        streamable_http_client(config.url or "", http_client=http) as (read, write),
    ):
        yield _WatchedReadStream(read, closed), write


async def _log_stderr(server: str, pipe: BinaryIO, drained: anyio.Event) -> None:
    """Log each line the child writes to its stderr; an over-long line is logged in pieces."""
    os.set_blocking(pipe.fileno(), False)
    pending = b""
    try:
        while True:
            await anyio.wait_readable(pipe)
            if (chunk := pipe.read(_STDERR_LINE_MAX)) is None:
                continue  # woken without data
            *lines, pending = (pending + chunk).split(b"\n")
            if not chunk or len(pending) >= _STDERR_LINE_MAX:
                lines, pending = [*lines, pending], b""
            for line in lines:
                for at in range(0, len(line), _STDERR_LINE_MAX):
                    text = line[at : at + _STDERR_LINE_MAX].decode("utf-8", errors="replace")
                    log.info("mcp_server_stderr", server=server, line=text.rstrip())
            if not chunk:  # the child (and any heir of its stderr) is gone
                return
    finally:
        drained.set()


class _WatchedReadStream:
    """A read stream that sets ``closed`` when the session closes it, as it does once the
    connection ends (a dead process, a torn-down HTTP transport), even while no call runs."""

    def __init__(self, inner: _Receiver, closed: anyio.Event):
        self._inner = inner
        self._closed = closed

    @property
    def last_context(self) -> object:
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Received:
        return await self._inner.receive()

    async def aclose(self) -> None:
        self._closed.set()
        await self._inner.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> Received:
        return await self._inner.__anext__()

    async def __aenter__(self) -> _WatchedReadStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

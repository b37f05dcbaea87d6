"""A TCP fault proxy for tests: forwards to an upstream and breaks the response side on demand.

Modes, toxiproxy-style, written ``kind`` or ``kind:amount`` (docs/reliability.md, "Harness"):

- ``pass``: forward both ways.
- ``refuse``: stop listening, so a connect fails with ECONNREFUSED (aiohttp
  ``ClientConnectorError``, httpx ``ConnectError``): a request that surely never left. Leaving the
  mode listens on the same port again.
- ``limit_data:<n>``: forward n response bytes, then close the client side cleanly (FIN).
- ``reset_after:<n>``: forward n response bytes, then reset the client side (RST, SO_LINGER 0).
- ``stall_after:<n>``: forward n response bytes, then nothing, holding the connection open until
  the client leaves or the proxy stops (a blackhole).
- ``slice:<n>``: write the response in pieces of at most n bytes, each flushed before the next.
- ``latency:<ms>``: wait ms before writing each response chunk read from the upstream (chunks
  that arrive meanwhile are written together after the next wait).

The request side is always forwarded in full. The mode is read when a connection is accepted, so a
connection kept alive in a client's pool keeps the mode it was accepted under: call
``close_connections()`` after switching to make such a client reconnect.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import math
import socket
import struct
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

START_TIMEOUT = 10.0
_READ = 64 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)  # linger on with 0 s: close() sends RST, not FIN


class FaultKind(enum.StrEnum):
    """The proxy's modes; see the module docstring."""

    # Bandit's B105 reads "pass" as a password: it is the mode that passes traffic through.
    PASS = "pass"  # nosec B105
    REFUSE = "refuse"
    LIMIT_DATA = "limit_data"
    RESET_AFTER = "reset_after"
    STALL_AFTER = "stall_after"
    SLICE = "slice"
    LATENCY = "latency"


_PLAIN = frozenset({FaultKind.PASS, FaultKind.REFUSE})
_CUTS = frozenset({FaultKind.LIMIT_DATA, FaultKind.RESET_AFTER, FaultKind.STALL_AFTER})


@dataclass(frozen=True, slots=True)
class Fault:
    """One mode: its kind and amount (bytes, or milliseconds for ``latency``)."""

    kind: FaultKind = FaultKind.PASS
    amount: int = 0

    def __post_init__(self) -> None:
        if self.kind in _PLAIN and self.amount:
            raise ValueError(f"{self.kind} takes no amount")
        if self.amount < (1 if self.kind == FaultKind.SLICE else 0):
            raise ValueError(f"{self.kind} amount out of range: {self.amount}")

    def __str__(self) -> str:
        return str(self.kind) if self.kind in _PLAIN else f"{self.kind}:{self.amount}"


def parse_fault(spec: str) -> Fault:
    """Parse ``kind`` or ``kind:amount``, such as ``slice:7``; raises ``ValueError``."""
    name, _, amount = spec.partition(":")
    kind = FaultKind(name)
    if kind not in _PLAIN and not amount:
        raise ValueError(f"{kind} needs an amount: {spec!r}")
    return Fault(kind, int(amount) if amount else 0)


class FaultProxy:
    """An asyncio TCP proxy on 127.0.0.1 applying its current `Fault` to each accepted connection.

    ``mode`` may be set from any thread; ``connections`` counts accepted connections.
    """

    def __init__(
        self, upstream_host: str, upstream_port: int, mode: Fault | str = "pass", port: int = 0
    ) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = "127.0.0.1"
        self.port = port
        self.connections = 0
        self._mode = _as_fault(mode)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0  # the loop's thread
        self._listener: socket.socket | None = None
        self._open: dict[asyncio.Task[None], socket.socket] = {}

    @property
    def mode(self) -> Fault:
        """The fault applied to connections accepted from now on."""
        return self._mode

    @mode.setter
    def mode(self, value: Fault | str) -> None:
        self._mode = _as_fault(value)
        if self._loop is None:
            return
        if threading.get_ident() == self._thread:
            self._follow_mode()
        else:  # wait, so that a connect right after the switch meets the new listener state
            call = asyncio.run_coroutine_threadsafe(_call(self._follow_mode), self._loop)
            call.result(START_TIMEOUT)

    def base_url(self, path: str = "") -> str:
        """``http://127.0.0.1:PORT`` followed by ``path``."""
        return f"http://{self.host}:{self.port}{path}"

    async def start(self) -> None:
        """Listen in the running loop (a port 0 becomes a free port, kept until `stop`)."""
        self._loop, self._thread = asyncio.get_running_loop(), threading.get_ident()
        self._listen()
        self._follow_mode()

    async def stop(self) -> None:
        """Stop listening and close every open connection."""
        if self._listener is not None:
            self._unlisten()
        await self.close_connections()
        self._loop = None

    async def close_connections(self) -> None:
        """Close the open connections, so that pooled clients reconnect under the current mode."""
        tasks = dict(self._open)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in tasks.values():  # a task cancelled before it ran never wrapped its socket
            conn.close()

    @classmethod
    def in_thread(
        cls, upstream_host: str, upstream_port: int, mode: Fault | str = "pass"
    ) -> ProxyThread:
        """Start a proxy in a daemon thread with its own loop, for synchronous tests."""
        proxy = cls(upstream_host, upstream_port, mode)
        started: concurrent.futures.Future[asyncio.AbstractEventLoop] = concurrent.futures.Future()
        thread = threading.Thread(
            target=_thread_main, args=(proxy, started), name="fault proxy", daemon=True
        )
        thread.start()
        return ProxyThread(proxy, started.result(START_TIMEOUT), thread)

    def _follow_mode(self) -> None:
        """Listen unless the mode is ``refuse``; runs in the proxy's loop."""
        refusing = self._mode.kind == FaultKind.REFUSE
        if refusing and self._listener is not None:
            self._unlisten()
        elif not refusing and self._listener is None:
            self._listen()

    def _listen(self) -> None:
        assert self._loop is not None
        listener = socket.create_server((self.host, self.port))  # sets SO_REUSEADDR on POSIX
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._loop.add_reader(listener, self._accept)

    def _unlisten(self) -> None:
        assert self._loop is not None and self._listener is not None
        self._loop.remove_reader(self._listener)
        self._listener.close()
        self._listener = None

    def _accept(self) -> None:
        assert self._loop is not None and self._listener is not None
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.setblocking(False)
        self.connections += 1
        task = self._loop.create_task(self._serve(conn, self._mode))
        self._open[task] = conn
        task.add_done_callback(self._open.pop)

    async def _serve(self, conn: socket.socket, fault: Fault) -> None:
        reader, writer = await asyncio.open_connection(sock=conn)
        try:
            await self._relay(reader, writer, fault)
        finally:
            await _close(writer)

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, fault: Fault
    ) -> None:
        writer.transport.set_write_buffer_limits(high=0)  # drain() waits for an empty buffer
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(writer)
            return
        try:
            await _race(_copy(reader, up_writer), _respond(up_reader, writer, fault))
        finally:
            await _close(up_writer)


@dataclass
class ProxyThread:
    """A `FaultProxy` serving from a daemon thread; ``proxy.mode`` may be set from the test."""

    proxy: FaultProxy
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def close_connections(self, timeout: float = 10.0) -> None:
        """`FaultProxy.close_connections` from another thread; returns once they are closed."""
        asyncio.run_coroutine_threadsafe(self.proxy.close_connections(), self.loop).result(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the proxy, close its connections and wait for the thread to end."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout)

    def __enter__(self) -> ProxyThread:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _as_fault(value: Fault | str) -> Fault:
    return value if isinstance(value, Fault) else parse_fault(value)


async def _call(function: Callable[[], None]) -> None:
    function()


def _thread_main(
    proxy: FaultProxy, started: concurrent.futures.Future[asyncio.AbstractEventLoop]
) -> None:
    with asyncio.Runner() as runner:
        try:
            runner.run(proxy.start())
        except BaseException as exc:
            started.set_exception(exc)
            raise
        started.set_result(runner.get_loop())
        runner.get_loop().run_forever()  # until ProxyThread.stop stops the loop
        runner.run(proxy.stop())


async def _race(*coroutines: Coroutine[Any, Any, None]) -> None:
    """Run the coroutines until the first one ends, then cancel the others."""
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # a bug in a pump surfaces instead of passing for a close
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while chunk := await source.read(_READ):
            sink.write(chunk)
            await sink.drain()


async def _respond(source: asyncio.StreamReader, sink: asyncio.StreamWriter, fault: Fault) -> None:
    """Copy the response side under ``fault``; returning closes the client side with a FIN."""
    budget = fault.amount if fault.kind in _CUTS else math.inf  # bytes to forward before a cut
    with contextlib.suppress(OSError):
        while chunk := await source.read(_READ):
            if budget < len(chunk):  # the upstream sends past the budget: cut here
                await _send(sink, chunk[: int(budget)], fault)
                await _cut(sink, fault.kind)
                return
            budget -= len(chunk)
            await _send(sink, chunk, fault)


async def _cut(sink: asyncio.StreamWriter, kind: FaultKind) -> None:
    if kind == FaultKind.RESET_AFTER:
        _reset(sink)
    elif kind == FaultKind.STALL_AFTER:
        await asyncio.get_running_loop().create_future()  # until cancelled


async def _send(sink: asyncio.StreamWriter, chunk: bytes, fault: Fault) -> None:
    if fault.kind == FaultKind.LATENCY:
        await asyncio.sleep(fault.amount / 1000)
    step = fault.amount if fault.kind == FaultKind.SLICE else max(len(chunk), 1)
    for start in range(0, len(chunk), step):
        sink.write(chunk[start : start + step])
        await sink.drain()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with an RST: the peer reads ECONNRESET after the data it has."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):  # already closed by the peer: nothing to reset
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()

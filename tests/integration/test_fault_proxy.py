"""The fault proxy in front of the fake OpenAI upstream: what each mode does to a streaming client.

httpx runs against a proxy in a thread (sync tests), aiohttp the way the gateway reads upstreams
(``providers/http.py``: ``readany()`` under ``asyncio.timeout``) against a proxy in the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
import pytest

from lowart.formats.sse import SSEParser
from lowart.testing.fault_proxy import Fault, FaultKind, FaultProxy, ProxyThread, parse_fault
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import ThreadedServer, run_in_thread

WORDS = [f"w{i}" for i in range(60)]
ANSWER = "Hello from fake: " + " ".join(WORDS)
BODY = {
    "model": "chunkdelay-5",
    "stream": True,
    "messages": [{"role": "user", "content": " ".join(WORDS)}],
}
CHUNKS = 2 + len(ANSWER.split())  # the role chunk, one per word, the finish chunk
PATH = "/v1/chat/completions"


@pytest.fixture(scope="module")
def upstream() -> Iterator[ThreadedServer]:
    with run_in_thread(FakeOpenAI()) as server:
        yield server


@pytest.fixture
def proxy(upstream: ThreadedServer) -> Iterator[ProxyThread]:
    with FaultProxy.in_thread(upstream.host, upstream.port) as handle:
        yield handle


def _stream(
    client: httpx.Client, url: str, received: list[bytes] | None = None, read: float = 5.0
) -> list[bytes]:
    """POST the streaming request; the raw body reads land in ``received`` as they arrive."""
    received = [] if received is None else received
    timeout = httpx.Timeout(5.0, read=read)
    with client.stream("POST", url, json=BODY, timeout=timeout) as response:
        assert response.status_code == 200
        received.extend(response.iter_raw())
    return received


def _events(reads: list[bytes]) -> list[bytes]:
    """The ``data`` of each complete event, with the per-request completion id removed."""
    parser = SSEParser()
    events = [event.data for read in reads for event in parser.feed(read)]
    return [_without_id(data) for data in events]


def _without_id(data: bytes) -> bytes:
    if data == b"[DONE]":
        return data
    chunk = json.loads(data)
    chunk.pop("id")
    return json.dumps(chunk).encode()


def _text(events: list[bytes]) -> str:
    chunks = [json.loads(data) for data in events if data != b"[DONE]"]
    return "".join(chunk["choices"][0]["delta"].get("content") or "" for chunk in chunks)


def _run(proxy: ProxyThread, mode: str, read: float = 5.0) -> tuple[list[bytes], Exception]:
    """Stream through ``mode`` on a fresh client; returns the reads and the error raised."""
    proxy.proxy.mode = mode
    received: list[bytes] = []
    with httpx.Client() as client, pytest.raises(httpx.TransportError) as caught:
        _stream(client, proxy.proxy.base_url(PATH), received, read)
    return received, caught.value


def test_parse_fault() -> None:
    assert parse_fault("slice:7") == Fault(FaultKind.SLICE, 7)
    assert parse_fault("refuse") == Fault(FaultKind.REFUSE)
    assert str(parse_fault("latency:50")) == "latency:50"
    for bad in ("slice:0", "slice", "refuse:1", "limit_data:-1", "bandwidth:5", "latency:x"):
        with pytest.raises(ValueError, match=r"\S"):
            parse_fault(bad)


def test_pass_delivers_the_whole_stream(proxy: ProxyThread) -> None:
    with httpx.Client() as client:
        events = _events(_stream(client, proxy.proxy.base_url(PATH)))
    assert events[-1] == b"[DONE]"
    assert len(events) == CHUNKS + 1
    assert _text(events) == ANSWER
    assert proxy.proxy.connections == 1
    assert proxy.proxy.base_url("/x") == f"http://127.0.0.1:{proxy.proxy.port}/x"


def test_slice_fragments_lines_but_not_events(proxy: ProxyThread) -> None:
    with httpx.Client() as client:
        whole = _stream(client, proxy.proxy.base_url(PATH))
        proxy.proxy.mode = "slice:7"
        proxy.close_connections()  # the pooled connection was accepted under ``pass``
        sliced = _stream(client, proxy.proxy.base_url(PATH))
    assert _events(sliced) == _events(whole)
    assert any(not read.endswith(b"\n\n") for read in sliced)  # some read ended mid-event
    assert proxy.proxy.connections == 2


def test_limit_data_closes_mid_body(proxy: ProxyThread) -> None:
    received, error = _run(proxy, "limit_data:2000")
    assert type(error) is httpx.RemoteProtocolError
    assert "incomplete chunked read" in str(error)
    events = _events(received)
    assert 0 < len(events) < CHUNKS
    assert b"[DONE]" not in events
    assert 0 < sum(map(len, received)) < 2000  # the response head took the rest


def test_reset_after_resets_mid_body(proxy: ProxyThread) -> None:
    received, error = _run(proxy, "reset_after:2000")
    assert type(error) is httpx.ReadError
    assert "[Errno 104] Connection reset by peer" in str(error)
    events = _events(received)
    assert 0 < len(events) < CHUNKS
    assert b"[DONE]" not in events


def test_stall_after_blackholes_until_the_read_timeout(proxy: ProxyThread) -> None:
    received, error = _run(proxy, "stall_after:2000", read=0.5)
    assert type(error) is httpx.ReadTimeout
    events = _events(received)
    assert 0 < len(events) < CHUNKS
    assert b"[DONE]" not in events


def test_refuse_stops_listening_until_the_mode_changes(proxy: ProxyThread) -> None:
    port = proxy.proxy.port
    received, error = _run(proxy, "refuse")
    assert type(error) is httpx.ConnectError
    assert "[Errno 111] Connection refused" in str(error)
    assert (received, proxy.proxy.connections) == ([], 0)
    proxy.proxy.mode = "pass"
    with httpx.Client() as client:
        events = _events(_stream(client, proxy.proxy.base_url(PATH)))
    assert (events[-1], proxy.proxy.port, proxy.proxy.connections) == (b"[DONE]", port, 1)


def test_latency_delays_but_completes(proxy: ProxyThread) -> None:
    with httpx.Client() as client:
        whole = _events(_stream(client, proxy.proxy.base_url(PATH)))
        proxy.proxy.mode = "latency:50"
        proxy.close_connections()
        started = time.monotonic()
        with client.stream("POST", proxy.proxy.base_url(PATH), json=BODY) as response:
            head = time.monotonic() - started
            delayed = _events(list(response.iter_raw()))
    assert head >= 0.05  # the response head is upstream bytes too
    assert delayed == whole


def test_mode_applies_per_connection(proxy: ProxyThread) -> None:
    with httpx.Client() as client:
        _stream(client, proxy.proxy.base_url(PATH))
        proxy.proxy.mode = "reset_after:0"
        kept = _events(_stream(client, proxy.proxy.base_url(PATH)))  # pooled: still ``pass``
        assert kept[-1] == b"[DONE]"
        proxy.close_connections()
        with pytest.raises(httpx.ReadError):
            _stream(client, proxy.proxy.base_url(PATH))
    assert proxy.proxy.connections == 2


def _raw_request(proxy: ProxyThread) -> socket.socket:
    body = json.dumps(BODY).encode()
    head = f"POST {PATH} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n"
    sock = socket.create_connection((proxy.proxy.host, proxy.proxy.port), timeout=5)
    sock.sendall(head.encode() + b"content-type: application/json\r\n\r\n" + body)
    return sock


def _read_all(sock: socket.socket, into: bytearray) -> None:
    while chunk := sock.recv(65536):
        into += chunk


@pytest.mark.parametrize("amount", [0, 1, 2000])
def test_cuts_deliver_exactly_n_bytes(proxy: ProxyThread, amount: int) -> None:
    proxy.proxy.mode = f"limit_data:{amount}"
    closed = bytearray()
    with _raw_request(proxy) as sock:
        _read_all(sock, closed)
    proxy.proxy.mode = f"reset_after:{amount}"
    reset = bytearray()
    with _raw_request(proxy) as sock, pytest.raises(ConnectionResetError):
        _read_all(sock, reset)
    assert (len(closed), len(reset)) == (amount, amount)


@pytest.fixture
async def loop_proxy(upstream: ThreadedServer) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(upstream.host, upstream.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


async def _aiohttp_stream(url: str, read: float = 5.0) -> list[bytes]:
    """Read as the gateway does: no aiohttp read timeout, ``read`` s per read under asyncio."""
    received: list[bytes] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=None)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with asyncio.timeout(read):
            response = await session.post(url, json=BODY)
        async with response:
            while True:
                async with asyncio.timeout(read):
                    chunk = await response.content.readany()
                if not chunk:
                    return received
                received.append(chunk)


async def test_aiohttp_pass_and_slice(loop_proxy: FaultProxy) -> None:
    whole = _events(await _aiohttp_stream(loop_proxy.base_url(PATH)))
    loop_proxy.mode = Fault(FaultKind.SLICE, 7)
    assert _events(await _aiohttp_stream(loop_proxy.base_url(PATH))) == whole
    assert (whole[-1], loop_proxy.connections) == (b"[DONE]", 2)


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("refuse", aiohttp.ClientConnectorError, "Connect call failed"),
        ("reset_after:0", aiohttp.ClientOSError, "Connection reset by peer"),
        ("limit_data:0", aiohttp.ServerDisconnectedError, "Server disconnected"),
        ("stall_after:0", TimeoutError, "^$"),
        ("limit_data:2000", aiohttp.ClientPayloadError, "Response payload is not completed"),
        ("reset_after:2000", aiohttp.ClientPayloadError, "Connection reset by peer"),
        ("stall_after:2000", TimeoutError, "^$"),
    ],
)
async def test_aiohttp_errors(
    loop_proxy: FaultProxy, mode: str, error: type[Exception], message: str
) -> None:
    loop_proxy.mode = mode
    with pytest.raises(error, match=message) as caught:
        await _aiohttp_stream(loop_proxy.base_url(PATH), read=0.5)
    assert type(caught.value) is error  # not merely a subclass

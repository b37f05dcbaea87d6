"""L5: slowloris and slow POST against ``lowart serve`` over raw sockets.

Half-open requests (headers a byte at a time, a body that stalls) are answered 408 and closed
after ``HEADER_TIMEOUT_S`` / ``BODY_TIMEOUT_S``, while legitimate requests are served meanwhile,
and an idle keep-alive connection is not mistaken for a slow one. Short timeouts via settings.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.serve_process import ADMIN_KEY, STOPPED, ServeProcess

HALF_OPEN = 200
TIMEOUT_S = 1.0
BOUND_S = 15.0  # generous: the timeouts are 1 s, this only keeps a broken build from hanging
PACE_S = 0.1  # how often the slow clients send their next byte


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    env = {"HEADER_TIMEOUT_S": str(TIMEOUT_S), "BODY_TIMEOUT_S": str(TIMEOUT_S)}
    with ServeProcess(tmp_path_factory.mktemp("slow"), env) as server:
        yield server
        assert server.terminate() in STOPPED, server.output()


def _connect(server: ServeProcess) -> socket.socket:
    assert server.url is not None
    parts = urlsplit(server.url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=BOUND_S)
    sock.setblocking(False)
    return sock


def _read(sock: socket.socket, into: bytearray) -> bool:
    """Read what has arrived into ``into``; True once the server has closed the connection."""
    while True:
        try:
            chunk = sock.recv(4096)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            return True
        if not chunk:
            return True
        into += chunk


def _trickle_until_closed(
    socks: list[socket.socket], drip: bytes, on_tick: Callable[[], None] | None = None
) -> tuple[list[bytes], float]:
    """Send ``drip`` a byte per PACE_S on every socket until the server has closed them all.

    Returns what each got before its close, and how long the last one took.
    """
    start = time.monotonic()
    received = {sock: bytearray() for sock in socks}
    closed: set[socket.socket] = set()
    position = 0
    while len(closed) < len(socks):
        assert time.monotonic() - start < BOUND_S, f"{len(socks) - len(closed)} still open"
        open_socks = [s for s in socks if s not in closed]
        readable, _, _ = select.select(open_socks, [], [], PACE_S)  # paces the drip too
        closed.update(sock for sock in readable if _read(sock, received[sock]))
        byte = drip[position % len(drip) : position % len(drip) + 1] if drip else b""
        position += 1
        for sock in socks:
            if sock in closed or not byte:
                continue
            try:
                sock.send(byte)
            except (BrokenPipeError, ConnectionResetError):
                _read(sock, received[sock])
                closed.add(sock)
        if on_tick is not None:
            on_tick()
    return [bytes(received[sock]) for sock in socks], time.monotonic() - start


def _response(sock: socket.socket) -> bytes:
    """One whole response with a Content-Length, read from a blocking socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(4096)
    return head + b"\r\n\r\n" + body


def test_slowloris_headers_are_cut_and_others_still_served(served: ServeProcess) -> None:
    socks = [_connect(served) for _ in range(HALF_OPEN)]
    served_meanwhile: list[int] = []
    client = httpx.Client(base_url=served.url or "", timeout=5)

    def legit_request() -> None:
        if len(served_meanwhile) < 5:
            served_meanwhile.append(client.get("/health").status_code)

    try:
        for sock in socks:
            sock.send(b"GET /health HTTP/1.1\r\nHost: lowart\r\n")
        answers, _ = _trickle_until_closed(socks, b"X-Slow: yes\r\n", legit_request)
    finally:
        client.close()
        for sock in socks:
            sock.close()
    assert served_meanwhile == [200] * 5
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), set(answers)


def test_a_connection_that_sends_nothing_is_closed(served: ServeProcess) -> None:
    sock = _connect(served)
    try:
        answers, _ = _trickle_until_closed([sock], b"")
    finally:
        sock.close()
    assert answers[0].startswith(b"HTTP/1.1 408"), answers


def test_slow_post_body_is_cut(served: ServeProcess) -> None:
    socks = [_connect(served) for _ in range(20)]
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: lowart\r\n"
        b"Authorization: Bearer " + ADMIN_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    )
    try:
        for sock in socks:
            sock.send(head)
        answers, _ = _trickle_until_closed(socks, b" ")
    finally:
        for sock in socks:
            sock.close()
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), set(answers)


def test_an_idle_keep_alive_connection_outlives_the_header_timeout(served: ServeProcess) -> None:
    sock = _connect(served)
    request = b"GET /health HTTP/1.1\r\nHost: lowart\r\n\r\n"
    try:
        sock.setblocking(True)
        sock.sendall(request)
        first = _response(sock)
        assert first.startswith(b"HTTP/1.1 200"), first
        # Idle for longer than the header timeout: only keep-alive's 30 s applies here.
        readable, _, _ = select.select([sock], [], [], TIMEOUT_S * 2)
        assert not readable, "an idle keep-alive connection was closed"
        sock.sendall(request)
        second = _response(sock)
    finally:
        sock.close()
    assert second.startswith(b"HTTP/1.1 200"), second


def test_the_settings_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="HEADER_TIMEOUT_S"):
        ServeProcess(tmp_path, {"HEADER_TIMEOUT_S": "0"})

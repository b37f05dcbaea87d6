"""Raw HTTP/1.1 over a socket, for requests an HTTP client refuses to send (CRLF in a header,
duplicate headers, ``..`` in a path, a body that never ends). Not a test module."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


def parse(data: bytes) -> RawResponse:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = body[: int(headers["content-length"])]
    return RawResponse(status, headers, body)


def _read_all(sock: socket.socket, deadline: float) -> bytes:
    chunks = []
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def send(url: str, request: bytes, timeout: float = 10.0) -> RawResponse:
    """Send ``request`` as is (it should say ``Connection: close``); parse the first response."""
    with socket.create_connection(address(url), timeout=timeout) as sock:
        sock.sendall(request)
        return parse(_read_all(sock, time.monotonic() + timeout))


def request(
    url: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""
) -> RawResponse:
    host, port = address(url)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return send(url, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def stream_until_answered(
    url: str, head: bytes, chunks: Iterator[bytes], timeout: float = 30.0
) -> tuple[int, RawResponse | None]:
    """Send ``head`` then ``chunks`` until the server answers or stops reading.

    Returns the bytes of body sent, and the response if one came.
    """
    sent = 0
    with socket.create_connection(address(url), timeout=timeout) as sock:
        sock.sendall(head)
        deadline = time.monotonic() + timeout
        for chunk in chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable or time.monotonic() > deadline:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                break
            sent += len(chunk)
        data = _read_all(sock, time.monotonic() + timeout)
    return sent, parse(data) if data else None

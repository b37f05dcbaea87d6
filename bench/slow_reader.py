"""A client that reads a stream at about 100 bytes a second, with a small receive buffer, and
tells how the stream ended: closed by the server, reset, or still open when it gave up."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

RCVBUF = 4096


@dataclass(frozen=True)
class SlowRead:
    """What the slow reader saw."""

    received: int  # bytes
    seconds: float
    ended: str  # "closed by the server", "reset by the server", "still open: closed by the client"


async def slow_read(
    url: str, body: dict[str, object], headers: dict[str, str], rate: int, seconds: float
) -> SlowRead:
    """POST ``body`` and read ``rate`` bytes a second for at most ``seconds``."""
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    head = [
        f"POST {parts.path} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        *(f"{k}: {v}" for k, v in headers.items()),
        "",
        "",
    ]
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # before connect: the window
    sock.setblocking(False)
    started = time.monotonic()
    received = 0
    ended = "still open: closed by the client"
    try:
        await loop.sock_connect(sock, (parts.hostname or "127.0.0.1", parts.port or 80))
        await loop.sock_sendall(sock, "\r\n".join(head).encode() + payload)
        while time.monotonic() - started < seconds:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, rate), timeout=1.0)
            except TimeoutError:
                continue
            if not data:
                ended = "closed by the server"
                break
            received += len(data)
            await asyncio.sleep(1.0)
    except ConnectionResetError:
        ended = "reset by the server"
    finally:
        sock.close()
    return SlowRead(received, time.monotonic() - started, ended)

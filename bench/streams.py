"""An aiohttp client for the measurements wrk cannot make: time to first token, the numbered
chunks of every stream, and single non-streaming calls with their latency."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

_CONTENT = re.compile(rb'"content":\s*"(?!")')  # a delta with some text
_SEQ = re.compile(rb'"content":\s*"<(\d+)>')


@dataclass
class StreamResult:
    """One streamed request as the client saw it (times in seconds from sending)."""

    status: int
    ttfb: float = math.nan  # the response head
    ttft: float = math.nan  # the first event with content
    total: float = math.nan
    done: bool = False  # the stream ended with ``data: [DONE]``
    seqs: list[int] = field(default_factory=list)  # ``<i>`` markers, in order
    received: int = 0  # body bytes
    error: str = ""


@dataclass(frozen=True)
class Call:
    """One non-streaming request."""

    status: int
    latency: float
    body: bytes
    headers: Mapping[str, str]
    error: str = ""


def session(limit: int = 0) -> aiohttp.ClientSession:
    """A pooled session; ``limit`` 0 is unlimited connections."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=None, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


def _scan(line: bytes, result: StreamResult, started: float, now: float) -> None:
    if not line.startswith(b"data:"):
        return
    data = line[5:].strip()
    if data == b"[DONE]":
        result.done = True
        return
    if math.isnan(result.ttft) and _CONTENT.search(data):
        result.ttft = now - started
    seq = _SEQ.search(data)
    if seq is not None:
        result.seqs.append(int(seq[1]))


async def stream(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
) -> StreamResult:
    """POST a streaming request and read it to the end, noting when things arrived."""
    started = time.perf_counter()
    result = StreamResult(status=0)
    hdrs = {"Content-Type": "application/json", **headers}
    try:
        async with client.post(url, data=body, headers=hdrs) as response:
            result.status = response.status
            result.ttfb = time.perf_counter() - started
            pending = b""
            async for piece in response.content.iter_any():
                now = time.perf_counter()
                result.received += len(piece)
                pending += piece
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    _scan(line, result, started, now)
            _scan(pending, result, started, time.perf_counter())
    except (TimeoutError, aiohttp.ClientError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    result.total = time.perf_counter() - started
    return result


async def post(
    client: aiohttp.ClientSession, url: str, body: bytes, headers: Mapping[str, str]
) -> Call:
    """POST a non-streaming request and read the whole answer."""
    started = time.perf_counter()
    hdrs = {"Content-Type": "application/json", **headers}
    try:
        async with client.post(url, data=body, headers=hdrs) as response:
            raw = await response.read()
            return Call(response.status, time.perf_counter() - started, raw, response.headers)
    except (TimeoutError, aiohttp.ClientError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        return Call(0, time.perf_counter() - started, b"", {}, error)

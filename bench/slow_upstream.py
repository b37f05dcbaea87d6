"""A fake OpenAI upstream that takes its time, numbers its chunks and counts its connections.

nginx's fixed SSE body is instant; the load rows and the memory test need streams that last.
Every request goes to ``/slow/<chunks>/<delay_ms>/<pad>/v1/chat/completions``:

- streaming (``"stream": true``): chunk 0 at once, then one chunk every ``delay_ms`` up to
  ``chunks - 1``; chunk ``i`` carries the content ``<i>`` followed by ``pad`` characters of words;
  then a finish chunk, a usage chunk (prompt 15 tokens, completion ``chunks``) and ``[DONE]``;
- non-streaming: waits ``delay_ms``, then one chat completion with usage.

``GET /stats`` answers the connections that carried a request since the last
``POST /stats/reset``, the requests, the streams open now, and the chunks written per path.
Run::

    .venv/bin/python bench/slow_upstream.py PORT
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
import time
import weakref
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from blocking_http import call
from procs import PYTHON, WORK, free_port, spawn, wait_port

PREFIX = "/slow"


_WORDS = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "


@functools.cache
def _filler(size: int) -> str:
    """``size`` characters of words (text a tokenizer meets in real answers)."""
    return (_WORDS * (size // len(_WORDS) + 1))[:size]


def chunk(seq: int, pad: int) -> bytes:
    """The SSE event for chunk ``seq``."""
    payload = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": f"<{seq}>" + _filler(pad)}}],
    }
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def tail_events(chunks: int) -> bytes:
    """The finish chunk, the usage chunk and the terminator."""
    finish = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    usage = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [],
        "usage": {"prompt_tokens": 15, "completion_tokens": chunks, "total_tokens": 15 + chunks},
    }
    return (
        b"".join(
            b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
            for event in (finish, usage)
        )
        + b"data: [DONE]\n\n"
    )


def completion(chunks: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-slow",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "slow answer"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 15, "completion_tokens": chunks, "total_tokens": 15 + chunks},
    }


@dataclass
class Stats:
    """What the upstream saw since the last reset."""

    seen: weakref.WeakSet[asyncio.BaseTransport] = field(default_factory=weakref.WeakSet)
    connections: int = 0
    requests: int = 0
    open_streams: int = 0
    chunks: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.time)

    def saw(self, transport: asyncio.BaseTransport | None) -> None:
        self.requests += 1
        if transport is not None and transport not in self.seen:
            self.seen.add(transport)
            self.connections += 1


class SlowUpstream:
    """The aiohttp handlers."""

    def __init__(self) -> None:
        self.stats = Stats()

    async def chat(self, request: web.Request) -> web.StreamResponse:
        self.stats.saw(request.transport)
        try:
            chunks = int(request.match_info["chunks"])
            delay = int(request.match_info["delay"]) / 1000
            pad = int(request.match_info["pad"])
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "bad request"}}, status=400)
        if not body.get("stream"):
            await asyncio.sleep(delay)
            return web.json_response(completion(chunks))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        key = request.path
        self.stats.open_streams += 1
        try:
            for seq in range(chunks):
                if seq and delay:
                    await asyncio.sleep(delay)
                await response.write(chunk(seq, pad))
                self.stats.chunks[key] += 1
            await response.write(tail_events(chunks))
            await response.write_eof()
        finally:
            self.stats.open_streams -= 1
        return response

    async def get_stats(self, request: web.Request) -> web.Response:
        del request
        s = self.stats
        return web.json_response(
            {
                "connections": s.connections,
                "requests": s.requests,
                "open_streams": s.open_streams,
                "chunks": dict(s.chunks),
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        del request
        open_streams = self.stats.open_streams
        self.stats = Stats(open_streams=open_streams)
        return web.json_response({"reset": True})


def app() -> web.Application:
    upstream = SlowUpstream()
    application = web.Application(client_max_size=4 * 1024 * 1024)
    path = PREFIX + "/{chunks}/{delay}/{pad}/v1/chat/completions"
    application.router.add_post(path, upstream.chat)
    application.router.add_get("/stats", upstream.get_stats)
    application.router.add_post("/stats/reset", upstream.reset)
    return application


@dataclass(frozen=True)
class SlowClient:
    """The bench's handle on a running slow upstream."""

    base: str

    def v1(self, chunks: int, delay_ms: int, pad: int = 0) -> str:
        """The ``/v1`` base URL of one behaviour."""
        return f"{self.base}{PREFIX}/{chunks}/{delay_ms}/{pad}/v1"

    def path(self, chunks: int, delay_ms: int, pad: int = 0) -> str:
        """The request path of one behaviour (the key of ``stats()["chunks"]``)."""
        return f"{PREFIX}/{chunks}/{delay_ms}/{pad}/v1/chat/completions"

    def url(self, chunks: int, delay_ms: int, pad: int = 0) -> str:
        return self.base + self.path(chunks, delay_ms, pad)

    def stats(self) -> dict[str, Any]:
        status, raw = call("GET", self.base + "/stats")
        if status != 200:
            raise RuntimeError(f"slow upstream: GET /stats: HTTP {status}")
        stats: dict[str, Any] = json.loads(raw)
        return stats

    def reset(self) -> None:
        call("POST", self.base + "/stats/reset", {})


def start(stack: contextlib.ExitStack, name: str = "slow-upstream") -> tuple[SlowClient, int]:
    """This file as a process of the bench (stopped with the stack); its client and port."""
    port = free_port()
    argv = [str(PYTHON), str(Path(__file__).resolve()), str(port)]
    proc = spawn(stack, name, argv, {}, WORK)
    wait_port(port, name, proc)
    return SlowClient(f"http://127.0.0.1:{port}"), port


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9998
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 (optional, as the gateway uses it)

        uvloop.install()
    web.run_app(app(), host="127.0.0.1", port=port, access_log=None, print=None, backlog=4096)


if __name__ == "__main__":
    main()

"""The cost of transform scripts (docs/transforms.md) on the hot path, at one connection.

Rows, each ``BENCH_TRANSFORM_SAMPLES`` (300) requests after a warm-up, one at a time:

- non-streaming with a 1 KB and a 100 KB body: a model without a script, then the same upstream
  behind a model whose ``on_request`` adds a system prompt;
- streaming: no script, then an ``on_chunk`` script that touches every event;
- a model without a script while another client keeps a hostile script busy (a loop the
  interpreter cancels at ``TRANSFORM_TIMEOUT_MS``), to show that it does not slow the others.

Each row gives the p50 and p99 latency (the whole answer, or the whole stream) and the CPU time
per request of the gateway and its transform workers (``/proc``). The added p50 is the row's
against its "no script" row.

Run alone: ``.venv/bin/python bench/transform_cost.py`` (a gateway in front of the fake OpenAI
upstream of ``lowart.testing``, in this process; ``make bench`` uses its nginx upstream).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from gateway import Gateway, start_gateway
from percentiles import ms, pct
from procs import WORK, cpu_seconds, log
from streams import post, session, stream

from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread

SAMPLES = int(os.environ.get("BENCH_TRANSFORM_SAMPLES", "300"))
WARMUP = 30
BLOCK = 20

SYSTEM_PROMPT = """
def on_request(req, ctx):
    req["messages"] = [{"role": "system", "content": "Be brief."}] + req["messages"]
    return req
"""
EVERY_CHUNK = """
def on_chunk(chunk, ctx):
    chunk["seen"] = True
    return chunk
"""
HOSTILE = """
def on_request(req, ctx):
    n = 0
    for i in range(1000000000):
        n += i
    return req
"""


class Upstream(Protocol):
    def v1(self, mode: str) -> str:
        """The ``/v1`` URL that answers ``mode`` (``json`` or ``sse``)."""
        ...


@dataclass(frozen=True)
class FakeUpstream:
    """The fake OpenAI upstream: one URL for both modes (the body's ``stream`` decides)."""

    base: str

    def v1(self, mode: str) -> str:
        return f"{self.base}/v1"


@dataclass(frozen=True)
class Cost:
    """One row: what was measured, its latency percentiles and CPU per request (seconds)."""

    label: str
    p50: float
    p99: float
    cpu: float
    failures: int


def _body(model: str, size: int, stream_: bool = False) -> bytes:
    text = ("lorem ipsum " * (size // 12 + 1))[: max(1, size - 80)]
    payload = {"model": model, "messages": [{"role": "user", "content": text}]}
    if stream_:
        payload["stream"] = True
    return json.dumps(payload, separators=(",", ":")).encode()


@dataclass
class _Samples:
    label: str
    body: bytes
    values: list[float]
    cpu: float = 0.0
    failures: int = 0

    def cost(self, sent: int) -> Cost:
        cost = Cost(
            self.label, pct(self.values, 50), pct(self.values, 99), self.cpu / sent, self.failures
        )
        log(
            f"transforms: {self.label}: p50 {ms(cost.p50)} ms, cpu {cost.cpu * 1000:.3f} ms/request"
        )
        return cost


async def _rows_of(gw: Gateway, cases: list[tuple[str, bytes]], streamed: bool) -> list[Cost]:
    """The cases measured in alternating blocks of ``BLOCK`` requests, so that the machine's
    drift (other work shares it) falls alike on each; CPU is read around each block."""
    found = [_Samples(label, body, []) for label, body in cases]
    async with session(limit=1) as client:
        for case in found:
            for _ in range(WARMUP):
                await _one(client, gw, case.body, streamed)
        for _ in range(SAMPLES // BLOCK):
            for case in found:
                before = cpu_seconds(gw.pid)
                for _ in range(BLOCK):
                    ok, seconds = await _one(client, gw, case.body, streamed)
                    if ok:
                        case.values.append(seconds)
                    else:
                        case.failures += 1
                case.cpu += cpu_seconds(gw.pid) - before
    return [case.cost(SAMPLES // BLOCK * BLOCK) for case in found]


async def _one(
    client: aiohttp.ClientSession, gw: Gateway, body: bytes, streamed: bool
) -> tuple[bool, float]:
    if streamed:
        result = await stream(client, gw.chat_url, body, gw.auth)
        return result.status == 200 and result.done, result.total
    call = await post(client, gw.chat_url, body, gw.auth)
    return call.status == 200, call.latency


async def _hostile_load(gw: Gateway, stop: asyncio.Event) -> None:
    async with session(limit=1) as client:
        while not stop.is_set():
            await post(client, gw.chat_url, _body("tx-hostile", 200), gw.auth)


async def _rows(gw: Gateway) -> list[Cost]:
    rows = []
    for size, name in ((1024, "1 KB"), (100 * 1024, "100 KB")):
        cases = [
            (f"{name}, no script", _body("tx-plain", size)),
            (f"{name}, on_request", _body("tx-request", size)),
        ]
        rows += await _rows_of(gw, cases, False)
    cases = [
        ("stream, no script", _body("tx-sse", 200, True)),
        ("stream, on_chunk", _body("tx-chunk", 200, True)),
    ]
    rows += await _rows_of(gw, cases, True)
    stop = asyncio.Event()
    hostile = asyncio.create_task(_hostile_load(gw, stop))
    try:
        label = "1 KB, no script, hostile script looping beside"
        rows += await _rows_of(gw, [(label, _body("tx-plain", 1024))], False)
    finally:
        stop.set()
        await hostile
    return rows


def _attach(gw: Gateway, model: str, source: str, **flags: bool) -> None:
    gw.admin("POST", "/admin/transforms", {"model_id": model, "source": source, **flags})


def measure(gw: Gateway, upstream: Upstream) -> list[Cost]:
    """Register the models and scripts on ``gw``, then measure every row."""
    for model, mode in [
        ("tx-plain", "json"),
        ("tx-request", "json"),
        ("tx-hostile", "json"),
        ("tx-sse", "sse"),
        ("tx-chunk", "sse"),
    ]:
        gw.add_model(model, upstream.v1(mode))
    _attach(gw, "tx-request", SYSTEM_PROMPT)
    _attach(gw, "tx-hostile", HOSTILE)
    _attach(gw, "tx-chunk", EVERY_CHUNK, on_request=False, on_chunk=True)
    return asyncio.run(_rows(gw))


def lines(costs: list[Cost]) -> list[str]:
    """The report's table: each row, and its added p50 against its "no script" row (the hostile
    row against the 1 KB one)."""
    if not costs:
        return ["Not measured (`BENCH_TRANSFORMS=0`)."]
    base = {c.label.split(",")[0]: c.p50 for c in costs if c.label.endswith("no script")}
    out = [
        f"{SAMPLES} requests per row at one connection, after {WARMUP} of warm-up, the rows of "
        f"a pair in alternating blocks of {BLOCK}; CPU: the gateway and its transform workers.",
        "",
        "| row | p50 ms | p99 ms | added p50 ms | CPU ms/request | failures |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in costs:
        added = c.p50 - base.get(c.label.split(",")[0], c.p50)
        out.append(
            f"| {c.label} | {ms(c.p50)} | {ms(c.p99)} | {added * 1000:+.3f} | "
            f"{c.cpu * 1000:.3f} | {c.failures} |"
        )
    return out


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(run_in_thread(FakeOpenAI()))
        gw = start_gateway(stack, "lowart-transforms")
        print("\n".join(lines(measure(gw, FakeUpstream(fake.base_url)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

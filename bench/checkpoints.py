"""The cost of checkpointing requests in flight (docs/operations.md, "Requests in flight").

Two gateways, measured in turn ``BENCH_CHECKPOINT_ROUNDS`` (3) times each, each time with
``BENCH_CHECKPOINT_STREAMS`` (1,000) slow streams open at once: one checkpoints every second
(``INFLIGHT_CHECKPOINT_S=1``, the default), the other never within the run. Over
``BENCH_CHECKPOINT_SECONDS`` (6) with every stream open, the gateway's CPU time is read from
``/proc``; the figure is CPU milliseconds per stream-second (the median round), and the
checkpoint rows in the database at the window's end show that the writer did its work.

Run alone: ``.venv/bin/python bench/checkpoints.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, field

import aiohttp
from gateway import Gateway, start_gateway
from procs import WORK, cpu_seconds, log
from slow_upstream import SlowClient
from slow_upstream import start as start_slow
from streams import session

STREAMS = int(os.environ.get("BENCH_CHECKPOINT_STREAMS", "1000"))
WINDOW_S = float(os.environ.get("BENCH_CHECKPOINT_SECONDS", "6"))
ROUNDS = max(1, int(os.environ.get("BENCH_CHECKPOINT_ROUNDS", "3")))
MODEL = "bench-inflight"
CHUNKS, DELAY_MS = 240, 250  # a stream lasts a minute: open through the whole window
INTERVALS = (("checkpoints every 1 s", "1"), ("checkpoints off", "1000000"))


@dataclass(frozen=True)
class Cost:
    """One gateway's CPU time with the streams open."""

    label: str
    streams: int  # open (first chunk received) when the window began
    cpu_s: float
    window_s: float
    rows: int  # rows in inflight_requests at the window's end

    @property
    def ms_per_stream_second(self) -> float:
        return self.cpu_s * 1000 / max(1, self.streams) / self.window_s


@dataclass
class _Opened:
    """Counts the streams whose first chunk arrived; ``all`` is set when every one has."""

    count: int = 0
    all: asyncio.Event = field(default_factory=asyncio.Event)

    def one(self) -> None:
        self.count += 1
        if self.count >= STREAMS:
            self.all.set()


async def _one(client: aiohttp.ClientSession, gw: Gateway, body: bytes, opened: _Opened) -> None:
    async with client.post(gw.chat_url, data=body, headers=gw.auth) as response:
        if response.status == 200 and await response.content.readany():
            opened.one()
        while await response.content.readany():
            pass


async def _measure(gw: Gateway, label: str) -> Cost:
    body = json.dumps(
        {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    opened = _Opened()
    async with session(limit=0) as client:
        tasks = [asyncio.create_task(_one(client, gw, body, opened)) for _ in range(STREAMS)]
        with contextlib.suppress(TimeoutError):  # measured with those that opened
            await asyncio.wait_for(opened.all.wait(), timeout=30)
        await asyncio.sleep(1.5)  # past the first checkpoint of every stream
        streams, cpu, started = opened.count, cpu_seconds(gw.pid), time.monotonic()
        await asyncio.sleep(WINDOW_S)
        cpu, window = cpu_seconds(gw.pid) - cpu, time.monotonic() - started
        rows = _checkpoint_rows(gw)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return Cost(label, streams, cpu, window, rows)


def _checkpoint_rows(gw: Gateway) -> int:
    uri = f"file:{gw.home / 'lowart.db'}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM inflight_requests").fetchone()[0])


def measure(slow: SlowClient) -> list[Cost]:
    """Each setting on a gateway of its own (started and stopped here), measured in turn."""
    runs: list[list[Cost]] = [[] for _ in INTERVALS]
    with contextlib.ExitStack() as stack:
        gateways = []
        for n, (_, interval) in enumerate(INTERVALS):
            gw = start_gateway(stack, f"lowart-inflight-{n}", {"INFLIGHT_CHECKPOINT_S": interval})
            gw.add_model(MODEL, slow.v1(CHUNKS, DELAY_MS))
            gateways.append(gw)
        for _ in range(ROUNDS):
            for n, (label, _) in enumerate(INTERVALS):
                cost = asyncio.run(_measure(gateways[n], label))
                log(
                    f"in flight, {cost.label}: {cost.streams} streams, {cost.rows} checkpoint "
                    f"rows, {cost.ms_per_stream_second:.3f} CPU ms per stream-second"
                )
                runs[n].append(cost)
    return [sorted(r, key=lambda c: c.ms_per_stream_second)[len(r) // 2] for r in runs]


def lines(costs: list[Cost]) -> list[str]:
    """The report's section."""
    if not costs:
        return ["Not measured (`BENCH_CHECKPOINT=0`)."]
    out = [
        f"Lowart's CPU time over {WINDOW_S:g} s with {STREAMS:,} slow streams open (one chunk "
        f"every {DELAY_MS} ms), each setting on a gateway of its own, the median of {ROUNDS} "
        "rounds taken in turn; rows = checkpoint rows in `inflight_requests` at the end of the "
        "window.",
        "",
        "| Setting | Streams open | Checkpoint rows | CPU ms per stream-second |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| {c.label} | {c.streams:,} | {c.rows:,} | {c.ms_per_stream_second:.3f} |" for c in costs
    ]
    on, off = costs[0].ms_per_stream_second, costs[-1].ms_per_stream_second
    ratio = on / off if off else float("nan")
    out += ["", f"Checkpoints cost {on - off:+.3f} CPU ms per stream-second ({ratio:.2f}x)."]
    return out


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        slow, _ = start_slow(stack)
        costs = measure(slow)
    print("\n".join(lines(costs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

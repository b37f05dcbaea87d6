"""Resident memory of a process tree, read from ``/proc/<pid>/status`` (VmRSS, children summed):
idle, sampled under load, and with many streams held open at once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from gateway import Gateway
from procs import children, log
from slow_upstream import SlowClient
from streams import session

HOLD_STREAMS = 1000
HOLD_CHUNKS = 60  # one every HOLD_DELAY_MS: a stream lasts 30 s unless cut
HOLD_DELAY_MS = 500
HOLD_MODEL = "bench-hold"


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` and its descendants, in KiB (0 for a process that is gone)."""
    total = 0
    for each in (pid, *children(pid)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def mib(kib: float) -> str:
    return f"{kib / 1024:,.1f} MiB"


@dataclass
class Sampler:
    """Samples a process tree's RSS in a thread while entered; keeps the peak and the mean."""

    pid: int
    interval: float = 0.2
    samples: list[int] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return max(self.samples, default=0)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else 0.0

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.samples.append(rss_kib(self.pid))
                stop.wait(self.interval)

        thread = threading.Thread(target=loop, name="rss-sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


@dataclass(frozen=True)
class Held:
    """RSS with many streams open through the gateway at once."""

    requested: int
    receiving: int  # streams whose first chunk had arrived when RSS was sampled
    upstream_open: int  # streams the slow upstream was serving then
    peak_kib: int  # while the streams were open
    before_kib: int
    after_kib: int  # a few seconds after they were closed
    seconds_to_open: float


@dataclass
class _Opened:
    """Counts the streams whose first chunk arrived; ``all`` is set when every one has."""

    want: int
    count: int = 0
    all: asyncio.Event = field(default_factory=asyncio.Event)

    def one(self) -> None:
        self.count += 1
        if self.count >= self.want:
            self.all.set()


async def _hold_one(
    client: aiohttp.ClientSession, gw: Gateway, body: bytes, opened: _Opened
) -> None:
    async with client.post(gw.chat_url, data=body, headers=gw.auth) as response:
        first = await response.content.readany()
        if response.status == 200 and first:
            opened.one()
        while await response.content.readany():
            pass


async def _hold(gw: Gateway, slow: SlowClient, count: int) -> Held:
    body = json.dumps(
        {"model": HOLD_MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    ).encode()
    before = rss_kib(gw.pid)
    opened = _Opened(count)
    sampler = Sampler(gw.pid, interval=0.1)
    async with session(limit=0) as client:
        with sampler.running():
            started = time.monotonic()
            tasks = [asyncio.create_task(_hold_one(client, gw, body, opened)) for _ in range(count)]
            await _until_open(opened, started)
            took = time.monotonic() - started
            await asyncio.sleep(2.0)
            receiving = opened.count
            upstream_open = int(slow.stats()["open_streams"])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(3.0)  # the gateway sees the disconnects and bills the cut streams
    after = rss_kib(gw.pid)
    return Held(count, receiving, upstream_open, sampler.peak, before, after, took)


async def _until_open(opened: _Opened, started: float) -> None:
    """Until every stream has its first chunk, or none more arrives for 3 s (20 s at most)."""
    last, since = -1, time.monotonic()
    while time.monotonic() - started < 20:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.all.wait(), timeout=0.5)
            return
        if opened.count != last:
            last, since = opened.count, time.monotonic()
        elif time.monotonic() - since > 3:
            return


def hold_streams(gw: Gateway, slow: SlowClient, count: int = HOLD_STREAMS) -> Held:
    """Open ``count`` slow streams through the gateway, sample its RSS, then close them."""
    gw.add_model(HOLD_MODEL, slow.v1(HOLD_CHUNKS, HOLD_DELAY_MS))
    held = asyncio.run(_hold(gw, slow, count))
    log(
        f"memory: {held.receiving} of {held.requested} streams receiving after "
        f"{held.seconds_to_open:.1f} s (upstream serving {held.upstream_open}); RSS "
        f"{mib(held.before_kib)} before, peak {mib(held.peak_kib)}, {mib(held.after_kib)} after"
    )
    gw.settle()  # the cut streams are billed by estimate: let that end before the next run
    return held

"""Time to first token of streams: one client, one stream at a time, on a kept-alive connection.

TTFT is the time from sending the request to the arrival of the first event that carries text
(``delta.content`` not empty). The fake upstream sends its whole stream at once, so what is
measured is what each system adds before the first token; the client's own cost is in every
figure and cancels out in "added vs. the pass-through".
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass

from percentiles import pct
from procs import log
from streams import session, stream
from targets import Target

SAMPLES = int(os.environ.get("BENCH_TTFT_SAMPLES", "400"))
WARMUP = 30
MAX_SECONDS = 20.0  # a slow peer gives fewer samples rather than a longer bench


@dataclass(frozen=True)
class Ttft:
    """One system's TTFT samples (seconds)."""

    target: str
    samples: int
    p50: float
    p99: float
    failures: int
    reason: str = ""
    sent: int = 0  # streams sent, warm-up included


async def _measure(target: Target) -> Ttft:
    body = target.body("sse").encode()
    headers = target.headers_for("sse")
    url = target.urls["sse"]
    values: list[float] = []
    failures = 0
    async with session(limit=1) as client:
        for _ in range(WARMUP):
            await stream(client, url, body, headers)
        deadline = time.monotonic() + MAX_SECONDS
        while len(values) < SAMPLES and time.monotonic() < deadline:
            result = await stream(client, url, body, headers)
            if result.status == 200 and result.done and not math.isnan(result.ttft):
                values.append(result.ttft)
            else:
                failures += 1
    sent = WARMUP + len(values) + failures
    return Ttft(target.name, len(values), pct(values, 50), pct(values, 99), failures, "", sent)


def measure(targets: Sequence[Target]) -> list[Ttft]:
    """TTFT for each target's streaming mode, one after the other."""
    out = []
    for target in targets:
        if "sse" in target.broken:
            out.append(Ttft(target.name, 0, math.nan, math.nan, 0, target.broken["sse"][:200]))
            continue
        try:
            found = asyncio.run(_measure(target))
        except (OSError, RuntimeError) as exc:
            found = Ttft(target.name, 0, math.nan, math.nan, 0, f"{type(exc).__name__}: {exc}")
        log(
            f"ttft {found.target:12} p50 {found.p50 * 1000:7.3f} ms  "
            f"p99 {found.p99 * 1000:7.3f} ms  ({found.samples} samples, "
            f"{found.failures} failures)"
        )
        out.append(found)
    return out

"""The load rows of ``docs/reliability.md`` (L1, L3, L4, L7, L8), run against the gateway
and the slow upstream, each reported with its criteria and pass or fail.

Durations come from the environment (shorter runs are rougher):

- ``BENCH_L1_SECONDS`` (default 60): the sustained 100 RPS run of L1;
- ``BENCH_L4_SECONDS`` (default 10): each half (control, then with the slow reader) of L4;
- ``BENCH_L7_SECONDS`` (default 5) and ``BENCH_L7_MAX_IN_FLIGHT`` (default 50): L7's overload.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from gateway import Gateway, start_gateway
from loadgen import closed_loop, count_limited, fixed_rate
from memory import Sampler, mib, rss_kib
from percentiles import pct
from procs import log
from slow_reader import RCVBUF, SlowRead, slow_read
from slow_upstream import SlowClient
from slow_upstream import start as start_slow
from streams import Call, StreamResult, post, session, stream
from tcp_states import TIME_WAIT, count

L1_SECONDS = float(os.environ.get("BENCH_L1_SECONDS", "60"))
L1_RATE = 100.0
L1_DELAY_MS = 20
L3_STREAMS = 200
L3_CHUNKS = 100
L3_DELAY_MS = 10
L4_SECONDS = float(os.environ.get("BENCH_L4_SECONDS", "10"))
L4_NORMAL = 50
L7_SECONDS = float(os.environ.get("BENCH_L7_SECONDS", "5"))
L7_MAX = int(os.environ.get("BENCH_L7_MAX_IN_FLIGHT", "50"))
L7_DELAY_MS = 200
L7_PAUSE_S = 0.01  # a refused client's pause: enough that the client's own loop is not measured
L8_REQUESTS = 10_000
L8_CONCURRENCY = 64


@dataclass(frozen=True)
class Check:
    """One criterion: what was asked, what was measured, and whether it held."""

    criterion: str
    figure: str
    passed: bool | None  # None: reported, not judged


@dataclass
class LoadRow:
    """One row of the catalogue, as run here."""

    row: str
    title: str
    how: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        judged = [c.passed for c in self.checks if c.passed is not None]
        return all(judged) if judged else None


def _body(model: str, stream_: bool = False) -> bytes:
    payload: dict[str, object] = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    if stream_:
        payload["stream"] = True
    return json.dumps(payload).encode()


def _f(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:.2f} ms"


# --- L1 --------------------------------------------------------------------------------------


async def _l1_calls(url: str, body: bytes, headers: dict[str, str], secs: float) -> list[Call]:
    async with session() as client:
        return await fixed_rate(L1_RATE, secs, lambda: post(client, url, body, headers))


def l1(gw: Gateway, slow: SlowClient) -> LoadRow:
    """Sustained non-streaming RPS against an upstream that answers in 20 ms."""
    model = "bench-l1"
    gw.add_model(model, slow.v1(1, L1_DELAY_MS))
    row = LoadRow(
        "L1",
        "Sustained non-stream RPS",
        f"{L1_RATE:.0f} RPS (open loop) for {L1_SECONDS:.0f} s through one gateway worker to an "
        f"upstream that answers in {L1_DELAY_MS} ms; the same load for "
        f"{min(10.0, L1_SECONDS):.0f} s straight to the upstream is the control",
    )
    control_body = _body("gpt-4o")
    control = asyncio.run(
        _l1_calls(slow.url(1, L1_DELAY_MS), control_body, {}, min(10.0, L1_SECONDS))
    )
    calls = asyncio.run(_l1_calls(gw.chat_url, _body(model), gw.auth, L1_SECONDS))
    direct = [c.latency for c in control if c.status == 200]
    through = [c.latency for c in calls if c.status == 200]
    bad = sum(1 for c in calls if not 200 <= c.status < 300)
    added50 = pct(through, 50) - pct(direct, 50)
    added99 = pct(through, 99) - pct(direct, 99)
    time.sleep(0.5)
    billed = gw.billed(model)
    rows = sum(n for m, _, n, _, _ in gw.usage_rows() if m == model)
    row.checks += [
        Check("0 non-2xx", f"{bad} of {len(calls)}", bad == 0),
        Check("gateway-added latency p50 <= 5 ms", _f(added50), added50 <= 0.005),
        Check("gateway-added latency p99 <= 50 ms", _f(added99), added99 <= 0.050),
        Check(
            "billed rows == requests",
            f"{billed} ok rows ({rows} rows) for {len(calls)} requests",
            billed == len(calls) == rows,
        ),
    ]
    row.notes.append(
        f"latency through the gateway p50 {_f(pct(through, 50))}, p99 {_f(pct(through, 99))}; "
        f"straight to the upstream p50 {_f(pct(direct, 50))}, p99 {_f(pct(direct, 99))}"
    )
    return row


# --- L3 --------------------------------------------------------------------------------------


async def _streams(url: str, body: bytes, headers: dict[str, str], n: int) -> list[StreamResult]:
    async with session() as client:
        return list(await asyncio.gather(*(stream(client, url, body, headers) for _ in range(n))))


def l3(gw: Gateway, slow: SlowClient) -> LoadRow:
    """Many concurrent streams, each with numbered chunks."""
    model = "bench-l3"
    gw.add_model(model, slow.v1(L3_CHUNKS, L3_DELAY_MS))
    row = LoadRow(
        "L3",
        "Many concurrent streams",
        f"{L3_STREAMS} concurrent streams x {L3_CHUNKS} numbered chunks @{L3_DELAY_MS} ms "
        f"(the CI size); the same batch straight to the upstream is the control",
    )
    control = asyncio.run(
        _streams(slow.url(L3_CHUNKS, L3_DELAY_MS), _body("gpt-4o", True), {}, L3_STREAMS)
    )
    baseline = rss_kib(gw.pid)
    sampler = Sampler(gw.pid, interval=0.1)
    with sampler.running():
        results = asyncio.run(_streams(gw.chat_url, _body(model, True), gw.auth, L3_STREAMS))
    complete = sum(1 for r in results if r.status == 200 and r.done and not r.error)
    expected = list(range(L3_CHUNKS))
    exact = sum(1 for r in results if r.seqs == expected)
    lost = sum(len(set(expected) - set(r.seqs)) for r in results)
    dup_or_reordered = sum(1 for r in results if r.seqs != sorted(set(r.seqs)))
    overhead99 = pct([r.ttft for r in results], 99) - pct([r.ttft for r in control], 99)
    time.sleep(1.0)
    billed = gw.billed(model)
    grown = sampler.peak - baseline
    row.checks += [
        Check("100 % complete", f"{complete} of {L3_STREAMS}", complete == L3_STREAMS),
        Check(
            "every stream's sequence == 0..99",
            f"{exact} of {L3_STREAMS} exact; {lost} chunks lost; "
            f"{dup_or_reordered} streams duplicated or reordered",
            exact == L3_STREAMS,
        ),
        Check("TTFB overhead p99 <= 100 ms", _f(overhead99), overhead99 <= 0.100),
        Check(
            "RSS <= baseline + 100 MB",
            f"+{mib(grown)} (peak {mib(sampler.peak)})",
            grown <= 100 * 1024,
        ),
        Check(f"all {L3_STREAMS} billed", f"{billed} ok rows", billed == L3_STREAMS),
    ]
    took = [r.total for r in results]
    row.notes.append(
        f"stream duration through the gateway p50 {_f(pct(took, 50))}, p99 {_f(pct(took, 99))} "
        f"(the upstream alone: p50 {_f(pct([r.total for r in control], 50))})"
    )
    return row


# --- L4 --------------------------------------------------------------------------------------


async def _normal_streams(gw: Gateway, model: str, seconds: float) -> list[StreamResult]:
    body = _body(model, True)
    async with session() as client:
        return await closed_loop(
            L4_NORMAL, seconds, lambda: stream(client, gw.chat_url, body, gw.auth)
        )


async def _with_slow_reader(
    gw: Gateway, model: str, slow_model: str, seconds: float
) -> tuple[list[StreamResult], SlowRead]:
    body = {"model": slow_model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    reader = asyncio.create_task(slow_read(gw.chat_url, body, gw.auth, 100, seconds + 4))
    await asyncio.sleep(1.0)  # the slow stream is under way before the normal ones start
    normal = await _normal_streams(gw, model, seconds)
    return normal, await reader


def _billing(
    gw: Gateway, model: str, wait: float
) -> tuple[list[tuple[str, str, int, int, int]], float]:
    """The model's usage rows, polled until one appears or ``wait`` seconds pass."""
    started = time.monotonic()
    while True:
        rows = [r for r in gw.usage_rows() if r[0] == model]
        if rows or time.monotonic() - started > wait:
            return rows, time.monotonic() - started
        time.sleep(0.5)


def l4(stack: contextlib.ExitStack, gw: Gateway, slow: SlowClient) -> LoadRow:
    """One client reading at ~100 B/s while 50 normal streams run."""
    model, slow_model = "bench-l4", "bench-l4-slow"
    chunks, pad = 2000, 10_000  # about 20 MB, a chunk a millisecond
    # The big stream comes from an upstream process of its own: only the gateway is shared.
    big, _ = start_slow(stack, "slow-upstream-l4")
    gw.add_model(model, slow.v1(20, 20))
    gw.add_model(slow_model, big.v1(chunks, 1, pad))
    row = LoadRow(
        "L4",
        "Slow reader",
        f"{L4_NORMAL} normal streams (20 chunks @20 ms) in a closed loop for {L4_SECONDS:.0f} s "
        f"(control), then again while one client reads a ~20 MB stream (from a second upstream "
        f"process) at ~100 B/s (receive buffer {RCVBUF} B) for {L4_SECONDS + 4:.0f} s",
    )
    control = asyncio.run(_normal_streams(gw, model, L4_SECONDS))
    before = rss_kib(gw.pid)
    sampler = Sampler(gw.pid, interval=0.2)
    with sampler.running():
        normal, read = asyncio.run(_with_slow_reader(gw, model, slow_model, L4_SECONDS))
    stats = big.stats()
    sent = int(stats["chunks"].get(big.path(chunks, 1, pad), 0))
    rows, waited = _billing(gw, slow_model, 10.0)
    c99 = pct([r.total for r in control if r.done], 99)
    n99 = pct([r.total for r in normal if r.done], 99)
    failed = sum(1 for r in normal if not r.done)
    billed = ", ".join(f"{n} {s} row(s), {t} tokens, {e} estimated" for _, s, n, e, t in rows)
    billed = (
        f"{billed} ({waited:.1f} s after the client left)"
        if rows
        else (
            f"no usage row {waited:.0f} s after the client left (the upstream had "
            f"{'closed' if not stats['open_streams'] else 'not closed'} the stream)"
        )
    )
    row.checks += [
        Check(
            "normal clients' p99 within 10 % of the control run",
            f"{_f(n99)} vs {_f(c99)} ({(n99 / c99 - 1) * 100:+.1f} %); "
            f"{failed} of {len(normal)} normal streams failed",
            n99 <= c99 * 1.10 and failed == 0,
        ),
        Check(
            "slow stream terminated by a write/idle timeout",
            f"{read.ended} after {read.seconds:.1f} s, {read.received:,} B read",
            None if read.ended.startswith("still open") else True,
        ),
        Check("slow stream billed", billed, bool(rows)),
        Check(
            "per-stream buffer bounded (upstream read paused or stream cut)",
            f"the upstream wrote {sent:,} of {chunks:,} chunks (~{sent * (pad + 120) / 1e6:.1f} "
            f"MB) while the client read {read.received:,} B; gateway RSS {mib(before)} before, "
            f"peak {mib(sampler.peak)} (loopback socket buffers hold a few MB on their own)",
            None,
        ),
    ]
    return row


# --- L7 --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Shot:
    status: int
    latency: float
    code: str
    retry_after: str


async def _overload(gw: Gateway, model: str, concurrency: int, seconds: float) -> list[_Shot]:
    body = _body(model)

    async def fire() -> _Shot:
        call = await post(client, gw.chat_url, body, gw.auth)
        code = ""
        if call.status != 200:
            with contextlib.suppress(ValueError, AttributeError):
                code = str(json.loads(call.body)["error"].get("code"))
            await asyncio.sleep(L7_PAUSE_S)
        return _Shot(call.status, call.latency, code, call.headers.get("Retry-After", ""))

    async with session() as client:
        return await closed_loop(concurrency, seconds, fire)


async def _recovery(gw: Gateway, model: str, limit: float) -> float:
    body = _body(model)
    started = time.monotonic()
    async with session() as client:
        while time.monotonic() - started < limit:
            if (await post(client, gw.chat_url, body, gw.auth)).status == 200:
                return time.monotonic() - started
            await asyncio.sleep(0.05)
    return math.inf


def l7(stack: contextlib.ExitStack, slow: SlowClient) -> LoadRow:
    """Overload shedding beyond ``MAX_IN_FLIGHT`` (a gateway of its own, started here)."""
    model = "bench-l7"
    row = LoadRow(
        "L7",
        "Overload shedding",
        f"a gateway with MAX_IN_FLIGHT={L7_MAX}; {2 * L7_MAX} closed-loop clients (2x) for "
        f"{L7_SECONDS:.0f} s against an upstream that answers in {L7_DELAY_MS} ms; a refused "
        f"client asks again after {L7_PAUSE_S * 1000:.0f} ms",
    )
    gw = start_gateway(stack, "lowart-l7", {"MAX_IN_FLIGHT": str(L7_MAX)}, user_id="bench-l7")
    gw.add_model(model, slow.v1(1, L7_DELAY_MS))
    shed_before = gw.metric("gateway_rate_limited_total", reason="overload")
    shots = asyncio.run(_overload(gw, model, 2 * L7_MAX, L7_SECONDS))
    recovered = asyncio.run(_recovery(gw, model, 10.0))
    shed = gw.metric("gateway_rate_limited_total", reason="overload") - shed_before
    rejected = [s for s in shots if s.status == 503 and s.code == "overloaded"]
    admitted = [s for s in shots if s.status == 200]
    other = len(shots) - len(rejected) - len(admitted)
    with_header = sum(1 for s in rejected if s.retry_after == "1")
    reject99 = pct([s.latency for s in rejected], 99)
    row.checks += [
        Check(
            "excess rejected fast with 503 `overloaded` (p99 reject latency <= 50 ms)",
            f"{len(rejected):,} rejected, p99 {_f(reject99)}; {with_header:,} with Retry-After: 1",
            bool(rejected) and reject99 <= 0.050 and with_header == len(rejected),
        ),
        Check(
            "admitted requests' latency bounded",
            f"{len(admitted):,} admitted, p50 {_f(pct([s.latency for s in admitted], 50))}, "
            f"p99 {_f(pct([s.latency for s in admitted], 99))}; {other} other answers",
            other == 0,
        ),
        Check("recovery within 5 s after load drops", _f(recovered), recovered <= 5.0),
        Check(
            "shed counter == rejected count",
            f'gateway_rate_limited_total{{reason="overload"}} +{shed:,.0f} vs '
            f"{len(rejected):,} rejected",
            shed == len(rejected),
        ),
    ]
    if not rejected:
        row.notes.append("nothing was shed: is MAX_IN_FLIGHT implemented in this build?")
    return row


# --- L8 --------------------------------------------------------------------------------------


def pool_size() -> int:
    """The gateway's upstream pool size, read from its code (``new_session``'s default)."""
    from lowart.providers.http import new_session  # noqa: PLC0415 (only here)

    parameter = inspect.signature(new_session).parameters.get("pool_size")
    if parameter is None or not isinstance(parameter.default, int):
        raise RuntimeError("the gateway's new_session() has no pool_size default any more")
    return parameter.default


async def _l8(gw: Gateway, model: str) -> list[Call]:
    body = _body(model)
    async with session() as client:
        return await count_limited(
            L8_REQUESTS, L8_CONCURRENCY, lambda: post(client, gw.chat_url, body, gw.auth)
        )


def l8(gw: Gateway, slow: SlowClient, slow_port: int) -> LoadRow:
    """Connection reuse to the upstream over 10k requests."""
    model = "bench-l8"
    gw.add_model(model, slow.v1(1, 0))
    pool = pool_size()
    row = LoadRow(
        "L8",
        "Connection reuse to upstream",
        f"{L8_REQUESTS:,} non-streaming requests, {L8_CONCURRENCY} at a time, through the "
        "gateway; the upstream counts the connections that carried them",
    )
    slow.reset()
    waits_before = count(slow_port, TIME_WAIT)
    calls = asyncio.run(_l8(gw, model))
    stats = slow.stats()
    waits_after = count(slow_port, TIME_WAIT)
    ok = sum(1 for c in calls if c.status == 200)
    row.checks += [
        Check("every request answered", f"{ok:,} of {len(calls):,} with 200", ok == len(calls)),
        Check(
            f"upstream sees <= pool-size connections ({pool})",
            f"{stats['connections']} connections for {stats['requests']:,} requests",
            int(stats["connections"]) <= pool,
        ),
        Check(
            "no TIME_WAIT explosion",
            f"{waits_before} sockets in TIME_WAIT on the upstream port before, {waits_after} "
            f"after (without reuse: about {L8_REQUESTS:,} more)",
            waits_after - waits_before <= pool,
        ),
    ]
    return row


def run_all(
    stack: contextlib.ExitStack, gw: Gateway, slow: SlowClient, slow_port: int
) -> list[LoadRow]:
    """Every row; a row that breaks is reported as failed with the error, and the rest run."""
    rows: list[LoadRow] = []
    plan: Sequence[tuple[str, str, Callable[[], LoadRow]]] = (
        ("L1", "Sustained non-stream RPS", lambda: l1(gw, slow)),
        ("L3", "Many concurrent streams", lambda: l3(gw, slow)),
        ("L4", "Slow reader", lambda: l4(stack, gw, slow)),
        ("L7", "Overload shedding", lambda: l7(stack, slow)),
        ("L8", "Connection reuse to upstream", lambda: l8(gw, slow, slow_port)),
    )
    for name, title, step in plan:
        log(f"{name}: {title}")
        started = time.monotonic()
        try:
            row = step()
        except (RuntimeError, OSError, ValueError, KeyError) as exc:
            row = LoadRow(name, title, "did not complete")
            row.checks.append(Check("ran", f"{type(exc).__name__}: {exc}", False))
        verdict = {True: "PASS", False: "FAIL", None: "reported"}[row.passed]
        log(f"{name}: {verdict} in {time.monotonic() - started:.0f} s")
        for check in row.checks:
            log(f"  {check.criterion}: {check.figure}")
        rows.append(row)
    return rows

"""Throughput and latency rows with ``wrk``: one target, one mode, one connection count."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from contextlib import AbstractContextManager
from dataclasses import dataclass

from procs import BENCH, cpu_seconds, log
from targets import MODE_LABEL, Target

WARMUP_S = 2
CONNECTIONS = (1, 64)
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


@dataclass(frozen=True)
class Run:
    """What one ``wrk --latency`` run printed."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass(frozen=True)
class Row:
    """One row of the table: a target, a mode and a connection count."""

    target: str
    mode: str
    connections: int
    run: Run | None  # None: not measured
    reason: str = ""  # why not, or what went wrong
    cpu_us: float | None = None  # the serving process tree's CPU per request (user + system)


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise ValueError(f"unreadable wrk latency {value!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse(text: str) -> Run:
    """Requests/s, p50, p99, requests completed and errors from ``wrk --latency``."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    done = re.search(r"(\d+) requests in", text)
    if not (rps and done):
        raise ValueError(f"unreadable wrk output:\n{text}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors += int(non2xx[1]) if non2xx else 0
    nan = float("nan")
    return Run(
        rps=float(rps[1]),
        p50_ms=_ms(p50[1]) if p50 else nan,
        p99_ms=_ms(p99[1]) if p99 else nan,
        requests=int(done[1]),
        errors=errors,
    )


def run(target: Target, mode: str, connections: int, seconds: int) -> Run:
    """``wrk -t1 -cN -dS --latency`` against the target's URL for the mode."""
    headers = target.headers_for(mode)
    auth = headers.pop("Authorization", "")
    env = {
        **os.environ,
        "BENCH_BODY": target.body(mode),
        "BENCH_AUTH": auth,
        "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in headers.items()),
    }
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    argv += ["-s", str(BENCH / "post.lua"), target.urls[mode]]
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    return parse(done.stdout)


def measure(
    target: Target,
    mode: str,
    connections: int,
    seconds: int,
    during: AbstractContextManager[object] | None = None,
) -> tuple[Row, int]:
    """A warm-up, then the measured run; returns the row and every request sent.

    ``during`` is entered around the measured run only (e.g. a memory sampler)."""
    warm = run(target, mode, connections, WARMUP_S)
    pid = target.pids.get(mode)
    before = cpu_seconds(pid) if pid else 0.0
    with during or contextlib.nullcontext():
        result = run(target, mode, connections, seconds)
    cpu_us = (
        (cpu_seconds(pid) - before) / result.requests * 1e6 if pid and result.requests else None
    )
    log(
        f"{target.name:12} {MODE_LABEL[mode]:10} c={connections:<3} {result.rps:10.0f} req/s  "
        f"p50 {result.p50_ms:8.2f} ms  p99 {result.p99_ms:8.2f} ms  errors {result.errors}  "
        f"CPU/request {f'{cpu_us:.0f} us' if cpu_us is not None else '-'}"
    )
    return Row(
        target.name, mode, connections, result, cpu_us=cpu_us
    ), result.requests + warm.requests

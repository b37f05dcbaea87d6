"""Scaling: ``WORKERS=2`` with Redis against one worker with Redis, non-streaming at 64
connections, measured in alternating rounds. wrk, nginx and the workers share the machine's
cores, so the ratio is what this machine gives, not what two free cores would."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass

from gateway import start_gateway
from memory import rss_kib
from procs import log
from targets import Target, Upstream, check, lowart_target, verify
from wrk import Run, run

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CONNECTIONS = 64
AGREE = 8  # consecutive good checks that show every worker serves the new models


@dataclass(frozen=True)
class Scaled:
    """One gateway configuration's run, or why it has none."""

    workers: int
    run: Run | None
    rss_kib: int = 0
    reason: str = ""


def _start(stack: contextlib.ExitStack, workers: int, upstream: Upstream) -> Target:
    name = f"lowart-w{workers}"
    env = {"WORKERS": str(workers), "REDIS_URL": REDIS_URL}
    # A user of its own: Redis keeps the RPM windows and the quota by user.
    user = f"bench-w{workers}-{secrets.token_hex(4)}"
    gw = start_gateway(stack, name, env, user_id=user)
    target = lowart_target(gw, upstream, name)
    _until_every_worker_knows(target)
    verify(target)
    run(target, "json", CONNECTIONS, 2)
    return target


def _until_every_worker_knows(target: Target, timeout_s: float = 10.0) -> None:
    """The models were created through one worker; the others learn of them over Redis within
    about a second. Wait until ``AGREE`` checks in a row pass (the workers take turns), or give
    up at ``timeout_s`` and let ``verify`` report what failed."""
    deadline, passed = time.monotonic() + timeout_s, 0
    while passed < AGREE and time.monotonic() < deadline:
        passed = passed + 1 if not check(target) else 0
        if not passed:
            time.sleep(0.1)


def measure(seconds: int, upstream: Upstream, rounds: int) -> tuple[Scaled, Scaled]:
    """One worker and two, both started, then measured ``rounds`` times in alternation (the
    machine's drift falls alike on both); each keeps its median run."""
    runs: dict[int, list[Run]] = {1: [], 2: []}
    rss: dict[int, int] = {}
    with contextlib.ExitStack() as stack:
        try:
            targets = {workers: _start(stack, workers, upstream) for workers in runs}
        except (RuntimeError, OSError) as exc:
            reason = str(exc)
            log(f"scaling: not available: {reason}")
            return Scaled(1, None, reason=reason), Scaled(2, None, reason=reason)
        for _ in range(rounds):
            for workers, target in targets.items():
                result = run(target, "json", CONNECTIONS, seconds)
                log(f"{target.name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms")
                runs[workers].append(result)
        for workers, target in targets.items():
            rss[workers] = rss_kib(target.pids["json"])
    median = {w: sorted(found, key=lambda r: r.rps)[len(found) // 2] for w, found in runs.items()}
    return Scaled(1, median[1], rss[1]), Scaled(2, median[2], rss[2])

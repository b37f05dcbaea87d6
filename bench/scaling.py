"""Scaling: ``WORKERS=2`` with Redis against one worker with Redis, non-streaming at 64
connections. Each runs as a fresh gateway; wrk, nginx and the workers share the machine's cores,
so the ratio is what this machine gives, not what two free cores would."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass

from gateway import start_gateway
from memory import rss_kib
from procs import WORK, cause, log
from targets import Target, Upstream, lowart_target, verify
from wrk import Run, run

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CONNECTIONS = 64


@dataclass(frozen=True)
class Scaled:
    """One gateway configuration's run, or why it has none."""

    workers: int
    run: Run | None
    rss_kib: int = 0
    reason: str = ""


def _one(workers: int, seconds: int, upstream: Upstream) -> Scaled:
    name = f"lowart-w{workers}"
    env = {"WORKERS": str(workers), "REDIS_URL": REDIS_URL}
    try:
        with contextlib.ExitStack() as stack:
            # A user of its own: Redis keeps the RPM windows and the quota by user.
            user = f"bench-w{workers}-{secrets.token_hex(4)}"
            gw = start_gateway(stack, name, env, user_id=user)
            target: Target = lowart_target(gw, upstream, name)
            verify(target)
            run(target, "json", CONNECTIONS, 2)
            result = run(target, "json", CONNECTIONS, seconds)
            rss = rss_kib(gw.pid)
    except (RuntimeError, OSError) as exc:
        reason = (
            str(exc) if "failed to start" in str(exc) else f"{exc}; {cause(WORK / f'{name}.log')}"
        )
        log(f"{name}: not available: {reason}")
        return Scaled(workers, None, reason=reason)
    log(f"{name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms (REDIS_URL={REDIS_URL})")
    return Scaled(workers, result, rss)


def measure(seconds: int, upstream: Upstream) -> tuple[Scaled, Scaled]:
    """One worker, then two."""
    return _one(1, seconds, upstream), _one(2, seconds, upstream)

"""The retention sweeper's cost on requests (docs/operations.md, "Retention").

One gateway on SQLite, its sweeper passing every second (``RETENTION_SWEEP_S=1``) and keeping
usage rows an hour (``USAGE_RETENTION_S=3600``), batches and pauses at their defaults. wrk
measures it twice (non-streaming, 64 connections, a 2 s warm-up then
``BENCH_SWEEPER_SECONDS`` (4)): first with nothing to delete; then once
``BENCH_SWEEPER_ROWS`` (200,000) usage rows two hours old, written straight into its SQLite
file in one transaction, are being deleted. The expired rows are counted as the measured window
begins and ends: their difference over the window is the deletion rate while serving. With
``BENCH_SWEEPER_ROUNDS`` (1) above one, the two sides alternate (what the sweeper left is deleted
directly between rounds) and each keeps its median round.

Run alone: ``.venv/bin/python bench/sweeper.py``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tools
from gateway import Gateway, start_gateway
from procs import WORK, log
from targets import Target, Upstream, lowart_target, start_nginx, verify
from wrk import WARMUP_S, Run, measure

ROWS = int(os.environ.get("BENCH_SWEEPER_ROWS", "200000"))
SECONDS = int(os.environ.get("BENCH_SWEEPER_SECONDS", "4"))
ROUNDS = max(1, int(os.environ.get("BENCH_SWEEPER_ROUNDS", "1")))
CONNECTIONS = 64
KEEP_S = 3600  # USAGE_RETENTION_S; the rows written are twice as old
BATCH, PAUSE_S = 500, 0.05  # RETENTION_BATCH and RETENTION_PAUSE_S, their defaults
ENV = {
    "USAGE_RETENTION_S": str(KEEP_S),
    "RETENTION_SWEEP_S": "1",
    "RETENTION_BATCH": str(BATCH),
    "RETENTION_PAUSE_S": str(PAUSE_S),
}


@dataclass(frozen=True)
class Side:
    """One measured window: wrk's figures and the expired rows deleted during it."""

    label: str
    run: Run
    cpu_us: float | None  # the gateway's CPU per request
    before: int  # expired rows at the window's start
    after: int  # and at its end
    window_s: float

    @property
    def rate(self) -> float:
        """Expired rows deleted per second of the window."""
        return (self.before - self.after) / self.window_s if self.window_s else 0.0


@dataclass
class _Window:
    """The expired rows and the clock at the measured run's start and end."""

    db: Path
    before: int = 0
    after: int = 0
    seconds: float = 0.0

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        self.before, started = _expired(self.db), time.monotonic()
        yield
        self.after, self.seconds = _expired(self.db), time.monotonic() - started


def _expired(db: Path) -> int:
    uri = f"file:{db}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
        query = "SELECT COUNT(*) FROM usage_records WHERE created_at < ?"
        return int(conn.execute(query, (time.time() - KEEP_S,)).fetchone()[0])


def _fill(gw: Gateway) -> None:
    """``ROWS`` usage rows two hours old, in one transaction."""
    old = time.time() - 2 * KEEP_S
    user = gw.user_id
    rows = (
        (f"bench-expired-{n}", user, "bench-json", "gpt-4o", 10, 20, "ok", 1.0, old + n / ROWS)
        for n in range(ROWS)
    )
    started = time.monotonic()
    with contextlib.closing(sqlite3.connect(gw.home / "lowart.db", timeout=30)) as conn, conn:
        conn.executemany(
            "INSERT INTO usage_records (request_id, user_id, requested_model, served_model, "
            "prompt_tokens, completion_tokens, status, latency_ms, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    log(f"sweeper: {ROWS:,} expired usage rows written in {time.monotonic() - started:.1f} s")


def _until_sweeping(db: Path, timeout_s: float = 30.0) -> None:
    """Until the sweeper has deleted its first batch."""
    deadline = time.monotonic() + timeout_s
    while _expired(db) >= ROWS:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sweeper deleted nothing within {timeout_s:.0f} s")
        time.sleep(0.1)


def _side(target: Target, db: Path, label: str) -> Side:
    window = _Window(db)
    row, _ = measure(target, "json", CONNECTIONS, SECONDS, window.watch())
    assert row.run is not None
    side = Side(label, row.run, row.cpu_us, window.before, window.after, window.seconds)
    log(f"sweeper, {label}: {side.before - side.after:,} rows deleted, {side.rate:,.0f} rows/s")
    return side


def _clear(db: Path) -> None:
    """Delete what the sweeper left, so that its pass ends and the next round starts idle."""
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, conn:
        conn.execute("DELETE FROM usage_records WHERE created_at < ?", (time.time() - KEEP_S,))


def _median(sides: list[Side]) -> Side:
    return sorted(sides, key=lambda s: s.run.rps)[len(sides) // 2]


def measure_cost(upstream: Upstream) -> list[Side]:
    """Nothing to sweep, then sweeping, ``ROUNDS`` times in alternation, on a gateway of its own
    (started and stopped here); each side keeps its median round (by requests/s)."""
    idle: list[Side] = []
    busy: list[Side] = []
    with contextlib.ExitStack() as stack:
        gw = start_gateway(stack, "lowart-sweeper", ENV)
        target = lowart_target(gw, upstream, "lowart-sweeper")
        verify(target)
        db = gw.home / "lowart.db"
        for _ in range(ROUNDS):
            idle.append(_side(target, db, "nothing to sweep"))
            _fill(gw)
            _until_sweeping(db)
            busy.append(_side(target, db, f"sweeping {ROWS:,} expired rows"))
            _clear(db)
    return [_median(idle), _median(busy)]


def lines(sides: list[Side]) -> list[str]:
    """The report's section."""
    if not sides:
        return ["Not measured (`BENCH_SWEEPER=0`)."]
    out = [
        f"One gateway, its sweeper passing every second (`RETENTION_SWEEP_S=1`, "
        f"`RETENTION_BATCH={BATCH}`, `RETENTION_PAUSE_S={PAUSE_S:g}`), measured non-streaming at "
        f"{CONNECTIONS} connections ({WARMUP_S} s warm-up, then {SECONDS} s): first with nothing "
        f"to delete, then while it deletes {ROWS:,} expired usage rows written beforehand, "
        f"the median of {ROUNDS} round(s) taken in turn (rows = expired rows deleted during the "
        "measured window). With nothing to delete the sweeper still passes every second (a count "
        "per table, then every table's size); while it deletes, one pass lasts the window.",
        "",
        "| Side | req/s | p50 ms | p99 ms | errors | CPU us/request | rows deleted | rows/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in sides:
        cpu = f"{s.cpu_us:,.0f}" if s.cpu_us is not None else "-"
        out.append(
            f"| {s.label} | {s.run.rps:,.0f} | {s.run.p50_ms:.3f} | {s.run.p99_ms:.3f} "
            f"| {s.run.errors} | {cpu} | {s.before - s.after:,} | {s.rate:,.0f} |"
        )
    idle, busy = sides[0].run, sides[-1].run
    ratio = busy.rps / idle.rps if idle.rps else float("nan")
    still = "still running" if sides[-1].after else "**finished before the window ended**"
    out += [
        "",
        f"The sweep added {busy.p50_ms - idle.p50_ms:+.3f} ms at p50 and "
        f"{busy.p99_ms - idle.p99_ms:+.3f} ms at p99 ({ratio:.2f}x the requests/s), deleting "
        f"{sides[-1].rate:,.0f} rows/s (the pauses alone allow at most "
        f"{BATCH / PAUSE_S:,.0f}); it was {still} at the window's end.",
    ]
    return out


def main() -> int:
    _, nginx = tools.ensure()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        sides = measure_cost(start_nginx(stack, nginx))
    print("\n".join(lines(sides)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

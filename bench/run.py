"""``make bench``: Lowart against its floor, its ceiling and its peers, measured in one run.

Systems, each measured with ``wrk`` non-streaming and streaming at 1 and 64 connections
(:mod:`wrk`), then for time to first token (:mod:`ttft`):

- ``nginx``: the fake upstream (``shared/peers/upstream-nginx.conf``) called directly, the ceiling;
- ``passthrough``: ``bench/passthrough.py``, a bare ASGI + aiohttp proxy, the floor any Python
  design pays;
- ``lowart``: ``lowart serve`` on SQLite with the key check, RPM limit, token quota, exact billing
  and metrics all on (:mod:`gateway`);
- ``litellm`` and ``portkey``: the peers, started with ``shared/peers/*.sh`` (:mod:`peers`).

Then Lowart's memory (:mod:`memory`), the cost of checkpointing 1,000 streams in flight
(:mod:`checkpoints`), the retention sweeper's cost on requests while it deletes 200,000 expired
rows (:mod:`sweeper`), ``WORKERS=2`` against one worker (:mod:`scaling`), the cost of
transform scripts (:mod:`transform_cost`), and the load rows of the reliability catalogue
against a slow upstream (:mod:`load_rows`, :mod:`slow_upstream`). The report (:mod:`report`,
targets judged by :mod:`goals`) is printed and written to ``bench/out/report.md`` with its chart
``bench/out/performance.png`` (:mod:`chart`).

Settings, from the environment:

- ``BENCH_SECONDS`` (default 8): seconds per wrk measurement, after a 2 s warm-up;
  ``BENCH_ROUNDS`` (default 3): runs of the pass-through and Lowart per cell, in alternation
  (the median is kept);
- ``BENCH_PEERS=0``: leave out LiteLLM and Portkey; ``BENCH_SCALING=0``: leave out the workers
  comparison; ``BENCH_CHECKPOINT=0``: leave out the checkpoint cost (its own settings are in
  :mod:`checkpoints`); ``BENCH_SWEEPER=0``: leave out the sweeper's cost (its own settings are
  in :mod:`sweeper`); ``BENCH_LOAD_ROWS=0``: leave out the load rows (their own settings are in
  :mod:`load_rows`); ``BENCH_TRANSFORMS=0``: leave out the transform scripts' cost
  (``BENCH_TRANSFORM_SAMPLES``, default 300); ``BENCH_TTFT_SAMPLES`` (default 400);
- ``BENCH_DOCS=1``: also write ``docs/performance.md`` and ``docs/performance.png``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import chart
import checkpoints
import load_rows
import machine
import memory
import peers
import procs
import report
import scaling
import slow_upstream
import sweeper
import tools
import transform_cost
import ttft
from gateway import Gateway, start_gateway
from goals import Memory, judge
from procs import OUT, REPO, WORK, log
from slow_upstream import SlowClient
from targets import (
    MODES,
    Target,
    Unavailable,
    lowart_target,
    nginx_target,
    responses_target,
    start_nginx,
    start_passthrough,
)
from targets import verify as verify_target
from wrk import CONNECTIONS, Row, measure

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = max(1, int(os.environ.get("BENCH_ROUNDS", "3")))
REPEATED = ("passthrough", "lowart")  # measured ROUNDS times each, in alternation
DOCS = REPO / "docs"
NOTES = REPO / "bench" / "targets-notes.md"  # why the missed targets are missed (by hand)
SETTINGS = (
    "BENCH_SECONDS",
    "BENCH_ROUNDS",
    "BENCH_PEERS",
    "BENCH_SCALING",
    "BENCH_CHECKPOINT",
    "BENCH_CHECKPOINT_STREAMS",
    "BENCH_CHECKPOINT_SECONDS",
    "BENCH_CHECKPOINT_ROUNDS",
    "BENCH_SWEEPER",
    "BENCH_SWEEPER_ROWS",
    "BENCH_SWEEPER_SECONDS",
    "BENCH_SWEEPER_ROUNDS",
    "BENCH_LOAD_ROWS",
    "BENCH_TTFT_SAMPLES",
    "BENCH_TRANSFORMS",
    "BENCH_TRANSFORM_SAMPLES",
    "BENCH_L1_SECONDS",
    "BENCH_L4_SECONDS",
    "BENCH_L7_SECONDS",
    "BENCH_L7_MAX_IN_FLIGHT",
)


def _on(name: str) -> bool:
    return os.environ.get(name, "1").strip() not in {"0", "false", "no", "off"}


def command() -> str:
    """The command that reproduces this run (the settings that were set, then the entry)."""
    set_ = " ".join(f"{k}={os.environ[k]}" for k in SETTINGS if k in os.environ)
    entry = "make bench" if "MAKELEVEL" in os.environ else ".venv/bin/python bench/run.py"
    return f"{set_} {entry}".strip()


def _median(runs: list[tuple[Row, int]]) -> Row:
    """The run with the median requests/s (its latencies stay its own)."""
    ranked = sorted(runs, key=lambda pair: pair[0].run.rps if pair[0].run else 0.0)
    return ranked[len(ranked) // 2][0]


def measure_rows(
    systems: list[Target | Unavailable], lowart_pid: int
) -> tuple[list[Row], dict[str, int], int]:
    """Every wrk row; Lowart's RSS peak per mode at 64 connections; requests sent to Lowart.

    Each cell (mode, connections) runs the systems back to back, so that the machine's drift
    (other work shares it) falls alike on all of them. The pass-through and Lowart, whose ratio
    the main targets are, run ``ROUNDS`` times in alternation; each keeps its median run."""
    found: dict[tuple[str, str, int], list[tuple[Row, int]]] = {}
    peaks: dict[str, int] = {}
    for mode in MODES:
        for conns in CONNECTIONS:
            for round_ in range(ROUNDS):
                for system in systems:
                    if round_ and system.name not in REPEATED:
                        continue
                    key = (system.name, mode, conns)
                    found.setdefault(key, []).append(_one(system, mode, conns, lowart_pid, peaks))
    rows = [_median(runs) for runs in found.values()]
    sent = sum(done for (name, _, _), runs in found.items() if name == "lowart" for _, done in runs)
    names = [system.name for system in systems]
    return sorted(rows, key=lambda r: names.index(r.target)), peaks, sent


def _one(
    system: Target | Unavailable, mode: str, conns: int, lowart_pid: int, peaks: dict[str, int]
) -> tuple[Row, int]:
    """One wrk measurement (and the requests it sent), or the row saying why there is none."""
    if isinstance(system, Unavailable):
        return Row(system.name, mode, conns, None, system.reason[:300]), 0
    if mode in system.broken:
        return Row(system.name, mode, conns, None, system.broken[mode][:300]), 0
    sampler = memory.Sampler(lowart_pid)
    watch = system.name == "lowart" and conns == 64
    try:
        row, done = measure(system, mode, conns, SECONDS, sampler.running() if watch else None)
    except (subprocess.SubprocessError, ValueError) as exc:
        reason = f"wrk failed: {str(exc)[:200]}"
        log(f"{system.name} {mode} c={conns}: {reason}")
        return Row(system.name, mode, conns, None, reason), 0
    if watch:
        peaks[mode] = max(peaks.get(mode, 0), sampler.peak)
    return row, done


def write(text: str, png_from: Path, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    if png_from.resolve() != (folder / "performance.png").resolve():
        shutil.copyfile(png_from, folder / "performance.png")
    log(f"written to {(folder / name).relative_to(REPO)} and performance.png beside it")


def _held(gw: Gateway, slow: SlowClient) -> tuple[memory.Held | None, str]:
    """Many streams held open at once, or why they could not be."""
    try:
        return memory.hold_streams(gw, slow), ""
    except (OSError, RuntimeError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


def main() -> int:
    started = dt.datetime.now(dt.UTC)
    load_at_start = machine.load_average()
    clock = time.monotonic()
    _, nginx = tools.ensure()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        upstream = start_nginx(stack, nginx)
        direct = nginx_target(upstream)
        passthrough = start_passthrough(stack, upstream)
        slow, slow_port = slow_upstream.start(stack)
        gw = start_gateway(stack, "lowart")
        lowart = lowart_target(gw, upstream)
        responses = responses_target(gw)
        for target in (direct, passthrough, lowart, responses):
            verify_target(target)
        idle = memory.rss_kib(gw.pid)
        log(f"lowart: idle RSS {memory.mib(idle)} after start-up and one request per mode")
        with contextlib.ExitStack() as peer_stack:
            systems: list[Target | Unavailable] = [direct, passthrough, lowart, responses]
            if _on("BENCH_PEERS"):
                systems += [
                    peers.start_litellm(peer_stack, upstream),
                    peers.start_portkey(peer_stack, upstream),
                ]
            rows, peaks, sent = measure_rows(systems, gw.pid)
            # time to first token is measured on chat streams (the Responses row has none)
            ttfts = ttft.measure([s for s in systems if isinstance(s, Target) and s.api == "chat"])
        held, held_reason = _held(gw, slow)
        mem = Memory(idle, peaks, held, held_reason)
        inflight = checkpoints.measure(slow) if _on("BENCH_CHECKPOINT") else []
        swept = sweeper.measure_cost(upstream) if _on("BENCH_SWEEPER") else []
        scaled = scaling.measure(SECONDS, upstream, ROUNDS) if _on("BENCH_SCALING") else None
        ttft_sent = sum(t.sent for t in ttfts if t.target == "lowart")
        evidence = report.collect(gw, sent + len(MODES) + ttft_sent)
        loads = load_rows.run_all(stack, gw, slow, slow_port) if _on("BENCH_LOAD_ROWS") else []
        # After the evidence: these requests are not in the count it checks.
        costs = transform_cost.measure(gw, upstream) if _on("BENCH_TRANSFORMS") else []
    goals = judge(rows, ttfts, mem, scaled)
    minutes = (time.monotonic() - clock) / 60
    names = [s.name for s in systems]
    png = OUT / "performance.png"
    caption = (
        f"{started:%Y-%m-%d}, {machine.cpu_model()}, {os.cpu_count()} cores, "
        f"`{command()}`; wrk, the upstream and the system share the cores"
    )
    chart.draw(rows, names, png, caption.replace("`", ""))
    results = report.Results(
        started=started,
        load_at_start=load_at_start,
        command=command(),
        seconds=SECONDS,
        rounds=ROUNDS,
        rows=rows,
        ttfts=ttfts,
        memory=mem,
        scaled=scaled,
        goals=goals,
        loads=loads,
        checkpoints=tuple(checkpoints.lines(inflight)),
        transforms=tuple(transform_cost.lines(costs)) if costs else (),
        sweeper=tuple(sweeper.lines(swept)),
        evidence=evidence,
        notes=NOTES.read_text() if NOTES.exists() else "",
        logged=[
            (log_file.stem, *procs.logged_errors(log_file))
            for log_file in sorted(WORK.glob("lowart*.log"))
        ],
    )
    text = report.render(results)
    text += f"\nThe whole run took {minutes:.1f} minutes.\n"
    print()
    print(text)
    write(text, png, OUT, "report.md")
    if os.environ.get("BENCH_DOCS", "0").strip() == "1":
        docs = DOCS_INTRO + text.split("\n", 1)[1]
        profile = OUT / "profile.md"
        if profile.exists():  # the latest `bench/profile.py`, one level down
            docs += "\n#" + profile.read_text().replace("\n#", "\n##")
        write(docs, png, DOCS, "performance.md")
    return 0


DOCS_INTRO = """# Performance

`make bench` (`bench/run.py`) measures Lowart side by side with the fake upstream called
directly (nginx, the ceiling), a bare aiohttp pass-through (`bench/passthrough.py`, the floor any
Python design pays) and the peers users would pick instead (LiteLLM proxy and Portkey, installed
by `shared/peers/*.sh` into the git-ignored `bench/.peers`): requests/s and latency with wrk,
time to first token with an aiohttp client, Lowart's memory, the cost of checkpointing streams in
flight and of the retention sweeper, `WORKERS=2` against one worker, and the load rows of the
reliability catalogue (L1, L3, L4, L7, L8). `.venv/bin/python bench/profile.py` shows where a
request's time goes, stage by stage (`bench/out/profile.md`). `BENCH_DOCS=1 make bench` rewrites
this page from a fresh run.
"""


if __name__ == "__main__":
    sys.exit(main())

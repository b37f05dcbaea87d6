"""The markdown report: the machine, the table with its ratios, TTFT, memory, the costs of
checkpoints and of the retention sweeper, scaling, the targets met or missed, the load rows, and
the evidence that Lowart had everything on."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

import machine
from gateway import Gateway
from goals import BASELINE, Goal, Memory
from load_rows import LoadRow, pool_size
from memory import mib
from scaling import Scaled
from targets import MODE_LABEL
from ttft import Ttft
from wrk import WARMUP_S, Row

PEERS = ("litellm", "portkey")
MARK = {True: "met", False: "**missed**", None: "not measured"}
VERDICT = {True: "PASS", False: "**FAIL**", None: "reported"}


@dataclass(frozen=True)
class Evidence:
    """What Lowart counted and billed, read after the runs."""

    sent: int
    usage: list[tuple[str, str, int, int, int]]  # model, status, rows, estimated, tokens
    metrics: dict[str, float]
    user: dict[str, object]


def collect(gw: Gateway, sent: int) -> Evidence:
    usage = gw.usage_rows()
    metrics = gw.metrics()
    user = gw.admin("GET", f"/admin/users/{gw.user_id}")
    return Evidence(sent, usage, metrics, user)


def _cell(text: str) -> str:
    """Text safe in a markdown table cell."""
    return " ".join(text.replace("|", "/").split())


def _ratio(value: float, reference: float | None) -> str:
    if reference is None:
        return "-"
    return f"{value / reference:,.2f}x" if reference else "n/a (0 req/s)"


def table(rows: Sequence[Row]) -> str:
    """One line per target, mode and connection count, with ratios against the references."""

    def ref(name: str, mode: str, conns: int) -> Row | None:
        for r in rows:
            if (r.target, r.mode, r.connections) == (name, mode, conns) and r.run:
                return r
        return None

    lines = [
        "| system | mode | conns | req/s | p50 ms | p99 ms | errors | vs passthrough "
        "| vs litellm | vs portkey | added p50 vs passthrough (ms) | CPU us/request |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        label = f"| {r.target} | {MODE_LABEL[r.mode]} | {r.connections} "
        if r.run is None:
            lines.append(label + f"| n/a: {_cell(r.reason)} | | | | | | | | |")
            continue
        base = ref(BASELINE, r.mode, r.connections)
        ratios = [
            _ratio(
                r.run.rps, x.run.rps if (x := ref(name, r.mode, r.connections)) and x.run else None
            )
            for name in (BASELINE, *PEERS)
        ]
        added = f"{r.run.p50_ms - base.run.p50_ms:+.3f}" if base and base.run else "-"
        cpu = f"{r.cpu_us:,.0f}" if r.cpu_us is not None else "-"
        lines.append(
            label + f"| {r.run.rps:,.0f} | {r.run.p50_ms:.3f} | {r.run.p99_ms:.3f} "
            f"| {r.run.errors} | {' | '.join(ratios)} | {added} | {cpu} |"
        )
    return "\n".join(lines)


def ttft_table(ttfts: Sequence[Ttft]) -> str:
    base = next((t for t in ttfts if t.target == BASELINE), None)
    lines = [
        "| system | samples | TTFT p50 ms | TTFT p99 ms | added p50 vs passthrough (ms) "
        "| added p99 vs passthrough (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t in ttfts:
        if t.samples == 0:
            lines.append(
                f"| {t.target} | 0 | n/a: {_cell(t.reason or 'no stream completed')} | | | |"
            )
            continue
        a50 = f"{(t.p50 - base.p50) * 1000:+.3f}" if base and base.samples else "-"
        a99 = f"{(t.p99 - base.p99) * 1000:+.3f}" if base and base.samples else "-"
        lines.append(
            f"| {t.target} | {t.samples} | {t.p50 * 1000:.3f} | {t.p99 * 1000:.3f} "
            f"| {a50} | {a99} |"
        )
    return "\n".join(lines)


def memory_lines(memory: Memory) -> list[str]:
    lines = [
        f"- Idle (after start-up and one request per mode): {mib(memory.idle_kib)}",
        *(
            f"- Under load ({MODE_LABEL[mode]}, 64 connections, sampled every 0.2 s): peak "
            f"{mib(peak)}"
            for mode, peak in memory.load_peak_kib.items()
        ),
    ]
    held = memory.held
    if held is None:
        lines.append(f"- 1,000 concurrent streams: not measured: {memory.held_reason}")
    else:
        lines.append(
            f"- {held.requested:,} concurrent streams held open (slow upstream, a chunk every "
            f"0.5 s): peak {mib(held.peak_kib)} (before: {mib(held.before_kib)}; 3 s after "
            f"they were closed: {mib(held.after_kib)}). {held.receiving:,} of them had their "
            f"first chunk ({held.seconds_to_open:.1f} s after they were sent) and the upstream "
            f"was serving {held.upstream_open:,} streams when they were closed"
            + (
                f"; the others waited for an upstream connection (the gateway's pool holds "
                f"{pool_size()})"
                if held.receiving < held.requested
                else ""
            )
        )
        if held.after_kib > held.peak_kib + 50 * 1024:
            lines.append(
                "  - The rise after the streams closed is most likely the offline tokenizer "
                "(bpe-openai, o200k_base: about 140 MiB when first used, measured in a bare "
                "Python), loaded to estimate the tokens of the cut streams, which are billed "
                "by estimate."
            )
    return lines


def scaling_lines(scaled: tuple[Scaled, Scaled] | None, rows: Sequence[Row]) -> list[str]:
    if scaled is None:
        return ["Skipped (`BENCH_SCALING=0`)."]
    lines = [
        "Both run at once, idle in turn: non-streaming at 64 connections, measured in "
        "alternating rounds, the median run of each shown.",
        "",
        "| gateway | req/s | p50 ms | p99 ms | errors | RSS after |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in scaled:
        if s.run is None:
            lines.append(f"| WORKERS={s.workers} + Redis | n/a: {_cell(s.reason)} | | | | |")
        else:
            lines.append(
                f"| WORKERS={s.workers} + Redis | {s.run.rps:,.0f} | {s.run.p50_ms:.3f} "
                f"| {s.run.p99_ms:.3f} | {s.run.errors} | {mib(s.rss_kib)} |"
            )
    one, two = scaled
    if one.run and two.run:
        lines += ["", f"Ratio, 2 workers / 1 worker: **{two.run.rps / one.run.rps:.2f}x**."]
    main = next(
        (r.run for r in rows if (r.target, r.mode, r.connections) == ("lowart", "json", 64)),
        None,
    )
    if main is not None:
        lines += [
            "",
            f"For reference, the main Lowart above (one worker, no Redis: limits and quota in "
            f"process) did {main.rps:,.0f} req/s in the same mode.",
        ]
    return lines


def goal_lines(goals: Sequence[Goal]) -> list[str]:
    lines = ["| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {g.target} | {_cell(g.figure)} | {MARK[g.met]} |" for g in goals]
    return lines


def load_row_lines(rows: Sequence[LoadRow]) -> list[str]:
    lines = [
        "| row | test | verdict |",
        "| --- | --- | --- |",
        *(f"| {r.row} | {r.title} | {VERDICT[r.passed]} |" for r in rows),
    ]
    for r in rows:
        lines += [
            "",
            f"### {r.row}: {r.title}: {VERDICT[r.passed]}",
            "",
            f"How: {r.how}.",
            "",
            "| criterion | measured | verdict |",
            "| --- | --- | --- |",
            *(f"| {c.criterion} | {_cell(c.figure)} | {VERDICT[c.passed]} |" for c in r.checks),
        ]
        lines += [f"\n{note[0].upper()}{note[1:]}." for note in r.notes]
    return lines


def evidence_lines(ev: Evidence) -> list[str]:
    lines = [
        f"- Requests sent to the main Lowart before the memory test (verification, wrk's "
        f"warm-ups and runs by wrk's completed count, the TTFT streams): {ev.sent:,}. wrk does "
        "not count the requests in flight when it stops (up to one per connection per run), "
        "which the gateway still serves and bills; the memory test's 1,000 streams are "
        "`bench-hold`.",
        f"- Usage rows in its database: {sum(n for _, _, n, _, _ in ev.usage):,}, by model and "
        "status:",
    ]
    lines += [
        f"  - {model} {status}: {n:,} rows, {tokens:,} tokens"
        + (f" ({est:,} estimated)" if est else "")
        for model, status, n, est, tokens in ev.usage
    ]
    user = ev.user
    lines.append(
        f"- User `{user.get('user_id')}`: token_used {user.get('token_used'):,} of quota "
        f"{user.get('token_quota'):,}; rpm_limit {user.get('rpm_limit'):,}"
    )
    lines.append("- `GET /metrics`:")
    wanted = ("gateway_requests_total", "gateway_tokens_total", "gateway_rate_limited_total")
    shown = [
        f"  - `{key} {value:,.0f}`"
        for key, value in sorted(ev.metrics.items())
        if key.split("{")[0] in wanted and not math.isnan(value)
    ]
    lines += shown or ["  - none of the gateway's request and token series were found"]
    return lines


@dataclass(frozen=True)
class Results:
    """Everything one run measured, for :func:`render`."""

    started: dt.datetime
    load_at_start: str
    command: str
    seconds: int
    rounds: int
    rows: list[Row]
    ttfts: list[Ttft]
    memory: Memory
    scaled: tuple[Scaled, Scaled] | None
    goals: list[Goal]
    loads: list[LoadRow]
    evidence: Evidence
    logged: list[tuple[str, int, list[str]]]  # gateway, error lines, the first distinct ones
    notes: str = ""  # hand-written reading of the targets (bench/targets-notes.md)
    checkpoints: tuple[str, ...] = ()  # the cost of checkpointing streams in flight
    transforms: tuple[str, ...] = ()  # the cost of transform scripts (bench/transform_cost.py)
    sweeper: tuple[str, ...] = ()  # the retention sweeper's cost on requests


def render(r: Results) -> str:
    """The whole report, as markdown."""
    return "\n".join(
        [
            "# Lowart benchmark",
            "",
            "## The run",
            "",
            *machine.describe(r.started, r.load_at_start),
            f"- Command: `{r.command}`; each wrk row is a {WARMUP_S} s warm-up, then "
            f"`wrk -t1 -cN -d{r.seconds}s --timeout 10s --latency -s bench/post.lua URL`",
            "",
            f"Each cell (mode, connections) measures the systems back to back; the pass-through "
            f"and Lowart run {r.rounds} times each in alternation, and the run with the median "
            "requests/s is shown.",
            "",
            "One process each (LiteLLM: one per mode, as it serves one upstream per process); "
            "wrk, the upstream and the system measured share this machine's cores with other "
            "work, so read the figures as rough and the ratios as the finding.",
            "",
            "CPU us/request is the user and system CPU time the serving process (with its "
            "children) spent during the measured run, divided by the requests wrk completed: "
            "steadier than requests/s when other work shares the machine, and at 64 "
            "connections, where one process saturates a core, the inverse of its throughput.",
            "",
            "## Requests/s and latency (wrk)",
            "",
            table(r.rows),
            "",
            "![Requests/s and p50 at 64 connections](performance.png)",
            "",
            "## Time to first token (streams, one at a time)",
            "",
            ttft_table(r.ttfts),
            "",
            "## Lowart's memory (VmRSS)",
            "",
            *memory_lines(r.memory),
            "",
            "## Requests in flight: the cost of their checkpoints",
            "",
            *r.checkpoints,
            "",
            "## Retention: the sweeper's cost on requests",
            "",
            *r.sweeper,
            "",
            "## Transform scripts (docs/transforms.md): their cost at one connection",
            "",
            *(r.transforms or ["Skipped (`BENCH_TRANSFORMS=0`)."]),
            "",
            "## Scaling: WORKERS=2 against one worker",
            "",
            *scaling_lines(r.scaled, r.rows),
            "",
            "## Targets",
            "",
            *goal_lines(r.goals),
            "",
            *([r.notes.strip(), ""] if r.notes.strip() else []),
            "## Load rows (docs/reliability.md)",
            "",
            *(load_row_lines(r.loads) if r.loads else ["Skipped (`BENCH_LOAD_ROWS=0`)."]),
            "",
            "## Lowart had its key check, RPM limit, quota, billing and metrics on",
            "",
            *evidence_lines(r.evidence),
            "",
            "## Errors the gateways logged",
            "",
            *logged_lines(r.logged),
            "",
        ]
    )


def logged_lines(logged: Sequence[tuple[str, int, list[str]]]) -> list[str]:
    lines = []
    for name, count, first in logged:
        lines.append(f"- `{name}`: {count} error line(s)" + (":" if first else ""))
        lines += [f"  - `{text}`" for text in first]
    return lines or ["- none"]

"""The performance issue's targets, each marked met or missed with the figure it was judged on
(or "not measured" with the reason when a figure is missing)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from memory import Held
from scaling import Scaled
from targets import MODE_LABEL
from ttft import Ttft
from wrk import Row

BASELINE = "passthrough"


@dataclass(frozen=True)
class Goal:
    """One target: what was asked, what was measured, met or missed (None: not measured)."""

    target: str
    figure: str
    met: bool | None


@dataclass(frozen=True)
class Memory:
    """Lowart's RSS figures, in KiB."""

    idle_kib: int
    load_peak_kib: dict[str, int]  # mode -> peak during the 64-connection run
    held: Held | None
    held_reason: str = ""


def _measured(rows: Sequence[Row], target: str, mode: str, conns: int) -> Row | None:
    """The row of ``target`` in that cell, if it was measured."""
    for row in rows:
        if (row.target, row.mode, row.connections) == (target, mode, conns) and row.run:
            return row
    return None


def _rps(rows: Sequence[Row], target: str, mode: str, conns: int) -> float | None:
    row = _measured(rows, target, mode, conns)
    return row.run.rps if row and row.run else None


def _p50(rows: Sequence[Row], target: str, mode: str, conns: int) -> float | None:
    row = _measured(rows, target, mode, conns)
    return row.run.p50_ms if row and row.run else None


def _ratio_goal(rows: Sequence[Row], peer: str, factor: float, mode: str) -> Goal:
    ours, theirs = _rps(rows, "lowart", mode, 64), _rps(rows, peer, mode, 64)
    name = f">= {factor:g}x {peer} in req/s ({MODE_LABEL[mode]}, 64 connections)"
    if ours is None or theirs is None:
        return Goal(name, f"not measured ({peer} unavailable)", None)
    if theirs == 0:
        return Goal(name, f"{peer} completed no request in the run ({ours:,.0f} req/s)", True)
    ratio = ours / theirs
    return Goal(name, f"{ratio:,.1f}x ({ours:,.0f} vs {theirs:,.0f} req/s)", ratio >= factor)


def _throughput(rows: Sequence[Row]) -> list[Goal]:
    goals: list[Goal] = []
    ours, base = _rps(rows, "lowart", "json", 64), _rps(rows, BASELINE, "json", 64)
    name = "non-streaming req/s at 64 connections >= 0.8x the pass-through"
    if ours is not None and base:
        figure = f"{ours / base:.2f}x ({ours:,.0f} vs {base:,.0f} req/s)"
        ours_row, base_row = (
            _measured(rows, "lowart", "json", 64),
            _measured(rows, BASELINE, "json", 64),
        )
        ours_cpu = ours_row.cpu_us if ours_row else None
        base_cpu = base_row.cpu_us if base_row else None
        if ours_cpu and base_cpu:
            figure += (
                f"; CPU per request {ours_cpu:,.0f} vs {base_cpu:,.0f} us "
                f"({base_cpu / ours_cpu:.2f}x)"
            )
        goals.append(Goal(name, figure, ours >= 0.8 * base))
    else:
        goals.append(Goal(name, "not measured", None))
    for mode in ("json", "sse"):
        ours_ms, base_ms = _p50(rows, "lowart", mode, 1), _p50(rows, BASELINE, mode, 1)
        name = f"added p50 at 1 connection <= 0.1 ms over the pass-through ({MODE_LABEL[mode]})"
        if ours_ms is None or base_ms is None:
            goals.append(Goal(name, "not measured", None))
            continue
        added = ours_ms - base_ms
        figure = f"{added:+.3f} ms ({ours_ms:.3f} vs {base_ms:.3f} ms)"
        goals.append(Goal(name, figure, added <= 0.1))
    return goals


def _ttft(ttfts: Sequence[Ttft]) -> Goal:
    by = {t.target: t for t in ttfts if t.samples}
    name = "added TTFT <= 1 ms at p50 (vs. the pass-through)"
    if "lowart" not in by or BASELINE not in by:
        return Goal(name, "not measured", None)
    added = (by["lowart"].p50 - by[BASELINE].p50) * 1000
    return Goal(name, f"{added:+.3f} ms", added <= 1.0)


def _memory(memory: Memory) -> list[Goal]:
    idle_mb = memory.idle_kib / 1024
    goals = [Goal("RSS <= 120 MB idle", f"{idle_mb:.1f} MiB", idle_mb <= 120)]
    name = "RSS <= 400 MB with 1,000 concurrent streams"
    if memory.held is None:
        goals.append(Goal(name, f"not measured: {memory.held_reason}", None))
    else:
        held_mb = memory.held.peak_kib / 1024
        figure = (
            f"{held_mb:.1f} MiB ({memory.held.receiving} of {memory.held.requested} "
            "streams receiving at the sample)"
        )
        goals.append(Goal(name, figure, held_mb <= 400))
    return goals


def _scaling(scaled: tuple[Scaled, Scaled] | None) -> Goal:
    name = "WORKERS=2 >= 1.3x one worker (non-streaming, 64 connections, Redis)"
    if scaled is None:
        return Goal(name, "not measured (skipped)", None)
    one, two = scaled
    if one.run is None or two.run is None:
        return Goal(name, f"not available: {two.reason or one.reason}", None)
    ratio = two.run.rps / one.run.rps
    figure = f"{ratio:.2f}x ({two.run.rps:,.0f} vs {one.run.rps:,.0f} req/s)"
    return Goal(name, figure, ratio >= 1.3)


def judge(
    rows: Sequence[Row],
    ttfts: Sequence[Ttft],
    memory: Memory,
    scaled: tuple[Scaled, Scaled] | None,
) -> list[Goal]:
    """Every target, in the order of the issue."""
    peers = [
        _ratio_goal(rows, peer, factor, mode)
        for mode in ("json", "sse")
        for peer, factor in (("litellm", 50), ("portkey", 8))
    ]
    return [*_throughput(rows), _ttft(ttfts), *peers, *_memory(memory), _scaling(scaled)]

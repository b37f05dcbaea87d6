"""The chart next to the report: requests/s and p50 latency per system at 64 connections,
non-streaming and streaming, as horizontal bars on log scales (nginx and LiteLLM are three
orders of magnitude apart)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from png import Canvas, Color
from wrk import Row

CONNECTIONS = 64
WIDTH, HEIGHT = 1240, 800
INK: Color = (33, 37, 41)
GRID: Color = (222, 226, 230)
MUTED: Color = (120, 126, 133)
COLORS: dict[str, Color] = {
    "nginx": (134, 142, 150),
    "passthrough": (73, 80, 87),
    "lowart": (214, 51, 108),
    "lowart-responses": (166, 30, 77),
    "litellm": (28, 126, 214),
    "portkey": (245, 159, 0),
}


def _decades(values: Sequence[float]) -> tuple[int, int]:
    low = min(values)
    high = max(values)
    return math.floor(math.log10(low)), max(
        math.ceil(math.log10(high)), math.floor(math.log10(low)) + 1
    )


def _label(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _figure(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value:,.0f}"
    return f"{value:.3g} ms" if value < 100 else f"{value:,.0f} ms"


def _panel(
    canvas: Canvas,
    box: tuple[int, int, int, int],
    title: str,
    bars: Sequence[tuple[str, float | None, str]],  # system, value, reason when None
    unit: str,
) -> None:
    x, y, w, h = box
    canvas.text(x, y, title, INK, scale=2)
    label_w = 150
    plot_x, plot_y = x + label_w, y + 34
    plot_w, plot_h = w - label_w - 20, h - 64
    values = [v for _, v, _ in bars if v is not None and v > 0]
    if not values:
        canvas.text(plot_x, plot_y + 20, "no measurements", MUTED)
        return
    lo, hi = _decades(values)

    def at(value: float) -> int:
        return plot_x + round((math.log10(value) - lo) / (hi - lo) * plot_w)

    for decade in range(lo, hi + 1):
        gx = at(10.0**decade)
        canvas.vline(gx, plot_y, plot_h, GRID)
        label = _label(10.0**decade)
        canvas.text(gx - Canvas.text_width(label, 1) // 2, plot_y + plot_h + 6, label, MUTED, 1)
    canvas.text(plot_x + plot_w - Canvas.text_width(unit, 1), plot_y + plot_h + 18, unit, MUTED, 1)
    step = plot_h // max(1, len(bars))
    for i, (system, value, reason) in enumerate(bars):
        by = plot_y + i * step + step // 6
        bh = step * 2 // 3
        canvas.text(x, by + bh // 2 - 7, system, INK, 2)
        if value is None or value <= 0:
            room = (plot_w - 12) // 6  # characters at scale 1
            note = f"n/a: {reason}"
            note = note if len(note) <= room else note[: room - 3] + "..."
            canvas.text(plot_x + 6, by + bh // 2 - 4, note, MUTED, 1)
            continue
        end = max(plot_x + 2, at(value))
        canvas.rect(plot_x, by, end - plot_x, bh, COLORS.get(system, INK))
        figure = _figure(value, unit)
        fx = end + 6
        if fx + Canvas.text_width(figure, 2) > plot_x + plot_w + 16:
            fx = end - Canvas.text_width(figure, 2) - 6
            canvas.text(fx, by + bh // 2 - 7, figure, (255, 255, 255), 2)
        else:
            canvas.text(fx, by + bh // 2 - 7, figure, INK, 2)
    canvas.hline(plot_x, plot_y + plot_h, plot_w, MUTED)


def draw(rows: Sequence[Row], systems: Sequence[str], path: Path, caption: str) -> None:
    """Four panels: req/s and p50, non-streaming and streaming, at 64 connections."""
    canvas = Canvas(WIDTH, HEIGHT)
    canvas.text(20, 16, "Lowart and its peers at 64 connections (log scales)", INK, 3)
    canvas.text(20, 48, caption[:150], MUTED, 1)
    by_key = {(r.target, r.mode): r for r in rows if r.connections == CONNECTIONS}
    pw, ph = (WIDTH - 60) // 2, (HEIGHT - 100) // 2
    panels = [
        ("json", "rps", "requests/s, non-streaming", 20, 80),
        ("sse", "rps", "requests/s, streaming", 40 + pw, 80),
        ("json", "p50", "p50 latency, non-streaming", 20, 90 + ph),
        ("sse", "p50", "p50 latency, streaming", 40 + pw, 90 + ph),
    ]
    for mode, metric, title, px, py in panels:
        bars: list[tuple[str, float | None, str]] = []
        for system in systems:
            row = by_key.get((system, mode))
            if row is None or row.run is None:
                bars.append((system, None, row.reason if row else "not measured"))
            else:
                value = row.run.rps if metric == "rps" else row.run.p50_ms
                bars.append((system, value if math.isfinite(value) else None, "no latency"))
        unit = "req/s" if metric == "rps" else "ms"
        _panel(canvas, (px, py, pw, ph), title, bars, unit)
    canvas.save(path)

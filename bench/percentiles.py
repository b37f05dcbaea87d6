"""Percentiles of latency samples (nearest rank, as wrk reports them)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pct(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; NaN for no samples."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    """Seconds shown as milliseconds with three decimals."""
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.3f}"

"""Money, pure: prices per model, the cost of one usage row, and amounts as decimal strings.

Amounts are integers of micro-units of the currency (``CURRENCY``): $1.25 is 1_250_000. Token
prices are micro-units per million tokens, image prices micro-units per image
(docs/api.md, "Prices and cost"). No float ever holds an amount.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

MICRO = 1_000_000  # micro-units in one unit of the currency
PER = 1_000_000  # token prices are per million tokens
MAX_AMOUNT = 10**15  # a billion units: anything larger is a typing error
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "image", "embedding")


@dataclass(frozen=True, slots=True)
class Price:
    """A model's prices from ``effective_from`` (Unix seconds) on, in micro-units."""

    effective_from: float
    input: int = 0  # per million uncached prompt tokens
    output: int = 0  # per million completion tokens
    cache_read: int = 0  # per million prompt tokens read from the vendor's cache
    cache_write: int = 0  # per million prompt tokens written to the vendor's cache
    image: int = 0  # per image generated
    embedding: int = 0  # per million input tokens of an embeddings request

    @property
    def highest_token_rate(self) -> int:
        """The most a token can cost at this price (for worst-case reservations)."""
        return max(self.input, self.output, self.cache_read, self.cache_write, self.embedding)


@dataclass(frozen=True, slots=True)
class Metered:
    """What one usage row counts: ``cache_read`` and ``cache_write`` are part of ``prompt``."""

    prompt: int
    completion: int
    cache_read: int = 0
    cache_write: int = 0
    images: int = 0
    embeddings: bool = False  # an embeddings request: the prompt is priced per embedding token


def cost_of(price: Price | None, m: Metered) -> int:
    """The row's cost in micro-units, rounded half up once (0 for an unpriced model)."""
    if price is None:
        return 0
    if m.embeddings:
        per_million = m.prompt * price.embedding
    else:
        cached = min(m.cache_read + m.cache_write, m.prompt)
        read = min(m.cache_read, cached)
        fresh = m.prompt - cached
        per_million = (
            fresh * price.input
            + read * price.cache_read
            + (cached - read) * price.cache_write
            + m.completion * price.output
        )
    return (per_million + PER // 2) // PER + m.images * price.image


def price_at(prices: tuple[Price, ...], when: float) -> Price | None:
    """The price in effect at ``when`` (``prices`` sorted by ``effective_from``), or None."""
    i = bisect.bisect_right(prices, when, key=_effective)
    return prices[i - 1] if i else None


def _effective(price: Price) -> float:
    return price.effective_from


def decimal_string(micro: int) -> str:
    """Micro-units as the currency's decimal string with six places: 12345 → "0.012345"."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    return f"{sign}{whole}.{frac:06d}"


def parse_amount(value: object) -> int | None:
    """A decimal amount (a string like "3.75", or an integer) as micro-units; None when it is
    not a non-negative number with at most six decimal places, or is absurdly large."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0:
        return None
    micro = number * MICRO
    if micro != micro.to_integral_value() or micro > MAX_AMOUNT:
        return None
    return int(micro)


TOTAL = "total"  # a budget that never resets
PERIODS = ("day", "week", "month", TOTAL)


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``amount`` micro-units spent per ``period`` (``day``, ``week``, ``month`` or
    ``total``)."""

    amount: int
    period: str


@dataclass(frozen=True, slots=True)
class Period:
    """One period of a budget: its label (part of the ledger's key) and when it ends."""

    label: str  # "2026-12-08", "2026-W50", "2026-12" or "total"
    ends_at: float | None  # Unix seconds; None for ``total``


def period_of(kind: str, now: float, tz: ZoneInfo) -> Period:
    """The period of kind ``kind`` that holds ``now``, in the time zone ``tz``: days begin at
    local midnight, ISO weeks on Monday, months on the 1st (daylight saving from ``zoneinfo``)."""
    if kind == "total":
        return Period("total", None)
    local = dt.datetime.fromtimestamp(now, tz)
    day = local.date()
    if kind == "day":
        start, label = day, day.isoformat()
        end = start + dt.timedelta(days=1)
    elif kind == "week":
        year, week, weekday = day.isocalendar()
        start, label = day - dt.timedelta(days=weekday - 1), f"{year}-W{week:02d}"
        end = start + dt.timedelta(days=7)
    else:
        label = f"{day.year}-{day.month:02d}"
        end = dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)
    midnight = dt.datetime.combine(end, dt.time(), tzinfo=tz)
    return Period(label, midnight.timestamp())


def current_periods(now: float, tz: ZoneInfo) -> frozenset[str]:
    """The labels of the periods of every kind that hold ``now``."""
    return frozenset(period_of(kind, now, tz).label for kind in PERIODS)

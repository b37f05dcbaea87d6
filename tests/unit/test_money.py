"""Money, pure: the cost of a row, the price in effect, amounts as decimal strings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lowart.money import (
    Metered,
    Period,
    Price,
    cost_of,
    current_periods,
    decimal_string,
    parse_amount,
    period_of,
    price_at,
)

M = 1_000_000  # one unit of the currency, in micro-units
PRICE = Price(
    effective_from=0.0,
    input=3 * M,
    output=15 * M,
    cache_read=300_000,
    cache_write=3_750_000,
    image=40_000,
    embedding=20_000,
)


@pytest.mark.parametrize(
    ("metered", "expected"),
    [
        (Metered(1_000_000, 0), 3 * M),  # a million fresh prompt tokens: the input price
        (Metered(0, 1_000_000), 15 * M),
        (Metered(1_000_000, 0, cache_read=1_000_000), 300_000),
        (Metered(1_000_000, 0, cache_write=1_000_000), 3_750_000),
        (Metered(900, 50, cache_read=300, cache_write=100), 1500 + 90 + 375 + 750),
        (Metered(1_000, 0, embeddings=True), 20),  # the embedding rate, not the input rate
        (Metered(0, 0, images=3), 120_000),
        (Metered(1, 0), 3),  # 3 micro-units exactly
        (Metered(0, 1), 15),
        (Metered(1, 0, cache_read=1), 0),  # 0.3 micro-units round to 0
        (Metered(2, 0, cache_read=2), 1),  # 0.6 rounds up
        # cache counts clamp to the prompt: 7 read (2.1) and the 3 left written (11.25)
        (Metered(10, 0, cache_read=7, cache_write=7), 13),
    ],
)
def test_cost_of_prices_each_kind_of_token_at_its_rate(metered: Metered, expected: int) -> None:
    assert cost_of(PRICE, metered) == expected


def test_an_unpriced_model_costs_nothing() -> None:
    assert cost_of(None, Metered(10**9, 10**9, images=5)) == 0


def test_the_price_in_effect_is_the_latest_that_began() -> None:
    prices = (Price(100.0, input=1), Price(200.0, input=2), Price(300.0, input=3))
    assert price_at(prices, 99.9) is None
    assert price_at(prices, 100.0) == prices[0]
    assert price_at(prices, 199.99) == prices[0]
    assert price_at(prices, 200.0) == prices[1]
    assert price_at(prices, 10**10) == prices[2]
    assert price_at((), 500.0) is None


@pytest.mark.parametrize(
    ("micro", "shown"),
    [(0, "0.000000"), (12_345, "0.012345"), (1_250_000, "1.250000"), (-5, "-0.000005")],
)
def test_decimal_string(micro: int, shown: str) -> None:
    assert decimal_string(micro) == shown


@pytest.mark.parametrize(
    ("raw", "micro"),
    [
        ("3.75", 3_750_000),
        (" 0.000001 ", 1),
        ("1e-6", 1),
        (2, 2 * M),
        ("0", 0),
        ("0.0000001", None),  # below a micro-unit
        ("-1", None),
        ("NaN", None),
        ("Infinity", None),
        ("", None),
        ("ten", None),
        (0.5, None),  # floats are refused: an amount is written exactly
        (True, None),
        (None, None),
        ("1e12", None),  # beyond MAX_AMOUNT
    ],
)
def test_parse_amount(raw: object, micro: int | None) -> None:
    assert parse_amount(raw) == micro


@given(st.integers(min_value=0, max_value=10**15))
def test_amounts_survive_the_round_trip(micro: int) -> None:
    assert parse_amount(decimal_string(micro)) == micro


@given(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 10**7))
def test_cost_matches_exact_decimal_arithmetic(
    fresh: int, read: int, write: int, completion: int
) -> None:
    metered = Metered(fresh + read + write, completion, cache_read=read, cache_write=write)
    exact = (
        Decimal(fresh) * PRICE.input
        + Decimal(read) * PRICE.cache_read
        + Decimal(write) * PRICE.cache_write
        + Decimal(completion) * PRICE.output
    ) / M
    assert abs(Decimal(cost_of(PRICE, metered)) - exact) <= Decimal("0.5")


PARIS = ZoneInfo("Europe/Paris")


def _at(*args: int, tz: ZoneInfo = PARIS) -> float:
    return dt.datetime(*args, tzinfo=tz).timestamp()


@pytest.mark.parametrize(
    ("kind", "now", "label", "ends"),
    [
        ("day", _at(2026, 3, 29, 1, 30), "2026-03-29", _at(2026, 3, 30)),  # 23 hours (DST)
        ("day", _at(2026, 10, 25, 23, 59), "2026-10-25", _at(2026, 10, 26)),  # 25 hours
        ("week", _at(2026, 12, 31, 12), "2026-W53", _at(2027, 1, 4)),  # ISO year 2026
        ("week", _at(2027, 1, 3, 23, 59), "2026-W53", _at(2027, 1, 4)),  # Sunday: still W53
        ("week", _at(2027, 1, 4), "2027-W01", _at(2027, 1, 11)),  # Monday 00:00 starts W01
        ("month", _at(2026, 12, 31, 23, 59), "2026-12", _at(2027, 1, 1)),
        ("month", _at(2026, 2, 1), "2026-02", _at(2026, 3, 1)),
        ("total", _at(2026, 2, 1), "total", None),
    ],
)
def test_periods_follow_the_calendar_of_the_time_zone(
    kind: str, now: float, label: str, ends: float | None
) -> None:
    assert period_of(kind, now, PARIS) == Period(label, ends)


def test_the_same_instant_is_in_different_days_in_different_zones() -> None:
    instant = _at(2026, 6, 30, 23, 30, tz=ZoneInfo("UTC"))
    assert period_of("day", instant, ZoneInfo("UTC")).label == "2026-06-30"
    assert period_of("day", instant, PARIS).label == "2026-07-01"
    assert period_of("month", instant, PARIS).label == "2026-07"
    assert current_periods(instant, PARIS) == {"2026-07-01", "2026-W27", "2026-07", "total"}

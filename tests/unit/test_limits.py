"""RPM sliding windows and token-quota reservations: the pure decisions and the memory backend."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowart.limits.base import Reservation, RpmDecision
from lowart.limits.memory import MemoryQuotaLedger, MemoryRateLimiter
from lowart.limits.window import admit, quota_grant

WINDOW = 60.0


@dataclass
class FakeClock:
    """A clock the test moves by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def at(self, offset: float) -> None:
        self.now = 1000.0 + offset


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(clock: FakeClock) -> MemoryRateLimiter:
    return MemoryRateLimiter(window_s=WINDOW, clock=clock)


# --- the pure window -----------------------------------------------------------------------


def test_admit_records_only_admitted_requests() -> None:
    log: deque[float] = deque()
    assert admit(log, 2, WINDOW, 0.0).allowed
    assert admit(log, 2, WINDOW, 1.0).allowed
    refused = admit(log, 2, WINDOW, 2.0)
    assert not refused.allowed
    assert list(log) == [0.0, 1.0]


def test_admit_drops_entries_exactly_one_window_old() -> None:
    log: deque[float] = deque([0.0, 30.0])
    decision = admit(log, 2, WINDOW, 60.0)
    assert decision.allowed
    assert list(log) == [30.0, 60.0]
    assert decision.remaining == 0
    assert decision.reset_s == pytest.approx(30.0)


def test_admit_keeps_entries_just_inside_the_window() -> None:
    log: deque[float] = deque([0.0])
    decision = admit(log, 1, WINDOW, 59.5)
    assert not decision.allowed
    assert decision.reset_s == pytest.approx(0.5)


# --- the memory rate limiter ---------------------------------------------------------------


async def test_admits_exactly_limit_per_window(limiter: MemoryRateLimiter) -> None:
    decisions = [await limiter.admit("u", 5) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0, 0, 0]
    assert all(d.limit == 5 for d in decisions)


async def test_refused_requests_do_not_count(clock: FakeClock, limiter: MemoryRateLimiter) -> None:
    assert (await limiter.admit("u", 1)).allowed
    for offset in (10, 30, 59):
        clock.at(offset)
        assert not (await limiter.admit("u", 1)).allowed
    clock.at(60)  # only the admitted request at 0 was in the window
    assert (await limiter.admit("u", 1)).allowed


async def test_reset_time_is_until_the_oldest_admitted_leaves(
    clock: FakeClock, limiter: MemoryRateLimiter
) -> None:
    first = await limiter.admit("u", 3)
    assert first.reset_s == pytest.approx(60.0)
    clock.at(10)
    second = await limiter.admit("u", 3)
    assert second.reset_s == pytest.approx(50.0)
    clock.at(20)
    await limiter.admit("u", 3)
    clock.at(25)
    refused = await limiter.admit("u", 3)
    assert not refused.allowed
    assert refused.reset_s == pytest.approx(35.0)


async def test_window_slides(clock: FakeClock, limiter: MemoryRateLimiter) -> None:
    assert (await limiter.admit("u", 2)).allowed  # t=0
    clock.at(30)
    assert (await limiter.admit("u", 2)).allowed
    clock.at(59)
    blocked = await limiter.admit("u", 2)
    assert not blocked.allowed
    assert blocked.reset_s == pytest.approx(1.0)
    clock.at(60)  # the request at 0 has left; the one at 30 has not
    slid = await limiter.admit("u", 2)
    assert slid.allowed
    assert slid.remaining == 0
    clock.at(61)
    again = await limiter.admit("u", 2)
    assert not again.allowed
    assert again.reset_s == pytest.approx(29.0)
    clock.at(90)
    assert (await limiter.admit("u", 2)).allowed


async def test_remaining_recovers_as_the_window_slides(
    clock: FakeClock, limiter: MemoryRateLimiter
) -> None:
    for offset in (0, 1, 2):
        clock.at(offset)
        await limiter.admit("u", 4)
    clock.at(61.5)  # entries at 0 and 1 expired, 2 remains
    decision = await limiter.admit("u", 4)
    assert decision.allowed
    assert decision.remaining == 2


async def test_users_have_separate_windows(limiter: MemoryRateLimiter) -> None:
    assert (await limiter.admit("a", 1)).allowed
    assert not (await limiter.admit("a", 1)).allowed
    assert (await limiter.admit("b", 1)).allowed


async def test_limiter_headers(clock: FakeClock, limiter: MemoryRateLimiter) -> None:
    await limiter.admit("u", 10)
    clock.at(48)
    decision = await limiter.admit("u", 10)
    assert decision.headers() == [
        (b"x-ratelimit-limit-requests", b"10"),
        (b"x-ratelimit-remaining-requests", b"8"),
        (b"x-ratelimit-reset-requests", b"12s"),
    ]


@pytest.mark.parametrize(
    ("reset_s", "text"),
    [(12.0, "12s"), (11.2, "12s"), (0.0, "0s"), (0.01, "1s"), (59.999, "60s"), (-3.0, "0s")],
)
def test_reset_header_rounds_up_to_whole_seconds(reset_s: float, text: str) -> None:
    decision = RpmDecision(allowed=True, limit=1, remaining=0, reset_s=reset_s)
    assert dict(decision.headers())[b"x-ratelimit-reset-requests"] == text.encode()


# --- quota arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "used", "reserved", "want", "grant"),
    [
        (100, 0, 0, 50, 50),  # fits
        (100, 30, 0, 500, 70),  # capped at what remains
        (100, 60, 30, 50, 10),  # reservations in flight count
        (100, 60, 40, 5, 0),  # exactly nothing remains
        (100, 120, 0, 5, 0),  # already overspent
        (100, 0, 100, 1, 0),  # everything reserved
        (0, 0, 0, 1, 0),  # zero quota
    ],
)
def test_quota_grant(quota: int, used: int, reserved: int, want: int, grant: int) -> None:
    assert quota_grant(quota, used, reserved, want) == grant


@pytest.mark.parametrize(
    ("want", "grant"),
    [(40, 40), (41, 0), (1000, 0)],
)
def test_quota_grant_with_a_capped_reservation_in_flight(want: int, grant: int) -> None:
    # Only one capped reservation per user may be in flight: a want that fits is still granted.
    assert quota_grant(100, 10, 50, want, capped_in_flight=True) == grant


async def test_reservation_capped_at_remaining() -> None:
    ledger = MemoryQuotaLedger()
    reservation = await ledger.reserve("u", quota=100, settled=30, want=500)
    assert reservation is not None
    assert reservation.amount == 70
    assert ledger.reserved("u") == 70


async def test_capped_reservation_is_marked() -> None:
    ledger = MemoryQuotaLedger()
    full = await ledger.reserve("u", quota=100, settled=0, want=100)
    assert full is not None
    assert full.capped is False
    await ledger.settle(full, 90)
    capped = await ledger.reserve("u", quota=100, settled=0, want=50)
    assert capped is not None
    assert (capped.amount, capped.capped) == (10, True)


async def test_only_one_capped_reservation_in_flight() -> None:
    ledger = MemoryQuotaLedger()
    small = await ledger.reserve("u", quota=100, settled=0, want=50)
    assert small is not None
    capped = await ledger.reserve("u", quota=100, settled=0, want=80)
    assert capped is not None
    assert (capped.amount, capped.capped) == (50, True)
    await ledger.settle(small, 10)  # 40 tokens free again, while the capped one is in flight
    assert await ledger.reserve("u", quota=100, settled=0, want=60) is None
    fits = await ledger.reserve("u", quota=100, settled=0, want=30)
    assert fits is not None
    assert (fits.amount, fits.capped) == (30, False)
    await ledger.settle(capped, 50)
    assert ledger.reserved("u") == 30
    again = await ledger.reserve("u", quota=100, settled=0, want=60)  # 100 - 60 - 30 = 10 left
    assert again is not None
    assert (again.amount, again.capped) == (10, True)


async def test_settling_a_capped_reservation_twice_frees_it_once() -> None:
    ledger = MemoryQuotaLedger()
    small = await ledger.reserve("u", quota=100, settled=0, want=50)
    capped = await ledger.reserve("u", quota=100, settled=0, want=80)
    assert small is not None
    assert capped is not None
    await ledger.settle(capped, 0)
    await ledger.settle(capped, 0)
    second_capped = await ledger.reserve("u", quota=100, settled=0, want=80)
    assert second_capped is not None
    assert second_capped.capped
    await ledger.settle(small, 0)
    assert await ledger.reserve("u", quota=100, settled=0, want=80) is None  # still one capped


async def test_refused_when_nothing_remains() -> None:
    ledger = MemoryQuotaLedger()
    assert await ledger.reserve("u", quota=100, settled=100, want=1) is None
    assert await ledger.reserve("u", quota=100, settled=150, want=1) is None
    assert ledger.reserved("u") == 0


async def test_reservations_in_flight_count_against_the_quota() -> None:
    ledger = MemoryQuotaLedger()
    first = await ledger.reserve("u", quota=100, settled=0, want=100)
    assert first is not None
    assert await ledger.reserve("u", quota=100, settled=0, want=1) is None
    assert await ledger.reserve("other", quota=100, settled=0, want=1) is not None


async def test_settle_replaces_reservation_with_actual() -> None:
    ledger = MemoryQuotaLedger()
    reservation = await ledger.reserve("u", quota=100, settled=0, want=60)
    assert reservation is not None
    await ledger.settle(reservation, 25)
    assert reservation.settled
    assert ledger.reserved("u") == 0
    assert ledger.unsettled("u") == 25
    following = await ledger.reserve("u", quota=100, settled=0, want=1000)
    assert following is not None
    assert following.amount == 75


async def test_settle_twice_is_a_no_op() -> None:
    ledger = MemoryQuotaLedger()
    reservation = await ledger.reserve("u", quota=100, settled=0, want=40)
    assert reservation is not None
    await ledger.settle(reservation, 10)
    await ledger.settle(reservation, 30)
    assert ledger.reserved("u") == 0
    assert ledger.unsettled("u") == 10


async def test_settle_above_reservation_counts_the_real_usage() -> None:
    ledger = MemoryQuotaLedger()
    reservation = await ledger.reserve("u", quota=100, settled=0, want=10)
    assert reservation is not None
    await ledger.settle(reservation, 150)  # a capped reservation may overspend by its excess
    assert ledger.unsettled("u") == 150
    assert await ledger.reserve("u", quota=100, settled=0, want=1) is None


async def test_negative_actual_counts_as_zero() -> None:
    ledger = MemoryQuotaLedger()
    reservation = await ledger.reserve("u", quota=100, settled=0, want=10)
    assert reservation is not None
    await ledger.settle(reservation, -5)
    assert ledger.unsettled("u") == 0


async def test_settled_usage_survives_flush_until_snapshot() -> None:
    ledger = MemoryQuotaLedger()
    reservation = await ledger.reserve("u", quota=100, settled=0, want=50)
    assert reservation is not None
    await ledger.settle(reservation, 40)
    ledger.mark_flushed({"u": 40})  # in the database, not yet in the snapshot
    assert ledger.unsettled("u") == 40
    room = await ledger.reserve("u", quota=100, settled=0, want=1000)
    assert room is not None
    assert room.amount == 60  # the flushed 40 still counts
    await ledger.settle(room, 0)
    ledger.snapshot_loaded()
    assert ledger.unsettled("u") == 0
    fresh = await ledger.reserve("u", quota=100, settled=40, want=1000)
    assert fresh is not None
    assert fresh.amount == 60


async def test_partial_flush_keeps_the_rest_pending() -> None:
    ledger = MemoryQuotaLedger()
    ledger.charge("u", 25)
    ledger.mark_flushed({"u": 10})
    assert ledger.unsettled("u") == 25
    ledger.snapshot_loaded()
    assert ledger.unsettled("u") == 15
    ledger.mark_flushed({"u": 15})
    ledger.snapshot_loaded()
    assert ledger.unsettled("u") == 0


async def test_record_without_reservation_counts_as_unsettled() -> None:
    ledger = MemoryQuotaLedger()
    ledger.charge("u", 7)
    ledger.charge("u", -3)
    assert ledger.unsettled("u") == 7
    assert ledger.reserved("u") == 0


# --- the property --------------------------------------------------------------------------


@dataclass
class _Model:
    """The database side of the accounting, as the flusher and snapshot loader see it."""

    quota: int
    db_used: int = 0  # token_used in the database
    snapshot_used: int = 0  # token_used as of the last snapshot
    pending: int = 0  # settled in memory, not yet flushed
    total_settled: int = 0
    open: list[Reservation] = field(default_factory=list)


# (operation, a want or a pick among open reservations, a draw for the actual usage)
_ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "settle", "flush", "snapshot"]),
        st.integers(1, 400),
        st.integers(0, 10_000),
    ),
    max_size=60,
)


async def _play(quota: int, ops: list[tuple[str, int, int]]) -> None:
    ledger = MemoryQuotaLedger()
    m = _Model(quota=quota)
    for name, pick, draw in ops:
        if name == "reserve":
            want = pick
            room = quota - m.total_settled - sum(r.amount for r in m.open)
            got = await ledger.reserve("u", quota, m.snapshot_used, want)
            capped_in_flight = any(r.capped for r in m.open)
            if room <= 0 or (want > room and capped_in_flight):
                assert got is None
            else:
                assert got is not None
                assert got.amount == min(want, room)
                assert got.capped == (want > room)
                m.open.append(got)
        elif name == "settle" and m.open:
            reservation = m.open.pop(pick % len(m.open))
            actual = draw % (reservation.amount + 1)  # actual <= reserved amount
            await ledger.settle(reservation, actual)
            m.pending += actual
            m.total_settled += actual
        elif name == "flush":
            ledger.mark_flushed({"u": m.pending})
            m.db_used += m.pending
            m.pending = 0
        elif name == "snapshot":
            ledger.snapshot_loaded()
            m.snapshot_used = m.db_used
        assert m.total_settled <= quota
        assert m.total_settled + ledger.reserved("u") <= quota
        assert ledger.reserved("u") == sum(r.amount for r in m.open)
        assert m.snapshot_used + ledger.unsettled("u") == m.total_settled


@settings(max_examples=200, deadline=None)
@given(quota=st.integers(1, 2000), ops=_ops)
def test_settled_never_exceeds_quota(quota: int, ops: list[tuple[str, int, int]]) -> None:
    asyncio.run(_play(quota, ops))

"""The quota ledger shared through the machine's Redis: several ledgers stand for several
processes or instances, each with its own snapshot of ``token_used``."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowart.errors import ServiceUnavailable
from lowart.limits.base import Reservation
from lowart.limits.memory import MemoryQuotaLedger
from lowart.limits.redis_quota import RedisQuotaLedger
from lowart.limits.resp import RespClient
from lowart.watchdog import Watchdog

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


@asynccontextmanager
async def resp(url: str = REDIS_URL, timeout_s: float = 1.0) -> AsyncIterator[RespClient]:
    """The hot path's Redis client, with the watchdog that enforces its timeout."""
    dog = Watchdog(tick_s=0.01)
    sweeper = asyncio.create_task(dog.run())
    client = RespClient(url, timeout_s, dog)
    try:
        yield client
    finally:
        await client.close()
        sweeper.cancel()
        await asyncio.gather(sweeper, return_exceptions=True)


@pytest.fixture
async def client() -> AsyncIterator[RespClient]:
    async with resp() as client:
        yield client


def _ledgers(
    client: RespClient,
    count: int = 1,
    *,
    lease_s: float = 60,
    pending_ttl_s: float = 60,
    degraded: bool = False,
) -> list[RedisQuotaLedger]:
    """``count`` processes sharing one fresh key space."""
    prefix = f"lowart:test:{secrets.token_hex(6)}:"
    return [
        RedisQuotaLedger(
            client,
            MemoryQuotaLedger(),
            lease_s=lease_s,
            pending_ttl_s=pending_ttl_s,
            degraded=degraded,
            prefix=prefix,
        )
        for _ in range(count)
    ]


async def _noop() -> None:
    return None


async def test_reservations_share_one_remainder(client: RespClient) -> None:
    a, b = _ledgers(client, 2)
    first = await a.reserve("u", quota=100, settled=0, want=60)
    assert first is not None and first.amount == 60 and not first.capped
    second = await b.reserve("u", quota=100, settled=0, want=60)
    assert second is not None and second.amount == 40 and second.capped
    assert await a.reserve("u", quota=100, settled=0, want=1) is None
    await b.settle(second, 10)  # 30 returned to the pool
    third = await a.reserve("u", quota=100, settled=0, want=30)
    assert third is not None and third.amount == 30
    assert await b.reserve("someone-else", quota=100, settled=0, want=100) is not None


async def test_one_capped_reservation_in_flight_across_processes(client: RespClient) -> None:
    a, b = _ledgers(client, 2)
    capped = await a.reserve("u", quota=100, settled=0, want=500)
    assert capped is not None and capped.capped and capped.amount == 100
    await a.settle(capped, 20)
    again = await b.reserve("u", quota=100, settled=0, want=500)
    assert again is not None and again.capped and again.amount == 80
    assert await a.reserve("u", quota=1000, settled=0, want=2000) is None  # one capped at a time


async def test_concurrent_reservations_never_exceed_the_quota(client: RespClient) -> None:
    ledgers = _ledgers(client, 4)
    grants = await asyncio.gather(
        *(ledgers[i % 4].reserve("u", quota=1000, settled=0, want=30) for i in range(200))
    )
    held = [g for g in grants if g is not None]
    assert sum(g.amount for g in held) == 1000
    assert sum(g.capped for g in held) == 1  # the last 10 tokens


async def test_usage_flushed_by_another_process_counts_until_the_snapshot_shows_it(
    client: RespClient,
) -> None:
    a, b = _ledgers(client, 2)
    await a.reload(_noop)
    await b.reload(_noop)
    held = await a.reserve("u", quota=100, settled=0, want=50)
    assert held is not None
    await a.settle(held, 40)
    probe = await b.reserve("u", quota=100, settled=0, want=1000)  # pending in Redis: counted
    assert probe is not None and probe.amount == 60
    await b.settle(probe, 0)
    await a.flushed({"u": 40}, {"u": [held.id]})  # in the database; b's snapshot is older
    probe = await b.reserve("u", quota=100, settled=0, want=1000)
    assert probe is not None and probe.amount == 60
    await b.settle(probe, 0)
    await b.reload(_noop)  # b's new snapshot holds the 40
    probe = await b.reserve("u", quota=100, settled=40, want=1000)
    assert probe is not None and probe.amount == 60


async def test_a_dead_process_reservation_is_returned_when_its_lease_ends(
    client: RespClient,
) -> None:
    dead, alive = _ledgers(client, 2, lease_s=0.3)
    assert await dead.reserve("u", quota=100, settled=0, want=100) is not None  # never settled
    assert await alive.reserve("u", quota=100, settled=0, want=1) is None
    deadline = asyncio.get_running_loop().time() + 5
    while (grant := await alive.reserve("u", quota=100, settled=0, want=100)) is None:
        assert asyncio.get_running_loop().time() < deadline, "the lease never ended"
        await asyncio.sleep(0.05)
    assert grant.amount == 100


async def test_unwritten_usage_of_a_dead_process_expires(client: RespClient) -> None:
    dead, alive = _ledgers(client, 2, pending_ttl_s=0.3)
    held = await dead.reserve("u", quota=100, settled=0, want=100)
    assert held is not None
    await dead.settle(held, 70)  # then the process dies before its flush: the row is lost
    probe = await alive.reserve("u", quota=100, settled=0, want=100)
    assert probe is not None and probe.amount == 30
    await alive.settle(probe, 0)
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        grant = await alive.reserve("u", quota=100, settled=0, want=100)
        assert grant is not None
        await alive.settle(grant, 0)
        if grant.amount == 100:
            break
        assert asyncio.get_running_loop().time() < deadline, "the pending entry never expired"
        await asyncio.sleep(0.05)


async def test_redis_down_fails_closed_or_reserves_in_process() -> None:
    async with resp("redis://127.0.0.1:9/0", timeout_s=0.2) as dead:
        (closed,) = _ledgers(dead)
        with pytest.raises(ServiceUnavailable):
            await closed.reserve("u", quota=100, settled=0, want=10)
        (degraded,) = _ledgers(dead, degraded=True)
        local = await degraded.reserve("u", quota=100, settled=0, want=80)
        assert local is not None and local.id == ""
        assert await degraded.reserve("u", quota=100, settled=0, want=80) is not None  # capped
        assert await degraded.reserve("u", quota=100, settled=0, want=1) is None  # never unlimited
        await degraded.settle(local, 50)  # settles in-process; the failure is not raised
        await degraded.flushed({"u": 50}, {"u": []})
        await degraded.reload(_noop)


# --- the property: one shared ledger behaves like the in-process one ----------------------


@dataclass
class _Db:
    db_used: int = 0
    pending: list[tuple[Reservation, int]] = field(default_factory=list)  # settled, unwritten
    total: int = 0
    open: list[tuple[int, Reservation]] = field(default_factory=list)  # (process, reservation)


_ops = st.lists(
    st.tuples(
        st.sampled_from(["reserve", "settle", "flush", "snapshot"]),
        st.integers(0, 1),  # which process
        st.integers(1, 400),
        st.integers(0, 10_000),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(quota=st.integers(1, 2000), ops=_ops)
def test_shared_ledger_grants_exactly_what_remains(quota: int, ops: list[Any]) -> None:
    asyncio.run(_play(quota, ops))


async def _play(quota: int, ops: list[tuple[str, int, int, int]]) -> None:
    async with resp() as client:
        ledgers = _ledgers(client, 2)
        snapshot = [0, 0]  # each process's token_used as of its last snapshot
        m = _Db()
        for op in ops:
            await _step(op, quota, ledgers, snapshot, m)
            assert m.total <= quota


async def _step(
    op: tuple[str, int, int, int],
    quota: int,
    ledgers: list[RedisQuotaLedger],
    snapshot: list[int],
    m: _Db,
) -> None:
    name, proc, pick, draw = op
    ledger = ledgers[proc]
    if name == "reserve":
        room = quota - m.total - sum(r.amount for _, r in m.open)
        capped_in_flight = any(r.capped for _, r in m.open)
        got = await ledger.reserve("u", quota, snapshot[proc], pick)
        if room <= 0 or (pick > room and capped_in_flight):
            assert got is None
        else:
            assert got is not None and got.amount == min(pick, room)
            m.open.append((proc, got))
    elif name == "settle" and m.open:
        owner, reservation = m.open.pop(pick % len(m.open))
        actual = draw % (reservation.amount + 1)
        await ledgers[owner].settle(reservation, actual)
        m.pending.append((reservation, actual))
        m.total += actual
    elif name == "flush" and m.pending:
        # the owner of each settlement writes it; here process 0 stands for all
        delta = sum(actual for _, actual in m.pending)
        await ledgers[0].flushed({"u": delta}, {"u": [r.id for r, _ in m.pending]})
        m.db_used += delta
        m.pending.clear()
    elif name == "snapshot":

        async def load() -> None:
            snapshot[proc] = m.db_used

        await ledger.reload(load)


async def test_scripts_are_loaded_again_when_the_server_forgot_them(client: RespClient) -> None:
    (ledger,) = _ledgers(client)
    assert await ledger.reserve("u", quota=100, settled=0, want=10) is not None
    await client.call("SCRIPT", "FLUSH")  # a restarted or failed-over Redis has no scripts
    again = await ledger.reserve("u", quota=100, settled=0, want=10)
    assert again is not None and again.amount == 10

"""The idempotency-key store on SQLite and PostgreSQL: claims, TTL and leases on an injected
clock, one winner among racing claims, and the sweep."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.idempotency import STREAMED, Answer, Claim, Held, IdempotencyStore

TTL_S = 100.0
LEASE_S = 10.0
ROUTE = "/v1/chat/completions"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _store(engine: AsyncEngine, clock: Clock) -> IdempotencyStore:
    return IdempotencyStore(engine, ttl_s=TTL_S, lease_s=LEASE_S, clock=clock)


OK = Answer(200, [(b"content-type", b"application/json"), (b"x-lowart-model", b"m")], b'{"a":1}')


async def test_a_kept_answer_is_replayed_until_its_ttl_then_the_key_is_free(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    store = _store(engine, clock)
    claim = await store.claim("u1", "k", ROUTE, "sha-1")
    assert isinstance(claim, Claim)
    running = await store.claim("u1", "k", ROUTE, "sha-1")
    assert running == Held(ROUTE, "sha-1", "running", None)
    assert isinstance(await store.claim("u2", "k", ROUTE, "sha-1"), Claim)  # per user
    clock.now += 50
    await store.finish(claim, OK)
    clock.now += TTL_S - 1  # the TTL counts from the answer
    assert await store.claim("u1", "k", ROUTE, "sha-2") == Held(ROUTE, "sha-1", "done", OK)
    clock.now += 1
    assert isinstance(await store.claim("u1", "k", ROUTE, "sha-2"), Claim)


async def test_a_lost_owner_s_claim_is_taken_over_after_its_lease_and_renewal_keeps_it(
    engine: AsyncEngine,
) -> None:
    clock = Clock()
    first, second = _store(engine, clock), _store(engine, clock)  # two instances
    lost = await first.claim("u1", "k", ROUTE, "sha")
    assert isinstance(lost, Claim)
    clock.now += LEASE_S - 0.5
    assert isinstance(await second.claim("u1", "k", ROUTE, "sha"), Held)
    clock.now += 0.5
    taken = await second.claim("u1", "k", ROUTE, "sha")
    assert isinstance(taken, Claim)
    await first.finish(lost, OK)  # the lost owner's late answer does not overwrite the new one
    await first.release(lost)
    assert await first.claim("u1", "k", ROUTE, "sha") == Held(ROUTE, "sha", "running", None)
    await second.finish(taken, Answer(STREAMED, [], b""))
    held = await first.claim("u1", "k", ROUTE, "sha")
    assert isinstance(held, Held) and held.answer == Answer(STREAMED, [], b"")


async def test_racing_claims_from_two_instances_have_one_winner(engine: AsyncEngine) -> None:
    clock = Clock()
    stores = [_store(engine, clock), _store(engine, clock)]
    results = await asyncio.gather(
        *(stores[i % 2].claim("u1", "race", ROUTE, "sha") for i in range(8))
    )
    assert sum(isinstance(r, Claim) for r in results) == 1
    winner = next(r for r in results if isinstance(r, Claim))
    await stores[0].release(winner)  # released: the client's retry may run
    assert isinstance(await stores[1].claim("u1", "race", ROUTE, "sha"), Claim)


async def test_the_sweep_deletes_only_rows_no_claim_can_use(engine: AsyncEngine) -> None:
    clock = Clock()
    store = _store(engine, clock)
    old = await store.claim("u1", "old", ROUTE, "sha")
    assert isinstance(old, Claim)
    await store.finish(old, OK)
    lost = await store.claim("u1", "lost", ROUTE, "sha")
    assert isinstance(lost, Claim)
    clock.now += TTL_S
    assert isinstance(await store.claim("u1", "live", ROUTE, "sha"), Claim)
    assert await store.sweep() == 2
    assert await store.claim("u1", "live", ROUTE, "sha") == Held(ROUTE, "sha", "running", None)


class CountingClock(Clock):
    """Sets ``reached`` on the ``left``-th reading from now."""

    def __init__(self) -> None:
        super().__init__()
        self.left = 0
        self.reached = asyncio.Event()

    def __call__(self) -> float:
        self.left -= 1
        if self.left == 0:
            self.reached.set()
        return self.now


async def test_a_running_claim_is_kept_by_its_renewals_and_lost_once_they_stop(
    engine: AsyncEngine,
) -> None:
    clock = CountingClock()
    lease_s = 0.06  # real seconds between renewals: a third of it
    owner = IdempotencyStore(engine, ttl_s=TTL_S, lease_s=lease_s, clock=clock)
    other = IdempotencyStore(engine, ttl_s=TTL_S, lease_s=lease_s, clock=clock)
    claim = await owner.claim("u1", "long", ROUTE, "sha")
    assert isinstance(claim, Claim)
    clock.now += 1000  # far past the first lease: only a renewal can keep the claim
    clock.left = 2  # the second renewal reads the clock after the first one was written
    keeper = asyncio.create_task(owner.keep(claim))
    try:
        await asyncio.wait_for(clock.reached.wait(), timeout=5)
        assert isinstance(await other.claim("u1", "long", ROUTE, "sha"), Held)
    finally:
        keeper.cancel()
    clock.now += lease_s
    assert isinstance(await other.claim("u1", "long", ROUTE, "sha"), Claim)

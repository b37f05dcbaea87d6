"""The job store's contract on SQLite and PostgreSQL: leases, reclaim, owner-only transitions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import create_engine
from lowart.storage.jobs import JobRepository
from lowart.storage.migrate import migrate

LEASE = 30.0


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[JobRepository]:
    engine: AsyncEngine = create_engine(database_url)
    await migrate(engine)
    try:
        yield JobRepository(engine)
    finally:
        await engine.dispose()


async def _jobs(repo: JobRepository, n: int, user: str = "u") -> list[str]:
    ids = []
    for i in range(n):
        job = await repo.create(
            job_id=f"job_{user}_{i:03}",
            user_id=user,
            key_id=None,
            kind="chat",
            model="m",
            request={"i": i},
            now=100.0 + i,
        )
        ids.append(job.job_id)
    return ids


async def test_claim_takes_pending_jobs_oldest_first_and_holds_them(repo: JobRepository) -> None:
    ids = await _jobs(repo, 3)
    claimed = await repo.claim("a", 2, now=200.0, lease_s=LEASE)
    assert [j.job_id for j in claimed] == ids[:2]
    assert all(j.status == "running" and j.attempts == 1 for j in claimed)
    assert [j.job_id for j in await repo.claim("b", 5, now=201.0, lease_s=LEASE)] == ids[2:]
    assert await repo.claim("c", 5, now=202.0, lease_s=LEASE) == []


async def test_an_expired_lease_is_reclaimed_by_another_owner(repo: JobRepository) -> None:
    [job_id] = await _jobs(repo, 1)
    await repo.claim("dead", 1, now=200.0, lease_s=LEASE)
    assert await repo.claim("alive", 1, now=200.0 + LEASE - 1, lease_s=LEASE) == []
    [again] = await repo.claim("alive", 1, now=200.0 + LEASE + 1, lease_s=LEASE)
    assert again.job_id == job_id and again.lease_owner == "alive" and again.attempts == 2
    assert not await repo.finish(job_id, "dead", 300.0, status="completed", result={})
    assert await repo.finish(job_id, "alive", 300.0, status="completed", result={"ok": 1})
    done = await repo.get(job_id)
    assert done is not None and done.status == "completed" and done.progress == 1.0


async def test_heartbeat_keeps_a_lease_and_release_hands_it_back(repo: JobRepository) -> None:
    [job_id] = await _jobs(repo, 1)
    await repo.claim("a", 1, now=200.0, lease_s=LEASE)
    await repo.heartbeat("a", [job_id], until=200.0 + 3 * LEASE)
    assert await repo.claim("b", 1, now=200.0 + 2 * LEASE, lease_s=LEASE) == []
    await repo.release("a", [job_id], now=250.0)
    assert [j.job_id for j in await repo.claim("b", 1, now=251.0, lease_s=LEASE)] == [job_id]


async def test_heartbeat_answers_the_jobs_still_held(repo: JobRepository) -> None:
    ids = await _jobs(repo, 3)
    await repo.claim("a", 3, now=200.0, lease_s=LEASE)
    await repo.cancel(ids[1], "u", now=201.0)  # ended by another process
    assert await repo.heartbeat("a", ids, until=300.0) == {ids[0], ids[2]}
    assert await repo.heartbeat("b", ids, until=300.0) == set()


async def test_cancel_for_key_ends_that_keys_unfinished_jobs(repo: JobRepository) -> None:
    made = [
        await repo.create(
            job_id=f"job_k_{i}",
            user_id="u",
            key_id=key_id,
            kind="chat",
            model="m",
            request={},
            now=100.0 + i,
        )
        for i, key_id in enumerate(["k1", "k1", "k1", "k2"])
    ]
    await repo.claim("a", 1, now=200.0, lease_s=LEASE)  # job_k_0 runs
    await repo.finish("job_k_0", "a", now=201.0, status="completed", result={})
    await repo.claim("a", 1, now=202.0, lease_s=LEASE)  # job_k_1 runs
    cancelled = await repo.cancel_for_key("k1", now=203.0, reason="revoked")
    assert sorted(j.job_id for j in cancelled) == ["job_k_1", "job_k_2"]
    after = {j.job_id: await repo.get(j.job_id) for j in made}
    assert {i: (r.status, r.error) for i, r in after.items() if r} == {
        "job_k_0": ("completed", None),
        "job_k_1": ("cancelled", "revoked"),
        "job_k_2": ("cancelled", "revoked"),
        "job_k_3": ("pending", None),
    }
    assert not await repo.finish("job_k_1", "a", now=204.0, status="completed", result={})


async def test_concurrent_claims_never_share_a_job(repo: JobRepository) -> None:
    await _jobs(repo, 20)
    batches = await asyncio.gather(
        *(repo.claim(f"w{i}", 7, now=200.0, lease_s=LEASE) for i in range(4))
    )
    claimed = [j.job_id for batch in batches for j in batch]
    assert len(claimed) == len(set(claimed)) == 20


async def test_cancel_and_reads_are_per_user(repo: JobRepository) -> None:
    [mine] = await _jobs(repo, 1, user="me")
    assert await repo.get(mine, "someone") is None
    assert await repo.cancel(mine, "someone", now=200.0) is None
    cancelled = await repo.cancel(mine, "me", now=200.0)
    assert cancelled is not None and cancelled.status == "cancelled"
    assert await repo.claim("a", 1, now=201.0, lease_s=LEASE) == []


async def test_list_is_newest_first_with_a_cursor(repo: JobRepository) -> None:
    ids = await _jobs(repo, 5)
    first = await repo.list_jobs("u", 2, None)
    assert [j.job_id for j in first] == ids[::-1][:2]
    rest = await repo.list_jobs("u", 10, first[-1].job_id)
    assert [j.job_id for j in rest] == ids[::-1][2:]
    assert await repo.list_jobs("other", 10, None) == []

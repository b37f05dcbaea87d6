"""Jobs: durable rows claimed with a lease, so that a crash loses none of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.codec import dumps
from lowart.storage.engine import reading
from lowart.storage.tables import jobs

TERMINAL = frozenset({"completed", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class JobRow:
    job_id: str
    user_id: str
    key_id: str | None
    kind: str
    model: str
    status: str
    progress: float
    request: str  # JSON text
    result: str | None  # JSON text
    error: str | None
    upstream_ref: str | None
    session_id: str | None
    lease_owner: str | None
    lease_until: float | None
    attempts: int
    created_at: float
    updated_at: float


def job_row(row: RowMapping) -> JobRow:
    return JobRow(**{c.name: row[c.name] for c in jobs.columns})


def _outcome(
    status: str, result: dict[str, Any] | None, error: str | None, now: float
) -> dict[str, Any]:
    values: dict[str, Any] = {"status": status, "error": error, "updated_at": now}
    if status == "completed":
        values["progress"] = 1.0
    if result is not None:
        values["result"] = dumps(result)
    return values


class JobRepository:
    """Reads and writes ``jobs``. Every state change is one conditional UPDATE."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(
        self,
        *,
        job_id: str,
        user_id: str,
        key_id: str | None,
        kind: str,
        model: str,
        request: dict[str, Any],
        now: float,
    ) -> JobRow:
        values = {
            "job_id": job_id,
            "user_id": user_id,
            "key_id": key_id,
            "kind": kind,
            "model": model,
            "status": "pending",
            "progress": 0.0,
            "request": dumps(request),
            "created_at": now,
            "updated_at": now,
        }
        async with self._engine.begin() as conn:
            await conn.execute(jobs.insert().values(**values))
            row = (await conn.execute(sa.select(jobs).where(jobs.c.job_id == job_id))).one()
        return job_row(row._mapping)

    async def get(self, job_id: str, user_id: str | None = None) -> JobRow | None:
        """A job; with ``user_id``, only that user's job."""
        query = sa.select(jobs).where(jobs.c.job_id == job_id)
        if user_id is not None:
            query = query.where(jobs.c.user_id == user_id)
        async with reading(self._engine) as conn:
            row = (await conn.execute(query)).first()
        return job_row(row._mapping) if row else None

    async def list_jobs(self, user_id: str, limit: int, after: str | None) -> list[JobRow]:
        """The user's jobs, newest first, after the job ``after`` (a cursor)."""
        query = sa.select(jobs).where(jobs.c.user_id == user_id)
        async with reading(self._engine) as conn:
            if after is not None:
                cursor = (
                    await conn.execute(
                        sa.select(jobs.c.created_at, jobs.c.job_id).where(
                            jobs.c.job_id == after, jobs.c.user_id == user_id
                        )
                    )
                ).first()
                if cursor is not None:
                    query = query.where(
                        sa.or_(
                            jobs.c.created_at < cursor[0],
                            sa.and_(jobs.c.created_at == cursor[0], jobs.c.job_id < cursor[1]),
                        )
                    )
            query = query.order_by(jobs.c.created_at.desc(), jobs.c.job_id.desc()).limit(limit)
            rows = (await conn.execute(query)).all()
        return [job_row(r._mapping) for r in rows]

    async def claim(self, owner: str, limit: int, now: float, lease_s: float) -> list[JobRow]:
        """Take up to ``limit`` pending jobs, or running ones whose lease expired (a crash)."""
        claimable = sa.or_(
            jobs.c.status == "pending",
            sa.and_(jobs.c.status == "running", jobs.c.lease_until < now),
        )
        async with self._engine.begin() as conn:
            ids = (
                (
                    await conn.execute(
                        sa.select(jobs.c.job_id)
                        .where(claimable)
                        .order_by(jobs.c.created_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not ids:
                return []
            await conn.execute(
                jobs.update()
                .where(jobs.c.job_id.in_(ids), claimable)
                .values(
                    status="running",
                    lease_owner=owner,
                    lease_until=now + lease_s,
                    attempts=jobs.c.attempts + 1,
                    updated_at=now,
                )
            )
            rows = (
                await conn.execute(
                    sa.select(jobs).where(
                        jobs.c.job_id.in_(ids),
                        jobs.c.lease_owner == owner,
                        jobs.c.status == "running",
                    )
                )
            ).all()
        return [job_row(r._mapping) for r in rows]

    async def heartbeat(self, owner: str, job_ids: Sequence[str], until: float) -> set[str]:
        """Renew the leases ``owner`` still holds; the ids it holds (a job another process
        ended, such as one cancelled, is not among them)."""
        if not job_ids:
            return set()
        held = (
            jobs.c.job_id.in_(list(job_ids)),
            jobs.c.lease_owner == owner,
            jobs.c.status == "running",
        )
        async with self._engine.begin() as conn:
            await conn.execute(jobs.update().where(*held).values(lease_until=until))
            rows = await conn.execute(sa.select(jobs.c.job_id).where(*held))
            return {str(job_id) for job_id in rows.scalars()}

    async def release(self, owner: str, job_ids: Sequence[str], now: float) -> None:
        """Give leases back at once (a clean shutdown), so the next start resumes the jobs."""
        if not job_ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                jobs.update()
                .where(
                    jobs.c.job_id.in_(list(job_ids)),
                    jobs.c.lease_owner == owner,
                    jobs.c.status == "running",
                )
                .values(lease_until=now)
            )

    async def update(self, job_id: str, owner: str, now: float, **values: Any) -> bool:
        """Change a running job this owner holds (progress, upstream_ref)."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.job_id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running"
                )
                .values(**values, updated_at=now)
            )
        return result.rowcount > 0

    async def finish(
        self,
        job_id: str,
        owner: str,
        now: float,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """The one terminal transition of a running job held by ``owner``."""
        values = _outcome(status, result, error, now)
        return await self._held(job_id, owner, values)

    async def pause(self, job_id: str, owner: str, now: float, session_id: str) -> bool:
        """A running job waits for a tool confirmation: no lease, no runner."""
        values = _outcome("require_confirmation", None, None, now) | {"session_id": session_id}
        return await self._held(job_id, owner, values)

    async def _held(self, job_id: str, owner: str, values: dict[str, Any]) -> bool:
        """Change a running job, if ``owner`` still holds its lease; the lease ends."""
        values |= {"lease_owner": None, "lease_until": None}
        async with self._engine.begin() as conn:
            done = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.job_id == job_id, jobs.c.lease_owner == owner, jobs.c.status == "running"
                )
                .values(**values)
            )
        return done.rowcount > 0

    async def settle_paused(
        self,
        job_id: str,
        now: float,
        *,
        status: str,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        session_id: str | None = None,
    ) -> bool:
        """A confirmation decided a waiting job: finished, or waiting on a new session."""
        values = _outcome(status, result, error, now) | {"session_id": session_id}
        async with self._engine.begin() as conn:
            done = await conn.execute(
                jobs.update()
                # "running" too: a confirm may land before the runner has recorded the pause.
                .where(
                    jobs.c.job_id == job_id, jobs.c.status.in_(("require_confirmation", "running"))
                )
                .values(**values)
            )
        return done.rowcount > 0

    async def fail_unconfirmed(self, session_ids: Sequence[str], now: float) -> int:
        """Jobs whose confirmation session expired end ``failed``."""
        if not session_ids:
            return 0
        async with self._engine.begin() as conn:
            done = await conn.execute(
                jobs.update()
                .where(
                    jobs.c.status == "require_confirmation",
                    jobs.c.session_id.in_(list(session_ids)),
                )
                .values(
                    status="failed",
                    updated_at=now,
                    error="The tool confirmation expired before anyone confirmed it.",
                )
            )
        return int(done.rowcount)

    async def cancel(self, job_id: str, user_id: str, now: float) -> JobRow | None:
        """Cancel a pending or running job of this user; the row as it is afterwards."""
        async with self._engine.begin() as conn:
            await conn.execute(
                jobs.update()
                .where(
                    jobs.c.job_id == job_id,
                    jobs.c.user_id == user_id,
                    jobs.c.status.in_(("pending", "running", "require_confirmation")),
                )
                .values(
                    status="cancelled",
                    error="Cancelled by the user.",
                    lease_owner=None,
                    lease_until=None,
                    updated_at=now,
                )
            )
            row = (
                await conn.execute(
                    sa.select(jobs).where(jobs.c.job_id == job_id, jobs.c.user_id == user_id)
                )
            ).first()
        return job_row(row._mapping) if row else None

    async def cancel_for_key(self, key_id: str, now: float, reason: str) -> list[JobRow]:
        """Cancel every unfinished job submitted with this key; the jobs cancelled."""
        unfinished = (
            jobs.c.key_id == key_id,
            jobs.c.status.in_(("pending", "running", "require_confirmation")),
        )
        async with self._engine.begin() as conn:
            rows = (await conn.execute(sa.select(jobs).where(*unfinished).with_for_update())).all()
            ids = [row.job_id for row in rows]
            if ids:
                await conn.execute(
                    jobs.update()
                    .where(jobs.c.job_id.in_(ids), *unfinished)
                    .values(
                        status="cancelled",
                        error=reason,
                        lease_owner=None,
                        lease_until=None,
                        updated_at=now,
                    )
                )
        return [job_row(row._mapping) for row in rows]

    async def count_by_status(self) -> dict[str, int]:
        async with reading(self._engine) as conn:
            rows = await conn.execute(
                sa.select(jobs.c.status, sa.func.count()).group_by(jobs.c.status)
            )
        return {str(status): int(n) for status, n in rows}

"""Idempotency keys (docs/api.md "Idempotency-Key"): one row per user and key, claimed by an
INSERT that fails on conflict, so two instances racing for one key get one winner.

A running row carries its owner and a lease the owner renews while the request runs; a row
whose lease ran out (its instance died) or whose answer outlived the TTL is taken over by the
next claim, in one conditional UPDATE. Expired rows (``stale``) are deleted by the retention
sweeper (``storage/retention.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.errors import ServiceUnavailable
from lowart.settings import Settings
from lowart.storage.engine import reading
from lowart.storage.tables import idempotency_keys as keys

RUNNING = "running"
DONE = "done"
STREAMED = 0  # the answer status stored for a stream: it is never replayed
log = structlog.get_logger()

_CLAIM_TRIES = 3  # a row released between the INSERT and the read: claim again

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key: it runs, then finishes or releases the claim."""

    user_id: str
    key: str
    owner: str


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer as sent (``status`` ``STREAMED`` for a stream, whose body is not kept)."""

    status: int
    headers: Headers
    body: bytes


@dataclass(frozen=True, slots=True)
class Held:
    """Another request holds the key, or held it and left its answer."""

    route: str
    body_sha256: str
    status: str
    answer: Answer | None


class IdempotencyStore:
    """Claims, finishes, releases and sweeps ``idempotency_keys`` rows."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl_s: float,
        lease_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._lease_s = lease_s
        self._clock = clock
        self._instance = "gw-" + secrets.token_hex(6)
        self._claims = itertools.count()

    @classmethod
    def from_settings(cls, engine: AsyncEngine, settings: Settings) -> IdempotencyStore:
        return cls(
            engine,
            ttl_s=settings.idempotency.ttl_s,
            lease_s=settings.idempotency.lease_s,
        )

    async def claim(self, user_id: str, key: str, route: str, digest: str) -> Claim | Held:
        """Take the key for this request, or say who holds it."""
        for _ in range(_CLAIM_TRIES):
            claim = Claim(user_id, key, f"{self._instance}:{next(self._claims)}")
            now = self._clock()
            fresh = self._fresh(claim, route, digest, now)
            if await self._insert(fresh) or await self._take_over(claim, fresh, now):
                return claim
            held = await self._held(user_id, key)
            if held is not None:
                return held
        raise ServiceUnavailable("The idempotency key is changing hands; try again.")

    def _fresh(self, claim: Claim, route: str, digest: str, now: float) -> dict[str, object]:
        return {
            "user_id": claim.user_id,
            "key": claim.key,
            "route": route,
            "body_sha256": digest,
            "status": RUNNING,
            "owner": claim.owner,
            "lease_until": now + self._lease_s,
            "answer_status": None,
            "answer_headers": None,
            "answer_body": None,
            "created_at": now,
            "expires_at": now + self._ttl_s,
        }

    async def _insert(self, values: dict[str, object]) -> bool:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(keys.insert().values(**values))
        except IntegrityError:
            return False
        return True

    async def _take_over(self, claim: Claim, values: dict[str, object], now: float) -> bool:
        """Replace a row that no longer counts: an answer past its TTL, or a lost owner."""
        lost = self._row(claim.user_id, claim.key), stale(now)
        async with self._engine.begin() as conn:
            result = await conn.execute(keys.update().where(*lost).values(**values))
        return bool(result.rowcount)

    async def _held(self, user_id: str, key: str) -> Held | None:
        async with reading(self._engine) as conn:
            row = (await conn.execute(sa.select(keys).where(self._row(user_id, key)))).first()
        if row is None:
            return None
        answer = None
        if row.status == DONE:
            pairs = msgspec.json.decode(row.answer_headers or "[]", type=list[tuple[str, str]])
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]
            answer = Answer(row.answer_status or STREAMED, headers, bytes(row.answer_body or b""))
        return Held(row.route, row.body_sha256, row.status, answer)

    @staticmethod
    def _row(user_id: str, key: str) -> sa.ColumnElement[bool]:
        return sa.and_(keys.c.user_id == user_id, keys.c.key == key)

    def _mine(self, claim: Claim) -> sa.ColumnElement[bool]:
        return sa.and_(self._row(claim.user_id, claim.key), keys.c.owner == claim.owner)

    async def finish(self, claim: Claim, answer: Answer) -> None:
        """Keep the answer for replays until the TTL runs out."""
        pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.headers]
        values = {
            "status": DONE,
            "owner": None,
            "answer_status": answer.status,
            "answer_headers": msgspec.json.encode(pairs).decode(),
            "answer_body": answer.body,
            "expires_at": self._clock() + self._ttl_s,
        }
        async with self._engine.begin() as conn:
            await conn.execute(keys.update().where(self._mine(claim)).values(**values))

    async def release(self, claim: Claim) -> None:
        """Nothing was done (or nothing final): the key is free for the client's retry."""
        async with self._engine.begin() as conn:
            await conn.execute(keys.delete().where(self._mine(claim)))

    async def keep(self, claim: Claim) -> None:
        """Renew the claim's lease while its request runs (cancelled when it ends)."""
        mine = sa.and_(self._mine(claim), keys.c.status == RUNNING)
        while True:
            await asyncio.sleep(self._lease_s / 3)
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(
                        keys.update().where(mine).values(lease_until=self._clock() + self._lease_s)
                    )
            except (SQLAlchemyError, ServiceUnavailable, OSError):  # the next one may get through
                log.warning("idempotency_lease_renewal_failed")

    async def sweep(self) -> int:
        """Delete the rows no claim can use any more; returns how many."""
        async with self._engine.begin() as conn:
            result = await conn.execute(keys.delete().where(stale(self._clock())))
        return int(result.rowcount)


def stale(now: float) -> sa.ColumnElement[bool]:
    """Rows no claim can use any more: an answer past its TTL, or a claim whose owner is lost."""
    return sa.or_(
        sa.and_(keys.c.status == DONE, keys.c.expires_at <= now),
        sa.and_(keys.c.status == RUNNING, keys.c.lease_until <= now),
    )

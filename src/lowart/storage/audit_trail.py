"""The one way an admin write is audited, for the admin API and the CLI alike: the object's
state is read before and after the write, and one ``admin_audit`` row says who changed what.

A write that raises records nothing. The row is written after the write, in a transaction of
its own: a process killed between the two loses the row (docs/operations.md, "Admin audit log").
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from lowart.storage.audit import AuditEntry, AuditRepository
from lowart.storage.audit_states import AdminStates, changes


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: the admin's user id and key, its address and request; or the CLI."""

    name: str
    key_id: str | None = None
    address: str | None = None
    request_id: str | None = None


CLI = Actor("cli")


@dataclass(slots=True)
class Change:
    """One write under way: its block may name the target once known (a new key's id), or say
    that nothing was written (``done = False``)."""

    target: str | None
    done: bool = True


class AuditTrail:
    """Records admin writes in ``admin_audit``."""

    def __init__(
        self, repo: AuditRepository, states: AdminStates, clock: Callable[[], float] = time.time
    ) -> None:
        self.repo = repo
        self._states = states
        self._clock = clock

    @asynccontextmanager
    async def write(
        self, actor: Actor, action: str, kind: str, target: str | None
    ) -> AsyncIterator[Change]:
        """Around one write of the object ``kind`` ``target`` (None: known only afterwards)."""
        change = Change(target)
        before = await self._states.state(kind, target)
        yield change
        if not change.done:
            return
        after = await self._states.state(kind, change.target)
        entry = AuditEntry(
            at=round(self._clock(), 6),  # to the microsecond the API shows, so `since` finds it
            actor=actor.name,
            actor_key_id=actor.key_id,
            action=action,
            target=change.target,
            changes=changes(before, after),
            client_address=actor.address,
            request_id=actor.request_id,
        )
        await self.repo.add(entry)

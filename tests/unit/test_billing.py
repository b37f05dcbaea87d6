"""Billing (dispatch/billing.py): the usage row survives a cancel while the quota settles."""

from __future__ import annotations

import asyncio

from lowart.dispatch.attempt import Admission, Attempt
from lowart.dispatch.billing import Billing
from lowart.entries import ModelEntry, Principal, Timeouts
from lowart.formats.openai import Usage
from lowart.limits.base import Reservation
from lowart.providers.base import OPENAI, ChatRequest
from lowart.usage.events import UsageEvent


class _SlowLedger:
    """A quota ledger whose settlement waits (as a Redis round trip does) until released."""

    def __init__(self) -> None:
        self.settling = asyncio.Event()
        self.release = asyncio.Event()

    async def settle(self, reservation: Reservation, actual: int) -> None:
        self.settling.set()
        await self.release.wait()
        reservation.settled = True


class _Rows:
    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)


def _attempt() -> Attempt:
    principal = Principal("u1", "k1", False, True, None, 1_000, None)
    model = ModelEntry(
        "m", "openai", "http://up", None, "gpt-4o", {}, Timeouts(5, 5, 5, 5), enabled=True
    )
    reservation = Reservation(user_id="u1", amount=100, capped=False, id="r1")
    admission = Admission(principal, "m", [model], reservation, None, None)
    request = ChatRequest(body={}, stream=True, wants_usage=False, request_id="req1", fmt=OPENAI)
    return Attempt(admission, request, model)


async def test_a_cancel_while_the_quota_settles_keeps_the_usage_row() -> None:
    ledger, rows = _SlowLedger(), _Rows()
    billing = Billing(quota=ledger, recorder=rows, tokenizer=None)  # type: ignore[arg-type]
    bill = asyncio.create_task(billing.bill(_attempt(), Usage(3, 2), lambda: "", "ok"))
    await ledger.settling.wait()
    bill.cancel()
    await asyncio.gather(bill, return_exceptions=True)
    assert bill.cancelled()
    [row] = rows.events
    assert (row.request_id, row.prompt_tokens, row.completion_tokens, row.status) == (
        "req1",
        3,
        2,
        "ok",
    )
    assert row.reservation_id == "r1"

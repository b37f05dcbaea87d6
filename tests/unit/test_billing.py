"""Billing (dispatch/billing.py): the usage row survives a cancel while the quota settles, and
the vendor's count is capped at ``n * max_tokens`` only."""

from __future__ import annotations

import asyncio

import pytest

from lowart.dispatch.attempt import Admission, Attempt
from lowart.dispatch.billing import Billing
from lowart.formats.ids import OPENAI
from lowart.formats.openai import Usage
from lowart.limits.base import Reservation
from lowart.model_entry import ModelEntry, Timeouts
from lowart.principal import Principal
from lowart.providers.base import ChatRequest
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


class _NoBudgets:
    """The budget gate of a caller without budgets: nothing held, nothing to settle."""

    async def settle(self, holds: list[object], cost: int, tokens: int) -> None:
        assert not holds

    async def correct(self, decisions: list[object], actual: int) -> None:
        assert not decisions


class _Rows:
    def __init__(self) -> None:
        self.events: list[UsageEvent] = []

    def record(self, event: UsageEvent) -> None:
        self.events.append(event)


def _attempt(max_tokens: int | None = None, choices: int = 1) -> Attempt:
    principal = Principal("u1", "k1", False, True, None, 1_000, None)
    model = ModelEntry(
        "m", "openai", "http://up", None, "gpt-4o", {}, Timeouts(5, 5, 5, 5), enabled=True
    )
    reservation = Reservation(user_id="u1", amount=100, capped=False, id="r1")
    admission = Admission(principal, "m", [model], reservation, None, max_tokens, choices)
    request = ChatRequest(body={}, stream=True, wants_usage=False, request_id="req1", fmt=OPENAI)
    return Attempt(admission, request, model)


async def test_a_cancel_while_the_quota_settles_keeps_the_usage_row() -> None:
    ledger, rows = _SlowLedger(), _Rows()
    billing = Billing(
        quota=ledger,
        budgets=_NoBudgets(),  # type: ignore[arg-type]
        rates=_NoBudgets(),  # type: ignore[arg-type]
        recorder=rows,  # type: ignore[arg-type]
        tokenizer=None,  # type: ignore[arg-type]
    )
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


class _Ledger:
    def __init__(self) -> None:
        self.settled: list[int] = []

    async def settle(self, reservation: Reservation, actual: int) -> None:
        self.settled.append(actual)


@pytest.mark.parametrize(
    ("max_tokens", "choices", "reported", "billed"),
    [
        (100, 8, 800, 800),  # every choice used its max_tokens: all of it is billed
        (100, 8, 900, 800),  # more than n * max_tokens is capped there
        (7, 128, 896, 896),
        (100, 1, 150, 100),
        (None, 4, 5_000, 5_000),  # no max_tokens: the vendor's figure as it is
    ],
)
async def test_the_completion_cap_is_n_times_max_tokens(
    max_tokens: int | None, choices: int, reported: int, billed: int
) -> None:
    ledger, rows = _Ledger(), _Rows()
    billing = Billing(
        quota=ledger,
        budgets=_NoBudgets(),  # type: ignore[arg-type]
        rates=_NoBudgets(),  # type: ignore[arg-type]
        recorder=rows,  # type: ignore[arg-type]
        tokenizer=None,  # type: ignore[arg-type]
    )
    await billing.bill(_attempt(max_tokens, choices), Usage(10, reported), lambda: "", "ok")
    [row] = rows.events
    assert (row.prompt_tokens, row.completion_tokens) == (10, billed)
    assert ledger.settled == [10 + billed]

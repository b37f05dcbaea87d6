"""Money paths (docs/reliability.md): the quota ledger as a state machine (S13) and billing
arithmetic over any usage a vendor may report (S14). The concurrent case (50 requests against
one balance, SQLite and PostgreSQL) is tests/integration/test_quota_concurrency.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
)

from lowart.formats.anthropic import usage_from_anthropic
from lowart.formats.openai import MAX_TOKENS, Usage, usage_from_body, usage_from_chunk
from lowart.formats.translate_response import usage_from_openai
from lowart.limits.base import Reservation
from lowart.limits.memory import MemoryQuotaLedger
from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway

USER = "u"

# --- S13: the ledger as a state machine -----------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Reserve, settle (spend), refund, cancel twice, top up, flush and reload, in any order.

    The model is the database: ``db_used`` is what flushes wrote, ``snapshot`` what the last
    reload read. Vendors respect ``max_tokens`` here (actual <= reserved), so nothing overspends.
    """

    open = Bundle("open")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = MemoryQuotaLedger()
        self.quota = 100
        self.spent = 0  # settled, in total
        self.db_used = 0
        self.pending = 0  # settled, not flushed
        self.snapshot = 0
        self.amounts: dict[int, int] = {}  # open reservations by id(), for the invariant

    def _run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    @rule(target=open, want=st.integers(1, 80))
    def reserve(self, want: int) -> Any:
        room = self.quota - self.spent - sum(self.amounts.values())
        got = self._run(self.ledger.reserve(USER, self.quota, self.snapshot, want))
        if room <= 0:
            assert got is None
            return multiple()
        if got is None:  # refused only when a capped reservation is already in flight
            assert want > room
            return multiple()
        assert 1 <= got.amount <= min(want, room)
        self.amounts[id(got)] = got.amount
        return got

    @rule(reservation=consumes(open), fraction=st.floats(0, 1))
    def spend(self, reservation: Reservation, fraction: float) -> None:
        actual = int(reservation.amount * fraction)
        self._settle(reservation, actual)

    @rule(reservation=consumes(open))
    def refund(self, reservation: Reservation) -> None:
        self._settle(reservation, 0)

    @rule(reservation=consumes(open))
    def cancel_twice(self, reservation: Reservation) -> None:
        self._settle(reservation, 0)
        reserved = self.ledger.reserved(USER)
        self._run(self.ledger.settle(reservation, 0))  # a second cancel changes nothing
        assert self.ledger.reserved(USER) == reserved

    def _settle(self, reservation: Reservation, actual: int) -> None:
        self._run(self.ledger.settle(reservation, actual))
        del self.amounts[id(reservation)]
        self.spent += actual
        self.pending += actual

    @rule(amount=st.integers(1, 50))
    def top_up(self, amount: int) -> None:
        self.quota += amount

    @rule()
    def flush(self) -> None:
        self._run(self.ledger.flushed({USER: self.pending}, {}))
        self.db_used += self.pending
        self.pending = 0

    @precondition(lambda self: self.db_used > 0)
    @rule()
    def reload(self) -> None:
        async def load() -> int:
            return self.db_used

        self.snapshot = self._run(self.ledger.reload(load))

    @invariant()
    def books_balance(self) -> None:
        reserved = self.ledger.reserved(USER)
        assert reserved == sum(self.amounts.values()) >= 0
        assert self.spent <= self.quota  # no overspend
        assert self.spent + reserved <= self.quota
        assert self.snapshot + self.ledger.unsettled(USER) == self.spent  # nothing lost or doubled


LedgerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_s13_quota_ledger = LedgerMachine.TestCase


# --- S14: usage arithmetic ------------------------------------------------------------------

_COUNTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
)
_USAGE = st.dictionaries(
    st.sampled_from(
        [
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ]
    ),
    _COUNTS,
) | st.builds(
    lambda usage, cached: {**usage, "prompt_tokens_details": {"cached_tokens": cached}},
    st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens"]), _COUNTS),
    _COUNTS,
)


def _bounded(usage: Usage | None, fields_cap: int = MAX_TOKENS) -> None:
    if usage is None:
        return
    for value in (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens):
        assert type(value) is int and 0 <= value <= fields_cap
    assert usage.cached_tokens <= usage.prompt_tokens


@settings(max_examples=400, deadline=None)
@given(usage=st.one_of(_USAGE, _COUNTS))
def test_s14_any_reported_usage_becomes_bounded_ints(usage: Any) -> None:
    try:
        encoded = json.dumps({"usage": usage}, allow_nan=True).encode()
    except (TypeError, ValueError):
        return
    _bounded(usage_from_body(encoded))
    chunk, _ = usage_from_chunk(json.dumps({"choices": [], "usage": usage}).encode())
    _bounded(chunk)
    _bounded(usage_from_openai(usage))
    if isinstance(usage, dict):
        _bounded(usage_from_anthropic(usage), 3 * MAX_TOKENS)  # input + both cache counts


@settings(max_examples=50, deadline=None)
@given(charges=st.lists(st.integers(0, MAX_TOKENS), min_size=1, max_size=10_000))
def test_s14_sums_of_charges_are_exact(charges: list[int]) -> None:
    ledger = MemoryQuotaLedger()
    for charge in charges:
        ledger.charge(USER, charge)
    assert ledger.unsettled(USER) == sum(charges)  # ints: no float drift


@pytest.mark.parametrize(
    ("upstream", "max_tokens"),
    [
        ("usage-m1000000-m5", 10),  # negative: clamped to 0
        ("usage-99999999999999999999-99999999999999999999", 10),  # huge: capped
        ("usage-0-0", 10),  # an explicit 0 stays 0
        ("nousage", 10),  # missing: estimated
        ("usage-5-500", 10),  # more than max_tokens: billed at max_tokens
    ],
)
def test_s14_billed_tokens_stay_in_bounds_end_to_end(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    upstream: str,
    max_tokens: int,
) -> None:
    gw = make_gateway()
    gw.add_model("m", "OpenAI", base_url=fake_openai[1], api_key="sk-x", upstream_model=upstream)
    key = gw.create_user("payer")
    body = {"model": "m", "max_tokens": max_tokens, "messages": [{"role": "user", "content": "x"}]}
    with gw.client(key) as client:
        assert client.post("/v1/chat/completions", json=body).status_code == 200
        streamed = {**body, "stream": True, "stream_options": {"include_usage": True}}
        assert client.post("/v1/chat/completions", json=streamed).status_code == 200
    gw.flush()
    rows = gw.sql("SELECT prompt_tokens, completion_tokens FROM usage_records")
    assert len(rows) == 2
    for prompt, completion in rows:
        assert type(prompt) is int and 0 <= prompt <= MAX_TOKENS
        assert type(completion) is int and 0 <= completion <= max_tokens
    [(used,)] = gw.sql("SELECT token_used FROM users WHERE user_id = 'payer'")
    assert used == sum(p + c for p, c in rows)
    if upstream == "usage-0-0":
        assert rows == [(0, 0), (0, 0)]

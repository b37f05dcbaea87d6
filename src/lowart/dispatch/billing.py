"""Billing of attempts: usage rows, quota settlement, and offline estimates when a vendor
reports no usage. Estimates and stream billing run in tracked tasks, off the response path."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from lowart.dispatch.attempt import Admission, Attempt
from lowart.dispatch.budgets import BudgetGate
from lowart.dispatch.rates import Rates
from lowart.dispatch.traced import finish
from lowart.formats.embeddings import input_texts, input_token_ids
from lowart.formats.openai import Usage, prompt_text
from lowart.limits.base import QuotaLedger, TokenWindow
from lowart.model_entry import OperationKind
from lowart.money import Metered, cost_of, price_at
from lowart.usage.estimate import Tokenizer, admission_estimate
from lowart.usage.events import UsageEvent
from lowart.usage.recorder import UsageRecorder

log = structlog.get_logger()

NO_USAGE = Usage(0, 0)


def _prompt(body: dict[str, Any]) -> str:
    """The text a request sends: a chat's messages and tools, or an embedding's text inputs."""
    return prompt_text(body) + input_texts(body)  # one of them is empty


class Billing:
    """Turns attempts into usage rows and quota settlements."""

    def __init__(
        self,
        *,
        quota: QuotaLedger,
        budgets: BudgetGate,
        rates: Rates,
        recorder: UsageRecorder,
        tokenizer: Tokenizer,
        tokens: TokenWindow | None = None,
    ) -> None:
        self._quota = quota
        self._tokens = tokens  # deployments' TPM windows (docs/api.md, "Deployments")
        self._budgets = budgets
        self._rates = rates
        self._recorder = recorder
        self._tokenizer = tokenizer
        self._tasks: set[asyncio.Task[None]] = set()

    def failed(self, attempt: Attempt) -> None:
        """An attempt that served nothing: a row, no tokens."""
        self._record(attempt, NO_USAGE, estimated=False, status="error")

    def broken(self, attempt: Attempt) -> None:
        """An answer that broke after its head: the vendor may bill the prompt, but the caller
        got nothing. An ``error`` row with the prompt's estimate, for the operator's
        reconciliation with the vendor; error rows are never charged. Estimated in a tracked
        task, so that a caller leaving meanwhile cannot lose the row."""
        self.bill_later(self._record_broken(attempt))

    async def _record_broken(self, attempt: Attempt) -> None:
        prompt = (await self._estimate(attempt, str)).prompt_tokens  # str() is "": no completion
        self._record(attempt, Usage(prompt, 0), estimated=True, status="error")

    def cancelled(self, attempt: Attempt) -> None:
        """The caller left before an answer arrived: a row, no tokens to show for it."""
        self._record(attempt, NO_USAGE, estimated=False, status="cancelled")

    async def release(self, attempt: Attempt) -> None:
        """The request ends without an answer: its reservation is returned whole."""
        await self.give_back(attempt.admission)

    async def give_back(self, admission: Admission) -> None:
        """Return the request's token reservation and budget holds whole (nothing served)."""
        if admission.reservation is not None:
            await self._quota.settle(admission.reservation, 0)
        await self._budgets.settle(admission.holds, 0, 0)
        await self._rates.correct(admission.tpm, 0)

    async def bill(
        self, attempt: Attempt, usage: Usage | None, completion: Callable[[], str], status: str
    ) -> None:
        """Settle the served attempt with the vendor's usage, or an offline estimate."""
        estimated = usage is None
        if usage is None:
            usage = await self._estimate(attempt, completion)
        admission = attempt.admission
        cap = admission.completion_cap  # n * max_tokens: every choice may use max_tokens
        if cap is not None and usage.completion_tokens > cap:
            usage = dataclasses.replace(usage, completion_tokens=cap)
        # The row first: settling may wait on Redis, and a cancel landing there (the client
        # gone just as its stream ended, or a shutdown) must not lose it. An unsettled
        # reservation is returned by its lease, as when Redis fails.
        spent = cost(attempt, usage)
        self._record(attempt, usage, estimated=estimated, status=status, spent=spent, billed=True)
        if attempt.model.tpm_cap is not None and self._tokens is not None:
            await self._tokens.add(attempt.model.health_key, usage.total_tokens)
        if admission.reservation is not None:
            await self._quota.settle(admission.reservation, usage.total_tokens)
        else:
            self._quota.charge(admission.principal.user_id, usage.total_tokens)
        await self._budgets.settle(admission.holds, spent, usage.total_tokens)
        await self._rates.correct(admission.tpm, usage.total_tokens)

    def bill_later(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run billing in a tracked task: a cancelled stream (client gone) is still billed."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for billing still in progress (at shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _estimate(self, attempt: Attempt, completion: Callable[[], str]) -> Usage:
        body = attempt.request.body

        def count() -> Usage:
            return Usage(
                prompt_tokens=self._tokenizer.count(_prompt(body)) + input_token_ids(body),
                completion_tokens=self._tokenizer.count(completion()),
            )

        try:
            return await asyncio.to_thread(count)
        except Exception:  # billing must not be lost to the estimator: bill the byte bound
            log.exception("usage_estimate_failed", request_id=attempt.request.request_id)
            return Usage(
                admission_estimate(len(_prompt(body).encode())),
                admission_estimate(len(completion().encode())),
            )

    def _record(
        self,
        attempt: Attempt,
        usage: Usage,
        *,
        estimated: bool,
        status: str,
        spent: int = 0,
        billed: bool = False,
    ) -> None:
        """A row; ``billed`` for the attempt that served, whose cost (``spent``) and tokens
        count against the budgets."""
        event = _event(attempt, usage, estimated=estimated, status=status)
        event.cost = spent
        if billed and attempt.admission.holds:
            holds = attempt.admission.holds
            event.budget_keys = tuple(hold.key for hold in holds)
            event.budget_holds = tuple(hold.reservation.id for hold in holds)
        self._recorder.record(event)
        if attempt.span is not None:  # tracing on: the attempt's span ends with its row
            finish(attempt, usage, status, event.billed_tokens)


def _event(attempt: Attempt, usage: Usage, *, estimated: bool, status: str) -> UsageEvent:
    """The attempt's usage row, at no cost and holding no budget."""
    principal = attempt.admission.principal
    reservation = attempt.admission.reservation
    return UsageEvent(
        request_id=attempt.request.request_id,
        user_id=principal.user_id,
        key_id=principal.key_id,
        requested_model=attempt.admission.requested,
        served_model=attempt.model.model_id,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        estimated=estimated,
        status=status,
        latency_ms=(time.perf_counter() - attempt.started) * 1000,
        ttft_ms=attempt.ttft * 1000 if attempt.ttft is not None else None,
        created_at=time.time(),
        reservation_id=reservation.id if reservation is not None else "",
        cache_read_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        team_id=principal.team_id,
        deployment=attempt.model.deployment,
    )


def cost(attempt: Attempt, usage: Usage) -> int:
    """The attempt's cost at the served model's prices in effect when it was admitted."""
    admission = attempt.admission
    price = price_at(attempt.model.prices, admission.admitted_at)
    if price is None:
        return 0
    metered = Metered(
        prompt=usage.prompt_tokens,
        completion=usage.completion_tokens,
        cache_read=usage.cached_tokens,
        cache_write=usage.cache_write_tokens,
        images=usage.images,
        embeddings=admission.operation is OperationKind.EMBEDDINGS,
    )
    return cost_of(price, metered)

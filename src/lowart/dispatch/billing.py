"""Billing of attempts: usage rows, quota settlement, and offline estimates when a vendor
reports no usage. Estimates and stream billing run in tracked tasks, off the response path."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from lowart.dispatch.attempt import Attempt
from lowart.dispatch.traced import finish
from lowart.formats.embeddings import input_texts, input_token_ids
from lowart.formats.openai import Usage, prompt_text
from lowart.limits.base import QuotaLedger, TokenWindow
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
        recorder: UsageRecorder,
        tokenizer: Tokenizer,
        tokens: TokenWindow | None = None,
    ) -> None:
        self._quota = quota
        self._tokens = tokens  # deployments' TPM windows (docs/api.md, "Deployments")
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
        reservation = attempt.admission.reservation
        if reservation is not None:
            await self._quota.settle(reservation, 0)

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
            usage = Usage(usage.prompt_tokens, cap, usage.cached_tokens)
        # The row first: settling may wait on Redis, and a cancel landing there (the client
        # gone just as its stream ended, or a shutdown) must not lose it. An unsettled
        # reservation is returned by its lease, as when Redis fails.
        self._record(attempt, usage, estimated=estimated, status=status)
        if attempt.model.tpm_cap is not None and self._tokens is not None:
            await self._tokens.add(attempt.model.health_key, usage.total_tokens)
        if admission.reservation is not None:
            await self._quota.settle(admission.reservation, usage.total_tokens)
        else:
            self._quota.charge(admission.principal.user_id, usage.total_tokens)

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

    def _record(self, attempt: Attempt, usage: Usage, *, estimated: bool, status: str) -> None:
        principal = attempt.admission.principal
        reservation = attempt.admission.reservation
        event = UsageEvent(
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
            deployment=attempt.model.deployment,
        )
        self._recorder.record(event)
        if attempt.span is not None:  # tracing on: the attempt's span ends with its row
            finish(attempt, usage, status, event.billed_tokens)

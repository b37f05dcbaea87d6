"""The dispatcher: admission, then the chain with retries, fallbacks and circuit breakers.

Admission checks the model, the quota and the RPM window from memory. The chain is tried in
order; a model whose circuit is open is skipped. An attempt that fails with a connection error,
a timeout, a 5xx or a 429 before its first byte is retried on the same model with backoff, then
hands over to the next model. A client-caused 4xx ends the request at once. Every attempt writes
a usage row; only the one that served is billed (``ok``, or ``partial``/``cancelled`` for a
stream that broke or was abandoned after its first byte).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, TypeVar

import structlog

from lowart.catalog.circuit import Circuits
from lowart.catalog.directory import Directory
from lowart.dispatch import failure_log
from lowart.dispatch.attempt import (
    MAX_TOKEN_FIELDS,
    Admission,
    Attempt,
    Served,
    Streaming,
    in_flight,
    requested_choices,
    requested_max_tokens,
    stream_error,
    within,
)
from lowart.dispatch.billing import Billing
from lowart.dispatch.budgets import BudgetGate, worst_case
from lowart.dispatch.rates import Rates
from lowart.dispatch.retry import RetryPolicy
from lowart.dispatch.traced import operation_name, traced_call
from lowart.errors import (
    InvalidRequest,
    LowartError,
    ModelNotFound,
    Overloaded,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    UpstreamAnswerBroken,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from lowart.formats.openai import completion_text_from_body
from lowart.limits.base import QuotaLedger, Reservation, RpmDecision
from lowart.model_entry import ModelEntry, OperationKind
from lowart.principal import Principal
from lowart.providers.base import ChatRequest, ChatStream, Completion, Provider
from lowart.providers.crossing import in_caller_format
from lowart.telemetry.metrics import Metrics
from lowart.telemetry.tracing import Tracing
from lowart.usage.estimate import admission_estimate
from lowart.usage.recorder import UsageRecorder

log = structlog.get_logger()

FALLBACK_ERRORS = (UpstreamError, UpstreamTimeout, UpstreamRateLimited)
_CHAT, _IMAGES, _EMBEDDINGS = (
    OperationKind.CHAT,
    OperationKind.IMAGES,
    OperationKind.EMBEDDINGS,
)  # an enum member lookup costs ~250 ns (3.11)
_SERVES = {_CHAT: "chat", _IMAGES: "generate images", _EMBEDDINGS: "serve embeddings"}
T = TypeVar("T")
Opened = tuple[ChatStream, AsyncIterator[bytes], bytes]


class Dispatcher:
    """Admits, routes and bills chat requests."""

    def __init__(
        self,
        *,
        directory: Directory,
        rates: Rates,
        quota: QuotaLedger,
        providers: Mapping[str, Provider],
        recorder: UsageRecorder,
        billing: Billing,
        metrics: Metrics,
        circuits: Circuits,
        retry: RetryPolicy,
        default_reserve: int,
        budgets: BudgetGate,
        tracing: Tracing | None = None,
    ) -> None:
        self._directory = directory
        self._rates = rates
        self._quota = quota
        self._providers = providers
        self._recorder = recorder
        self._billing = billing
        self._metrics = metrics
        self._circuits = circuits
        self._retry = retry
        self._default_reserve = default_reserve
        self._budgets = budgets
        self._tracing = tracing  # None: tracing off, no span built

    # -- admission -------------------------------------------------------------------------

    async def admit(
        self,
        principal: Principal,
        model_id: str,
        body: dict[str, Any],
        body_bytes: int,
        *,
        count_rpm: bool = True,
        operation: OperationKind = OperationKind.CHAT,
    ) -> Admission:
        """Check the model, the quota, the budgets and the RPM window; raise when the request
        may not run.

        A job is counted against the RPM window when it is submitted, not again when it runs.
        While usage cannot reach the database, nothing is admitted: no request goes unbilled.
        """
        if not self._recorder.healthy:
            raise ServiceUnavailable("Usage cannot be recorded right now; try again soon.")
        chain = self._chain(principal, model_id, operation)
        max_tokens = requested_max_tokens(body) if operation is not _EMBEDDINGS else None
        # images: n is pictures, one answer; embeddings: no completion, the input only
        choices = requested_choices(body) if operation is _CHAT else int(operation is _IMAGES)
        reservation = await self._reserve(principal, body_bytes, max_tokens, choices)
        if reservation is not None and reservation.capped and max_tokens is not None:
            max_tokens = await self._fit(reservation, body, body_bytes, choices)
        now = self._budgets.clock()
        admission = Admission(
            principal, model_id, chain, reservation, None, max_tokens, choices, operation, now
        )
        try:
            await self._limit(admission, body, body_bytes, count_rpm=count_rpm)
        except RateLimited:  # a budget or the RPM window: give back what was held
            await self._billing.give_back(admission)
            raise
        self._recorder.key_used(principal.key_id)
        return admission

    async def _limit(
        self, admission: Admission, body: dict[str, Any], body_bytes: int, *, count_rpm: bool
    ) -> None:
        """Hold the worst-case cost on the budgets (the tokens as reserved and the images, at
        the chain's highest prices), count the tokens in the TPM windows, then the RPM window."""
        principal, now = admission.principal, admission.admitted_at
        per_choice = admission.max_tokens or self._default_reserve
        tokens = admission_estimate(body_bytes) + admission.choices * per_choice
        if principal.counts_tokens:
            admission.tpm = await self._rates.count_tokens(principal, tokens)
        if principal.budgets:
            images = requested_choices(body) if admission.operation is _IMAGES else 0
            want = worst_case(admission.chain, tokens, images, now)
            admission.holds = await self._budgets.hold(principal, want, tokens, now)
        if count_rpm:
            admission.rpm = await self.count_request(principal)

    async def admit_job(
        self, principal: Principal, model_id: str, *, operation: OperationKind = OperationKind.CHAT
    ) -> RpmDecision | None:
        """A job submitted now, run later: its model is checked and the RPM window counts it
        now; its quota is reserved when it runs (``admit`` with ``count_rpm=False``), so that
        each limit applies once (docs/api.md, "Jobs")."""
        if not self._recorder.healthy:
            raise ServiceUnavailable("Usage cannot be recorded right now; try again soon.")
        self._chain(principal, model_id, operation)
        rpm = await self.count_request(principal)
        self._recorder.key_used(principal.key_id)
        return rpm

    def _chain(
        self, principal: Principal, model_id: str, operation: OperationKind
    ) -> list[ModelEntry]:
        """The model and the fallbacks the caller may use (docs/api.md, "Chat"): a fallback
        outside the caller's allowlist is skipped, never served in its stead."""
        chain = self._directory.chain(model_id) if principal.may_use(model_id) else []
        if not chain:
            raise ModelNotFound(model_id)
        if principal.models is not None:
            chain = [m for m in chain if principal.may_use(m.model_id)]
        if operation not in chain[0].operations or len(chain) > 1:
            # only models serving the operation, fallbacks too (params.kinds may narrow chat)
            chain = [m for m in chain if operation in m.operations]
            if not chain or chain[0].model_id != model_id:
                raise InvalidRequest(
                    f"The model '{model_id}' does not {_SERVES[operation]}.", param="model"
                )
        return chain

    async def count_request(self, principal: Principal) -> RpmDecision | None:
        """Count one request against the caller's RPM windows; raise when one is full."""
        return await self._rates.count_request(principal)

    async def _reserve(
        self, principal: Principal, body_bytes: int, max_tokens: int | None, choices: int
    ) -> Reservation | None:
        if principal.token_quota is None:
            return None
        per_choice = max_tokens or self._default_reserve
        want = admission_estimate(body_bytes) + choices * per_choice
        settled = self._directory.token_used(principal.user_id)
        reservation = await self._quota.reserve(
            principal.user_id, principal.token_quota, settled, want
        )
        if reservation is None:
            self._metrics.rate_limited.labels(reason="quota").inc()
            raise QuotaExceeded("You exceeded your token quota.")
        return reservation

    async def _fit(
        self, reservation: Reservation, body: dict[str, Any], body_bytes: int, choices: int
    ) -> int:
        """A capped reservation for a request with ``max_tokens``: lower ``max_tokens`` so that
        its ``n`` choices fit in what the reservation covers, and cannot overspend the quota."""
        room = (reservation.amount - admission_estimate(body_bytes)) // choices
        if room < 1:
            await self._quota.settle(reservation, 0)
            self._metrics.rate_limited.labels(reason="quota").inc()
            raise QuotaExceeded("You exceeded your token quota.")
        for name in MAX_TOKEN_FIELDS:
            if name in body:
                body[name] = room
        return room

    # -- whole answers and streams ---------------------------------------------------------

    async def complete(self, admission: Admission, request: ChatRequest) -> Served:
        """The first whole answer the chain gives."""

        def call(attempt: Attempt) -> Awaitable[Completion]:
            return self._provider(attempt).complete(attempt.model, request)

        run: Callable[[Attempt], Awaitable[Completion]] = call
        if self._tracing is not None:
            run = traced_call(self._tracing, call, operation_name(request.fmt))
        attempt, completion = await self._first_success(admission, request, run)
        self._observe_upstream(attempt)
        text = functools.partial(completion_text_from_body, completion.body)
        await self._billing.bill(attempt, completion.usage, text, "ok")
        return Served(completion.body, admission.headers(attempt.model))

    async def stream(self, admission: Admission, request: ChatRequest) -> Streaming:
        """The first model that yields a first chunk; the rest is relayed as it comes."""

        async def call(attempt: Attempt) -> Opened:
            stream = await self._provider(attempt).open_stream(attempt.model, request)
            events = aiter(stream)
            try:
                first = await anext(events)
            except StopAsyncIteration as exc:
                await stream.aclose()
                raise UpstreamError("The upstream stream ended before its first event.") from exc
            except BaseException:
                await stream.aclose()
                raise
            return stream, events, first

        run: Callable[[Attempt], Awaitable[Opened]] = call
        if self._tracing is not None:
            run = traced_call(self._tracing, call, operation_name(request.fmt))
        attempt, (stream, events, first) = await self._first_success(admission, request, run)
        attempt.ttft = time.perf_counter() - attempt.started
        self._metrics.time(self._metrics.ttft, attempt.ttft, self._label(attempt.model))
        relay = self._relay(attempt, stream, events, first)
        return Streaming(admission.headers(attempt.model), relay)

    async def _relay(
        self, attempt: Attempt, stream: ChatStream, events: AsyncIterator[bytes], first: bytes
    ) -> AsyncIterator[bytes]:
        status = "cancelled"
        tracked = in_flight(attempt, stream, len(first))
        self._recorder.inflight.add(tracked)  # ended by its usage row
        try:
            yield first
            async for chunk in events:
                tracked.relayed += len(chunk)  # no I/O: the usage writer reads it
                yield chunk
            status = "ok"
        except LowartError as exc:
            status = "partial"
            log.warning("stream_broken", model_id=attempt.model.model_id, error=exc.message)
            yield stream_error(exc, attempt.request.fmt)
        finally:
            await stream.aclose()
            self._observe_upstream(attempt)
            billing = self._billing.bill(attempt, stream.usage, stream.completion_text, status)
            if status == "ok" and stream.usage is not None:
                await billing  # an exact count at a normal end: nothing to wait for
            else:  # an estimate, or a stream cut short (perhaps cancelled): billed in a task
                self._billing.bill_later(billing)

    # -- the chain -------------------------------------------------------------------------

    async def _first_success(
        self, admission: Admission, request: ChatRequest, call: Callable[[Attempt], Awaitable[T]]
    ) -> tuple[Attempt, T]:
        """Try the chain: retries per model, fallbacks in order, open circuits skipped. One
        coroutine for the whole chain: each level of awaiting costs every suspension."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry.config.deadline_s
        budget = self._retry.config.max_attempts
        last: LowartError | None = None
        previous: ModelEntry | None = None
        for model in admission.chain:
            if budget <= 0 or loop.time() >= deadline:
                break
            if previous is not None:
                self._metrics.fallbacks.labels(
                    from_model=self._label(previous), to_model=self._label(model)
                ).inc()
                failure_log.fallback(request.request_id, previous, model)
            previous = model
            if not self._circuits.allow(model.model_id):
                continue
            retry = 0
            while budget > 0:  # attempts on this model until it answers or fails for good
                budget -= 1
                attempt = Attempt(admission, request, within(model, deadline - loop.time()))
                try:
                    result = await call(attempt)
                except FALLBACK_ERRORS as exc:
                    last = exc
                    delay = await self._upstream_failed(attempt, exc, retry, deadline)
                    if delay is None or budget <= 0:
                        break
                    retry += 1
                    self._metrics.retries.labels(model=self._label(model)).inc()
                    await asyncio.sleep(delay)
                    continue
                except LowartError as exc:
                    self._circuits.report(model.model_id, failed=False)  # the caller's fault
                    failure_log.attempt_failed(attempt, exc, retry + 1)
                    self._billing.failed(attempt)
                    await self._billing.release(attempt)
                    raise
                except BaseException:
                    self._circuits.abandon(model.model_id)
                    self._billing.cancelled(attempt)
                    await self._billing.release(attempt)
                    raise
                self._circuits.report(model.model_id, failed=False)
                return attempt, result
        raise await self._exhausted(admission, last)

    async def _upstream_failed(
        self, attempt: Attempt, error: LowartError, retry: int, deadline: float
    ) -> float | None:
        """An attempt the upstream failed: counted by the circuit, logged, recorded. Returns the
        wait before trying the same model again (None: move on). An answer that broke after its
        head (the vendor may have generated and billed it) is never sent again: the request
        ends with it, and its row carries the prompt's estimate, not charged (F20)."""
        self._circuits.report(attempt.model.model_id, failed=True)
        failure_log.attempt_failed(attempt, error, retry + 1)
        if isinstance(error, UpstreamAnswerBroken):
            self._billing.broken(attempt)
            await self._billing.release(attempt)
            raise error
        self._billing.failed(attempt)
        remaining = deadline - asyncio.get_running_loop().time()
        return self._retry.delay(error, retry, remaining)

    async def _exhausted(self, admission: Admission, last: LowartError | None) -> LowartError:
        """No model served: give back the held tokens and budgets; the error to answer with."""
        await self._billing.give_back(admission)
        if last is None:
            return Overloaded("Every model in the chain is unavailable (circuit open).")
        if isinstance(last, UpstreamRateLimited):
            self._metrics.rate_limited.labels(reason="upstream").inc()
        return last

    # -- helpers ---------------------------------------------------------------------------

    def _provider(self, attempt: Attempt) -> Provider:
        provider = self._providers.get(attempt.model.vendor)
        if provider is None:
            raise UpstreamError(
                f"The vendor of '{attempt.model.model_id}' cannot serve chat requests."
            )
        return in_caller_format(provider, attempt.request.fmt)

    def _label(self, model: ModelEntry) -> str:
        return self._metrics.model_label(model.model_id)

    def _observe_upstream(self, attempt: Attempt) -> None:
        elapsed = time.perf_counter() - attempt.started
        self._metrics.time(self._metrics.upstream_duration, elapsed, self._label(attempt.model))

    async def drain(self) -> None:
        """Wait for billing still in progress (at shutdown)."""
        await self._billing.drain()

"""The dispatcher: admission, then the chain with retries, fallbacks and circuit breakers.

Admission checks the model, the quota and the RPM window from memory. The chain is tried in
order; each model's deployments in the order its strategy gives (``routing.py``), a deployment
whose circuit is open, which is cooling or whose cap is full skipped. An attempt that fails with
a connection error, a timeout, a 5xx or a 429 before its first byte moves to the model's next
deployment, then is retried with backoff, then hands over to the next model. A client-caused
4xx ends the request at once. Every attempt writes a usage row; only the one that served is
billed (``ok``, or ``partial``/``cancelled`` for a stream that broke or was abandoned after its
first byte).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog

from lowart.catalog.circuit import CLOSED, Circuits
from lowart.catalog.directory import Directory
from lowart.dispatch import failure_log
from lowart.dispatch.admission import Admissions
from lowart.dispatch.attempt import (
    Admission,
    Attempt,
    Served,
    Streaming,
    in_flight,
    stream_error,
    within,
)
from lowart.dispatch.billing import Billing
from lowart.dispatch.budgets import BudgetGate
from lowart.dispatch.rates import Rates
from lowart.dispatch.retry import RetryPolicy, retry_after_seconds
from lowart.dispatch.routing import Router, session_of
from lowart.dispatch.traced import operation_name, traced_call
from lowart.errors import (
    LowartError,
    Overloaded,
    UpstreamAnswerBroken,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from lowart.formats.openai import completion_text_from_body
from lowart.limits.base import QuotaLedger
from lowart.model_entry import ModelEntry
from lowart.providers.base import ChatRequest, ChatStream, Completion, Provider
from lowart.providers.crossing import in_caller_format
from lowart.telemetry.metrics import Metrics
from lowart.telemetry.tracing import Tracing
from lowart.usage.recorder import UsageRecorder

log = structlog.get_logger()

FALLBACK_ERRORS = (UpstreamError, UpstreamTimeout, UpstreamRateLimited)
T = TypeVar("T")
Opened = tuple[ChatStream, AsyncIterator[bytes], bytes]


@dataclass(slots=True)
class _Chain:
    """Where one request's chain stands: attempts left, the last failure, the last model."""

    budget: int
    last: LowartError | None = None
    previous: ModelEntry | None = None


class Dispatcher(Admissions):
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
        router: Router,
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
        self._router = router
        self._default_reserve = default_reserve
        self._budgets = budgets
        self._tracing = tracing  # None: tracing off, no span built

    # -- whole answers and streams ---------------------------------------------------------

    async def complete(self, admission: Admission, request: ChatRequest) -> Served:
        """The first whole answer the chain gives."""

        def call(attempt: Attempt) -> Awaitable[Completion]:
            return self._provider(attempt).complete(attempt.model, request)

        run: Callable[[Attempt], Awaitable[Completion]] = call
        if self._tracing is not None:
            run = traced_call(self._tracing, call, operation_name(request.fmt))
        attempt, completion = await self._first_success(admission, request, run)
        elapsed = self._observe_upstream(attempt)
        if attempt.model.pooled:
            self._ended(attempt)
            self._router.health.observe(attempt.model.health_key, elapsed)
        text = functools.partial(completion_text_from_body, completion.body)
        await self._billing.bill(attempt, completion.usage, text, "ok")
        return Served(completion.body, admission.headers(attempt.model), attempt.model.deployment)

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
        model = attempt.model
        self._metrics.time(self._metrics.ttft, attempt.ttft, self._label(model), model.deployment)
        if attempt.model.pooled:
            self._router.health.observe(model.health_key, attempt.ttft)
        relay = self._relay(attempt, stream, events, first)
        return Streaming(admission.headers(model), relay, model.deployment)

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
            self._ended(attempt)
            billing = self._billing.bill(attempt, stream.usage, stream.completion_text, status)
            if status == "ok" and stream.usage is not None:
                await billing  # an exact count at a normal end: nothing to wait for
            else:  # an estimate, or a stream cut short (perhaps cancelled): billed in a task
                self._billing.bill_later(billing)

    # -- the chain -------------------------------------------------------------------------

    async def _first_success(
        self, admission: Admission, request: ChatRequest, call: Callable[[Attempt], Awaitable[T]]
    ) -> tuple[Attempt, T]:
        """Try the chain: each model's deployments in its strategy's order, then retries, then
        the next model; open circuits and full caps skipped. One coroutine for the whole chain:
        each level of awaiting costs every suspension."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry.config.deadline_s
        state = _Chain(self._retry.config.max_attempts)
        for model in admission.chain:
            if state.budget <= 0 or loop.time() >= deadline:
                break
            self._moved_to(request, state, model)
            pool = self._pool(model, admission, request)
            failed, position = False, 0
            limit = len(pool) + self._retry.config.retries
            while state.budget > 0 and position < limit:
                deployment = pool[position % len(pool)]
                retry = position - len(pool)  # from 0: a deployment tried already, after a wait
                if retry >= 0 and (not failed or not await self._backoff(state, retry, deadline)):
                    break
                position += 1
                if retry < 0 and not self._circuits.allow(deployment.health_key):
                    continue  # checked once per request, as a model's always was
                if deployment.guarded and not await self._admissible(deployment, retry < 0):
                    continue
                state.budget -= 1
                attempt = Attempt(admission, request, within(deployment, deadline - loop.time()))
                if deployment.pooled:
                    self._router.health.started(deployment.health_key)
                try:
                    result = await call(attempt)
                except FALLBACK_ERRORS as exc:
                    state.last, failed = exc, True
                    await self._upstream_failed(attempt, exc, position)
                    continue
                except BaseException as exc:
                    await self._ended_by(attempt, exc, position)
                    raise
                self._circuits.report(deployment.health_key, failed=False)
                return attempt, result
        raise await self._exhausted(admission, state.last)

    def _moved_to(self, request: ChatRequest, state: _Chain, model: ModelEntry) -> None:
        if state.previous is not None:
            self._metrics.fallbacks.labels(
                from_model=self._label(state.previous), to_model=self._label(model)
            ).inc()
            failure_log.fallback(request.request_id, state.previous, model)
        state.previous = model

    def _pool(
        self, model: ModelEntry, admission: Admission, request: ChatRequest
    ) -> Sequence[ModelEntry]:
        """The model's deployments in the order to try them (itself, when it has one)."""
        routing = model.routing
        if routing is None:
            return (model,)
        user = admission.principal.user_id
        session = session_of(request.raw_headers, user) if routing.sticky else None
        return self._router.order(model, session, request.preferred_deployment) or (model,)

    async def _admissible(self, deployment: ModelEntry, allowed: bool) -> bool:
        """A deployment with several, or with caps: not cooling, not ejected since its first
        try (a retry), and with room under its caps. When ``allowed`` (its circuit let this
        call through just now) a refusal gives the let-through back."""
        key = deployment.health_key
        refused = deployment.pooled and (
            self._router.health.cooling(key)
            or (not allowed and self._circuits.state(key) != CLOSED)
        )
        if not refused and await self._router.within_caps(deployment):
            return True
        if allowed:
            self._circuits.abandon(key)
        return False

    async def _backoff(self, state: _Chain, retry: int, deadline: float) -> bool:
        """Wait before trying a deployment again; False: move on to the next model."""
        assert state.last is not None and state.previous is not None
        remaining = deadline - asyncio.get_running_loop().time()
        delay = self._retry.delay(state.last, retry, remaining)
        if delay is None:
            return False
        self._metrics.retries.labels(model=self._label(state.previous)).inc()
        await asyncio.sleep(delay)
        return True

    async def _ended_by(self, attempt: Attempt, error: BaseException, try_number: int) -> None:
        """An attempt ended by the caller's error (it ends the request) or by a cancel (the
        circuit's verdict abandoned); upstream failures are ``_upstream_failed``'s."""
        key = attempt.model.health_key
        self._ended(attempt)
        if isinstance(error, LowartError):
            self._circuits.report(key, failed=False)  # the caller's fault
            failure_log.attempt_failed(attempt, error, try_number)
            self._billing.failed(attempt)
        else:
            self._circuits.abandon(key)
            self._billing.cancelled(attempt)
        await self._billing.release(attempt)

    def _ended(self, attempt: Attempt) -> None:
        """A pooled attempt no longer in flight."""
        if attempt.model.pooled:
            self._router.health.ended(attempt.model.health_key)

    async def _upstream_failed(self, attempt: Attempt, error: LowartError, try_number: int) -> None:
        """An attempt the upstream failed: counted by the circuit, logged, recorded; a 429
        cools a pooled deployment for its ``Retry-After``. An answer that broke after its head
        (the vendor may have generated and billed it) is never sent again: the request ends
        with it, and its row carries the prompt's estimate, not charged (F20)."""
        key = attempt.model.health_key
        self._circuits.report(key, failed=True)
        failure_log.attempt_failed(attempt, error, try_number)
        if attempt.model.pooled:
            self._ended(attempt)
            self._router.health.failed(key, type(error).__name__)
            if isinstance(error, UpstreamRateLimited):
                wait = retry_after_seconds(error.retry_after_header, dt.datetime.now(dt.UTC))
                self._router.health.cool(key, wait)
        if isinstance(error, UpstreamAnswerBroken):
            self._billing.broken(attempt)
            await self._billing.release(attempt)
            raise error
        self._billing.failed(attempt)

    async def _exhausted(self, admission: Admission, last: LowartError | None) -> LowartError:
        """No model served: give back the held tokens and budgets; the error to answer with."""
        await self._billing.give_back(admission)
        if last is None:
            return Overloaded(
                "Every model in the chain is unavailable (circuit open, cooling after a 429, "
                "or at its deployments' caps)."
            )
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

    def _observe_upstream(self, attempt: Attempt) -> float:
        elapsed = time.perf_counter() - attempt.started
        model = attempt.model
        self._metrics.time(
            self._metrics.upstream_duration, elapsed, self._label(model), model.deployment
        )
        return elapsed

    async def drain(self) -> None:
        """Wait for billing still in progress (at shutdown)."""
        await self._billing.drain()

"""One chat request's flow: admission → chain → provider → relay → usage.

Admission checks the model, the RPM window and the token quota from memory. The chain is tried in
order; a candidate that fails with a connection error, a timeout, a 5xx or a 429 before its first
byte hands over to the next. A client-caused 4xx ends the request at once. Every attempt writes a
usage row; the served one is ``ok`` (or ``partial``/``cancelled`` for a broken or abandoned stream).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from lowart.catalog.directory import Directory
from lowart.entries import ModelEntry, Principal
from lowart.errors import (
    LowartError,
    ModelNotFound,
    QuotaExceeded,
    RateLimited,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)
from lowart.formats.anthropic import error_event as anthropic_error_event
from lowart.formats.openai import Usage, completion_text_from_body, error_body, prompt_text
from lowart.formats.sse import encode_event
from lowart.limits.base import Reservation, RpmDecision
from lowart.limits.memory import MemoryQuotaLedger, MemoryRateLimiter
from lowart.providers.base import ANTHROPIC, ChatRequest, ChatStream, Provider
from lowart.providers.crossing import in_caller_format
from lowart.telemetry.metrics import Metrics
from lowart.usage.estimate import Tokenizer, admission_estimate
from lowart.usage.events import UsageEvent
from lowart.usage.recorder import UsageRecorder

log = structlog.get_logger()

FALLBACK_ERRORS = (UpstreamError, UpstreamTimeout, UpstreamRateLimited)


@dataclass(slots=True)
class Admission:
    """A request let in: its chain, its held tokens and its RPM standing."""

    principal: Principal
    requested: str
    chain: list[ModelEntry]
    reservation: Reservation | None
    rpm: RpmDecision | None
    max_tokens: int | None

    def headers(self, served: ModelEntry) -> dict[str, str]:
        headers = {"x-lowart-model": served.model_id}
        if self.rpm is not None:
            headers.update(self.rpm.headers())
        return headers


def requested_max_tokens(body: Mapping[str, Any]) -> int | None:
    """``max_completion_tokens``, else ``max_tokens`` (validated at the edge)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


@dataclass(slots=True)
class Served:
    """A whole answer to send."""

    body: bytes
    headers: dict[str, str]


@dataclass(slots=True)
class Streaming:
    """An answer to stream: its headers, and the bytes (billing runs when they end)."""

    headers: dict[str, str]
    events: AsyncIterator[bytes]


@dataclass(slots=True)
class Attempt:
    """One upstream attempt of one request."""

    admission: Admission
    request: ChatRequest
    model: ModelEntry
    index: int
    started: float = field(default_factory=time.perf_counter)
    ttft: float | None = None

    @property
    def next_model(self) -> ModelEntry | None:
        chain = self.admission.chain
        return chain[self.index + 1] if self.index + 1 < len(chain) else None


def stream_error(exc: LowartError, fmt: str) -> bytes:
    """The explicit error event that ends a stream after its first byte, in the caller's format."""
    if fmt == ANTHROPIC:
        return anthropic_error_event(exc.anthropic_error_type, exc.message)
    return encode_event(error_body(exc.message, exc.error_type, exc.error_code))


class Dispatcher:
    """Admits, routes and bills chat requests."""

    def __init__(
        self,
        *,
        directory: Directory,
        rate_limiter: MemoryRateLimiter,
        quota: MemoryQuotaLedger,
        providers: Mapping[str, Provider],
        recorder: UsageRecorder,
        metrics: Metrics,
        tokenizer: Tokenizer,
        default_reserve: int,
    ) -> None:
        self._directory = directory
        self._rpm = rate_limiter
        self._quota = quota
        self._providers = providers
        self._recorder = recorder
        self._metrics = metrics
        self._tokenizer = tokenizer
        self._default_reserve = default_reserve
        self._billing: set[asyncio.Task[None]] = set()

    # -- admission -------------------------------------------------------------------------

    async def admit(
        self, principal: Principal, model_id: str, body: Mapping[str, Any], body_bytes: int
    ) -> Admission:
        """Check the model, the quota and the RPM window; raise when the request may not run."""
        chain = self._directory.chain(model_id) if principal.may_use(model_id) else []
        if not chain:
            raise ModelNotFound(model_id)
        max_tokens = requested_max_tokens(body)
        reservation = await self._reserve(principal, body_bytes, max_tokens)
        rpm = None
        if principal.rpm_limit is not None:
            rpm = await self._rpm.admit(principal.user_id, principal.rpm_limit)
            if not rpm.allowed:
                if reservation is not None:
                    await self._quota.settle(reservation, 0)
                self._metrics.rate_limited.labels(reason="rpm").inc()
                raise RateLimited(
                    f"Rate limit reached: {rpm.limit} requests per minute.",
                    retry_after=rpm.reset_s,
                    extra_headers=rpm.headers(),
                )
        self._recorder.key_used(principal.key_id)
        return Admission(principal, model_id, chain, reservation, rpm, max_tokens)

    async def _reserve(
        self, principal: Principal, body_bytes: int, max_tokens: int | None
    ) -> Reservation | None:
        if principal.token_quota is None:
            return None
        want = admission_estimate(body_bytes) + (max_tokens or self._default_reserve)
        settled = self._directory.token_used(principal.user_id)
        reservation = await self._quota.reserve(
            principal.user_id, principal.token_quota, settled, want
        )
        if reservation is None:
            self._metrics.rate_limited.labels(reason="quota").inc()
            raise QuotaExceeded("You exceeded your token quota.")
        return reservation

    # -- whole answers ---------------------------------------------------------------------

    async def complete(self, admission: Admission, request: ChatRequest) -> Served:
        """Try the chain until one model answers."""
        last: LowartError | None = None
        for index, model in enumerate(admission.chain):
            attempt = Attempt(admission, request, model, index)
            try:
                completion = await self._provider(model, request).complete(model, request)
            except FALLBACK_ERRORS as exc:
                last = exc
                self._failed(attempt, fall_back=True)
                continue
            except LowartError:
                self._failed(attempt, fall_back=False)
                await self._release(admission)
                raise
            self._observe_upstream(attempt)
            usage = completion.usage
            if usage is None:
                usage = await self._estimate(
                    request, functools.partial(completion_text_from_body, completion.body)
                )
                await self._settle(attempt, usage, estimated=True, status="ok")
            else:
                await self._settle(attempt, usage, estimated=False, status="ok")
            return Served(completion.body, admission.headers(model))
        await self._release(admission)
        assert last is not None
        raise last

    # -- streams ---------------------------------------------------------------------------

    async def stream(self, admission: Admission, request: ChatRequest) -> Streaming:
        """Open the first model that yields a first chunk; relay the rest as it comes."""
        last: LowartError | None = None
        for index, model in enumerate(admission.chain):
            attempt = Attempt(admission, request, model, index)
            stream: ChatStream | None = None
            try:
                stream = await self._provider(model, request).open_stream(model, request)
                events = aiter(stream)
                first = await anext(events)
            except FALLBACK_ERRORS as exc:
                last = exc
                if stream is not None:
                    await stream.aclose()
                self._failed(attempt, fall_back=True)
                continue
            except LowartError:
                self._failed(attempt, fall_back=False)
                await self._release(admission)
                raise
            attempt.ttft = time.perf_counter() - attempt.started
            self._metrics.ttft.labels(model=self._label(model)).observe(attempt.ttft)
            return Streaming(admission.headers(model), self._relay(attempt, stream, events, first))
        await self._release(admission)
        assert last is not None
        raise last

    async def _relay(
        self, attempt: Attempt, stream: ChatStream, events: AsyncIterator[bytes], first: bytes
    ) -> AsyncIterator[bytes]:
        status = "cancelled"
        try:
            yield first
            async for chunk in events:
                yield chunk
            status = "ok"
        except LowartError as exc:
            status = "partial"
            log.warning("stream_broken", model_id=attempt.model.model_id, error=exc.message)
            yield stream_error(exc, attempt.request.fmt)
        finally:
            await stream.aclose()
            self._observe_upstream(attempt)
            # Billing runs in its own task: a cancelled stream (client gone) must still be billed.
            self._spawn(self._bill_stream(attempt, stream, status))

    # -- billing ---------------------------------------------------------------------------

    def _provider(self, model: ModelEntry, request: ChatRequest) -> Provider:
        provider = self._providers.get(model.vendor)
        if provider is None:
            raise UpstreamError(f"The vendor of '{model.model_id}' cannot serve chat requests.")
        return in_caller_format(provider, request.fmt)

    def _label(self, model: ModelEntry) -> str:
        return self._metrics.model_label(model.model_id)

    def _observe_upstream(self, attempt: Attempt) -> None:
        self._metrics.upstream_duration.labels(model=self._label(attempt.model)).observe(
            time.perf_counter() - attempt.started
        )

    async def _release(self, admission: Admission) -> None:
        if admission.reservation is not None:
            await self._quota.settle(admission.reservation, 0)

    def _failed(self, attempt: Attempt, *, fall_back: bool) -> None:
        self._record(attempt, Usage(0, 0), estimated=False, status="error")
        following = attempt.next_model
        if fall_back and following is not None:
            self._metrics.fallbacks.labels(
                from_model=self._label(attempt.model), to_model=self._label(following)
            ).inc()

    async def _bill_stream(self, attempt: Attempt, stream: ChatStream, status: str) -> None:
        if stream.usage is not None:
            await self._settle(attempt, stream.usage, estimated=False, status=status)
            return
        usage = await self._estimate(attempt.request, stream.completion_text)
        await self._settle(attempt, usage, estimated=True, status=status)

    async def _estimate(self, request: ChatRequest, completion: Callable[[], str]) -> Usage:
        """Count tokens offline, in a worker thread (the vendor reported no usage)."""

        def count() -> Usage:
            return Usage(
                prompt_tokens=self._tokenizer.count(prompt_text(request.body)),
                completion_tokens=self._tokenizer.count(completion()),
            )

        return await asyncio.to_thread(count)

    async def _settle(
        self, attempt: Attempt, usage: Usage, *, estimated: bool, status: str
    ) -> None:
        admission = attempt.admission
        if admission.max_tokens is not None and usage.completion_tokens > admission.max_tokens:
            usage = Usage(usage.prompt_tokens, admission.max_tokens, usage.cached_tokens)
        if admission.reservation is not None:
            await self._quota.settle(admission.reservation, usage.total_tokens)
        else:
            self._quota.record(admission.principal.user_id, usage.total_tokens)
        self._record(attempt, usage, estimated=estimated, status=status)

    def _record(self, attempt: Attempt, usage: Usage, *, estimated: bool, status: str) -> None:
        principal = attempt.admission.principal
        self._recorder.record(
            UsageEvent(
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
            )
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._billing.add(task)
        task.add_done_callback(self._billing.discard)

    async def drain(self) -> None:
        """Wait for billing still in progress (at shutdown)."""
        while self._billing:
            await asyncio.gather(*self._billing, return_exceptions=True)

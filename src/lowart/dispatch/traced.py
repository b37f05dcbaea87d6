"""Attempt spans (docs/operations.md, "Tracing"): one per upstream try, fallbacks included.

With tracing on, the dispatcher wraps its call to the provider in ``traced_call``: the attempt's
span starts there, is current while the provider sends (so the upstream receives its
``traceparent``) and ends with the attempt's usage row (``finish``), which every attempt
writes exactly once, whatever its end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from lowart.dispatch.attempt import Attempt
from lowart.errors import LowartError
from lowart.formats.ids import EMBEDDINGS, IMAGES
from lowart.formats.openai import Usage
from lowart.telemetry import tracing as t
from lowart.telemetry.tracing import CLIENT, Tracing

T = TypeVar("T")
OPERATIONS = {EMBEDDINGS: "embeddings", IMAGES: "generate_content"}  # by wire format


def operation_name(fmt: str) -> str:
    """``gen_ai.operation.name`` of a request in the wire format ``fmt``."""
    return OPERATIONS.get(fmt, "chat")


def traced_call(
    tracing: Tracing, call: Callable[[Attempt], Awaitable[T]], operation: str
) -> Callable[[Attempt], Awaitable[T]]:
    """``call`` with a span per attempt, current while it runs."""

    async def traced(attempt: Attempt) -> T:
        model = attempt.model
        attributes = {
            t.OPERATION: operation,
            t.PROVIDER: t.PROVIDER_NAMES.get(model.vendor, model.vendor),
            t.REQUEST_MODEL: model.upstream_model,
            "lowart.model": model.model_id,
            "lowart.deployment": model.deployment,
            "lowart.requested_model": attempt.admission.requested,
            "lowart.fallback": model.model_id != attempt.admission.requested,
            **t.server_of(model.base_url),
        }
        span = tracing.start(f"{operation} {model.upstream_model}", CLIENT, attributes)
        attempt.span = span
        with tracing.current(span):
            try:
                return await call(attempt)
            except LowartError as exc:
                t.failed(span, exc.error_code or type(exc).__name__, exc.message)
                raise
            except BaseException as exc:
                t.failed(span, type(exc).__name__)
                raise

    return traced


def finish(attempt: Attempt, usage: Usage, status: str, billed: int) -> None:
    """End the attempt's span with what its usage row says."""
    span = attempt.span
    if span is None:
        return
    attempt.span = None
    span.set_attribute("lowart.status", status)
    if status in ("ok", "partial"):
        span.set_attribute(t.RESPONSE_MODEL, attempt.model.upstream_model)
        span.set_attribute(t.INPUT_TOKENS, usage.prompt_tokens)
        span.set_attribute(t.OUTPUT_TOKENS, usage.completion_tokens)
        span.set_attribute("lowart.billed_tokens", billed)
    if attempt.ttft is not None:
        span.set_attribute("lowart.ttfb_ms", attempt.ttft * 1000)
    if status == "cancelled":
        t.failed(span, "cancelled")
    span.end()

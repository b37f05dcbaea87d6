"""The values one request carries through its flow: its admission and each upstream attempt."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from lowart.dispatch.budgets import Hold
from lowart.errors import LowartError
from lowart.formats.anthropic import error_event as anthropic_error_event
from lowart.formats.ids import ANTHROPIC, RESPONSES
from lowart.formats.openai import error_body, prompt_text
from lowart.formats.sse import encode_event
from lowart.limits.base import Reservation, RpmDecision
from lowart.limits.tpm import TpmDecision
from lowart.model_entry import DEFAULT_DEPLOYMENT, ModelEntry, OperationKind
from lowart.principal import Principal
from lowart.providers.base import ChatRequest, ChatStream
from lowart.telemetry.tracing import Span
from lowart.usage.inflight import InFlight


@dataclass(slots=True)
class Admission:
    """A request let in: its chain, its held tokens and its RPM standing."""

    principal: Principal
    requested: str
    chain: list[ModelEntry]
    reservation: Reservation | None
    rpm: RpmDecision | None
    max_tokens: int | None  # per choice
    choices: int = 1  # OpenAI's ``n``
    operation: OperationKind = OperationKind.CHAT
    admitted_at: float = 0.0  # Unix seconds: the prices and budget periods that apply
    # the request's share of each budget, its tokens in each TPM window (no list built per
    # request when none applies)
    holds: Sequence[Hold] = ()
    tpm: Sequence[TpmDecision] = ()

    @property
    def completion_cap(self) -> int | None:
        """The most completion tokens the request may be billed: ``n * max_tokens``."""
        return None if self.max_tokens is None else self.choices * self.max_tokens

    def headers(self, served: ModelEntry) -> list[tuple[bytes, bytes]]:
        """The gateway's response headers: the model that served, the RPM and TPM standing."""
        headers = [(b"x-lowart-model", served.model_id.encode())]
        if self.rpm is not None:
            headers += self.rpm.headers()
        if self.tpm:
            headers += min(self.tpm, key=_remaining).headers()
        return headers


def stream_error(exc: LowartError, fmt: str) -> bytes:
    """The explicit error event that ends a stream after its first byte, in the caller's format."""
    if fmt == ANTHROPIC:
        return anthropic_error_event(exc.anthropic_error_type, exc.message)
    if fmt == RESPONSES:  # the Responses API's error event, with an ``error`` the SDK raises
        code = exc.error_code or exc.error_type
        error = {"type": exc.error_type, "code": code, "message": exc.message}
        event = {
            "type": "error",
            "code": code,
            "message": exc.message,
            "param": None,
            "error": error,
        }
        return encode_event(msgspec.json.encode(event), event="error")
    return encode_event(error_body(exc.message, exc.error_type, exc.error_code))


def within(model: ModelEntry, remaining_s: float) -> ModelEntry:
    """The model with its per-try timeouts cut to what remains of the request's deadline."""
    if remaining_s >= model.timeouts.total:
        return model
    t = model.timeouts
    cut = dataclasses.replace(
        t,
        total=remaining_s,
        first_byte=min(t.first_byte, remaining_s),
        idle=min(t.idle, remaining_s),
        connect=min(t.connect, remaining_s),
    )
    return dataclasses.replace(model, timeouts=cut)


def _remaining(decision: TpmDecision) -> int:
    return decision.remaining


MAX_TOKEN_FIELDS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def requested_max_tokens(body: Mapping[str, Any]) -> int | None:
    """The larger of ``max_completion_tokens`` and ``max_tokens`` (validated at the edge): a
    vendor given both may honour either, so only the larger bounds what it may produce. A
    Responses request has ``max_output_tokens`` instead."""
    found = None
    for name in MAX_TOKEN_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            found = value if found is None else max(found, value)
    return found


def requested_choices(body: Mapping[str, Any]) -> int:
    """OpenAI's ``n``, the number of choices (validated at the edge), else 1."""
    value = body.get("n")
    if isinstance(value, int) and not isinstance(value, bool) and value > 1:
        return value
    return 1


@dataclass(slots=True)
class Attempt:
    """One upstream attempt of one request."""

    admission: Admission
    request: ChatRequest
    model: ModelEntry
    started: float = field(default_factory=time.perf_counter)
    ttft: float | None = None
    span: Span | None = None  # with tracing on (dispatch/traced.py)


@dataclass(slots=True)
class Served:
    """A whole answer to send."""

    body: bytes
    headers: list[tuple[bytes, bytes]]
    deployment: str = DEFAULT_DEPLOYMENT  # which deployment of the served model answered


@dataclass(slots=True)
class Streaming:
    """An answer to stream: its headers, and the bytes (billing runs when they end)."""

    headers: list[tuple[bytes, bytes]]
    events: AsyncIterator[bytes]
    deployment: str = DEFAULT_DEPLOYMENT  # which deployment of the served model answers


def in_flight(attempt: Attempt, stream: ChatStream, relayed: int) -> InFlight:
    """The registry entry of a stream being relayed (its texts are read only at checkpoints)."""
    admission = attempt.admission
    reservation = admission.reservation
    return InFlight(
        request_id=attempt.request.request_id,
        user_id=admission.principal.user_id,
        key_id=admission.principal.key_id,
        requested_model=admission.requested,
        served_model=attempt.model.model_id,
        reservation_id=reservation.id if reservation is not None else "",
        reserved_tokens=reservation.amount if reservation is not None else 0,
        completion_cap=admission.completion_cap,
        prompt=functools.partial(prompt_text, attempt.request.body),
        completion=stream.completion_text,
        started_at=time.time(),
        relayed=relayed,
    )

"""The values one request carries through its flow: its admission and each upstream attempt."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from lowart.formats.openai import prompt_text
from lowart.limits.base import Reservation, RpmDecision
from lowart.model_entry import DEFAULT_DEPLOYMENT, ModelEntry
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

    @property
    def completion_cap(self) -> int | None:
        """The most completion tokens the request may be billed: ``n * max_tokens``."""
        return None if self.max_tokens is None else self.choices * self.max_tokens

    def headers(self, served: ModelEntry) -> list[tuple[bytes, bytes]]:
        """The gateway's response headers: the model that served, and the RPM standing."""
        model = (b"x-lowart-model", served.model_id.encode())
        return [model, *self.rpm.headers()] if self.rpm is not None else [model]


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

"""One upstream attempt's usage, as recorded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STATUSES = ("ok", "error", "partial", "cancelled")


@dataclass(slots=True)  # per request: frozen ones cost more to build
class UsageEvent:
    """A row of ``usage_records``: one upstream attempt."""

    request_id: str
    user_id: str
    key_id: str | None
    requested_model: str
    served_model: str
    prompt_tokens: int
    completion_tokens: int
    estimated: bool
    status: str
    latency_ms: float | None
    ttft_ms: float | None
    created_at: float
    reservation_id: str = ""  # the shared quota ledger's settlement this row completes
    deployment: str = "default"  # which of the served model's deployments answered

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def billed_tokens(self) -> int:
        """What the user is charged: an ``error`` row's tokens (the prompt estimate of an answer
        that broke after it began) are for reconciling with the vendor, never charged."""
        return billed_tokens(self.status, self.prompt_tokens, self.completion_tokens)

    def row(self) -> dict[str, Any]:
        """The ``usage_records`` row (built by hand: ``dataclasses.asdict`` is slow)."""
        return {
            "request_id": self.request_id,
            "user_id": self.user_id,
            "key_id": self.key_id,
            "requested_model": self.requested_model,
            "served_model": self.served_model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated": int(self.estimated),
            "status": self.status,
            "latency_ms": self.latency_ms,
            "ttft_ms": self.ttft_ms,
            "created_at": self.created_at,
            "deployment": self.deployment,
        }


def billed_tokens(status: str, prompt_tokens: int, completion_tokens: int) -> int:
    """A row's charged tokens: all of them, except on an ``error`` row."""
    return 0 if status == "error" else prompt_tokens + completion_tokens

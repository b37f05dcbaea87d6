"""One upstream attempt's usage, as recorded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

STATUSES = ("ok", "error", "partial", "cancelled")


@dataclass(frozen=True, slots=True)
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

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        values["estimated"] = int(self.estimated)
        return values

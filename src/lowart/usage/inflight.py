"""Requests in flight: a registry in memory, kept by the relay without I/O, read by the usage
writer, which checkpoints each request older than ``INFLIGHT_CHECKPOINT_S`` (docs/operations.md,
"Requests in flight"). A killed process then loses at most one checkpoint interval of them.

The relay only counts the bytes it relays. The writer turns them into completion tokens: the
byte bound (UTF-8 bytes ÷ 3, as admission estimates) of the text relayed so far, where that text
is ``relayed`` times the text's share of the relayed bytes. The share is measured from the
stream's own text when the relayed bytes have doubled since it was last measured, so a stream's
text is read O(log n) times, and a checkpoint of a thousand streams costs no parsing at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lowart.usage.estimate import admission_estimate


@dataclass(slots=True)  # one per stream: frozen ones cost more to build
class InFlight:
    """One request being relayed, with what its checkpoint row needs."""

    request_id: str
    user_id: str
    key_id: str | None
    requested_model: str
    served_model: str
    reservation_id: str
    reserved_tokens: int
    completion_cap: int | None  # n * max_tokens, the cap billing applies
    prompt: Callable[[], str]  # the prompt's text, read at the first checkpoint
    completion: Callable[[], str]  # the text relayed so far, read at each checkpoint
    started_at: float  # Unix seconds
    relayed: int = 0  # bytes relayed to the client so far (the relay adds each chunk's)
    prompt_tokens: int = -1  # estimated at the first checkpoint
    share: float = 0.0  # the completion text's bytes per relayed byte, when last measured
    measured_at: int = 0  # ``relayed`` when the share was measured
    checkpointed: bool = False  # a row of it may be in the database

    def completion_tokens(self) -> int:
        """The byte bound of the text relayed so far (measuring the share when it is due)."""
        if self.relayed and self.relayed >= 2 * self.measured_at:
            self.share = len(self.completion().encode()) / self.relayed
            self.measured_at = self.relayed
        tokens = admission_estimate(round(self.relayed * self.share))
        return tokens if self.completion_cap is None else min(tokens, self.completion_cap)


class InFlightRegistry:
    """The requests in flight of this process, by request id. Nothing here does I/O."""

    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id
        self._live: dict[str, InFlight] = {}
        self._done: list[str] = []  # checkpointed requests that ended: rows to delete

    def __len__(self) -> int:
        return len(self._live)

    def add(self, entry: InFlight) -> None:
        """Track a request (the relay, at its first chunk)."""
        before = self._live.get(entry.request_id)
        if before is not None and before.checkpointed:
            entry.checkpointed = True  # the row is keyed by request id: this one owns it now
        self._live[entry.request_id] = entry

    def finish(self, request_id: str) -> None:
        """The request's usage row is queued: its checkpoint goes with that row's batch."""
        entry = self._live.pop(request_id, None)
        if entry is not None and entry.checkpointed:
            self._done.append(request_id)

    def take_done(self) -> list[str]:
        done, self._done = self._done, []
        return done

    def put_back_done(self, done: list[str]) -> None:
        self._done[:0] = done

    def due(self, now: float, age: float) -> list[dict[str, Any]]:
        """Checkpoint rows of the requests in flight for ``age`` seconds or more."""
        rows = []
        for entry in self._live.values():
            if now - entry.started_at >= age:
                entry.checkpointed = True
                rows.append(self._row(entry, now))
        return rows

    def _row(self, entry: InFlight, now: float) -> dict[str, Any]:
        if entry.prompt_tokens < 0:
            entry.prompt_tokens = admission_estimate(len(entry.prompt().encode()))
        return {
            "request_id": entry.request_id,
            "instance_id": self.instance_id,
            "user_id": entry.user_id,
            "key_id": entry.key_id,
            "requested_model": entry.requested_model,
            "served_model": entry.served_model,
            "reservation_id": entry.reservation_id,
            "reserved_tokens": entry.reserved_tokens,
            "prompt_tokens": entry.prompt_tokens,
            "completion_tokens": entry.completion_tokens(),
            "started_at": entry.started_at,
            "updated_at": now,
        }

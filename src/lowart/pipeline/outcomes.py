"""The outcomes of one operation: whole, streamed, submitted as a job, or paused on a person.

``Served`` and ``Streaming`` come from the dispatcher as they are; the others are built here.
The edge renders each in the caller's format; a job stores the answer, or waits on the pause.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lowart.dispatch.attempt import Served, Streaming


@dataclass(slots=True)
class Answered:
    """A whole answer the gateway composed (the tool loop's last round), as a JSON object."""

    body: dict[str, Any]
    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Paused:
    """Tool calls wait for a person: the pause object, and the session that resumes it."""

    body: dict[str, Any]
    session_id: str
    headers: list[tuple[bytes, bytes]]


@dataclass(slots=True)
class Submitted:
    """Run later as a job: its id, the model asked for, and the RPM standing."""

    job_id: str
    model: str
    headers: list[tuple[bytes, bytes]]

    def body(self) -> dict[str, Any]:
        return {"status": "async_started", "job_id": self.job_id, "model": self.model}


Outcome = Served | Streaming | Answered | Paused | Submitted
Whole = Served | Answered | Paused  # what a job's run can end in

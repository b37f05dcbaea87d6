"""A durable local outbox for usage the database could not take.

When a flush fails (the database is down or locked), the batch is written to a file here and
fsynced, so neither a long outage nor a killed process loses it. Each file is written to the
database once: the write records the file's id in the same transaction, and a file whose id is
already recorded is only removed.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger()

_SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class Spooled:
    """One spooled batch: its usage rows, the quota settlements they complete, and the
    requests whose in-flight checkpoints they replace."""

    batch_id: str
    rows: list[dict[str, Any]]
    tags: dict[str, list[str]]
    done: list[str]


class Outbox:
    """Spooled batches, one file each, oldest first. Blocking: call it from a worker thread."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def spool(
        self,
        rows: Sequence[Mapping[str, Any]],
        tags: Mapping[str, Sequence[str]],
        done: Sequence[str] = (),
    ) -> str:
        """Write a batch durably (temporary file, fsync, rename). Returns its id."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # rows name users and models
        batch_id = f"{time.time_ns():020d}-{uuid.uuid4().hex}"  # names sort oldest first
        final = self._dir / (batch_id + _SUFFIX)
        partial = final.with_suffix(".partial")
        payload = {
            "rows": list(rows),
            "tags": {user: list(ids) for user, ids in tags.items()},
            "done": list(done),
        }
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        partial.rename(final)
        self._sync_dir()
        return batch_id

    def batches(self) -> list[Spooled]:
        """Every spooled batch, oldest first."""
        if not self._dir.is_dir():
            return []
        found = []
        for path in sorted(self._dir.glob("*" + _SUFFIX)):
            payload = json.loads(path.read_text(encoding="utf-8"))
            done = payload.get("done", [])  # absent from files spooled by older versions
            rows = [{"deployment": None, **row} for row in payload["rows"]]  # spooled before 0008
            found.append(Spooled(path.stem, rows, payload["tags"], done))
        return found

    def remove(self, batch_id: str) -> None:
        (self._dir / (batch_id + _SUFFIX)).unlink(missing_ok=True)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

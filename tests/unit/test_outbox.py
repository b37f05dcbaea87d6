"""The usage recorder's outbox: a refused batch is spooled durably and written exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from lowart.telemetry.metrics import Metrics
from lowart.usage.events import UsageEvent
from lowart.usage.inflight import InFlightRegistry
from lowart.usage.outbox import Outbox
from lowart.usage.recorder import UsageRecorder


class FakeUsageRepository:
    """Keeps written batches in memory; ``down`` makes every write fail like a lost database."""

    def __init__(self) -> None:
        self.down = False
        self.rows: list[Mapping[str, Any]] = []
        self.token_used: dict[str, int] = {}
        self.markers: set[str] = set()
        self.checkpoints: dict[str, Mapping[str, Any]] = {}  # inflight_requests, by request
        self.writes: list[tuple[list[str], list[str]]] = []  # each write: its rows, its done

    async def write_batch(
        self,
        records: Sequence[Mapping[str, Any]],
        token_deltas: Mapping[str, int],
        keys_used: Mapping[str, dt.datetime],
        once: str | None = None,
        *,
        done: Sequence[str] = (),
        checkpoints: Sequence[Mapping[str, Any]] = (),
        spent: Mapping[str, int] | None = None,
    ) -> bool:
        if self.down:
            raise ConnectionRefusedError("database down")
        if once is not None:
            if once in self.markers:
                return False
            self.markers.add(once)
        self.rows += records
        for user, delta in token_deltas.items():
            self.token_used[user] = self.token_used.get(user, 0) + delta
        for request_id in done:
            self.checkpoints.pop(request_id, None)
        self.checkpoints.update((row["request_id"], row) for row in checkpoints)
        self.writes.append(([r["request_id"] for r in records], list(done)))
        return True


def _event(n: int, user: str = "u", tokens: int = 5) -> UsageEvent:
    return UsageEvent(
        request_id=f"req-{n}",
        user_id=user,
        key_id=None,
        requested_model="m",
        served_model="m",
        prompt_tokens=tokens,
        completion_tokens=tokens,
        estimated=False,
        status="ok",
        latency_ms=1.0,
        ttft_ms=None,
        created_at=0.0,
        reservation_id=f"r{n}",
    )


def _recorder(
    repo: FakeUsageRepository, outbox: Outbox, checkpoint_s: float = 1.0
) -> tuple[UsageRecorder, list[Any]]:
    noted: list[Any] = []

    async def on_flushed(deltas: Mapping[str, int], tags: Mapping[str, Sequence[str]]) -> None:
        noted.append((dict(deltas), {u: list(t) for u, t in tags.items()}))

    async def on_spent(spent: Mapping[str, int], holds: Mapping[str, Sequence[str]]) -> None:
        assert not spent  # these rows count against no budget

    recorder = UsageRecorder(
        repo,  # type: ignore[arg-type]  # structurally a UsageRepository
        Metrics(),
        flush_ms=10,
        lock=asyncio.Lock(),
        on_flushed=on_flushed,
        on_spent=on_spent,
        outbox=outbox,
        inflight=InFlightRegistry("gw-test"),
        checkpoint_s=checkpoint_s,
    )
    return recorder, noted


async def test_a_refused_batch_is_spooled_then_written_once(tmp_path: Path) -> None:
    repo = FakeUsageRepository()
    outbox = Outbox(tmp_path / "outbox")
    recorder, noted = _recorder(repo, outbox)
    repo.down = True
    recorder.record(_event(1))
    recorder.record(_event(2, user="v"))
    with pytest.raises(ConnectionRefusedError):
        await recorder.flush()
    assert not recorder.healthy
    assert recorder.queued == 0  # on disk now, not in memory
    (spooled,) = outbox.batches()
    assert [r["request_id"] for r in spooled.rows] == ["req-1", "req-2"]
    assert spooled.tags == {"u": ["r1"], "v": ["r2"]}
    recorder.record(_event(3))
    with pytest.raises(ConnectionRefusedError):
        await recorder.flush()
    assert len(outbox.batches()) == 1  # the queued row was not spooled over the older batch
    repo.down = False
    assert await recorder.flush() == 1
    assert recorder.healthy
    assert [r["request_id"] for r in repo.rows] == ["req-1", "req-2", "req-3"]
    assert repo.token_used == {"u": 20, "v": 10}
    assert outbox.batches() == []
    assert noted[0] == ({"u": 10, "v": 10}, {"u": ["r1"], "v": ["r2"]})


async def test_a_batch_already_written_is_only_removed(tmp_path: Path) -> None:
    repo = FakeUsageRepository()
    outbox = Outbox(tmp_path / "outbox")
    batch_id = outbox.spool([_event(1).row()], {"u": ["r1"]})
    repo.markers.add(batch_id)  # written just before a crash, file not yet removed
    recorder, noted = _recorder(repo, outbox)
    await recorder.flush()
    assert repo.rows == []
    assert repo.token_used == {}
    assert outbox.batches() == []
    assert noted == []


async def test_spooled_batches_drain_oldest_first(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    for n in range(5):
        outbox.spool([_event(n).row()], {})
    repo = FakeUsageRepository()
    recorder, _ = _recorder(repo, outbox)
    await recorder.flush()
    assert [r["request_id"] for r in repo.rows] == [f"req-{n}" for n in range(5)]


def test_spooled_batches_are_private_under_umask_022(tmp_path: Path) -> None:
    """Spooled rows name users, models and request ids: the folder is 0700 and each batch 0600
    (they once followed the umask: 0755 and 0644)."""
    outbox = Outbox(tmp_path / "outbox")
    previous = os.umask(0o022)
    try:
        outbox.spool([{"request_id": "r"}], {})
    finally:
        os.umask(previous)
    (batch,) = (tmp_path / "outbox").iterdir()
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700
    assert stat.S_IMODE(batch.stat().st_mode) == 0o600

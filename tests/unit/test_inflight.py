"""Requests in flight: the registry's checkpoint rows, and how the usage writer writes them
(a request's checkpoint leaves in the write of its usage row, never before, never after)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lowart.usage.estimate import admission_estimate
from lowart.usage.inflight import InFlight, InFlightRegistry
from lowart.usage.outbox import Outbox
from tests.unit.test_outbox import FakeUsageRepository, _event, _recorder


def _entry(
    n: int, started_at: float, text: str = "abcdef", max_tokens: int | None = None
) -> InFlight:
    return InFlight(
        request_id=f"req-{n}",
        user_id="u",
        key_id="k",
        requested_model="m",
        served_model="m2",
        reservation_id=f"r{n}",
        reserved_tokens=100,
        completion_cap=max_tokens,
        prompt=lambda: "é" * 10,  # 20 UTF-8 bytes
        completion=lambda: text,
        started_at=started_at,
        relayed=3 * len(text),  # SSE framing around the text: the text is a third of it
    )


def test_due_rows_are_the_requests_older_than_the_interval_with_byte_bound_tokens() -> None:
    registry = InFlightRegistry("gw-1")
    registry.add(_entry(1, started_at=100.0, text="x" * 31))
    registry.add(_entry(2, started_at=100.6))
    assert [r["request_id"] for r in registry.due(101.0, age=1.0)] == ["req-1"]
    [row] = registry.due(101.0, age=1.0)
    assert row == {
        "request_id": "req-1",
        "instance_id": "gw-1",
        "user_id": "u",
        "key_id": "k",
        "requested_model": "m",
        "served_model": "m2",
        "reservation_id": "r1",
        "reserved_tokens": 100,
        "prompt_tokens": admission_estimate(20),
        "completion_tokens": admission_estimate(31),
        "started_at": 100.0,
        "updated_at": 101.0,
    }
    assert len(registry.due(102.0, age=1.0)) == 2


def test_the_text_is_read_only_when_the_relayed_bytes_have_doubled() -> None:
    reads: list[int] = []
    text = ["é" * 10]  # 20 bytes of text in 100 relayed: a share of 0.2

    def completion() -> str:
        reads.append(1)
        return text[0]

    entry = _entry(1, started_at=0.0)
    entry.completion, entry.relayed = completion, 100
    assert entry.completion_tokens() == admission_estimate(20)
    entry.relayed = 199
    assert entry.completion_tokens() == admission_estimate(40)  # 199 times 0.2, rounded
    assert len(reads) == 1
    text[0], entry.relayed = "x" * 100, 200  # doubled: measured again (now a share of 0.5)
    assert entry.completion_tokens() == admission_estimate(100)
    assert len(reads) == 2


def test_the_estimate_never_exceeds_max_tokens() -> None:
    registry = InFlightRegistry("gw-1")
    registry.add(_entry(1, started_at=0.0, text="x" * 300, max_tokens=7))
    assert registry.due(5.0, age=1.0)[0]["completion_tokens"] == 7


def test_only_a_checkpointed_request_leaves_a_row_to_delete() -> None:
    registry = InFlightRegistry("gw-1")
    registry.add(_entry(1, started_at=0.0))
    registry.add(_entry(2, started_at=0.0))
    registry.due(0.5, age=1.0)  # too young: nothing written
    registry.finish("req-1")
    assert registry.take_done() == []
    registry.due(5.0, age=1.0)
    registry.finish("req-2")
    registry.finish("req-unknown")  # a failed attempt's row: never tracked
    assert registry.take_done() == ["req-2"]
    assert registry.take_done() == []
    assert len(registry) == 0


def test_a_request_id_tracked_again_keeps_the_row_to_delete() -> None:
    """Tool rounds share a request id: the row written for the first is the second's to end."""
    registry = InFlightRegistry("gw-1")
    registry.add(_entry(1, started_at=0.0))
    registry.due(5.0, age=1.0)
    registry.add(_entry(1, started_at=5.0))
    registry.finish("req-1")
    assert registry.take_done() == ["req-1"]


async def test_the_writer_checkpoints_once_per_interval_and_only_after_the_heartbeat(
    tmp_path: Path,
) -> None:
    repo = FakeUsageRepository()
    recorder, _ = _recorder(repo, Outbox(tmp_path), checkpoint_s=0.0)
    recorder.inflight.add(_entry(1, started_at=0.0))
    await recorder.flush()
    assert repo.checkpoints == {}  # no heartbeat yet: another instance would think it orphaned
    recorder.checkpoints_on = True
    await recorder.flush()
    assert set(repo.checkpoints) == {"req-1"}
    assert repo.writes == [([], [])]

    slow, _ = _recorder(repo, Outbox(tmp_path), checkpoint_s=3600.0)
    slow.checkpoints_on = True
    slow.inflight.add(_entry(2, started_at=0.0))
    await slow.flush()
    slow.inflight.add(_entry(3, started_at=0.0))
    assert await slow.flush() == 0  # the next checkpoint is an hour away: no write at all
    assert set(repo.checkpoints) == {"req-1", "req-2"}


async def test_a_finished_request_leaves_its_checkpoint_in_its_rows_write(tmp_path: Path) -> None:
    repo = FakeUsageRepository()
    recorder, _ = _recorder(repo, Outbox(tmp_path), checkpoint_s=0.0)
    recorder.checkpoints_on = True
    recorder.inflight.add(_entry(1, started_at=0.0))
    recorder.inflight.add(_entry(2, started_at=0.0))
    await recorder.flush()
    recorder.record(_event(1))  # its usage row: the request ends
    await recorder.flush()
    assert repo.writes[-1] == (["req-1"], ["req-1"])  # one transaction: the row, the delete
    assert set(repo.checkpoints) == {"req-2"}


async def test_a_refused_batch_spools_the_deletes_with_its_rows(tmp_path: Path) -> None:
    repo = FakeUsageRepository()
    outbox = Outbox(tmp_path / "outbox")
    recorder, _ = _recorder(repo, outbox, checkpoint_s=0.0)
    recorder.checkpoints_on = True
    recorder.inflight.add(_entry(1, started_at=0.0))
    await recorder.flush()
    recorder.record(_event(1))
    repo.down = True
    with pytest.raises(ConnectionRefusedError):
        await recorder.flush()
    [spooled] = outbox.batches()
    assert spooled.done == ["req-1"]
    assert set(repo.checkpoints) == {"req-1"}  # kept: a restart writes the outbox before recovery
    repo.down = False
    await recorder.flush()
    assert repo.writes[-1] == (["req-1"], ["req-1"])
    assert repo.checkpoints == {}

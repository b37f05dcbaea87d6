"""The upstream watchdog: deadlines as one sweep, surfacing as ``TimeoutError`` like
``asyncio.timeout`` (sweeps are driven by hand here, with the loop's own clock)."""

from __future__ import annotations

import asyncio

import pytest

from lowart.watchdog import Watchdog


async def test_an_overdue_block_raises_timeout_and_the_task_lives_on() -> None:
    dog = Watchdog()
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    async def guarded() -> str:
        with pytest.raises(TimeoutError), dog.guard(loop.time() + 0.01):
            started.set()
            await asyncio.sleep(10)
        await asyncio.sleep(0)  # the task was not left cancelled
        return "went on"

    task = asyncio.create_task(guarded())
    await started.wait()
    assert dog.sweep(loop.time()) == 0  # not due yet
    assert dog.sweep(loop.time() + 1) == 1
    assert await task == "went on"
    assert dog.sweep(loop.time() + 2) == 0  # released


async def test_a_moved_deadline_is_the_one_that_counts() -> None:
    dog = Watchdog()
    loop = asyncio.get_running_loop()
    moved = asyncio.Event()
    release = asyncio.Event()

    async def guarded() -> None:
        with dog.guard(loop.time()) as watch:
            watch.deadline = loop.time() + 100
            moved.set()
            await release.wait()

    task = asyncio.create_task(guarded())
    await moved.wait()
    assert dog.sweep(loop.time() + 1) == 0
    release.set()
    await task


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    dog = Watchdog()
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    async def guarded() -> None:
        with dog.guard(loop.time() + 100):
            started.set()
            await asyncio.sleep(10)

    task = asyncio.create_task(guarded())
    await started.wait()
    task.cancel()  # the client went away: not a timeout
    with pytest.raises(asyncio.CancelledError):
        await task
    assert dog.sweep(loop.time() + 1000) == 0


async def test_the_sweeping_task_enforces_deadlines_by_itself() -> None:
    dog = Watchdog(tick_s=0.01)
    runner = asyncio.create_task(dog.run())
    loop = asyncio.get_running_loop()
    try:
        with pytest.raises(TimeoutError), dog.guard(loop.time() + 0.02):
            await asyncio.sleep(10)
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner


class _Starts:
    def __init__(self) -> None:
        self.count = 0

    def start(self) -> None:
        self.count += 1


def test_deferred_work_starts_at_the_next_sweep_once_unless_withdrawn() -> None:
    dog = Watchdog()
    kept, withdrawn = _Starts(), _Starts()
    dog.defer(kept)
    dog.defer(withdrawn)
    dog.withdraw(withdrawn)
    dog.sweep(0.0)
    dog.sweep(1.0)
    assert (kept.count, withdrawn.count) == (1, 0)

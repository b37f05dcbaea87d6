"""Deadlines (upstream calls, stream writes, Redis replies) enforced by one periodic sweep
instead of a timer per call.

``asyncio.timeout`` arms and disarms an event-loop timer each time: about 7 µs under uvloop, paid
for the first byte, for the body, and for every chunk of a stream. Here an upstream call
registers a :class:`Watch` (a set insertion), moves its deadline with an attribute write, and a
single task sweeps every ``tick_s``: an overdue call's task is cancelled, and the cancellation
surfaces as ``TimeoutError`` from the ``with`` block, as ``asyncio.timeout`` would raise it.
Deadlines fire up to one tick late, which is noise against upstream timeouts of seconds.

The sweep also starts deferred work: what is still registered at the next tick (a stream's
disconnect watcher, which a stream that ends sooner never needs).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Protocol


class Deferred(Protocol):
    """Work to start at the watchdog's next tick, unless withdrawn first."""

    def start(self) -> None: ...


class Watch:
    """One guarded block: its task and its deadline (loop time), movable while it runs."""

    __slots__ = ("_owner", "deadline", "fired", "task")

    def __init__(self, owner: Watchdog, task: asyncio.Task[object], deadline: float) -> None:
        self._owner = owner
        self.task = task
        self.deadline = deadline
        self.fired = False

    def __enter__(self) -> Watch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._owner.release(self)
        if self.fired:
            self.task.uncancel()
            if exc_type is asyncio.CancelledError:
                raise TimeoutError from exc


class Watchdog:
    """Cancels the tasks whose guarded block overran its deadline."""

    def __init__(self, tick_s: float = 0.05, clock: Callable[[], float] | None = None) -> None:
        self._tick = tick_s
        self._clock = clock
        self._watches: set[Watch] = set()
        self._deferred: set[Deferred] = set()

    def guard(self, deadline: float) -> Watch:
        """Guard the current task until ``deadline``: ``with watchdog.guard(t) as watch:``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a watchdog guard needs a running task")
        watch = Watch(self, task, deadline)
        self._watches.add(watch)
        return watch

    def release(self, watch: Watch) -> None:
        self._watches.discard(watch)

    def defer(self, work: Deferred) -> None:
        """Start ``work`` at the next sweep, unless ``withdraw`` comes first."""
        self._deferred.add(work)

    def withdraw(self, work: Deferred) -> None:
        self._deferred.discard(work)

    def sweep(self, now: float) -> int:
        """Start the deferred work; cancel every overdue guarded task once. Returns how many
        were cancelled."""
        deferred, self._deferred = self._deferred, set()
        for work in deferred:
            work.start()
        overdue = [w for w in self._watches if not w.fired and w.deadline <= now]
        for watch in overdue:
            watch.fired = True
            watch.task.cancel()
        return len(overdue)

    async def run(self) -> None:
        """Sweep every tick, until cancelled."""
        loop = asyncio.get_running_loop()
        clock = self._clock or loop.time
        while True:
            await asyncio.sleep(self._tick)
            self.sweep(clock())

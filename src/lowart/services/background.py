"""The background tasks of one process: declared by name, started in order, stopped in reverse."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Background:
    """One long-running task. Without ``stop`` it is cancelled; with it, ``stop`` asks it to end
    by itself (having written what it holds), and ``stop`` runs even when the task never started
    (a short-lived command writes what it queued)."""

    name: str
    run: Callable[[], Coroutine[Any, Any, None]]
    stop: Callable[[], Awaitable[None]] | None = None


class BackgroundTasks:
    """The declared tasks, plus one-off ones spawned while serving (stopped before them all)."""

    def __init__(self, declared: list[Background]) -> None:
        self.declared = declared
        self._running: dict[str, asyncio.Task[None]] = {}
        self._spawned: list[asyncio.Task[None]] = []

    @property
    def names(self) -> list[str]:
        """The declared tasks' names, in start order."""
        return [task.name for task in self.declared]

    def start(self) -> None:
        """Start every declared task, in declared order."""
        loop = asyncio.get_running_loop()
        for task in self.declared:
            self._running[task.name] = loop.create_task(task.run(), name=task.name)

    def spawn(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` beside the declared tasks (cancelled at ``stop`` if still running)."""
        self._spawned.append(asyncio.create_task(work, name=name))

    async def stop(self) -> None:
        """The spawned tasks are cancelled, then the declared ones in reverse order (each is
        cancelled or asked to stop); then every one of them is awaited."""
        for spawned in reversed(self._spawned):
            spawned.cancel()
        for task in reversed(self.declared):
            running = self._running.get(task.name)
            if task.stop is not None:
                await task.stop()
            elif running is not None:
                running.cancel()
        await asyncio.gather(*self._running.values(), *self._spawned, return_exceptions=True)

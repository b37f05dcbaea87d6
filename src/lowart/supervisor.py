"""Worker processes on one machine: started together, replaced when one dies, and stopped
together on SIGTERM or SIGINT.

Workers are spawned (a fresh interpreter each, never a fork of this process), so what the parent
puts in ``os.environ`` before ``run`` is what they see when they import their modules. A worker
is handed its end of a pipe to the parent as its last argument, wrapped in a ``ParentLink``: it
says on it when it serves (the parent waits for every worker before it calls ``on_ready``), and
it sees the parent vanish through it (a SIGKILL-ed parent must not leave workers behind).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import structlog

log = structlog.get_logger()

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESPAWN_DELAY_S = 1.0  # before replacing a worker that died while starting: no busy loop
FAILED = 3  # the exit code when a first worker could not start (uvicorn's STARTUP_FAILURE)


@dataclass(eq=False)  # each worker is itself: compared by identity
class _Worker:
    process: BaseProcess
    ready: Connection  # the parent's end: the worker says when it serves; EOF when it exits
    serving: bool = False

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


def _noted(signum: int, frame: FrameType | None) -> None:
    """A stop signal: the wake-up socket carries it to the supervising loop."""


class ParentLink:
    """A worker's end of its pipe to the parent."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def serving(self) -> None:
        """Tell the parent this worker accepts connections now."""
        with contextlib.suppress(OSError):  # the parent is gone: the watcher stops us
            self._connection.send_bytes(b"serving")

    def watch(self) -> None:
        """Stop this worker, gracefully (SIGTERM), when the parent is gone."""
        threading.Thread(target=self._watch, name="parent-watch", daemon=True).start()

    def _watch(self) -> None:
        with contextlib.suppress(EOFError, OSError):
            while True:
                self._connection.recv_bytes()  # the parent never writes: this waits for EOF
        os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    """Runs ``count`` processes of ``target(*args, ready)`` until SIGTERM or SIGINT.

    ``on_exit(pid)`` is called for every worker the parent reaps, whatever the reason.
    """

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        count: int,
        *,
        stop_timeout_s: float,
        on_exit: Callable[[int], None],
    ) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._target = target
        self._args = args
        self._count = count
        self._stop_timeout_s = stop_timeout_s
        self._on_exit = on_exit
        self._workers: list[_Worker] = []
        self._respawn_at: list[float] = []
        self._announced = False
        self._stopping = False
        self._failed = False

    def run(self, on_ready: Callable[[], None]) -> int:
        """Serve until a stop signal: 0 then, ``FAILED`` if a first worker could not start."""
        wake, wake_writer = socket.socketpair()
        try:
            with self._signals(wake_writer):
                self._workers = [self._spawn() for _ in range(self._count)]
                while not self._stopping:
                    self._step(wake)
                    if not self._announced and not self._stopping and self._all_serving():
                        self._announced = True
                        on_ready()
                self._stop_all()
        finally:
            wake.close()
            wake_writer.close()
        return FAILED if self._failed else 0

    @contextlib.contextmanager
    def _signals(self, wake_writer: socket.socket) -> Iterator[None]:
        wake_writer.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wake_writer.fileno())
        previous = {sig: signal.signal(sig, _noted) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)

    def _spawn(self) -> _Worker:
        ours, theirs = self._context.Pipe()
        process = self._context.Process(
            target=self._target, args=(*self._args, theirs), name="lowart-worker"
        )
        process.start()
        theirs.close()  # the worker holds the only copy now: its exit closes the pipe
        log.debug("worker_started", pid=process.pid)
        return _Worker(process, ours)

    def _all_serving(self) -> bool:
        return len(self._workers) == self._count and all(w.serving for w in self._workers)

    def _step(self, wake: socket.socket) -> None:
        """Wait for one round of events: a signal, a worker serving, a worker gone."""
        watched: dict[Any, _Worker | None] = {wake: None}
        for worker in self._workers:
            watched[worker.process.sentinel] = worker
            if not worker.serving:
                watched[worker.ready] = worker
        timeout = max(0.0, min(self._respawn_at) - time.monotonic()) if self._respawn_at else None
        events = wait(list(watched), timeout)
        if wake in events:  # first: a worker stopped by the same signal is not replaced
            wake.recv(64)  # only stop signals are caught
            self._stopping = True
        for event in events:
            owner = watched[event]
            if owner is not None and owner in self._workers:  # not reaped yet in this round
                self._on_event(owner, event is owner.ready)
        self._respawn_due()

    def _on_event(self, worker: _Worker, message: bool) -> None:
        if message:
            try:
                worker.ready.recv_bytes()
            except (EOFError, OSError):
                pass  # it exited before serving: reaped below
            else:
                worker.serving = True
                return
        worker.process.join()
        self._reap(worker)

    def _reap(self, worker: _Worker) -> None:
        self._workers.remove(worker)
        worker.ready.close()
        self._on_exit(worker.pid)
        if self._stopping:
            return
        exitcode = worker.process.exitcode
        if not self._announced:
            log.error("worker_failed_to_start", pid=worker.pid, exitcode=exitcode)
            self._failed = self._stopping = True
        elif worker.serving:
            log.warning("worker_died_restarting", pid=worker.pid, exitcode=exitcode)
            self._workers.append(self._spawn())
        else:
            log.error("worker_failed_to_start_retrying", pid=worker.pid, exitcode=exitcode)
            self._respawn_at.append(time.monotonic() + RESPAWN_DELAY_S)

    def _respawn_due(self) -> None:
        now = time.monotonic()
        due = [at for at in self._respawn_at if at <= now]
        if due and not self._stopping:
            self._respawn_at = [at for at in self._respawn_at if at > now]
            self._workers.extend(self._spawn() for _ in due)

    def _stop_all(self) -> None:
        """SIGTERM every worker and wait (each drains and flushes); SIGKILL the late ones."""
        for worker in self._workers:
            worker.process.terminate()
        deadline = time.monotonic() + self._stop_timeout_s
        for worker in self._workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                log.warning("worker_killed_after_timeout", pid=worker.pid)
                worker.process.kill()
                worker.process.join()
            worker.ready.close()
            self._on_exit(worker.pid)
        self._workers = []

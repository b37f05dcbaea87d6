"""The pool of transform workers: pre-started processes (``worker.py``), each running one call
at a time over its pipes, none of it blocking the event loop.

A worker that dies (its memory limit aborts it), answers garbage, or has not answered
``kill_after_s`` after a call's time limit, is killed and replaced in the background; the call
fails with ``TransformFailed``. So does a call cancelled while its worker runs it (the caller
left): the worker's late reply must not reach the next caller (docs/transforms.md, "Limits").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import structlog

import lowart
from lowart.errors import TransformFailed
from lowart.transforms.protocol import HEADER, Call, Reply, frame, frame_length

log = structlog.get_logger()

WORKER_MODULE = "lowart.transforms.worker"


@dataclass(frozen=True)
class PoolConfig:
    """How many workers, and the limits each call and each worker runs under."""

    size: int
    timeout_ms: int
    memory_mb: int
    kill_after_s: float
    start_timeout_s: float = 10.0
    max_callstack: int = 200


class WorkerLost(Exception):
    """The worker died or broke the protocol."""


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self._stdin = proc.stdin
        self._stdout = proc.stdout

    async def call(self, payload: bytes) -> bytes:
        try:
            self._stdin.write(frame(payload))
            await self._stdin.drain()
            size = frame_length(await self._stdout.readexactly(HEADER))
            return await self._stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            raise WorkerLost(type(exc).__name__) from exc

    async def ready(self) -> None:
        """The worker's first frame: it imported the interpreter and set its limits."""
        try:
            size = frame_length(await self._stdout.readexactly(HEADER))
            await self._stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ValueError) as exc:
            raise WorkerLost(type(exc).__name__) from exc

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


async def _exit_code(worker: _Worker) -> int:
    worker.kill()
    return await worker.proc.wait()


def _worker_env() -> dict[str, str]:
    """Nothing of the gateway's environment (no key, no URL): only where lowart is."""
    root = str(Path(lowart.__file__).resolve().parent.parent)
    return {"PYTHONPATH": root, "RUST_BACKTRACE": "0", "PYTHONDONTWRITEBYTECODE": "1"}


class WorkerPool:
    """Runs calls on the first free worker; started on first need, closed with the process."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._workers: set[_Worker] = set()
        self._spawning: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._live = 0  # workers started and not replaced since
        self._failed_at = -math.inf  # when a worker last failed to start
        self._down = asyncio.Event()  # set when every start failed and none is up
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(Reply)
        self.replaced = 0  # workers replaced since start (tests and logs read it)

    def start(self) -> None:
        """Start every worker (in the background) unless they are started already."""
        if self._started:
            return
        self._started = True
        for _ in range(self.config.size):
            self._spawn()

    def _spawn(self) -> None:
        if self._closed:
            return
        self._down.clear()
        task = asyncio.get_running_loop().create_task(self._start_one(), name="transform_worker")
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def _start_one(self) -> None:
        """A worker, put to work once it said it is ready (its imports and limits done); one
        that fails to start is logged and not tried again."""
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                WORKER_MODULE,
                str(self.config.memory_mb),
                str(self.config.max_callstack),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=_worker_env(),
            )
        except OSError:
            log.exception("transform_worker_start_failed")
            return
        worker = _Worker(proc)
        self._workers.add(worker)
        try:
            async with asyncio.timeout(self.config.start_timeout_s):
                await worker.ready()
        except (WorkerLost, TimeoutError):
            log.error("transform_worker_start_failed", exit_code=await _exit_code(worker))
            self._workers.discard(worker)
            self._failed_at = time.monotonic()
            me = asyncio.current_task()
            others = [t for t in self._spawning if t is not me and not t.done()]
            if not self._live and not others:  # this start was the last hope
                self._down.set()
            return
        self._live += 1
        self._idle.put_nowait(worker)

    async def run(self, call: Call) -> Reply:
        """``call`` on a free worker; ``TransformFailed`` when no worker could answer it."""
        self.start()
        wait_s = self.config.kill_after_s
        try:
            if self._live:
                async with asyncio.timeout(wait_s):
                    worker = await self._idle.get()
            else:
                worker = await self._first_worker(self._starting_s())
        except TimeoutError:
            raise TransformFailed("No transform worker became free in time.") from None
        payload = self._encoder.encode(call)
        try:
            async with asyncio.timeout(call.timeout_ms / 1000 + wait_s):
                raw = await worker.call(payload)
            reply = self._decoder.decode(raw)
        except (WorkerLost, TimeoutError, msgspec.DecodeError) as exc:
            self._replace(worker, type(exc).__name__)
            raise TransformFailed("The transform's worker died or overran its limits.") from exc
        except BaseException:  # cancelled mid-call: its late reply must not reach anyone
            self._replace(worker, "cancelled")
            raise
        self._idle.put_nowait(worker)
        return reply

    def _starting_s(self) -> float:
        """No worker is up: wait for the ones starting; none starting after a failed start:
        start them again (at most once per ``start_timeout_s``), or fail at once."""
        recently = time.monotonic() - self._failed_at < self.config.start_timeout_s
        if not self._spawning and not recently:
            for _ in range(self.config.size):
                self._spawn()
        return self.config.start_timeout_s if self._spawning else 0.0

    async def _first_worker(self, bound: float) -> _Worker:
        """While none is up: the first worker that starts; ``TimeoutError`` once every start
        failed, or at ``bound``."""
        getter = asyncio.ensure_future(self._idle.get())
        down = asyncio.ensure_future(self._down.wait())
        try:
            await asyncio.wait({getter, down}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        finally:
            down.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        raise TimeoutError

    def _replace(self, worker: _Worker, why: str) -> None:
        worker.kill()
        self._workers.discard(worker)
        self._live -= 1
        self.replaced += 1
        log.warning("transform_worker_replaced", reason=why)
        self._spawn()

    async def close(self) -> None:
        """Kill every worker and stop starting new ones."""
        self._closed = True
        for task in list(self._spawning):
            task.cancel()
        await asyncio.gather(*self._spawning, return_exceptions=True)
        for worker in self._workers:
            worker.kill()
        for worker in self._workers:
            await worker.proc.wait()
        self._workers.clear()

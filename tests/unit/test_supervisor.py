"""The worker supervisor with tiny spawned workers (the gateway's own are in tests/e2e)."""

from __future__ import annotations

import os
import signal
import sys
from multiprocessing.connection import Connection

from lowart.supervisor import FAILED, ParentLink, Supervisor


def _fail_at_start(parent: Connection) -> None:
    sys.exit(3)


def _serve_until_stopped(parent: Connection) -> None:
    ParentLink(parent).serving()
    signal.pause()  # SIGTERM, unhandled here, ends the process


def test_a_worker_failing_at_the_first_start_stops_everything() -> None:
    exited: list[int] = []
    ready: list[bool] = []
    supervisor = Supervisor(_fail_at_start, (), 2, stop_timeout_s=10, on_exit=exited.append)
    assert supervisor.run(on_ready=lambda: ready.append(True)) == FAILED
    assert ready == []
    assert len(set(exited)) == 2  # both reaped, whichever failed first


def test_a_stop_signal_stops_every_worker_once_all_serve() -> None:
    exited: list[int] = []

    def ready() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # as an operator would, once it serves

    supervisor = Supervisor(_serve_until_stopped, (), 2, stop_timeout_s=10, on_exit=exited.append)
    previous = signal.getsignal(signal.SIGTERM)
    assert supervisor.run(on_ready=ready) == 0
    assert len(set(exited)) == 2
    assert not any(os.path.exists(f"/proc/{pid}") for pid in exited)
    assert signal.getsignal(signal.SIGTERM) == previous  # the handlers are given back

"""End to end: ``WORKERS=2`` on one machine, one PostgreSQL and the machine's Redis.

Which worker served a request shows in its ``x-request-id``: each process draws its own random
prefix at start-up, so two prefixes mean two processes. The workers themselves are the
parent's children that multiprocessing spawned (the other child is its resource tracker).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import stat
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import wait_for
from tests.e2e.serve_process import STOPPED, ServeProcess, run_cli

pytestmark = [pytest.mark.pg, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"  # users are unique per test, so are their Redis keys
CHAT = "/v1/chat/completions"
BATCH = 4
STALE_METRICS = "counter_12345.db"
# Each worker is a fresh interpreter importing everything: three start-ups, not one, and the
# runner may be busy with other suites.
START_TIMEOUT = 60.0


Env = dict[str, str | None]


def _env(pg_url: str, **overrides: str | None) -> Env:
    return {
        "WORKERS": "2",
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "REDIS_TIMEOUT_MS": "2000",  # a loaded 2-core runner: workers are tested, not timeouts
        **overrides,
    }


def _pg(pg_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(pg_url)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(fetch())


def _workers(server: ServeProcess) -> set[int]:
    """The worker processes of the server (children of its parent process)."""
    task_dir = Path(f"/proc/{server.proc.pid}/task")
    children = {
        int(pid) for task in task_dir.iterdir() for pid in (task / "children").read_text().split()
    }
    workers = set()
    for pid in children:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue  # exited meanwhile
        if b"spawn_main" in cmdline:
            workers.add(pid)
    return workers


class Traffic:
    """Chats, a few at a time, each on a new connection (any worker may accept it); remembers
    the process prefix of every answer, and asserts each one succeeded."""

    def __init__(self, server: ServeProcess, key: str) -> None:
        # One client for all: a client is costly to build, and the machine is small; the
        # server closes each connection after its answer, so every request connects anew.
        self.client = server.client(key, connection="close")
        self.sent = 0
        self.prefixes: list[str] = []

    def _chat(self, _: int) -> httpx.Response:
        body = {"model": "mock", "messages": [{"role": "user", "content": "hi"}]}
        return self.client.post(CHAT, json=body)

    def batch(self) -> None:
        with ThreadPoolExecutor(max_workers=BATCH) as pool:
            answers = list(pool.map(self._chat, range(BATCH)))
        self.sent += len(answers)
        for answer in answers:
            assert answer.status_code == 200, answer.text
            self.prefixes.append(answer.headers["x-request-id"][:16])  # "req_" + 12 hex

    def until_served_by(self, count: int, among: set[str] | None = None) -> set[str]:
        """Send batches until ``count`` distinct processes (outside ``among``) have answered."""
        among = among or set()

        def enough() -> bool:
            self.batch()
            return len(set(self.prefixes) - among) >= count

        wait_for(enough, timeout=START_TIMEOUT, interval=0.05)  # a new worker takes seconds
        return set(self.prefixes) - among

    def close(self) -> None:
        self.client.close()


def _samples(server: ServeProcess, name: str, **labels: str) -> float:
    """The sum of the ``/metrics`` samples named ``name`` that carry ``labels``."""
    with server.client(None) as client:
        response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


def _assert_counted(server: ServeProcess, requests: int) -> None:
    """Every chat counted once in ``/metrics``, whichever worker served it or scrapes."""

    def counted() -> bool:  # a worker counts a request just after it answers
        chats = _samples(server, "gateway_requests_total", model="mock", status="ok")
        timed = _samples(server, "http_request_duration_seconds_count", route=CHAT, status="200")
        assert chats <= requests and timed <= requests, (chats, timed, requests)
        return chats == timed == requests

    wait_for(counted, timeout=10)


def _start(cwd: Path, pg_url: str, **env: str | None) -> ServeProcess:
    stale = cwd / "lowart-metrics" / STALE_METRICS
    stale.parent.mkdir()
    stale.write_bytes(b"left by an earlier run")
    server = ServeProcess(cwd, _env(pg_url, **env), start_timeout=START_TIMEOUT)
    if stale.exists():
        server.kill()
        raise AssertionError("the metric files of an earlier run must be removed")
    return server


def _assert_started_once(server: ServeProcess, pg_url: str) -> None:
    generated = [line for line in server.stdout.splitlines() if "admin key" in line.lower()]
    assert len(generated) == 1, server.stdout
    assert server.stdout.count("Lowart listening on") == 1, server.stdout
    # alembic logs its context on every run, even with nothing to upgrade: once = the parent.
    assert server.stderr.count("Context impl PostgresqlImpl") == 1, server.stderr
    assert [tuple(r) for r in _pg(pg_url, "SELECT model_id FROM models")] == [("mock",)]
    assert len(_pg(pg_url, "SELECT 1 FROM api_keys")) == 1  # the bootstrap admin's key


def _assert_unix_socket(server: ServeProcess, path: Path, pg_url: str, env: Env) -> None:
    """The UDS rules hold with workers: mode 0660, and a live socket is never taken over."""
    assert server.uds == str(path.resolve())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
    second = run_cli(["serve"], path.parent, _env(pg_url, **env), timeout=30)
    assert second.returncode != 0, second.stdout
    assert "in use" in second.stderr, second.stderr


def _chat_until_both_serve(server: ServeProcess, user_id: str) -> int:
    """Chats until both workers have answered, counted in ``/metrics``; returns how many."""
    admin_key = server.stdout.split("store it now): ")[1].split()[0]
    with server.client(admin_key) as admin:
        created = admin.post("/admin/users/quota", json={"user_id": user_id})
    assert created.status_code == 201, created.text
    with closing(Traffic(server, created.json()["api_key"])) as traffic:
        assert len(traffic.until_served_by(2)) == 2
    _assert_counted(server, traffic.sent)
    return traffic.sent


@pytest.mark.parametrize("mode", ["TCP", "UDS"])
def test_two_workers_serve_as_one_gateway(
    mode: str, tmp_path: Path, short_dir: Path, pg_url: str
) -> None:
    path = short_dir / "gw.sock"
    if mode == "UDS":  # a stale socket file, nobody listening: replaced
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(str(path))
        stale.close()
    env: Env = {"LISTEN_MODE": mode, "UDS_PATH": str(path), "ADMIN_KEY": None, "LOG_LEVEL": "info"}
    user_id = "w-" + secrets.token_hex(4)
    with _start(tmp_path, pg_url, USAGE_FLUSH_MS="600000", **env) as server:
        _assert_started_once(server, pg_url)
        workers = _workers(server)
        assert len(workers) == 2, workers
        if mode == "UDS":
            _assert_unix_socket(server, path, pg_url, env)
        sent = _chat_until_both_serve(server, user_id)
        assert server.terminate() in STOPPED, server.output()
    assert "Traceback" not in server.stderr, server.stderr
    assert not path.exists()
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    rows = _pg(pg_url, "SELECT status FROM usage_records WHERE user_id = $1", user_id)
    assert [r["status"] for r in rows] == ["ok"] * sent  # each worker flushed at exit


def test_a_killed_worker_is_replaced(tmp_path: Path, pg_url: str) -> None:
    with _start(tmp_path, pg_url) as server:
        key = server.create_user("w-" + secrets.token_hex(4))
        with closing(Traffic(server, key)) as traffic:
            first = traffic.until_served_by(2)
            victim = min(_workers(server))
            os.kill(victim, signal.SIGKILL)

            def replaced() -> bool:
                workers = _workers(server)
                return len(workers) == 2 and victim not in workers

            wait_for(replaced, timeout=10)
            # Served all along (Traffic asserts 200s), and by the replacement too once it runs.
            assert len(traffic.until_served_by(1, among=first)) == 1
        _assert_counted(server, traffic.sent)  # the dead worker's counts stay in the totals
        assert server.terminate() in STOPPED, server.output()
    assert "worker_died_restarting" in server.stderr, server.stderr


def test_several_workers_need_redis(tmp_path: Path, pg_url: str) -> None:
    result = run_cli(["serve"], tmp_path, _env(pg_url, REDIS_URL=None), timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("lowart: error: "), result.stderr
    assert "WORKERS" in result.stderr, result.stderr
    assert "REDIS_URL" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "Lowart listening" not in result.stdout

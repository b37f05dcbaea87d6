"""Jobs survive their process: SIGKILL and SIGTERM both end with every job finished once.

Each job asks the fake upstream a question of its own, so the fake's records tell how often each
job reached the upstream; usage rows tell how often each was billed. The SIGKILL tests stop the
server at the points of a job's life that docs/reliability.md, F16 names: before the upstream call
(the job waits in the queue), during it, after the upstream answered but before anything of it
was stored, after only its usage was made durable, and after its result was stored.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lowart.settings import Settings
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import ThreadedServer, run_in_thread
from tests.conftest import wait_for
from tests.e2e.serve_process import ServeProcess, sql

JOBS = 20
JOB_ENV = {
    "JOB_LEASE_S": "2",
    "JOB_HEARTBEAT_S": "0.5",
    "JOB_POLL_S": "0.1",
    "JOB_CONCURRENCY": str(JOBS),
}
TERMINAL = {"completed", "failed", "cancelled"}


@pytest.fixture
def upstream() -> Iterator[tuple[FakeOpenAI, ThreadedServer]]:
    fake = FakeOpenAI()
    with run_in_thread(fake) as server:
        yield fake, server


def _setup(gw: ServeProcess, base_url: str, upstream_model: str = "slow-1500") -> str:
    created = gw.admin(
        "POST",
        "/admin/models",
        json={
            "model_id": "slow-job",
            "vendor_type": "OpenAI",
            "base_url": base_url + "/v1",
            "api_key": "sk-job",
            "upstream_model": upstream_model,
        },
    )
    assert created.status_code == 201, created.text
    return gw.create_user("jobber")


def _submit(gw: ServeProcess, key: str, count: int = JOBS) -> list[str]:
    ids = []
    with gw.client(key) as client:
        for i in range(count):
            response = client.post(
                "/v1/chat/completions",
                json={
                    "model": "slow-job",
                    "async": True,
                    "messages": [{"role": "user", "content": f"job number {i}"}],
                },
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["job_id"])
    return ids


def _statuses(gw: ServeProcess, key: str, ids: list[str]) -> dict[str, str]:
    with gw.client(key) as client:
        return {job_id: client.get(f"/v1/jobs/{job_id}").json()["status"] for job_id in ids}


def _upstream_calls(fake: FakeOpenAI) -> Counter[str]:
    calls: Counter[str] = Counter()
    for call in fake.calls:
        messages = call["body"]["messages"]
        assert isinstance(messages, list)
        calls[json.dumps(messages[-1]["content"])] += 1
    return calls


def _check_finished_once(gw: ServeProcess, key: str, ids: list[str], fake: FakeOpenAI) -> None:
    wait_for(lambda: set(_statuses(gw, key, ids).values()) <= TERMINAL, timeout=30)
    assert set(_statuses(gw, key, ids).values()) == {"completed"}
    assert gw.admin("GET", "/admin/usage").status_code == 200  # writes queued usage
    billed = sql(
        gw.db,
        "SELECT request_id, COUNT(*) FROM usage_records WHERE status = 'ok' GROUP BY request_id",
    )
    assert sorted(billed) == sorted((job_id, 1) for job_id in ids)  # each billed exactly once
    token_used = sql(gw.db, "SELECT token_used FROM users WHERE user_id = 'jobber'")[0][0]
    total = sql(gw.db, "SELECT SUM(prompt_tokens + completion_tokens) FROM usage_records")[0][0]
    assert token_used == total > 0
    calls = _upstream_calls(fake)
    assert len(calls) == JOBS and max(calls.values()) <= 2  # at most the cut-off call, once more


def test_sigkill_mid_run_every_job_finishes_once(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    fake, server = upstream
    first = ServeProcess(tmp_path, JOB_ENV)
    try:
        key = _setup(first, server.base_url)
        ids = _submit(first, key)
        wait_for(lambda: len(fake.calls) == JOBS, timeout=10)  # all 20 are at the upstream
    finally:
        first.kill()
    assert set(sql(tmp_path / "lowart.db", "SELECT DISTINCT status FROM jobs")) == {("running",)}
    with ServeProcess(tmp_path, JOB_ENV) as second:
        _check_finished_once(second, key, ids, fake)
    attempts = sql(tmp_path / "lowart.db", "SELECT DISTINCT attempts FROM jobs")
    assert attempts == [(2,)]


def test_sigterm_hands_running_jobs_to_the_next_start(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    fake, server = upstream
    first = ServeProcess(tmp_path, JOB_ENV)
    try:
        key = _setup(first, server.base_url)
        ids = _submit(first, key)
        wait_for(lambda: len(fake.calls) == JOBS, timeout=10)
    finally:
        assert first.terminate() == 0
    leases = sql(tmp_path / "lowart.db", "SELECT status, lease_owner IS NOT NULL FROM jobs")
    assert set(leases) == {("running", 1)}  # handed back: the lease has run out already
    with ServeProcess(tmp_path, {**JOB_ENV, "JOB_LEASE_S": "60", "JOB_HEARTBEAT_S": "5"}) as again:
        _check_finished_once(again, key, ids, fake)


def test_jobs_are_private_and_cancellable(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    _, server = upstream
    with ServeProcess(tmp_path, JOB_ENV) as gw:
        key = _setup(gw, server.base_url)
        other = gw.create_user("someone-else")
        [job_id, *_] = _submit(gw, key)
        with gw.client(other) as client:
            assert client.get(f"/v1/jobs/{job_id}").status_code == 404
            assert client.post(f"/v1/jobs/{job_id}/cancel").status_code == 404
            assert client.get("/v1/jobs").json()["data"] == []
        with gw.client(key) as client:
            cancelled = client.post(f"/v1/jobs/{job_id}/cancel").json()
            assert cancelled["status"] == "cancelled"
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"
            page = client.get("/v1/jobs", params={"limit": 5}).json()
            assert len(page["data"]) == 5 and page["has_more"] is True
            rest = client.get("/v1/jobs", params={"limit": 100, "after": page["last_id"]}).json()
            seen = [j["job_id"] for j in page["data"] + rest["data"]]
            assert len(seen) == JOBS == len(set(seen))
            assert client.get("/v1/jobs/..%2Fetc%2Fpasswd").status_code == 404
            assert httpx.get(f"{gw.url}/v1/jobs/{job_id}").status_code == 401


# -- SIGKILL at each point of a job's life (F16) -------------------------------------------------


def _answered(gw: ServeProcess) -> float:
    """How many upstream answers the server has billed in memory (its metrics, not the DB)."""
    text = httpx.get(f"{gw.url}/metrics").text
    wanted = {'model="slow-job"', 'served_model="slow-job"', 'status="ok"'}
    return sum(
        float(value)
        for labels, value in re.findall(r"^gateway_requests_total\{([^}]*)\} (\S+)$", text, re.M)
        if wanted <= set(labels.split(","))
    )


def _lock(db: Path) -> sqlite3.Connection:
    """A second connection holding the write lock: nothing the server writes can commit."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    return conn


def _job_rows(db: Path) -> list[tuple[str, int]]:
    return sorted(sql(db, "SELECT status, attempts FROM jobs"))


def _check_each_job_once(
    gw: ServeProcess, key: str, ids: list[str], fake: FakeOpenAI, crashes: int
) -> dict[str, str]:
    """Every job ends in one terminal state, is billed at most once (once when completed) with
    what its result reports, and reached the upstream at most once more per crash."""
    wait_for(lambda: set(_statuses(gw, key, ids).values()) <= TERMINAL, timeout=30)
    statuses = _statuses(gw, key, ids)
    assert gw.admin("GET", "/admin/usage").status_code == 200  # writes queued usage
    billed = {
        job_id: (int(rows), int(tokens))
        for job_id, rows, tokens in sql(
            gw.db,
            "SELECT request_id, COUNT(*), SUM(prompt_tokens + completion_tokens) "
            "FROM usage_records WHERE status = 'ok' GROUP BY request_id",
        )
    }
    assert set(billed) <= set(ids) and all(rows == 1 for rows, _ in billed.values()), billed
    with gw.client(key) as client:
        for job_id, status in statuses.items():
            if status == "completed":
                usage = client.get(f"/v1/jobs/{job_id}").json()["result"]["usage"]
                assert billed.get(job_id) == (1, usage["total_tokens"])  # billed what it reports
    token_used = sql(gw.db, "SELECT token_used FROM users WHERE user_id = 'jobber'")[0][0]
    assert token_used == sum(tokens for _, tokens in billed.values())
    calls = _upstream_calls(fake)
    assert sum(calls.values()) <= len(ids) + crashes, calls  # duplicates: at most 1 per crash
    assert max(calls.values()) <= 1 + crashes
    return statuses


def test_sigkill_before_the_upstream_call_loses_no_queued_job(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    fake, server = upstream
    first = ServeProcess(tmp_path, {**JOB_ENV, "JOB_CONCURRENCY": "1"})
    try:
        key = _setup(first, server.base_url, "slow-1000")
        ids = _submit(first, key, 3)
        wait_for(lambda: len(fake.calls) == 1, timeout=10)  # one at the upstream, two queued
    finally:
        first.kill()
    assert _job_rows(tmp_path / "lowart.db") == [("pending", 0), ("pending", 0), ("running", 1)]
    with ServeProcess(tmp_path, JOB_ENV) as second:
        statuses = _check_each_job_once(second, key, ids, fake, crashes=1)
    assert set(statuses.values()) == {"completed"}
    calls = _upstream_calls(fake)
    assert [calls[json.dumps(f"job number {i}")] for i in range(3)] == [2, 1, 1]


def test_sigkill_after_the_upstream_answered_before_anything_was_stored(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    fake, server = upstream
    db = tmp_path / "lowart.db"
    first = ServeProcess(tmp_path, {**JOB_ENV, "SQLITE_BUSY_TIMEOUT_MS": "60000"})
    lock = None
    try:
        key = _setup(first, server.base_url, "slow-1000")
        ids = _submit(first, key, 1)
        wait_for(lambda: len(fake.calls) == 1, timeout=10)
        lock = _lock(db)  # the result and the usage row now wait for the lock
        wait_for(lambda: _answered(first) == 1, timeout=10)  # the answer is in memory only
    finally:
        first.kill()
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    assert _job_rows(db) == [("running", 1)] and sql(db, "SELECT * FROM usage_records") == []
    with ServeProcess(tmp_path, JOB_ENV) as second:
        statuses = _check_each_job_once(second, key, ids, fake, crashes=1)
    assert set(statuses.values()) == {"completed"}  # nothing was billed: it ran again, once


def test_sigkill_after_the_usage_was_spooled_before_the_result_was_stored(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    fake, server = upstream
    db = tmp_path / "lowart.db"
    outbox = Settings().replace(lowart_workdir=tmp_path).outbox_dir
    first = ServeProcess(tmp_path, {**JOB_ENV, "SQLITE_BUSY_TIMEOUT_MS": "200"})
    lock = None
    try:
        key = _setup(first, server.base_url, "slow-1000")
        ids = _submit(first, key, 1)
        wait_for(lambda: len(fake.calls) == 1, timeout=10)
        lock = _lock(db)
        wait_for(lambda: any(outbox.glob("*.json")), timeout=10)  # the usage is durable
    finally:
        first.kill()
        if lock is not None:
            lock.execute("ROLLBACK")
            lock.close()
    assert _job_rows(db) == [("running", 1)] and sql(db, "SELECT * FROM usage_records") == []
    with ServeProcess(tmp_path, JOB_ENV) as second:
        _check_each_job_once(second, key, ids, fake, crashes=1)
        assert sql(db, "SELECT COUNT(*) FROM usage_records WHERE status = 'ok'") == [(1,)]


def test_sigkill_after_the_result_was_stored_before_the_usage_was_flushed(
    tmp_path: Path, upstream: tuple[FakeOpenAI, ThreadedServer]
) -> None:
    fake, server = upstream
    first = ServeProcess(tmp_path, {**JOB_ENV, "USAGE_FLUSH_MS": "60000"})
    try:
        key = _setup(first, server.base_url, "ok")
        ids = _submit(first, key, 1)
        wait_for(lambda: _statuses(first, key, ids) == {ids[0]: "completed"}, timeout=10)
    finally:
        first.kill()
    with ServeProcess(tmp_path, JOB_ENV) as second:
        statuses = _check_each_job_once(second, key, ids, fake, crashes=1)
    assert statuses == {ids[0]: "completed"}

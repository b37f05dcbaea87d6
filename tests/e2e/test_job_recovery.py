"""Jobs survive their process: SIGKILL mid-run and SIGTERM both end with every job finished once.

Each job asks the fake upstream a question of its own, so the fake's records tell how often each
job reached the upstream; usage rows tell how often each was billed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


def _setup(gw: ServeProcess, base_url: str) -> str:
    created = gw.admin(
        "POST",
        "/admin/models",
        json={
            "model_id": "slow-job",
            "vendor_type": "OpenAI",
            "base_url": base_url + "/v1",
            "api_key": "sk-job",
            "upstream_model": "slow-1500",
        },
    )
    assert created.status_code == 201, created.text
    return gw.create_user("jobber")


def _submit(gw: ServeProcess, key: str) -> list[str]:
    ids = []
    with gw.client(key) as client:
        for i in range(JOBS):
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

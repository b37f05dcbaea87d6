"""Two ``lowart serve`` instances on one PostgreSQL and one Redis behave as one gateway.

The directory refresh timer is set far longer than the checks' deadlines, so anything seen on
the other instance in time travelled through Redis (pub/sub, shared windows, shared quota).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import fresh_database, wait_for
from tests.e2e.serve_process import ServeProcess

pytestmark = [pytest.mark.pg, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"
CHAT = "/v1/chat/completions"


def _env(pg_url: str) -> dict[str, str | None]:
    return {
        "DATABASE_URL": pg_url,
        "REDIS_URL": REDIS_URL,
        "CACHE_REFRESH_S": "60",
        "REDIS_TIMEOUT_MS": "2000",  # a loaded 2-core runner: sharing is tested, not timeouts
        "JOB_LEASE_S": "2",
        "JOB_HEARTBEAT_S": "0.5",
        "JOB_POLL_S": "0.1",
    }


@pytest.fixture(scope="module")
def shared_pg() -> Iterator[str]:
    """One database for the module's pair (each test uses users and models of its own)."""
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory, shared_pg: str
) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    root = tmp_path_factory.mktemp("pair")
    a = ServeProcess(_mkdir(root / "a"), _env(shared_pg))
    try:
        b = ServeProcess(_mkdir(root / "b"), _env(shared_pg))
    except BaseException:
        a.kill()
        raise
    try:
        yield a, b
    finally:
        a.kill()
        b.kill()


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _model(gw: ServeProcess, model_id: str, **params: Any) -> None:
    body = {"model_id": model_id, "vendor_type": "Mock", "base_url": "", "params": params}
    response = gw.admin("POST", "/admin/models", json=body)
    assert response.status_code == 201, response.text


def _chat(gw: ServeProcess, key: str, model: str, **fields: Any) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}], **fields}
    with gw.client(key) as client:
        return client.post(CHAT, json=body)


def _spread(
    instances: tuple[ServeProcess, ServeProcess], key: str, model: str, n: int, **fields: Any
) -> list[httpx.Response]:
    """``n`` concurrent requests, alternating between the instances."""
    with ThreadPoolExecutor(max_workers=50) as pool:
        futures = [pool.submit(_chat, instances[i % 2], key, model, **fields) for i in range(n)]
        return [f.result() for f in futures]


def _user(gw: ServeProcess, **limits: Any) -> tuple[str, str]:
    user_id = "u-" + secrets.token_hex(4)
    return user_id, gw.create_user(user_id, **limits)


def test_the_rpm_window_is_shared(pair: tuple[ServeProcess, ServeProcess]) -> None:
    a, _ = pair
    _model(a, "m-rpm")
    _, key = _user(a, rpm_limit=20)
    responses = _spread(pair, key, "m-rpm", 200)
    statuses = [r.status_code for r in responses]
    assert not [r.text for r in responses if r.status_code not in (200, 429)]
    assert statuses.count(200) == 20
    assert statuses.count(429) == 180
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"


def test_a_quota_is_never_overspent_across_instances(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = pair
    _model(a, "m-quota", text="one two three four five six seven eight nine ten")
    user_id, key = _user(a, token_quota=1000)
    responses = _spread(pair, key, "m-quota", 120, max_tokens=30)
    served = sum(r.status_code == 200 for r in responses)
    refused = [r for r in responses if r.status_code == 429]
    assert served + len(refused) == 120
    assert refused and all(r.json()["error"]["code"] == "insufficient_quota" for r in refused)
    billed = [r.json()["usage"]["total_tokens"] for r in responses if r.status_code == 200]

    def used() -> int:
        with b.client(key) as client:
            return int(client.get("/v1/usage").json()["token_used"])

    wait_for(lambda: used() == sum(billed), timeout=10)
    assert sum(billed) <= 1000
    assert sum(billed) > 1000 - 2 * 60  # the quota was really used up, not refused early
    assert user_id


def test_a_key_revoked_on_one_instance_is_refused_on_the_other_within_a_second(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = pair
    _model(a, "m-keys")
    user_id, _ = _user(a)
    created = a.admin("POST", f"/admin/users/{user_id}/keys", json={"name": "second"})
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    wait_for(lambda: _chat(b, key, "m-keys").status_code == 200, timeout=2)
    revoked = a.admin("DELETE", f"/admin/keys/{created.json()['id']}")
    assert revoked.status_code in (200, 204), revoked.text
    started = time.monotonic()
    wait_for(lambda: _chat(b, key, "m-keys").status_code == 401, timeout=1, interval=0.01)
    assert time.monotonic() - started < 1


def test_a_job_of_a_killed_instance_is_finished_by_the_other(tmp_path: Path, pg_url: str) -> None:
    a = ServeProcess(_mkdir(tmp_path / "a"), _env(pg_url))
    b: ServeProcess | None = None
    try:
        _model(a, "m-slow", latency_ms=1500, text="finished")
        user_id, key = _user(a)
        with a.client(key) as client:
            submitted = client.post(
                CHAT,
                json={
                    "model": "m-slow",
                    "async": True,
                    "messages": [{"role": "user", "content": "go"}],
                },
            )
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["job_id"]

        def status(gw: ServeProcess) -> str:
            with gw.client(key) as client:
                return str(client.get(f"/v1/jobs/{job_id}").json()["status"])

        wait_for(lambda: status(a) == "running", timeout=5)  # claimed by a: the only runner
        b = ServeProcess(_mkdir(tmp_path / "b"), _env(pg_url))
        a.kill()  # SIGKILL: no hand-back, the lease must run out
        wait_for(lambda: status(b) == "completed", timeout=15)
        with b.client(key) as client:
            job = client.get(f"/v1/jobs/{job_id}").json()
        assert job["result"]["choices"][0]["message"]["content"] == "finished"
        usage = b.admin("GET", "/admin/usage", params={"user_id": user_id}).json()["data"]
        assert usage[0]["requests"] == 1  # billed once: a was killed before its upstream answered
    finally:
        a.kill()
        if b is not None:
            b.kill()


def test_an_idempotency_key_runs_once_across_instances(
    pair: tuple[ServeProcess, ServeProcess], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    """docs/api.md "Idempotency-Key": the claim is a row in the shared database, so a retry
    that lands on the other instance waits (409) while the first runs, then gets its answer."""
    a, b = pair
    fake, base_url = fake_openai
    body = {"model_id": "m-held", "vendor_type": "OpenAI", "base_url": base_url}
    assert a.admin("POST", "/admin/models", json=body | {"upstream_model": "held"}).is_success
    _, key = _user(a)
    wait_for(lambda: _chat(b, key, "m-held").status_code == 200, timeout=2)  # b knows it
    messages = [{"role": "user", "content": "once " + secrets.token_hex(6)}]
    clients = [openai.OpenAI(base_url=gw.url + "/v1", api_key=key, max_retries=0) for gw in pair]

    def create(client: openai.OpenAI) -> Any:
        return client.chat.completions.with_raw_response.create(
            model="m-held", messages=messages, extra_headers={"Idempotency-Key": "pay-1"}
        )

    fake.released.clear()
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(create, clients[0])
            wait_for(lambda: any(c["body"]["messages"] == messages for c in fake.calls))
            with pytest.raises(openai.ConflictError) as running:  # not held upstream: no wait
                create(clients[1].with_options(timeout=10))
            fake.released.set()
            answer = first.result(timeout=10)
    finally:
        fake.released.set()
    replay = create(clients[1])
    assert running.value.code == "idempotency_in_progress"
    assert replay.http_response.content == answer.http_response.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert sum(c["body"]["messages"] == messages for c in fake.calls) == 1
    for client in clients:
        client.close()

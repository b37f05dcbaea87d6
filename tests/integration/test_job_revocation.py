"""A revoked key's jobs (docs/api.md, "Jobs"): pending ones are cancelled with the reason, a
running one stops and is not billed for an answer it never received; the user's other keys are
untouched."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from lowart.jobs.runner import KEY_REVOKED
from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway, wait_for

BODY = {"messages": [{"role": "user", "content": "later"}], "async": True}


def _submit(client: httpx.Client, model: str) -> str:
    response = client.post("/v1/chat/completions", json={**BODY, "model": model})
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def test_a_revoked_keys_jobs_are_cancelled_and_not_billed(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    gw = make_gateway(job_concurrency=1, job_poll_s=0.05)
    fake, base_url = fake_openai
    gw.add_model("gpt-held", base_url=base_url, upstream_model="held")
    gw.add_model("gpt-ok", base_url=base_url, upstream_model="ok")
    revoked_key = gw.create_user("revokee")
    [key_row] = gw.admin("GET", "/admin/users/revokee/keys").json()["data"]
    kept_key = gw.admin("POST", "/admin/users/revokee/keys", json={}).json()["key"]
    earlier = len(fake.calls)
    fake.released.clear()
    try:
        with gw.client(revoked_key) as revoked, gw.client(kept_key) as kept:
            running = _submit(revoked, "gpt-held")
            wait_for(lambda: len(fake.calls) > earlier)  # in flight upstream
            pending = _submit(revoked, "gpt-ok")
            other = _submit(kept, "gpt-ok")
            gone = gw.admin("DELETE", f"/admin/keys/{key_row['id']}")
            assert gone.status_code == 200, gone.text
            jobs = {job_id: kept.get(f"/v1/jobs/{job_id}").json() for job_id in (running, pending)}
    finally:
        fake.released.set()
    assert {j["status"] for j in jobs.values()} == {"cancelled"}
    assert {j["error"] for j in jobs.values()} == {KEY_REVOKED}
    with gw.client(kept_key) as kept:
        wait_for(lambda: kept.get(f"/v1/jobs/{other}").json()["status"] == "completed")
        assert kept.get(f"/v1/jobs/{running}").json()["status"] == "cancelled"
        result = kept.get(f"/v1/jobs/{other}").json()["result"]
    gw.flush()
    rows = gw.sql("SELECT request_id, status, prompt_tokens + completion_tokens FROM usage_records")
    assert sorted(rows) == sorted(
        [(running, "cancelled", 0), (other, "ok", result["usage"]["total_tokens"])]
    )
    used = gw.sql("SELECT token_used FROM users WHERE user_id = 'revokee'")
    assert used == [(result["usage"]["total_tokens"],)]
    assert [call["model"] for call in fake.calls[earlier:]] == ["held", "ok"]  # never "pending"

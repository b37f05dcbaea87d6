"""Transform scripts through the real server (docs/transforms.md): registration and its checks,
the test route, where scripts run (before admission, billed as transformed, rerouted within the
allowlist), ``fail()``, ``on_error``, one user's data never in another's request, hand edits in
effect on the refresh timer, and hostile scripts while other models keep serving."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from typing import Any

import anthropic
import asyncpg
import httpx
import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import MASTER_KEY, Gateway, wait_for
from tests.private_servers import PrivateRedis

MESSAGES = [{"role": "user", "content": "hello gateway"}]

TAG = """
def on_request(req, ctx):
    last = req["messages"][-1]
    last["content"] = ctx["user_id"] + "|" + ctx["format"] + "|" + last["content"]
    return req
"""


@pytest.fixture
def gw(make_gateway, fake_openai: tuple[FakeOpenAI, str]) -> Gateway:  # type: ignore[no-untyped-def]
    gateway = make_gateway(transform_timeout_ms=200)
    base = fake_openai[1]
    for model_id, upstream in [
        ("tx", "ok"),
        ("tx-small", "ok"),
        ("tx-plain", "ok"),
        ("tx-fixed", "usage-10-10"),
    ]:
        gateway.add_model(
            model_id, "OpenAI", base_url=base, api_key="sk-v", upstream_model=upstream
        )
    return gateway


def attach(gw: Gateway, model_id: str | None, source: str, **flags: Any) -> dict[str, Any]:
    response = gw.admin(
        "POST", "/admin/transforms", json={"model_id": model_id, "source": source, **flags}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def chat(gw: Gateway, key: str, model: str, **extra: Any) -> httpx.Response:
    with gw.client(key) as client:
        body = {"model": model, "messages": MESSAGES, **extra}
        return client.post("/v1/chat/completions", json=body)


def test_registration_checks_the_script_in_a_worker(gw: Gateway) -> None:
    bad = gw.admin(
        "POST",
        "/admin/transforms",
        json={"model_id": "tx", "source": "def on_request(r c):\n  return r\n"},
    )
    assert bad.status_code == 400
    assert "transform.star:1:18" in bad.json()["error"]["message"]
    assert bad.json()["error"]["param"] == "source"
    lacking = gw.admin(
        "POST",
        "/admin/transforms",
        json={"model_id": "tx", "source": TAG, "on_response": True},
    )
    assert lacking.status_code == 400 and "on_response" in lacking.json()["error"]["message"]
    unknown = gw.admin("POST", "/admin/transforms", json={"model_id": "nope", "source": TAG})
    assert unknown.status_code == 400
    stuck = gw.admin(
        "POST",
        "/admin/transforms",
        json={"model_id": "tx", "source": "X = [i for i in range(2000000000)]\n" + TAG},
    )
    assert stuck.status_code == 400
    row = attach(gw, "tx", TAG)
    assert (row["on_request"], row["on_response"], row["on_chunk"], row["on_error"]) == (
        True,
        False,
        False,
        "fail",
    )
    again = gw.admin("POST", "/admin/transforms", json={"model_id": "tx", "source": TAG})
    assert again.status_code == 409
    listed = gw.admin("GET", "/admin/transforms").json()["data"]
    assert [t["id"] for t in listed] == [row["id"]]
    assert gw.admin("GET", f"/admin/transforms/{row['id']}").json()["source"] == TAG
    assert gw.admin("GET", "/admin/transforms/999").status_code == 404
    patched = gw.admin("PATCH", f"/admin/transforms/{row['id']}", json={"on_error": "skip"})
    assert patched.status_code == 200 and patched.json()["on_error"] == "skip"
    broken = gw.admin("PATCH", f"/admin/transforms/{row['id']}", json={"source": "def f(:"})
    assert broken.status_code == 400
    trial = gw.admin(
        "POST",
        f"/admin/transforms/{row['id']}/test",
        json={"body": {"messages": [{"role": "user", "content": "hi"}]}},
    ).json()
    assert trial == {
        "entry": "on_request",
        "outcome": "ok",
        "result": {"messages": [{"role": "user", "content": "test-user|openai|hi"}]},
        "message": None,
    }
    refused = gw.admin(
        "POST",
        f"/admin/transforms/{row['id']}/test",
        json={"body": {}, "source": 'def on_request(r, c):\n  fail("no " + c["model"])\n'},
    ).json()
    assert (refused["outcome"], refused["message"]) == ("rejected", "no tx")
    assert gw.admin("DELETE", f"/admin/transforms/{row['id']}").json()["deleted"] is True
    assert gw.admin("GET", "/admin/transforms").json()["data"] == []


RAISE = """
def on_request(req, ctx):
    req["max_tokens"] = 50
    return req
"""
ROUTE = """
def on_request(req, ctx):
    req["model"] = "tx-small"
    return req
"""


def test_scripts_run_before_admission_and_billing(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake = fake_openai[0]
    attach(gw, "tx-fixed", RAISE)
    key = gw.create_user("raiser")
    answer = chat(gw, key, "tx-fixed", max_tokens=5)
    assert answer.status_code == 200, answer.text
    assert fake.calls[-1]["body"]["max_tokens"] == 50  # what the upstream was sent
    request_id = answer.headers["x-request-id"]
    wait_for(lambda: bool(gw.sql("SELECT 1 FROM usage_records WHERE request_id=?", (request_id,))))
    [(completion,)] = gw.sql(
        "SELECT completion_tokens FROM usage_records WHERE request_id=?", (request_id,)
    )
    assert completion == 10  # billed as asked by the script, not capped at the caller's 5

    attach(gw, "tx", ROUTE)
    allowed = gw.create_user("allowed", models=["tx", "tx-small"])
    routed = chat(gw, allowed, "tx")
    assert routed.status_code == 200 and routed.headers["x-lowart-model"] == "tx-small"
    request_id = routed.headers["x-request-id"]
    wait_for(lambda: bool(gw.sql("SELECT 1 FROM usage_records WHERE request_id=?", (request_id,))))
    assert gw.sql(
        "SELECT requested_model, served_model FROM usage_records WHERE request_id=?", (request_id,)
    ) == [("tx-small", "tx-small")]
    fenced = gw.create_user("fenced", models=["tx"])
    refused = chat(gw, fenced, "tx")
    direct = chat(gw, fenced, "tx-small")
    assert refused.status_code == direct.status_code == 404
    assert refused.json()["error"]["code"] == direct.json()["error"]["code"]


FAIL_OR_LOOP = """
def on_request(req, ctx):
    text = req["messages"][-1]["content"]
    if text == "refuse":
        fail("no refusals today")
    if text == "loop":
        n = 0
        for i in range(1000000000):
            n += i
    if text == "crash":
        req["missing"]["secret_of_the_script"] = 1
    return req
"""


def test_fail_is_a_400_and_on_error_decides_the_rest(gw: Gateway) -> None:
    row = attach(gw, "tx", FAIL_OR_LOOP)
    key = gw.create_user()
    client = gw.openai(key)
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="tx", messages=[{"role": "user", "content": "refuse"}])
    assert refused.value.body["message"] == "no refusals today"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as refused_a:
        gw.anthropic(key).messages.create(
            model="tx", max_tokens=10, messages=[{"role": "user", "content": "refuse"}]
        )
    assert refused_a.value.body["error"]["message"] == "no refusals today"  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.create(model="tx", messages=[{"role": "user", "content": "loop"}])
    assert failed.value.body["code"] == "transform_failed"  # type: ignore[index]
    assert "time limit" in failed.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.InternalServerError) as crashed:
        client.chat.completions.create(model="tx", messages=[{"role": "user", "content": "crash"}])
    message = crashed.value.body["message"]  # type: ignore[index]
    assert "transform.star:" in message and "missing" in message
    assert "secret_of_the_script" not in message  # the script's source stays the operator's
    gw.admin("PATCH", f"/admin/transforms/{row['id']}", json={"on_error": "skip"})
    passed = client.chat.completions.create(
        model="tx", messages=[{"role": "user", "content": "loop"}]
    )
    assert passed.choices[0].message.content == "Hello from fake: loop"


def test_each_request_sees_only_its_own_user(gw: Gateway) -> None:
    attach(gw, "tx", TAG)
    keys = {user: gw.create_user(user) for user in ("alice", "bob")}

    def ask(user: str, n: int) -> tuple[str, str]:
        text = f"{user} asks {n}"
        answer = chat(gw, keys[user], "tx", messages=[{"role": "user", "content": text}])
        return f"Hello from fake: {user}|openai|{text}", answer.json()["choices"][0]["message"][
            "content"
        ]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(ask, user, n) for n in range(12) for user in keys]
        for future in futures:
            want, got = future.result()
            assert got == want


def test_a_hand_edit_is_in_effect_on_the_refresh_timer(gw: Gateway) -> None:
    row = attach(gw, "tx", TAG)
    key = gw.create_user("editor")
    assert "editor|openai|" in chat(gw, key, "tx").json()["choices"][0]["message"]["content"]
    edited = TAG.replace('"|"', '"#"')
    gw.sql("UPDATE transforms SET source = ? WHERE id = ?", (edited, row["id"]))

    def tagged_with_hash() -> bool:
        content = chat(gw, key, "tx").json()["choices"][0]["message"]["content"]
        return "editor#openai#" in content

    wait_for(tagged_with_hash, timeout=5.0)
    gw.sql("UPDATE transforms SET enabled = 0 WHERE id = ?", (row["id"],))
    wait_for(
        lambda: (
            chat(gw, key, "tx").json()["choices"][0]["message"]["content"]
            == "Hello from fake: hello gateway"
        ),
        timeout=5.0,
    )


HOSTILE = """
def deep(n):
    return deep(n + 1)

def on_request(req, ctx):
    text = req["messages"][-1]["content"]
    if text == "loops":
        for i in range(1000000000):
            for j in range(1000000000):
                pass
    elif text == "deep":
        deep(0)
    elif text == "bomb":
        req["pad"] = [1] * 1000000000
    elif text == "walk":
        req["x"] = req.__class__
    return req
"""


def test_hostile_scripts_end_while_other_models_serve(gw: Gateway) -> None:
    attach(gw, "tx", HOSTILE)
    key = gw.create_user()
    pool = gw.app.services.transforms.pool  # type: ignore[union-attr]
    replaced = pool.replaced
    attacks = ["loops", "deep", "bomb", "walk"]
    with concurrent.futures.ThreadPoolExecutor(54) as executor:
        hostile = [
            executor.submit(chat, gw, key, "tx", messages=[{"role": "user", "content": attack}])
            for attack in attacks
        ]
        normal = [executor.submit(chat, gw, key, "tx-plain") for _ in range(50)]
        assert [f.result().status_code for f in normal] == [200] * 50
        failed = [f.result() for f in hostile]
    assert [r.status_code for r in failed] == [500] * len(attacks)
    assert {r.json()["error"]["code"] for r in failed} == {"transform_failed"}
    # The bomb's worker died (on a loaded machine, a loop may also overrun into a kill).
    assert pool.replaced >= replaced + 1
    assert chat(gw, key, "tx").status_code == 200  # the pool serves the next one


@pytest.mark.pg
def test_every_instance_runs_the_edited_script_within_five_seconds(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    pg_url: str,
    private_redis: PrivateRedis,
) -> None:
    shared = {"database_url": pg_url, "master_key": MASTER_KEY, "redis_url": private_redis.url}
    a = make_gateway(cache_refresh_s=2.0, **shared)
    b = make_gateway(cache_refresh_s=2.0, **shared)
    a.add_model("tx", "OpenAI", base_url=fake_openai[1], api_key="sk-v", upstream_model="ok")
    key = a.create_user("scaled")
    row = attach(a, "tx", TAG)  # an admin write: b reloads on the invalidation message

    def answer(gw: Gateway) -> str:
        return str(chat(gw, key, "tx").json()["choices"][0]["message"]["content"])

    wait_for(lambda: "scaled|openai|" in answer(b), timeout=5.0)
    edited = TAG.replace('"|"', '"#"')
    asyncio.run(
        _pg_execute(pg_url, "UPDATE transforms SET source = $1 WHERE id = $2", edited, row["id"])
    )
    started = time.monotonic()
    for gw in (a, b):
        wait_for(lambda gw=gw: "scaled#openai#" in answer(gw), timeout=5.0)  # type: ignore[misc]
    assert time.monotonic() - started < 5.0


async def _pg_execute(url: str, query: str, *args: Any) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(query, *args)
    finally:
        await conn.close()


CHUNKS = """
def on_chunk(chunk, ctx):
    for choice in chunk.get("choices", []):
        text = choice["delta"].get("content") or ""
        if text.startswith("drop"):
            return None
        if text.startswith("boom"):
            fail("no booms")
    return chunk
"""


def test_on_chunk_drops_events_and_a_failure_ends_the_stream(gw: Gateway) -> None:
    attach(gw, "tx", CHUNKS, on_request=False, on_chunk=True)
    client = gw.openai(gw.create_user())

    def streamed(text: str) -> list[Any]:
        messages = [{"role": "user", "content": text}]
        return list(client.chat.completions.create(model="tx", messages=messages, stream=True))

    chunks = streamed("keep drop keep")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake: keep keep"
    with pytest.raises(openai.APIError) as ended:
        streamed("keep boom")
    assert "no booms" in str(ended.value)


MARK = """
def on_request(req, ctx):
    req["user"] = "marked-by-script"
    return req
"""


def test_every_retry_and_fallback_sends_the_transformed_request(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake = fake_openai[0]
    gw.add_model(
        "tx-down", "OpenAI", base_url=fake_openai[1], api_key="sk-v", upstream_model="error-500"
    )
    assert (
        gw.admin(
            "PUT", "/admin/models/tx-down/fallbacks", json={"fallbacks": ["tx-plain"]}
        ).status_code
        == 200
    )
    attach(gw, "tx-down", MARK)
    before = len(fake.calls)
    answer = chat(gw, gw.create_user(), "tx-down", user="the-caller")
    assert answer.status_code == 200 and answer.headers["x-lowart-model"] == "tx-plain"
    sent = fake.calls[before:]
    assert [c["model"] for c in sent] == ["error-500", "error-500", "ok"]  # a retry, a fallback
    assert {c["body"]["user"] for c in sent} == {"marked-by-script"}


def test_a_global_script_serves_models_without_their_own_and_jobs_store_the_result(
    gw: Gateway,
) -> None:
    attach(gw, None, TAG)
    attach(gw, "tx", ROUTE)  # tx's own script wins over the global one
    key = gw.create_user("global")
    plain = chat(gw, key, "tx-plain").json()["choices"][0]["message"]["content"]
    assert plain == "Hello from fake: global|openai|hello gateway"
    routed = chat(gw, key, "tx")
    assert routed.headers["x-lowart-model"] == "tx-small"
    assert routed.json()["choices"][0]["message"]["content"] == "Hello from fake: hello gateway"
    accepted = chat(gw, key, "tx-plain", **{"async": True})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    with gw.client(key) as client:
        wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json()["status"] == "completed")
        job = client.get(f"/v1/jobs/{job_id}").json()
    answer = job["result"]["choices"][0]["message"]["content"]
    assert answer == "Hello from fake: global|openai|hello gateway"  # stored as transformed


RESPONSES_TAG = """
def on_request(req, ctx):
    if ctx["format"] != "responses":
        fail("not a Responses body")
    part = req["input"][-1]["content"][-1]
    part["text"] = ctx["user_id"] + "|" + ctx["format"] + "|" + part["text"]
    return req
"""


def test_a_responses_request_runs_the_script_on_its_responses_body(gw: Gateway) -> None:
    attach(gw, "tx", RESPONSES_TAG)
    key = gw.create_user("resp")
    client = gw.openai(key)
    whole = client.responses.create(model="tx", input="hello")
    assert whole.output_text == "Hello from fake: resp|responses|hello"
    [kept] = client.responses.input_items.list(whole.id).data
    assert kept.content[0].text == "hello"  # type: ignore[union-attr]  # stored as sent
    again = client.responses.create(model="tx", input="again", previous_response_id=whole.id)
    assert again.output_text == "Hello from fake: resp|responses|again"
    events = client.responses.create(model="tx", input="streamed", stream=True)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from fake: resp|responses|streamed"
    queued = client.responses.create(model="tx", input="later", background=True)
    wait_for(lambda: client.responses.retrieve(queued.id).status == "completed")
    done = client.responses.retrieve(queued.id)
    assert done.output_text == "Hello from fake: resp|responses|later"  # queued as transformed
    with pytest.raises(openai.BadRequestError) as chat_body:
        client.chat.completions.create(model="tx", messages=MESSAGES)  # type: ignore[arg-type]
    assert chat_body.value.body["message"] == "not a Responses body"  # type: ignore[index]


TEAM_TAG = """
def on_request(req, ctx):
    last = req["messages"][-1]
    last["content"] = str(ctx["team"]) + "|" + last["content"]
    return req
"""


def test_ctx_names_the_callers_team(gw: Gateway) -> None:
    attach(gw, "tx", TEAM_TAG)
    member, loner = gw.create_user("member"), gw.create_user("loner")
    assert gw.admin("POST", "/admin/teams", json={"team_id": "blue"}).status_code == 201
    assert gw.admin("PUT", "/admin/teams/blue/members/member").status_code == 200
    for key, team in ((member, "blue"), (loner, "None")):
        answer = chat(gw, key, "tx").json()["choices"][0]["message"]["content"]
        assert answer == f"Hello from fake: {team}|hello gateway"

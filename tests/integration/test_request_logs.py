"""Request logs (docs/operations.md, "Request logs"): the bodies of opted-in requests, redacted
before they are written, capped, embeddings as their shape; the admin's search and reading."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx

from lowart.formats.redaction import truncation_marker
from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import ADMIN_KEY, MASTER_KEY, Gateway
from tests.integration.chat_setup import sdk

CAP = 4096


def canary(kind: str) -> str:
    """A secret unique to this run (as tests/security/test_canary.py plants them)."""
    return f"sk-CANARY-{kind}-{secrets.token_hex(16)}"


def pieces(secret: str, size: int = 8) -> set[str]:
    """The secret and each piece of its random part (a partial leak is a leak)."""
    random = secret.rsplit("-", 1)[1]
    return {secret} | {random[i : i + size] for i in range(len(random) - size + 1)}


def logged_bodies(gw: Gateway) -> str:
    """Every body the table holds, read from the database file itself."""
    with sqlite3.connect(gw.db_path) as conn:
        rows = conn.execute("SELECT request_body, response_body FROM request_logs").fetchall()
    conn.close()
    return "\n".join(f"{a}\n{b}" for a, b in rows)


def logs(gw: Gateway, **query: Any) -> dict[str, Any]:
    response = gw.admin("GET", "/admin/request-logs", params=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


def detail(gw: Gateway, request_id: str) -> dict[str, Any]:
    response = gw.admin("GET", f"/admin/request-logs/{request_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_secrets_and_addresses_never_reach_the_table(
    make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]
) -> None:
    vendor = canary("vendor")
    gw = make_gateway(
        request_log=True,
        request_log_redact_paths="metadata.customer,messages.*.name",
        request_log_max_body_bytes=4 * CAP,  # a stream's raw events are ~200 bytes a word
        request_log_flush_ms=20,
    )
    gw.add_model("chat", "OpenAI", base_url=fake_openai[1], api_key=vendor, upstream_model="ok")
    key = gw.create_user(user_id="logged")
    bearer, field = canary("bearer"), canary("field")
    planted = [vendor, bearer, field, key, ADMIN_KEY, MASTER_KEY]
    text = (
        f"my key is {key}, the admin's {ADMIN_KEY}; Authorization: Bearer {bearer}; "
        f"master {MASTER_KEY}; write to alice.smith@example.com"
    )
    body = {
        "model": "chat",
        "messages": [{"role": "user", "content": text, "name": "alice"}],
        "metadata": {"customer": "ACME-4411", "api_key": field, "note": "kept"},
    }
    client = sdk(gw, key)
    whole = client.chat.completions.with_raw_response.create(**body)
    assert key in whole.parse().choices[0].message.content  # the caller still gets it all
    stream = client.chat.completions.create(**body, stream=True)
    assert key in "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    found = logs(gw, user_id="logged")
    assert [row["stream"] for row in found["data"]] == [True, False]  # newest first
    stored = logged_bodies(gw)
    for secret in planted:
        leaked = [piece for piece in pieces(secret) if piece in stored]
        assert not leaked, f"{secret[:14]}… leaked into a request log"
    assert "alice.smith@example.com" not in stored and "ACME-4411" not in stored
    one = detail(gw, whole.headers["x-request-id"])
    assert '"customer":"***"' in one["request_body"] and '"name":"***"' in one["request_body"]
    assert "write to ***" in one["request_body"] and '"note":"kept"' in one["request_body"]
    assert "Hello from fake: my key is ***" in one["response_body"]
    assert one["status"] == "ok" and one["http_status"] == 200 and one["model"] == "chat"
    assert one["request_bytes"] == len(whole.http_request.content)
    assert one["response_bytes"] == len(whole.http_response.content)
    streamed = found["data"][0]
    assert "response_body" not in streamed  # a search lists no bodies
    events = detail(gw, streamed["request_id"])["response_body"]
    assert events.startswith("data: {") and "data: [DONE]" in events


def test_big_bodies_are_cut_and_embeddings_kept_as_their_shape(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(request_log_max_body_bytes=CAP, request_log_flush_ms=20)
    gw.add_model("big", "Mock", params={"request_log": True})
    gw.add_model("quiet", "Mock")
    gw.add_model("vectors", "Mock", params={"request_log": True})
    key = gw.create_user(user_id="big-sender")
    huge = "x" * (10 * 1024 * 1024)
    with gw.client(key) as client:
        sent = client.post(
            "/v1/chat/completions",
            json={"model": "big", "messages": [{"role": "user", "content": huge}]},
            timeout=60,
        )
        assert sent.status_code == 200, sent.text[:200]
        quiet = client.post(
            "/v1/chat/completions",
            json={"model": "quiet", "messages": [{"role": "user", "content": "x"}]},
        )
        assert quiet.status_code == 200
    vectors = sdk(gw, key).embeddings.create(model="vectors", input="hi", dimensions=1536)
    assert len(vectors.data[0].embedding) == 1536
    found = logs(gw, user_id="big-sender")["data"]
    assert {row["model"] for row in found} == {"big", "vectors"}  # "quiet" did not opt in
    (big,) = logs(gw, model="big")["data"]
    row = detail(gw, big["request_id"])
    size = len(sent.request.content)
    assert row["truncated"] is True and row["request_bytes"] == size > 10 * 1024 * 1024
    assert row["request_body"].endswith(truncation_marker(size, CAP))
    assert len(row["request_body"].encode()) == CAP + len(truncation_marker(size, CAP).encode())
    (embedded,) = logs(gw, model="vectors")["data"]
    answer = detail(gw, embedded["request_id"])["response_body"]
    assert '"embedding":"<1536 floats>"' in answer and "0." not in answer.split("usage")[0]


def test_the_admin_finds_logs_by_request_user_model_and_time(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(request_log=True, request_log_flush_ms=20)
    gw.add_model("m1", "Mock")
    gw.add_model("m2", "Mock")
    keys = {user: gw.create_user(user_id=user) for user in ("ann", "bob")}
    ids = []
    for user, model in [("ann", "m1"), ("ann", "m2"), ("bob", "m1")]:
        with gw.client(keys[user]) as client:
            answer = client.post(
                "/v1/chat/completions",
                json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            )
        assert answer.status_code == 200
        ids.append(answer.headers["x-request-id"])
    with gw.client(keys["bob"]) as client:
        refused = client.post("/v1/chat/completions", json={"model": "m1", "messages": "no"})
    assert refused.status_code == 400  # not logged: refused before its model was known
    assert [r["request_id"] for r in logs(gw)["data"]] == ids[::-1]
    assert [r["request_id"] for r in logs(gw, user_id="ann")["data"]] == ids[1::-1]
    assert [r["request_id"] for r in logs(gw, model="m1")["data"]] == [ids[2], ids[0]]
    assert [r["request_id"] for r in logs(gw, request_id=ids[1])["data"]] == [ids[1]]
    first = logs(gw, limit=2)
    assert first["has_more"] is True and len(first["data"]) == 2
    rest = logs(gw, limit=2, after=first["last_id"])
    assert [r["request_id"] for r in rest["data"]] == [ids[0]] and rest["has_more"] is False
    assert logs(gw, since="2999-01-01T00:00:00Z")["data"] == []
    assert len(logs(gw, until="2999-01-01T00:00:00Z")["data"]) == 3
    assert gw.admin("GET", "/admin/request-logs", params={"limit": "0"}).status_code == 400
    assert gw.admin("GET", "/admin/request-logs", params={"since": "soon"}).status_code == 400
    missing = gw.admin("GET", "/admin/request-logs/nope")
    assert missing.status_code == 404
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {keys['ann']}"}) as c:
        assert c.get(f"/admin/request-logs/{ids[0]}").status_code in (401, 403)

"""Security properties on the real server (docs/reliability.md, "Security"): keys hashed (S2),
tenant isolation (S5), the route-authorisation matrix (S7), no mass assignment (S8),
rate limits that cannot be bypassed (S12), and secrets that must exist (S15)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lowart.testing.comfyui_fake import ThreadedComfyUI
from tests.conftest import ADMIN_KEY, Gateway
from tests.e2e.serve_process import db_dump, run_cli
from tests.integration.test_routes import _served
from tests.security import rawhttp
from tests.security.tenants import Tenant, populate, prepare_models

HELLO = [{"role": "user", "content": "hello"}]
VERBS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# The routes anyone may call. A new public route must be added here on purpose.
PUBLIC = {"/health", "/ready", "/openapi.json", "/metrics", "/ui", "/ui/{path}"}
# A key, or instead a signed URL; without either, 404 (docs/api.md, "Files").
KEY_OR_SIGNATURE = {"/v1/files/{file_id}"}


def windows(secret: str, size: int = 8) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


# --- S2 -------------------------------------------------------------------------------------


def test_s2_keys_are_stored_only_as_hashes(gw: Gateway, tmp_path: Path) -> None:
    keys = [gw.create_user(f"hashed-{i}") for i in range(3)]
    minted = gw.admin("POST", "/admin/users/hashed-0/keys", json={"name": "second"})
    keys.append(minted.json()["key"])
    keys.append(ADMIN_KEY)
    for key in keys:
        assert re.fullmatch(r"lw-[A-Za-z0-9_-]{43}", key) or key == ADMIN_KEY
        with gw.client(key) as client:  # used once, so last_used_at is written too
            assert client.get("/v1/models").status_code == 200
    gw.flush()
    raw, dump = db_dump(gw.db_path)
    text = raw.decode("latin-1")
    for key in keys:
        assert key not in text and key not in dump
        # Beyond the 7-character display prefix, no 8 characters of the secret are stored (a
        # window overlapping the prefix could meet the byte after it by chance).
        hits = {w for w in windows(key[7:]) if w in text or w in dump}
        assert not hits, (key[:7], sorted(hits)[:5])
    # What is stored: the SHA-256 of each key and its 7-character display prefix.
    stored = {row[0] for row in gw.sql("SELECT key_hash FROM api_keys")}
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in stored)


# --- S5 -------------------------------------------------------------------------------------


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway]) -> Gateway:
    return make_gateway(job_poll_s=0.05)


def _foreign_requests(a: Tenant) -> list[tuple[str, str, dict[str, Any] | None]]:
    requests: list[tuple[str, str, dict[str, Any] | None]] = []
    for job in a.jobs:
        for verb in VERBS:
            requests += [(verb, f"/v1/jobs/{job}", {}), (verb, f"/v1/jobs/{job}/cancel", {})]
    for file_id in a.files:
        requests += [(verb, f"/v1/files/{file_id}", None) for verb in VERBS]
    for session in a.sessions:
        for approved in ([], ["call_1"], ["x"]):
            body = {"session_id": session, "approved_ids": approved}
            requests.append(("POST", "/v1/tools/confirm", body))
        requests.append(
            (
                "POST",
                "/v1/chat/completions",
                {"model": "mock", "messages": HELLO, "session_id": session},
            )
        )
    return requests


def test_s5_a_tenant_can_reach_nothing_of_anothers(gw: Gateway, comfy: ThreadedComfyUI) -> None:
    prepare_models(gw, comfy.base_url)
    a, b = populate(gw, "tenant-a"), populate(gw, "tenant-b")
    unknown = Tenant(
        "nobody",
        "",
        jobs=["job_" + "0" * 24],
        files=["file_" + "0" * 24],
        sessions=["sess_" + "0" * 24],
    )
    tried = 0
    with gw.client(b.key) as client:
        for (verb, path, body), (_, twin_path, twin_body) in zip(
            _foreign_requests(a), _foreign_requests(unknown), strict=True
        ):
            response = client.request(verb, path, json=body)
            twin = client.request(verb, twin_path, json=twin_body)
            tried += 1
            assert response.status_code == twin.status_code, (verb, path, response.text)
            assert response.status_code in (404, 405) or path.endswith("completions"), (verb, path)
            assert a.user_id not in response.text
        listed = {j["job_id"] for j in client.get("/v1/jobs", params={"limit": 100}).json()["data"]}
        assert listed == set(b.jobs)
        after = client.get("/v1/jobs", params={"after": a.jobs[0]})
        assert after.status_code in (200, 400, 404)
        assert not set(a.jobs) & {j["job_id"] for j in after.json().get("data", [])}
        pending = {s["session_id"] for s in client.get("/v1/tools/sessions").json()["data"]}
        assert pending == set(b.sessions)
    for url in a.file_urls:  # A's signed URL opens A's file for anyone: that is what it is for
        assert httpx.get(gw.url + url).status_code == 200
    assert tried == len(_foreign_requests(a)) >= 15
    # A's objects are untouched by all of B's attempts.
    with gw.client(a.key) as client:
        assert client.get(f"/v1/jobs/{a.jobs[0]}").json()["status"] == "completed"
        assert {s["session_id"] for s in client.get("/v1/tools/sessions").json()["data"]} == set(
            a.sessions
        )


# --- S7 -------------------------------------------------------------------------------------


def _classify(document: dict[str, Any]) -> dict[str, str]:
    """Each documented path's policy, from its operations' ``security``."""
    policies = {}
    for path, item in document["paths"].items():
        securities = [
            op.get("security") for m, op in item.items() if m in {v.lower() for v in VERBS}
        ]
        if all(s == [] for s in securities):
            policies[path] = "public"
        elif any(s is not None and {} in s for s in securities):
            policies[path] = "key_or_signature"
        elif path.startswith("/admin/"):
            policies[path] = "admin"
        elif path.startswith("/v1/"):
            policies[path] = "user"
        else:
            policies[path] = "unclassified"
    return policies


def test_s7_route_authorisation_matrix(gw: Gateway) -> None:
    document = httpx.get(gw.url + "/openapi.json").json()
    policies = _classify(document)
    served = _served(gw)
    assert served == set(policies), "a served route without a documented policy"
    assert {p for p, c in policies.items() if c == "public"} == PUBLIC
    assert {p for p, c in policies.items() if c == "key_or_signature"} == KEY_OR_SIGNATURE
    assert "unclassified" not in policies.values()

    user = gw.create_user("matrix-user")
    revoked_user = gw.create_user("matrix-revoked")
    [key_row] = gw.admin("GET", "/admin/users/matrix-revoked/keys").json()["data"]
    assert gw.admin("DELETE", f"/admin/keys/{key_row['id']}").status_code == 200
    disabled = gw.create_user("matrix-disabled")
    assert (
        gw.admin("PATCH", "/admin/users/matrix-disabled", json={"status": "disabled"}).status_code
        == 200
    )
    callers = {
        "anonymous": None,
        "revoked": revoked_user,
        "disabled": disabled,
        "user": user,
        "admin": ADMIN_KEY,
    }
    cells = 0
    for path, policy in sorted(policies.items()):
        concrete = re.sub(r"\{[^}]+\}", "zz-nope", path)
        methods = [m.upper() for m in document["paths"][path] if m.upper() in VERBS]
        for method in methods:
            for caller, key in callers.items():
                headers = {"authorization": f"Bearer {key}"} if key else {}
                status = httpx.request(
                    method, gw.url + concrete, headers=headers, json={}
                ).status_code
                cells += 1
                want = _expected(policy, caller, status)
                assert want, (method, path, caller, status)
    assert cells >= 5 * len(policies)


def _expected(policy: str, caller: str, status: int) -> bool:
    if policy == "public":
        return status not in (401, 403) and status < 500
    if caller == "anonymous":
        return status == (404 if policy == "key_or_signature" else 401)
    if caller == "revoked":
        return status == 401
    if caller == "disabled":
        return status == 403
    if caller == "user" and policy == "admin":
        return status == 403
    return status not in (401, 403) and status < 500


# --- S8 -------------------------------------------------------------------------------------


def test_s8_a_user_cannot_raise_its_own_limits(gw: Gateway) -> None:
    key = gw.create_user("grabby", rpm_limit=5, token_quota=100, models=["mock"])
    before = gw.sql(
        "SELECT is_admin, rpm_limit, token_quota, models, status FROM users "
        "WHERE user_id = 'grabby'"
    )
    grab = {
        "user_id": "grabby",
        "rpm_limit": None,
        "token_quota": None,
        "models": None,
        "is_admin": True,
        "status": "active",
        "token_used": 0,
        "role": "admin",
    }
    attempts = [
        ("POST", "/admin/users/quota"),
        ("PATCH", "/admin/users/grabby"),
        ("PUT", "/admin/users/grabby"),
        ("POST", "/admin/users/grabby/keys"),
        ("PATCH", "/v1/usage"),
        ("POST", "/v1/usage"),
        ("PUT", "/v1/usage"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/messages"),
        ("PATCH", "/v1/models/mock"),
    ]
    with gw.client(key) as client:
        for method, path in attempts:
            body = {**grab, "model": "mock", "max_tokens": 5, "messages": HELLO}
            response = client.request(method, path, json=body)
            if path.startswith("/admin/"):
                assert response.status_code == 403, (method, path)
            else:
                assert response.status_code in (200, 400, 405, 429), (method, path, response.text)
        usage = client.get("/v1/usage").json()
    assert (usage["rpm_limit"], usage["token_quota"]) == (5, 100)
    after = gw.sql(
        "SELECT is_admin, rpm_limit, token_quota, models, status FROM users "
        "WHERE user_id = 'grabby'"
    )
    assert after == before
    assert len(gw.admin("GET", "/admin/users/grabby/keys").json()["data"]) == 1


# --- S12 ------------------------------------------------------------------------------------


def test_s12_the_rpm_limit_holds_whatever_the_key_path_or_mode(gw: Gateway) -> None:
    limit = 5
    key = gw.create_user("hasty", rpm_limit=limit)
    keys = [key] + [
        gw.admin("POST", "/admin/users/hasty/keys", json={}).json()["key"] for _ in range(2)
    ]
    chat = {"model": "mock", "messages": HELLO}
    variants: list[tuple[str, str, list[tuple[str, str]], dict[str, Any]]] = []
    for i in range(8):
        k = keys[i % len(keys)]
        variants += [
            ("POST", "/v1/chat/completions", [("Authorization", f"Bearer {k}")], chat),
            ("POST", "/v1/chat/completions", [("Authorization", f"Bearer   {k}  ")], chat),
            ("POST", "/v1/chat/completions", [("x-api-key", k)], {**chat, "async": True}),
            ("POST", "/v1/messages", [("x-api-key", k)], {**chat, "max_tokens": 5}),
            ("POST", "/v1//chat/completions", [("Authorization", f"Bearer {k}")], chat),
            ("POST", "/v1/chat/completions/", [("Authorization", f"Bearer {k}")], chat),
            ("POST", "/V1/chat/completions", [("Authorization", f"Bearer {k}")], chat),
            ("POST", "/v1/chat/completions", [("Authorization", f"Bearer {k.upper()}")], chat),
            (
                "POST",
                "/v1/chat/completions",
                [("Authorization", f"Bearer {k}"), ("X-Forwarded-For", f"10.0.0.{i}")],
                chat,
            ),
            (
                "POST",
                "/v1/chat/completions",
                [("Authorization", f"Bearer {k}")],
                {**chat, "stream": True},
            ),
        ]
    admitted = 0
    statuses = []
    for method, path, headers, body in variants:
        response = rawhttp.request(gw.url, method, path, headers, json.dumps(body).encode())
        statuses.append(response.status)
        admitted += response.status in (200, 202)
        assert response.status in (200, 202, 401, 404, 429), (path, headers, response.status)
    assert admitted == limit, statuses


# --- S15 ------------------------------------------------------------------------------------


# Blank and short values of each are refused in tests/unit/test_settings.py; here the real
# command, once per secret (each start costs seconds).
@pytest.mark.parametrize("env", [{"MASTER_KEY": ""}, {"ADMIN_KEY": " "}])
def test_s15_serve_refuses_empty_or_short_secrets(tmp_path: Path, env: dict[str, str]) -> None:
    result = run_cli(["serve"], tmp_path, env=env, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("lowart: error: ") and next(iter(env)) in result.stderr
    assert not (tmp_path / "lowart.key").exists()

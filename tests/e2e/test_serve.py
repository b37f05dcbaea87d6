"""End to end: ``lowart serve`` as a child process, over TCP and over a Unix socket."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lowart.testing.comfyui_fake import FakeComfyUI
from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import wait_for
from tests.e2e.serve_process import (
    ADMIN_KEY,
    MASTER_KEY,
    OTHER_MASTER_KEY,
    STOPPED,
    ServeProcess,
    run_cli,
    sql,
)

KEY_RE = re.compile(r"^lw-[A-Za-z0-9_-]{43}$")
ERROR_FIELDS = {"message", "type", "param", "code"}
SHARED_MAX_BODY = 1000


def _suffix() -> str:
    return secrets.token_hex(4)


def _chat(model: str, content: str = "x") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def assert_openai_error(
    response: httpx.Response, status: int, code: str | None = None, type_: str | None = None
) -> dict[str, Any]:
    """``response`` is an OpenAI-shaped error with this status (and code/type when given)."""
    assert response.status_code == status, response.text
    assert "x-request-id" in response.headers
    error = response.json()["error"]
    assert set(error) == ERROR_FIELDS, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    if type_ is not None:
        assert error["type"] == type_, error
    return dict(error)


@pytest.fixture(scope="module", params=["TCP", "UDS"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeProcess]:
    """One server per listen mode, shared by the tests of this module that leave it usable.

    Tests use their own user and model ids, so they do not see each other's data.
    """
    cwd = tmp_path_factory.mktemp(f"served-{request.param.lower()}")
    env: dict[str, str | None] = {"MAX_BODY_BYTES": str(SHARED_MAX_BODY)}
    sock_dir = None
    if request.param == "UDS":
        sock_dir = Path(tempfile.mkdtemp(prefix="lw", dir="/tmp"))
        env |= {"LISTEN_MODE": "UDS", "UDS_PATH": str(sock_dir / "gw.sock")}
    try:
        with ServeProcess(cwd, env) as server:
            assert (server.uds is not None) == (request.param == "UDS")
            yield server
            code = server.terminate()
            assert code in STOPPED, server.output()
    finally:
        if sock_dir is not None:
            shutil.rmtree(sock_dir, ignore_errors=True)


# --- users and keys ------------------------------------------------------------------------


def test_user_create_then_update(served: ServeProcess) -> None:
    user_id = "u-" + _suffix()
    created = served.admin("POST", "/admin/users/quota", json={"user_id": user_id, "rpm_limit": 5})
    assert created.status_code == 201, created.text
    body = created.json()
    assert KEY_RE.match(body["api_key"]), body["api_key"]
    assert body["user_id"] == user_id
    assert body["rpm_limit"] == 5

    updated = served.admin("POST", "/admin/users/quota", json={"user_id": user_id, "rpm_limit": 9})
    assert updated.status_code == 200, updated.text
    assert "api_key" not in updated.json()
    assert updated.json()["rpm_limit"] == 9

    fetched = served.admin("GET", f"/admin/users/{user_id}")
    assert fetched.status_code == 200, fetched.text
    assert fetched.json()["rpm_limit"] == 9
    assert fetched.json()["token_used"] == 0
    # The first key survives the update.
    with served.client(body["api_key"]) as client:
        assert client.get("/v1/models").status_code == 200


def test_keys_authenticate_and_revocation_is_immediate(served: ServeProcess) -> None:
    user_id = "u-" + _suffix()
    key = served.create_user(user_id)
    with served.client(key) as client:
        listed = client.get("/v1/models")
    assert listed.status_code == 200, listed.text
    assert listed.json()["object"] == "list"
    assert "mock" in [model["id"] for model in listed.json()["data"]]
    with served.client(None, **{"x-api-key": key}) as client:
        assert client.get("/v1/models").status_code == 200

    issued = served.admin("POST", f"/admin/users/{user_id}/keys", json={"name": "second"})
    assert issued.status_code == 201, issued.text
    second = issued.json()
    assert set(second) >= {"id", "key", "prefix"}
    assert KEY_RE.match(second["key"])
    assert second["prefix"] == second["key"][:7]
    with served.client(second["key"]) as client:
        assert client.get("/v1/models").status_code == 200

    revoked = served.admin("DELETE", f"/admin/keys/{second['id']}")
    assert revoked.status_code in {200, 204}, revoked.text
    with served.client(second["key"]) as client:
        assert_openai_error(client.get("/v1/models"), 401, "invalid_api_key")
        assert_openai_error(client.post("/v1/chat/completions", json=_chat("mock")), 401)
    with served.client(None, **{"x-api-key": second["key"]}) as client:
        assert_openai_error(client.get("/v1/models"), 401, "invalid_api_key")
    # Only that key: the user's first one still works.
    with served.client(key) as client:
        assert client.get("/v1/models").status_code == 200

    keys = served.admin("GET", f"/admin/users/{user_id}/keys")
    assert keys.status_code == 200, keys.text
    assert key not in keys.text
    assert second["key"] not in keys.text
    rows = {row["id"]: row for row in keys.json()["data"]}
    assert rows[second["id"]]["revoked_at"] is not None


def test_access_control(served: ServeProcess) -> None:
    key = served.create_user("u-" + _suffix())
    with served.client(key) as client:
        assert_openai_error(
            client.get("/admin/users"), 403, "permission_denied", "permission_error"
        )
        assert_openai_error(client.post("/admin/models", json={"model_id": "x"}), 403)
    with served.client(None) as anonymous:
        assert_openai_error(anonymous.get("/v1/models"), 401, "invalid_api_key")
        assert_openai_error(anonymous.get("/admin/users"), 401, "invalid_api_key")
        assert_openai_error(anonymous.post("/v1/chat/completions", json=_chat("mock")), 401)
        health = anonymous.get("/health")
        assert health.status_code == 200, health.text
        assert "x-request-id" in health.headers
    with served.client("lw-" + "A" * 43) as unknown:
        assert_openai_error(unknown.get("/v1/models"), 401, "invalid_api_key")
    with served.client() as admin:
        users = admin.get("/admin/users")
        assert users.status_code == 200, users.text
        assert isinstance(users.json()["data"], list)
        assert "x-request-id" in users.headers
    with served.client(key) as client:
        chat = client.post("/v1/chat/completions", json=_chat("mock", "hello there"))
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"] == "hello there"
        assert "x-request-id" in chat.headers


# --- secrets -------------------------------------------------------------------------------


def test_vendor_key_is_never_returned(served: ServeProcess) -> None:
    model_id = "canary-" + _suffix()
    vendor_key = "sk-canary-" + secrets.token_hex(12)
    body = {
        "model_id": model_id,
        "vendor_type": "OpenAI",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key": vendor_key,
    }
    created = served.admin("POST", "/admin/models", json=body)
    assert created.status_code == 201, created.text
    assert vendor_key not in created.text
    listed = served.admin("GET", "/admin/models")
    single = served.admin("GET", f"/admin/models/{model_id}")
    for response in (created, listed, single):
        assert response.status_code in {200, 201}, response.text
        assert vendor_key not in response.text
        assert vendor_key[:-4] not in response.text
    row = next(m for m in listed.json()["data"] if m["model_id"] == model_id)
    for shown in (created.json(), row, single.json()):
        assert shown["api_key_set"] is True
        assert shown["api_key_last4"] == vendor_key[-4:]
        assert "api_key" not in shown


def _database_values(db: Path) -> list[str]:
    """Every value of every table, as text."""
    conn = sqlite3.connect(db, timeout=10)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        values = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                values.extend(str(value) for value in row)
        return values
    finally:
        conn.close()


def test_no_plain_secrets_in_the_database(served: ServeProcess) -> None:
    user_id = "u-" + _suffix()
    user_key = served.create_user(user_id)
    model_id = "secret-" + _suffix()
    vendor_key = "sk-canary-" + secrets.token_hex(12)
    created = served.admin(
        "POST",
        "/admin/models",
        json={
            "model_id": model_id,
            "vendor_type": "OpenAI",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": vendor_key,
        },
    )
    assert created.status_code == 201, created.text
    with served.client(user_key) as client:  # a use of the key writes last_used_at etc.
        assert client.get("/v1/models").status_code == 200

    files = sorted(served.cwd.glob("lowart.db*"))
    assert served.db in files
    for path in files:
        data = path.read_bytes()
        for secret in (user_key, vendor_key, ADMIN_KEY, MASTER_KEY):
            assert secret.encode() not in data, f"{secret[:10]}… found in {path.name}"
    values = _database_values(served.db)
    for secret in (user_key, vendor_key, ADMIN_KEY, MASTER_KEY):
        assert not any(secret in value for value in values), secret[:10]
    # What is stored instead: the encrypted vendor key and the key's display prefix.
    (stored,) = sql(served.db, "SELECT api_key FROM models WHERE model_id = ?", (model_id,))[0]
    assert stored.startswith("enc:"), stored[:8]
    prefixes = [
        r[0] for r in sql(served.db, "SELECT prefix FROM api_keys WHERE user_id = ?", (user_id,))
    ]
    assert prefixes == [user_key[:7]]


# --- hand edits ----------------------------------------------------------------------------


def test_hand_edited_rows_take_effect(served: ServeProcess) -> None:
    model_id = "hand-mock-" + _suffix()
    user_id = "u-" + _suffix()
    key = served.create_user(user_id)
    with served.client(key) as client:
        missing = client.post("/v1/chat/completions", json=_chat(model_id))
        assert_openai_error(missing, 404, "model_not_found")

        sql(
            served.db,
            "INSERT INTO models(model_id, vendor_type, base_url, api_key) "
            "VALUES (?, 'mock', '', NULL)",
            (model_id,),
        )
        answers: list[httpx.Response] = []

        def chat_succeeds() -> bool:
            answers.append(client.post("/v1/chat/completions", json=_chat(model_id)))
            return answers[-1].status_code == 200

        wait_for(chat_succeeds, timeout=5, interval=0.05)
        assert answers[-1].json()["choices"][0]["message"]["content"] == "x"
        assert answers[-1].headers["x-lowart-model"] == model_id
        assert {a.status_code for a in answers} <= {200, 404}

        # Unlimited so far: several requests in a row pass.
        for _ in range(3):
            ok = client.post("/v1/chat/completions", json=_chat("mock"))
            assert ok.status_code == 200, ok.text

        sql(served.db, "UPDATE users SET rpm_limit = 1 WHERE user_id = ?", (user_id,))
        limited: list[httpx.Response] = []

        def rate_limited() -> bool:
            limited.append(client.post("/v1/chat/completions", json=_chat("mock")))
            return limited[-1].status_code == 429

        wait_for(rate_limited, timeout=5, interval=0.05)
        assert {r.status_code for r in limited} <= {200, 429}
        refused = limited[-1]
        assert_openai_error(refused, 429, "rate_limit_exceeded", "rate_limit_error")
        assert int(refused.headers["retry-after"]) >= 1
        # Once limited, it stays limited within the window.
        again = client.post("/v1/chat/completions", json=_chat("mock"))
        assert_openai_error(again, 429, "rate_limit_exceeded")


# --- bad input -----------------------------------------------------------------------------


def test_bad_input_gets_4xx_openai_errors(served: ServeProcess) -> None:
    user_key = served.create_user("u-" + _suffix())
    json_type = {"content-type": "application/json"}
    with served.client() as admin:
        quota = "/admin/users/quota"
        cases = {
            "malformed json": admin.post(quota, content=b'{"user_id": ', headers=json_type),
            "array body": admin.post(quota, content=b'["user_id"]', headers=json_type),
            "string body": admin.post(quota, content=b'"user"', headers=json_type),
            "empty body": admin.post(quota, content=b"", headers=json_type),
            "wrong type": admin.post(quota, json={"user_id": "u-" + _suffix(), "rpm_limit": "ten"}),
            "missing user_id": admin.post(quota, json={"rpm_limit": 5}),
            "bogus vendor": admin.post(
                "/admin/models", json={"model_id": "m-" + _suffix(), "vendor_type": "Bogus"}
            ),
        }
        for name, response in cases.items():
            assert response.status_code == 400, (name, response.text)
            assert_openai_error(response, 400, type_="invalid_request_error")
        assert cases["wrong type"].json()["error"]["param"] == "rpm_limit"
        assert cases["bogus vendor"].json()["error"]["param"] == "vendor_type"

        big = json.dumps({"user_id": "u-" + _suffix(), "name": "n" * 5000}).encode()
        assert len(big) > SHARED_MAX_BODY
        assert_openai_error(
            admin.post(quota, content=big, headers=json_type), 413, "request_too_large"
        )

        # No content-type at all: still JSON.
        user_id = "u-" + _suffix()
        plain = admin.post(quota, content=json.dumps({"user_id": user_id}).encode())
        assert "content-type" not in plain.request.headers
        assert plain.status_code == 201, plain.text
        assert KEY_RE.match(plain.json()["api_key"])

    with served.client(user_key) as client:
        chat = "/v1/chat/completions"
        assert_openai_error(client.post(chat, content=b"{nope", headers=json_type), 400)
        assert_openai_error(client.post(chat, content=b"[]", headers=json_type), 400)
        assert_openai_error(client.post(chat, json={"model": "mock", "messages": "hi"}), 400)
        assert_openai_error(client.post(chat, json={"messages": [{"role": "user"}]}), 400)
        big_chat = json.dumps(_chat("mock", "y" * 5000)).encode()
        assert_openai_error(client.post(chat, content=big_chat), 413, "request_too_large")
        plain_chat = client.post(chat, content=json.dumps(_chat("mock", "no header")).encode())
        assert plain_chat.status_code == 200, plain_chat.text
        assert plain_chat.json()["choices"][0]["message"]["content"] == "no header"


def test_oversized_chunked_body_gets_413(served: ServeProcess) -> None:
    """Without a content-length the limit still holds, counted as the body arrives."""

    def chunks() -> Iterator[bytes]:
        yield b'{"user_id": "u-chunked", "name": "'
        for _ in range(10):
            yield b"n" * 500
        yield b'"}'

    with served.client() as admin:
        response = admin.post("/admin/users/quota", content=chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert_openai_error(response, 413, "request_too_large")


# --- Unix socket ---------------------------------------------------------------------------


def test_unix_socket_lifecycle(tmp_path: Path, short_dir: Path) -> None:
    path = short_dir / "gw.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()
    assert stat.S_ISSOCK(path.lstat().st_mode)  # left behind, nobody listening

    env: dict[str, str | None] = {"LISTEN_MODE": "uds", "UDS_PATH": str(path)}
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    first = ServeProcess(first_dir, env)
    try:
        assert first.uds == str(path.resolve())
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        with first.client(None) as client:
            assert client.get("/health").status_code == 200

        second_dir = tmp_path / "second"
        second_dir.mkdir()
        second = run_cli(["serve"], second_dir, env, timeout=30)
        assert second.returncode != 0, second.stdout
        assert "Lowart listening" not in second.stdout
        assert "in use" in second.stderr, second.stderr
        assert str(path) in second.stderr or path.name in second.stderr

        # The first keeps serving, on the same socket file.
        assert first.alive()
        assert stat.S_ISSOCK(path.lstat().st_mode)
        key = first.create_user("u-" + _suffix())
        with first.client(key) as client:
            chat = client.post("/v1/chat/completions", json=_chat("mock", "still here"))
        assert chat.status_code == 200, chat.text

        assert first.terminate() in STOPPED, first.output()
    finally:
        first.kill()


@pytest.mark.parametrize("mode", ["TCP", "UDS"])
def test_sigterm_exits_zero(mode: str, tmp_path: Path, short_dir: Path) -> None:
    path = short_dir / "gw.sock"
    env: dict[str, str | None] = {"LISTEN_MODE": mode, "UDS_PATH": str(path)}
    with ServeProcess(tmp_path, env) as server:
        with server.client() as client:
            assert client.get("/admin/users").status_code == 200
        code = server.terminate()
        assert "Traceback" not in server.stderr, server.stderr
        assert code == 0, server.output()
        if mode == "UDS":
            assert not path.exists()
            assert not path.is_symlink()


# --- master key ----------------------------------------------------------------------------


def _register_upstream(server: ServeProcess, fake_url: str) -> tuple[str, str, str]:
    """A model on the fake OpenAI with a vendor key; returns (model_id, upstream, vendor key)."""
    model_id = "up-" + _suffix()
    upstream = "ok:" + model_id  # the fake ignores the unknown part; it tells calls apart
    vendor_key = "sk-canary-" + secrets.token_hex(12)
    response = server.admin(
        "POST",
        "/admin/models",
        json={
            "model_id": model_id,
            "vendor_type": "OpenAI",
            "base_url": fake_url,
            "api_key": vendor_key,
            "upstream_model": upstream,
        },
    )
    assert response.status_code == 201, response.text
    return model_id, upstream, vendor_key


def _assert_vendor_key_sent(
    server: ServeProcess, key: str, fake: FakeOpenAI, model: tuple[str, str, str]
) -> None:
    """A chat on ``model`` (from ``_register_upstream``) reaches the fake with its vendor key."""
    model_id, upstream, vendor_key = model
    before = len([c for c in fake.calls if c["model"] == upstream])
    with server.client(key) as client:
        response = client.post("/v1/chat/completions", json=_chat(model_id, "ping"))
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from fake: ping"
    calls = [c for c in fake.calls if c["model"] == upstream]
    assert len(calls) == before + 1
    assert calls[-1]["headers"]["authorization"] == f"Bearer {vendor_key}"
    shown = server.admin("GET", f"/admin/models/{model_id}").json()
    assert shown["api_key_set"] is True
    assert shown["api_key_last4"] == vendor_key[-4:]


def test_wrong_master_key_refuses_to_start(
    tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, fake_url = fake_openai
    with ServeProcess(tmp_path, {"MASTER_KEY": MASTER_KEY}) as first:
        key = first.create_user("u-" + _suffix())
        model = _register_upstream(first, fake_url)
        _assert_vendor_key_sent(first, key, fake, model)
        assert first.terminate() in STOPPED, first.output()

    wrong = run_cli(["serve"], tmp_path, {"MASTER_KEY": OTHER_MASTER_KEY}, timeout=30)
    assert wrong.returncode != 0
    assert "Lowart listening" not in wrong.stdout
    assert "lowart: error:" in wrong.stderr, wrong.stderr
    assert re.search(r"master[ _]key", wrong.stderr, re.IGNORECASE), wrong.stderr
    assert "Traceback" not in wrong.stderr, wrong.stderr
    assert OTHER_MASTER_KEY not in wrong.stderr
    assert MASTER_KEY not in wrong.stderr

    with ServeProcess(tmp_path, {"MASTER_KEY": MASTER_KEY}) as again:
        _assert_vendor_key_sent(again, key, fake, model)
        assert again.terminate() in STOPPED, again.output()


def _modes(root: Path) -> dict[str, int]:
    """The permission bits of everything under ``root``, by relative path."""
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*")}


def _generate_image(server: ServeProcess, key: str, comfy_url: str) -> None:
    workflow = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "{{prompt}}", "clip": ["1", 0]}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "m"}},
    }
    body = {"model_id": "sd", "vendor_type": "ComfyUI", "base_url": comfy_url}
    registered = server.admin(
        "POST", "/admin/models", json={**body, "params": {"workflow": workflow}}
    )
    assert registered.status_code == 201, registered.text
    with server.client(key) as client:
        made = client.post("/v1/images/generations", json={"model": "sd", "prompt": "a cat"})
    assert made.status_code == 200, made.text


def test_generated_master_key_file_is_private_and_reused(
    tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, fake_url = fake_openai
    key_file = tmp_path / "lowart.key"
    comfy = FakeComfyUI.in_thread(fake=FakeComfyUI(step_delay=0.0))
    # Under the usual umask 022 the database, its WAL and the images were once world-readable.
    with comfy as served_comfy, ServeProcess(tmp_path, {"MASTER_KEY": None}, umask=0o022) as first:
        assert key_file.exists()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        generated = key_file.read_bytes()
        assert len(generated.strip()) >= 32
        key = first.create_user("u-" + _suffix())
        model = _register_upstream(first, fake_url)
        _assert_vendor_key_sent(first, key, fake, model)
        _generate_image(first, key, served_comfy.base_url)
        modes = _modes(tmp_path)
        assert first.terminate() in STOPPED, first.output()
    images = [path for path in modes if path.endswith(".png")]
    assert images and {"lowart.db", "lowart.db-wal", "lowart.db-shm"} <= set(modes)
    private = {path: 0o700 if (tmp_path / path).is_dir() else 0o600 for path in modes}
    assert modes == private

    with ServeProcess(tmp_path, {"MASTER_KEY": None}) as second:
        assert key_file.read_bytes() == generated
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        _assert_vendor_key_sent(second, key, fake, model)
        assert second.terminate() in STOPPED, second.output()


# --- admin key -----------------------------------------------------------------------------


def test_short_admin_key_refuses_to_start(tmp_path: Path) -> None:
    result = run_cli(["serve"], tmp_path, {"ADMIN_KEY": "too-short-key-123"}, timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Lowart listening" not in result.stdout
    assert "lowart: error:" in result.stderr
    assert "ADMIN_KEY" in result.stderr
    assert "20" in result.stderr
    assert "too-short-key-123" not in result.stderr


def _admin_key_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if "admin key" in line.lower()]


def test_generated_admin_key_is_printed_once(tmp_path: Path) -> None:
    # A first start that cannot listen generates no key: it would be shown for nothing.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        refused = run_cli(["serve"], tmp_path, {"ADMIN_KEY": None, "PORT": port}, timeout=30)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "cannot listen" in refused.stderr, refused.stderr
    assert _admin_key_lines(refused.stdout + refused.stderr) == [], refused.stdout

    with ServeProcess(tmp_path, {"ADMIN_KEY": None}) as first:
        lines = _admin_key_lines(first.stdout)
        assert len(lines) == 1, first.stdout
        found = re.findall(r"lw-[A-Za-z0-9_-]{43}", lines[0])
        assert len(found) == 1, lines[0]
        admin_key = found[0]
        with first.client(admin_key) as client:
            users = client.get("/admin/users")
        assert users.status_code == 200, users.text
        assert first.terminate() in STOPPED, first.output()
    assert len(_admin_key_lines(first.stdout)) == 1  # not again at shutdown

    with ServeProcess(tmp_path, {"ADMIN_KEY": None}) as second:
        with second.client(admin_key) as client:
            assert client.get("/admin/users").status_code == 200
        # A lost key is replaced, the running gateway follows, and the old one stops working.
        reset = run_cli(["admin-key", "--reset"], tmp_path, {"ADMIN_KEY": None})
        assert reset.returncode == 0, reset.stderr
        fresh = reset.stdout.strip()
        assert re.fullmatch(r"lw-[A-Za-z0-9_-]{43}", fresh) and fresh != admin_key, reset.stdout

        def admin_status(key: str) -> int:
            with second.client(key) as client:
                return client.get("/admin/users").status_code

        wait_for(lambda: admin_status(fresh) == 200, timeout=5)
        assert admin_status(admin_key) == 401
        assert second.terminate() in STOPPED, second.output()
    assert _admin_key_lines(second.stdout) == [], second.stdout
    assert not re.search(r"lw-[A-Za-z0-9_-]{43}", second.stdout), second.stdout
    plain = run_cli(["admin-key"], tmp_path, {"ADMIN_KEY": None})
    assert plain.returncode == 2 and "--reset" in plain.stderr, plain.stderr


# --- shutdown ------------------------------------------------------------------------------


def test_sigterm_flushes_queued_usage(tmp_path: Path) -> None:
    user_id = "u-" + _suffix()
    with ServeProcess(tmp_path, {"USAGE_FLUSH_MS": "600000"}) as server:
        key = server.create_user(user_id)
        with server.client(key) as client:
            for i in range(5):
                response = client.post(
                    "/v1/chat/completions", json=_chat("mock", f"message number {i} " * (i + 1))
                )
                assert response.status_code == 200, response.text
        # Nothing written yet: the flush interval is ten minutes.
        count = "SELECT COUNT(*) FROM usage_records WHERE user_id = ?"
        assert sql(server.db, count, (user_id,)) == [(0,)]
        assert server.terminate() in STOPPED, server.output()

    rows = sql(
        server.db,
        "SELECT prompt_tokens, completion_tokens FROM usage_records "
        "WHERE user_id = ? AND status = 'ok'",
        (user_id,),
    )
    assert len(rows) == 5
    assert sql(server.db, count, (user_id,)) == [(5,)]
    total = sum(prompt + completion for prompt, completion in rows)
    assert total > 0
    assert sql(server.db, "SELECT token_used FROM users WHERE user_id = ?", (user_id,)) == [
        (total,)
    ]

"""End to end: ``lowart rotate-master-key`` on SQLite (generated ``lowart.key``) and PostgreSQL
(``MASTER_KEY`` set), then the old key refused and the new one serving every secret (S3)."""

from __future__ import annotations

import asyncio
import secrets
import stat
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from lowart.security.secretbox import SecretBox, SecretDecryptError
from lowart.storage.sealed import MASTER_CHECK_CONTEXT, mcp_secret_context, vendor_key_context
from lowart.testing.openai_fake import FakeOpenAI
from tests.e2e.serve_process import (
    MASTER_KEY,
    OTHER_MASTER_KEY,
    STOPPED,
    ServeProcess,
    run_cli,
    sql,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "mcp_weather.py"
TOKEN = "mcp-canary-" + secrets.token_hex(8)


def _setup(server: ServeProcess, fake_url: str) -> tuple[str, str]:
    """A user, a vendor model with a key (on the fake's ``echo_headers``), an MCP server with a
    secret env and a Mock model that asks it for that env. Returns (user key, vendor key)."""
    user_key = server.create_user("u-" + secrets.token_hex(4))
    vendor_key = "sk-canary-" + secrets.token_hex(12)
    model = {
        "model_id": "vendor",
        "vendor_type": "OpenAI",
        "base_url": fake_url,
        "api_key": vendor_key,
        "upstream_model": "echo_headers",
    }
    assert server.admin("POST", "/admin/models", json=model).status_code == 201
    mcp = {
        "name": "weather",
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(EXAMPLE)],
        "env": {"SECRET_TOKEN": TOKEN},
    }
    response = server.admin("POST", "/admin/mcp/servers", json=mcp)
    assert response.status_code == 201, response.text
    bot = {
        "model_id": "env-bot",
        "vendor_type": "Mock",
        "params": {"tool_call": {"name": "env", "arguments": {"name": "SECRET_TOKEN"}}},
    }
    assert server.admin("POST", "/admin/models", json=bot).status_code == 201
    policy = {"tool_name": "env", "policy": "auto"}
    assert server.admin("POST", "/admin/tools/policies", json=policy).status_code == 201
    return user_key, vendor_key


def _assert_secrets_work(server: ServeProcess, user_key: str, vendor_key: str) -> None:
    """The vendor gets its key, and the MCP server its env: both decrypted under this key."""
    with server.client(user_key) as client:
        echoed = client.post(
            "/v1/chat/completions",
            json={"model": "vendor", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert echoed.status_code == 200, echoed.text
        content = echoed.json()["choices"][0]["message"]["content"]
        assert f"Bearer {vendor_key}" in content
        tool = client.post(
            "/v1/chat/completions",
            json={
                "model": "env-bot",
                "messages": [{"role": "user", "content": "token?"}],
                "tools": [{"type": "mcp", "server_label": "weather"}],
            },
        )
    assert tool.status_code == 200, tool.text
    assert TOKEN in tool.json()["choices"][0]["message"]["content"]


def _sealed_values(rows: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[str, str]]:
    """(table, key) → (stored value, its context), from (table, key, column, value) rows."""
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for table, key, column, value in rows:
        if value is None:
            continue
        if table == "models":
            context = vendor_key_context(key)
        elif table == "mcp_servers":
            context = mcp_secret_context(key, column)
        else:
            context = MASTER_CHECK_CONTEXT
        found[(f"{table}.{column}", key)] = (value, context)
    return found


_SEALED_SQL = """
SELECT 'models', model_id, 'api_key', api_key FROM models WHERE api_key IS NOT NULL
UNION ALL SELECT 'mcp_servers', name, 'env', env FROM mcp_servers
UNION ALL SELECT 'mcp_servers', name, 'headers', headers FROM mcp_servers
UNION ALL SELECT 'gateway_meta', key, 'value', value FROM gateway_meta
  WHERE key = 'master_key_check'
"""


def _assert_sealed_under(
    rows: list[tuple[Any, ...]], new_key: str, old_key: str, expected: int
) -> None:
    """Every stored secret opens under ``new_key`` and none under ``old_key``."""
    sealed = _sealed_values(rows)
    assert len(sealed) == expected, sealed.keys()
    new, old = SecretBox(new_key), SecretBox(old_key)
    for (where, key), (value, context) in sealed.items():
        assert value.startswith("enc:"), (where, key)
        new.decrypt(value, context)
        with pytest.raises(SecretDecryptError):
            old.decrypt(value, context)


def _assert_refused(tmp_path: Path, env: dict[str, str | None]) -> None:
    refused = run_cli(["serve"], tmp_path, env, timeout=30)
    assert refused.returncode != 0, refused.stdout
    assert "Lowart listening" not in refused.stdout
    assert "different master key" in refused.stderr, refused.stderr


def test_rotation_with_the_generated_key_file(
    tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    _, fake_url = fake_openai
    key_file = tmp_path / "lowart.key"
    env: dict[str, str | None] = {"MASTER_KEY": None}
    with ServeProcess(tmp_path, env) as first:
        user_key, vendor_key = _setup(first, fake_url)
        _assert_secrets_work(first, user_key, vendor_key)
        assert first.terminate() in STOPPED, first.output()
    old_key = key_file.read_text().strip()

    rotated = run_cli(["rotate-master-key", "--json"], tmp_path, env)
    assert rotated.returncode == 0, rotated.stderr
    assert '"models":1' in rotated.stdout and '"mcp_servers":1' in rotated.stdout
    new_key = key_file.read_text().strip()
    assert new_key != old_key and len(new_key) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not (tmp_path / "lowart.key.new").exists()
    for secret in (old_key, new_key, vendor_key, TOKEN):
        assert secret not in rotated.stdout + rotated.stderr
    # models.api_key, mcp_servers.env and the master-key check (the server has no headers)
    _assert_sealed_under(sql(tmp_path / "lowart.db", _SEALED_SQL), new_key, old_key, 3)
    # The admin audit log (docs/operations.md, "Admin audit log"): the CLI, the key as ***.
    audit = sql(tmp_path / "lowart.db", "SELECT actor, action, changes FROM admin_audit")
    assert [(a, act) for a, act, _ in audit if act == "master_key.rotate"] == [
        ("cli", "master_key.rotate")
    ]
    assert not [s for s in (old_key, new_key) if s in str(audit)]
    assert '"master_key":{"from":"***","to":"***"}' in str(audit)

    key_file.write_text(old_key + "\n")  # the old key no longer starts the gateway
    _assert_refused(tmp_path, env)
    key_file.write_text(new_key + "\n")
    with ServeProcess(tmp_path, env) as second:
        _assert_secrets_work(second, user_key, vendor_key)
        assert second.terminate() in STOPPED, second.output()


def test_a_secret_that_does_not_decrypt_changes_nothing(tmp_path: Path) -> None:
    env: dict[str, str | None] = {"MASTER_KEY": MASTER_KEY}
    added = run_cli(
        ["models", "add", "m", "--vendor", "mock", "--api-key", "sk-ok-1234"], tmp_path, env
    )
    assert added.returncode == 0, added.stderr
    broken = SecretBox(OTHER_MASTER_KEY).encrypt("sk-other", vendor_key_context("odd"))
    sql(
        tmp_path / "lowart.db",
        "INSERT INTO models (model_id, vendor_type, base_url, api_key) VALUES (?, ?, ?, ?)",
        ("odd", "Mock", "", broken),
    )
    before = sql(tmp_path / "lowart.db", _SEALED_SQL)
    new_key = "e2e-master-key-C-0123456789abcdefghijklmnop"
    failed = run_cli(["rotate-master-key"], tmp_path, {**env, "NEW_MASTER_KEY": new_key})
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "'odd'" in failed.stderr and "nothing was changed" in failed.stderr
    assert new_key not in failed.stderr
    assert sql(tmp_path / "lowart.db", _SEALED_SQL) == before


async def _pg_rows(url: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(_SEALED_SQL)]
    finally:
        await conn.close()


@pytest.mark.pg
def test_rotation_on_postgresql_with_master_key_set(
    tmp_path: Path, pg_url: str, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    _, fake_url = fake_openai
    old = {"DATABASE_URL": pg_url, "MASTER_KEY": MASTER_KEY}
    with ServeProcess(tmp_path, old) as first:
        user_key, vendor_key = _setup(first, fake_url)
        assert first.terminate() in STOPPED, first.output()

    key_path = tmp_path / "new.key"
    key_path.write_text(OTHER_MASTER_KEY + "\n")
    rotated = run_cli(
        ["rotate-master-key", "--json", "--new-key-file", str(key_path)], tmp_path, old
    )
    assert rotated.returncode == 0, rotated.stderr
    assert '"key_file":null' in rotated.stdout
    assert "MASTER_KEY" in rotated.stderr  # tells the operator to restart with the new key
    assert not (tmp_path / "lowart.key").exists()
    rows = asyncio.run(_pg_rows(pg_url))
    _assert_sealed_under(rows, OTHER_MASTER_KEY, MASTER_KEY, 3)

    _assert_refused(tmp_path, old)
    with ServeProcess(tmp_path, {**old, "MASTER_KEY": OTHER_MASTER_KEY}) as second:
        _assert_secrets_work(second, user_key, vendor_key)
        assert second.terminate() in STOPPED, second.output()

"""The ``lowart`` admin commands, run in-process on a fresh directory: every command round trips
with ``--json``, the tables people read, ``backup``, and ``doctor`` naming each broken piece."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lowart.cli import run
from lowart.testing.openai_fake import FakeOpenAI
from tests.e2e.serve_process import ADMIN_KEY, MASTER_KEY, OTHER_MASTER_KEY


class Cli:
    """``lowart`` with the settings of ``env`` (a test's own directory), in this process."""

    def __init__(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.env = {
            "DATABASE_URL": f"sqlite:///{tmp_path}/lowart.db",
            "LOWART_WORKDIR": str(tmp_path),
            "ADMIN_KEY": ADMIN_KEY,
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "console",
        }
        self._capsys = capsys

    def __call__(self, *argv: str, code: int = 0, **env: str) -> str:
        """Run one command; returns its stdout (its exit code must be ``code``)."""
        self._capsys.readouterr()
        returned = run(argv, {**self.env, **env})
        out, err = self._capsys.readouterr()
        assert returned == code, out + err
        assert "Traceback" not in err and "alembic" not in out + err, err
        self.err = err
        return out

    def json(self, *argv: str, code: int = 0, **env: str) -> Any:
        return json.loads(self(*argv, "--json", code=code, **env))


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(tmp_path, capsys)


def _closed_port() -> int:
    """A port with nothing listening on it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_admin_commands_round_trip(cli: Cli, tmp_path: Path) -> None:
    created = cli.json("users", "create", "alice", "--rpm", "60", "--models", "mock,m1")
    assert (created["user_id"], created["rpm_limit"], created["models"]) == (
        "alice",
        60,
        ["mock", "m1"],
    )
    first_key = created["api_key"]
    cli("users", "create", "alice", "--quota", "7", code=2)  # an existing user is left as it was
    assert cli.err.startswith("lowart: error: ") and "already exists" in cli.err
    assert cli.json("users", "show", "alice")["token_quota"] is None
    # The admin API's id rule holds here too: a trailing newline once went into the database.
    cli("users", "create", "eve\n", code=2)
    assert "user_id" in cli.err
    cli("users", "update", "nobody", "--rpm", "1", code=2)
    assert "nobody" in cli.err
    cli("keys", "create", "--user", "nobody", code=2)
    assert "nobody" in cli.err
    cli("users", "update", "alice", "--rpm", "-1", code=2)  # refused by the parser
    changed = cli.json("users", "update", "alice", "--quota", "500", "--rpm", "none", "--admin")
    assert (changed["token_quota"], changed["rpm_limit"], changed["is_admin"]) == (500, None, True)
    assert cli.json("users", "show", "alice") == changed
    disabled = cli.json("users", "disable", "alice")
    assert disabled["status"] == "disabled"
    assert cli.json("users", "update", "alice", "--status", "active")["status"] == "active"
    cli("users", "show", "nobody", code=2)
    assert "No user 'nobody'" in cli.err
    listed = {u["user_id"]: u for u in cli.json("users", "list")}
    assert set(listed) == {"admin", "alice"} and listed["alice"]["token_quota"] == 500
    table = cli("users", "list").splitlines()
    assert table[0].split() == [
        "USER_ID",
        "NAME",
        "IS_ADMIN",
        "STATUS",
        "RPM_LIMIT",
        "TOKEN_QUOTA",
        "TOKEN_USED",
    ]
    assert table[2].split()[:4] == ["alice", "-", "yes", "active"]
    assert first_key not in cli("users", "list") + cli("keys", "list", "--user", "alice")

    issued = cli.json("keys", "create", "--user", "alice", "--name", "ci")
    assert issued["key"].startswith(issued["prefix"]) and issued["key"] != first_key
    keys = {k["name"]: k for k in cli.json("keys", "list", "--user", "alice")}
    assert set(keys) == {"default", "ci"} and keys["ci"]["id"] == issued["id"]
    assert keys["ci"]["revoked_at"] is None
    assert cli.json("keys", "revoke", issued["id"]) == {"id": issued["id"], "revoked": True}
    revoked = {k["name"]: k for k in cli.json("keys", "list", "--user", "alice")}
    assert revoked["ci"]["revoked_at"] is not None
    assert revoked["default"]["revoked_at"] is not None  # by `users disable`
    cli("keys", "revoke", "key_missing", code=2)

    key_file = tmp_path / "vendor.key"
    key_file.write_text("sk-vendor-secret-9876\n")
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    added = cli.json(
        "models", "add", "m1", "--vendor", "openai", "--base-url", base_url,
        "--api-key-file", str(key_file), "--params", '{"organization": "org-1"}',
    )  # fmt: skip
    assert (added["vendor_type"], added["api_key_last4"], added["enabled"]) == (
        "OpenAI",
        "9876",
        True,
    )
    cli("models", "add", "m1", "--vendor", "openai", "--base-url", base_url, code=2)
    cli("models", "add", "m2", "--vendor", "mock", "--params", "[1]", code=2)  # not an object
    cli("models", "add", "m2", "--vendor", "bogus", code=2)
    assert "vendor_type must be one of" in cli.err
    cli("models", "add", "m3\n", "--vendor", "mock", code=2)
    assert "model_id" in cli.err
    edited = cli.json("models", "edit", "m1", "--upstream-model", "gpt-x", "--timeout", "30")
    assert (edited["upstream_model"], edited["timeout_s"], edited["base_url"]) == (
        "gpt-x",
        30.0,
        base_url,
    )
    assert cli.json("models", "disable", "m1")["enabled"] is False
    shown = cli.json("models", "show", "m1")
    assert (shown["enabled"], shown["api_key_set"]) == (False, True)
    assert "sk-vendor-secret" not in cli("models", "show", "m1") + cli("models", "list")
    assert cli.json("models", "fallbacks", "mock", "--set", "m1")["fallbacks"] == ["m1"]
    assert cli.json("models", "fallbacks", "mock") == {"model_id": "mock", "fallbacks": ["m1"]}
    cli("models", "fallbacks", "mock", "--set", "mock", code=2)
    assert "own fallback" in cli.err
    assert cli.json("models", "fallbacks", "mock", "--set", "")["fallbacks"] == []
    assert [r["requests"] for r in cli.json("usage", "--user", "alice")] == [0]
    cli("usage", "--since", "yesterday", code=2)

    copy = tmp_path / "backup.db"
    done = cli.json("backup", str(copy))
    assert done["bytes"] == copy.stat().st_size and copy.stat().st_mode & 0o077 == 0
    conn = sqlite3.connect(copy)
    try:
        users = {row[0] for row in conn.execute("SELECT user_id FROM users")}
        (journal,) = conn.execute("PRAGMA journal_mode").fetchone()
    finally:
        conn.close()
    assert users == {"admin", "alice"} and journal == "delete"
    cli("backup", str(copy), code=2)  # never overwritten
    assert "exists" in cli.err
    cli(
        "backup",
        str(copy),
        code=2,
        DATABASE_URL="postgresql://lw:pw@db.example/lowart",
        MASTER_KEY=MASTER_KEY,
    )
    assert "pg_dump" in cli.err and "pw" not in cli.err


def test_doctor_names_each_broken_piece(
    cli: Cli, tmp_path: Path, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    cli("doctor", code=1)  # nothing yet: no database
    assert "no database" in cli("doctor", code=1)
    cli("migrate")
    cli("models", "add", "up", "--vendor", "openai", "--base-url", fake_openai[1])
    cli("models", "add", "down", "--vendor", "openai", "--base-url", "https://127.0.0.1:1/v1")
    cli("models", "disable", "down")
    healthy = cli.json("doctor", "--timeout", "2")
    assert healthy["ok"] is True, healthy
    names = [check["name"] for check in healthy["checks"]]
    assert names[:4] == ["master key", "database", "migrations", "secrets"]
    assert {"model up", "model down", "model mock"} <= set(names)

    # Broken: another master key, an upstream gone, and Redis where nothing listens.
    cli(
        "models", "edit", "down", "--enabled", "--base-url", f"http://127.0.0.1:{_closed_port()}/v1"
    )
    redis_url = f"redis://127.0.0.1:{_closed_port()}/0"
    broken = cli.json(
        "doctor", "--timeout", "2", code=1, MASTER_KEY=OTHER_MASTER_KEY, REDIS_URL=redis_url
    )
    wrong = {c["name"]: c["detail"] for c in broken["checks"] if not c["ok"]}
    assert broken["ok"] is False
    assert set(wrong) == {"secrets", "model down", "redis"}, wrong
    assert "another key" in wrong["secrets"]
    assert "unreachable" in wrong["model down"]
    assert "cannot reach REDIS_URL" in wrong["redis"]
    table = cli("doctor", "--timeout", "2", code=1, MASTER_KEY=OTHER_MASTER_KEY)
    assert any(line.split()[:3] == ["secrets", "WRONG", "the"] for line in table.splitlines())

    # The generated lowart.key gone while the database holds secrets sealed under it.
    (tmp_path / "lowart.key").rename(tmp_path / "elsewhere.key")
    gone = cli.json("doctor", "--timeout", "2", code=1)
    assert [c["name"] for c in gone["checks"] if not c["ok"]] == ["master key", "model down"]
    assert "is missing" in gone["checks"][0]["detail"]


def test_teams_through_the_admin_operations(cli: Cli) -> None:
    cli.json("users", "create", "bob")
    made = cli.json("teams", "create", "ops", "--rpm-limit", "60", "--budget", "2.5")
    assert (made["team_id"], made["rpm_limit"], made["budget"]) == ("ops", 60, "2.500000")
    assert made["budget_period"] == "month" and made["members"] == []
    cli("teams", "create", "ops", code=2)
    assert "already exists" in cli.err
    assert cli.json("teams", "add-member", "ops", "bob")["members"] == ["bob"]
    assert cli.json("users", "show", "bob")["team_id"] == "ops"
    edited = cli.json("teams", "edit", "ops", "--rpm-limit", "none", "--models", "mock")
    assert (edited["rpm_limit"], edited["models"]) == (None, ["mock"])
    assert [t["team_id"] for t in cli.json("teams", "list")] == ["ops"]
    assert cli.json("teams", "remove-member", "ops", "bob")["members"] == []
    cli("teams", "remove-member", "ops", "bob", code=2)
    assert "not in team" in cli.err
    assert cli.json("teams", "delete", "ops") == {"team_id": "ops", "deleted": True}
    cli("teams", "show", "ops", code=2)
    assert "No team 'ops'" in cli.err

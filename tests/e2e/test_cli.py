"""End to end: the ``lowart`` command line on a fresh directory, then ``lowart serve`` on it."""

from __future__ import annotations

import csv
import io
import json
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from lowart import __version__
from lowart.storage.migrate import head_revision
from tests.conftest import wait_for
from tests.e2e.serve_process import STOPPED, ServeProcess, child_env, run_cli, sql

KEY_RE = re.compile(r"^lw-[A-Za-z0-9_-]{43}$")


def _json(stdout: str) -> Any:
    return json.loads(stdout)  # one JSON document, nothing else


def test_cli_then_serve(tmp_path: Path) -> None:
    # At LOG_LEVEL info too, alembic's lines stay out of a command's output.
    migrated = run_cli(["migrate", "--json"], tmp_path, {"LOG_LEVEL": "info"})
    assert migrated.returncode == 0, migrated.stderr
    assert "alembic" not in migrated.stdout + migrated.stderr, migrated.stderr
    assert _json(migrated.stdout) == {"revision": head_revision()}
    db = tmp_path / "lowart.db"
    assert db.exists()
    conn = sqlite3.connect(db)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {"users", "api_keys", "models", "model_fallbacks"} <= tables

    created = run_cli(["users", "create", "bob", "--rpm", "5", "--name", "Bob", "--json"], tmp_path)
    assert created.returncode == 0, created.stderr
    line = _json(created.stdout)
    assert line["user_id"] == "bob"
    bob_key = str(line["api_key"])
    assert KEY_RE.match(bob_key), bob_key
    assert sql(db, "SELECT name, rpm_limit FROM users WHERE user_id = 'bob'") == [("Bob", 5)]

    # An update changes what it names (refusals: tests/e2e/test_cli_commands.py, in-process).
    updated = run_cli(["users", "update", "bob", "--quota", "100", "--json"], tmp_path)
    assert updated.returncode == 0, updated.stderr
    shown = _json(updated.stdout)
    assert (shown["name"], shown["rpm_limit"], shown["token_quota"]) == ("Bob", 5, 100)
    assert sql(db, "SELECT name, rpm_limit, token_quota FROM users WHERE user_id = 'bob'") == [
        ("Bob", 5, 100)
    ]

    listed = run_cli(["users", "list", "--json"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    users = {row["user_id"]: row for row in _json(listed.stdout)}
    assert (users["bob"]["rpm_limit"], users["bob"]["token_quota"]) == (5, 100)
    assert users["bob"]["is_admin"] is False
    assert bob_key not in listed.stdout

    issued = run_cli(["keys", "create", "--user", "bob", "--name", "ci", "--json"], tmp_path)
    assert issued.returncode == 0, issued.stderr
    second_key = _json(issued.stdout)["key"]
    assert KEY_RE.match(second_key), issued.stdout
    assert second_key != bob_key

    added = run_cli(["models", "add", "m1", "--vendor", "mock"], tmp_path)
    assert added.returncode == 0, added.stderr
    models = run_cli(["models", "list", "--json"], tmp_path)
    assert models.returncode == 0, models.stderr
    by_id = {row["model_id"]: row for row in _json(models.stdout)}
    assert "m1" in by_id
    assert str(by_id["m1"]["vendor_type"]).lower() == "mock"

    version = subprocess.run(
        [sys.executable, "-m", "lowart", "--version"],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout

    # The server on the same directory accepts what the CLI created.
    with ServeProcess(tmp_path) as server:
        for key in (bob_key, second_key):
            with server.client(key) as client:
                response = client.get("/v1/models")
                assert response.status_code == 200, response.text
                ids = {model["id"] for model in response.json()["data"]}
                assert {"m1", "mock"} <= ids
        with server.client(bob_key) as client:
            chat = client.post(
                "/v1/chat/completions",
                json={"model": "m1", "messages": [{"role": "user", "content": "from the cli"}]},
            )
        assert chat.status_code == 200, chat.text
        assert chat.json()["choices"][0]["message"]["content"] == "from the cli"
        assert chat.headers["x-ratelimit-limit-requests"] == "5"
        with server.client(bob_key) as client:
            assert client.get("/admin/users").status_code == 403
        # An online backup, the server running on the database (WAL) meanwhile.
        copy = tmp_path / "copy.db"
        backed_up = run_cli(["backup", str(copy), "--json"], tmp_path)
        assert backed_up.returncode == 0, backed_up.stderr
        assert _json(backed_up.stdout)["bytes"] == copy.stat().st_size
        assert sql(copy, "SELECT COUNT(*) FROM api_keys WHERE user_id = 'bob'") == [(2,)]
        assert server.terminate() in STOPPED, server.output()

    # The usage report as CSV: the chat's tokens, under bob.
    usage = run_cli(["usage", "--group-by", "user", "--csv"], tmp_path)
    assert usage.returncode == 0, usage.stderr
    rows = {row["user"]: row for row in csv.DictReader(io.StringIO(usage.stdout))}
    tokens = chat.json()["usage"]
    assert rows["bob"]["requests"] == "1"
    assert int(rows["bob"]["total_tokens"]) == tokens["total_tokens"]
    assert int(rows["bob"]["prompt_tokens"]) == tokens["prompt_tokens"]


def test_mock_upstream_command_serves_the_fake(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "lowart"), "mock-upstream", "--port", str(port)],
        cwd=tmp_path,
        env=child_env(None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def answered() -> bool:
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/v1/chat/completions",
                    json={"model": "ok", "messages": [{"role": "user", "content": "ping"}]},
                )
            except httpx.ConnectError:
                return False
            assert response.json()["choices"][0]["message"]["content"] == "Hello from fake: ping"
            return True

        wait_for(answered, timeout=20)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        assert proc.stderr is not None
        proc.stderr.close()

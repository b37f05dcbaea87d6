"""``lowart deployments`` beside a running gateway: the rows it writes are picked up from the
database without a restart (docs/api.md, "Deployments")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import MASTER_KEY, Gateway, wait_for
from tests.e2e.serve_process import run_cli


def test_the_cli_manages_deployments_a_running_gateway_picks_up(
    make_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    gw = make_gateway()
    gw.add_model("cli-pool", "Mock")
    env = {"DATABASE_URL": gw.settings.database.url, "MASTER_KEY": MASTER_KEY}

    def cli(*args: str) -> tuple[int, Any]:
        done = run_cli(["deployments", *args, "--json"], tmp_path, env)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None

    add = ("add", "cli-pool", "second", "--vendor", "mock", "--api-key", "sk-cli-key-4321")
    code, added = cli(*add, "--weight", "2", "--rpm-cap", "100")
    assert code == 0 and "health" not in added  # this process's health would mean nothing
    assert (added["weight"], added["rpm_cap"], added["api_key_set"]) == (2.0, 100, True)
    [(stored,)] = gw.sql("SELECT api_key FROM deployments WHERE id = 'second'")
    assert "sk-cli-key-4321" not in stored  # sealed
    assert cli(*add)[0] == 2  # there already
    assert cli("add", "cli-pool", "default", "--vendor", "mock")[0] == 2  # the model's own
    assert cli("set", "cli-pool", "second", "--weight", "-1")[0] == 2

    client = gw.openai(gw.create_user())

    def both_served() -> bool:
        client.chat.completions.create(
            model="cli-pool", messages=[{"role": "user", "content": "x"}]
        )
        gw.flush()
        rows = gw.sql(
            "SELECT DISTINCT deployment FROM usage_records WHERE served_model = 'cli-pool'"
        )
        return {r[0] for r in rows} == {"default", "second"}

    wait_for(both_served, timeout=10)  # the row is picked up without a restart
    code, changed = cli("set", "cli-pool", "second", "--no-enabled", "--weight", "0.5")
    assert code == 0 and (changed["enabled"], changed["weight"]) == (False, 0.5)
    code, listed_by_cli = cli("list", "cli-pool")
    assert code == 0 and [d["id"] for d in listed_by_cli] == ["default", "second"]
    assert listed_by_cli[1] == changed
    assert cli("remove", "cli-pool", "second") == (
        0,
        {"model_id": "cli-pool", "id": "second", "deleted": True},
    )
    audited = gw.sql("SELECT actor, action, target FROM admin_audit WHERE actor = 'cli'")
    assert [tuple(row) for row in audited] == [
        ("cli", f"deployments.{action}", "cli-pool/second")
        for action in ("create", "update", "delete")
    ]
    listed = gw.admin("GET", "/admin/models/cli-pool/deployments").json()["data"]
    assert [d["id"] for d in listed] == ["default"]

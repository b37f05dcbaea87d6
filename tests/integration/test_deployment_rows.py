"""Deployments as rows: added by ``lowart deployments`` beside a running gateway and picked up
from the database, and their keys re-sealed by a master-key rotation (docs/api.md,
"Deployments")."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.cli import run
from lowart.limits.redis import RedisTokenWindow
from lowart.security.secretbox import SecretBox
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.models import ModelRepository
from lowart.storage.sealed import Sealed, context_of, deployment_key_context, reseal_all
from tests.conftest import ADMIN_KEY, MASTER_KEY, Gateway, wait_for
from tests.integration.test_redis_quota import resp


def test_the_cli_manages_deployments_a_running_gateway_picks_up(
    make_gateway: Callable[..., Gateway],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gw = make_gateway()
    gw.add_model("cli-pool", "Mock")
    for name, value in {
        "DATABASE_URL": gw.settings.database.url,
        "MASTER_KEY": MASTER_KEY,
        "ADMIN_KEY": ADMIN_KEY,
        "LOWART_WORKDIR": str(tmp_path),
        "LOG_LEVEL": "warning",
    }.items():
        monkeypatch.setenv(name, value)

    def cli(*args: str) -> tuple[int, list[dict[str, object]]]:
        code = run(["deployments", *args])
        lines = capsys.readouterr().out.splitlines()
        return code, [json.loads(line) for line in lines if line.strip()]

    add = ("add", "cli-pool", "second", "--vendor", "mock", "--api-key", "sk-cli-key-4321")
    code, [added] = cli(*add, "--weight", "2", "--rpm-cap", "100")
    assert code == 0 and (added["weight"], added["rpm_cap"], added["api_key_set"]) == (
        2.0,
        100,
        True,
    )
    [(stored,)] = gw.sql("SELECT api_key FROM deployments WHERE id = 'second'")
    assert "sk-cli-key-4321" not in stored  # sealed
    assert cli(*add)[0] == 2  # there already
    assert cli("add", "cli-pool", "default", "--vendor", "mock")[0] == 2  # the model's own
    assert cli("set", "cli-pool", "second", "--weight", "-1")[0] == 2
    assert cli("list", "no-such-model")[0] == 2

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
    code, [changed] = cli("set", "cli-pool", "second", "--no-enabled", "--weight", "0.5")
    assert code == 0 and (changed["enabled"], changed["weight"]) == (False, 0.5)
    assert cli("list", "cli-pool") == (0, [changed])
    assert cli("remove", "cli-pool", "second") == (0, [])
    assert cli("remove", "cli-pool", "second")[0] == 2
    assert (
        gw.admin("GET", "/admin/models/cli-pool/deployments").json()["data"][0]["id"] == "default"
    )


async def test_a_rotation_reseals_deployment_keys_with_their_own_context(
    engine: AsyncEngine,
) -> None:
    box = SecretBox(MASTER_KEY)
    await ModelRepository(engine).create("rot", {"vendor_type": "OpenAI", "base_url": "http://u"})
    sealed = box.encrypt("sk-rotated", deployment_key_context("rot", "east"))
    fields = {"vendor_type": "OpenAI", "base_url": "http://u", "api_key": sealed}
    repo = DeploymentRepository(engine)
    await repo.create("rot", "east", fields)
    new_box, seen = SecretBox("another-master-key-0123456789abcdefghij"), []

    def reseal(item: Sealed) -> str:
        seen.append(item)
        return new_box.encrypt(box.decrypt(item.value, context_of(item)), context_of(item))

    counts = await reseal_all(engine, reseal, set())
    assert counts["deployments"] == 1
    assert [(s.table, s.key) for s in seen] == [("deployments", "rot/east")]
    row = await repo.get("rot", "east")
    assert row is not None and row.api_key is not None
    assert new_box.decrypt(row.api_key, deployment_key_context("rot", "east")) == "sk-rotated"
    assert await ModelRepository(engine).delete("rot")
    assert await repo.list_for("rot") == []  # a model's deployments go with it


@pytest.mark.redis
async def test_token_windows_are_shared_through_redis() -> None:
    """Two instances count a deployment's tokens into one window (an hour here, so that no
    window turns during the test; the turning is the memory window's test's, same arithmetic)."""
    prefix = f"lowart:test:{secrets.token_hex(6)}:"
    async with resp() as one, resp() as two:
        first = RedisTokenWindow(one, 3600, prefix=prefix)
        second = RedisTokenWindow(two, 3600, prefix=prefix)  # another instance
        assert [await first.add("m/b", 40), await second.add("m/b", 50)] == [40, 90]
        assert (await first.add("m/b", 0), await second.add("other", 0)) == (90, 0)

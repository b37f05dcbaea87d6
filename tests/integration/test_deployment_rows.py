"""Deployments as rows: their keys re-sealed by a master-key rotation, their token windows
shared through Redis (docs/api.md, "Deployments")."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.limits.redis import RedisTokenWindow
from lowart.security.secretbox import SecretBox
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.models import ModelRepository
from lowart.storage.sealed import Sealed, context_of, deployment_key_context, reseal_all
from tests.conftest import MASTER_KEY
from tests.integration.test_redis_quota import resp


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

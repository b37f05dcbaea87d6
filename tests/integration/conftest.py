"""Fixtures shared by the storage suites: each runs on SQLite and on the machine's PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.storage.engine import create_engine
from lowart.storage.migrate import migrate


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database under test. Sync, because ``pg_url`` runs its own event loop."""
    if request.param == "pg":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path}/t.db"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated engine on a fresh database, per test."""
    eng = create_engine(database_url)
    await migrate(eng)
    try:
        yield eng
    finally:
        await eng.dispose()

"""``lowart doctor``: checks the master key, the database, its migrations, the stored secrets,
Redis and every model's upstream, and says what is wrong in words; exit code 1 if anything is
(docs/operations.md, "lowart doctor")."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import asdict

from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.cli import checks
from lowart.cli.checks import Check
from lowart.cli.command import Commands, command
from lowart.cli.output import as_json, table, write
from lowart.settings import Settings
from lowart.storage.backup import sqlite_file
from lowart.storage.engine import create_engine
from lowart.storage.models import ModelRepository

WRONG = 1


async def _on_database(engine: AsyncEngine, key: str | None, timeout_s: float) -> list[Check]:
    """The checks that read the database, once it answers and is migrated."""
    reached = await checks.database(engine, timeout_s)
    if not reached.ok:
        return [reached]
    migrated = await checks.migrations(engine)
    found = [reached, migrated]
    if not migrated.ok:
        return found
    if key is not None:
        found.append(await checks.secrets(engine, key))
    models = await ModelRepository(engine).list_models()
    found += await asyncio.gather(*(checks.upstream(m, timeout_s) for m in models))
    return found


async def diagnose(settings: Settings, timeout_s: float) -> list[Check]:
    """Every check, in order."""
    key_check, key = checks.master_key(settings)
    found = [key_check]
    database = sqlite_file(settings.database.url)
    if database is not None and not database.exists():
        detail = f"no database at {database}: run lowart migrate (or lowart serve)"
        found.append(Check("database", False, detail))
    else:
        engine = create_engine(
            settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
        )
        try:
            found += await _on_database(engine, key, timeout_s)
        finally:
            await engine.dispose()
    if settings.redis.url is not None:
        found.append(await checks.redis(settings.redis.url, timeout_s))
    return found


async def _doctor(settings: Settings, args: argparse.Namespace) -> int:
    found = await diagnose(settings, args.timeout)
    healthy = all(check.ok for check in found)
    if args.json:
        write(as_json({"ok": healthy, "checks": [asdict(check) for check in found]}))
    else:
        rows = [{**asdict(c), "status": "ok" if c.ok else "WRONG"} for c in found]
        write(table(rows, ("name", "status", "detail")))
    return 0 if healthy else WRONG


def register(commands: Commands) -> None:
    doctor = command(
        commands,
        "doctor",
        "check the master key, database, migrations, Redis and upstreams; say what is wrong",
        _doctor,
    )
    doctor.add_argument(
        "--timeout", type=float, default=3.0, help="seconds each connection may take (3)"
    )

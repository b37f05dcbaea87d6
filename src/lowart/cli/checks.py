"""What ``lowart doctor`` checks, one function per piece: the master key, the database, its
migrations, that the key opens the stored secrets, Redis, and each model's upstream. Each says
what is wrong in words; none writes anything (docs/operations.md, "lowart doctor")."""

from __future__ import annotations

import asyncio
import os
import stat
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.errors import LowartError, StartupError
from lowart.limits.redis import connect
from lowart.security.secretbox import SecretBox
from lowart.services.master_key import opens_secrets, read_key_file
from lowart.settings import Settings
from lowart.storage.backup import sqlite_file
from lowart.storage.meta import MetaRepository
from lowart.storage.migrate import current_revision, head_revision
from lowart.storage.rows import ModelRow

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def master_key(settings: Settings) -> tuple[Check, str | None]:
    """Where the master key comes from, and the key (None: there is none to use)."""
    name = "master key"
    if settings.security.master_key:
        return Check(name, True, "from MASTER_KEY"), settings.security.master_key
    if not settings.database.is_sqlite:
        return Check(name, False, "MASTER_KEY is not set; PostgreSQL needs it"), None
    return _key_file(settings)


def _key_file(settings: Settings) -> tuple[Check, str | None]:
    """The generated ``lowart.key`` of a SQLite database."""
    name = "master key"
    path = settings.key_file
    if not path.exists():
        database = sqlite_file(settings.database.url)
        if database is not None and database.exists():
            detail = (
                f"{path} is missing: serving would generate a new key, which cannot open the "
                "vendor keys stored with the old one; restore the file or set MASTER_KEY"
            )
            return Check(name, False, detail), None
        return Check(name, True, f"none yet: {path} is generated at the first start"), None
    try:
        key = read_key_file(path)
    except StartupError as exc:
        return Check(name, False, str(exc)), None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return Check(name, False, f"{path} is readable by others (mode {mode:o}): chmod 600"), key
    return Check(name, True, f"from {path}"), key


async def database(engine: AsyncEngine, timeout_s: float) -> Check:
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except TimeoutError:
        return Check("database", False, f"no answer within {timeout_s:g} s")
    except (OSError, SQLAlchemyError, LowartError) as exc:
        return Check("database", False, f"cannot connect: {_reason(exc)}")
    return Check("database", True, f"connected ({engine.dialect.name})")


async def migrations(engine: AsyncEngine) -> Check:
    current, head = await current_revision(engine), head_revision()
    if current == head:
        return Check("migrations", True, f"at head ({head})")
    if current is None:
        return Check("migrations", False, "the database was never migrated: run lowart migrate")
    return Check(
        "migrations",
        False,
        f"at {current}, this release expects {head}: run lowart migrate "
        "(or this release is older than the database's)",
    )


async def secrets(engine: AsyncEngine, key: str) -> Check:
    opens = await opens_secrets(MetaRepository(engine), SecretBox(key))
    if opens is None:
        return Check("secrets", True, "none stored yet")
    if not opens:
        return Check(
            "secrets",
            False,
            "the master key does not open the stored secrets: they were encrypted under "
            "another key (restore the right lowart.key or MASTER_KEY)",
        )
    return Check("secrets", True, "the master key opens them")


async def redis(url: str, timeout_s: float) -> Check:
    client = connect(url, timeout_s, max_connections=1)
    try:
        async with asyncio.timeout(timeout_s):
            await client.ping()
    except TimeoutError:
        return Check("redis", False, f"no answer within {timeout_s:g} s")
    except (OSError, RedisError) as exc:
        return Check("redis", False, f"cannot reach REDIS_URL: {_reason(exc)}")
    finally:
        await client.aclose()
    return Check("redis", True, "answers")


async def upstream(model: ModelRow, timeout_s: float) -> Check:
    """Whether the model's upstream accepts a TCP connection (no request is sent)."""
    name = f"model {model.model_id}"
    parts = urlsplit(model.base_url)
    if not model.enabled:
        return Check(name, True, "disabled")
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return Check(name, True, "no upstream to reach")
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    where = f"{parts.hostname}:{port}"
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(parts.hostname, port)
    except TimeoutError:
        return Check(name, False, f"upstream {where} did not answer within {timeout_s:g} s")
    except OSError as exc:
        return Check(name, False, f"upstream {where} is unreachable: {_reason(exc)}")
    writer.close()
    await writer.wait_closed()
    return Check(name, True, f"upstream {where} reachable")


def _reason(exc: BaseException) -> str:
    """An exception in words, with no URL in it (a URL may hold a password)."""
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno).lower()
    text = str(exc).split("\n", 1)[0]
    return text if "://" not in text else type(exc).__name__

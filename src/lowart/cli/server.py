"""``lowart serve``, ``migrate``, ``admin-key``, ``rotate-master-key`` and ``mock-upstream``:
running the gateway and its start-up work."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import uvicorn

from lowart import key_rotation
from lowart.app import BOOTSTRAP_ADMIN
from lowart.catalog.accounts import reset_admin_key
from lowart.cli.command import Commands, blocking, command, services
from lowart.cli.output import emit_record, write
from lowart.errors import StartupError
from lowart.serve import serve
from lowart.settings import Settings
from lowart.storage.audit_states import KEY
from lowart.storage.audit_trail import CLI
from lowart.storage.engine import create_engine
from lowart.storage.migrate import current_revision, migrate
from lowart.testing.openai_fake import FakeOpenAI


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    return serve(settings)


async def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    engine = create_engine(
        settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
    )
    try:
        await migrate(engine)
        revision = await current_revision(engine)
    finally:
        await engine.dispose()
    emit_record({"revision": revision}, args.json)


async def _admin_key(settings: Settings, args: argparse.Namespace) -> None:
    if not args.reset:
        raise StartupError(
            "the admin key is stored only as a hash and cannot be shown again; "
            "`lowart admin-key --reset` revokes it and prints a new one"
        )
    async with (
        services(settings) as built,
        built.audit.write(CLI, "keys.reset_admin", KEY, None) as change,
    ):
        row, key = await reset_admin_key(built.users, BOOTSTRAP_ADMIN)
        change.target = row.id
    if args.json:
        emit_record({"user_id": BOOTSTRAP_ADMIN, "api_key": key}, json=True)
    else:
        write(key + "\n")
    sys.stderr.write(f"The earlier keys of user {BOOTSTRAP_ADMIN!r} are revoked.\n")


async def _rotate_master_key(settings: Settings, args: argparse.Namespace) -> None:
    rotation = key_rotation.plan(settings, args.new_key_file, os.environ)
    counts = await key_rotation.rotate(settings, rotation)
    key_file = str(rotation.key_file) if rotation.key_file else None
    emit_record({"rotated": counts, "key_file": key_file}, args.json)
    if key_file is None:
        sys.stderr.write("Restart every instance with MASTER_KEY set to the new key.\n")
    else:
        sys.stderr.write(f"The new key is in {key_file}; restart the gateway.\n")


def _mock_upstream(settings: Settings, args: argparse.Namespace) -> int:
    """Serve the fake OpenAI upstream from ``lowart.testing``."""
    uvicorn.run(FakeOpenAI(), host=args.host, port=args.port, log_level="warning")
    return 0


def register(commands: Commands) -> None:
    blocking(commands, "serve", "serve the gateway (settings from the environment)", _serve)
    command(commands, "migrate", "bring the database's schema to this release's", _migrate)
    admin_key = command(
        commands,
        "admin-key",
        "with --reset: revoke the bootstrap admin's keys and print a new one",
        _admin_key,
    )
    admin_key.add_argument("--reset", action="store_true", help="issue a new admin key")
    rotate = command(
        commands,
        "rotate-master-key",
        "re-encrypt every stored secret under a new master key (stop the gateway first)",
        _rotate_master_key,
    )
    rotate.description = (
        "The new key is read from --new-key-file or NEW_MASTER_KEY (never an argument). "
        "With the generated lowart.key and no new key given, a new one is generated and "
        "lowart.key is replaced."
    )
    rotate.add_argument("--new-key-file", type=Path, help="a file holding the new master key")
    mock = blocking(
        commands, "mock-upstream", "run the fake OpenAI upstream (for tests)", _mock_upstream
    )
    mock.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    mock.add_argument("--port", type=int, default=9100, help="the port to listen on")

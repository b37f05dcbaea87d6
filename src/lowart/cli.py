"""The ``lowart`` command: serve, migrate, users, keys, models, deployments and mock-upstream."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import uvicorn

from lowart import __version__, key_rotation
from lowart.app import BOOTSTRAP_ADMIN, announce_admin_key, start_services
from lowart.catalog.accounts import create_user, issue_key, reset_admin_key
from lowart.errors import LowartError, StartupError
from lowart.identifiers import identifier
from lowart.model_entry import DEFAULT_DEPLOYMENT
from lowart.providers.registry import VendorTable
from lowart.security.ssrf import DestinationPolicy
from lowart.serve import serve
from lowart.services import Services
from lowart.settings import Settings
from lowart.storage.engine import create_engine
from lowart.storage.migrate import migrate
from lowart.storage.rows import DeploymentRow, UserRow
from lowart.storage.sealed import deployment_key_context, vendor_key_context
from lowart.telemetry.logging import configure_logging
from lowart.testing.openai_fake import FakeOpenAI

UNLIMITED = "none"  # a limit option's value for no limit


def _out(value: object) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


@asynccontextmanager
async def _services(settings: Settings) -> AsyncIterator[Services]:
    services, admin_key = await start_services(settings)
    if admin_key is not None:  # stderr: the command's own output stays machine-readable
        announce_admin_key(admin_key, sys.stderr)
    try:
        yield services
    finally:
        await services.close()


async def _migrate(settings: Settings) -> None:
    engine = create_engine(
        settings.database.url, busy_timeout_ms=settings.database.sqlite_busy_timeout_ms
    )
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def _user_json(user: UserRow) -> dict[str, Any]:
    return {
        "user_id": user.user_id,
        "name": user.name,
        "is_admin": user.is_admin,
        "status": user.status,
        "rpm_limit": user.rpm_limit,
        "token_quota": user.token_quota,
        "token_used": user.token_used,
    }


def _user_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Only the options given: an option left out never changes a field."""
    given = {
        "name": args.name,
        "rpm_limit": args.rpm,
        "token_quota": args.quota,
        "is_admin": args.admin,
    }
    return {
        name: None if value == UNLIMITED else value
        for name, value in given.items()
        if value is not None
    }


async def _users(settings: Settings, args: argparse.Namespace) -> None:
    if args.action != "list":
        identifier(args.user_id, "user_id")
    async with _services(settings) as services:
        if args.action == "list":
            for user in await services.users.list_users():
                _out(_user_json(user))
        elif args.action == "create":
            _, key = await create_user(services.users, args.user_id, _user_fields(args))
            _out({"user_id": args.user_id, "api_key": key})
        else:
            row = await services.users.update(args.user_id, _user_fields(args))
            if row is None:
                raise StartupError(f"no user {args.user_id!r}")
            _out(_user_json(row))


async def _admin_key(settings: Settings, args: argparse.Namespace) -> None:
    if not args.reset:
        raise StartupError(
            "the admin key is stored only as a hash and cannot be shown again; "
            "`lowart admin-key --reset` revokes it and prints a new one"
        )
    async with _services(settings) as services:
        key = await reset_admin_key(services.users, BOOTSTRAP_ADMIN)
        sys.stdout.write(key + "\n")
        sys.stderr.write(f"The earlier keys of user {BOOTSTRAP_ADMIN!r} are revoked.\n")


async def _keys(settings: Settings, args: argparse.Namespace) -> None:
    async with _services(settings) as services:
        if await services.users.get(args.user) is None:
            raise StartupError(f"no user {args.user!r}")
        row, key = await issue_key(services.users, args.user, args.name)
        sys.stdout.write(key + "\n")
        sys.stderr.write(f"key id {row.id} for user {args.user}\n")


async def _models(settings: Settings, args: argparse.Namespace) -> None:
    if args.action != "list":
        identifier(args.model_id, "model_id")
    async with _services(settings) as services:
        if args.action == "list":
            for model in await services.models.list_models():
                _out(
                    {
                        "model_id": model.model_id,
                        "vendor_type": model.vendor_type,
                        "base_url": model.base_url,
                        "upstream_model": model.upstream_model,
                        "enabled": model.enabled,
                        "api_key_set": bool(model.api_key),
                    }
                )
            return
        vendor = services.vendors.vendor(args.vendor)
        fields: dict[str, Any] = {
            "vendor_type": vendor.name,
            "base_url": await vendor.check_base_url(
                args.base_url or "", DestinationPolicy(settings.upstream.allow_private)
            ),
            "upstream_model": args.upstream_model,
            "params": msgspec.json.decode(args.params) if args.params else None,
            "timeout_s": args.timeout,
        }
        vendor.check_params(fields["params"])
        if args.api_key:
            fields["api_key"] = services.box.encrypt(
                args.api_key, vendor_key_context(args.model_id)
            )
        if await services.models.create(args.model_id, fields) is None:
            raise StartupError(f"model {args.model_id!r} already exists")
        _out({"model_id": args.model_id, "vendor_type": vendor.name})


def _deployment_json(row: DeploymentRow) -> dict[str, Any]:
    return {
        "model_id": row.model_id,
        "id": row.id,
        "vendor_type": row.vendor_type,
        "base_url": row.base_url,
        "upstream_model": row.upstream_model,
        "weight": row.weight,
        "enabled": row.enabled,
        "rpm_cap": row.rpm_cap,
        "tpm_cap": row.tpm_cap,
        "api_key_set": bool(row.api_key),
    }


async def _deployment_fields(
    settings: Settings, services: Services, args: argparse.Namespace
) -> dict[str, Any]:
    """What ``deployments add`` stores: checked as the admin API checks it, the key sealed."""
    vendor = services.vendors.vendor(args.vendor)
    policy = DestinationPolicy(settings.upstream.allow_private)
    fields: dict[str, Any] = {
        "vendor_type": vendor.name,
        "base_url": await vendor.check_base_url(args.base_url or "", policy),
        "upstream_model": args.upstream_model,
        "params": msgspec.json.decode(args.params) if args.params else None,
    }
    vendor.check_params(fields["params"])
    if args.api_key:
        context = deployment_key_context(args.model_id, args.deployment_id)
        fields["api_key"] = services.box.encrypt(args.api_key, context)
    return fields


def _deployment_settings(args: argparse.Namespace) -> dict[str, Any]:
    """``--weight``, ``--rpm-cap``, ``--tpm-cap`` and ``--enabled``, as given."""
    given = {"weight": args.weight, "rpm_cap": args.rpm_cap, "tpm_cap": args.tpm_cap}
    fields = {k: v for k, v in given.items() if v is not None}
    if fields.get("weight", 0) < 0 or min(fields.get("rpm_cap", 1), fields.get("tpm_cap", 1)) < 1:
        raise StartupError("the weight must be 0 or more, and a cap at least 1")
    if args.enabled is not None:
        fields["enabled"] = args.enabled
    return fields


async def _deployments(settings: Settings, args: argparse.Namespace) -> None:
    identifier(args.model_id, "model_id")
    async with _services(settings) as services:
        if await services.models.get(args.model_id) is None:
            raise StartupError(f"no model {args.model_id!r}")
        repo = services.deployments
        if args.action == "list":
            for listed in await repo.list_for(args.model_id):
                _out(_deployment_json(listed))
            return
        if identifier(args.deployment_id, "id") == DEFAULT_DEPLOYMENT:
            raise StartupError("the default deployment is the model's own: edit the model")
        if args.action == "remove":
            if not await repo.delete(args.model_id, args.deployment_id):
                raise StartupError(f"no deployment {args.deployment_id!r}")
            return
        fields = _deployment_settings(args)
        row: DeploymentRow | None
        if args.action == "add":
            fields |= await _deployment_fields(settings, services, args)
            row = await repo.create(args.model_id, args.deployment_id, fields)
        else:
            row = await repo.update(args.model_id, args.deployment_id, fields)
        if row is None:
            raise StartupError(f"deployment {args.deployment_id!r}: already there, or none")
        _out(_deployment_json(row))


def _deployments_parser(sub: Any) -> None:
    deployments = sub.add_parser(
        "deployments", help="manage a model's further deployments (live health: the admin API)"
    ).add_subparsers(dest="action", required=True)
    deployments.add_parser("list", help="list a model's deployments").add_argument("model_id")
    add = deployments.add_parser("add", help="add a deployment to a model")
    change = deployments.add_parser("set", help="change a deployment's weight, caps or state")
    remove = deployments.add_parser("remove", help="delete a deployment")
    for command in (add, change, remove):
        command.add_argument("model_id")
        command.add_argument("deployment_id")
    add.add_argument("--vendor", required=True, help=", ".join(VendorTable().names()))
    add.add_argument("--base-url")
    add.add_argument("--api-key")
    add.add_argument("--upstream-model")
    add.add_argument("--params", help="JSON object")
    for command in (add, change):
        command.add_argument("--weight", type=float)
        command.add_argument("--rpm-cap", type=int)
        command.add_argument("--tpm-cap", type=int)
        command.add_argument("--enabled", action=argparse.BooleanOptionalAction)


async def _rotate_master_key(settings: Settings, args: argparse.Namespace) -> None:
    rotation = key_rotation.plan(settings, args.new_key_file, os.environ)
    counts = await key_rotation.rotate(settings, rotation)
    key_file = str(rotation.key_file) if rotation.key_file else None
    _out({"rotated": counts, "key_file": key_file})
    if key_file is None:
        sys.stderr.write("Restart every instance with MASTER_KEY set to the new key.\n")
    else:
        sys.stderr.write(f"The new key is in {key_file}; restart the gateway.\n")


def _limit(value: str) -> int | str:
    """A limit option: a count, or ``none`` for no limit."""
    if value.strip().lower() == UNLIMITED:
        return UNLIMITED
    try:
        count = int(value)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a count of 0 or more, or none: {value!r}")
    return count


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lowart", description="Lowart LLM API gateway")
    parser.add_argument("--version", action="version", version=f"lowart {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="serve the gateway (settings from the environment)")
    sub.add_parser("migrate", help="run the database migrations")
    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="action", required=True
    )
    create = users.add_parser("create", help="create a user and print its first key")
    update = users.add_parser("update", help="change the given fields of an existing user")
    for command in (create, update):
        command.add_argument("user_id")
        command.add_argument("--name")
        command.add_argument("--rpm", type=_limit, help="requests per minute, or none")
        command.add_argument("--quota", type=_limit, help="tokens, or none")
    create.add_argument("--admin", action="store_true", default=None, help="an admin")
    update.add_argument(
        "--admin", action=argparse.BooleanOptionalAction, help="make it an admin, or not"
    )
    users.add_parser("list", help="list users")
    admin_key = sub.add_parser(
        "admin-key",
        help="with --reset: revoke the bootstrap admin's keys and print a new one",
    )
    admin_key.add_argument("--reset", action="store_true", help="issue a new admin key")
    keys = sub.add_parser("keys", help="manage keys").add_subparsers(dest="action", required=True)
    key_create = keys.add_parser("create", help="create a key and print it")
    key_create.add_argument("--user", required=True)
    key_create.add_argument("--name")
    models = sub.add_parser("models", help="manage models").add_subparsers(
        dest="action", required=True
    )
    add = models.add_parser("add", help="register a model")
    add.add_argument("model_id")
    add.add_argument("--vendor", required=True, help=", ".join(VendorTable().names()))
    add.add_argument("--base-url")
    add.add_argument("--api-key")
    add.add_argument("--upstream-model")
    add.add_argument("--params", help="JSON object")
    add.add_argument("--timeout", type=float, default=600.0)
    models.add_parser("list", help="list models")
    _deployments_parser(sub)
    rotate = sub.add_parser(
        "rotate-master-key",
        help="re-encrypt every stored secret under a new master key (stop the gateway first)",
        description=(
            "The new key is read from --new-key-file or NEW_MASTER_KEY (never an argument). "
            "With the generated lowart.key and no new key given, a new one is generated and "
            "lowart.key is replaced."
        ),
    )
    rotate.add_argument("--new-key-file", type=Path, help="a file holding the new master key")
    mock = sub.add_parser("mock-upstream", help="run the fake OpenAI upstream (for tests)")
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--port", type=int, default=9100)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run one command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log.level, settings.log.format)
        if args.command == "serve":
            return serve(settings)
        if args.command == "mock-upstream":
            return run_mock_upstream(args.host, args.port)
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        else:
            handler = {
                "users": _users,
                "admin-key": _admin_key,
                "keys": _keys,
                "models": _models,
                "deployments": _deployments,
                "rotate-master-key": _rotate_master_key,
            }[args.command]
            asyncio.run(handler(settings, args))
    except (StartupError, LowartError) as exc:
        sys.stderr.write(f"lowart: error: {exc}\n")
        return 2
    return 0


def run_mock_upstream(host: str, port: int) -> int:
    """Serve the fake OpenAI upstream from ``lowart.testing``."""
    uvicorn.run(FakeOpenAI(), host=host, port=port, log_level="warning")
    return 0


def main() -> None:
    """Console script entry point."""
    sys.exit(run())

"""``lowart users``: create, update, disable, list and show users, through the admin API's own
operations (``api/admin_users.py``) and its validation (``api/bodies.py``)."""

from __future__ import annotations

import argparse
from typing import Any

from lowart.api.admin_users import user_json
from lowart.api.bodies import UserPatch, UserQuota, convert, given
from lowart.cli.command import Commands, admin, chosen, command, group, limit
from lowart.cli.output import emit_record, emit_rows
from lowart.settings import Settings
from lowart.storage.audit_states import USER
from lowart.storage.audit_trail import CLI

COLUMNS = ("user_id", "name", "is_admin", "status", "rpm_limit", "token_quota", "token_used")


def _models(value: str) -> list[str] | str:
    return "none" if value.strip().lower() == "none" else [m for m in value.split(",") if m]


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    return chosen(
        {
            "name": args.name,
            "rpm_limit": args.rpm,
            "token_quota": args.quota,
            "models": args.models,
        }
    )


def _with_admin(fields: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    return fields if args.admin is None else {**fields, "is_admin": args.admin}


async def _create(settings: Settings, args: argparse.Namespace) -> None:
    checked = given(convert({"user_id": args.user_id, **_fields(args)}, UserQuota))
    user_id = checked.pop("user_id")
    async with admin(settings) as ops, ops.audit.write(CLI, "users.create", USER, user_id):
        row, key = await ops.users.create(user_id, _with_admin(checked, args))
    emit_record({**user_json(row), "api_key": key}, args.json)


async def _update(settings: Settings, args: argparse.Namespace) -> None:
    fields = given(convert({**_fields(args), **chosen({"status": args.status})}, UserPatch))
    async with admin(settings) as ops, ops.audit.write(CLI, "users.update", USER, args.user_id):
        row = await ops.users.change(args.user_id, _with_admin(fields, args))
    emit_record(user_json(row), args.json)


async def _disable(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops, ops.audit.write(CLI, "users.disable", USER, args.user_id):
        row = await ops.users.disable(args.user_id)
    emit_record(user_json(row), args.json)


async def _list(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        rows = await ops.users.users()
    emit_rows([user_json(row) for row in rows], COLUMNS, args.json)


async def _show(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        row = await ops.users.user(args.user_id)
    emit_record(user_json(row), args.json)


def _limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("user_id", help="the user's id")
    parser.add_argument("--name", help="a display name")
    parser.add_argument("--rpm", type=limit, help="requests per minute, or none for no limit")
    parser.add_argument("--quota", type=limit, help="tokens it may use, or none for no limit")
    parser.add_argument(
        "--models", type=_models, help="the model ids it may use, comma-separated, or none: all"
    )


def register(commands: Commands) -> None:
    users = group(commands, "users", "manage users")
    create = command(users, "create", "create a user and print its first key (shown once)", _create)
    _limits(create)
    create.add_argument("--admin", action="store_true", default=None, help="make it an admin")
    update = command(users, "update", "change the given fields of an existing user", _update)
    _limits(update)
    update.add_argument(
        "--admin", action=argparse.BooleanOptionalAction, help="make it an admin, or not"
    )
    update.add_argument("--status", choices=("active", "disabled"), help="active or disabled")
    disable = command(
        users,
        "disable",
        "disable a user (a running gateway refuses its keys within CACHE_REFRESH_S)",
        _disable,
    )
    disable.add_argument("user_id", help="the user's id")
    command(users, "list", "list the users", _list)
    show = command(users, "show", "show one user, with its tokens used", _show)
    show.add_argument("user_id", help="the user's id")

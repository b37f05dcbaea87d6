"""``lowart teams``: create, change, list, show and delete teams and add or remove their
members, through the admin API's operations (``api/admin_teams.py``; docs/api.md, "Teams")."""

from __future__ import annotations

import argparse
from typing import Any

from lowart.api.bodies import TeamCreate, TeamPatch, convert
from lowart.cli.command import UNLIMITED, Commands, admin, chosen, command, group, limit
from lowart.cli.output import emit_record, emit_rows
from lowart.settings import Settings
from lowart.storage.audit_states import TEAM
from lowart.storage.audit_trail import CLI

COLUMNS = ("team_id", "name", "rpm_limit", "tpm_limit", "token_quota", "budget", "members")
PERIODS = ("day", "week", "month", "total")


def _models(value: str) -> list[str] | str:
    return UNLIMITED if value.strip().lower() == UNLIMITED else [m for m in value.split(",") if m]


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    return chosen(
        {
            "name": args.name,
            "models": args.models,
            "rpm_limit": args.rpm_limit,
            "tpm_limit": args.tpm_limit,
            "token_quota": args.token_quota,
            "budget": args.budget,
            "budget_period": args.budget_period,
        }
    )


async def _create(settings: Settings, args: argparse.Namespace) -> None:
    body = convert({"team_id": args.team_id, **_fields(args)}, TeamCreate)
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "teams.create", TEAM, args.team_id):
            row = await ops.teams.add(body)
        emit_record(await ops.teams.team_json(row), args.json)


async def _edit(settings: Settings, args: argparse.Namespace) -> None:
    body = convert(_fields(args), TeamPatch)
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "teams.update", TEAM, args.team_id):
            row = await ops.teams.change(args.team_id, body)
        emit_record(await ops.teams.team_json(row), args.json)


async def _list(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        rows = [await ops.teams.team_json(row) for row in await ops.teams.teams()]
    emit_rows(rows, COLUMNS, args.json)


async def _show(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        emit_record(await ops.teams.team_json(await ops.teams.team(args.team_id)), args.json)


async def _delete(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops, ops.audit.write(CLI, "teams.delete", TEAM, args.team_id):
        await ops.teams.remove(args.team_id)
    emit_record({"team_id": args.team_id, "deleted": True}, args.json)


async def _add_member(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "teams.add_member", TEAM, args.team_id):
            row = await ops.teams.add_member(args.team_id, args.user_id)
        emit_record(await ops.teams.team_json(row), args.json)


async def _remove_member(settings: Settings, args: argparse.Namespace) -> None:
    async with admin(settings) as ops:
        async with ops.audit.write(CLI, "teams.remove_member", TEAM, args.team_id):
            row = await ops.teams.remove_member(args.team_id, args.user_id)
        emit_record(await ops.teams.team_json(row), args.json)


def _limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="a name to tell the team by")
    parser.add_argument(
        "--models", type=_models, help=f"the model allowlist, comma-separated ({UNLIMITED}: any)"
    )
    parser.add_argument("--rpm-limit", type=limit, help="requests per minute, or none")
    parser.add_argument("--tpm-limit", type=limit, help="tokens per minute, or none")
    parser.add_argument("--token-quota", type=limit, help="tokens in total, or none")
    parser.add_argument("--budget", help=f'money per period, e.g. "10.00" ({UNLIMITED}: none)')
    parser.add_argument("--budget-period", choices=PERIODS, help="the budget's period")


def register(commands: Commands) -> None:
    teams = group(commands, "teams", "manage teams and their members")
    create = command(teams, "create", "create a team", _create)
    create.add_argument("team_id", help="the new team's id")
    _limits(create)
    edit = command(teams, "edit", "change a team's name or limits", _edit)
    edit.add_argument("team_id", help="the team's id")
    _limits(edit)
    command(teams, "list", "list the teams with their members", _list)
    show = command(teams, "show", "show one team", _show)
    show.add_argument("team_id", help="the team's id")
    delete = command(teams, "delete", "delete a team (its members belong to none)", _delete)
    delete.add_argument("team_id", help="the team's id")
    for name, handler, help_text in (
        ("add-member", _add_member, "put a user in the team (a user is in one team at most)"),
        ("remove-member", _remove_member, "take a user out of the team"),
    ):
        member = command(teams, name, help_text, handler)
        member.add_argument("team_id", help="the team's id")
        member.add_argument("user_id", help="the user's id")

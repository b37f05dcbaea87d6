"""Admin routes for teams and their members (docs/api.md, "Teams")."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, in_body, in_path
from lowart.api.admin_users import Refresh, budget_json
from lowart.api.bodies import TeamCreate, TeamPatch, decode, given
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.errors import Conflict, NotFound
from lowart.storage.audit_states import TEAM
from lowart.storage.rows import TeamRow, iso_seconds
from lowart.storage.teams import TeamRepository


def team_json(row: TeamRow, members: list[str]) -> dict[str, Any]:
    return {
        "team_id": row.team_id,
        "name": row.name,
        "models": list(row.models) if row.models is not None else None,
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "token_quota": row.token_quota,
        **budget_json(row.budget),
        "members": members,
        "created_at": iso_seconds(row.created_at),
    }


class TeamAdmin:
    """Teams: a user belongs to at most one; every write refreshes the directory."""

    def __init__(self, teams: TeamRepository, refresh: Refresh, audit: AuditRecorder) -> None:
        self._teams = teams
        self._refresh = refresh
        self._audit = audit

    # The operations, shared by the routes below and the ``lowart`` command line.

    async def team_json(self, row: TeamRow) -> dict[str, Any]:
        """A team as the admin API shows it, with its members."""
        return team_json(row, await self._teams.members(row.team_id))

    async def team(self, team_id: str) -> TeamRow:
        row = await self._teams.get(team_id)
        if row is None:
            raise NotFound(f"No team '{team_id}'.")
        return row

    async def teams(self) -> list[TeamRow]:
        return await self._teams.list_teams()

    async def add(self, body: TeamCreate) -> TeamRow:
        fields = given(body)
        team_id = fields.pop("team_id")
        row = await self._teams.create(team_id, fields)
        if row is None:
            raise Conflict(f"Team '{team_id}' already exists; use PATCH to change it.")
        await self._refresh()
        return row

    async def change(self, team_id: str, body: TeamPatch) -> TeamRow:
        team = await self.team(team_id)
        row = await self._teams.update(team.team_id, given(body))
        await self._refresh()
        return row or team

    async def remove(self, team_id: str) -> None:
        if not await self._teams.delete(team_id):
            raise NotFound(f"No team '{team_id}'.")
        await self._refresh()

    async def add_member(self, team_id: str, user_id: str) -> TeamRow:
        team = await self.team(team_id)
        outcome = await self._teams.set_team(user_id, team.team_id, only_from=None)
        if outcome == "no_user":
            raise NotFound(f"No user '{user_id}'.")
        if outcome != "ok":
            raise Conflict(f"User '{user_id}' is in team '{outcome}'; remove them from it first.")
        await self._refresh()
        return team

    async def remove_member(self, team_id: str, user_id: str) -> TeamRow:
        team = await self.team(team_id)
        if user_id not in await self._teams.members(team.team_id):
            raise NotFound(f"User '{user_id}' is not in team '{team.team_id}'.")
        await self._teams.set_team(user_id, None, only_from=team.team_id)
        await self._refresh()
        return team

    # The routes.

    async def create(self, request: Request) -> JSON:
        row = await self.add(decode(await body_of(request), TeamCreate))
        return JSON(await self.team_json(row), status_code=201)

    async def list_teams(self, request: Request) -> JSON:
        return JSON({"data": [await self.team_json(t) for t in await self.teams()]})

    async def get(self, request: Request) -> JSON:
        return JSON(await self.team_json(await self.team(request.path_params["team_id"])))

    async def patch(self, request: Request) -> JSON:
        body = decode(await body_of(request), TeamPatch)
        return JSON(await self.team_json(await self.change(request.path_params["team_id"], body)))

    async def delete(self, request: Request) -> JSON:
        team_id = request.path_params["team_id"]
        await self.remove(team_id)
        return JSON({"team_id": team_id, "deleted": True})

    async def put_member(self, request: Request) -> JSON:
        team_id, user_id = request.path_params["team_id"], request.path_params["user_id"]
        return JSON(await self.team_json(await self.add_member(team_id, user_id)))

    async def delete_member(self, request: Request) -> JSON:
        team_id, user_id = request.path_params["team_id"], request.path_params["user_id"]
        return JSON(await self.team_json(await self.remove_member(team_id, user_id)))

    def routes(self) -> list[Route]:
        audited, team = self._audit.audited, in_path("team_id")
        return [
            route(
                "/admin/teams",
                POST=audited("teams.create", TEAM, self.create, in_body("team_id")),
                GET=self.list_teams,
            ),
            route(
                "/admin/teams/{team_id}",
                GET=self.get,
                PATCH=audited("teams.update", TEAM, self.patch, team),
                DELETE=audited("teams.delete", TEAM, self.delete, team),
            ),
            route(
                "/admin/teams/{team_id}/members/{user_id}",
                PUT=audited("teams.add_member", TEAM, self.put_member, team),
                DELETE=audited("teams.remove_member", TEAM, self.delete_member, team),
            ),
        ]

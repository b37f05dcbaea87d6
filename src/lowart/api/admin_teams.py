"""Admin routes for teams and their members (docs/api.md, "Teams")."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_users import Refresh, budget_json
from lowart.api.bodies import TeamCreate, TeamPatch, decode, given
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.errors import Conflict, NotFound
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

    def __init__(self, teams: TeamRepository, refresh: Refresh) -> None:
        self._teams = teams
        self._refresh = refresh

    async def _json(self, row: TeamRow) -> dict[str, Any]:
        return team_json(row, await self._teams.members(row.team_id))

    async def _team(self, team_id: str) -> TeamRow:
        row = await self._teams.get(team_id)
        if row is None:
            raise NotFound(f"No team '{team_id}'.")
        return row

    async def create(self, request: Request) -> JSON:
        fields = given(decode(await body_of(request), TeamCreate))
        team_id = fields.pop("team_id")
        row = await self._teams.create(team_id, fields)
        if row is None:
            raise Conflict(f"Team '{team_id}' already exists; use PATCH to change it.")
        await self._refresh()
        return JSON(await self._json(row), status_code=201)

    async def list_teams(self, request: Request) -> JSON:
        return JSON({"data": [await self._json(t) for t in await self._teams.list_teams()]})

    async def get(self, request: Request) -> JSON:
        return JSON(await self._json(await self._team(request.path_params["team_id"])))

    async def patch(self, request: Request) -> JSON:
        fields = given(decode(await body_of(request), TeamPatch))
        team = await self._team(request.path_params["team_id"])
        row = await self._teams.update(team.team_id, fields)
        await self._refresh()
        return JSON(await self._json(row or team))

    async def delete(self, request: Request) -> JSON:
        team_id = request.path_params["team_id"]
        if not await self._teams.delete(team_id):
            raise NotFound(f"No team '{team_id}'.")
        await self._refresh()
        return JSON({"team_id": team_id, "deleted": True})

    async def add_member(self, request: Request) -> JSON:
        team = await self._team(request.path_params["team_id"])
        user_id = request.path_params["user_id"]
        outcome = await self._teams.set_team(user_id, team.team_id, only_from=None)
        if outcome == "no_user":
            raise NotFound(f"No user '{user_id}'.")
        if outcome != "ok":
            raise Conflict(f"User '{user_id}' is in team '{outcome}'; remove them from it first.")
        await self._refresh()
        return JSON(await self._json(team))

    async def remove_member(self, request: Request) -> JSON:
        team = await self._team(request.path_params["team_id"])
        user_id = request.path_params["user_id"]
        if user_id not in await self._teams.members(team.team_id):
            raise NotFound(f"User '{user_id}' is not in team '{team.team_id}'.")
        await self._teams.set_team(user_id, None, only_from=team.team_id)
        await self._refresh()
        return JSON(await self._json(team))

    def routes(self) -> list[Route]:
        return [
            route("/admin/teams", POST=self.create, GET=self.list_teams),
            route("/admin/teams/{team_id}", GET=self.get, PATCH=self.patch, DELETE=self.delete),
            route(
                "/admin/teams/{team_id}/members/{user_id}",
                PUT=self.add_member,
                DELETE=self.remove_member,
            ),
        ]

"""Admin routes for users and keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, in_answer, in_body, in_path
from lowart.api.bodies import KeyCreate, UserPatch, UserQuota, decode, given, parse_time
from lowart.api.responses import JSON, body_of
from lowart.api.routing import route
from lowart.catalog.accounts import create_user, issue_key, upsert_user
from lowart.errors import NotFound
from lowart.money import Budget, decimal_string
from lowart.storage.audit_states import KEY, USER
from lowart.storage.rows import KeyRow, UserRow, iso, iso_seconds
from lowart.storage.users import UserRepository

Refresh = Callable[[], Awaitable[None]]
Revoked = Callable[[str], Awaitable[None]]


def user_json(row: UserRow) -> dict[str, Any]:
    return {
        "user_id": row.user_id,
        "name": row.name,
        "is_admin": row.is_admin,
        "status": row.status,
        "rpm_limit": row.rpm_limit,
        "token_quota": row.token_quota,
        "token_used": row.token_used,
        "tpm_limit": row.tpm_limit,
        "token_quota_period": row.token_quota_period,
        "team_id": row.team_id,
        "models": list(row.models) if row.models is not None else None,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        **budget_json(row.budget),
    }


def budget_json(budget: Budget | None) -> dict[str, Any]:
    """A budget as JSON: the amount as a decimal string (``null``: none) and its period."""
    if budget is None:
        return {"budget": None, "budget_period": None}
    return {"budget": decimal_string(budget.amount), "budget_period": budget.period}


def key_json(row: KeyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "name": row.name,
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "revoked_at": iso(row.revoked_at),
        **budget_json(row.budget),
        "rpm_limit": row.rpm_limit,
        "tpm_limit": row.tpm_limit,
        "models": list(row.models) if row.models is not None else None,
        "expires_at": iso_seconds(row.expires_at) if row.expires_at is not None else None,
    }


def key_limits(fields: dict[str, Any]) -> dict[str, Any]:
    """A key's limits as stored: ``expires_at`` in Unix seconds."""
    if fields.get("expires_at") is not None:
        fields["expires_at"] = parse_time(fields["expires_at"], "expires_at")
    return fields


class UserAdmin:
    """Users, their limits and their keys. Every write refreshes the in-memory directory."""

    def __init__(
        self,
        users: UserRepository,
        refresh: Refresh,
        settle: Refresh,
        revoked: Revoked,
        audit: AuditRecorder,
    ) -> None:
        self._users = users
        self._audit = audit
        self._refresh = refresh
        self._settle = settle  # writes queued usage, so token_used is exact when read
        self._revoked = revoked  # cancels the key's unfinished jobs

    # The operations, shared by the routes below and the ``lowart`` command line.

    async def users(self) -> list[UserRow]:
        await self._settle()
        return await self._users.list_users()

    async def user(self, user_id: str) -> UserRow:
        await self._settle()
        return await self._user(user_id)

    async def _user(self, user_id: str) -> UserRow:
        row = await self._users.get(user_id)
        if row is None:
            raise NotFound(f"No user '{user_id}'.")
        return row

    async def create(self, user_id: str, fields: dict[str, Any]) -> tuple[UserRow, str]:
        """A new user and its first key; an existing one is a conflict, left as it was."""
        row, key = await create_user(self._users, user_id, fields)
        await self._refresh()
        return row, key

    async def change(self, user_id: str, fields: dict[str, Any]) -> UserRow:
        await self._settle()
        row = await self._users.update(user_id, fields)
        if row is None:
            raise NotFound(f"No user '{user_id}'.")
        await self._refresh()
        return row

    async def disable(self, user_id: str) -> UserRow:
        if not await self._users.disable(user_id):
            raise NotFound(f"No user '{user_id}'.")
        await self._refresh()
        return await self._user(user_id)

    async def new_key(
        self, user_id: str, name: str | None, *, limits: dict[str, Any] | None = None
    ) -> tuple[KeyRow, str]:
        """A new key of the user, with its own ``limits`` (models, RPM, TPM, budget, expiry)."""
        user = await self._user(user_id)
        row, key = await issue_key(self._users, user.user_id, name, limits=limits)
        await self._refresh()
        return row, key

    async def keys(self, user_id: str) -> list[KeyRow]:
        return await self._users.list_keys((await self._user(user_id)).user_id)

    async def revoke(self, key_id: str) -> None:
        if not await self._users.revoke_key(key_id):
            raise NotFound(f"No key '{key_id}'.")
        await self._refresh()
        await self._revoked(key_id)

    # The routes.

    async def quota(self, request: Request) -> JSON:
        body = decode(await body_of(request), UserQuota)
        fields = given(body)
        user_id = fields.pop("user_id")
        row, key = await upsert_user(self._users, user_id, fields)
        await self._refresh()
        if key is None:
            return JSON(user_json(row), status_code=200)
        return JSON({**user_json(row), "api_key": key}, status_code=201)

    async def list_users(self, request: Request) -> JSON:
        return JSON({"data": [user_json(u) for u in await self.users()]})

    async def get_user(self, request: Request) -> JSON:
        return JSON(user_json(await self.user(request.path_params["user_id"])))

    async def patch_user(self, request: Request) -> JSON:
        fields = given(decode(await body_of(request), UserPatch))
        return JSON(user_json(await self.change(request.path_params["user_id"], fields)))

    async def delete_user(self, request: Request) -> JSON:
        return JSON(user_json(await self.disable(request.path_params["user_id"])))

    async def create_key(self, request: Request) -> JSON:
        limits = key_limits(given(decode(await body_of(request) or b"{}", KeyCreate)))
        name = limits.pop("name", None)
        row, key = await self.new_key(request.path_params["user_id"], name, limits=limits)
        return JSON({**key_json(row), "key": key}, status_code=201)

    async def list_keys(self, request: Request) -> JSON:
        return JSON(
            {"data": [key_json(k) for k in await self.keys(request.path_params["user_id"])]}
        )

    async def revoke_key(self, request: Request) -> JSON:
        key_id = request.path_params["key_id"]
        await self.revoke(key_id)
        return JSON({"id": key_id, "revoked": True})

    def routes(self) -> list[Route]:
        audited, user = self._audit.audited, in_path("user_id")
        return [
            route(
                "/admin/users/quota",
                POST=audited("users.upsert", USER, self.quota, in_body("user_id")),
            ),
            route("/admin/users", GET=self.list_users),
            route(
                "/admin/users/{user_id}",
                GET=self.get_user,
                PATCH=audited("users.update", USER, self.patch_user, user),
                DELETE=audited("users.disable", USER, self.delete_user, user),
            ),
            route(
                "/admin/users/{user_id}/keys",
                POST=audited("keys.create", KEY, self.create_key, in_answer("id")),
                GET=self.list_keys,
            ),
            route(
                "/admin/keys/{key_id}",
                DELETE=audited("keys.revoke", KEY, self.revoke_key, in_path("key_id")),
            ),
        ]

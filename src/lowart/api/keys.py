"""A user's own keys (``/v1/keys``): mint one within the rights of the calling key, list them,
revoke one (docs/api.md, "Keys and their limits"). Another user's key is 404."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_users import Refresh, Revoked, key_json, key_limits
from lowart.api.bodies import KeyCreate, decode, given
from lowart.api.responses import JSON, body_of, caller
from lowart.api.routing import route
from lowart.catalog.accounts import issue_key
from lowart.catalog.minting import minted_limits
from lowart.errors import NotFound
from lowart.storage.users import UserRepository


class KeyRoutes:
    """Keys a user mints, lists and revokes for themselves."""

    def __init__(self, users: UserRepository, refresh: Refresh, revoked: Revoked) -> None:
        self._users = users
        self._refresh = refresh
        self._revoked = revoked  # cancels the key's unfinished jobs

    async def mint(self, request: Request) -> JSON:
        principal = caller(request)
        asked = key_limits(given(decode(await body_of(request) or b"{}", KeyCreate)))
        name = asked.pop("name", None)
        limits = minted_limits(principal, asked)
        row, key = await issue_key(self._users, principal.user_id, name, limits=limits)
        await self._refresh()
        return JSON({**key_json(row), "key": key}, status_code=201)

    async def list_own(self, request: Request) -> JSON:
        rows = await self._users.list_keys(caller(request).user_id)
        return JSON({"data": [key_json(k) for k in rows]})

    async def revoke(self, request: Request) -> JSON:
        key_id = request.path_params["key_id"]
        own = {k.id for k in await self._users.list_keys(caller(request).user_id)}
        if key_id not in own or not await self._users.revoke_key(key_id):
            raise NotFound(f"No key '{key_id}'.")
        await self._refresh()
        await self._revoked(key_id)
        return JSON({"id": key_id, "revoked": True})

    def routes(self) -> list[Route]:
        return [
            route("/v1/keys", POST=self.mint, GET=self.list_own),
            route("/v1/keys/{key_id}", DELETE=self.revoke),
        ]

"""Tools: the MCP server registry and tool policies (admin), confirmations (users)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType
from starlette.requests import Request
from starlette.routing import Route

from lowart.api.admin_audit import AuditRecorder, in_body, in_path, policy_in
from lowart.api.bodies import decode
from lowart.api.middleware import REQUEST_ID_KEY
from lowart.api.responses import JSON, body_of, caller
from lowart.api.routing import route
from lowart.errors import InvalidRequest, NotFound
from lowart.identifiers import END, Id
from lowart.security.connect_guard import vet_url
from lowart.security.secretbox import SecretBox
from lowart.security.ssrf import DestinationPolicy
from lowart.storage.audit_states import MCP_SERVER, TOOL_POLICY
from lowart.storage.sealed import mcp_secret_context
from lowart.storage.tools import PolicyRow, ServerRow, ToolRepository
from lowart.tools.mcp import MCPManager
from lowart.tools.mcp_server import ToolCallError
from lowart.tools.policy import POLICIES
from lowart.tools.servers import server_config
from lowart.tools.sessions import Confirmations

Name = Annotated[
    str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*" + END)
]
Text = Annotated[str, Meta(min_length=1, max_length=4096)]


class ServerBody(Struct, forbid_unknown_fields=True):
    name: Name
    transport: Literal["stdio", "http"]
    command: Text | UnsetType = UNSET
    args: list[Annotated[str, Meta(max_length=4096)]] | UnsetType = UNSET
    env: dict[str, str] | UnsetType = UNSET
    url: Text | UnsetType = UNSET
    headers: dict[str, str] | UnsetType = UNSET


class PolicyBody(Struct, forbid_unknown_fields=True):
    tool_name: Text
    policy: str
    server: Name | UnsetType | None = UNSET
    user_id: Id | UnsetType | None = UNSET


class ConfirmBody(Struct, forbid_unknown_fields=True):
    session_id: Annotated[str, Meta(min_length=1, max_length=128)]
    approved_ids: list[Annotated[str, Meta(max_length=256)]] = msgspec.field(default_factory=list)


def policy_json(row: PolicyRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "tool_name": row.tool_name,
        "server": row.server,
        "user_id": row.user_id,
        "policy": row.policy,
    }


class ToolAdmin:
    """``/admin/mcp/*`` and ``/admin/tools/policies``. Server secrets are write-only."""

    def __init__(
        self,
        repo: ToolRepository,
        manager: MCPManager,
        box: SecretBox,
        servers_changed: Callable[[], Awaitable[None]],
        *,
        destinations: DestinationPolicy,
        audit: AuditRecorder,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repo = repo
        self._audit = audit
        self._manager = manager
        self._box = box
        self._servers_changed = servers_changed  # tells the other instances
        self._destinations = destinations
        self._clock = clock

    async def register(self, request: Request) -> JSON:
        body = decode(await body_of(request), ServerBody)
        if body.transport == "stdio" and not isinstance(body.command, str):
            raise InvalidRequest("A stdio server needs a 'command'.", param="command")
        if body.transport == "http" and not isinstance(body.url, str):
            raise InvalidRequest("An http server needs a 'url'.", param="url")
        if isinstance(body.url, str):
            try:
                await vet_url(self._destinations, body.url)
            except ValueError as exc:
                raise InvalidRequest(f"url {exc}.", param="url") from exc
        row = self._row(body)
        try:
            await self._manager.start(server_config(row, self._box))
        except ToolCallError as exc:
            await self._restore(body.name)
            raise InvalidRequest(
                f"The MCP server '{body.name}' did not start: {exc}", param="command"
            ) from exc
        await self._repo.put_server(row)
        await self._servers_changed()
        return JSON(self._json(row), status_code=201)

    async def _restore(self, name: str) -> None:
        """A refused re-registration leaves the server that was registered before running."""
        for stored in await self._repo.servers():
            if stored.name == name:
                with contextlib.suppress(ToolCallError):
                    await self._manager.start(server_config(stored, self._box), keep_retrying=True)

    def _row(self, body: ServerBody) -> ServerRow:
        def seal(field: str, values: dict[str, str] | UnsetType) -> str | None:
            if not isinstance(values, dict) or not values:
                return None
            plain = msgspec.json.encode(values).decode()
            return self._box.encrypt(plain, mcp_secret_context(body.name, field))

        return ServerRow(
            name=body.name,
            transport=body.transport,
            command=body.command if isinstance(body.command, str) else None,
            args=msgspec.json.encode(body.args).decode() if isinstance(body.args, list) else None,
            env=seal("env", body.env),
            url=body.url if isinstance(body.url, str) else None,
            headers=seal("headers", body.headers),
            created_at=self._clock(),
        )

    def _json(self, row: ServerRow) -> dict[str, Any]:
        return {
            "name": row.name,
            "transport": row.transport,
            "command": row.command,
            "args": msgspec.json.decode(row.args) if row.args else [],
            "url": row.url,
            "env_set": row.env is not None,
            "headers_set": row.headers is not None,
            "status": self._manager.status(row.name),
        }

    async def list_servers(self, request: Request) -> JSON:
        return JSON({"data": [self._json(r) for r in await self._repo.servers()]})

    async def tools(self, request: Request) -> JSON:
        name = request.path_params["name"]
        tools = self._manager.tools(name)
        if tools is None:
            raise NotFound(f"No MCP server '{name}'.")
        return JSON(
            {
                "tools": [
                    {"name": t.name, "description": t.description, "input_schema": t.input_schema}
                    for t in tools
                ]
            }
        )

    async def delete_server(self, request: Request) -> JSON:
        name = request.path_params["name"]
        if not await self._repo.delete_server(name):
            raise NotFound(f"No MCP server '{name}'.")
        await self._manager.stop(name)
        await self._servers_changed()
        return JSON({"name": name, "deleted": True})

    async def put_policy(self, request: Request) -> JSON:
        body = decode(await body_of(request), PolicyBody)
        if body.policy not in POLICIES:
            raise InvalidRequest("policy must be auto, confirm or block.", param="policy")
        server = body.server if isinstance(body.server, str) else None
        user_id = body.user_id if isinstance(body.user_id, str) else None
        row = await self._repo.put_policy(
            body.tool_name, server, user_id, body.policy, self._clock()
        )
        return JSON(policy_json(row), status_code=201)

    async def list_policies(self, request: Request) -> JSON:
        return JSON({"data": [policy_json(r) for r in await self._repo.policies()]})

    async def delete_policy(self, request: Request) -> JSON:
        q = request.query_params
        tool = q.get("tool_name")
        if not tool:
            raise InvalidRequest("tool_name is required.", param="tool_name")
        if not await self._repo.delete_policy(
            tool, q.get("server") or None, q.get("user_id") or None
        ):
            raise NotFound("No such policy.")
        return JSON({"deleted": True})

    def routes(self) -> list[Route]:
        audited = self._audit.audited
        register = audited("mcp_servers.register", MCP_SERVER, self.register, in_body("name"))
        return [
            route("/admin/mcp/servers", POST=register, GET=self.list_servers),
            route("/admin/mcp/register", POST=register),
            route("/admin/mcp/servers/{name}/tools", GET=self.tools),
            route(
                "/admin/mcp/servers/{name}",
                DELETE=audited(
                    "mcp_servers.delete", MCP_SERVER, self.delete_server, in_path("name")
                ),
            ),
            route(
                "/admin/tools/policies",
                POST=audited("tool_policies.set", TOOL_POLICY, self.put_policy, policy_in("body")),
                GET=self.list_policies,
                DELETE=audited(
                    "tool_policies.delete", TOOL_POLICY, self.delete_policy, policy_in("query")
                ),
            ),
        ]


class ConfirmRoutes:
    """``POST /v1/tools/confirm`` and ``GET /v1/tools/sessions``."""

    def __init__(self, confirmations: Confirmations) -> None:
        self._confirmations = confirmations

    async def confirm(self, request: Request) -> JSON:
        body = decode(await body_of(request), ConfirmBody)
        outcome = await self._confirmations.confirm(
            caller(request), body.session_id, body.approved_ids, request.scope[REQUEST_ID_KEY]
        )
        return JSON(outcome.body)

    async def sessions(self, request: Request) -> JSON:
        return JSON({"data": await self._confirmations.pending(caller(request))})

    def routes(self) -> list[Route]:
        return [
            route("/v1/tools/confirm", POST=self.confirm),
            route("/v1/tools/sessions", GET=self.sessions),
        ]

"""What an admin write changed: each kind of admin object's state as a flat dict, read before
and after the write, and the difference between the two with every secret shown as ``***``.

A secret's state is the SHA-256 of its plain value (opened with the caller's ``open_secret``;
the sealed text when it does not open), so a re-sealed but equal secret is no change, and the
difference says only that a secret was set, changed or removed, never what it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from lowart.money import PRICE_FIELDS, Budget, decimal_string
from lowart.storage.deployments import DeploymentRepository
from lowart.storage.models import ModelRepository
from lowart.storage.prices import PriceRepository
from lowart.storage.rows import iso
from lowart.storage.sealed import deployment_key_context, mcp_secret_context, vendor_key_context
from lowart.storage.teams import TeamRepository
from lowart.storage.tools import ToolRepository
from lowart.storage.transforms import TransformRepository
from lowart.storage.users import UserRepository

State = dict[str, Any]
# (sealed value, its context) -> the plain value, or None when it does not open
OpenSecret = Callable[[str, str], str | None]
MASK = "***"
SECRET_FIELDS = frozenset({"api_key", "env", "headers", "key"})

USER = "user"
KEY = "key"
MODEL = "model"
FALLBACKS = "fallbacks"
DEPLOYMENT = "deployment"
MCP_SERVER = "mcp_server"
TOOL_POLICY = "tool_policy"
TRANSFORM = "transform"
MAX_TRANSFORM_ID_DIGITS = 18
TEAM = "team"
PRICES = "prices"


def changes(before: State | None, after: State | None) -> dict[str, Any]:
    """``{field: {"from": old, "to": new}}`` for each field that differs; a created object's
    fields come from null, a deleted one's go to null. Secrets are ``***`` (or null: unset)."""
    old, new = before or {}, after or {}
    diff: dict[str, Any] = {}
    for name in sorted(old.keys() | new.keys()):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        if name in SECRET_FIELDS:
            was, now = _masked(was), _masked(now)
        diff[name] = {"from": was, "to": now}
    return diff


def _masked(value: Any) -> str | None:
    return None if value is None else MASK


def _budget(budget: Budget | None) -> State:
    if budget is None:
        return {"budget": None, "budget_period": None}
    return {"budget": decimal_string(budget.amount), "budget_period": budget.period}


def policy_target(tool_name: str, server: str | None, user_id: str | None) -> str:
    """A tool policy's id in the log: ``server:tool:user``, ``*`` for any."""
    return f"{server or '*'}:{tool_name}:{user_id or '*'}"


def deployment_target(model_id: str, deployment_id: str) -> str:
    """A deployment's id in the log: ``model/deployment``."""
    return f"{model_id}/{deployment_id}"


class AdminStates:
    """Reads the state of one admin object by kind and id (None: it does not exist)."""

    def __init__(self, engine: AsyncEngine, open_secret: OpenSecret) -> None:
        self._users = UserRepository(engine)
        self._models = ModelRepository(engine)
        self._deployments = DeploymentRepository(engine)
        self._tools = ToolRepository(engine)
        self._transforms = TransformRepository(engine)
        self._teams = TeamRepository(engine)
        self._prices = PriceRepository(engine)
        self._open = open_secret
        self._readers: dict[str, Callable[[str], Awaitable[State | None]]] = {
            USER: self._user,
            KEY: self._key,
            MODEL: self._model,
            FALLBACKS: self._fallbacks,
            DEPLOYMENT: self._deployment,
            MCP_SERVER: self._server,
            TOOL_POLICY: self._policy,
            TRANSFORM: self._transform,
            TEAM: self._team,
            PRICES: self._price_history,
        }

    async def state(self, kind: str, target: str | None) -> State | None:
        return None if target is None else await self._readers[kind](target)

    def _secret(self, sealed: str | None, context: str) -> str | None:
        if sealed is None:
            return None
        plain = self._open(sealed, context)
        if plain is None:  # a value that does not open is compared as it is stored
            plain = sealed
        return hashlib.sha256(plain.encode()).hexdigest()

    async def _user(self, user_id: str) -> State | None:
        row = await self._users.get(user_id)
        if row is None:
            return None
        return {
            "name": row.name,
            "is_admin": row.is_admin,
            "status": row.status,
            "rpm_limit": row.rpm_limit,
            "token_quota": row.token_quota,
            "token_used": row.token_used,
            "token_quota_period": row.token_quota_period,
            "tpm_limit": row.tpm_limit,
            "team_id": row.team_id,
            "models": list(row.models) if row.models is not None else None,
            **_budget(row.budget),
        }

    async def _key(self, key_id: str) -> State | None:
        row = await self._users.key(key_id)
        if row is None:
            return None
        return {
            "user_id": row.user_id,
            "name": row.name,
            "prefix": row.prefix,
            "key": MASK,
            "revoked_at": iso(row.revoked_at),
            "rpm_limit": row.rpm_limit,
            "tpm_limit": row.tpm_limit,
            "models": list(row.models) if row.models is not None else None,
            "expires_at": row.expires_at,
            **_budget(row.budget),
        }

    async def _model(self, model_id: str) -> State | None:
        row = await self._models.get(model_id)
        if row is None:
            return None
        return {
            "vendor_type": row.vendor_type,
            "base_url": row.base_url,
            "upstream_model": row.upstream_model,
            "params": row.params,
            "timeout_s": row.timeout_s,
            "enabled": row.enabled,
            "api_key": self._secret(row.api_key, vendor_key_context(model_id)),
        }

    async def _deployment(self, target: str) -> State | None:
        model_id, _, deployment_id = target.partition("/")
        row = await self._deployments.get(model_id, deployment_id)
        if row is None:
            return None
        return {
            "vendor_type": row.vendor_type,
            "base_url": row.base_url,
            "upstream_model": row.upstream_model,
            "params": row.params,
            "weight": row.weight,
            "enabled": row.enabled,
            "rpm_cap": row.rpm_cap,
            "tpm_cap": row.tpm_cap,
            "api_key": self._secret(row.api_key, deployment_key_context(model_id, deployment_id)),
        }

    async def _fallbacks(self, model_id: str) -> State | None:
        if await self._models.get(model_id) is None:
            return None
        chain = [fb.fallback_model_id for fb in await self._models.fallbacks(model_id)]
        return {"fallbacks": chain}

    async def _server(self, name: str) -> State | None:
        for row in await self._tools.servers():
            if row.name == name:
                return {
                    "transport": row.transport,
                    "command": row.command,
                    "args": msgspec.json.decode(row.args) if row.args else [],
                    "url": row.url,
                    "env": self._secret(row.env, mcp_secret_context(name, "env")),
                    "headers": self._secret(row.headers, mcp_secret_context(name, "headers")),
                }
        return None

    async def _policy(self, target: str) -> State | None:
        for row in await self._tools.policies():
            if policy_target(row.tool_name, row.server, row.user_id) == target:
                return {
                    "tool_name": row.tool_name,
                    "server": row.server,
                    "user_id": row.user_id,
                    "policy": row.policy,
                }
        return None

    async def _transform(self, target: str) -> State | None:
        """A script's state; its source as a SHA-256, which says that it changed (and which
        version it is) without copying up to 64 KiB into each row."""
        if not target.isdigit() or len(target) > MAX_TRANSFORM_ID_DIGITS:
            return None
        row = await self._transforms.get(int(target))
        if row is None:
            return None
        return {
            "model_id": row.model_id,
            "deployment": row.deployment,
            "source_sha256": hashlib.sha256(row.source.encode()).hexdigest(),
            "on_request": row.on_request,
            "on_response": row.on_response,
            "on_chunk": row.on_chunk,
            "on_error": row.on_error,
            "enabled": row.enabled,
        }

    async def _team(self, team_id: str) -> State | None:
        row = await self._teams.get(team_id)
        if row is None:
            return None
        return {
            "name": row.name,
            "models": list(row.models) if row.models is not None else None,
            "rpm_limit": row.rpm_limit,
            "tpm_limit": row.tpm_limit,
            "token_quota": row.token_quota,
            **_budget(row.budget),
            "members": await self._teams.members(team_id),
        }

    async def _price_history(self, model_id: str) -> State | None:
        """A model's prices: each start time's amounts, as decimal strings."""
        history = await self._prices.history(model_id)
        return {
            "prices": [
                {
                    "effective_from": price.effective_from,
                    **{name: decimal_string(getattr(price, name)) for name in PRICE_FIELDS},
                }
                for price in history
            ]
        }

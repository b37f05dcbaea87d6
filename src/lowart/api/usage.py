"""Usage reports: the caller's own (``/v1/usage``) and across users (``/admin/usage``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.responses import JSON, caller
from lowart.api.routing import route
from lowart.errors import InvalidRequest
from lowart.storage.usage import GROUPINGS, UsageFilter, UsageRepository
from lowart.storage.users import UserRepository

Settle = Callable[[], Awaitable[None]]


def parse_time(value: str | None, name: str) -> float | None:
    """ISO 8601 (UTC when no zone is given) or Unix seconds."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidRequest(f"'{name}' must be ISO 8601 or Unix seconds.", param=name) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def usage_filter(query: Mapping[str, str | None]) -> UsageFilter:
    """The filter named by a query's ``user_id``, ``model``, ``served_model``, ``since`` and
    ``until`` (empty values ignored)."""
    return UsageFilter(
        user_id=query.get("user_id") or None,
        model=query.get("model") or None,
        served_model=query.get("served_model") or None,
        since=parse_time(query.get("since"), "since"),
        until=parse_time(query.get("until"), "until"),
    )


class UsageReports:
    """Aggregates read after the queued usage is written, so they are exact."""

    def __init__(self, usage: UsageRepository, users: UserRepository, settle: Settle) -> None:
        self._usage = usage
        self._users = users
        self._settle = settle

    async def mine(self, request: Request) -> JSON:
        principal = caller(request)
        await self._settle()
        user = await self._users.get(principal.user_id)
        by_model = await self._usage.aggregate(UsageFilter(user_id=principal.user_id), "model")
        used = user.token_used if user else 0
        quota = user.token_quota if user else None
        return JSON(
            {
                "user_id": principal.user_id,
                "token_quota": quota,
                "token_used": used,
                "token_remaining": max(0, quota - used) if quota is not None else None,
                "rpm_limit": user.rpm_limit if user else None,
                "models": by_model,
            }
        )

    async def report(self, flt: UsageFilter, group_by: str | None) -> list[dict[str, Any]]:
        """Totals across users (``group_by``: day, model, served_model or user), for the admin
        route and the ``lowart usage`` command."""
        if group_by is not None and group_by not in GROUPINGS:
            raise InvalidRequest(
                "group_by must be day, model, served_model or user.", param="group_by"
            )
        await self._settle()
        return await self._usage.aggregate(flt, group_by)

    async def admin(self, request: Request) -> JSON:
        q = request.query_params
        group_by = q.get("group_by") or None
        data = await self.report(usage_filter(q), group_by)
        return JSON({"data": data, "group_by": group_by})

    def routes(self) -> list[Route]:
        return [route("/v1/usage", GET=self.mine), route("/admin/usage", GET=self.admin)]

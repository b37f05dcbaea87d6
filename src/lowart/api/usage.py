"""Usage reports: the caller's own (``/v1/usage``) and across users (``/admin/usage``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lowart.api.admin_users import budget_json
from lowart.api.bodies import parse_time
from lowart.api.responses import JSON, caller
from lowart.api.routing import route
from lowart.dispatch.budgets import BudgetGate
from lowart.errors import InvalidRequest
from lowart.money import decimal_string, period_of
from lowart.principal import Principal
from lowart.storage.budgets import BudgetSpend, ledger_key
from lowart.storage.rows import iso_seconds
from lowart.storage.usage import GROUPINGS, UsageFilter, UsageRepository
from lowart.storage.users import UserRepository

Settle = Callable[[], Awaitable[None]]


CSV_COLUMNS = ("prompt_tokens", "completion_tokens", "total_tokens", "requests", "errors", "cost")


def csv_report(data: list[dict[str, Any]], group_by: str | None, currency: str) -> Response:
    """The report as CSV: the group's column (if grouped), the totals, the currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*([group_by] if group_by else []), *CSV_COLUMNS, "currency"])
    for item in data:
        group = [item[group_by] if item[group_by] is not None else ""] if group_by else []
        writer.writerow([*group, *(item[c] for c in CSV_COLUMNS), currency])
    disposition = 'attachment; filename="usage.csv"'
    return Response(
        out.getvalue(), media_type="text/csv", headers={"content-disposition": disposition}
    )


def shown(item: dict[str, Any]) -> dict[str, Any]:
    """An aggregate as JSON: its cost as a decimal string, never a float."""
    return {**item, "cost": decimal_string(item["cost"])}


def usage_filter(query: Mapping[str, str | None]) -> UsageFilter:
    """The filter named by a query's ``user_id``, ``team_id``, ``key_id``, ``model``,
    ``served_model``, ``since`` and ``until`` (empty values ignored)."""
    return UsageFilter(
        user_id=query.get("user_id") or None,
        team_id=query.get("team_id") or None,
        key_id=query.get("key_id") or None,
        model=query.get("model") or None,
        served_model=query.get("served_model") or None,
        since=parse_time(query.get("since"), "since"),
        until=parse_time(query.get("until"), "until"),
    )


class UsageReports:
    """Aggregates read after the queued usage is written, so they are exact."""

    def __init__(
        self,
        usage: UsageRepository,
        users: UserRepository,
        settle: Settle,
        currency: str,
        budgets: tuple[BudgetSpend, BudgetGate],
    ) -> None:
        self._usage = usage
        self._users = users
        self._settle = settle
        self._currency = currency
        self._spend, self._gate = budgets

    async def _budgets(self, principal: Principal) -> list[dict[str, Any]]:
        """Each budget of the caller, in its current period: spent, remaining, reset time."""
        now = self._gate.clock()
        periods = [period_of(b.period, now, self._gate.tz) for _, _, b in principal.budgets]
        keys = [
            ledger_key(scope, owner, period.label)
            for (scope, owner, _), period in zip(principal.budgets, periods, strict=True)
        ]
        spent = await self._spend.spent(keys)
        out = []
        for (scope, owner, budget), period, key in zip(
            principal.budgets, periods, keys, strict=True
        ):
            out.append(
                {
                    "scope": scope,
                    "id": owner,
                    **budget_json(budget),
                    "period": period.label,
                    "spent": decimal_string(spent[key]),
                    "remaining": decimal_string(max(0, budget.amount - spent[key])),
                    "resets_at": None if period.ends_at is None else iso_seconds(period.ends_at),
                }
            )
        return out

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
                "currency": self._currency,
                "cost": decimal_string(sum(m["cost"] for m in by_model)),
                "models": [shown(m) for m in by_model],
                "budgets": await self._budgets(principal),
            }
        )

    async def report(self, flt: UsageFilter, group_by: str | None) -> list[dict[str, Any]]:
        """Totals across users (``group_by``: one of ``GROUPINGS``), costs as decimal strings,
        for the admin route and the ``lowart usage`` command."""
        if group_by is not None and group_by not in GROUPINGS:
            message = f"group_by must be one of {', '.join(GROUPINGS)}."
            raise InvalidRequest(message, param="group_by")
        await self._settle()
        return [shown(item) for item in await self._usage.aggregate(flt, group_by)]

    async def admin(self, request: Request) -> Response:
        q = request.query_params
        group_by = q.get("group_by") or None
        if q.get("format", "json") not in ("json", "csv"):
            raise InvalidRequest("format must be json or csv.", param="format")
        data = await self.report(usage_filter(q), group_by)
        if q.get("format") == "csv":
            return csv_report(data, group_by, self._currency)
        return JSON({"data": data, "group_by": group_by, "currency": self._currency})

    def routes(self) -> list[Route]:
        return [route("/v1/usage", GET=self.mine), route("/admin/usage", GET=self.admin)]

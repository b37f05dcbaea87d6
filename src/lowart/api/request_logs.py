"""The admin's request logs (docs/api.md, "Admin: request logs"): a search and one request's bodies.

Both settle the queued entries first, so a request that has ended is found at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.bodies import parse_time
from lowart.api.responses import JSON
from lowart.api.routing import route
from lowart.errors import InvalidRequest, NotFound
from lowart.storage.request_logs import RequestLogFilter, RequestLogRepository

MAX_PAGE = 100
MAX_ID = 200  # request ids are the gateway's or the caller's x-request-id


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


def log_json(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API shows it (bodies only when the row has them)."""
    shown = {
        "id": row["id"],
        "request_id": row["request_id"],
        "user_id": row["user_id"],
        "model": row["model"],
        "created_at": _iso(row["created_at"]),
        "status": row["status"],
        "http_status": row["http_status"],
        "stream": bool(row["stream"]),
        "request_bytes": row["request_bytes"],
        "response_bytes": row["response_bytes"],
        "truncated": bool(row["truncated"]),
    }
    if "request_body" in row:
        shown["request_body"] = row["request_body"]
        shown["response_body"] = row["response_body"]
    return shown


def _positive(raw: str | None, name: str, default: int | None, top: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < 1 or (top is not None and int(raw) > top):
        limit = f" to {top}" if top is not None else ""
        raise InvalidRequest(f"{name} must be an integer from 1{limit}.", param=name)
    return int(raw)


class RequestLogRoutes:
    """``GET /admin/request-logs`` and ``GET /admin/request-logs/{request_id}``."""

    def __init__(self, repo: RequestLogRepository, settle: Callable[[], Awaitable[int]]) -> None:
        self._repo = repo
        self._settle = settle

    async def search(self, request: Request) -> JSON:
        q = request.query_params
        flt = RequestLogFilter(
            request_id=q.get("request_id") or None,
            user_id=q.get("user_id") or None,
            model=q.get("model") or None,
            since=parse_time(q.get("since"), "since"),
            until=parse_time(q.get("until"), "until"),
        )
        limit = _positive(q.get("limit"), "limit", 20, MAX_PAGE)
        assert limit is not None
        after = _positive(q.get("after"), "after", None, None)
        await self._settle()
        page = await self._repo.search(flt, limit + 1, after)
        data = [log_json(row) for row in page[:limit]]
        return JSON(
            {
                "object": "list",
                "data": data,
                "has_more": len(page) > limit,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def show(self, request: Request) -> JSON:
        request_id = str(request.path_params["request_id"])
        await self._settle()
        row = await self._repo.of_request(request_id) if len(request_id) <= MAX_ID else None
        if row is None:
            raise NotFound(f"No request log for '{request_id[:64]}'.")
        return JSON(log_json(row))

    def routes(self) -> list[Route]:
        return [
            route("/admin/request-logs", GET=self.search),
            route("/admin/request-logs/{request_id}", GET=self.show),
        ]

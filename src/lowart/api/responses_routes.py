"""The stored responses, read by their owners (docs/api.md, "Responses"):
``GET /v1/responses/{id}``, ``DELETE /v1/responses/{id}``,
``GET /v1/responses/{id}/input_items`` and ``POST /v1/responses/{id}/cancel``. Another user's
response is a 404, as a missing one is."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from lowart.api.jobs import valid_id
from lowart.api.responses import JSON, caller
from lowart.api.routing import route
from lowart.errors import InvalidRequest, NotFound
from lowart.pipeline.responses_book import ResponseBook

MAX_PAGE = 100


def _page(items: list[dict[str, Any]], request: Request) -> dict[str, Any]:
    """OpenAI's list page over a response's input items: ``order``, ``after``, ``limit``."""
    query = request.query_params
    raw = query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_PAGE}.", param="limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else items[::-1]
    after = query.get("after")
    if after:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise InvalidRequest(f"No input item '{after[:64]}' in this response.", param="after")
        ordered = ordered[ids.index(after) + 1 :]
    limit = int(raw)
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(ordered) > limit,
    }


class ResponseRoutes:
    """Only the owner sees a response; anyone else gets 404."""

    def __init__(self, book: ResponseBook) -> None:
        self._book = book

    @staticmethod
    def _id(request: Request) -> str:
        rid = str(request.path_params["response_id"])
        if not valid_id(rid):
            raise NotFound(f"No response with id '{rid[:64]}'.")
        return rid

    async def get(self, request: Request) -> JSON:
        principal = caller(request)
        stored = await self._book.get(principal, self._id(request))
        return JSON(await self._book.current(principal, stored))

    async def delete(self, request: Request) -> JSON:
        rid = self._id(request)
        await self._book.delete(caller(request), rid)
        return JSON({"id": rid, "object": "response", "deleted": True})

    async def input_items(self, request: Request) -> JSON:
        stored = await self._book.get(caller(request), self._id(request))
        return JSON(_page(stored.input_items, request))

    async def cancel(self, request: Request) -> JSON:
        return JSON(await self._book.cancel(caller(request), self._id(request)))

    def routes(self) -> list[Route]:
        return [
            route("/v1/responses/{response_id}", GET=self.get, DELETE=self.delete),
            route("/v1/responses/{response_id}/input_items", GET=self.input_items),
            route("/v1/responses/{response_id}/cancel", POST=self.cancel),
        ]

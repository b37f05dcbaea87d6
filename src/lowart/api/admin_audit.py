"""The admin audit log at the HTTP edge: ``AuditRecorder.audited`` wraps each admin write
handler (one line at its route), and ``GET /admin/audit`` reads the log (docs/api.md,
"Admin audit log")."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lowart.api.asgi import Message, Receive
from lowart.api.bodies import parse_time
from lowart.api.jobs import MAX_PAGE
from lowart.api.middleware import REQUEST_ID_KEY, principal_of
from lowart.api.responses import JSON, body_of
from lowart.api.routing import Handler, route
from lowart.errors import InvalidRequest
from lowart.security.forwarded import Network, client_address
from lowart.storage.audit import AuditFilter
from lowart.storage.audit_states import policy_target
from lowart.storage.audit_trail import Actor, AuditTrail


@dataclass(frozen=True)
class Call:
    """An admin write as the audit sees it: path and query parameters, the JSON object sent
    (``{}`` when none), and once answered, the JSON object of the answer."""

    path: Mapping[str, Any]
    query: Mapping[str, str]
    body: Mapping[str, Any]
    answer: Mapping[str, Any] | None = None


Target = Callable[[Call], str | None]  # the changed object's id, None while not known


def in_path(name: str) -> Target:
    return lambda call: call.path.get(name)


def in_body(name: str) -> Target:
    return lambda call: _text(call.body.get(name))


def in_answer(name: str) -> Target:
    return lambda call: _text(call.answer.get(name)) if call.answer is not None else None


def policy_in(source: str) -> Target:
    """A tool policy's target, from the body (``body``) or the query (``query``)."""

    def target(call: Call) -> str | None:
        given = call.body if source == "body" else call.query
        tool = _text(given.get("tool_name"))
        if tool is None:
            return None
        return policy_target(tool, _text(given.get("server")), _text(given.get("user_id")))

    return target


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(raw: bytes) -> dict[str, Any]:
    try:
        value = msgspec.json.decode(raw) if raw.strip() else {}
    except msgspec.DecodeError:
        return {}  # the handler refuses it with a 400, and nothing is recorded
    return value if isinstance(value, dict) else {}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body read already, then the connection's own messages."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


class AuditRecorder:
    """Wraps admin write handlers so that each successful write leaves one audit row."""

    def __init__(self, trail: AuditTrail, trusted: Sequence[Network]) -> None:
        self._trail = trail
        self._trusted = tuple(trusted)

    def actor(self, request: Request) -> Actor:
        principal = principal_of(request.scope)
        peer = request.scope.get("client")
        forwarded = [
            value.decode("latin-1")
            for name, value in request.scope["headers"]
            if name == b"x-forwarded-for"
        ]
        address = client_address(peer[0] if peer else None, forwarded, self._trusted)
        return Actor(
            principal.user_id, principal.key_id, address, request.scope.get(REQUEST_ID_KEY)
        )

    def audited(self, action: str, kind: str, handler: Handler, target: Target) -> Handler:
        """``handler`` recording ``action`` on the ``kind`` object ``target`` names."""

        async def run(request: Request) -> Response:
            raw = await body_of(request)
            call = Call(request.path_params, request.query_params, _object(raw))
            replay = Request(request.scope, _replay(raw, request.receive))
            write = self._trail.write(self.actor(request), action, kind, target(call))
            async with write as change:
                response = await handler(replay)
                change.done = response.status_code < 400
                if change.target is None and change.done:
                    answer = dataclasses.replace(call, answer=_object(bytes(response.body)))
                    change.target = target(answer)
            return response

        return run


def _entry_json(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at": dt.datetime.fromtimestamp(row["at"], dt.UTC).isoformat(),
        "actor": row["actor"],
        "actor_key_id": row["actor_key_id"],
        "action": row["action"],
        "target": row["target"],
        "changes": row["changes"],
        "client_address": row["client_address"],
        "request_id": row["request_id"],
    }


def _int(value: str | None, name: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or not low <= int(value) <= high:
        raise InvalidRequest(f"'{name}' must be a whole number from {low} to {high}.", param=name)
    return int(value)


class AuditRoutes:
    """``GET /admin/audit``: newest first, filtered, paged with ``cursor``."""

    def __init__(self, trail: AuditTrail) -> None:
        self._trail = trail

    async def list_entries(self, request: Request) -> JSON:
        q = request.query_params
        flt = AuditFilter(
            actor=q.get("actor") or None,
            action=q.get("action") or None,
            target=q.get("target") or None,
            since=parse_time(q.get("since"), "since"),
            until=parse_time(q.get("until"), "until"),
            before=_int(q.get("cursor"), "cursor", 1, 2**62),
            limit=_int(q.get("limit"), "limit", 1, MAX_PAGE) or MAX_PAGE,
        )
        rows = await self._trail.repo.find(flt)
        more = len(rows) == flt.limit
        cursor = str(rows[-1]["id"]) if more else None
        return JSON({"data": [_entry_json(r) for r in rows], "next_cursor": cursor})

    def routes(self) -> list[Route]:
        return [route("/admin/audit", GET=self.list_entries)]

"""The tool loop: the model calls gateway-run tools, and policies decide what happens.

``auto`` runs the call and feeds the result back; ``block`` feeds back a policy message;
``confirm`` pauses: the conversation is stored as a session and the caller gets a pause object
(a valid ``chat.completion`` or Message, with ``status``, ``session_id``, ``expires_at`` and
``tool_calls``). ``POST /v1/tools/confirm`` runs the approved calls, tells the model the others
were rejected, and carries on. At most ``MAX_TOOL_ROUNDS`` rounds run; calls to the client's own
function tools end the loop and go back to the client as usual.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from lowart.dispatch.attempt import Admission
from lowart.dispatch.flow import Dispatcher
from lowart.errors import InvalidRequest
from lowart.principal import Principal
from lowart.providers.base import ChatRequest
from lowart.storage.tools import SessionRow, ToolRepository
from lowart.telemetry.tracing import INTERNAL, OPERATION, TOOL_NAME, Tracing
from lowart.tools.calls import Call, assistant_turn, calls_of, only_calls, result_turns
from lowart.tools.expand import (
    OfferedTool,
    allowed_tools,
    approval_rules,
    mcp_servers_of,
    model_body,
    offered_tools,
)
from lowart.tools.mcp import MCPManager
from lowart.tools.mcp_server import ToolCallError
from lowart.tools.policy import AUTO, BLOCK, caller_wants_approval, resolve, tightened

log = structlog.get_logger()

BLOCKED = "The gateway's tool policy blocked this call; it was not run."
REJECTED = "The user rejected this call; it was not run."


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request (or a confirmation) answers: a final answer, or a pause object."""

    body: dict[str, Any]
    session_id: str | None = None
    ran: tuple[dict[str, Any], ...] = ()  # the calls decided in this run, oldest first

    @property
    def paused(self) -> bool:
        return self.session_id is not None


class ToolLoop:
    """Runs rounds of model calls and tool calls for one conversation."""

    def __init__(
        self,
        *,
        dispatcher: Dispatcher,
        manager: MCPManager,
        repo: ToolRepository,
        max_rounds: int,
        session_ttl_s: float,
        clock: Callable[[], float] = time.time,
        tracing: Tracing | None = None,
    ) -> None:
        self._dispatcher = dispatcher
        self._tracing = tracing
        self._manager = manager
        self._repo = repo
        self._max_rounds = max_rounds
        self._ttl = session_ttl_s
        self._clock = clock

    @staticmethod
    def wants_tools(body: dict[str, Any]) -> bool:
        return bool(mcp_servers_of(body))

    def offer(self, body: dict[str, Any]) -> list[OfferedTool]:
        """The tools of the servers the request opts into."""
        catalog = {}
        labels = mcp_servers_of(body)
        narrowed = allowed_tools(body)
        for label in labels:
            tools = self._manager.tools(label)
            if tools is None:
                raise InvalidRequest(f"No MCP server '{label}' is registered.", param="tools")
            allowed = narrowed.get(label)
            catalog[label] = [
                (t.name, t.description, t.input_schema)
                for t in tools
                if allowed is None or t.name in allowed
            ]
        return offered_tools(body, catalog)

    async def run(
        self,
        principal: Principal,
        admission: Admission,
        request: ChatRequest,
        job_id: str | None = None,
    ) -> Outcome:
        """A request that opts into MCP tools, from its first round."""
        offered = self.offer(request.body)
        state = {
            "fmt": request.fmt,
            "model": admission.requested,
            "job_id": job_id,
            "body": model_body(request.body, offered, request.fmt),
            "offered": [[t.exposed, t.server, t.tool] for t in offered],
            "approval": approval_rules(request.body),
            "ran": [],
            "rounds": 0,
        }
        return await self._rounds(principal, request.request_id, state, admission)

    async def _rounds(
        self,
        principal: Principal,
        request_id: str,
        state: dict[str, Any],
        admission: Admission | None,
    ) -> Outcome:
        fmt = state["fmt"]
        offered = {exposed: (server, tool) for exposed, server, tool in state["offered"]}
        while True:
            body = state["body"]  # each round appends the calls and their results
            admission = admission or await self._dispatcher.admit(
                principal, state["model"], body, len(msgspec.json.encode(body)), count_rpm=False
            )
            chat = ChatRequest(
                body=body,
                stream=False,
                wants_usage=False,
                request_id=request_id,
                fmt=fmt,
                user_id=principal.user_id,
            )
            served = await self._dispatcher.complete(admission, chat)
            admission = None
            response: dict[str, Any] = msgspec.json.decode(served.body)
            calls = calls_of(response, fmt)
            if (
                not calls
                or any(c.name not in offered for c in calls)
                or state["rounds"] >= self._max_rounds
            ):
                return Outcome(response, ran=tuple(state.get("ran", ())))
            state["rounds"] += 1
            pending, decided = await self._decide(
                principal, request_id, calls, offered, state.get("approval", {})
            )
            if pending:
                return await self._pause(
                    principal, state, response, calls, pending=pending, decided=decided
                )
            self._append(state, response, calls, decided)

    async def _decide(
        self,
        principal: Principal,
        request_id: str,
        calls: list[Call],
        offered: dict[str, tuple[str, str]],
        approval: dict[str, Any],
    ) -> tuple[list[Call], dict[str, str]]:
        """Run the ``auto`` calls, answer the ``block`` ones; the rest wait for a person. A
        request's ``require_approval`` may turn ``auto`` into ``confirm``, never loosen."""
        rules = await self._repo.policies()
        pending, decided = [], {}
        for call in calls:
            server, tool = offered[call.name]
            policy = tightened(
                resolve(rules, tool, server, principal.user_id),
                caller_wants_approval(approval.get(server), tool),
            )
            if policy == AUTO:
                decided[call.id] = await self.execute(
                    principal, request_id, call, server, tool, policy=AUTO, approver=None
                )
            elif policy == BLOCK:
                await self.audit(
                    principal,
                    request_id,
                    call,
                    server=server,
                    tool=tool,
                    policy=BLOCK,
                    approver=None,
                    outcome="blocked",
                    text=BLOCKED,
                )
                decided[call.id] = BLOCKED
            else:
                pending.append(call)
        return pending, decided

    async def execute(
        self,
        principal: Principal,
        request_id: str,
        call: Call,
        server: str,
        tool: str,
        *,
        policy: str,
        approver: str | None,
        session_id: str | None = None,
    ) -> str:
        """Run one call on its MCP server; a failure becomes a clear tool error for the model."""
        try:
            text = await self._call(server, tool, call)
            outcome = "ok"
        except (ToolCallError, ValueError) as exc:
            text, outcome = f"Tool error: {exc}", "error"
        await self.audit(
            principal,
            request_id,
            call,
            server=server,
            tool=tool,
            policy=policy,
            approver=approver,
            outcome=outcome,
            text=text,
            session_id=session_id,
        )
        return text

    async def _call(self, server: str, tool: str, call: Call) -> str:
        """The MCP call; with tracing on, inside a span of its own."""
        if self._tracing is None:
            return await self._manager.call(server, tool, call.parsed_arguments())
        attributes = {
            OPERATION: "execute_tool",
            TOOL_NAME: tool,
            "gen_ai.tool.call.id": call.id,
            "lowart.mcp_server": server,
        }
        with self._tracing.span(f"execute_tool {tool}", INTERNAL, attributes):
            return await self._manager.call(server, tool, call.parsed_arguments())

    async def audit(
        self,
        principal: Principal,
        request_id: str,
        call: Call,
        *,
        server: str,
        tool: str,
        policy: str,
        approver: str | None,
        outcome: str,
        text: str,
        session_id: str | None = None,
    ) -> None:
        """Record a decided call: who, which tool, the arguments' hash, the outcome."""
        await self._repo.audit(
            [
                {
                    "request_id": request_id,
                    "session_id": session_id,
                    "user_id": principal.user_id,
                    "server": server,
                    "tool": tool,
                    "arguments_sha256": call.sha256,
                    "policy": policy,
                    "approver": approver,
                    "outcome": outcome,
                    "result_bytes": len(text.encode()),
                    "created_at": self._clock(),
                }
            ]
        )

    @staticmethod
    def _append(
        state: dict[str, Any], response: dict[str, Any], calls: list[Call], results: dict[str, str]
    ) -> None:
        fmt = state["fmt"]
        offered = {exposed: (server, tool) for exposed, server, tool in state["offered"]}
        state.setdefault("ran", []).extend(
            {
                "id": c.id,
                "server": offered[c.name][0],
                "name": offered[c.name][1],
                "arguments": c.arguments,
                "output": results[c.id],
            }
            for c in calls
            if c.name in offered
        )
        turns = [
            assistant_turn(response, fmt),
            *result_turns([(c.id, results[c.id]) for c in calls], fmt),
        ]
        state["body"] = {**state["body"], "messages": [*state["body"]["messages"], *turns]}

    async def _pause(
        self,
        principal: Principal,
        state: dict[str, Any],
        response: dict[str, Any],
        calls: list[Call],
        *,
        pending: list[Call],
        decided: dict[str, str],
    ) -> Outcome:
        now = self._clock()
        session_id = "sess_" + secrets.token_hex(16)
        expires_at = now + self._ttl
        offered = {exposed: (server, tool) for exposed, server, tool in state["offered"]}
        waiting = [
            {
                "id": c.id,
                "name": offered[c.name][1],
                "arguments": c.arguments,
                "server": offered[c.name][0],
                "exposed": c.name,
                "sha256": c.sha256,
            }
            for c in pending
        ]
        stored = {**state, "response": response, "decided": decided, "order": [c.id for c in calls]}
        await self._repo.create_session(
            SessionRow(
                session_id=session_id,
                user_id=principal.user_id,
                job_id=state.get("job_id"),
                state=msgspec.json.encode(stored).decode(),
                pending=msgspec.json.encode(waiting).decode(),
                status="pending",
                expires_at=expires_at,
                created_at=now,
                updated_at=now,
            )
        )
        body = only_calls(response, {c.id for c in pending}, state["fmt"])
        body.update(
            status="require_confirmation",
            session_id=session_id,
            expires_at=math.ceil(expires_at),
            tool_calls=[{k: w[k] for k in ("id", "name", "arguments", "server")} for w in waiting],
        )
        return Outcome(body, session_id, ran=tuple(state.get("ran", ())))

    async def resume(
        self, principal: Principal, request_id: str, session: SessionRow, results: dict[str, str]
    ) -> Outcome:
        """Carry on after a confirmation: ``results`` holds the approved and rejected calls."""
        state: dict[str, Any] = msgspec.json.decode(session.state)
        results = {**state.pop("decided"), **results}
        response = state.pop("response")
        calls = [c for c in calls_of(response, state["fmt"]) if c.id in results]
        state.pop("order", None)
        state["ran"] = []  # what runs from here on is this confirmation's
        self._append(state, response, calls, results)
        return await self._rounds(principal, request_id, state, None)

"""One MCP server as the gateway knows it: how to reach it, the options its session runs with,
its status, the tools it offers and the error a failed call raises.

``mcp.py`` (the manager) and ``mcp_session.py`` (one supervised session) both build on these,
and neither imports the other's module for them. ``env`` reaches only the child process and
``headers`` only the HTTP requests: neither is logged nor in a ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lowart.security.ssrf import DestinationPolicy

ServerStatus = Literal["starting", "running", "failed"]


class ToolCallError(Exception):
    """A tool could not be run: unknown or failed server, timeout, or the server died mid-call."""


@dataclass(frozen=True)
class ServerConfig:
    """How to reach one MCP server; ``env`` and ``headers`` are already decrypted."""

    name: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        needed = "command" if self.transport == "stdio" else "url"
        if not getattr(self, needed):
            raise ValueError(f"MCP server {self.name!r} needs a {needed}")


@dataclass(frozen=True)
class ToolInfo:
    """One tool a server offers."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class SessionOptions:
    call_timeout_s: float
    list_refresh_s: float
    restart_backoff_s: float
    start_timeout_s: float
    destinations: DestinationPolicy

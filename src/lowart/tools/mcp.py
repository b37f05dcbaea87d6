"""MCP servers the gateway runs: one long-lived client session each, supervised and restarted.

The sessions themselves (``mcp_session.py``) hold the MCP SDK, which costs
about half a second and tens of MiB to import: it is loaded when the first server starts, so a
gateway with no tool server never pays for it.
"""

from __future__ import annotations

import asyncio
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

from lowart.security.ssrf import DestinationPolicy
from lowart.tools.mcp_server import (
    ServerConfig,
    ServerStatus,
    SessionOptions,
    ToolCallError,
    ToolInfo,
)

if TYPE_CHECKING:
    from lowart.tools.mcp_session import Session


def _sessions() -> ModuleType:
    """The session module, imported on first use (see the module's docstring)."""
    return importlib.import_module("lowart.tools.mcp_session")


class MCPManager:
    """Runs the registered MCP servers and calls their tools; the app's lifespan closes it.

    Each server has a supervisor task: it connects, lists the tools, refreshes them every
    ``list_refresh_s`` and reconnects with backoff when the connection ends. A tool reporting
    an error (``isError``) is no exception: ``call`` returns ``"Tool error: <its text>"`` for
    the model to read. ``ToolCallError`` is for failures around the tool.
    """

    def __init__(
        self,
        *,
        call_timeout_s: float = 30,
        list_refresh_s: float = 60,
        restart_backoff_s: float = 1.0,
        start_timeout_s: float = 30,
        destinations: DestinationPolicy | None = None,
    ) -> None:
        self._options = SessionOptions(
            call_timeout_s,
            list_refresh_s,
            restart_backoff_s,
            start_timeout_s,
            destinations or DestinationPolicy(),
        )
        self._servers: dict[str, Session] = {}

    async def start(self, config: ServerConfig, *, keep_retrying: bool = False) -> None:
        """Start a server, or replace the one of that name; return once its tools are listed.

        Raises ``ToolCallError`` with the reason if the first attempt fails. The server is then
        dropped, unless ``keep_retrying`` (gateway start-up): it stays ``failed`` and is retried.
        """
        await self.stop(config.name)
        server = self._servers[config.name] = _sessions().Session(config, self._options)
        await server.start()
        if server.status != "failed":
            return
        reason = server.last_error
        if not keep_retrying and self._servers.get(config.name) is server:
            await self.stop(config.name)
        raise ToolCallError(f"MCP server {config.name!r} failed to start: {reason}")

    async def stop(self, name: str) -> None:
        """Stop a server (ending its process) and forget it; an unknown name is ignored."""
        server = self._servers.pop(name, None)
        if server is not None:
            await server.stop()

    async def close(self) -> None:
        """Stop every server."""
        servers, self._servers = list(self._servers.values()), {}
        await asyncio.gather(*(server.stop() for server in servers))

    def running(self) -> dict[str, ServerConfig]:
        """Each server this manager runs (or keeps retrying), with its configuration."""
        return {name: server.config for name, server in self._servers.items()}

    def status(self, name: str) -> ServerStatus | None:
        """``running``, ``starting`` (a start or restart under way), ``failed``; None if unknown."""
        return server.status if (server := self._servers.get(name)) else None

    def tools(self, name: str) -> list[ToolInfo] | None:
        """The server's tools as last listed; None if no server has that name."""
        return list(server.tools) if (server := self._servers.get(name)) else None

    async def call(self, name: str, tool: str, arguments: dict[str, Any]) -> str:
        """Run one tool and return its text; a (re)starting server is waited for, in the timeout."""
        if (server := self._servers.get(name)) is None:
            raise ToolCallError(f"No MCP server named {name!r}.")
        return await server.call(tool, arguments)

"""The MCP servers this process runs, kept equal to the registered ones."""

from __future__ import annotations

import asyncio

import structlog

from lowart.security.secretbox import SecretBox
from lowart.storage.tools import ServerRow, ToolRepository
from lowart.tools.mcp import MCPManager
from lowart.tools.mcp_server import ToolCallError
from lowart.tools.servers import server_config

log = structlog.get_logger()


class ToolServers:
    """Reconciles the running MCP servers with the registered ones."""

    def __init__(self, mcp: MCPManager, repo: ToolRepository, box: SecretBox) -> None:
        self._mcp = mcp
        self._repo = repo
        self._box = box

    async def reconcile(self) -> None:
        """Run exactly the registered MCP servers, starting them together: at start-up, and
        when another instance registered, changed or deleted one. One that fails is logged,
        shows ``failed`` and keeps being retried; it never stops the gateway."""
        rows = await self._repo.servers()
        running = self._mcp.running()
        for name in running.keys() - {row.name for row in rows}:
            await self._mcp.stop(name)
        changed = [r for r in rows if running.get(r.name) != server_config(r, self._box)]
        await asyncio.gather(*(self._start(row) for row in changed))

    async def _start(self, row: ServerRow) -> None:
        try:
            await self._mcp.start(server_config(row, self._box), keep_retrying=True)
        except ToolCallError as exc:  # one broken tool server must not stop the gateway
            log.warning("mcp_server_start_failed", server=row.name, error=str(exc))

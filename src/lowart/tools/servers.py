"""Registered MCP servers as the manager runs them: stored rows with their secrets opened."""

from __future__ import annotations

import msgspec

from lowart.security.secretbox import SecretBox
from lowart.storage.sealed import mcp_secret_context
from lowart.storage.tools import ServerRow
from lowart.tools.mcp_server import ServerConfig


def server_config(row: ServerRow, box: SecretBox) -> ServerConfig:
    """A stored server with its secrets decrypted (they go to the process, nowhere else)."""

    def secrets_of(field: str, stored: str | None) -> dict[str, str]:
        return (
            msgspec.json.decode(box.decrypt(stored, mcp_secret_context(row.name, field)))
            if stored
            else {}
        )

    return ServerConfig(
        name=row.name,
        transport="http" if row.transport == "http" else "stdio",
        command=row.command,
        args=tuple(msgspec.json.decode(row.args)) if row.args else (),
        env=secrets_of("env", row.env),
        url=row.url,
        headers=secrets_of("headers", row.headers),
    )

"""Tool policies: which rule applies to a call. Pure: rows in, a decision out."""

from __future__ import annotations

from collections.abc import Iterable

from lowart.storage.tools import PolicyRow

AUTO, CONFIRM, BLOCK = "auto", "confirm", "block"
POLICIES = (AUTO, CONFIRM, BLOCK)
DEFAULT = CONFIRM


def resolve(rows: Iterable[PolicyRow], tool: str, server: str, user_id: str) -> str:
    """The most specific row wins: user and server, then user, then server, then global.

    With no row for the tool at all, the policy is ``confirm``.
    """
    best: tuple[int, str] | None = None
    for row in rows:
        if row.tool_name != tool:
            continue
        if row.server is not None and row.server != server:
            continue
        if row.user_id is not None and row.user_id != user_id:
            continue
        rank = 2 * (row.user_id is not None) + (row.server is not None)
        if best is None or rank > best[0]:
            best = (rank, row.policy)
    return best[1] if best is not None else DEFAULT

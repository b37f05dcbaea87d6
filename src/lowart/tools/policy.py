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


def _names_match(rule: object, tool: str) -> bool:
    """An OpenAI tool filter (``{"tool_names": [...], "read_only": …}``) naming ``tool``."""
    if not isinstance(rule, dict):
        return False
    names = rule.get("tool_names")
    return isinstance(names, list) and tool in names


def caller_wants_approval(require_approval: object, tool: str) -> bool:
    """Whether a request's ``require_approval`` (OpenAI's mcp tool field: ``"always"``,
    ``"never"`` or ``{"always": filter, "never": filter}``) asks to confirm ``tool``. The
    caller may only tighten the admin's policy: ``"never"`` leaves it as it is."""
    if require_approval == "always":
        return True
    if isinstance(require_approval, dict):
        return _names_match(require_approval.get("always"), tool)
    return False


def tightened(policy: str, caller_wants: bool) -> str:
    """The admin's policy, or ``confirm`` where the caller asks for it and the admin said
    ``auto`` (``block`` stays: the caller cannot loosen, only tighten)."""
    return CONFIRM if caller_wants and policy == AUTO else policy

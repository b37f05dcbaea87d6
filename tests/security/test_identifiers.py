"""Identifiers and enum values with a line break or a NUL at the end are refused, not stored.

Python's ``$`` also matches before a final ``\\n``, so ``^...$`` patterns once let ``"mnl\\n"`` in
as a model id (its ``x-lowart-model`` header then broke every answer) and ``"active\\n"`` in as a
user status (which locked the user out). Each admin field that names something, and each enum,
gets each suffix; the admin state is the same before and after.
"""

from __future__ import annotations

from typing import Any

from tests.conftest import Gateway

SUFFIXES = ("\n", "\r\n", "\x00")
UNREACHABLE = "http://127.0.0.1:9/mcp"


def _cases(s: str) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("POST", "/admin/users/quota", {"user_id": "carol" + s}),
        ("POST", "/admin/users/quota", {"user_id": "carol", "models": ["mock" + s]}),
        ("PATCH", "/admin/users/alice", {"status": "active" + s}),
        ("PATCH", "/admin/users/alice", {"status": "disabled" + s}),
        ("PATCH", "/admin/users/alice", {"models": ["mock" + s]}),
        ("POST", "/admin/models", {"model_id": "mnl" + s, "vendor_type": "Mock"}),
        ("PATCH", "/admin/models/mock", {"model_id": "mock" + s}),
        ("PUT", "/admin/models/second/fallbacks", {"fallbacks": ["mock" + s]}),
        ("POST", "/admin/tools/policies", {"tool_name": "t", "policy": "auto" + s}),
        ("POST", "/admin/tools/policies", {"tool_name": "t", "policy": "auto", "server": "a" + s}),
        ("POST", "/admin/tools/policies", {"tool_name": "t", "policy": "auto", "user_id": "u" + s}),
        ("POST", "/admin/mcp/servers", {"name": "a" + s, "transport": "http", "url": UNREACHABLE}),
        ("POST", "/admin/mcp/servers", {"name": "a", "transport": "http" + s, "url": UNREACHABLE}),
    ]


def _state(gw: Gateway) -> list[Any]:
    paths = ["/admin/users", "/admin/models", "/admin/tools/policies", "/admin/mcp/servers"]
    paths.append("/admin/models/second/fallbacks")
    return [gw.admin("GET", path).json() for path in paths]


def test_a_line_break_or_nul_after_an_identifier_is_a_400_and_nothing_changes(
    gateway: Gateway,
) -> None:
    gateway.create_user("alice")
    gateway.add_model("second", "Mock")
    before = _state(gateway)
    for method, path, body in [case for s in SUFFIXES for case in _cases(s)]:
        answer = gateway.admin(method, path, json=body)
        assert answer.status_code == 400, (method, path, body, answer.text)
        assert answer.json()["error"]["type"] == "invalid_request_error"
    assert _state(gateway) == before


def test_the_vendor_is_the_one_name_read_loosely(gateway: Gateway) -> None:
    """vendor_type is case- and whitespace-insensitive (docs/api.md): a trailing line break is
    trimmed and the canonical name stored; a NUL is not whitespace and is refused."""
    created = gateway.add_model("loose", "mock\r\n")
    assert created["vendor_type"] == "Mock"
    body = {"model_id": "nul", "vendor_type": "Mock\x00"}
    assert gateway.admin("POST", "/admin/models", json=body).status_code == 400

"""The admin audit log (docs/api.md, "Admin audit log"; S17 of docs/reliability.md): every
admin route that writes, taken from the served route table, leaves exactly one row naming the
admin, the action, the target, the address and the request, with secrets shown as ``***``;
``GET /admin/audit`` filters and pages; the command line's writes are audited as ``cli``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from lowart.security.forwarded import client_address, networks
from tests.conftest import ADMIN_KEY, Gateway
from tests.e2e.serve_process import run_cli, sql
from tests.integration.test_routes import _served

EXAMPLE_MCP = Path(__file__).resolve().parents[2] / "examples" / "mcp_weather.py"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
CANARIES = ("sk-canary-vendor-key-0001", "sk-canary-vendor-key-0002", "canary-mcp-env-0003")


@dataclass
class Write:
    """One admin write to make: its route, the concrete request, and the row it must leave."""

    method: str
    route: str
    path: str  # formatted with what earlier answers named ({key_id})
    action: str
    target: str  # formatted like ``path``; "{answer_id}": the answer's ``id``
    body: dict[str, Any] | None = None
    params: dict[str, str] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], bool] = lambda changes: True


def _server(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "transport": "stdio",
        "command": sys.executable,
        "args": [str(EXAMPLE_MCP)],
        **extra,
    }


MASKED_SET = {"from": None, "to": "***"}
PASS_THROUGH = "def on_request(req, ctx):\n    return req\n"
# The writes whose answer's id later cases name: the name they give it.
NAMED_IDS = {"keys.create": "answer_id", "transforms.create": "transform_id"}
SCENARIO = [
    Write(
        "POST", "/admin/users/quota", "/admin/users/quota", "users.upsert", "audited",
        {"user_id": "audited", "rpm_limit": 10},
        check=lambda c: c["rpm_limit"] == {"from": None, "to": 10},
    ),
    Write(
        "PATCH", "/admin/users/{user_id}", "/admin/users/audited", "users.update", "audited",
        {"rpm_limit": 5, "name": "Audited"},
        check=lambda c: c == {
            "rpm_limit": {"from": 10, "to": 5}, "name": {"from": None, "to": "Audited"}
        },
    ),
    Write(
        "POST", "/admin/teams", "/admin/teams", "teams.create", "audited-team",
        {"team_id": "audited-team", "rpm_limit": 10, "budget": "2.50"},
        check=lambda c: c["rpm_limit"] == {"from": None, "to": 10}
        and c["budget"] == {"from": None, "to": "2.500000"},
    ),
    Write(
        "PATCH", "/admin/teams/{team_id}", "/admin/teams/audited-team", "teams.update",
        "audited-team", {"rpm_limit": 5},
        check=lambda c: c == {"rpm_limit": {"from": 10, "to": 5}},
    ),
    Write(
        "PUT", "/admin/teams/{team_id}/members/{user_id}",
        "/admin/teams/audited-team/members/audited", "teams.add_member", "audited-team",
        check=lambda c: c == {"members": {"from": [], "to": ["audited"]}},
    ),
    Write(
        "DELETE", "/admin/teams/{team_id}/members/{user_id}",
        "/admin/teams/audited-team/members/audited", "teams.remove_member", "audited-team",
        check=lambda c: c == {"members": {"from": ["audited"], "to": []}},
    ),
    Write(
        "DELETE", "/admin/teams/{team_id}", "/admin/teams/audited-team", "teams.delete",
        "audited-team", check=lambda c: c["rpm_limit"] == {"from": 5, "to": None},
    ),
    Write(
        "POST", "/admin/users/{user_id}/keys", "/admin/users/audited/keys", "keys.create",
        "{answer_id}", {"name": "second"},
        check=lambda c: c["key"] == MASKED_SET and c["user_id"]["to"] == "audited",
    ),
    Write(
        "DELETE", "/admin/keys/{key_id}", "/admin/keys/{answer_id}", "keys.revoke", "{answer_id}",
        check=lambda c: list(c) == ["revoked_at"] and c["revoked_at"]["from"] is None,
    ),
    Write(
        "DELETE", "/admin/users/{user_id}", "/admin/users/audited", "users.disable", "audited",
        check=lambda c: c == {"status": {"from": "active", "to": "disabled"}},
    ),
    Write(
        "POST", "/admin/models", "/admin/models", "models.create", "audited-model",
        {"model_id": "audited-model", "vendor_type": "Mock", "api_key": CANARIES[0]},
        check=lambda c: c["api_key"] == MASKED_SET and c["vendor_type"]["to"] == "Mock",
    ),
    Write(
        "PUT", "/admin/models/{model_id}/prices", "/admin/models/audited-model/prices",
        "prices.set", "audited-model", {"input": "3", "effective_from": 1700000000},
        check=lambda c: c["prices"]["from"] == []
        and [p["input"] for p in c["prices"]["to"]] == ["3.000000"],
    ),
    Write(
        "PUT", "/admin/models/{model_id}", "/admin/models/audited-model", "models.replace",
        "audited-model", {"vendor_type": "Mock", "timeout_s": 30},
        check=lambda c: c == {"timeout_s": {"from": 600.0, "to": 30.0}},
    ),
    Write(
        "PATCH", "/admin/models/{model_id}", "/admin/models/audited-model", "models.update",
        "audited-model", {"api_key": CANARIES[1]},
        check=lambda c: c == {"api_key": {"from": "***", "to": "***"}},
    ),
    Write(
        "PUT", "/admin/models/{model_id}/fallbacks", "/admin/models/audited-model/fallbacks",
        "fallbacks.set", "audited-model", {"fallbacks": ["mock"]},
        check=lambda c: c == {"fallbacks": {"from": [], "to": ["mock"]}},
    ),
    Write(
        "POST", "/admin/models/{model_id}/deployments", "/admin/models/audited-model/deployments",
        "deployments.create", "audited-model/second",
        {"id": "second", "vendor_type": "Mock", "api_key": CANARIES[0], "rpm_cap": 10},
        check=lambda c: c["api_key"] == MASKED_SET and c["rpm_cap"] == {"from": None, "to": 10},
    ),
    Write(
        "PATCH", "/admin/models/{model_id}/deployments/{deployment_id}",
        "/admin/models/audited-model/deployments/second", "deployments.update",
        "audited-model/second", {"weight": 3, "api_key": CANARIES[1]},
        check=lambda c: c == {
            "weight": {"from": 1.0, "to": 3.0}, "api_key": {"from": "***", "to": "***"}
        },
    ),
    Write(
        "DELETE", "/admin/models/{model_id}/deployments/{deployment_id}",
        "/admin/models/audited-model/deployments/second", "deployments.delete",
        "audited-model/second", check=lambda c: c["vendor_type"] == {"from": "Mock", "to": None},
    ),
    Write(
        "POST", "/admin/mcp/servers", "/admin/mcp/servers", "mcp_servers.register", "audited-mcp",
        _server("audited-mcp", env={"SECRET_TOKEN": CANARIES[2]}),
        check=lambda c: c["env"] == MASKED_SET and c["transport"]["to"] == "stdio",
    ),
    Write(
        "POST", "/admin/mcp/register", "/admin/mcp/register", "mcp_servers.register",
        "audited-mcp", _server("audited-mcp", env={"SECRET_TOKEN": CANARIES[2]}),
        check=lambda c: c == {},  # the same secret, sealed anew: no change
    ),
    Write(
        "DELETE", "/admin/mcp/servers/{name}", "/admin/mcp/servers/audited-mcp",
        "mcp_servers.delete", "audited-mcp",
        check=lambda c: c["env"] == {"from": "***", "to": None},
    ),
    Write(
        "POST", "/admin/tools/policies", "/admin/tools/policies", "tool_policies.set",
        "*:get_weather:audited",
        {"tool_name": "get_weather", "policy": "confirm", "user_id": "audited"},
        check=lambda c: c["policy"] == {"from": None, "to": "confirm"},
    ),
    Write(
        "DELETE", "/admin/tools/policies", "/admin/tools/policies", "tool_policies.delete",
        "*:get_weather:audited", params={"tool_name": "get_weather", "user_id": "audited"},
        check=lambda c: c["policy"] == {"from": "confirm", "to": None},
    ),
    Write(
        "POST", "/admin/transforms", "/admin/transforms", "transforms.create", "{transform_id}",
        {"model_id": "audited-model", "source": PASS_THROUGH},
        check=lambda c: c["source_sha256"]["from"] is None
        and c["model_id"] == {"from": None, "to": "audited-model"},
    ),
    Write(
        "PATCH", "/admin/transforms/{transform_id}", "/admin/transforms/{transform_id}",
        "transforms.update", "{transform_id}", {"on_error": "skip"},
        check=lambda c: c == {"on_error": {"from": "fail", "to": "skip"}},
    ),
    Write(  # a trial changes nothing, but runs the admin's code: recorded, with no changes
        "POST", "/admin/transforms/{transform_id}/test", "/admin/transforms/{transform_id}/test",
        "transforms.test", "{transform_id}", {"body": {"model": "audited-model", "messages": []}},
        check=lambda c: c == {},
    ),
    Write(
        "DELETE", "/admin/transforms/{transform_id}", "/admin/transforms/{transform_id}",
        "transforms.delete", "{transform_id}",
        check=lambda c: c["enabled"] == {"from": True, "to": None},
    ),
    Write(
        "DELETE", "/admin/models/{model_id}", "/admin/models/audited-model", "models.delete",
        "audited-model", check=lambda c: c["vendor_type"] == {"from": "Mock", "to": None},
    ),
]  # fmt: skip


def _admin_writes(gw: Gateway) -> set[tuple[str, str]]:
    """Every (method, route) of the route table that writes under /admin/."""
    document = httpx.get(gw.url + "/openapi.json").json()
    served = _served(gw)
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith("/admin/") and path in served
        for method in item
        if method.upper() in WRITES
    }


def _rows(gw: Gateway, **params: Any) -> list[dict[str, Any]]:
    response = gw.admin("GET", "/admin/audit", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


def test_every_admin_write_leaves_one_audit_row(gateway: Gateway) -> None:
    gw = gateway
    assert {(w.method, w.route) for w in SCENARIO} == _admin_writes(gw), (
        "an admin write route without a case here"
    )
    [admin_key] = gw.admin("GET", "/admin/users/admin/keys").json()["data"]
    named: dict[str, str] = {}
    for write in SCENARIO:
        before = {row["id"] for row in _rows(gw)}
        response = gw.admin(
            write.method, write.path.format(**named), json=write.body, params=write.params
        )
        assert response.status_code < 400, (write.action, response.text)
        if "id" in response.json() and write.action in NAMED_IDS:
            named[NAMED_IDS[write.action]] = str(response.json()["id"])
        new = [row for row in _rows(gw) if row["id"] not in before]
        assert len(new) == 1, (write.method, write.route, new)
        [row] = new
        assert (row["actor"], row["actor_key_id"]) == ("admin", admin_key["id"])
        assert (row["action"], row["target"]) == (write.action, write.target.format(**named))
        assert row["client_address"] == "127.0.0.1"
        assert row["request_id"] == response.headers["x-request-id"]
        assert write.check(row["changes"]), (write.action, row["changes"])
    stored = json.dumps(gw.sql("SELECT * FROM admin_audit"))
    assert not [c for c in CANARIES if c in stored]
    # A write that fails records nothing.
    count = len(_rows(gw))
    assert gw.admin("PATCH", "/admin/users/nobody", json={"rpm_limit": 1}).status_code == 404
    assert gw.admin("POST", "/admin/models", json={"model_id": "x"}).status_code == 400
    assert len(_rows(gw)) == count


def test_the_log_filters_and_pages(gateway: Gateway) -> None:
    gw = gateway
    for i in range(5):
        gw.create_user(f"paged-{i}")
    gw.admin("PATCH", "/admin/users/paged-0", json={"rpm_limit": 1})
    assert [r["target"] for r in _rows(gw, action="users.update")] == ["paged-0"]
    assert len(_rows(gw, target="paged-3")) == 1
    assert len(_rows(gw, actor="admin")) == 6 and _rows(gw, actor="cli") == []
    every = _rows(gw)
    ids = [r["id"] for r in every]
    assert ids == sorted(ids, reverse=True)
    first = gw.admin("GET", "/admin/audit", params={"limit": 4}).json()
    second = gw.admin("GET", "/admin/audit", params={"limit": 4, "cursor": first["next_cursor"]})
    assert [r["id"] for r in first["data"] + second.json()["data"]] == ids
    assert second.json()["next_cursor"] is None
    # Just before the fourth newest write: the API shows times to the microsecond, which a
    # float of Unix seconds cannot always hold exactly, and the writes are milliseconds apart.
    shown = dt.datetime.fromisoformat(every[3]["at"]).timestamp()
    middle = f"{shown - 0.0001:.6f}"
    assert {r["id"] for r in _rows(gw, since=middle)} == {r["id"] for r in every[:4]}
    assert {r["id"] for r in _rows(gw, until=middle)} == {r["id"] for r in every[4:]}
    for bad in ({"limit": "0"}, {"limit": "x"}, {"cursor": "-1"}, {"since": "yesterday"}):
        assert gw.admin("GET", "/admin/audit", params=bad).status_code == 400, bad
    user = gw.create_user("not-an-admin")
    with gw.client(user) as client:
        assert client.get("/admin/audit").status_code == 403


@pytest.mark.pg
def test_on_postgresql_a_write_is_audited_and_found(
    make_gateway: Callable[..., Gateway], pg_url: str
) -> None:
    gw = make_gateway(database_url=pg_url)
    gw.add_model("pg-model", "Mock", api_key=CANARIES[0])
    assert gw.admin("PATCH", "/admin/models/pg-model", json={"timeout_s": 5}).status_code == 200
    [update] = _rows(gw, action="models.update", target="pg-model")
    assert update["changes"] == {"timeout_s": {"from": 600.0, "to": 5.0}}
    [create] = _rows(gw, action="models.create", until=update["at"])
    assert create["changes"]["api_key"] == MASKED_SET and create["id"] < update["id"]
    assert CANARIES[0] not in json.dumps(_rows(gw))


def test_behind_a_trusted_proxy_the_forwarded_client_is_recorded(
    make_gateway: Callable[..., Gateway],
) -> None:
    gw = make_gateway(trusted_proxies=("127.0.0.0/8",))
    forwarded = {"x-forwarded-for": "203.0.113.9, 198.51.100.7, 127.0.0.5"}
    gw.admin("POST", "/admin/users/quota", json={"user_id": "proxied"}, headers=forwarded)
    [row] = _rows(gw, target="proxied")
    assert row["client_address"] == "198.51.100.7"  # the first untrusted hop from the right


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("10.0.0.2", ["1.2.3.4"], [], "10.0.0.2"),  # no trusted proxy: the header is ignored
        ("10.0.0.2", ["1.2.3.4"], ["192.168.0.0/16"], "10.0.0.2"),  # an untrusted peer
        ("10.0.0.2", ["6.6.6.6, 1.2.3.4"], ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.2", ["6.6.6.6", "1.2.3.4, 10.0.0.9"], ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.2", ["10.0.0.7, 10.0.0.9"], ["10.0.0.0/8"], "10.0.0.7"),  # all trusted
        ("10.0.0.2", [], ["10.0.0.0/8"], "10.0.0.2"),
        ("::1", ["2001:db8::1"], ["::1/128"], "2001:db8::1"),
        ("10.0.0.2", ["not-an-ip"], ["10.0.0.0/8"], "not-an-ip"),
        (None, ["1.2.3.4"], ["10.0.0.0/8"], None),  # a Unix socket has no peer address
    ],
)
def test_client_address(
    peer: str | None, forwarded: list[str], trusted: list[str], client: str | None
) -> None:
    assert client_address(peer, forwarded, networks(trusted)) == client


def test_the_cli_writes_are_audited_as_cli(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/lowart.db", "ADMIN_KEY": ADMIN_KEY}
    # Each command starts a process (seconds): three, one per kind of object the CLI writes
    # through the same recorder (`keys create` and `admin-key --reset` are keys as in the API).
    for args in (
        ["users", "create", "by-cli", "--rpm", "7"],
        ["users", "update", "by-cli", "--rpm", "8"],
        ["models", "add", "cli-model", "--vendor", "Mock", "--api-key", CANARIES[0]],
    ):
        result = run_cli(args, tmp_path, env=env)
        assert result.returncode == 0, result.stderr
    rows = sql(
        tmp_path / "lowart.db", "SELECT actor, action, target, changes FROM admin_audit ORDER BY id"
    )
    assert [(a, act) for a, act, _, _ in rows] == [
        ("cli", "users.create"),
        ("cli", "users.update"),
        ("cli", "models.create"),
    ]
    assert json.loads(rows[1][3]) == {"rpm_limit": {"from": 7, "to": 8}}
    assert json.loads(rows[2][3])["api_key"] == MASKED_SET
    assert CANARIES[0] not in json.dumps(rows)

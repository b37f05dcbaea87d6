"""Canary secrets (docs/reliability.md, S4): unique secrets planted everywhere a secret enters the
gateway, then searched for (whole, and every 8-character piece) in everything that leaves it:
its logs, ``/metrics``, the database file and its dump (request logs on, so their bodies are
there too), and every response it sent.

Planted: the master key, the admin key, a user's key, a vendor key (also echoed back by an
upstream 401, as OpenAI does; sent as a bearer token, in ``x-api-key`` and in Azure's
``api-key``), an MCP server's env secret and header, and keys presented in
``Authorization``, ``x-api-key`` and ``?key=``. Expected hits: 0, except a new key in the one
response that creates it. The vendor key goes down every vendor path with forced errors: an
upstream 401 (OpenAI, Anthropic, ComfyUI), a refused connection, a TLS handshake that fails, and
a refused ComfyUI websocket handshake (whose client exception carries the request's headers).
"""

from __future__ import annotations

import json
import secrets
import socket
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from lowart.testing.asgi import FakeUpstream, read_body, send_json
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.e2e.serve_process import ServeProcess, db_dump
from tests.security.tenants import EXAMPLE_MCP

PIECE = 8


def canary(kind: str) -> str:
    return f"sk-CANARY-{kind}-{secrets.token_hex(16)}"


class EchoingUpstream(FakeUpstream):
    """A vendor that refuses every key, quoting it back (OpenAI does, masked); as a FakeUpstream
    it refuses websocket handshakes too (403)."""

    request_id_header = b"x-request-id"

    def __init__(self) -> None:
        super().__init__()
        self.refused = 0
        self.api_key_refused = 0

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        await read_body(receive)
        self.refused += 1
        self.api_key_refused += "api-key" in headers
        key = headers.get("authorization", "").removeprefix("Bearer ")
        key = key or headers.get("x-api-key") or headers.get("api-key")
        body = {
            "error": {
                "message": f"Incorrect API key provided: {key}.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        await send_json(send, 401, json.dumps(body).encode())


@dataclass
class Traffic:
    """Every response the tests received, each with the key it may legitimately carry."""

    responses: list[tuple[str, str | None]] = field(default_factory=list)

    def keep(self, response: httpx.Response, may_show: str | None = None) -> httpx.Response:
        response.read()
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.responses.append((f"{response.status_code}\n{head}\n\n{response.text}", may_show))
        return response


@pytest.fixture
def echoing() -> Iterator[tuple[EchoingUpstream, str]]:
    upstream = EchoingUpstream()
    with run_in_thread(upstream) as server:
        yield upstream, server.base_url + "/v1"


def _closed_port() -> int:
    """A local port nothing listens on: connections to it are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _vendor_models(openai_url: str, echoing_url: str) -> list[tuple[str, str, str]]:
    """``(model_id, vendor, base_url)`` of every vendor path, each failing its own way."""
    echoing_root = echoing_url.removesuffix("/v1")
    return [
        ("gpt-ok", "OpenAI", openai_url),
        ("gpt-refused", "OpenAI", echoing_url),
        ("gpt-azure-refused", "OpenAI", echoing_url),  # the key in api-key, as Azure takes it
        ("claude-refused", "Anthropic", echoing_root),
        ("gpt-unreachable", "OpenAI", f"http://127.0.0.1:{_closed_port()}/v1"),
        ("gpt-tls", "OpenAI", openai_url.replace("http://", "https://")),
        ("comfy-refused", "ComfyUI", echoing_root),
    ]


WORKFLOW = {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8}}}
AZURE = {"auth_header": "api-key", "query": {"api-version": "2024-10-21"}}


def _params(model_id: str, vendor_type: str) -> dict[str, object]:
    if vendor_type == "ComfyUI":
        return {"workflow": WORKFLOW}
    return AZURE if "azure" in model_id else {}


def _pieces(secret: str) -> set[str]:
    return {secret[i : i + PIECE] for i in range(len(secret) - PIECE + 1)}


def _hits(secret: str, haystack: str) -> list[str]:
    return sorted(p for p in _pieces(secret) if p in haystack)


def _database(db: Path) -> str:
    raw, dump = db_dump(db)
    return raw.decode("latin-1") + "\n" + dump


def test_no_canary_leaves_the_gateway(
    tmp_path: Path, fake_openai: tuple[FakeOpenAI, str], echoing: tuple[EchoingUpstream, str]
) -> None:
    master, admin = canary("master"), canary("admin")
    vendor, mcp_env, mcp_header = canary("vendor"), canary("mcp-env"), canary("mcp-header")
    presented = [canary("bearer"), canary("x-api-key"), canary("query")]
    traffic = Traffic()
    env = {"MASTER_KEY": master, "ADMIN_KEY": admin, "LOG_LEVEL": "debug", "LOG_FORMAT": "json"}
    env["REQUEST_LOG"] = "true"  # the logged bodies are in the database searched below
    with ServeProcess(tmp_path, env) as server:
        with server.client(admin) as root:
            created = root.post("/admin/users/quota", json={"user_id": "canary-user"})
            user_key = str(created.json()["api_key"])
            traffic.keep(created, may_show=user_key)
            models = _vendor_models(fake_openai[1], echoing[1])
            for model_id, vendor_type, base_url in models:
                body = {
                    "model_id": model_id,
                    "vendor_type": vendor_type,
                    "base_url": base_url,
                    "api_key": vendor,
                    "upstream_model": "ok",
                    "params": _params(model_id, vendor_type),
                }
                added = traffic.keep(root.post("/admin/models", json=body))
                assert added.status_code == 201, added.text
            mcp = {
                "name": "weather",
                "transport": "stdio",
                "command": sys.executable,
                "args": [str(EXAMPLE_MCP)],
                "env": {"SECRET_TOKEN": mcp_env},
            }
            traffic.keep(root.post("/admin/mcp/servers", json=mcp))
            http_mcp = {
                "name": "remote",
                "transport": "http",
                "url": "http://127.0.0.1:9/mcp",
                "headers": {"authorization": f"Bearer {mcp_header}"},
            }
            traffic.keep(root.post("/admin/mcp/servers", json=http_mcp))
            for path in (
                "/admin/models",
                "/admin/models/gpt-ok",
                "/admin/mcp/servers",
                "/admin/users",
                "/admin/users/canary-user/keys",
                "/admin/usage",
            ):
                traffic.keep(root.get(path))
        with server.client(user_key) as client:
            hello = [{"role": "user", "content": "hello"}]
            drawing = {"model": "comfy-refused", "prompt": "a canary"}
            refused = traffic.keep(client.post("/v1/images/generations", json=drawing))
            assert refused.status_code == 502, refused.text
            for model in [m for m, vendor_type, _ in models if vendor_type != "ComfyUI"] + ["nope"]:
                traffic.keep(
                    client.post("/v1/chat/completions", json={"model": model, "messages": hello})
                )
                traffic.keep(
                    client.post(
                        "/v1/chat/completions",
                        json={"model": model, "messages": hello, "stream": True},
                    )
                )
                traffic.keep(
                    client.post(
                        "/v1/messages", json={"model": model, "max_tokens": 5, "messages": hello}
                    )
                )
            traffic.keep(client.get("/v1/usage"))
            traffic.keep(client.get("/v1/models"))
        with server.client(None) as anonymous:
            traffic.keep(
                anonymous.get("/v1/models", headers={"authorization": f"Bearer {presented[0]}"})
            )
            traffic.keep(anonymous.get("/admin/users", headers={"x-api-key": presented[1]}))
            traffic.keep(anonymous.get(f"/v1/models?key={presented[2]}"))
            traffic.keep(
                anonymous.post("/v1/messages", headers={"x-api-key": presented[1]}, json={})
            )
            traffic.keep(
                anonymous.get("/v1/files/file_x", params={"sig": presented[2], "exp": "1"})
            )
            metrics = traffic.keep(anonymous.get("/metrics")).text
        server.terminate()
        logs = server.stdout + server.stderr
    assert "lowart_stopped" in logs or "lowart_started" in logs  # the log was captured
    for path in ("comfyui_ws_unavailable", "connection refused by", "TLS handshake"):
        assert path in logs, path  # each failing vendor path was taken and logged
    database = _database(tmp_path / "lowart.db")
    with sqlite3.connect(tmp_path / "lowart.db") as conn:
        (logged,) = conn.execute("SELECT count(*) FROM request_logs").fetchone()
    conn.close()
    assert logged >= 10  # every chat, message and image request above was logged

    secrets_planted = {
        "master": master,
        "admin": admin,
        "user": user_key,
        "vendor": vendor,
        "mcp-env": mcp_env,
        "mcp-header": mcp_header,
    }
    secrets_planted |= {f"presented-{i}": p for i, p in enumerate(presented)}
    hits: dict[str, list[str]] = {}
    for name, secret in secrets_planted.items():
        places = {"logs": logs, "metrics": metrics, "database": database}
        for i, (text, may_show) in enumerate(traffic.responses):
            if may_show != secret:
                places[f"response {i}"] = text
        for place, text in places.items():
            found = _hits(secret, text)
            if found:
                hits[f"{name} in {place}"] = found
    assert len(traffic.responses) >= 25
    assert echoing[0].refused >= 3  # the vendor key really came back to the gateway
    assert echoing[0].api_key_refused >= 1  # and so did the one sent in api-key
    assert user_key in traffic.responses[0][0]  # the one place a new key may appear
    assert not hits, hits

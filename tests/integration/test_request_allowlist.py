"""S9: client-supplied control-plane fields and headers never reach a vendor.

Bodies carry ``api_base``/``base_url`` pointing at a listener on 127.0.0.1 (which must see no
connection), ``api_key``, ``extra_headers``, ``fallbacks``, ``mock_response`` and friends; the
fake upstreams record every body and header they receive.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from lowart.formats.request_fields import ANTHROPIC_MESSAGES_FIELDS, OPENAI_CHAT_FIELDS
from lowart.testing.anthropic_fake import FakeAnthropic
from lowart.testing.openai_fake import FakeOpenAI
from lowart.testing.server import run_in_thread
from tests.conftest import Gateway

VENDOR_KEY = "sk-vendor-" + secrets.token_hex(8)
CANARY = "sk-CANARY-" + secrets.token_hex(8)


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it is offered."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    trap = Listener()
    yield trap
    trap.close()


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[tuple[FakeAnthropic, str]]:
    app = FakeAnthropic()
    with run_in_thread(app) as server:
        yield app, server.base_url


def _control_fields(trap: Listener) -> dict[str, Any]:
    url = f"http://127.0.0.1:{trap.port}"
    return {
        "api_base": url,
        "base_url": url + "/v1",
        "api_key": CANARY,
        "extra_headers": {"authorization": f"Bearer {CANARY}", "x-api-key": CANARY},
        "extra_body": {"api_base": url},
        "fallbacks": [{"model": "x", "api_base": url}],
        "router_settings_override": {"fallbacks": ["x"]},
        "mock_response": "owned",
        "mock_testing_fallbacks": True,
        "mock_testing_rate_limit_error": True,
        "vertex_credentials": "os.environ/OPENAI_API_KEY",
        "aws_secret_access_key": "oidc/file/etc/passwd",
        "litellm_params": {"api_base": url},
        "metadata": {"note": "metadata itself is a documented field"},
    }


CLIENT_HEADERS = {
    "openai-organization": "org-client",
    "openai-project": "proj-client",
    "anthropic-beta": "client-beta",
    "x-api-key": CANARY,
    "x-forwarded-for": "10.0.0.1",
    "cookie": f"session={CANARY}",
}


def _assert_clean(call: dict[str, Any], allowed: frozenset[str], auth: tuple[str, str]) -> None:
    assert set(call["body"]) <= allowed, set(call["body"]) - allowed
    header, value = auth
    assert call["headers"][header] == value
    for name, sent in call["headers"].items():
        assert CANARY not in sent, name
    for name in ("openai-organization", "openai-project", "x-forwarded-for", "cookie"):
        assert name not in call["headers"]
    assert CANARY not in str(call["body"])


Upstreams = tuple[FakeOpenAI, FakeAnthropic]


@pytest.fixture
def upstreams(
    fake_openai: tuple[FakeOpenAI, str], fake_anthropic: tuple[FakeAnthropic, str]
) -> Upstreams:
    return fake_openai[0], fake_anthropic[0]


@pytest.fixture
def gw(
    make_gateway: Callable[..., Gateway],
    fake_openai: tuple[FakeOpenAI, str],
    fake_anthropic: tuple[FakeAnthropic, str],
) -> Gateway:
    gateway = make_gateway()
    for vendor, base in (("OpenAI", fake_openai[1]), ("Anthropic", fake_anthropic[1])):
        gateway.add_model(
            vendor.lower(), vendor, base_url=base, api_key=VENDOR_KEY, upstream_model="ok"
        )
    return gateway


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model", ["openai", "anthropic"])
def test_chat_completions_send_only_documented_fields(
    gw: Gateway, upstreams: Upstreams, listener: Listener, model: str, stream: bool
) -> None:
    key = gw.create_user()
    marker = secrets.token_hex(4)
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"hello {marker}"}],
        "temperature": 0.5,
        "seed": 7,
        "stream": stream,
        "async": False,
        **_control_fields(listener),
    }
    with httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {key}"}) as client:
        response = client.post("/v1/chat/completions", json=body, headers=CLIENT_HEADERS)
    assert response.status_code == 200, response.text
    if model == "openai":
        (call,) = [c for c in upstreams[0].calls if marker in str(c["body"]["messages"])]
        _assert_clean(dict(call), OPENAI_CHAT_FIELDS, ("authorization", f"Bearer {VENDOR_KEY}"))
        assert call["body"]["seed"] == 7 and call["body"]["temperature"] == 0.5
    else:
        (call,) = [c for c in upstreams[1].calls if marker in str(c["body"]["messages"])]
        _assert_clean(dict(call), ANTHROPIC_MESSAGES_FIELDS, ("x-api-key", VENDOR_KEY))
        assert "anthropic-beta" not in call["headers"]  # not passed across formats
    assert listener.accepted == 0


@pytest.mark.parametrize("model", ["openai", "anthropic"])
def test_messages_send_only_documented_fields(
    gw: Gateway, upstreams: Upstreams, listener: Listener, model: str
) -> None:
    key = gw.create_user()
    marker = secrets.token_hex(4)
    body = {
        "model": model,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": f"hello {marker}"}],
        "top_k": 5,
        "mcp_servers": [{"type": "url", "url": f"http://127.0.0.1:{listener.port}/mcp"}],
        **_control_fields(listener),
    }
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01", **CLIENT_HEADERS}
    headers["x-api-key"] = key  # the gateway's own key; the canary goes in the body
    with httpx.Client(base_url=gw.url) as client:
        response = client.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    if model == "anthropic":
        (call,) = [c for c in upstreams[1].calls if marker in str(c["body"]["messages"])]
        _assert_clean(dict(call), ANTHROPIC_MESSAGES_FIELDS, ("x-api-key", VENDOR_KEY))
        assert call["body"]["top_k"] == 5
        assert "mcp_servers" not in call["body"]
        assert call["headers"]["anthropic-beta"] == "client-beta"  # allowlisted, same format
    else:
        (call,) = [c for c in upstreams[0].calls if marker in str(c["body"]["messages"])]
        _assert_clean(dict(call), OPENAI_CHAT_FIELDS, ("authorization", f"Bearer {VENDOR_KEY}"))
    assert listener.accepted == 0

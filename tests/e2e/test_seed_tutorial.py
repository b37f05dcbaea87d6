"""The project's seed tutorial (its curl walkthrough), replayed verbatim against the real server.

Each step sends the tutorial's own request bodies as raw bytes, with the tutorial's headers (the
confirm curl has no Content-Type). Steps whose capability belongs to a later issue are expected
failures that name that issue.
"""

from __future__ import annotations

import httpx
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import ADMIN_KEY, Gateway, wait_for

QUOTA_BODY = b"""{
    "user_id": "user_123",
    "rpm_limit": 100,
    "token_quota": 5000000
  }"""
CHAT_BODY = b"""{
  "model": "gpt-4o",
  "messages": [
    {"role": "user", "content": "Introduce the Rust language in one sentence."}
  ]
}"""
STREAM_BODY = CHAT_BODY.replace(b'"model": "gpt-4o",', b'"model": "gpt-4o",\n  "stream": true,')
ASYNC_BODY = CHAT_BODY.replace(b'"model": "gpt-4o",', b'"model": "gpt-4o",\n  "async": true,')
CONFIRM_BODY = b"""{
    "session_id": "sess_xyz",
    "approved_ids": ["call_id_1"]
  }"""
DEAD_UPSTREAM = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


@pytest.fixture
def tutorial(gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]) -> tuple[Gateway, str]:
    """Sections 2 and 3: the admin creates user_123; models and a fallback go in with sqlite3."""
    response = httpx.post(
        f"{gateway.url}/admin/users/quota",
        content=QUOTA_BODY,
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    key = response.json()["api_key"]
    gateway.sql(
        "INSERT INTO models (model_id, vendor_type, base_url, api_key) "
        "VALUES ('gpt-4o', 'OpenAI', ?, 'sk-xxxx')",
        (DEAD_UPSTREAM,),
    )
    gateway.sql(
        "INSERT INTO models (model_id, vendor_type, base_url, api_key) "
        "VALUES ('gpt-3.5-turbo', 'OpenAI', ?, 'sk-xxxx')",
        (fake_openai[1],),
    )
    gateway.sql(
        "INSERT INTO model_fallbacks (primary_model_id, fallback_model_id) "
        "VALUES ('gpt-4o', 'gpt-3.5-turbo')"
    )
    return gateway, key


def _post(gateway: Gateway, path: str, key: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}",
        content=body,
        timeout=30,
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def _wait_for_models(gateway: Gateway, key: str) -> None:
    """Rows written by hand take effect within the cache refresh (CACHE_REFRESH_S)."""

    def listed() -> bool:
        models = httpx.get(
            f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {key}"}
        ).json()["data"]
        return {"gpt-4o", "gpt-3.5-turbo"} <= {m["id"] for m in models}

    wait_for(listed)


def test_synchronous_request_falls_back_to_the_hand_inserted_model(
    tutorial: tuple[Gateway, str],
) -> None:
    gateway, key = tutorial
    _wait_for_models(gateway, key)
    response = _post(
        gateway, "/v1/chat/completions", key, CHAT_BODY, **{"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-lowart-model"] == "gpt-3.5-turbo"  # gpt-4o's upstream is down
    body = response.json()
    assert body["object"] == "chat.completion"
    assert {"id", "created", "model", "choices", "usage"} <= body.keys()
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == (
        body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    )


def test_streaming_request(tutorial: tuple[Gateway, str]) -> None:
    gateway, key = tutorial
    _wait_for_models(gateway, key)
    response = _post(
        gateway, "/v1/chat/completions", key, STREAM_BODY, **{"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line for line in response.text.split("\n") if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert len(events) > 3


def test_async_generation_job(tutorial: tuple[Gateway, str]) -> None:
    gateway, key = tutorial
    _wait_for_models(gateway, key)
    response = _post(
        gateway, "/v1/chat/completions", key, ASYNC_BODY, **{"Content-Type": "application/json"}
    )
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "async_started" and body["model"] == "gpt-4o"
    url = f"{gateway.url}/v1/jobs/{body['job_id']}"
    headers = {"Authorization": f"Bearer {key}"}
    first = httpx.get(url, headers=headers)
    assert first.status_code == 200
    assert first.json()["status"] in {"pending", "running", "completed"}
    wait_for(lambda: httpx.get(url, headers=headers).json()["status"] == "completed")
    job = httpx.get(url, headers=headers).json()
    assert job["progress"] == 1
    assert job["result"]["object"] == "chat.completion"
    assert job["result"]["choices"][0]["message"]["content"].startswith("Hello from fake")
    assert httpx.get(url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 404


def test_confirm_curl_without_content_type(tutorial: tuple[Gateway, str]) -> None:
    gateway, key = tutorial
    response = _post(gateway, "/v1/tools/confirm", key, CONFIRM_BODY)  # no Content-Type
    # sess_xyz does not exist: the confirm route answers 404 for that unknown session.
    assert response.status_code == 404
    assert "sess_xyz" in response.json()["error"]["message"]


def test_metrics_names(tutorial: tuple[Gateway, str]) -> None:
    gateway, key = tutorial
    _wait_for_models(gateway, key)
    assert _post(gateway, "/v1/chat/completions", key, CHAT_BODY).status_code == 200
    text = httpx.get(f"{gateway.url}/metrics").text
    # Asked for gpt-4o, whose upstream is down; served by its fallback.
    assert 'gateway_tokens_total{model="gpt-4o",served_model="gpt-3.5-turbo",type="prompt"}' in text
    assert 'http_request_duration_seconds_count{method="POST",route="/v1/chat/completions"' in text


def test_faq_429_on_rpm_limit(tutorial: tuple[Gateway, str]) -> None:
    gateway, key = tutorial
    body = QUOTA_BODY.replace(b'"rpm_limit": 100', b'"rpm_limit": 1')
    response = httpx.post(
        f"{gateway.url}/admin/users/quota",
        content=body,
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    assert response.status_code == 200  # an update of user_123
    mock_body = CHAT_BODY.replace(b"gpt-4o", b"mock")
    assert _post(gateway, "/v1/chat/completions", key, mock_body).status_code == 200
    refused = _post(gateway, "/v1/chat/completions", key, mock_body)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1

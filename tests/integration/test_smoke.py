"""A first end-to-end pass: admin creates a user, the user chats with the Mock model."""

from __future__ import annotations

from tests.conftest import Gateway


def test_user_chats_with_mock(gateway: Gateway) -> None:
    key = gateway.create_user("alice", rpm_limit=10)
    with gateway.client(key) as client:
        response = client.post(
            "/v1/chat/completions",
            json={"model": "mock", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 200, response.text
    assert response.headers["x-lowart-model"] == "mock"
    assert response.json()["choices"][0]["message"]["content"] == "hi"

"""Azure-style OpenAI endpoints (docs/api.md, "OpenAI-compatible vendors that authenticate
otherwise"): the key in ``api-key`` and an ``api-version`` query, through the official openai SDK,
against the fake upstream's ``azure`` model, which answers as Azure does without them."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway

MESSAGES: Any = [{"role": "user", "content": "hello azure"}]
AZURE = {"auth_header": "api-key", "query": {"api-version": "2024-10-21"}}


def test_an_azure_model_chats_whole_and_streamed_and_a_wrong_setup_is_mapped(
    gateway: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, v1 = fake_openai
    deployment = v1.removesuffix("/v1") + "/openai/deployments/gpt-4o"
    setups = {
        "az": AZURE,
        "az-bearer": {"query": AZURE["query"]},
        "az-noversion": {"auth_header": "api-key"},
    }
    for model_id, params in setups.items():
        gateway.add_model(
            model_id,
            base_url=deployment,
            api_key=fake.azure_key,
            upstream_model="azure",
            params=params,
        )
    client = gateway.openai(gateway.create_user())

    whole = client.chat.completions.create(model="az", messages=MESSAGES)
    assert whole.choices[0].message.content == "Hello from fake: hello azure"
    sent = fake.calls[-1]
    assert sent["headers"]["api-key"] == fake.azure_key and "authorization" not in sent["headers"]
    assert sent["query"] == "api-version=2024-10-21"
    chunks = client.chat.completions.create(model="az", messages=MESSAGES, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake: hello azure"
    assert fake.calls[-1]["stream"] and fake.calls[-1]["query"] == "api-version=2024-10-21"

    with pytest.raises(openai.InternalServerError) as refused:  # Azure's 401: our key refused
        client.chat.completions.create(model="az-bearer", messages=MESSAGES)
    assert refused.value.status_code == 502
    assert "refused the gateway's credentials" in refused.value.message
    with pytest.raises(openai.NotFoundError):  # Azure's 404 without api-version, relayed
        client.chat.completions.create(model="az-noversion", messages=MESSAGES, stream=True)


def test_params_that_cannot_be_sent_are_refused_on_registration(gateway: Gateway) -> None:
    for params, param in (
        ({"auth_header": "Host"}, "params.auth_header"),
        ({"query": {"api-version": "1\r\nx-evil: 1"}}, "params.query"),
    ):
        body = {"model_id": "az", "vendor_type": "OpenAI", "base_url": "http://127.0.0.1:9/v1"}
        refused = gateway.admin("POST", "/admin/models", json=body | {"params": params})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == param
    assert gateway.admin("GET", "/admin/models/az").status_code == 404

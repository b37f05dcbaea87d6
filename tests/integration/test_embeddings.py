"""``POST /v1/embeddings`` through the official SDK on a real socket: OpenAI-compatible (the fake
upstream) and Mock models, both encodings and the SDK's default, exact billing, the per-operation
caps, and 400s in OpenAI's shape (docs/api.md, "Embeddings")."""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Callable
from typing import Any

import openai
import pytest

from lowart.testing.openai_fake import FakeOpenAI
from tests.conftest import Gateway, wait_for
from tests.integration.chat_setup import VENDOR_KEY

UPSTREAMS = {
    "emb": "ok",
    "emb-floats": "floats",
    "emb-nousage": "nousage",
    "emb-fixed": "usage-7-0",
}
ROWS = "SELECT prompt_tokens, completion_tokens, estimated FROM usage_records WHERE request_id=?"


@pytest.fixture
def gw(make_gateway: Callable[..., Gateway], fake_openai: tuple[FakeOpenAI, str]) -> Gateway:
    gateway = make_gateway(
        embeddings_max_body_bytes=64 * 1024,
        upstream_max_body_bytes=8 * 1024,  # chat's cap: the embeddings answers below exceed it
        embeddings_max_answer_bytes=96 * 1024,
    )
    base_url = fake_openai[1]
    for model_id, upstream in UPSTREAMS.items():
        gateway.add_model(
            model_id, "OpenAI", base_url=base_url, api_key=VENDOR_KEY, upstream_model=upstream
        )
    gateway.add_model("mock-emb", "Mock", params={"embedding_dimensions": 5})
    gateway.add_model("claude", "Anthropic", base_url=base_url, api_key=VENDOR_KEY)
    return gateway


def _rows(gw: Gateway, request_id: str) -> list[tuple[Any, ...]]:
    wait_for(lambda: bool(gw.sql(ROWS, (request_id,))))
    return gw.sql(ROWS, (request_id,))


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_encodings_dimensions_and_inputs_through_the_sdk(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    fake, key = fake_openai[0], gw.create_user("embedder")
    client = gw.openai(key)
    floats = client.embeddings.create(model="emb", input="hello world", encoding_format="float")
    vector = floats.data[0].embedding
    assert len(vector) == 16 and abs(_norm(vector) - 1) < 1e-6
    assert fake.embedding_calls[-1]["body"]["encoding_format"] == "float"
    # The SDK's default asks for base64 and decodes it: from an upstream that ignores the
    # encoding and answers floats, the gateway encodes them as little-endian float32.
    default = client.embeddings.create(model="emb-floats", input="hello world")
    assert fake.embedding_calls[-1]["body"]["encoding_format"] == "base64"
    assert default.data[0].embedding == pytest.approx(vector, abs=1e-6)
    raw = client.embeddings.with_raw_response.create(
        model="emb-floats", input="hello world", encoding_format="base64"
    )
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    assert list(struct.unpack("<16f", base64.b64decode(encoded))) == pytest.approx(vector)
    # Relayed base64 (the upstream honoured it), a list of strings, ``dimensions``.
    listed = client.embeddings.create(model="emb", input=["a b", "c", "d e f"], dimensions=4)
    assert [len(item.embedding) for item in listed.data] == [4, 4, 4]
    assert [item.index for item in listed.data] == [0, 1, 2]
    assert (
        fake.embedding_calls[-1]["body"]["dimensions"] == 4
        and fake.embedding_calls[-1]["model"] == "ok"
    )
    tokens = client.embeddings.create(model="emb", input=[[1, 2, 3], [4, 5]])
    assert tokens.usage.prompt_tokens == 5 and len(tokens.data) == 2
    # Mock: unit vectors of params.embedding_dimensions, the same for the same input.
    first = client.embeddings.create(model="mock-emb", input=["same", "other"])
    again = client.embeddings.create(model="mock-emb", input="same", encoding_format="float")
    assert len(first.data[0].embedding) == 5 and abs(_norm(first.data[0].embedding) - 1) < 1e-6
    assert again.data[0].embedding == pytest.approx(first.data[0].embedding, abs=1e-6)
    assert first.data[1].embedding != first.data[0].embedding


def test_billing_is_the_vendors_prompt_tokens_or_an_estimate(gw: Gateway) -> None:
    key = gw.create_user("payer", token_quota=10_000)
    client = gw.openai(key)
    fixed = client.embeddings.with_raw_response.create(model="emb-fixed", input="one two three")
    assert fixed.parse().usage.prompt_tokens == 7
    assert _rows(gw, fixed.headers["x-request-id"]) == [(7, 0, 0)]
    counted = client.embeddings.with_raw_response.create(model="emb", input=["a b c", "d"])
    assert _rows(gw, counted.headers["x-request-id"]) == [(4, 0, 0)]
    missing = client.embeddings.with_raw_response.create(
        model="emb-nousage", input="several words to estimate"
    )
    prompt, completion, estimated = _rows(gw, missing.headers["x-request-id"])[0]
    assert estimated == 1 and prompt > 0 and completion == 0
    gw.flush()
    assert gw.sql("SELECT token_used FROM users WHERE user_id='payer'") == [(7 + 4 + prompt,)]
    with gw.client(key) as mine:
        assert mine.get("/v1/usage").json()["token_used"] == 7 + 4 + prompt


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"input": ""}, "input"),
    ({"input": []}, "input"),
    ({"input": ["a", 1]}, "input"),
    ({"input": [[1, 2], "a"]}, "input"),
    ({"input": [-1]}, "input"),
    ({"input": ["x"] * 2049}, "input"),
    ({"input": "a", "dimensions": 0}, "dimensions"),
    ({"input": "a", "dimensions": True}, "dimensions"),
    ({"input": "a", "encoding_format": "hex"}, "encoding_format"),
    ({"input": "a", "stream": True}, "stream"),
    ({"input": "a", "async": True}, "async"),
    ({"input": "a", "user": {}}, "user"),
    ({"input": "a", "model": 3}, "model"),
]


def test_refusals_are_400s_in_openais_shape(gw: Gateway) -> None:
    key = gw.create_user("careless")
    with gw.client(key) as client:
        for body, param in BAD_BODIES:
            response = client.post("/v1/embeddings", json={"model": "emb", **body})
            assert response.status_code == 400, (body, response.text)
            assert response.json()["error"]["param"] == param, body
            assert response.json()["error"]["type"] == "invalid_request_error"
        big = client.post("/v1/embeddings", json={"model": "emb", "input": "x" * 70_000})
        assert big.status_code == 413 and "error" in big.json()
        # The answer's cap is EMBEDDINGS_MAX_ANSWER_BYTES, not the chat's 8 KiB: 2 x 1,024
        # floats pass, 4 x 3,072 do not.
        fits = {"model": "emb", "input": ["a", "b"], "dimensions": 1024, "encoding_format": "float"}
        assert client.post("/v1/embeddings", json=fits).status_code == 200
        too_big = {**fits, "input": ["a", "b", "c", "d"], "dimensions": 3072}
        assert client.post("/v1/embeddings", json=too_big).status_code == 502
    client = gw.openai(key)
    with pytest.raises(openai.BadRequestError) as chat_only:
        client.embeddings.create(model="claude", input="hi")
    assert "claude" in chat_only.value.message and chat_only.value.status_code == 400
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="no-such-model", input="hi")


def test_params_kinds_narrow_what_a_model_serves(
    gw: Gateway, fake_openai: tuple[FakeOpenAI, str]
) -> None:
    base = fake_openai[1]
    gw.add_model(
        "chat-only", "OpenAI", base_url=base, api_key=VENDOR_KEY, params={"kinds": ["chat"]}
    )
    gw.add_model(
        "vectors-only",
        "OpenAI",
        base_url=base,
        api_key=VENDOR_KEY,
        params={"kinds": ["embeddings"]},
    )
    client = gw.openai(gw.create_user())
    with pytest.raises(openai.BadRequestError) as no_vectors:
        client.embeddings.create(model="chat-only", input="hi")
    assert no_vectors.value.body["param"] == "model"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as no_chat:
        client.chat.completions.create(
            model="vectors-only", messages=[{"role": "user", "content": "hi"}]
        )
    assert "does not chat" in no_chat.value.message
    assert len(client.embeddings.create(model="vectors-only", input="hi").data) == 1
    # A model may not claim what its vendor cannot serve, nor an unknown kind.
    for vendor, kinds in (("Anthropic", ["embeddings"]), ("OpenAI", ["video"]), ("OpenAI", [])):
        refused = gw.admin(
            "POST",
            "/admin/models",
            json={
                "model_id": "claimer",
                "vendor_type": vendor,
                "base_url": base,
                "params": {"kinds": kinds},
            },
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["param"] == "params.kinds"

"""The Embeddings API's pure parts: answers re-encoded only when needed, usage, Mock vectors."""

from __future__ import annotations

import math

import msgspec
import pytest

from lowart.formats import embeddings


def _answer(vectors: list[object], usage: dict[str, int] | None) -> bytes:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    body: dict[str, object] = {"object": "list", "data": data, "model": "m"}
    if usage is not None:
        body["usage"] = usage
    return msgspec.json.encode(body)


def test_answers_are_recoded_only_when_the_upstream_sent_the_other_encoding() -> None:
    floats = [[0.5, -0.25, 0.125], [1.0, 0.0, -1.0]]  # exact in float32
    as_floats = _answer(list(floats), {"prompt_tokens": 3, "total_tokens": 3})
    assert embeddings.in_encoding(as_floats, to_base64=False) is as_floats  # relayed
    encoded = embeddings.in_encoding(as_floats, to_base64=True)
    texts = [item["embedding"] for item in msgspec.json.decode(encoded)["data"]]
    assert all(isinstance(t, str) for t in texts)
    assert [embeddings.decode_vector(t) for t in texts] == floats
    assert embeddings.in_encoding(encoded, to_base64=True) is encoded  # base64 relayed as is
    decoded = msgspec.json.decode(embeddings.in_encoding(encoded, to_base64=False))
    assert [item["embedding"] for item in decoded["data"]] == floats
    spaced = b'{"data": [{"embedding": [0.5]}]}'  # another JSON writer's spacing
    assert embeddings.in_encoding(spaced, to_base64=True) != spaced
    for broken in (b'{"data": [{"embedding": [0.5]}', b'{"data": 3, "embedding":[1]}'):
        with pytest.raises(ValueError):
            embeddings.in_encoding(broken, to_base64=True)


def test_usage_is_the_vendors_prompt_tokens_and_mock_vectors_are_units() -> None:
    usage = embeddings.answer_usage(_answer([], {"prompt_tokens": 9}))
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (9, 0)
    assert embeddings.answer_usage(_answer([], None)) is None
    assert embeddings.answer_usage(_answer([], {"prompt_tokens": -1})) is None
    with pytest.raises(ValueError):
        embeddings.answer_usage(b"not json")
    body = {"input": [[1, 2, 3], [4]], "encoding_format": "base64"}
    assert embeddings.input_token_ids(body) == 4 and embeddings.input_texts(body) == ""
    assert embeddings.input_texts({"input": ["a b", "c"]}) == "a b\nc"
    for dimensions in (1, 7, 100):
        vector = embeddings.unit_vector("text", dimensions)
        assert len(vector) == dimensions and math.isclose(math.hypot(*vector), 1.0)
    assert embeddings.unit_vector("a", 8) != embeddings.unit_vector("b", 8)
    sent = msgspec.json.decode(embeddings.upstream_body({**body, "async": 1, "x": 2}, "up"))
    assert sent == {"input": [[1, 2, 3], [4]], "encoding_format": "base64", "model": "up"}

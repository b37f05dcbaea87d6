"""OpenAI's Embeddings API, pure: the request's checks, the body sent upstream, the answer in the
encoding the caller asked for, its usage, and the Mock vendor's deterministic vectors
(docs/api.md, "Embeddings")."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

import msgspec

from lowart.errors import InvalidRequest
from lowart.formats.openai import Usage

FLOAT, BASE64 = "float", "base64"
MAX_INPUTS = 2048
MAX_DIMENSIONS = 16384  # beyond any embedding model's; bounds the Mock vendor's work
UPSTREAM_FIELDS = ("input", "dimensions", "encoding_format", "user")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_tokens(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(_is_int(t) and t >= 0 for t in value)


def _items(value: object) -> list[object] | None:
    """The inputs of ``input``: a string, a token array, or a list of either; None if neither."""
    if isinstance(value, str) or _is_tokens(value):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, str) for v in value) or all(_is_tokens(v) for v in value):
        return value
    return None


def check_request(body: dict[str, Any]) -> None:
    """400 for anything the Embeddings API would refuse: ``input``, ``dimensions`` and
    ``encoding_format``. ``stream`` and ``async`` are refused: an embedding is one whole answer."""
    items = _items(body.get("input"))
    if items is None or any(item == "" for item in items):
        raise InvalidRequest(
            "'input' must be a non-empty string, a list of non-empty strings, a token array "
            "(a list of integers) or a list of token arrays.",
            param="input",
        )
    if len(items) > MAX_INPUTS:
        raise InvalidRequest(f"'input' holds at most {MAX_INPUTS} items.", param="input")
    dimensions = body.get("dimensions")
    if dimensions is not None and not (_is_int(dimensions) and 1 <= dimensions <= MAX_DIMENSIONS):
        raise InvalidRequest(
            f"'dimensions' must be an integer from 1 to {MAX_DIMENSIONS}.", param="dimensions"
        )
    if body.get("encoding_format", FLOAT) not in (FLOAT, BASE64):
        raise InvalidRequest(
            "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
        )
    if not isinstance(body.get("user", ""), str):
        raise InvalidRequest("'user' must be a string.", param="user")
    for name in ("stream", "async"):
        if body.get(name) not in (None, False):
            raise InvalidRequest(f"Embeddings do not support '{name}'.", param=name)


def wants_base64(body: dict[str, Any]) -> bool:
    """Whether the caller asked for base64 (OpenAI's default, when absent, is float)."""
    return body.get("encoding_format") == BASE64


def upstream_body(body: dict[str, Any], upstream_model: str) -> bytes:
    """The body sent upstream: only the Embeddings API's fields, with the upstream model."""
    sent = {k: body[k] for k in UPSTREAM_FIELDS if body.get(k) is not None}
    sent["model"] = upstream_model
    return msgspec.json.encode(sent)


def input_texts(body: dict[str, Any]) -> str:
    """The text inputs, for the tokenizer's estimate (token arrays are counted exactly)."""
    items = _items(body.get("input")) or []
    return "\n".join(item for item in items if isinstance(item, str))


def input_token_ids(body: dict[str, Any]) -> int:
    """How many tokens the token-array inputs hold."""
    items = _items(body.get("input")) or []
    return sum(len(item) for item in items if isinstance(item, list))


class _Usage(msgspec.Struct):
    prompt_tokens: int = -1


class _Answer(msgspec.Struct):
    usage: _Usage | None = None


_USAGE = msgspec.json.Decoder(_Answer)


def answer_usage(answer: bytes) -> Usage | None:
    """The vendor's ``usage.prompt_tokens`` (None when absent or negative); ValueError when the
    answer is not an embeddings list."""
    try:
        usage = _USAGE.decode(answer).usage
    except msgspec.DecodeError as exc:
        raise ValueError("not an embeddings answer") from exc
    if usage is None or usage.prompt_tokens < 0:
        return None
    return Usage(usage.prompt_tokens, 0)


def encode_vector(vector: list[float]) -> str:
    """A vector as OpenAI's base64: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def decode_vector(text: str) -> list[float]:
    """OpenAI's base64 (little-endian float32) as floats."""
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw[: len(raw) // 4 * 4]))


def _recoded(item: object, to_base64: bool) -> bool:
    """Re-encode one item's ``embedding`` in place; whether it changed."""
    if not isinstance(item, dict):
        raise ValueError("an embeddings item is not an object")
    vector = item.get("embedding")
    if to_base64 and isinstance(vector, list):
        item["embedding"] = encode_vector(vector)
        return True
    if not to_base64 and isinstance(vector, str):
        item["embedding"] = decode_vector(vector)
        return True
    return False


def in_encoding(answer: bytes, to_base64: bool) -> bytes:
    """The answer with every embedding in the encoding asked: relayed as it came when it already
    is; floats become base64, base64 becomes floats. ValueError for a broken answer."""
    needle = b'"embedding":"' if not to_base64 else b'"embedding":['
    if needle not in answer and needle.replace(b":", b": ") not in answer:
        return answer  # already in the encoding asked: no decode of the vectors
    try:
        parsed = msgspec.json.decode(answer)
        data = parsed["data"]
        changed = [_recoded(item, to_base64) for item in data]
    except (msgspec.DecodeError, KeyError, TypeError, ValueError, struct.error) as exc:
        raise ValueError("a broken embeddings answer") from exc
    return msgspec.json.encode(parsed) if any(changed) else answer


def unit_vector(item: object, dimensions: int) -> list[float]:
    """A deterministic vector of length 1 derived from one input (the Mock vendor's)."""
    seed = msgspec.json.encode(item)
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        digest = hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        values += [(b - 127.5) / 127.5 for b in digest]
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def mock_answer(
    body: dict[str, Any], model: str, dimensions: int, prompt_tokens: int | None
) -> bytes:
    """A whole Embeddings answer of unit vectors, in the encoding the caller asked for (with no
    ``usage`` when ``prompt_tokens`` is None)."""
    to_base64 = wants_base64(body)
    data = []
    for index, item in enumerate(_items(body.get("input")) or []):
        vector = unit_vector(item, dimensions)
        embedding: object = encode_vector(vector) if to_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    answer: dict[str, object] = {"object": "list", "data": data, "model": model}
    if prompt_tokens is not None:
        answer["usage"] = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}
    return msgspec.json.encode(answer)

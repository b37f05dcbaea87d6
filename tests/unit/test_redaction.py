"""Redaction of logged bodies (docs/operations.md, "Request logs"): pure, bounded by the cap."""

from __future__ import annotations

import base64
import struct

import msgspec

from lowart.formats.redaction import (
    MASK,
    Redaction,
    redacted_bytes,
    redacted_events,
    shape,
    truncation_marker,
)
from lowart.settings.observe import DEFAULT_REDACT_PATTERNS

RULES = Redaction.parse("metadata.customer, messages.*.name", DEFAULT_REDACT_PATTERNS, 200)


def _json(value: object) -> bytes:
    return msgspec.json.encode(value)


def test_keys_paths_and_patterns_are_masked() -> None:
    body = {
        "messages": [
            {"role": "user", "name": "ann", "content": "mail bob@corp.io, key sk-abcdefghijklmnop"}
        ],
        "metadata": {"customer": {"deep": 1}, "Authorization": "Bearer abcdefghijkl", "kept": 2},
        "headers": {"X-Api-Key": "anything"},
    }
    text, cut = redacted_bytes(_json(body), RULES)
    out = msgspec.json.decode(text)
    assert not cut
    assert out["messages"][0] == {
        "role": "user",
        "name": MASK,
        "content": f"mail {MASK}, key {MASK}",
    }
    assert out["metadata"] == {"customer": MASK, "Authorization": MASK, "kept": 2}
    assert out["headers"] == {"X-Api-Key": MASK}


def test_a_path_needs_every_segment() -> None:
    text, _ = redacted_bytes(_json({"customer": "top", "metadata": {"other": "x"}}), RULES)
    assert msgspec.json.decode(text) == {"customer": "top", "metadata": {"other": "x"}}


def test_embeddings_become_their_shape() -> None:
    floats = [0.5] * 1536
    packed = base64.b64encode(struct.pack("<1536f", *floats)).decode()
    assert shape(floats) == shape(packed) == "<1536 floats>"
    answer = {"data": [{"embedding": floats}, {"embedding": packed}], "model": "m"}
    text, cut = redacted_bytes(_json(answer), RULES)
    assert not cut and "0.5" not in text and text.count("<1536 floats>") == 2


def test_a_long_body_is_cut_with_a_marker_and_no_secret_straddles_the_cut() -> None:
    rules = Redaction.parse("", DEFAULT_REDACT_PATTERNS, 100)
    secret = "sk-" + "s" * 40
    body = {"content": "a" * 80 + " " + secret + " " + "b" * 10_000}
    raw = _json(body)
    text, cut = redacted_bytes(raw, rules)
    assert cut and text.endswith(truncation_marker(len(raw), 100))
    assert len(text.encode()) == 100 + len(truncation_marker(len(raw), 100).encode())
    assert "sssss" not in text and MASK in text


def test_the_work_is_bounded_by_the_cap() -> None:
    rules = Redaction.parse("", DEFAULT_REDACT_PATTERNS, 100)
    many = {"messages": [{"content": f"m{i} x@y.io"} for i in range(20_000)]}
    text, cut = redacted_bytes(_json(many), rules)
    assert cut and len(text) < 300


def test_stream_events_are_redacted_event_by_event() -> None:
    events = (
        b'data: {"choices":[{"delta":{"content":"to a@b.co"}}]}\n\n'
        b'data: {"embedding":[1.0,2.0]}\n\n'
        b"data: [DONE]\n\n"
    )
    text, cut = redacted_events(events, RULES, len(events))
    assert not cut
    assert '"content":"to ***"' in text and '"<2 floats>"' in text and "data: [DONE]" in text


def test_text_that_is_not_json_is_redacted_as_text() -> None:
    text, cut = redacted_bytes(b"plain a@b.co", RULES)
    assert (text, cut) == (f"plain {MASK}", False)

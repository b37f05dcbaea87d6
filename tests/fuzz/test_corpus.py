"""The fuzz corpus as regression tests: each ``corpus/*.json`` runs through its property check.

A file is ``{"check": <name>, "input": <value>, "why": <what it once broke or guards>}`` (SSE
inputs are strings whose code points 0-255 stand for bytes, with ``cuts`` for the chunking).
Add the smallest example hypothesis reports for any new bug here, beside an ``@example``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lowart.formats.sse import SSEEvent
from tests.fuzz import test_sse_fuzz as sse
from tests.fuzz import test_translate_fuzz as translate

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.json"))


def _sse(entry: dict[str, Any]) -> None:
    data = entry["input"].encode("latin-1")
    whole = sse._parse([data], sse.SMALL_LINE)
    assert sse._parse(sse._split(data, entry["cuts"]), sse.SMALL_LINE) == whole
    assert sse._parse([bytes([b]) for b in data], sse.SMALL_LINE) == whole


CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "sse": _sse,
    "openai_to_anthropic": lambda e: translate.check_openai_to_anthropic(e["input"]),
    "anthropic_to_openai": lambda e: translate.check_anthropic_to_openai(e["input"]),
    "responses": lambda e: translate.check_responses(e["input"]),
    "message_events": lambda e: translate.check_message_events(e["input"]),
    "upstream_parsers": lambda e: translate.check_upstream_parsers(e["input"].encode()),
    "prompt_text": lambda e: translate.check_prompt_text(e["input"]),
    "anthropic_stream": lambda e: translate.check_anthropic_stream(
        [SSEEvent(event=name, data=data.encode()) for name, data in e["input"]], True
    ),
    "openai_stream": lambda e: translate.check_openai_stream([d.encode() for d in e["input"]]),
}


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 10


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_entry(path: Path) -> None:
    entry = json.loads(path.read_text())
    assert entry.get("why"), "say what the entry guards"
    CHECKS[entry["check"]](entry)

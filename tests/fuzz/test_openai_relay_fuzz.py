"""Fuzzing the OpenAI stream relay (providers/openai.py): a chunk of plain events that carries
no usage and no terminator is relayed as it came; whatever the chunking, the client gets what
the event-by-event relay gives, and billing sees the same usage and text."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from lowart.formats.openai import Usage, carries_usage, completion_text_from_chunks
from lowart.formats.sse import DONE, encode_event
from lowart.providers.openai import OpenAIStream
from tests.fuzz.test_sse_fuzz import FUZZ, _split

USAGE = b'{"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'
PLAIN = [  # no usage (a null one is none), no terminator
    b'{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"}}]}',
    b'{"id":"c","choices":[{"index":0,"delta":{"content":" there"}}],"usage":null}',
    b'{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage": null}',
]
LOOKS_LIKE_THE_END = b'{"id":"c","choices":[{"index":0,"delta":{"content":"[DONE]"}}]}'
EVENTS = [*PLAIN, LOOKS_LIKE_THE_END]


class _Chunks:
    """An upstream answer's body in the given chunks (what OpenAIStream reads)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self.released = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        pass


def _relay(chunks: list[bytes], wants_usage: bool) -> tuple[bytes, OpenAIStream, _Chunks]:
    response = _Chunks(chunks)
    stream = OpenAIStream(response, "m", wants_usage)  # type: ignore[arg-type]

    async def read() -> bytes:
        return b"".join([out async for out in stream])

    return asyncio.run(read()), stream, response


def _expected(datas: list[bytes], wants_usage: bool) -> bytes:
    """The event-by-event relay: the usage event dropped unless asked for, then the end."""
    return b"".join(encode_event(d) for d in datas if wants_usage or d != USAGE) + DONE


USAGE_ALONE = len(encode_event(EVENTS[0]) + encode_event(USAGE))  # a cut between usage and end


@FUZZ
@given(
    st.lists(st.sampled_from(EVENTS), max_size=8),
    st.booleans(),
    st.lists(st.integers(0, 2_000), max_size=6),
    st.booleans(),
)
@example([EVENTS[0], EVENTS[1]], True, [], False)  # one plain chunk, then usage and the end
@example([LOOKS_LIKE_THE_END], True, [], False)
@example([EVENTS[0]], True, [USAGE_ALONE], False)  # the usage event in a chunk of its own
def test_any_chunking_relays_what_event_by_event_relaying_gives(
    contents: list[bytes], with_usage: bool, cuts: list[int], wants_usage: bool
) -> None:
    datas = [*contents, USAGE] if with_usage else contents
    body = b"".join(encode_event(d) for d in datas) + DONE
    relayed, stream, response = _relay(_split(body, cuts), wants_usage)
    assert relayed == _expected(datas, wants_usage)
    assert response.released  # the end came: the connection goes back to the pool
    assert stream.usage == (Usage(3, 2) if with_usage else None)
    assert stream.completion_text() == completion_text_from_chunks(contents)


def test_a_plain_chunk_is_relayed_as_the_very_same_bytes() -> None:
    chunk = b"".join(encode_event(d) for d in PLAIN)
    stream = OpenAIStream(_Chunks([chunk, DONE]), "m", False)  # type: ignore[arg-type]

    async def first() -> Any:
        events = aiter(stream)
        return await anext(events)

    assert asyncio.run(first()) is chunk


def test_carries_usage() -> None:
    nulls = b"".join(encode_event(d) for d in PLAIN)
    assert not carries_usage(nulls)  # every usage key here is null
    assert carries_usage(nulls + encode_event(USAGE))
    assert not carries_usage(b'{"content":"\\"usage\\":1"}')  # escaped: text, not a key

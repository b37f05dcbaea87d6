"""Fuzzing the SSE parser and encoder (formats/sse.py) with arbitrary bytes and chunkings."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lowart.formats.sse import SSEError, SSEEvent, SSEParser, encode_event
from tests.fuzz.strategies import fuzz_examples

FUZZ = settings(max_examples=fuzz_examples(300), deadline=None)
SMALL_LINE = 24  # a small line limit, so that arbitrary input reaches SSEError too

# Bytes rich in what the parser looks at: line ends, colons, field names, a BOM's pieces.
stream_bytes = st.lists(
    st.one_of(
        st.sampled_from(
            [
                *(b"\n", b"\r", b"\r\n", b":", b" ", b"data", b"event", b"id", b"retry"),
                *(b"\x00", b"\xef", b"\xbb", b"\xbf", b"\xef\xbb\xbf", b"data: ", b"\n\n", b"\xff"),
            ]
        ),
        st.binary(max_size=8),
    ),
    max_size=40,
).map(b"".join)


def _parse(chunks: list[bytes], max_line: int) -> list[SSEEvent] | str:
    """The events of a whole stream fed in ``chunks``, or ``"SSEError"`` if it was refused."""
    parser = SSEParser(max_line_bytes=max_line)
    events: list[SSEEvent] = []
    try:
        for chunk in chunks:
            events.extend(parser.feed(chunk))
        events.extend(parser.close())
    except SSEError:
        return "SSEError"
    return events


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@FUZZ
@given(
    stream_bytes,
    st.lists(st.integers(0, 10_000), max_size=12),
    st.sampled_from([SMALL_LINE, 1 << 20]),
)
@example(b"\xef\xbb", [1], SMALL_LINE)  # a BOM cut short at the very end
@example(b"data: x\r", [8], SMALL_LINE)  # a CR at the end of one chunk, nothing after it
@example(b"data: " + b"x" * SMALL_LINE + b"\n\n", [3, 9], SMALL_LINE)  # over the limit
def test_any_bytes_in_any_chunking_parse_the_same_or_are_refused(
    data: bytes, cuts: list[int], max_line: int
) -> None:
    """Only SSEError ever escapes, and where the cuts fall changes nothing."""
    whole = _parse([data], max_line)
    assert _parse(_split(data, cuts), max_line) == whole
    assert _parse([bytes([b]) for b in data], max_line) == whole


event_names = st.none() | st.text(max_size=10).filter(lambda s: "\n" not in s and "\r" not in s)
payloads = st.binary(max_size=40)


@FUZZ
@given(st.lists(st.tuples(payloads, event_names), max_size=6), st.lists(st.integers(0, 500)))
def test_encoded_events_parse_back(events: list[tuple[bytes, str | None]], cuts: list[int]) -> None:
    """encode_event then the parser gives each event back, line endings made LF."""
    stream = b"".join(encode_event(data, name) for data, name in events)
    parsed = _parse(_split(stream, cuts), 1 << 20)
    assert isinstance(parsed, list)
    expected = [(name, data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")) for data, name in events]
    # A name that is not UTF-8 cannot occur (it is a str); a leading BOM only at stream start.
    if stream.startswith(b"\xef\xbb\xbf"):
        return
    assert [(e.event, e.data) for e in parsed] == expected


@FUZZ
@given(st.text(max_size=10))
def test_an_event_name_with_a_line_break_is_refused(name: str) -> None:
    try:
        encode_event(b"x", name + "\n")
    except SSEError:
        return
    raise AssertionError("a line break in an event name was encoded")


def _data_both_ways(chunks: list[bytes], max_line: int) -> tuple[object, object]:
    """``feed_data`` and ``feed`` (keeping non-empty data) over the same chunks: each gives
    the data per chunk, or ``"SSEError"`` if it refused the stream."""
    results: list[object] = []
    for use_fast_path in (True, False):
        parser = SSEParser(max_line_bytes=max_line)
        per_chunk: list[list[bytes]] = []
        try:
            for chunk in chunks:
                if use_fast_path:
                    per_chunk.append(parser.feed_data(chunk))
                else:
                    per_chunk.append([e.data for e in parser.feed(chunk) if e.data])
        except SSEError:
            results.append("SSEError")
            continue
        results.append(per_chunk)
    return results[0], results[1]


plain_payloads = st.binary(max_size=30).filter(lambda b: b"\n" not in b and b"\r" not in b)


@FUZZ
@given(
    st.one_of(
        stream_bytes,
        st.lists(plain_payloads, max_size=8).map(lambda ds: b"".join(encode_event(d) for d in ds)),
    ),
    st.lists(st.integers(0, 10_000), max_size=6),
    st.sampled_from([SMALL_LINE, 1 << 20]),
)
@example(b"data: a\n\ndata: b\n\n", [], 1 << 20)  # plain events: the fast path
@example(b"\xef\xbb\xbfdata: a\n\n", [1], 1 << 20)  # a BOM split across chunks
@example(b"\xef\xbb\xbfdata: a\n\n", [0], 1 << 20)  # an empty chunk first, then a BOM
@example(b"data: " + b"x" * SMALL_LINE + b"\n\n", [], SMALL_LINE)  # a plain line over the limit
@example(b"data: a\ndata: b\n\n", [8], 1 << 20)  # plain-looking, but an event is still open
@example(b"dadata: x\n\n", [2], 1 << 20)  # plain-looking, but a line is still unfinished
def test_feed_data_gives_what_feed_gives(data: bytes, cuts: list[int], max_line: int) -> None:
    """The fast path of plain events changes nothing, in any chunking."""
    fast, slow = _data_both_ways(_split(data, cuts), max_line)
    assert fast == slow

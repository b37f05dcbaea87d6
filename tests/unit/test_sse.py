"""The SSE parser gives the same events under every chunking, and the encoder round-trips."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lowart.formats.sse import DONE, SSEError, SSEEvent, SSEParser, encode_event

BOM = b"\xef\xbb\xbf"
ENDINGS = ("\n", "\r", "\r\n")

# Any character but CR, LF and lone surrogates; U+2028, U+0085 and NUL are drawn often, and
# leading spaces too, since the parser removes exactly one after the colon.
LINE_TEXT = st.builds(
    str.__add__,
    st.sampled_from(["", "", " ", "  ", ":"]),
    st.text(
        alphabet=st.one_of(
            st.sampled_from(["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", ":", " ", "é"]),
            st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"),
        ),
        max_size=12,
    ),
)


@dataclass
class Block:
    """One block of lines ended by a blank line; it dispatches only if it has data lines."""

    event: str | None
    data: list[str] | None
    id: str | None
    comments: list[str]


blocks = st.builds(
    Block,
    event=st.none() | LINE_TEXT,
    data=st.none() | st.lists(LINE_TEXT, min_size=1, max_size=4),
    id=st.none() | LINE_TEXT.filter(lambda text: "\x00" not in text),
    comments=st.lists(LINE_TEXT, max_size=3),
)


def block_lines(block: Block, draw: st.DrawFn) -> list[str]:
    """The block's field lines with its comments scattered among them."""
    lines: list[str] = []
    if block.event is not None:
        lines.append("event: " + block.event)
    if block.id is not None:
        lines.append("id: " + block.id)
    lines += ["data: " + line for line in block.data or ()]
    for comment in block.comments:
        lines.insert(draw(st.integers(0, len(lines))), ":" + comment)
    return [*lines, ""]


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
    """Random stream bytes, with random line endings, and the events they must produce."""
    parts: list[str] = []
    expected: list[SSEEvent] = []
    last_id: str | None = None
    previous = "\n"
    for block in draw(st.lists(blocks, max_size=6)):
        for line in block_lines(block, draw):
            # After a CR, an LF ending an empty line would merge into one CRLF ending.
            choices = ENDINGS[1:] if previous == "\r" and not line else ENDINGS
            previous = draw(st.sampled_from(choices))
            parts.append(line + previous)
        last_id = block.id if block.id is not None else last_id
        if block.data is not None:
            data = "\n".join(block.data).encode()
            expected.append(SSEEvent(block.event, data, last_id))
    if draw(st.booleans()) and parts:
        parts.pop()  # no final blank line: close() must still flush the last event
    raw = "".join(parts).encode()
    return (BOM + raw if draw(st.booleans()) else raw), expected


def parse(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cut % (len(raw) + 1) for cut in cuts), len(raw)]
    return [raw[start:end] for start, end in itertools.pairwise(bounds)]


@settings(max_examples=300)
@given(stream=streams(), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_any_chunking_gives_the_original_events(
    stream: tuple[bytes, list[SSEEvent]], cuts: list[int]
) -> None:
    raw, expected = stream
    whole = parse([raw])
    assert whole == expected
    assert parse(split(raw, cuts)) == whole
    assert parse([raw[i : i + 1] for i in range(len(raw))]) == whole


@given(
    data=st.binary(max_size=40) | LINE_TEXT.map(str.encode),
    event=st.none()
    | st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n")),
)
def test_encode_event_round_trips(data: bytes, event: str | None) -> None:
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    assert parse([encode_event(data, event)]) == [SSEEvent(event, lines, None)]


def test_encode_event_shapes() -> None:
    assert encode_event(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert encode_event(b"x", "ping") == b"event: ping\ndata: x\n\n"
    assert encode_event(b"a\nb") == b"data: a\ndata: b\n\n"
    assert parse([DONE]) == [SSEEvent(data=b"[DONE]")]
    with pytest.raises(SSEError):
        encode_event(b"x", "bad\nname")


def test_bom_is_skipped_once_even_when_split() -> None:
    assert parse([BOM[:1], BOM[1:2], BOM[2:] + b"data: x\n\n"]) == [SSEEvent(data=b"x")]
    assert parse([BOM + BOM + b"data: x\n\n"]) == []  # the second BOM starts an unknown field
    assert parse([BOM[:2]]) == []


def test_cr_at_chunk_end_pairs_with_next_lf() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n") == []  # the LF completes the CRLF: no blank line yet
    assert parser.feed(b"") == []
    assert parser.feed(b"\r") == [SSEEvent(data=b"a")]
    assert parser.feed(b"\ndata: b\r\r") == [SSEEvent(data=b"b")]


def test_fields_comments_and_dispatch_rules() -> None:
    raw = (
        b": keep-alive\n"
        b"event: only-a-name\n\n"  # no data line: not dispatched, and the name is dropped
        b"data\n\n"  # no colon: the field name with an empty value
        b"data:\n\n"  # an empty data line still dispatches
        b"data:  two spaces\nretry: 10\nunknown: x\nid: 7\n\n"
        b"id: bad\x00\ndata: after\n\n"
    )
    assert parse([raw]) == [
        SSEEvent(data=b""),
        SSEEvent(data=b""),
        SSEEvent(data=b" two spaces", id="7"),
        SSEEvent(data=b"after", id="7"),
    ]


def test_unicode_line_separators_do_not_split() -> None:
    data = '{"t":"a\u2028b\x85c"}'.encode()
    assert parse([b"data: " + data + b"\n\n"]) == [SSEEvent(data=data)]


def test_close_flushes_an_unterminated_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"event: e\ndata: 1\ndata: 2") == []
    assert parser.close() == [SSEEvent("e", b"1\n2")]
    assert SSEParser().close() == []
    flushed = SSEParser()
    flushed.feed(b"event: e\n")
    assert flushed.close() == []


def test_line_length_limit() -> None:
    parser = SSEParser(max_line_bytes=8)
    assert parser.feed(b"data: 12\n\n") == [SSEEvent(data=b"12")]
    with pytest.raises(SSEError):
        parser.feed(b"data: 123\n")
    growing = SSEParser(max_line_bytes=8)
    growing.feed(b"data:")
    with pytest.raises(SSEError):
        growing.feed(b" 1234")

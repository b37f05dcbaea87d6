"""Server-Sent Events: an incremental byte-level parser and the encoder for our own streams.

The parser follows the WHATWG event-stream rules at the byte level (never ``str.splitlines``,
which would also split on U+2028 or U+0085 inside JSON strings); the encoder writes LF endings
and one blank line after each event, as the event-stream format asks of a server.
"""

from __future__ import annotations

from dataclasses import dataclass

DONE = b"data: [DONE]\n\n"
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024

_BOM = b"\xef\xbb\xbf"


class SSEError(ValueError):
    """An event stream the parser refuses, such as a line over the length limit."""


@dataclass(slots=True)  # per request: frozen ones cost more to build
class SSEEvent:
    """One dispatched event: its name, its data lines joined with LF, and the last event id."""

    event: str | None = None
    data: bytes = b""
    id: str | None = None


class SSEParser:
    """Turns chunks of an event stream into events, whatever the chunk boundaries are.

    ``id`` is the stream's last event id, which per WHATWG persists until another ``id:`` line.
    """

    __slots__ = ("_after_cr", "_data", "_event", "_head", "_last_id", "_max", "_partial", "_size")

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._head: bytes | None = b""  # stream start until the BOM question is settled
        self._after_cr = False  # the last chunk ended with CR, so a leading LF is its pair
        self._partial: list[bytes] = []  # pieces of the unfinished line
        self._size = 0
        self._event: str | None = None
        self._data: list[bytes] = []
        self._last_id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse one chunk and return the events it completed."""
        if self._head is not None:
            chunk = self._skip_bom(chunk)
        if self._after_cr and chunk:
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if not chunk:
            return []
        if b"\r" in chunk:
            self._after_cr = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if self._partial:
            lines[0] = b"".join(self._partial) + lines[0]
            self._partial = []
            self._size = 0
        if max(map(len, lines)) > self._max:
            raise SSEError(f"SSE line longer than {self._max} bytes")
        events = self._process(lines)
        self._keep(tail)
        return events

    def feed_data(self, chunk: bytes) -> list[bytes]:
        """The data of the non-empty events one chunk completed (names and ids left out)."""
        datas = self.feed_plain(chunk)
        if datas is not None:
            return datas
        return [e.data for e in self.feed(chunk) if e.data]

    def feed_plain(self, chunk: bytes) -> list[bytes] | None:
        """The data of a chunk of whole, plain events, split without the line-by-line parse;
        None, with nothing consumed, for any other chunk.

        Plain: the parser is between events, and the chunk is events that are each one
        ``data: `` line with data, with LF endings. Encoding their data gives the chunk back.
        """
        if self._head is not None and not self._head and chunk and chunk[:1] != _BOM[:1]:
            self._head = None  # no BOM can start this stream
        if (
            self._head is None
            and not self._after_cr
            and not self._partial
            and not self._data
            and self._event is None
            and chunk[:6] == b"data: "
            and chunk[-2:] == b"\n\n"
            and len(chunk) <= self._max
            and b"\r" not in chunk
            and b"data: \n" not in chunk  # an event without data (or data ending "data: ")
            # Every LF is in an event's closing pair: no other line, no open event.
            and chunk.count(b"\n") == 2 * chunk.count(b"\n\ndata: ") + 2
        ):
            return chunk[6:-2].split(b"\n\ndata: ")
        return None

    def close(self) -> list[SSEEvent]:
        """Flush the end of the stream: a last line and an event not followed by a blank line."""
        events: list[SSEEvent] = []
        if self._head is not None:
            head, self._head = self._head, None
            events.extend(self.feed(head))
        if self._partial:
            line = b"".join(self._partial)
            self._partial = []
            self._size = 0
            events.extend(self._process([line]))
        last = self._dispatch()
        if last is not None:
            events.append(last)
        self._after_cr = False
        return events

    def _skip_bom(self, chunk: bytes) -> bytes:
        """Drop one leading BOM, which may arrive split across the first chunks."""
        head = (self._head or b"") + chunk
        if len(head) < len(_BOM) and _BOM.startswith(head):
            self._head = head
            return b""
        self._head = None
        return head[len(_BOM) :] if head.startswith(_BOM) else head

    def _keep(self, piece: bytes) -> None:
        """Hold the start of an unfinished line, refusing one that grows past the limit."""
        if not piece:
            return
        self._partial.append(piece)
        self._size += len(piece)
        if self._size > self._max:
            raise SSEError(f"SSE line longer than {self._max} bytes")

    def _process(self, lines: list[bytes]) -> list[SSEEvent]:
        """Apply complete lines in order and return the events their blank lines dispatched."""
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[:6] == b"data: ":
                self._data.append(line[6:])
            else:
                self._field(line)
        return events

    def _field(self, line: bytes) -> None:
        """Apply one non-blank line: a comment, or a field with an optional value."""
        colon = line.find(b":")
        if colon == 0:
            return
        if colon < 0:
            name, value = line, b""
        else:
            name, value = line[:colon], line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id" and b"\0" not in value:
            self._last_id = value.decode("utf-8", "replace")

    def _dispatch(self) -> SSEEvent | None:
        """End the current event; one without any data line is dropped."""
        event_name, self._event = self._event, None
        if not self._data:
            return None
        data, self._data = self._data, []
        return SSEEvent(event_name, b"\n".join(data), self._last_id)


def encode_event(data: bytes, event: str | None = None) -> bytes:
    """One event with LF endings; data with line breaks becomes one ``data:`` line per line."""
    head = b""
    if event is not None:
        if "\n" in event or "\r" in event:
            raise SSEError("an SSE event name cannot contain a line break")
        head = b"event: " + event.encode() + b"\n"
    if b"\n" not in data and b"\r" not in data:
        return head + b"data: " + data + b"\n\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join([b"data: " + line + b"\n" for line in lines]) + b"\n"

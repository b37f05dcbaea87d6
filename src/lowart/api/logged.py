"""The edge of a logged request (docs/operations.md, "Request logs"): what its answer sends is
noted as it goes, and the entry is queued when the request ends, however it ends: before the
answer's last byte is sent (so that whoever has the answer finds its log), or when it fails.

Only requests whose model is logged come here (``OperationEndpoint``); the rest never build an
entry. Nothing is parsed or copied here: the writer redacts later, on its own thread.
"""

from __future__ import annotations

import asyncio

from lowart.api.asgi import Message, Send
from lowart.api.errors import render
from lowart.errors import LowartError
from lowart.usage.request_logs import RequestLogEntry, RequestLogs


class Capture:
    """A ``send`` that notes the answer's status and bytes on the entry (a stream's up to
    ``keep`` bytes; a whole answer's all of it, by reference), and queues the entry once."""

    __slots__ = ("_keep", "_logs", "_send", "ended", "entry", "queued")

    def __init__(
        self, entry: RequestLogEntry, send: Send, keep: int | None, logs: RequestLogs
    ) -> None:
        self.entry = entry
        self._send = send
        self._keep = keep
        self._logs = logs
        self.ended = False
        self.queued = False

    def queue(self) -> None:
        """Queue the entry, as it stands, unless it already is."""
        if not self.queued:
            self.queued = True
            self._logs.record(settled(self))

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        entry = self.entry
        if kind == "http.response.start":
            entry.http_status = message["status"]
        elif kind == "http.response.body":
            body = message.get("body", b"")
            if self._keep is None:
                entry.answer.append(body)
            elif entry.answer_bytes < self._keep:
                entry.answer.append(body[: self._keep - entry.answer_bytes])
            entry.answer_bytes += len(body)
            if not message.get("more_body", False):
                self.ended = True
                self.queue()
        await self._send(message)


def failed(capture: Capture, error: BaseException, path: str) -> None:
    """The request ended with ``error``: the entry holds the answer the caller got."""
    entry = capture.entry
    if isinstance(error, LowartError):
        status, _, body = render(error, path)
        entry.status, entry.http_status = "error", status
        entry.answer, entry.answer_bytes = [body], len(body)
    elif isinstance(error, asyncio.CancelledError):
        entry.status = "cancelled"
    else:
        entry.status, entry.http_status = "error", entry.http_status or 500


def settled(capture: Capture) -> RequestLogEntry:
    """The entry to queue once the request is over."""
    entry = capture.entry
    if entry.status == "ok":
        if entry.http_status >= 400:
            entry.status = "error"
        elif not capture.ended:  # the client left, or the stream was cut
            entry.status = "cancelled"
    return entry

"""A local OTLP/HTTP trace receiver: decodes the real protobuf ``ExportTraceServiceRequest`` each
export posts to ``/v1/traces``, and keeps its spans for tests to read (``spans``).

Payloads are parsed with ``opentelemetry-proto``'s generated classes, so a test sees what a real
collector would: ids as hex, attributes by key with their typed values.
"""

from __future__ import annotations

import gzip
import threading
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from starlette.types import Receive, Scope, Send

from lowart.testing.asgi import FakeUpstream, read_body

PROTOBUF = b"application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as a collector received it."""

    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: int  # the protobuf enum: 1 internal, 2 server, 3 client
    attributes: dict[str, Any]
    status_code: int  # 0 unset, 1 ok, 2 error
    service_name: str


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind is not None else None


class OTLPReceiver(FakeUpstream):
    """An ASGI OTLP/HTTP receiver of traces (protobuf only, as the exporter sends)."""

    request_id_header = b"x-request-id"

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()  # read by the test's thread, written by the server's
        self._spans: list[ReceivedSpan] = []
        self.exports = 0

    @property
    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            return list(self._spans)

    async def _http(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        body = await read_body(receive)
        if scope["path"] != "/v1/traces" or scope["method"] != "POST":
            await _answer(send, 404, b"")
            return
        if headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        received = list(_spans_of(request))
        with self._lock:
            self._spans.extend(received)
            self.exports += 1
        await _answer(send, 200, ExportTraceServiceResponse().SerializeToString())


def _spans_of(request: ExportTraceServiceRequest) -> Any:
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        service = str(resource.get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield ReceivedSpan(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent_span_id=span.parent_span_id.hex(),
                    name=span.name,
                    kind=span.kind,
                    attributes={a.key: _value(a.value) for a in span.attributes},
                    status_code=span.status.code,
                    service_name=service,
                )


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", PROTOBUF), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

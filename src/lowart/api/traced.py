"""The request span (docs/operations.md, "Tracing"): with tracing on, each operation's endpoint
runs inside one span, from its body's first byte to its answer's last (a stream included).

The span continues the caller's W3C ``traceparent`` when it sends one. Its children are the
attempts (``dispatch/traced.py``), the tool calls and, for a job, nothing: a job's run has a span
of its own (``jobs/runner.py``). Built only with tracing on: when off, the endpoint is served
bare and no span object exists.
"""

from __future__ import annotations

from lowart.api.asgi import ASGIApp, Message, Receive, Scope, Send
from lowart.api.middleware import REQUEST_ID_KEY, principal_of
from lowart.dispatch.traced import operation_name
from lowart.errors import LowartError
from lowart.pipeline.operation import Operation
from lowart.telemetry import tracing as t
from lowart.telemetry.tracing import SERVER, Span, Tracing

_CONTEXT_HEADERS = (b"traceparent", b"tracestate")


def traced_endpoint(tracing: Tracing | None, endpoint: ASGIApp, op: Operation) -> ASGIApp:
    """``endpoint`` inside a request span, or ``endpoint`` itself when tracing is off."""
    return endpoint if tracing is None else TracedEndpoint(endpoint, tracing, op)


class TracedEndpoint:
    """An operation's endpoint wrapped in its request span."""

    def __init__(self, endpoint: ASGIApp, tracing: Tracing, op: Operation) -> None:
        self._endpoint = endpoint
        self._tracing = tracing
        self._operation = operation_name(op.fmt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k in _CONTEXT_HEADERS
        }
        attributes = {
            t.OPERATION: self._operation,
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "lowart.request_id": scope.get(REQUEST_ID_KEY, ""),
            "lowart.user_id": principal_of(scope).user_id,
        }
        parent = self._tracing.continued(carrier) if carrier else None
        span = self._tracing.start(self._operation, SERVER, attributes, parent)
        with self._tracing.current(span):
            try:
                await self._endpoint(scope, receive, _watching(send, span))
            except LowartError as exc:
                span.set_attribute("http.response.status_code", exc.http_status)
                t.failed(span, exc.error_code or type(exc).__name__, exc.message)
                raise
            except BaseException as exc:
                t.failed(span, type(exc).__name__)
                raise
            finally:
                span.end()


def _watching(send: Send, span: Span) -> Send:
    """``send``, noting the answer's status and serving model on the span."""

    async def watched(message: Message) -> None:
        if message["type"] == "http.response.start":
            status = message["status"]
            span.set_attribute("http.response.status_code", status)
            for name, value in message.get("headers", ()):
                if name == b"x-lowart-model":
                    span.set_attribute("lowart.model", value.decode("latin-1"))
            if status >= 400:
                t.failed(span, str(status))
        await send(message)

    return watched

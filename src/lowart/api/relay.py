"""The chat endpoints' shared flow: parse once, validate, admit, then answer whole or streamed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lowart.api.asgi import (
    Receive,
    Scope,
    Send,
    encode_headers,
    parse_object,
    read_body,
    send_bytes,
)
from lowart.api.chat import ChatFields
from lowart.api.middleware import REQUEST_ID_KEY, principal_of
from lowart.api.stream import relay_sse
from lowart.dispatch.flow import Dispatcher
from lowart.errors import InvalidRequest
from lowart.providers.base import ChatRequest

Validate = Callable[[dict[str, Any]], ChatFields]


def passed_headers(scope: Scope, names: tuple[bytes, ...]) -> dict[str, str]:
    """The allowlisted client headers a same-format vendor may see (never credentials)."""
    return {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in names}


class ChatEndpoint:
    """A raw ASGI chat endpoint for one wire format (``/v1/chat/completions``, ``/v1/messages``)."""

    def __init__(
        self, dispatcher: Dispatcher, fmt: str, validate: Validate, headers: tuple[bytes, ...] = ()
    ) -> None:
        self._dispatcher = dispatcher
        self._fmt = fmt
        self._validate = validate
        self._headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = principal_of(scope)
        raw = await read_body(scope, receive)
        body = parse_object(raw)
        fields = self._validate(body)
        if fields.is_async:
            raise InvalidRequest(
                "Async jobs are not available on this gateway yet; "
                "send the request without 'async'.",
                param="async",
            )
        admission = await self._dispatcher.admit(principal, fields.model, body, len(raw))
        request = ChatRequest(
            body=body,
            stream=fields.stream,
            wants_usage=fields.wants_usage,
            request_id=scope[REQUEST_ID_KEY],
            fmt=self._fmt,
            headers=passed_headers(scope, self._headers),
        )
        if not fields.stream:
            served = await self._dispatcher.complete(admission, request)
            await send_bytes(send, 200, served.body, encode_headers(served.headers))
            return
        streaming = await self._dispatcher.stream(admission, request)
        await relay_sse(receive, send, encode_headers(streaming.headers), streaming.events)
